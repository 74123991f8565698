//! The contract seen by a host: the five exports and their signatures, the
//! buffer header, and what happens when the buffer is too small.

use asyncify_tests::interface::func;
use asyncify_tests::{run, BufferSpec, Instrumenter, Interface, Options, RunConfig, Schedule, Val};

const SIMPLE: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (func $rec (export "rec") (param $n i32) (result i32)
    (local $a i64) (local $b f64) (local $c v128)
    (local.set $a (i64.extend_i32_u (call $tick (local.get $n))))
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.wrap_i64 (local.get $a)))
      (else
        (i32.add (i32.wrap_i64 (local.get $a))
          (call $rec (i32.sub (local.get $n) (i32.const 1))))))))"#;

fn instrumented(module: &str, options: &Options) -> Option<Vec<u8>> {
    let instrumenter = Instrumenter::from_env();
    match instrumenter.instrument(&asyncify_tests::wasm(module), options) {
        Ok(w) => Some(w),
        Err(e) if instrumenter == Instrumenter::Binaryen => {
            eprintln!("NOTICE: skipped: {e}");
            None
        }
        Err(e) => panic!("instrumenting failed: {e}"),
    }
}

#[test]
fn five_exports_with_their_signatures() {
    let Some(wasm) = instrumented(SIMPLE, &Options::default()) else {
        return;
    };
    let shape = Interface::of(&wasm).unwrap();
    assert_eq!(
        shape.export("asyncify_start_unwind"),
        Some(&func(&["i32"], &[]))
    );
    assert_eq!(shape.export("asyncify_stop_unwind"), Some(&func(&[], &[])));
    assert_eq!(
        shape.export("asyncify_start_rewind"),
        Some(&func(&["i32"], &[]))
    );
    assert_eq!(shape.export("asyncify_stop_rewind"), Some(&func(&[], &[])));
    assert_eq!(
        shape.export("asyncify_get_state"),
        Some(&func(&[], &["i32"]))
    );
    // The module's own interface is unchanged.
    let original = Interface::of(SIMPLE.as_bytes()).unwrap();
    for (name, kind) in &original.exports {
        assert_eq!(shape.export(name), Some(kind), "export {name}");
    }
    assert_eq!(shape.imports, original.imports);
}

#[test]
fn buffer_overflow_traps() {
    // Twenty frames cannot fit in 16 bytes of buffer: the call must trap
    // (Binaryen traps in the next start/stop call; checking earlier is fine),
    // never complete with a corrupted state.
    let Some(wasm) = instrumented(SIMPLE, &Options::default()) else {
        return;
    };
    let config = RunConfig::instrumented(Schedule::Always).buffer(BufferSpec {
        memory: None,
        addr: Some(0x8000),
        size: Some(24),
    });
    let outcome = run(&wasm, &config, &[("rec", vec![Val::I32(20)])]);
    assert!(outcome.start.is_none(), "{:?}", outcome.start);
    assert!(
        outcome.calls[0].trapped(),
        "expected a trap, got {:?} (driver: {:?})",
        outcome.calls[0].result,
        outcome.errors
    );
}

#[test]
fn buffer_just_big_enough() {
    // The same call with a roomy buffer completes, with the same result as
    // when nothing suspends.
    let Some(wasm) = instrumented(SIMPLE, &Options::default()) else {
        return;
    };
    let calls = [("rec", vec![Val::I32(20)])];
    let never = run(&wasm, &RunConfig::instrumented(Schedule::Never), &calls);
    let always = run(&wasm, &RunConfig::instrumented(Schedule::Always), &calls);
    assert!(always.errors.is_empty(), "{:?}", always.errors);
    assert_eq!(never.results(0), always.results(0));
    assert_eq!(always.unwinds(), 21);
}
