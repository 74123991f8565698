;; Imports `lib.triple` (see lib.wat, linked with --preload lib=lib.wasm).
;; `run(x)` returns triple(x) + 1; `mix` takes and returns one value of every
;; number type, for --invoke's parsing and printing.
(module
  (import "lib" "triple" (func $triple (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (param $x i32) (result i32)
    (i32.add (call $triple (local.get $x)) (i32.const 1)))
  (func (export "mix") (param $a i32) (param $b i64) (param $c f32) (param $d f64)
    (result f64 f32 i64 i32)
    (local.get $d) (local.get $c) (local.get $b) (local.get $a))
)
