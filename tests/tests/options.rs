//! Each option: `imports`, `ignore_imports` with the guest driving itself
//! through `asyncify.*` imports, add/remove/only lists (by name-section
//! names), `propagate_add_list`, `asserts`.

use asyncify_tests::{
    check, instrumented_names, run, Check, Instrumenter, Interface, Options, RunConfig, Schedule,
    Val,
};

fn i32s(values: &[i32]) -> Vec<Val> {
    values.iter().map(|&v| Val::I32(v)).collect()
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(ToString::to_string).collect()
}

const TWO_IMPORTS: &str = r#"(module
  (import "env" "slow" (func $slow (param i32) (result i32)))
  (import "env" "fast" (func $fast (param i32) (result i32)))
  (import "wasi" "slow_too" (func $slow_too (param i32) (result i32)))
  (memory (export "memory") 1)
  (func $only_fast (export "only_fast") (param $x i32) (result i32)
    (i32.add (call $fast (local.get $x)) (call $fast (i32.const 1))))
  (func $both (export "both") (param $x i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc
        (i32.add (local.get $acc)
          (i32.mul (call $slow (local.get $i)) (call $fast (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $x))))
    (i32.add (local.get $acc) (call $only_fast (local.get $x))))
  (func $other (export "other") (param $x i32) (result i32)
    (i32.sub (call $slow_too (local.get $x)) (call $fast (local.get $x)))))"#;

#[test]
fn imports_list() {
    // Only env.slow may suspend: the driver suspends nothing else.
    let options = Options {
        imports: strings(&["env.slow"]),
        ..Options::default()
    };
    check(
        TWO_IMPORTS,
        &options,
        &[
            ("only_fast", i32s(&[2])),
            ("both", i32s(&[5])),
            ("other", i32s(&[3])),
        ],
    );
    if let Some(names) = instrumented_names(TWO_IMPORTS, &options) {
        assert_eq!(names, strings(&["both"]));
    }
}

#[test]
fn imports_list_with_wildcard() {
    let options = Options {
        imports: strings(&["*.slow*"]),
        ..Options::default()
    };
    check(
        TWO_IMPORTS,
        &options,
        &[("both", i32s(&[4])), ("other", i32s(&[3]))],
    );
    if let Some(names) = instrumented_names(TWO_IMPORTS, &options) {
        assert_eq!(names, strings(&["both", "other"]));
    }
}

#[test]
fn ignore_imports_without_runtime_calls() {
    // Nothing may suspend: nothing unwinds, and the module behaves the same.
    let options = Options {
        ignore_imports: true,
        ..Options::default()
    };
    Check::new(TWO_IMPORTS)
        .options(&options)
        .calls(&[("both", i32s(&[3])), ("other", i32s(&[1]))])
        .allow_no_unwind()
        .run();
    // Nothing is instrumented (with the option ignored, `both`, `only_fast`
    // and `other` would be).
    if let Some(names) = instrumented_names(TWO_IMPORTS, &options) {
        assert_eq!(names, Vec::<String>::new());
    }
}

/// The guest drives itself: `$sleep` unwinds through the runtime imports
/// (Emscripten's pattern, with a flag instead of `get_state`). In the
/// original run the `asyncify.*` imports are no-ops, so `$sleep` returns at
/// once, which is what a completed sleep looks like to its callers.
const SELF_DRIVEN: &str = r#"(module
  (import "asyncify" "start_unwind" (func $start_unwind (param i32)))
  (import "asyncify" "stop_rewind" (func $stop_rewind))
  (import "env" "log" (func $log (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $sleeping (mut i32) (i32.const 0))
  (func $sleep
    (if (global.get $sleeping)
      (then
        (global.set $sleeping (i32.const 0))
        (call $stop_rewind))
      (else
        (global.set $sleeping (i32.const 1))
        (call $start_unwind (i32.const 0x8000)))))
  (func $work (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 3)) (local.get $i)))
      (call $sleep)
      (local.set $acc (i32.add (local.get $acc) (call $log (local.get $acc))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
  (func (export "run") (param $n i32) (result i32)
    (i32.add (call $work (local.get $n)) (i32.const 1))))"#;

#[test]
fn ignore_imports_guest_drives_itself() {
    let options = Options {
        ignore_imports: true,
        ..Options::default()
    };
    let report = Check::new(SELF_DRIVEN)
        .options(&options)
        .calls(&[("run", i32s(&[1])), ("run", i32s(&[4]))])
        .run();
    if report.skipped.is_none() {
        let shape = Interface::of(&report.instrumented).unwrap();
        assert!(!shape.imports_func_from("asyncify"));
        // Every schedule sees the guest's own unwinds.
        assert!(report.runs.iter().all(|(_, o)| o.unwinds() == 5));
    }
}

/// The same, asking `asyncify.get_state` (which Binaryen refuses).
const SELF_DRIVEN_GET_STATE: &str = r#"(module
  (import "asyncify" "start_unwind" (func $start_unwind (param i32)))
  (import "asyncify" "stop_rewind" (func $stop_rewind))
  (import "asyncify" "get_state" (func $get_state (result i32)))
  (import "env" "log" (func $log (param i32) (result i32)))
  (memory (export "memory") 1)
  (func $sleep
    (if (i32.eq (call $get_state) (i32.const 2))
      (then (call $stop_rewind))
      (else (call $start_unwind (i32.const 0x8000)))))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $l
      (call $sleep)
      (local.set $acc (i32.add (local.get $acc) (call $log (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc)))"#;

#[test]
fn ignore_imports_guest_asks_get_state() {
    let options = Options {
        ignore_imports: true,
        ..Options::default()
    };
    Check::new(SELF_DRIVEN_GET_STATE)
        .options(&options)
        .calls(&[("run", i32s(&[3]))])
        .run();
}

#[test]
fn runtime_imports_with_host_imports_suspending_too() {
    // Guest-driven and host-driven suspensions in one module.
    check(SELF_DRIVEN, &Options::default(), &[("run", i32s(&[3]))]);
}

/// With `ignore_indirect`, analysis says `$dispatch` cannot suspend; the add
/// list instruments it anyway, and (as in Binaryen) its indirect calls become
/// suspension points. Calls to imports outside the `imports` option do not.
const ADD: &str = r#"(module
  (import "env" "async" (func $async (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $t (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $async_inc $pure)
  (func $async_inc (type $t) (i32.add (local.get 0) (call $async (local.get 0))))
  (func $pure (type $t) (i32.xor (local.get 0) (i32.const 0x55)))
  (func $dispatch (export "dispatch") (param $i i32) (param $x i32) (result i32)
    (i32.add (local.get $x) (call_indirect (type $t) (local.get $x) (local.get $i))))
  (func $outer (export "outer") (param $i i32) (param $x i32) (result i32)
    (i32.mul (call $dispatch (local.get $i) (local.get $x)) (i32.const 3)))
  (func $run (export "run") (param $x i32) (result i32)
    (call $async_inc (local.get $x))))"#;

#[test]
fn add_list() {
    // $outer is not instrumented (no propagation): it only reaches the
    // non-suspending table entry.
    let options = Options {
        ignore_indirect: true,
        add_list: strings(&["dispatch"]),
        ..Options::default()
    };
    check(
        ADD,
        &options,
        &[
            ("dispatch", i32s(&[0, 3])),
            ("dispatch", i32s(&[1, 3])),
            ("outer", i32s(&[1, 4])),
            ("run", i32s(&[5])),
        ],
    );
    if let Some(names) = instrumented_names(ADD, &options) {
        assert_eq!(names, strings(&["async_inc", "dispatch", "run"]));
    }
}

#[test]
fn propagate_add_list() {
    // With propagation the callers of $dispatch are instrumented too, so a
    // suspension under $outer works.
    let options = Options {
        ignore_indirect: true,
        add_list: strings(&["dispatch"]),
        propagate_add_list: true,
        ..Options::default()
    };
    check(
        ADD,
        &options,
        &[
            ("outer", i32s(&[0, 4])),
            ("dispatch", i32s(&[0, 1])),
            ("outer", i32s(&[1, 2])),
        ],
    );
    if let Some(names) = instrumented_names(ADD, &options) {
        assert_eq!(names, strings(&["async_inc", "dispatch", "outer", "run"]));
    }
}

const REMOVE: &str = r#"(module
  (import "env" "async" (func $async (param i32) (result i32)))
  (import "env" "quiet" (func $quiet (param i32) (result i32)))
  (memory (export "memory") 1)
  ;; Calls an import that may suspend as far as analysis knows, but the
  ;; remove list says it never does.
  (func $noisy (param $x i32) (result i32)
    (i32.add (call $quiet (local.get $x)) (i32.const 1)))
  (func $calls_noisy (export "calls_noisy") (param $x i32) (result i32)
    (i32.mul (call $noisy (local.get $x)) (i32.const 2)))
  (func $run (export "run") (param $x i32) (result i32)
    (i32.add (call $async (local.get $x)) (call $noisy (local.get $x)))))"#;

#[test]
fn remove_list() {
    let options = Options {
        remove_list: strings(&["noisy"]),
        ..Options::default()
    };
    Check::new(REMOVE)
        .options(&options)
        .calls(&[("calls_noisy", i32s(&[2])), ("run", i32s(&[5]))])
        .may_suspend(|_, name| name == "async")
        .run();
    if let Some(names) = instrumented_names(REMOVE, &options) {
        assert_eq!(names, strings(&["run"]));
    }
}

const ONLY: &str = r#"(module
  (import "env" "async" (func $async (param i32) (result i32)))
  (import "env" "other" (func $other (param i32) (result i32)))
  (memory (export "memory") 1)
  (func $helper (export "helper") (param $x i32) (result i32)
    (i32.add (local.get $x) (call $other (local.get $x))))
  (func $outer (export "outer") (param $x i32) (result i32)
    (i32.mul (call $helper (local.get $x)) (i32.const 3)))
  (func $run (export "run") (param $x i32) (result i32)
    (i32.add (call $async (local.get $x)) (call $pure (local.get $x))))
  (func $pure (param $x i32) (result i32)
    (i32.xor (local.get $x) (i32.const 0x55))))"#;

fn async_or_other(_module: &str, name: &str) -> bool {
    name == "async" || name == "other"
}

#[test]
fn only_list() {
    // Exactly $run and $helper are instrumented; $run's async import may
    // suspend, and so may env.other when $helper is called directly.
    let options = Options {
        only_list: Some(strings(&["run", "helper"])),
        ..Options::default()
    };
    Check::new(ONLY)
        .options(&options)
        .calls(&[("run", i32s(&[2])), ("helper", i32s(&[7]))])
        .may_suspend(async_or_other)
        .run();
    if let Some(names) = instrumented_names(ONLY, &options) {
        assert_eq!(names, strings(&["helper", "run"]));
    }
}

const ASSERTS: &str = r#"(module
  (import "env" "async" (func $async (param i32) (result i32)))
  (import "env" "sync" (func $sync (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "run") (param $x i32) (result i32)
    (i32.add (call $async (local.get $x)) (local.get $x)))
  (func (export "not_instrumented") (param $x i32) (result i32)
    (i32.add (call $sync (local.get $x)) (i32.const 1))))"#;

#[test]
fn asserts_do_not_disturb_correct_runs() {
    let options = Options {
        imports: strings(&["env.async"]),
        asserts: true,
        ..Options::default()
    };
    check(
        ASSERTS,
        &options,
        &[("run", i32s(&[1])), ("not_instrumented", i32s(&[2]))],
    );
}

#[test]
fn asserts_trap_when_uninstrumented_code_unwinds() {
    // env.sync is not in the imports list, yet the host unwinds in it: the
    // uninstrumented caller must trap instead of carrying on.
    let options = Options {
        imports: strings(&["env.async"]),
        asserts: true,
        ..Options::default()
    };
    let wasm = asyncify_tests::wasm(ASSERTS);
    let instrumenter = Instrumenter::from_env();
    let instrumented = match instrumenter.instrument(&wasm, &options) {
        Ok(w) => w,
        Err(e) if instrumenter == Instrumenter::Binaryen => {
            return eprintln!("NOTICE: skipped: {e}");
        }
        Err(e) => panic!("instrumenting failed: {e}"),
    };
    let config = RunConfig::instrumented(Schedule::Always).may_suspend(|_, name| name == "sync");
    let outcome = run(
        &instrumented,
        &config,
        &[("not_instrumented", i32s(&[2])), ("run", i32s(&[3]))],
    );
    assert!(outcome.start.is_none(), "{:?}", outcome.start);
    assert!(
        outcome.calls[0].trapped(),
        "expected a trap, got {:?}",
        outcome.calls[0].result
    );
    // Without asserts the same unwind goes unnoticed.
    let plain = Options {
        asserts: false,
        ..options
    };
    let instrumented = instrumenter.instrument(&wasm, &plain).unwrap();
    let outcome = run(&instrumented, &config, &[("not_instrumented", i32s(&[2]))]);
    assert!(!outcome.calls[0].trapped(), "{:?}", outcome.calls[0].result);
}
