;;; teampilot-lsp-mode.el --- teampilot in Emacs through lsp-mode  -*- lexical-binding: t; -*-
;; Needs lsp-mode 9.0.1+ (M-x package-install lsp-mode); it has LSP inline completion.
;; Load it from your init file:  (load "~/.emacs.d/teampilot-lsp-mode.el")
;; `python -m lsp setup emacs-lsp-mode --write' writes this file with your backend URL and key.
;; teampilot runs as an add-on server beside your language's usual server.

(require 'lsp-mode)
(require 'ht)

(defvar teampilot-server-command '("python3" "-m" "lsp" "--stdio")
  "How to start the teampilot language server.")

(defvar teampilot-settings
  (ht ("backend" (ht ("url" "http://127.0.0.1:8000/v1") ("apiKey" "") ("model" "")))
      ("completion" (ht ("enabled" t) ("debounceMs" 75) ("maxTokens" 128) ("timeoutMs" 5000))))
  "teampilot settings, sent as initializationOptions.")

(defvar teampilot-status nil "The last teampilot/status notification.")

(defun teampilot--status (_workspace params)
  "Remember the teampilot/status PARAMS; show errors."
  (setq teampilot-status params)
  (when (equal (gethash "state" params) "error")
    (message "teampilot: %s" (gethash "message" params))))

(lsp-register-client
 (make-lsp-client
  :new-connection (lsp-stdio-connection (lambda () teampilot-server-command))
  :activation-fn (lsp-activate-on "python" "javascript" "typescript" "typescriptreact" "go" "rust" "java" "c" "cpp")
  :add-on? t
  :server-id 'teampilot
  :initialization-options (lambda () teampilot-settings)
  :notification-handlers (ht ("teampilot/status" #'teampilot--status))))

(defun teampilot-ask (question)
  "Ask teampilot QUESTION about the code at point, or about the region when it is active."
  (interactive (list (read-string "Ask teampilot: ")))
  (let ((argument (ht ("uri" (lsp--buffer-uri)) ("question" question))))
    (if (use-region-p)
        (puthash "range" (lsp--region-to-range (region-beginning) (region-end)) argument)
      (puthash "position" (lsp--cur-position) argument))
    (lsp-request-async "workspace/executeCommand"
                       (ht ("command" "teampilot.ask") ("arguments" (vector argument)))
                       #'ignore
                       :error-handler (lambda (err) (message "teampilot: %s" (lsp:json-error-message err))))))

;; Inline completion: C-c t i shows a suggestion; RET accepts it, TAB / C-n / C-p cycle, C-g dismisses.
;; Where lsp-mode has `lsp-inline-completion-mode', suggestions also appear as you type.
(with-eval-after-load 'lsp-mode
  (define-key lsp-mode-map (kbd "C-c t i") #'lsp-inline-completion-display)
  (define-key lsp-mode-map (kbd "C-c t c") #'lsp-execute-code-action)
  (define-key lsp-mode-map (kbd "C-c t a") #'teampilot-ask)
  (when (fboundp 'lsp-inline-completion-mode)
    (add-hook 'lsp-mode-hook #'lsp-inline-completion-mode)))

(provide 'teampilot-lsp-mode)
;;; teampilot-lsp-mode.el ends here
