;; A WASI preview 1 command that uses the first preopened directory (fd 3):
;; creates `out.txt` in it, writes "written by wasi\n", closes it, opens it
;; again, reads it back and copies what it read to standard output.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close"
    (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; 0: iovec; 8: count; 12: opened fd; 64: path; 128: text; 256: read buffer.
  (data (i32.const 64) "out.txt")
  (data (i32.const 128) "written by wasi\n")

  ;; Exits with `code` if `errno` is not 0.
  (func $check (param $errno i32) (param $code i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $code)))))

  ;; Opens out.txt in fd 3 with `oflags`; returns the new fd.
  (func $open (param $oflags i32) (result i32)
    (call $check
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 7)
        (local.get $oflags) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 12))
      (i32.const 10))
    (i32.load (i32.const 12)))

  (func (export "_start")
    (local $fd i32)
    ;; O_CREAT | O_TRUNC
    (local.set $fd (call $open (i32.const 9)))
    (i32.store (i32.const 0) (i32.const 128))
    (i32.store (i32.const 4) (i32.const 16))
    (call $check (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))
      (i32.const 11))
    (call $check (call $fd_close (local.get $fd)) (i32.const 12))
    (local.set $fd (call $open (i32.const 0)))
    (i32.store (i32.const 0) (i32.const 256))
    (i32.store (i32.const 4) (i32.const 100))
    (call $check (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))
      (i32.const 13))
    (call $check (call $fd_close (local.get $fd)) (i32.const 14))
    (i32.store (i32.const 4) (i32.load (i32.const 8)))
    (call $check (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
      (i32.const 15)))
)
