//! Control flow around suspension points: loops, recursion, `br_table`,
//! nested blocks, values on the operand stack, `if` with results, multi-value.

use asyncify_tests::{check, Options, Val};

fn i32s(values: &[i32]) -> Vec<Val> {
    values.iter().map(|&v| Val::I32(v)).collect()
}

const LOOPS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)

  ;; Loop-carried locals of several types, updated before and after the call.
  (func (export "sum") (param $n i32) (result i32)
    (local $i i32) (local $acc i32) (local $prod i64) (local $f f64)
    (local.set $prod (i64.const 1))
    (block $done
      (loop $top
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $f (f64.add (local.get $f) (f64.convert_i32_u (local.get $i))))
        (local.set $acc
          (i32.add (i32.mul (local.get $acc) (i32.const 31))
                   (call $tick (local.get $i))))
        (local.set $prod
          (i64.mul (local.get $prod) (i64.extend_i32_u (i32.add (local.get $i) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $top)))
    (i32.xor
      (i32.xor (local.get $acc) (i32.wrap_i64 (local.get $prod)))
      (i32.trunc_f64_s (local.get $f))))

  ;; Nested loops, the call in the inner one.
  (func (export "nested") (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $acc i32)
    (block $exit
      (br_if $exit (i32.eqz (local.get $n)))
      (loop $outer
        (local.set $j (i32.const 0))
        (loop $inner
          (local.set $acc
            (i32.add (local.get $acc)
              (i32.mul
                (call $tick (i32.add (i32.mul (local.get $i) (i32.const 10)) (local.get $j)))
                (i32.add (local.get $j) (i32.const 1)))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br_if $inner (i32.lt_u (local.get $j) (i32.const 3))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $outer (i32.lt_u (local.get $i) (local.get $n)))))
    (local.get $acc))

  ;; The loop exit depends on the import's result.
  (func (export "until") (param $limit i32) (result i32)
    (local $count i32)
    (loop $again
      (local.set $count (i32.add (local.get $count) (i32.const 1)))
      (br_if $again
        (i32.and
          (i32.lt_u (local.get $count) (local.get $limit))
          (i32.ne (i32.rem_u (call $tick (local.get $count)) (i32.const 5)) (i32.const 0)))))
    (local.get $count)))"#;

#[test]
fn loops() {
    check(
        LOOPS,
        &Options::default(),
        &[
            ("sum", i32s(&[0])),
            ("sum", i32s(&[1])),
            ("sum", i32s(&[12])),
            ("nested", i32s(&[0])),
            ("nested", i32s(&[4])),
            ("until", i32s(&[40])),
        ],
    );
}

const RECURSION: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)

  ;; fib with an async call at every level and a value on the stack across
  ;; the recursive calls.
  (func $fib (export "fib") (param $n i32) (result i32)
    (local $t i32)
    (local.set $t (i32.and (call $tick (local.get $n)) (i32.const 1)))
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (i32.add (local.get $n) (local.get $t)))
      (else
        (i32.add
          (i32.add (local.get $t) (call $fib (i32.sub (local.get $n) (i32.const 1))))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))

  ;; Ackermann, async at each call.
  (func $ack (export "ack") (param $m i32) (param $n i32) (result i32)
    (drop (call $tick (i32.add (i32.mul (local.get $m) (i32.const 100)) (local.get $n))))
    (if (result i32) (i32.eqz (local.get $m))
      (then (i32.add (local.get $n) (i32.const 1)))
      (else
        (if (result i32) (i32.eqz (local.get $n))
          (then (call $ack (i32.sub (local.get $m) (i32.const 1)) (i32.const 1)))
          (else
            (call $ack (i32.sub (local.get $m) (i32.const 1))
              (call $ack (local.get $m) (i32.sub (local.get $n) (i32.const 1)))))))))

  ;; Mutual recursion; only the leaf suspends.
  (func $even (export "even") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.add (i32.const 1000) (call $tick (i32.const 0))))
      (else (call $odd (i32.sub (local.get $n) (i32.const 1))))))
  (func $odd (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.sub (i32.const 0) (call $tick (i32.const 1))))
      (else (call $even (i32.sub (local.get $n) (i32.const 1)))))))"#;

#[test]
fn recursion() {
    check(
        RECURSION,
        &Options::default(),
        &[
            ("fib", i32s(&[0])),
            ("fib", i32s(&[9])),
            ("ack", i32s(&[2, 2])),
            ("even", i32s(&[7])),
            ("even", i32s(&[30])),
        ],
    );
}

const BRANCHES: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)

  ;; br_table on an import's result; async calls in the cases.
  (func (export "switch") (param $x i32) (result i32)
    (local $r i32)
    (block $default
      (block $c2
        (block $c1
          (block $c0
            (br_table $c0 $c1 $c2 $default
              (i32.rem_u (call $tick (local.get $x)) (i32.const 5))))
          (local.set $r (i32.add (call $tick (i32.const 100)) (i32.const 1000)))
          (br $default))
        (local.set $r (i32.const 2000))
        (br $default))
      (local.set $r (call $tick (i32.const 300))))
    (i32.add (local.get $r) (local.get $x)))

  ;; br_table carrying a value that came from an async call; the value stays
  ;; on the stack across another async call in the target block.
  (func (export "switch_value") (param $x i32) (result i32)
    (block $out (result i32)
      (block $a (result i32)
        (block $b (result i32)
          (br_table $a $b $out
            (call $tick (local.get $x))
            (i32.and (local.get $x) (i32.const 3))))
        (i32.add (call $tick (i32.const 1)))
        (br $out))
      (i32.mul (i32.const 3))))

  ;; if/else with results, the condition from an import.
  (func (export "choose") (param $x i32) (result i64)
    (if (result i64) (i32.and (call $tick (local.get $x)) (i32.const 1))
      (then (i64.extend_i32_u (call $tick (i32.add (local.get $x) (i32.const 1)))))
      (else
        (i64.mul (i64.const 1000) (i64.extend_i32_u (call $tick (i32.const 0)))))))

  ;; An if without else whose then-arm suspends, and br_if out of a block
  ;; with a result.
  (func (export "guard") (param $x i32) (result i32)
    (local $v i32)
    (local.set $v (local.get $x))
    (if (i32.gt_s (local.get $x) (i32.const 3))
      (then (local.set $v (i32.add (local.get $v) (call $tick (local.get $x))))))
    (block $early (result i32)
      (drop (br_if $early (i32.const -1) (i32.eq (local.get $v) (i32.const 2))))
      (i32.mul (local.get $v) (call $tick (i32.const 9))))))"#;

#[test]
fn branches() {
    check(
        BRANCHES,
        &Options::default(),
        &[
            ("switch", i32s(&[0])),
            ("switch", i32s(&[1])),
            ("switch", i32s(&[2])),
            ("switch", i32s(&[3])),
            ("switch", i32s(&[4])),
            ("switch", i32s(&[5])),
            ("switch_value", i32s(&[0])),
            ("switch_value", i32s(&[1])),
            ("switch_value", i32s(&[2])),
            ("switch_value", i32s(&[3])),
            ("choose", i32s(&[1])),
            ("choose", i32s(&[2])),
            ("choose", i32s(&[3])),
            ("guard", i32s(&[2])),
            ("guard", i32s(&[5])),
        ],
    );
}

const STACK: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (import "env" "tick64" (func $tick64 (param i64) (result i64)))
  (memory (export "memory") 1)

  (func (export "add") (param $x i32) (result i32)
    (i32.add (local.get $x) (call $tick (local.get $x))))

  (func (export "deep") (param $x i32) (result i32)
    (i32.add (local.get $x)
      (i32.mul (i32.add (local.get $x) (i32.const 1))
        (i32.sub (call $tick (local.get $x))
          (i32.shl (local.get $x) (call $tick (i32.const 2)))))))

  ;; Values of several types on the stack across calls.
  (func (export "mixed") (param $x i32) (result f64)
    (f64.add
      (f64.convert_i64_s
        (i64.add (i64.extend_i32_s (local.get $x))
                 (call $tick64 (i64.extend_i32_s (call $tick (local.get $x))))))
      (f64.mul (f64.const 1.5) (f64.convert_i32_s (call $tick (i32.const 2))))))

  ;; A call argument list with the async call in the middle.
  (func $three (param i32 i32 i32) (result i32)
    (i32.add (i32.mul (local.get 0) (i32.const 100))
             (i32.add (i32.mul (local.get 1) (i32.const 10)) (local.get 2))))
  (func (export "args") (param $x i32) (result i32)
    (call $three (local.get $x) (call $tick (local.get $x)) (i32.const 3)))

  ;; select with an async operand.
  (func (export "select") (param $x i32) (result i32)
    (select (local.get $x) (call $tick (local.get $x)) (i32.and (local.get $x) (i32.const 1)))))"#;

#[test]
fn operand_stack() {
    check(
        STACK,
        &Options::default(),
        &[
            ("add", i32s(&[5])),
            ("deep", i32s(&[3])),
            ("mixed", i32s(&[7])),
            ("args", i32s(&[1])),
            ("select", i32s(&[2])),
            ("select", i32s(&[3])),
        ],
    );
}

const MULTI_VALUE: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (import "env" "pair" (func $pair (param i32) (result i32 i64)))
  (memory (export "memory") 1)

  (func $triple (param $x i32) (result i32 i64 f32)
    (call $tick (local.get $x))
    (i64.extend_i32_u (call $tick (i32.add (local.get $x) (i32.const 1))))
    (f32.convert_i32_s (call $tick (i32.const 9))))

  (func (export "multi") (param $x i32) (result i64 f32 i32)
    (local $a i32) (local $b i64) (local $c f32)
    (call $triple (local.get $x))
    (local.set $c) (local.set $b) (local.set $a)
    (block (result i32 i64)
      (call $pair (local.get $a)))
    (local.set $b (i64.add (local.get $b)))
    (local.set $a (i32.xor (local.get $a)))
    (local.get $b) (local.get $c) (local.get $a))
)"#;

#[test]
fn multi_value() {
    check(
        MULTI_VALUE,
        &Options::default(),
        &[("multi", i32s(&[3])), ("multi", i32s(&[10]))],
    );
}

/// Blocks, loops and ifs with parameters (Binaryen cannot read these).
const BLOCK_PARAMS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (import "env" "pair" (func $pair (param i32) (result i32 i64)))
  (memory (export "memory") 1)

  ;; A loop with a parameter and a result, the call inside it.
  (func (export "loop_params") (param $n i32) (result i32)
    (local $i i32)
    (i32.const 7)
    (loop $l (param i32) (result i32)
      (call $tick (local.get $i))
      (i32.add)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))

  ;; Blocks and ifs with parameters: the operands enter the block from the stack.
  (func (export "block_params") (param $x i32) (result i32)
    (local.get $x)
    (i32.const 10)
    (block (param i32 i32) (result i32)
      (call $tick (local.get $x))
      (i32.add)
      (i32.mul))
    (if (param i32) (result i32) (i32.and (call $tick (i32.const 5)) (i32.const 1))
      (then (call $tick (i32.const 6)) (i32.sub))
      (else (i32.const 1) (i32.add))))

  ;; Two values stay on the stack while a block with two results suspends.
  (func (export "swap") (param $x i32) (param $y i64) (result i64 i32)
    (local.get $y)
    (local.get $x)
    (block (param i64 i32) (result i64 i32)
      (call $tick (i32.const 4))
      (i32.add))
    (call $pair (local.get $x))
    (drop)
    (i32.add)))"#;

#[test]
fn block_params() {
    check(
        BLOCK_PARAMS,
        &Options::default(),
        &[
            ("loop_params", i32s(&[1])),
            ("loop_params", i32s(&[6])),
            ("block_params", i32s(&[4])),
            ("block_params", i32s(&[9])),
            ("swap", vec![Val::I32(5), Val::I64(-9)]),
        ],
    );
}
