;; No memory: the unwind buffer has nowhere to live without --secondary-memory.
(module
  (import "env" "sleep" (func $sleep))
  (func (export "run") (call $sleep)))
