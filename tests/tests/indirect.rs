//! Indirect calls: `call_indirect` through a table (suspending targets, traps),
//! `ignore_indirect`, and `call_ref`.

use asyncify_tests::{check, instrumented_names, Check, Options, Schedule, Val};

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(ToString::to_string).collect()
}

fn i32s(values: &[i32]) -> Vec<Val> {
    values.iter().map(|&v| Val::I32(v)).collect()
}

const TABLE: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $t (func (param i32) (result i32)))
  (table 5 funcref)
  (elem (i32.const 0) $double $async_inc $pure $async_deep)

  (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
  (func $async_inc (type $t) (i32.add (local.get 0) (call $tick (local.get 0))))
  (func $pure (type $t) (i32.sub (local.get 0) (i32.const 7)))
  (func $async_deep (type $t)
    (i32.add (call $async_inc (local.get 0)) (call $async_inc (i32.const 1))))

  ;; A value on the stack across the indirect call.
  (func $dispatch (export "dispatch") (param $i i32) (param $x i32) (result i32)
    (i32.add (local.get $x)
      (call_indirect (type $t) (local.get $x) (local.get $i))))

  ;; Feed each table entry's result into the next.
  (func $chain (export "chain") (param $x i32) (result i32)
    (local $i i32)
    (loop $l
      (local.set $x (call_indirect (type $t) (local.get $x) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 4))))
    (local.get $x))

  ;; A direct path to the suspending function, for when indirect calls are ignored.
  (func $direct (export "direct") (param $x i32) (result i32)
    (i32.add (call $pure (local.get $x)) (call $async_inc (local.get $x)))))"#;

#[test]
fn call_indirect_suspends() {
    check(
        TABLE,
        &Options::default(),
        &[
            ("dispatch", i32s(&[0, 5])),
            ("dispatch", i32s(&[1, 5])),
            ("dispatch", i32s(&[3, 6])),
            ("chain", i32s(&[3])),
            ("direct", i32s(&[8])),
        ],
    );
}

#[test]
fn call_indirect_traps() {
    // Index 4 is a null entry, 9 is out of the table: the same trap after
    // earlier suspensions, and the instance keeps working afterwards.
    check(
        TABLE,
        &Options::default(),
        &[
            ("chain", i32s(&[1])),
            ("dispatch", i32s(&[4, 1])),
            ("dispatch", i32s(&[9, 1])),
            ("dispatch", i32s(&[1, 2])),
        ],
    );
}

#[test]
fn ignore_indirect() {
    // Indirect calls are assumed not to suspend: only non-suspending targets
    // are called indirectly, the suspending one directly.
    let options = Options {
        ignore_indirect: true,
        ..Options::default()
    };
    check(
        TABLE,
        &options,
        &[
            ("dispatch", i32s(&[0, 5])),
            ("dispatch", i32s(&[2, 5])),
            ("direct", i32s(&[8])),
            ("dispatch", i32s(&[2, 1])),
        ],
    );
    // The functions that call indirectly are not instrumented (they would
    // be with the option ignored).
    if let Some(names) = instrumented_names(TABLE, &options) {
        assert_eq!(names, strings(&["async_deep", "async_inc", "direct"]));
    }
    let all = instrumented_names(TABLE, &Options::default());
    if let Some(names) = all {
        assert_eq!(
            names,
            strings(&["async_deep", "async_inc", "chain", "direct", "dispatch"])
        );
    }
}

const CALL_REF: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $t (func (param i32) (result i32)))
  (elem declare func $async_inc $double)
  (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
  (func $async_inc (type $t) (i32.add (local.get 0) (call $tick (local.get 0))))
  (func $run (export "run") (param $x i32) (result i32)
    (i32.add
      (call_ref $t (local.get $x) (ref.func $async_inc))
      (call_ref $t (local.get $x)
        (select (result (ref $t)) (ref.func $double) (ref.func $async_inc) (local.get $x))))))"#;

/// A `call_ref` that may suspend: its function reference is kept (in a table
/// the transform adds) so the rewind calls the same function again.
#[test]
fn call_ref_suspends() {
    Check::new(CALL_REF)
        .calls(&[
            ("run", i32s(&[0])),
            ("run", i32s(&[3])),
            ("run", i32s(&[8])),
        ])
        .binaryen_shortfall("call_ref is treated as a call that cannot suspend")
        .run();
}

/// With indirect calls ignored, `call_ref` is an ordinary call, and its module
/// instruments and runs like the original. The only import is reached through
/// the `call_ref`, so by the user's own promise it never suspends.
#[test]
fn call_ref_with_ignore_indirect() {
    let options = Options {
        ignore_indirect: true,
        ..Options::default()
    };
    Check::new(CALL_REF)
        .options(&options)
        .schedules(vec![Schedule::Never])
        .calls(&[("run", i32s(&[0])), ("run", i32s(&[3]))])
        .allow_no_unwind()
        .run();
    // `run` reaches the import only through `call_ref`: not instrumented.
    if let Some(names) = instrumented_names(CALL_REF, &options) {
        assert_eq!(names, strings(&["async_inc"]));
    }
}
