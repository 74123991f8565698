;; Locals that only an exception handler reads (issue 12, item 1), with
;; legacy `try`: a local written before a call that suspends and then throws
;; must be saved, although the normal path after the call never reads it.
;; `run` is the issue's example: run(1) returns 42.
;; asyncify-imports: env.fetch
(module
  (import "env" "fetch" (func $fetch (param i32) (result i32)))
  (memory (export "memory") 1)
  (tag $e)
  (tag $p (param i32))

  ;; Awaits, then throws $e for odd inputs.
  (func $maybe (param $x i32) (result i32) (local $v i32)
    (local.set $v (call $fetch (local.get $x)))
    (if (i32.and (local.get $x) (i32.const 1)) (then (throw $e)))
    (local.get $v))

  (func (export "run") (param $x i32) (result i32) (local $acc i32)
    (local.set $acc (i32.const 42))
    try
      (local.set $acc (call $maybe (local.get $x)))
    catch_all
    end
    (local.get $acc))

  ;; Read only in a `catch $e` handler.
  (func (export "in_catch") (param $x i32) (result i32) (local $saved i32)
    (local.set $saved (i32.mul (local.get $x) (i32.const 100)))
    try (result i32)
      (drop (call $maybe (local.get $x)))
      (local.set $saved (i32.const -5))
      (i32.const 0)
    catch $e
      (local.get $saved)
    end)

  ;; In a loop, with a write after the call in the same straight-line code.
  (func (export "in_loop") (param $n i32) (result i32)
    (local $i i32) (local $sum i32) (local $last i32)
    (loop $again
      (local.set $last (i32.const 3))
      try
        (local.set $sum (i32.add (local.get $sum) (call $maybe (local.get $i))))
        (local.set $last (i32.const 1))
      catch_all
        (local.set $sum (i32.add (local.get $sum) (i32.mul (local.get $last) (i32.const 1000))))
      end
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $sum))

  ;; An inner try delegates to the outer one, whose handler reads the local.
  (func (export "delegated") (param $x i32) (result i32) (local $keep i32)
    (local.set $keep (i32.add (local.get $x) (i32.const 500)))
    try (result i32)
      try (result i32)
        (call $maybe (local.get $x))
        (local.set $keep (i32.const 0))
      delegate 0
    catch_all
      (local.get $keep)
    end)

  ;; The inner try catches only $p; $e goes on to the outer handler.
  (func (export "nested") (param $x i32) (result i32) (local $a i32)
    (local.set $a (i32.const 77))
    try (result i32)
      try (result i32)
        (local.set $a (call $maybe (local.get $x)))
        (i32.const 1)
      catch $p
      end
    catch_all
      (local.get $a)
    end))
