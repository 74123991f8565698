;; Exceptions around awaits: suspensions inside a legacy `try` body, with the
;; exception thrown after a resume and caught by the right handler; and a
;; `delegate` to an outer try. (`try_table` is checked under wasmtime in
;; tests/: Node 20 predates it.)
;; asyncify-imports: env.fetch
(module
  (import "env" "fetch" (func $fetch (param i32) (result i32)))
  (memory (export "memory") 1)
  (tag $e (param i32))

  ;; Awaits, then throws for odd inputs.
  (func $thrower (param $x i32) (result i32)
    (local $v i32)
    (local.set $v (call $fetch (local.get $x)))
    (if (i32.and (local.get $x) (i32.const 1))
      (then (throw $e (i32.add (local.get $v) (i32.const 1000)))))
    (local.get $v))

  (func (export "legacy") (param $x i32) (result i32)
    try (result i32)
      (i32.add (call $fetch (i32.const 100)) (call $thrower (local.get $x)))
    catch $e
      (i32.add (i32.const 5))
    catch_all
      (i32.const -1)
    end)

  (func (export "delegated") (param $x i32) (result i32)
    try (result i32)
      (drop (call $fetch (i32.const 3)))
      try (result i32)
        (call $thrower (local.get $x))
      delegate 0
    catch $e
      (i32.sub (i32.const 0))
    end))
