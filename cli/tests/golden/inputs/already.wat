;; The shape of a module asyncify (or Binaryen) already instrumented: the
;; five asyncify exports and the state globals.
(module
  (import "env" "sleep" (func $sleep))
  (memory (export "memory") 1)
  (global $state (mut i32) (i32.const 0))
  (global $data (mut i32) (i32.const 0))
  (func (export "run") (call $sleep))
  (func (export "asyncify_start_unwind") (param i32)
    (global.set $state (i32.const 1)) (global.set $data (local.get 0)))
  (func (export "asyncify_stop_unwind") (global.set $state (i32.const 0)))
  (func (export "asyncify_start_rewind") (param i32)
    (global.set $state (i32.const 2)) (global.set $data (local.get 0)))
  (func (export "asyncify_stop_rewind") (global.set $state (i32.const 0)))
  (func (export "asyncify_get_state") (result i32) (global.get $state)))
