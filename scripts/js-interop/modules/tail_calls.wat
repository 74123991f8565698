;; Tail calls that may suspend, under the JS runtime: a chain of `return_call`s
;; to a function that awaits; `return_call` to the import itself, outside and
;; inside a legacy `try` (there it goes through the import's generated
;; wrapper, so the function's handler does not wrap the import); and
;; `return_call_indirect` through a table that holds the import (the wrapper
;; replaces it in the table).
;; asyncify-imports: env.fetch
(module
  (import "env" "fetch" (func $fetch (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $t (func (param i32) (result i32)))
  (tag $e (param i32))
  (table 3 funcref)
  (elem (i32.const 0) func $fetch $twice $step)

  (func $twice (param $x i32) (result i32)
    (i32.add (call $fetch (local.get $x)) (call $fetch (i32.add (local.get $x) (i32.const 1)))))

  ;; a -> b -> twice, all tail calls, values kept in locals around awaits.
  (func $step (param $x i32) (result i32)
    (local $k i32)
    (local.set $k (call $fetch (local.get $x)))
    (return_call $twice (i32.add (local.get $x) (local.get $k))))
  (func (export "chain") (param $x i32) (result i32)
    (i32.mul (call $step (local.get $x)) (i32.const 3)))

  (func $to_import (param $x i32) (result i32)
    (return_call $fetch (i32.add (local.get $x) (i32.const 7))))
  (func (export "to_import") (param $x i32) (result i32)
    (i32.add (call $to_import (local.get $x)) (local.get $x)))

  (func $in_try (param $x i32) (result i32)
    try (result i32)
      (drop (call $fetch (local.get $x)))
      (return_call $fetch (i32.add (local.get $x) (i32.const 1)))
    catch $e
      (i32.add (i32.const 5000))
    end)
  (func (export "in_try") (param $x i32) (result i32)
    (i32.add (call $in_try (local.get $x)) (i32.const 1)))

  (func $indirect (param $x i32) (param $i i32) (result i32)
    (return_call_indirect (type $t) (local.get $x) (local.get $i)))
  (func (export "indirect") (param $x i32) (param $i i32) (result i32)
    (i32.sub (call $indirect (local.get $x) (local.get $i)) (i32.const 2))))
