;; An export that reaches an import through a helper: the transform has work to do.
(module
  (import "env" "sleep" (func $sleep (param i32)))
  (memory (export "memory") 1)
  (func $helper (param i32) (call $sleep (local.get 0)))
  (func $run (export "run") (call $helper (i32.const 10))))
