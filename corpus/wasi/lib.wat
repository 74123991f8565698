;; A library for `asyncify run --preload lib=...`: `triple(x)` yields to the
;; host (the built-in `asyncify_host.yield`) and returns 3x, so that with
;; --instrument a call into it from another module suspends both modules.
(module
  (import "asyncify_host" "yield" (func $yield))
  (memory (export "memory") 1)
  (func (export "triple") (param $x i32) (result i32)
    (call $yield)
    (i32.mul (local.get $x) (i32.const 3)))
)
