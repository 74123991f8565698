;; Suspensions inside legacy `catch` and `catch_all` handlers: a rewind
;; re-enters the handler (the transform throws again at the start of the try
;; body: the tag with the payload saved on the first entry, or its own tag for
;; `catch_all`), and the handler goes on from the point where it stopped.
;; Covered: payload used after an await, payload left on the operand stack
;; across an await, several awaits in one handler, `rethrow` after an await
;; (the outer handler must see the same payload), nested trys inside a
;; handler, a handler inside a loop, a multi-value payload, and a function
;; whose only await is in a handler.
;; asyncify-imports: env.fetch
(module
  (import "env" "fetch" (func $fetch (param i32) (result i32)))
  (memory (export "memory") 1)
  (tag $e (param i32))
  (tag $pair (param i32 i64))
  (tag $other)

  (func $maybe_throw (param $x i32)
    (if (i32.and (local.get $x) (i32.const 1))
      (then (throw $e (i32.mul (local.get $x) (i32.const 3))))))

  ;; The payload goes to a local, then the handler awaits twice.
  (func (export "payload_in_local") (param $x i32) (result i32)
    (local $p i32)
    try (result i32)
      (call $maybe_throw (call $fetch (local.get $x)))
      (i32.const 1)
    catch $e
      (local.set $p)
      (local.set $p (i32.add (local.get $p) (call $fetch (local.get $p))))
      (i32.add (local.get $p) (call $fetch (i32.const 9)))
    end)

  ;; The payload stays on the operand stack under the await.
  (func (export "payload_on_stack") (param $x i32) (result i32)
    try (result i32)
      (throw $e (local.get $x))
    catch $e
      (i32.add (call $fetch (i32.const 7)))
    end)

  ;; catch_all: awaits in the handler, in a function with a point before the try.
  (func (export "catch_all") (param $x i32) (result i32)
    (local $a i32)
    (local.set $a (call $fetch (local.get $x)))
    try (result i32)
      (if (i32.and (local.get $a) (i32.const 1))
        (then (throw $other)))
      (local.get $a)
    catch $e
      (drop)
      (i32.const -5)
    catch_all
      (i32.add (call $fetch (local.get $a)) (call $fetch (i32.const 2)))
    end)

  ;; Await in the handler, then rethrow: the outer handler must see the
  ;; original payload.
  (func (export "rethrow") (param $x i32) (result i32)
    try (result i32)
      try (result i32)
        (throw $e (i32.add (local.get $x) (i32.const 40)))
      catch $e
        (drop (call $fetch (i32.const 1)))
        (drop)
        (rethrow 0)
      end
    catch $e
      (i32.add (call $fetch (i32.const 2)))
    end)

  ;; A try inside a handler: its body awaits and throws, its handler awaits.
  (func (export "nested") (param $x i32) (result i32)
    (local $r i32)
    try
      (call $maybe_throw (i32.or (local.get $x) (i32.const 1)))
    catch $e
      (local.set $r)
      try
        (call $maybe_throw (call $fetch (local.get $r)))
        (local.set $r (i32.add (local.get $r) (i32.const 100)))
      catch $e
        (local.set $r (i32.sub (call $fetch (i32.const 3))))
      catch_all
        (local.set $r (call $fetch (i32.const 4)))
      end
      (local.set $r (i32.add (local.get $r) (call $fetch (local.get $r))))
    end
    (local.get $r))

  ;; A handler in a loop: every iteration throws and awaits in the handler.
  (func (export "loop") (param $n i32) (result i32)
    (local $i i32) (local $sum i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        try
          (call $maybe_throw (i32.add (i32.mul (local.get $i) (i32.const 2)) (i32.const 1)))
        catch $e
          (local.set $sum (i32.add (local.get $sum) (call $fetch)))
        end
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $sum))

  ;; A payload of two values; the i64 comes back through the rethrow.
  (func (export "pair") (param $x i32) (result i64)
    (local $lo i32) (local $hi i64)
    try (result i64)
      try (result i64)
        (throw $pair (local.get $x) (i64.const 0x100000000))
      catch $pair
        (drop (call $fetch (i32.const 5)))
        (drop)
        (drop)
        (rethrow 0)
      end
    catch $pair
      (local.set $hi)
      (local.set $lo)
      (i64.add (local.get $hi)
        (i64.extend_i32_u (i32.add (local.get $lo) (call $fetch (i32.const 6)))))
    end)

  ;; The only await of the function is in a handler (no point index).
  (func (export "only_in_handler") (param $x i32) (result i32)
    try (result i32)
      (call $maybe_throw (local.get $x))
      (i32.const 0)
    catch_all
      (call $fetch (local.get $x))
    end))
