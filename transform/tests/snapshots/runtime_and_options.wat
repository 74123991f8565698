;; options: asyncify-import-globals asyncify-export-globals asyncify-asserts
;; The runtime with options: the two globals imported from `env` and
;; exported, a guest import of `asyncify.get_state` turned into a call of the
;; generated function, and asserts after calls in code that is not
;; instrumented.
(module
  (import "env" "sleep" (func $sleep (param i32)))
  (import "asyncify" "get_state" (func $state (result i32)))
  (memory 1)
  (global $g (mut i32) (i32.const 7))
  (func $pure (param i32) (result i32) (i32.add (local.get 0) (global.get $g)))
  (func $main (export "main") (param $x i32) (result i32)
    (call $sleep (call $pure (local.get $x)))
    (call $state)))
