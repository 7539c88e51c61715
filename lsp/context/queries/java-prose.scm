; @prose: comments and strings that may fill whole lines: a name there is mentioned, not used.
(line_comment) @prose
(block_comment) @prose
(string_literal (multiline_string_fragment)) @prose
