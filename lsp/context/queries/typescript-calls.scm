(call_expression function: (identifier) @call)
(call_expression function: (member_expression property: (property_identifier) @call))
(new_expression constructor: (identifier) @call)
(member_expression property: (property_identifier) @reference)
(type_identifier) @reference
(identifier) @reference
