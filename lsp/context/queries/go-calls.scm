(call_expression function: (identifier) @call)
(call_expression function: (selector_expression field: (field_identifier) @call))
(composite_literal type: (type_identifier) @call)
(selector_expression field: (field_identifier) @reference)
(type_identifier) @reference
(identifier) @reference
