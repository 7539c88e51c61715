;;; emacs_lsp_mode_check.el --- drive lsp-mode in batch mode with the shipped teampilot setup  -*- lexical-binding: t; -*-
;; Environment as for emacs_client_check.el, with TEAMPILOT_E2E_SETUP = editors/emacs/teampilot-lsp-mode.el.
;; Loads the shipped file (only the interpreter and the backend URL changed), starts lsp-mode in a
;; Python buffer, completes at point, tries inline completion where this lsp-mode has it, runs
;; teampilot-ask, and writes what happened as JSON.

(require 'json)
(require 'cl-lib)

(defvar e2e-result nil)
(defun e2e-put (key value) (setq e2e-result (plist-put e2e-result key value)))

(defun e2e-wait (predicate timeout)
  "Process output until PREDICATE is true or TIMEOUT seconds pass; return the last result."
  (let ((deadline (+ (float-time) timeout)) (value nil))
    (while (and (not (setq value (funcall predicate))) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    value))

(let ((out (getenv "TEAMPILOT_E2E_OUT")) (shown nil))
  (condition-case err
      (progn
        (setq teampilot-server-command (list (getenv "TEAMPILOT_E2E_PYTHON") "-m" "lsp" "--stdio"))
        (load (getenv "TEAMPILOT_E2E_SETUP") nil t)
        (puthash "url" (getenv "TEAMPILOT_E2E_URL") (gethash "backend" teampilot-settings))
        ;; Batch mode has no mode line or header line, and no session file to ask about.
        (setq lsp-modeline-workspace-status-enable nil lsp-modeline-code-actions-enable nil
              lsp-modeline-diagnostics-enable nil lsp-headerline-breadcrumb-enable nil
              lsp-auto-guess-root t lsp-enable-file-watchers nil lsp-enable-snippet nil
              lsp-session-file (expand-file-name "lsp-session" temporary-file-directory))
        ;; window/showMessage goes through this handler (lsp-mode 8 does not advertise showDocument).
        (advice-add 'lsp--window-show-message :before
                    (lambda (_workspace params) (push (gethash "message" params) shown)))
        (e2e-put :inline_available (if (fboundp 'lsp-inline-completion-display) t :json-false))
        (find-file (getenv "TEAMPILOT_E2E_FILE"))
        (lsp)
        (e2e-put :connected
                 (if (e2e-wait (lambda () (cl-some (lambda (w) (and (eq (lsp--workspace-status w) 'initialized)
                                                                   (eq (lsp--client-server-id (lsp--workspace-client w)) 'teampilot)))
                                                   (lsp-workspaces)))
                               60)
                     t :json-false))
        (goto-char (point-min))
        (forward-line (1- (string-to-number (getenv "TEAMPILOT_E2E_LINE"))))
        (end-of-line)
        (let ((start (point)))
          (e2e-put :candidates (vconcat (mapcar #'substring-no-properties
                                                (all-completions "" (nth 2 (lsp-completion-at-point))))))
          (completion-at-point)
          (e2e-put :line_after (buffer-substring-no-properties (line-beginning-position) (line-end-position)))
          (when (fboundp 'lsp-inline-completion-display)
            (delete-region start (line-end-position))
            (lsp-inline-completion-display)
            (when (bound-and-true-p lsp-inline-completion--items) (lsp-inline-completion-accept))
            (e2e-put :inline_line_after (buffer-substring-no-properties (line-beginning-position) (line-end-position)))))
        (let* ((workspace (cl-find-if (lambda (w) (eq (lsp--client-server-id (lsp--workspace-client w)) 'teampilot))
                                      (lsp-workspaces)))
               (provider (gethash "executeCommandProvider" (lsp--workspace-server-capabilities workspace)))
               (commands (and (hash-table-p provider) (append (gethash "commands" provider) nil)))
               (question (getenv "TEAMPILOT_E2E_ASK")))
          (e2e-put :ask_offered (if (member "teampilot.ask" commands) t :json-false))
          (when (and question (member "teampilot.ask" commands))
            (teampilot-ask question)
            (e2e-put :ask_answered (if (e2e-wait (lambda () (cl-some (lambda (m) (string-match-p "\\S-" m)) shown)) 60)
                                       t :json-false))))
        (e2e-put :shown (vconcat shown)))
    (error (e2e-put :error (error-message-string err))))
  (with-temp-file out (insert (json-encode e2e-result)))
  (kill-emacs 0))
