;; A WASI preview 1 command that writes from deep recursion: `_start` calls
;; `$down(300)`, and every level writes its depth before and after the call
;; below it ("300 ", "299 ", ..., "1 ", then "1 " ... "300 " and a newline).
;; With `asyncify run --instrument --async-wasi` every write unwinds and
;; rewinds the whole recursion. Exits normally (code 0).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; Writes `n` in decimal and a space (built downward from address 80).
  (func $number (param $n i32)
    (local $p i32)
    (local.set $p (i32.const 80))
    (i32.store8 (local.get $p) (i32.const 32))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digit (local.get $n)))
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (i32.sub (i32.const 81) (local.get $p)))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  ;; Returns the sum of the depths below and including `n`, so that values
  ;; live across the writes are checked too.
  (func $down (param $n i32) (result i32)
    (local $below i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))
    (call $number (local.get $n))
    (local.set $below (call $down (i32.sub (local.get $n) (i32.const 1))))
    (call $number (local.get $n))
    (i32.add (local.get $n) (local.get $below)))

  (func (export "_start")
    ;; 300 * 301 / 2 = 45150
    (call $number (call $down (i32.const 300)))
    (i32.store8 (i32.const 96) (i32.const 10))
    (i32.store (i32.const 0) (i32.const 96))
    (i32.store (i32.const 4) (i32.const 1))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
)
