//! Globals: the module's own mutable globals around suspension points, and
//! the two runtime globals imported (`import_globals`) or exported
//! (`export_globals`). The driver checks visible runtime globals against
//! `asyncify_get_state` and the buffer pointer at every unwind.

use asyncify_tests::interface::Kind;
use asyncify_tests::{check, Interface, Options, Val};

fn i32s(values: &[i32]) -> Vec<Val> {
    values.iter().map(|&v| Val::I32(v)).collect()
}

const GLOBALS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $count (export "count") (mut i32) (i32.const 0))
  (global $total (export "total") (mut i64) (i64.const 5))
  (global $last (export "last") (mut f64) (f64.const 0))
  (global $hidden (mut i32) (i32.const 100))

  ;; Each global changes before and after the call: rewinding must not run
  ;; the updates before the call a second time.
  (func $step (param $x i32) (result i32)
    (local $r i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (global.set $hidden (i32.mul (global.get $hidden) (i32.const 3)))
    (local.set $r (call $tick (i32.add (local.get $x) (global.get $hidden))))
    (global.set $total (i64.add (global.get $total) (i64.extend_i32_u (local.get $r))))
    (global.set $last (f64.convert_i32_s (global.get $hidden)))
    (i32.add (local.get $r) (global.get $count)))

  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (call $step (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i32.xor (local.get $acc) (global.get $hidden))))"#;

#[test]
fn mutable_globals() {
    check(
        GLOBALS,
        &Options::default(),
        &[("run", i32s(&[4])), ("run", i32s(&[2]))],
    );
}

fn mutable(ty: &str) -> Kind {
    Kind::Global {
        ty: ty.into(),
        mutable: true,
    }
}

#[test]
fn import_globals() {
    let options = Options {
        import_globals: true,
        ..Options::default()
    };
    // The driver provides `env.__asyncify_state` / `env.__asyncify_data` and
    // checks them at every unwind.
    let report = check(GLOBALS, &options, &[("run", i32s(&[3]))]);
    if report.skipped.is_none() {
        let shape = Interface::of(&report.instrumented).unwrap();
        assert_eq!(
            shape.import("env", "__asyncify_state"),
            Some(&mutable("i32"))
        );
        assert_eq!(
            shape.import("env", "__asyncify_data"),
            Some(&mutable("i32"))
        );
    }
}

#[test]
fn export_globals() {
    let options = Options {
        export_globals: true,
        ..Options::default()
    };
    let report = check(GLOBALS, &options, &[("run", i32s(&[3]))]);
    if report.skipped.is_none() {
        let shape = Interface::of(&report.instrumented).unwrap();
        assert_eq!(shape.export("__asyncify_state"), Some(&mutable("i32")));
        assert_eq!(shape.export("__asyncify_data"), Some(&mutable("i32")));
    }
}

#[test]
fn runtime_globals_hidden_by_default() {
    let report = check(GLOBALS, &Options::default(), &[("run", i32s(&[1]))]);
    if report.skipped.is_none() {
        let shape = Interface::of(&report.instrumented).unwrap();
        assert!(shape.export("__asyncify_state").is_none());
        assert!(shape.export("__asyncify_data").is_none());
        assert!(shape.import("env", "__asyncify_state").is_none());
    }
}

const MEMORY64_GLOBALS: &str = r#"(module
  (import "env" "tick" (func $tick (param i64) (result i64)))
  (memory (export "memory") i64 1)
  (func (export "run") (param $x i64) (result i64)
    (i64.add (local.get $x) (call $tick (local.get $x)))))"#;

#[test]
fn export_globals_memory64_data_is_i64() {
    let options = Options {
        export_globals: true,
        ..Options::default()
    };
    let report = check(MEMORY64_GLOBALS, &options, &[("run", vec![Val::I64(9)])]);
    if report.skipped.is_none() {
        let shape = Interface::of(&report.instrumented).unwrap();
        assert_eq!(shape.export("__asyncify_state"), Some(&mutable("i32")));
        assert_eq!(shape.export("__asyncify_data"), Some(&mutable("i64")));
    }
}
