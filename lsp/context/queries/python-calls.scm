; @call: the name a call invokes; @reference: other names the code uses.
(call function: (identifier) @call)
(call function: (attribute attribute: (identifier) @call))
(decorator (identifier) @call)
(attribute attribute: (identifier) @reference)
(identifier) @reference
