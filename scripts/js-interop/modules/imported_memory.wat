;; The memory is imported as env.memory (the runtime then finds it there
;; instead of in the exports), and an async import with no result is used as
;; a plain "sleep".
;; asyncify-imports: env.sleep,env.value
(module
  (import "env" "memory" (memory 1))
  (import "env" "sleep" (func $sleep (param i32)))
  (import "env" "value" (func $value (param i32) (result i32)))

  (func (export "fill") (param $n i32) (result i32)
    (local $i i32)
    (local $acc i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (call $sleep (local.get $i))
        (i32.store (i32.add (i32.const 4096) (i32.shl (local.get $i) (i32.const 2)))
                   (call $value (local.get $i)))
        (local.set $acc (i32.xor (i32.rotl (local.get $acc) (i32.const 5))
                                 (i32.load (i32.add (i32.const 4096)
                                   (i32.shl (local.get $i) (i32.const 2))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (local.get $acc))
)
