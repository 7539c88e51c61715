;;; emacs_client_check.el --- drive eglot in batch mode with the shipped teampilot setup  -*- lexical-binding: t; -*-
;; Environment: TEAMPILOT_E2E_SETUP (editors/emacs/teampilot-eglot.el), TEAMPILOT_E2E_PYTHON,
;; TEAMPILOT_E2E_URL, TEAMPILOT_E2E_FILE, TEAMPILOT_E2E_LINE (1-based), TEAMPILOT_E2E_OUT.
;; Loads the shipped file (only the interpreter and the backend URL changed), opens the file, lets
;; eglot connect as it does after a command, completes at the end of the given line with
;; `completion-at-point', and writes what happened as JSON.

(require 'json)
(require 'cl-lib)

(defvar e2e-result nil)
(defvar e2e-shown nil "What the server showed: window/showMessage and window/showDocument params.")

(with-eval-after-load 'eglot
  (advice-add 'eglot-handle-notification :before
              (lambda (_server method &rest params)
                (when (eq method 'window/showMessage) (push params e2e-shown))))
  (advice-add 'eglot-handle-request :before
              (lambda (_server method &rest params)
                (when (eq method 'window/showDocument) (push params e2e-shown)))))
(defun e2e-put (key value) (setq e2e-result (plist-put e2e-result key value)))

(defun e2e-wait (predicate timeout)
  "Process output until PREDICATE is true or TIMEOUT seconds pass; return the last result."
  (let ((deadline (+ (float-time) timeout)) (value nil))
    (while (and (not (setq value (funcall predicate))) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    value))

(let ((out (getenv "TEAMPILOT_E2E_OUT")))
  (condition-case err
      (progn
        ;; The interpreter that has teampilot installed (users set this the same way).
        (setq teampilot-server-command (list (getenv "TEAMPILOT_E2E_PYTHON") "-m" "lsp" "--stdio"))
        (load (getenv "TEAMPILOT_E2E_SETUP") nil t)
        ;; Only the URL differs from the shipped settings.
        (let ((backend (copy-tree (plist-get teampilot-settings :backend))))
          (setq teampilot-settings
                (plist-put (copy-tree teampilot-settings) :backend (plist-put backend :url (getenv "TEAMPILOT_E2E_URL")))))
        (e2e-put :eglot_version (or (bound-and-true-p eglot-version) (ignore-errors (package-get-version)) "unknown"))
        (find-file (getenv "TEAMPILOT_E2E_FILE"))
        (e2e-put :major_mode (symbol-name major-mode))
        ;; eglot-ensure (hooked by the setup) connects after the current command finishes.
        (run-hooks 'post-command-hook)
        (e2e-put :connected (and (e2e-wait (lambda () (and (eglot-current-server) (eglot-managed-p))) 60) t))
        (unless (eglot-current-server) (error "eglot did not connect"))
        (e2e-put :server_class (symbol-name (eieio-object-class-name (eglot-current-server))))
        (goto-char (point-min))
        (forward-line (1- (string-to-number (getenv "TEAMPILOT_E2E_LINE"))))
        (end-of-line)
        (let* ((capf (eglot-completion-at-point))
               (table (nth 2 capf)))
          (e2e-put :candidates (vconcat (all-completions "" table))))
        (completion-at-point)
        (e2e-put :line_after (buffer-substring-no-properties (line-beginning-position) (line-end-position)))
        (e2e-put :buffer (buffer-substring-no-properties (point-min) (point-max)))
        ;; teampilot-ask (the shipped command, question given as its argument as the minibuffer would)
        (let* ((caps (eglot--capabilities (eglot-current-server)))
               (commands (append (plist-get (plist-get caps :executeCommandProvider) :commands) nil))
               (question (getenv "TEAMPILOT_E2E_ASK")))
          (e2e-put :ask_offered (if (member "teampilot.ask" commands) t :json-false))
          (when (and question (member "teampilot.ask" commands))
            (teampilot-ask question)
            (e2e-put :ask_answered
                     (if (e2e-wait (lambda () e2e-shown) 60) t :json-false))
            (e2e-put :shown (vconcat e2e-shown)))))
    (error (e2e-put :error (error-message-string err))))
  (with-temp-file out (insert (json-encode e2e-result)))
  (kill-emacs 0))
