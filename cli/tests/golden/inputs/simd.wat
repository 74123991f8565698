;; Uses SIMD (a v128 constant), for the feature flags.
(module
  (import "env" "sleep" (func $sleep))
  (memory 1)
  (func (export "run") (result i32)
    (call $sleep)
    (i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4))))
