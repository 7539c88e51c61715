; @prose: comments and strings that may fill whole lines: a name there is mentioned, not used.
; (interpreted strings are left out: they never span lines)
(comment) @prose
(raw_string_literal) @prose
