(method_invocation name: (identifier) @call)
(object_creation_expression type: (type_identifier) @call)
(type_identifier) @reference
(identifier) @reference
