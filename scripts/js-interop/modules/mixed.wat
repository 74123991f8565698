;; Sync imports mixed with an async one. The sync imports have side effects
;; the checker records (log) and results that feed the computation (combine);
;; code before the suspension point must not run again on rewind, so every
;; sync call must happen exactly once, in the same order as without asyncify.
;; asyncify-imports: env.sleep_value
(module
  (import "env" "log" (func $log (param i32)))
  (import "env" "combine" (func $combine (param i32 i32) (result i32)))
  (import "env" "sleep_value" (func $sleep_value (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $steps (mut i32) (i32.const 0))

  (func $step (param $x i32) (result i32)
    (local $v i32)
    (call $log (local.get $x))
    (global.set $steps (i32.add (global.get $steps) (i32.const 1)))
    (local.set $v (call $sleep_value (local.get $x)))
    (call $log (local.get $v))
    (call $combine (local.get $x) (local.get $v)))

  (func (export "run") (param $n i32) (result i32)
    (local $i i32)
    (local $acc i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $acc
          (call $combine (local.get $acc) (call $step (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (call $log (i32.const -1))
    (local.get $acc))

  (func (export "steps") (result i32) (global.get $steps))
)
