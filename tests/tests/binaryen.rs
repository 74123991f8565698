//! The driver against Binaryen's `wasm-opt --asyncify`, the reference: if
//! these pass, the driver speaks the ABI as existing runtimes expect, and it
//! notices a module that gets suspension wrong. Without `wasm-opt` on PATH
//! every test is skipped with a `SKIPPED` line on standard error, or fails
//! when `ASYNCIFY_REQUIRE_TOOLS` is set (as `.ci/run` sets it).
//!
//! To run the whole suite against Binaryen instead of this project's
//! transform: `ASYNCIFY_TESTS_INSTRUMENTER=binaryen cargo test -p asyncify-tests`
//! (tests of things Binaryen cannot do print a notice and pass).

use asyncify_tests::{
    binaryen, run, BufferSpec, CallOutcome, Check, Instrumenter, Options, RunConfig, Schedule, Val,
};

fn i32s(values: &[i32]) -> Vec<Val> {
    values.iter().map(|&v| Val::I32(v)).collect()
}

fn binaryen_check(module: &str) -> Check {
    Check::new(module).instrumenter(Instrumenter::Binaryen)
}

const PROGRAM: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (import "env" "tick64" (func $tick64 (param i64) (result i64)))
  (import "env" "quiet" (func $quiet (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (export "g") (mut i32) (i32.const 0))
  (func $fib (export "fib") (param $n i32) (result i32)
    (local $t i32)
    (local.set $t (i32.and (call $tick (local.get $n)) (i32.const 1)))
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (i32.add (local.get $n) (local.get $t)))
      (else
        (i32.add
          (i32.add (local.get $t) (call $fib (i32.sub (local.get $n) (i32.const 1))))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "loop") (param $n i32) (result i64)
    (local $i i32) (local $acc i64) (local $f f64)
    (loop $l
      (global.set $g (i32.add (global.get $g) (i32.const 1)))
      (i32.store (i32.shl (local.get $i) (i32.const 2)) (call $quiet (local.get $i)))
      (local.set $f (f64.add (local.get $f) (f64.const 0.5)))
      (local.set $acc
        (i64.add (local.get $acc)
          (i64.mul (call $tick64 (i64.extend_i32_u (local.get $i)))
                   (i64.trunc_f64_s (local.get $f)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc))
  (func (export "trap") (param $x i32) (result i32)
    (i32.div_u (call $tick (local.get $x)) (i32.sub (local.get $x) (local.get $x)))))"#;

const PROGRAM_CALLS: &[(&str, i32)] = &[("fib", 7), ("loop", 6), ("trap", 3), ("fib", 2)];

fn program_calls() -> Vec<(&'static str, Vec<Val>)> {
    PROGRAM_CALLS
        .iter()
        .map(|&(e, a)| (e, i32s(&[a])))
        .collect()
}

#[test]
fn binaryen_output_matches_the_original() {
    if binaryen::skip_if_unavailable("binaryen_output_matches_the_original") {
        return;
    }
    let report = binaryen_check(PROGRAM).calls(&program_calls()).run();
    assert_ran_and_suspended(&report, 20);
}

#[test]
fn binaryen_imports_list() {
    if binaryen::skip_if_unavailable("binaryen_imports_list") {
        return;
    }
    let options = Options {
        imports: vec!["env.tick".into(), "env.tick64".into()],
        ..Options::default()
    };
    let report = binaryen_check(PROGRAM)
        .options(&options)
        .calls(&program_calls())
        .run();
    assert_ran_and_suspended(&report, 20);
    // Under Always each call of a listed import unwinds once, and `env.quiet`
    // (not listed) never does.
    let listed = report
        .original
        .imports
        .iter()
        .filter(|c| c.name != "quiet")
        .count();
    assert_eq!(always_run(&report).unwinds(), listed as u64);
}

/// Fails unless the check ran (Binaryen did not refuse the module or ignore
/// an option) and the `Always` run unwound more than `unwinds` times: a
/// check that ran nothing, or never suspended, proves nothing.
fn assert_ran_and_suspended(report: &asyncify_tests::Report, unwinds: u64) {
    assert!(report.skipped.is_none(), "{:?}", report.skipped);
    let always = always_run(report);
    assert!(
        always.unwinds() > unwinds,
        "{} unwinds under Always, expected more than {unwinds}",
        always.unwinds()
    );
}

/// The run under `Schedule::Always`.
fn always_run(report: &asyncify_tests::Report) -> &asyncify_tests::Outcome {
    report
        .runs
        .iter()
        .find(|(s, _)| *s == Schedule::Always)
        .map(|(_, o)| o)
        .expect("no run under Schedule::Always")
}

#[test]
fn driver_notices_a_suspension_the_module_was_not_built_for() {
    if binaryen::skip_if_unavailable("driver_notices_a_suspension_the_module_was_not_built_for") {
        return;
    }
    // Binaryen is told only env.tick suspends; the driver suspends env.quiet
    // too. That must show up as a difference, not pass silently.
    let options = Options {
        imports: vec!["env.tick".into(), "env.tick64".into()],
        ..Options::default()
    };
    let result = binaryen_check(PROGRAM)
        .options(&options)
        .calls(&[("loop", i32s(&[3]))])
        .may_suspend(|_, _| true)
        .schedules(vec![Schedule::Always])
        .try_run();
    let report = result
        .err()
        .expect("the driver did not notice the broken run");
    eprintln!("{}", report.lines().take(6).collect::<Vec<_>>().join("\n"));
}

const SELF_DRIVEN: &str = r#"(module
  (import "asyncify" "start_unwind" (func $start_unwind (param i32)))
  (import "asyncify" "stop_rewind" (func $stop_rewind))
  (import "env" "log" (func $log (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $sleeping (mut i32) (i32.const 0))
  (func $sleep
    (if (global.get $sleeping)
      (then (global.set $sleeping (i32.const 0)) (call $stop_rewind))
      (else (global.set $sleeping (i32.const 1)) (call $start_unwind (i32.const 0x8000)))))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (loop $l
      (call $sleep)
      (local.set $acc (i32.add (local.get $acc) (call $log (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc)))"#;

#[test]
fn binaryen_guest_drives_itself() {
    if binaryen::skip_if_unavailable("binaryen_guest_drives_itself") {
        return;
    }
    let options = Options {
        ignore_imports: true,
        ..Options::default()
    };
    let report = binaryen_check(SELF_DRIVEN)
        .options(&options)
        .calls(&[("run", i32s(&[4]))])
        .run();
    // `all` holds on an empty list: the check must have run something.
    assert!(report.skipped.is_none(), "{:?}", report.skipped);
    assert!(!report.runs.is_empty());
    for (schedule, outcome) in &report.runs {
        assert_eq!(outcome.unwinds(), 4, "under {schedule:?}");
    }
}

#[test]
fn binaryen_imported_globals() {
    if binaryen::skip_if_unavailable("binaryen_imported_globals") {
        return;
    }
    // The driver provides env.__asyncify_state / __asyncify_data and checks
    // them against get_state and the buffer at every unwind.
    let options = Options {
        import_globals: true,
        ..Options::default()
    };
    let report = binaryen_check(PROGRAM)
        .options(&options)
        .calls(&program_calls())
        .run();
    assert_ran_and_suspended(&report, 20);
}

#[test]
fn binaryen_asserts_trap() {
    if binaryen::skip_if_unavailable("binaryen_asserts_trap") {
        return;
    }
    let options = Options {
        imports: vec!["env.tick".into()],
        asserts: true,
        ..Options::default()
    };
    let wasm = Instrumenter::Binaryen
        .instrument(&asyncify_tests::wasm(PROGRAM), &options)
        .unwrap();
    let config = RunConfig::instrumented(Schedule::Always).may_suspend(|_, n| n == "quiet");
    let outcome = run(&wasm, &config, &[("loop", i32s(&[2]))]);
    // The assertion Binaryen adds after a call the module was not built to
    // suspend at: `unreachable` in the caller, not an overflow or a driver
    // error.
    let call = &outcome.calls[0];
    assert_eq!(trap_code(call), Some("UnreachableCodeReached"), "{call:?}");
}

/// The wasm trap code of a call that trapped.
fn trap_code(call: &CallOutcome) -> Option<&str> {
    call.result.as_ref().err().and_then(|f| f.trap.as_deref())
}

#[test]
fn binaryen_overflow_traps() {
    if binaryen::skip_if_unavailable("binaryen_overflow_traps") {
        return;
    }
    let wasm = Instrumenter::Binaryen
        .instrument(&asyncify_tests::wasm(PROGRAM), &Options::default())
        .unwrap();
    let config = RunConfig::instrumented(Schedule::Always).buffer(BufferSpec {
        memory: None,
        addr: None,
        size: Some(32),
    });
    let outcome = run(&wasm, &config, &[("fib", i32s(&[12]))]);
    // The ABI's overflow trap: `unreachable` in `asyncify_stop_unwind`.
    assert!(outcome.calls[0].overflowed(), "{:?}", outcome.calls[0]);
    // With room for the stack, the same call completes.
    let calls = [("fib", i32s(&[12]))];
    let outcome = run(&wasm, &RunConfig::instrumented(Schedule::Always), &calls);
    let original = run(
        &asyncify_tests::wasm(PROGRAM),
        &RunConfig::original(),
        &calls,
    );
    assert_eq!(outcome.results(0), original.results(0));
    assert!(outcome.unwinds() > 0);
}
