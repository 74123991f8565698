;; The project's demo module: a small program that waits on its host.
;;
;; `run(n)` walks a recursive tree of depth `n`; at every node it asks the
;; host for a value through `env.fetch` (an import a host would serve
;; asynchronously: a network or disk read) and folds the answers into a
;; checksum kept in memory. `asyncify instrument` (with no input) uses this
;; module as its embedded default.
(module
  (import "env" "fetch" (func $fetch (param i32) (result i32)))
  (import "env" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 64) "node")

  (func $node (param $depth i32) (param $key i32) (result i64)
    (local $sum i64)
    (local $i i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    ;; The value left on the stack across the call must survive a suspension.
    (local.set $sum
      (i64.add
        (i64.extend_i32_u (local.get $key))
        (i64.extend_i32_u (call $fetch (local.get $key)))))
    (if (i32.gt_s (local.get $depth) (i32.const 0))
      (then
        (loop $children
          (local.set $sum
            (i64.add
              (local.get $sum)
              (call $node
                (i32.sub (local.get $depth) (i32.const 1))
                (i32.add (i32.mul (local.get $key) (i32.const 3)) (local.get $i)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $children (i32.lt_u (local.get $i) (i32.const 3))))))
    (i64.store (i32.const 128) (i64.add (i64.load (i32.const 128)) (local.get $sum)))
    (local.get $sum))

  (func (export "run") (param $depth i32) (result i64)
    (call $log (i32.const 64) (i32.const 4))
    (call $node (local.get $depth) (i32.const 1)))

  (func (export "calls") (result i32) (global.get $calls)))
