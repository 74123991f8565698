;; One export called several times in sequence, with state kept between the
;; calls in a global and in memory; also a sync export (no suspension) and an
;; export whose parameter picks the path before the await (the runtime
;; re-calls the export with no arguments when rewinding: the path must come
;; from the saved state, not from the re-passed arguments).
;; asyncify-imports: env.tick
(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))
  (data (i32.const 2048) "\01\02\03\04")

  (func (export "bump") (param $x i32) (result i32)
    (local $slot i32)
    (local.set $slot (i32.add (i32.const 4096)
                              (i32.shl (global.get $count) (i32.const 2))))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (i32.store (local.get $slot)
      (i32.add (call $tick (local.get $x)) (i32.load8_u (i32.const 2048))))
    (i32.add (i32.load (local.get $slot)) (global.get $count)))

  (func (export "total") (result i32)
    (local $i i32)
    (local $acc i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (global.get $count)))
        (local.set $acc
          (i32.add (local.get $acc)
            (i32.load (i32.add (i32.const 4096)
                               (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (local.get $acc))

  (func (export "choose") (param $flag i32) (param $x i32) (result i32)
    (if (result i32) (local.get $flag)
      (then (i32.add (call $tick (local.get $x)) (i32.const 100000)))
      (else (i32.sub (call $tick (i32.mul (local.get $x) (i32.const 2)))
                     (i32.const 100000)))))
)
