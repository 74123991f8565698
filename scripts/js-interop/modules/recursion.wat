;; Recursion where every level awaits, both before and after the recursive
;; call, so a suspension unwinds (and rewinds) a stack of several frames of
;; the same function, each with its own live locals.
;; asyncify-imports: env.wait_for
(module
  (import "env" "wait_for" (func $wait_for (param i32) (result i32)))
  (memory (export "memory") 1)

  (func $rec (param $n i32) (result i32)
    (local $before i32)
    (local $inner i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (call $wait_for (i32.const 1000)))
      (else
        (local.set $before (call $wait_for (local.get $n)))
        (local.set $inner (call $rec (i32.sub (local.get $n) (i32.const 1))))
        (i32.add
          (i32.add (i32.mul (local.get $before) (i32.const 2)) (local.get $inner))
          (call $wait_for (i32.mul (local.get $n) (i32.const 10)))))))

  (func (export "run") (param $n i32) (result i32)
    (call $rec (local.get $n)))

  ;; Mutual recursion: even/odd, each awaiting once per level.
  (func $even (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 1))
      (else
        (i32.add (call $wait_for (local.get $n))
                 (call $odd (i32.sub (local.get $n) (i32.const 1)))))))
  (func $odd (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else
        (i32.sub (call $even (i32.sub (local.get $n) (i32.const 1)))
                 (call $wait_for (local.get $n))))))
  (func (export "even") (param $n i32) (result i32)
    (call $even (local.get $n)))
)
