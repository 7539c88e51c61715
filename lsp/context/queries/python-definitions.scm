; Definitions: @definition.<kind> on the whole node, @name on its name.
(function_definition name: (identifier) @name) @definition.function
(class_definition name: (identifier) @name) @definition.class
; module constants and type aliases: UPPER_CASE / CapWords names assigned at top level
(module
  (expression_statement
    (assignment left: (identifier) @name) @definition.constant)
  (#match? @name "^_?[A-Z]"))
