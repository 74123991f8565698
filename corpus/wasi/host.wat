;; Uses `asyncify run`'s built-in async imports: `_start` sleeps 50 ms,
;; yields, draws a random number, and prints "slept, yielded, drew\n".
;; Export `nap(ms) -> ms` sleeps and returns its argument (for --invoke).
(module
  (import "asyncify_host" "sleep_ms" (func $sleep_ms (param i32)))
  (import "asyncify_host" "yield" (func $yield))
  (import "asyncify_host" "random_u32" (func $random_u32 (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "slept, yielded, drew\n")

  (func (export "_start")
    (call $sleep_ms (i32.const 50))
    (call $yield)
    (drop (call $random_u32))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 21))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func (export "nap") (param $ms i32) (result i32)
    (call $sleep_ms (local.get $ms))
    (local.get $ms))
)
