;; Indirect calls through a table, to functions that await and to one that
;; does not; one of the targets awaits twice and another calls indirectly
;; again, so a suspension unwinds through two call_indirect frames.
;; asyncify-imports: env.fetch
(module
  (import "env" "fetch" (func $fetch (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $unary (func (param i32) (result i32)))
  (table 4 funcref)
  (elem (i32.const 0) $awaits_once $no_await $awaits_twice $nested)

  (func $awaits_once (param $x i32) (result i32)
    (i32.add (call $fetch (local.get $x)) (i32.const 1)))
  (func $no_await (param $x i32) (result i32)
    (i32.mul (local.get $x) (i32.const 3)))
  (func $awaits_twice (param $x i32) (result i32)
    (local $a i32)
    (local.set $a (call $fetch (local.get $x)))
    (i32.sub (call $fetch (local.get $a)) (local.get $a)))
  (func $nested (param $x i32) (result i32)
    (i32.add
      (local.get $x)
      (call_indirect (type $unary)
        (i32.add (local.get $x) (i32.const 5))
        (i32.rem_u (local.get $x) (i32.const 3)))))

  (func (export "dispatch") (param $idx i32) (param $x i32) (result i32)
    (i32.mul
      (i32.const 2)
      (call_indirect (type $unary) (local.get $x) (local.get $idx))))

  ;; Call every table entry in turn, summing.
  (func (export "all") (param $x i32) (result i32)
    (local $i i32)
    (local $acc i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (i32.const 4)))
        (local.set $acc
          (i32.add (local.get $acc)
            (call_indirect (type $unary)
              (i32.add (local.get $x) (local.get $i)) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (local.get $acc))
)
