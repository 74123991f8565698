;; Range test: the leading item (the `if`) holds nine points, so the
;; dispatch reaches it with one unsigned comparison on the point index
;; (`i32.lt_u`, `br_if`) instead of nine `br_table` entries; the `if` then
;; dispatches among its own points.
(module
  (import "env" "sleep" (func $sleep (param i32)))
  (memory 1)
  (func $many (export "many") (param $x i32)
    (if (local.get $x)
      (then
        (call $sleep (i32.const 1))
        (call $sleep (i32.const 2))
        (call $sleep (i32.const 3))
        (call $sleep (i32.const 4))
        (call $sleep (i32.const 5))
        (call $sleep (i32.const 6))
        (call $sleep (i32.const 7))
        (call $sleep (i32.const 8))
        (call $sleep (i32.const 9))))
    (call $sleep (local.get $x))))
