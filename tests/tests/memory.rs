//! Memory around suspension points: loads and stores, growth and bulk
//! operations, memory64 (64-bit buffer pointer), several memories with the
//! `memory` option, the secondary memory, and an imported shared memory.

use asyncify_tests::interface::{func, Kind};
use asyncify_tests::{check, BufferSpec, Check, Interface, Options, Val};

fn i32s(values: &[i32]) -> Vec<Val> {
    values.iter().map(|&v| Val::I32(v)).collect()
}

const READ_WRITE: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (import "env" "peek" (func $peek (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0x100) "hello, asyncify")

  ;; Store what the import returns, read it back after the next call.
  (func (export "fill") (param $n i32) (result i32)
    (local $i i32) (local $sum i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.shl (local.get $i) (i32.const 2)) (call $tick (local.get $i)))
        (call $peek (i32.shl (local.get $i) (i32.const 2)) (i32.const 4))
        (local.set $sum
          (i32.add (local.get $sum) (i32.load (i32.shl (local.get $i) (i32.const 2)))))
        (i64.store offset=0x1000 (i32.shl (local.get $i) (i32.const 3))
          (i64.extend_i32_u (local.get $sum)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $sum))

  ;; A load whose address is on the stack across the call, and a store whose
  ;; value comes from it.
  (func (export "mixed") (param $p i32) (result i32)
    (i32.store8 offset=0x200 (local.get $p)
      (i32.add (i32.load8_u offset=0x100 (local.get $p)) (call $tick (local.get $p))))
    (i32.add
      (i32.load16_s offset=0x200 (local.get $p))
      (call $tick (i32.load8_u offset=0x101 (local.get $p)))))

  ;; Growth and bulk operations between calls.
  (func (export "grow") (result i32)
    (local $old i32)
    (local.set $old (memory.grow (i32.and (call $tick (i32.const 1)) (i32.const 1))))
    (memory.fill (i32.const 0x300) (call $tick (i32.const 2)) (i32.const 16))
    (memory.copy (i32.const 0x400) (i32.const 0x100) (call $tick (i32.const 3)))
    (i32.add (local.get $old) (memory.size))))"#;

#[test]
fn reads_and_writes_around_calls() {
    check(
        READ_WRITE,
        &Options::default(),
        &[
            ("fill", i32s(&[10])),
            ("mixed", i32s(&[0])),
            ("mixed", i32s(&[5])),
            ("grow", vec![]),
            ("grow", vec![]),
        ],
    );
}

const MEMORY64: &str = r#"(module
  (import "env" "tick" (func $tick (param i64) (result i64)))
  (memory (export "memory") i64 1)
  (func $rec (param $n i64) (param $p i64) (result i64)
    (i64.store (local.get $p) (call $tick (local.get $n)))
    (if (result i64) (i64.eqz (local.get $n))
      (then (i64.load (local.get $p)))
      (else
        (i64.add (i64.load (local.get $p))
          (call $rec (i64.sub (local.get $n) (i64.const 1))
                     (i64.add (local.get $p) (i64.const 8)))))))
  (func (export "run") (param $n i64) (result i64)
    (call $rec (local.get $n) (i64.const 0x100))))"#;

#[test]
fn memory64() {
    let report = check(
        MEMORY64,
        &Options::default(),
        &[("run", vec![Val::I64(0)]), ("run", vec![Val::I64(6)])],
    );
    if report.skipped.is_none() {
        let shape = Interface::of(&report.instrumented).unwrap();
        assert_eq!(
            shape.export("asyncify_start_unwind"),
            Some(&func(&["i64"], &[]))
        );
        assert_eq!(
            shape.export("asyncify_start_rewind"),
            Some(&func(&["i64"], &[]))
        );
    }
}

const TWO_MEMORIES: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory $main (export "memory") 1)
  (memory $scratch (export "scratch") 1)
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $l
      (i32.store $main (i32.shl (local.get $i) (i32.const 2)) (call $tick (local.get $i)))
      (i32.store $scratch (i32.shl (local.get $i) (i32.const 2))
        (i32.add (i32.load $main (i32.shl (local.get $i) (i32.const 2))) (local.get $acc)))
      (local.set $acc (i32.load $scratch (i32.shl (local.get $i) (i32.const 2))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc)))"#;

#[test]
fn several_memories_default_is_first() {
    check(TWO_MEMORIES, &Options::default(), &[("run", i32s(&[5]))]);
}

#[test]
fn memory_option_selects_by_export_name() {
    // The buffer lives in `scratch` (the driver puts it there from the
    // option); writing frames into `memory` instead would show in the diff.
    let options = Options {
        memory: Some("scratch".into()),
        ..Options::default()
    };
    check(TWO_MEMORIES, &options, &[("run", i32s(&[5]))]);
}

const MIXED_WIDTHS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory $small (export "memory") 1)
  (memory $big (export "big") i64 1)
  (func (export "run") (param $x i32) (result i32)
    (i64.store $big (i64.const 16) (i64.extend_i32_u (call $tick (local.get $x))))
    (i32.store $small (i32.const 16) (call $tick (i32.const 2)))
    (i32.add (i32.wrap_i64 (i64.load $big (i64.const 16))) (i32.load $small (i32.const 16)))))"#;

#[test]
fn memory_option_selects_a_64_bit_memory() {
    // The chosen memory is 64-bit, so the buffer pointer is i64 even though
    // memory 0 is 32-bit.
    let options = Options {
        memory: Some("big".into()),
        ..Options::default()
    };
    let report = check(MIXED_WIDTHS, &options, &[("run", i32s(&[3]))]);
    if report.skipped.is_none() {
        let shape = Interface::of(&report.instrumented).unwrap();
        assert_eq!(
            shape.export("asyncify_start_unwind"),
            Some(&func(&["i64"], &[]))
        );
    }
}

#[test]
fn secondary_memory() {
    let options = Options {
        secondary_memory: Some(1),
        ..Options::default()
    };
    // The buffer is at address 0 of `asyncify_memory`; the module's own
    // memory, including where the default buffer would be, must come out
    // exactly as in the original.
    let report = Check::new(READ_WRITE)
        .options(&options)
        .calls(&[("fill", i32s(&[6])), ("mixed", i32s(&[1]))])
        .buffer(BufferSpec {
            memory: Some("asyncify_memory".into()),
            addr: Some(0),
            size: None,
        })
        .run();
    if report.skipped.is_none() {
        let shape = Interface::of(&report.instrumented).unwrap();
        assert_eq!(
            shape.export("asyncify_memory"),
            Some(&Kind::Memory {
                memory64: false,
                shared: false
            })
        );
    }
}

const SHARED: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (import "env" "memory" (memory 1 2 shared))
  (export "memory" (memory 0))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32)
    (loop $l
      (drop (i32.atomic.rmw.add (i32.const 64) (call $tick (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i32.atomic.load (i32.const 64))))"#;

#[test]
fn imported_shared_memory() {
    check(SHARED, &Options::default(), &[("run", i32s(&[7]))]);
}
