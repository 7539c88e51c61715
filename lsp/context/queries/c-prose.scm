; @prose: comments and strings that may fill whole lines: a name there is mentioned, not used.
(comment) @prose
