;; Reference tables: a `funcref` and an `externref` live across a
;; suspension. Frames hold bytes, so each reference type gets a table (and
;; two globals: the next free slot and the count of live slots); the frame
;; keeps the slot index.
(module
  (import "env" "sleep" (func $sleep (param i32) (result i32)))
  (memory 1)
  (table 1 funcref)
  (elem declare func $id)
  (func $id (param i32) (result i32) (local.get 0))
  (func $refs (export "refs") (param $x i32) (param $e externref) (result i32)
    (local $f funcref)
    (local.set $f (ref.func $id))
    (drop (call $sleep (local.get $x)))
    (table.set 0 (i32.const 0) (local.get $f))
    (i32.add (ref.is_null (local.get $e)) (ref.is_null (local.get $f)))))
