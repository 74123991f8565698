;; Suspensions while values sit on the operand stack: the left operand of an
;; arithmetic op, the first argument of a call whose second argument suspends,
;; operands of a select, a value kept under a block. The transform must save
;; these (Binaryen flattens them into locals) and put them back on rewind.
;; asyncify-imports: env.get
(module
  (import "env" "get" (func $get (param i32) (result i32)))
  (memory (export "memory") 1)

  (func $combine (param $a i32) (param $b i32) (param $c i32) (result i32)
    (i32.add (i32.mul (local.get $a) (i32.const 10000))
             (i32.add (i32.mul (local.get $b) (i32.const 100)) (local.get $c))))

  ;; x*7 is on the stack when $get suspends.
  (func (export "left_operand") (param $x i32) (result i32)
    (i32.sub
      (i32.mul (local.get $x) (i32.const 7))
      (call $get (local.get $x))))

  ;; Three calls as arguments: the first two results are on the stack when
  ;; the later ones suspend.
  (func (export "call_args") (param $x i32) (result i32)
    (call $combine
      (call $get (local.get $x))
      (call $get (i32.add (local.get $x) (i32.const 1)))
      (call $get (i32.add (local.get $x) (i32.const 2)))))

  ;; Written in stack form: a constant and a computed value stay on the stack
  ;; across two suspending calls.
  (func (export "raw_stack") (param $x i32) (result i32)
    i32.const 1000
    local.get $x
    i32.const 3
    i32.mul
    local.get $x
    call $get
    i32.add
    i32.const 5
    call $get
    i32.sub
    i32.sub)

  ;; select whose condition comes from a suspending call.
  (func (export "select") (param $x i32) (result i32)
    (select
      (i32.add (local.get $x) (i32.const 1))
      (call $get (local.get $x))
      (i32.and (call $get (i32.const 2)) (i32.const 1))))

  ;; A value produced before a block stays on the stack while the block's
  ;; body suspends inside a loop.
  (func (export "under_block") (param $n i32) (result i32)
    (local $i i32)
    (i32.add
      (i32.mul (local.get $n) (i32.const 1000))
      (block (result i32)
        (loop $again (result i32)
          (local.set $i (i32.add (local.get $i) (call $get (local.get $i))))
          (br_if $again (i32.lt_u (local.get $i) (local.get $n)))
          (local.get $i)))))
)
