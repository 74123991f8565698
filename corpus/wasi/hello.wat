;; A WASI preview 1 command: prints a greeting, then its arguments (after
;; argv[0]) one per line, then the value of the environment variable
;; `GREETING` if set, and exits with code 3 through `proc_exit`.
;; Used by `asyncify run`'s tests (cli/tests/run.rs).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; 0..16: scratch (iovec, counts); 64: text; 1024: argv/environ pointers;
  ;; 4096: their strings.
  (data (i32.const 64) "hello from wasi\n")
  (data (i32.const 80) "GREETING=")

  ;; Writes `len` bytes at `ptr` to standard output.
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  ;; Length of the NUL-terminated string at `ptr`.
  (func $strlen (param $ptr i32) (result i32)
    (local $end i32)
    (local.set $end (local.get $ptr))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (local.get $end))))
        (local.set $end (i32.add (local.get $end) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $end) (local.get $ptr)))

  ;; Writes the NUL-terminated string at `ptr` and a newline.
  (func $line (param $ptr i32)
    (local $len i32)
    (local.set $len (call $strlen (local.get $ptr)))
    ;; Replace the NUL with a newline for the write.
    (i32.store8 (i32.add (local.get $ptr) (local.get $len)) (i32.const 10))
    (call $write (local.get $ptr) (i32.add (local.get $len) (i32.const 1))))

  ;; Whether the string at `ptr` starts with "GREETING=".
  (func $is_greeting (param $ptr i32) (result i32)
    (local $i i32)
    (block $no
      (loop $next
        (br_if $no (i32.ne (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))
                           (i32.load8_u (i32.add (i32.const 80) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (i32.const 9))))
      (return (i32.const 1)))
    (i32.const 0))

  (func (export "_start")
    (local $i i32)
    (local $n i32)
    (call $write (i32.const 64) (i32.const 16))
    ;; Arguments.
    (drop (call $args_sizes_get (i32.const 8) (i32.const 12)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (local.set $n (i32.load (i32.const 8)))
    (local.set $i (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $line (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    ;; Environment: print GREETING=... if present.
    (drop (call $environ_sizes_get (i32.const 8) (i32.const 12)))
    (drop (call $environ_get (i32.const 1024) (i32.const 4096)))
    (local.set $n (i32.load (i32.const 8)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (if (call $is_greeting (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
          (then (call $line (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $proc_exit (i32.const 3))
    unreachable)
)
