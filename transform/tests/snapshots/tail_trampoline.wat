;; Tail trampoline: `return_call` to a function that may suspend. Frames
;; record their owner's id, and a rewind enters the callee of the tail call
;; through a generated trampoline (one per result type) that dispatches on
;; that id.
(module
  (import "env" "sleep" (func $sleep (param i32) (result i32)))
  (memory 1)
  (func $count (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (call $sleep (i32.const 0)))
      (else (return_call $count (i32.sub (local.get $n) (i32.const 1))))))
  (func $start (export "start") (param $n i32) (result i32)
    (return_call $count (local.get $n))))
