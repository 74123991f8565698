;; Merged dispatch: one function with three suspension points in its body.
;; The output's prologue pops one frame and a single `br_table` on the
;; point index jumps to the block before each call; nearby points share
;; the code that writes the frame.
(module
  (import "env" "sleep" (func $sleep (param i32) (result i32)))
  (memory 1)
  (func $three (export "three") (param $x i32) (result i32)
    (local $a i32) (local $b i32)
    (local.set $a (call $sleep (local.get $x)))
    (local.set $b (call $sleep (local.get $a)))
    (i32.add (local.get $b) (call $sleep (local.get $b)))))
