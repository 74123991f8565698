//! Traps after a resume must be the same traps, the instance must stay usable
//! afterwards, and a `start` function runs (without suspending) as before.

use asyncify_tests::{check, Options, Val};

fn i32s(values: &[i32]) -> Vec<Val> {
    values.iter().map(|&v| Val::I32(v)).collect()
}

const TRAPS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $calls (export "calls") (mut i32) (i32.const 0))

  ;; 0: unreachable after the resume; 1: division by zero; else fine.
  (func (export "after_resume") (param $x i32) (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store (i32.const 16) (call $tick (local.get $x)))
    (if (i32.eqz (local.get $x)) (then unreachable))
    (i32.div_s (i32.const 100) (i32.sub (local.get $x) (i32.const 1))))

  ;; A trap deep in a recursion, after suspensions at every level.
  (func $down (param $n i32) (result i32)
    (drop (call $tick (local.get $n)))
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.load (i32.const 0x20000)))
      (else (i32.add (local.get $n) (call $down (i32.sub (local.get $n) (i32.const 1)))))))
  (func (export "deep_oob") (param $n i32) (result i32)
    (call $down (local.get $n)))

  ;; Integer overflow and a bad conversion, the operands from the import.
  (func (export "overflow") (result i32)
    (i32.div_s (i32.or (i32.const 0x80000000) (i32.and (call $tick (i32.const 1)) (i32.const 0)))
               (i32.const -1)))
  (func (export "bad_convert") (result i32)
    (i32.trunc_f32_s
      (f32.div (f32.const 0) (f32.convert_i32_s (i32.and (call $tick (i32.const 2)) (i32.const 0)))))))"#;

#[test]
fn same_trap_after_resume() {
    check(
        TRAPS,
        &Options::default(),
        &[
            ("after_resume", i32s(&[0])),
            ("after_resume", i32s(&[1])),
            ("after_resume", i32s(&[5])),
            ("deep_oob", i32s(&[4])),
            ("after_resume", i32s(&[3])),
            ("overflow", vec![]),
            ("bad_convert", vec![]),
            ("after_resume", i32s(&[2])),
        ],
    );
}

const START: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $seed (mut i32) (i32.const 0))
  ;; Runs during instantiation: calls the import, writes memory and a global.
  (func $init
    (local $i i32)
    (loop $l
      (i32.store (i32.shl (local.get $i) (i32.const 2)) (call $tick (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 4))))
    (global.set $seed (call $tick (i32.const 99))))
  (start $init)
  (func (export "run") (param $x i32) (result i32)
    (i32.add (global.get $seed)
      (i32.add (i32.load (i32.shl (local.get $x) (i32.const 2)))
               (call $tick (local.get $x))))))"#;

#[test]
fn start_function() {
    check(
        START,
        &Options::default(),
        &[("run", i32s(&[0])), ("run", i32s(&[3]))],
    );
}
