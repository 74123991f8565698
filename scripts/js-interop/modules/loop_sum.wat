;; An async import returning a Promise<i32>, awaited on every iteration of a
;; loop that accumulates a sum. Many iterations: if an unwind/rewind cycle left
;; the buffer's `cur` anywhere but where it started, the runtime's 1000-byte
;; buffer would overflow long before the loop ends.
;; asyncify-imports: env.next_value
(module
  (import "env" "next_value" (func $next_value (param i32) (result i32)))
  (memory (export "memory") 1)

  (func (export "sum") (param $n i32) (result i32)
    (local $i i32)
    (local $acc i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $acc
          (i32.add (local.get $acc) (call $next_value (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (local.get $acc))

  ;; The same loop, but the running sum lives in memory above the runtime's
  ;; area (2048+), so memory writes between suspensions are checked too.
  (func (export "sum_in_memory") (param $n i32) (result i32)
    (local $i i32)
    (i32.store (i32.const 4096) (i32.const 0))
    (block $done
      (loop $again
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (i32.store (i32.const 4096)
          (i32.add (i32.load (i32.const 4096))
                   (call $next_value (i32.mul (local.get $i) (i32.const 3)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (i32.load (i32.const 4096)))
)
