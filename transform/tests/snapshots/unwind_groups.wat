;; Unwind groups: the points have different live locals. By default nearby
;; points share one frame-writing block that writes the union of what they
;; need (see exact_saves.wat for the same input with --exact-saves).
(module
  (import "env" "sleep" (func $sleep (param i32) (result i32)))
  (memory 1)
  (func $mix (export "mix") (param $x i32) (param $y i64) (result i64)
    (local $a i32) (local $f f64)
    (local.set $a (call $sleep (local.get $x)))
    (local.set $f (f64.convert_i32_s (call $sleep (local.get $a))))
    (drop (call $sleep (i32.trunc_f64_s (local.get $f))))
    (i64.add (local.get $y) (i64.extend_i32_s (local.get $a)))))
