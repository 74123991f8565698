//! The driver's own comparisons can fail: each test here runs two modules
//! that differ in one observable way (standing in for a transform that gets
//! it wrong) and checks that [`compare`] or the other checks say so. A
//! comparison that cannot fail would let a broken transform pass every
//! suite.

use asyncify_tests::{compare, features, run, Options, RefValue, RunConfig, Val, Value};

/// Runs `module` (wat) as an original, making `calls`.
fn outcome(module: &str, calls: &[(&str, Vec<Val>)]) -> asyncify_tests::Outcome {
    run(&asyncify_tests::wasm(module), &RunConfig::original(), calls)
}

/// A module that takes `externref`s from the host and hands one back: the
/// one it got first (`$keep`), or with `{pick}` set differently, another.
fn refs_module(pick: &str) -> String {
    format!(
        r#"(module
          (import "env" "get" (func $get (param i32) (result externref)))
          (func (export "run") (result externref)
            (local $a externref) (local $b externref) (local $i i32)
            ;; Draw until both are non-null (the host returns null now and then).
            (loop $l
              (local.set $a (call $get (local.get $i)))
              (local.set $b (call $get (i32.add (local.get $i) (i32.const 100))))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $l (i32.or (ref.is_null (local.get $a)) (ref.is_null (local.get $b)))))
            (local.get {pick})))"#
    )
}

#[test]
fn a_different_non_null_reference_differs() {
    let calls = [("run", vec![])];
    let kept = outcome(&refs_module("$a"), &calls);
    let other = outcome(&refs_module("$b"), &calls);
    assert!(
        matches!(kept.results(0), [Value::Ref(RefValue::Tag(_))]),
        "{:?}",
        kept.results(0)
    );
    assert!(compare(&kept, &outcome(&refs_module("$a"), &calls)).is_empty());
    let diff = compare(&kept, &other);
    assert!(
        diff.0.iter().any(|d| d.starts_with("call #0 run[]")),
        "{diff}"
    );
}

/// Function references by the export they are, and other references by the
/// order the run first saw them.
#[test]
fn function_and_gc_references_by_identity() {
    let module = |first: &str, second: &str| {
        format!(
            r#"(module
              (type $box (struct (field i32)))
              (func $f (export "f"))
              (func $g (export "g"))
              (global $b (mut (ref null $box)) (ref.null $box))
              (func (export "run") (result funcref anyref anyref)
                (global.set $b (struct.new $box (i32.const 1)))
                (ref.func {first})
                (global.get $b)
                {second}))"#
        )
    };
    let calls = [("run", vec![])];
    let same_box = "(global.get $b)";
    let new_box = "(struct.new $box (i32.const 1))";
    let original = outcome(&module("$f", same_box), &calls);
    assert_eq!(
        original.results(0),
        [
            Value::Ref(RefValue::Func(0)),
            Value::Ref(RefValue::Seen(0)),
            Value::Ref(RefValue::Seen(0))
        ]
    );
    assert!(compare(&original, &outcome(&module("$f", same_box), &calls)).is_empty());
    assert!(!compare(&original, &outcome(&module("$g", same_box), &calls)).is_empty());
    assert!(!compare(&original, &outcome(&module("$f", new_box), &calls)).is_empty());
}

#[test]
fn tables_are_compared_by_size_and_element() {
    let module = |size: u32, second: &str| {
        format!(
            r#"(module
              (table (export "t") {size} funcref)
              (func $f (export "f"))
              (func $g (export "g"))
              (elem (i32.const 0) func $f {second}))"#
        )
    };
    let original = outcome(&module(3, "$g"), &[]);
    assert!(compare(&original, &outcome(&module(3, "$g"), &[])).is_empty());
    let element = compare(&original, &outcome(&module(3, "$f"), &[]));
    assert!(
        element
            .0
            .iter()
            .any(|d| d.starts_with("table `t`: 1 elements differ, first at 1")),
        "{element}"
    );
    let size = compare(&original, &outcome(&module(4, "$g"), &[]));
    assert!(
        size.0
            .iter()
            .any(|d| d.starts_with("table `t`: size 3 in the original, 4")),
        "{size}"
    );
}

/// Output that needs a feature its input does not use is caught; the
/// features the transform documents adding are allowed.
#[test]
fn output_features_beyond_the_input_are_caught() {
    let input = asyncify_tests::wasm(r#"(module (func (export "f") (result i32) (i32.const 1)))"#);
    let multi_value = asyncify_tests::wasm(
        r#"(module (func (export "f") (result i32)
            (block (result i32 i32) (i32.const 1) (i32.const 2)) (drop)))"#,
    );
    let two_memories = asyncify_tests::wasm(
        r#"(module (memory 1) (memory (export "asyncify_memory") 1)
            (func (export "f") (result i32) (i32.const 1)))"#,
    );
    let options = Options::default();
    assert!(features::check_output(&input, &input, &options).is_ok());
    let err = features::check_output(&input, &multi_value, &options).unwrap_err();
    assert!(err.contains("multi_value"), "{err}");
    assert!(features::check_output(&input, &two_memories, &options).is_err());
    let secondary = Options {
        secondary_memory: Some(1),
        ..Options::default()
    };
    assert!(features::check_output(&input, &two_memories, &secondary).is_ok());
}

/// `overflowed` is the ABI's overflow trap only, not any trap.
#[test]
fn another_trap_is_not_the_overflow_trap() {
    let trapping = outcome(
        r#"(module (func (export "run") (unreachable)))"#,
        &[("run", vec![])],
    );
    assert!(trapping.calls[0].trapped());
    assert!(!trapping.calls[0].overflowed());
}

/// A check that should suspend fails when nothing unwinds, with either driver.
#[test]
fn nothing_suspending_fails_a_check() {
    let module = r#"(module
      (import "env" "f" (func $f (param i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "run") (param i32) (result i32) (call $f (local.get 0))))"#;
    let calls = [("run", vec![Val::I32(1)])];
    let direct = asyncify_tests::Check::new(module)
        .calls(&calls)
        .may_suspend(|_, _| false)
        .try_run();
    assert!(
        matches!(&direct, Err(e) if e.contains("under schedule Always nothing unwound")),
        "{:?}",
        direct.err()
    );
    let linked = asyncify_tests::Check::new(module)
        .calls(&calls)
        .schedules(vec![])
        .through_linker(vec![asyncify_tests::Schedule::Always])
        .may_suspend(|_, _| false)
        .try_run();
    assert!(
        matches!(&linked, Err(e) if e.contains("through asyncify-linker: under schedule Always")),
        "{:?}",
        linked.err()
    );
}
