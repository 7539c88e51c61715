; @prose: comments and strings that may fill whole lines: a name there is mentioned, not used.
; (one-line strings are left out: a line is never one alone, and there are many)
(comment) @prose
(template_string) @prose
