; Definitions: @definition.<kind> on the whole node, @name on its name.
(function_definition name: (identifier) @name) @definition.function
(class_definition name: (identifier) @name) @definition.class
(module
  (expression_statement
    (assignment left: (identifier) @name) @definition.constant))
