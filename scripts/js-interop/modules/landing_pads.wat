;; C++ landing pads as `-fwasm-exceptions` emits them (issue 12, item 4): a
;; `catch_all` handler runs destructors, which may await, then `rethrow`s.
;; The transform records the exception's tag and payload on its way into the
;; handler, so that a rewind can throw it again and the `rethrow` after the
;; await passes on the same tag and values. Covered: a pad that awaits then
;; rethrows to a `catch $cpp` in the caller; two nested pads; a pad beside an
;; explicit `catch` clause; an exception escaping to JS after a pad awaited;
;; a second tag with a two-value payload; and a host (JS) exception passing
;; through a pad that does not await (an await there would trap: the module
;; cannot name a JS exception's tag).
;; asyncify-imports: env.fetch
(module
  (import "env" "fetch" (func $fetch (param i32) (result i32)))
  (import "env" "boom" (func $boom (param i32)))
  (memory (export "memory") 1)
  (tag $cpp (export "cpp") (param i32))
  (tag $jmp (export "jmp") (param i32 i64))

  ;; A destructor that awaits: it writes what the host answers into the object.
  (func $dtor (param $obj i32)
    (i32.store (local.get $obj)
      (i32.add (i32.load (local.get $obj)) (call $fetch (local.get $obj)))))

  (func $work (param $x i32) (result i32) (local $obj i32)
    (local.set $obj (i32.add (i32.const 2048) (i32.shl (i32.and (local.get $x) (i32.const 7)) (i32.const 2))))
    try (result i32)
      (drop (call $fetch (local.get $x)))
      (if (i32.and (local.get $x) (i32.const 1))
        (then (throw $cpp (i32.add (local.get $x) (i32.const 100)))))
      (i32.const 7)
    catch_all
      (call $dtor (local.get $obj))
      (rethrow 0)
    end
    (call $dtor (local.get $obj)))

  (func (export "caller") (param $x i32) (result i32)
    try (result i32)
      (call $work (local.get $x))
    catch $cpp
      (i32.add (call $fetch (i32.const 5)))
    end)

  ;; Two pads, one inside the other's try body, both awaiting.
  (func $outer_pad (param $x i32) (result i32) (local $obj i32)
    (local.set $obj (i32.const 2100))
    try (result i32)
      (local.set $x (i32.add (local.get $x) (call $fetch (i32.const 1))))
      (call $work (local.get $x))
    catch_all
      (call $dtor (local.get $obj))
      (call $dtor (i32.const 2104))
      (rethrow 0)
    end)
  (func (export "nested_pads") (param $x i32) (result i32)
    try (result i32)
      (call $outer_pad (local.get $x))
    catch $cpp
    end)

  ;; A pad beside a `catch $jmp` clause: $jmp is caught by its clause, $cpp
  ;; goes through the pad.
  (func (export "beside_catch") (param $x i32) (param $kind i32) (result i32)
    try (result i32)
      try (result i32)
        (drop (call $fetch (local.get $x)))
        (if (i32.eq (local.get $kind) (i32.const 1))
          (then (throw $jmp (local.get $x) (i64.const 0x100000001))))
        (if (i32.eq (local.get $kind) (i32.const 2))
          (then (throw $cpp (local.get $x))))
        (i32.const 0)
      catch $jmp
        (drop)
        (i32.add (call $fetch (i32.const 3)))
      catch_all
        (call $dtor (i32.const 2200))
        (rethrow 0)
      end
    catch $cpp
      (i32.sub (i32.const 0))
    end)

  ;; The exception escapes to JS after the pad awaited.
  (func (export "escapes") (param $x i32) (result i32)
    (call $work (i32.or (local.get $x) (i32.const 1))))

  ;; A JS exception through a pad; the pad awaits only when $suspend is set,
  ;; which these calls never do with a JS exception.
  (func (export "host_exception") (param $x i32) (param $suspend i32) (result i32)
    try (result i32)
      (call $boom (local.get $x))
      (i32.const 1)
    catch_all
      (if (local.get $suspend) (then (call $dtor (i32.const 2300))))
      (rethrow 0)
    end))
