;;; teampilot-eglot.el --- teampilot in Emacs through eglot  -*- lexical-binding: t; -*-
;; eglot is built in from Emacs 29 (Emacs 28: `apt install elpa-eglot' or M-x package-install eglot).
;; Load it from your init file:  (load "~/.emacs.d/teampilot-eglot.el")
;; `python -m lsp setup emacs --write' writes this file with your backend URL and key.
;; eglot runs one language server per buffer: for these modes teampilot replaces any other server.

(require 'eglot)
(require 'cl-lib)

(defvar teampilot-server-command '("python3" "-m" "lsp" "--stdio")
  "How to start the teampilot language server.")

(defvar teampilot-settings
  '(:backend (:url "http://127.0.0.1:8000/v1" :apiKey "" :model "")
    :completion (:enabled t :debounceMs 75 :maxTokens 128 :timeoutMs 5000))
  "teampilot settings, sent as initializationOptions.")

(defvar teampilot-modes
  '(python-mode python-ts-mode js-mode js-ts-mode typescript-mode typescript-ts-mode tsx-ts-mode
    go-mode go-ts-mode rust-mode rust-ts-mode java-mode java-ts-mode c-mode c-ts-mode c++-mode c++-ts-mode)
  "Major modes in which eglot talks to teampilot.")

(defvar teampilot-status nil "The last teampilot/status notification (a plist).")

(defclass teampilot-eglot-server (eglot-lsp-server) ()
  :documentation "The teampilot language server.")

(cl-defmethod eglot-initialization-options ((_server teampilot-eglot-server))
  teampilot-settings)

(cl-defmethod eglot-handle-notification ((_server teampilot-eglot-server) (_method (eql teampilot/status))
                                        &key state message model &allow-other-keys)
  (setq teampilot-status (list :state state :message message :model model))
  (when (equal state "error")
    (message "teampilot: %s" message)))

(add-to-list 'eglot-server-programs
             `(,teampilot-modes . (teampilot-eglot-server ,@teampilot-server-command)))

(defun teampilot-ask (question)
  "Ask teampilot QUESTION about the code at point, or about the region when it is active.
The answer opens as a Markdown buffer (or arrives as a message)."
  (interactive (list (read-string "Ask teampilot: ")))
  (let* ((server (eglot-current-server))
         (uri (plist-get (eglot--TextDocumentIdentifier) :uri))
         (where (if (use-region-p)
                    (list :range (list :start (eglot--pos-to-lsp-position (region-beginning))
                                       :end (eglot--pos-to-lsp-position (region-end))))
                  (list :position (eglot--pos-to-lsp-position (point))))))
    (unless server (user-error "teampilot: eglot is not running in this buffer (M-x eglot)"))
    (jsonrpc-async-request server :workspace/executeCommand
                           (list :command "teampilot.ask"
                                 :arguments (vector (append (list :uri uri :question question) where)))
                           :success-fn #'ignore
                           :error-fn (lambda (err) (message "teampilot: %s" (plist-get err :message))))))

;; Keys: completion fallback with C-M-i (or company/corfu), code actions, questions.
(with-eval-after-load 'eglot
  (define-key eglot-mode-map (kbd "C-c t c") #'eglot-code-actions)
  (define-key eglot-mode-map (kbd "C-c t a") #'teampilot-ask))

(dolist (mode teampilot-modes)
  (add-hook (intern (format "%s-hook" mode)) #'eglot-ensure))

(provide 'teampilot-eglot)
;;; teampilot-eglot.el ends here
