;; f64 results: an async import resolving to a number, f64 locals live across
;; the suspension, f64 params of the export (the runtime re-calls an export
;; with NO arguments when rewinding, so params must come back from the saved
;; frame, not from the caller), and an f64 left on the operand stack.
;; asyncify-imports: env.measure
(module
  (import "env" "measure" (func $measure (param f64) (result f64)))
  (memory (export "memory") 1)

  (func (export "weighted") (param $x f64) (param $n i32) (result f64)
    (local $acc f64)
    (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $acc
          (f64.add
            (local.get $acc)
            (f64.mul (local.get $x)
                     (call $measure (f64.convert_i32_s (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (local.get $acc))

  ;; sqrt(x) is on the stack while $measure suspends; the result is stored to
  ;; memory above the runtime's area and read back.
  (func (export "on_stack") (param $x f64) (result f64)
    (f64.store (i32.const 4096)
      (f64.add (f64.sqrt (local.get $x)) (call $measure (local.get $x))))
    (f64.load (i32.const 4096)))

  ;; f32 too, converted from the f64 result.
  (func (export "as_f32") (param $x f32) (result f32)
    (f32.mul (local.get $x)
             (f32.demote_f64 (call $measure (f64.promote_f32 (local.get $x))))))
)
