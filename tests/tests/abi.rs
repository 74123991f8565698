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
    assert_overflow_trap(&outcome);
}

/// The call ended in the ABI's overflow trap (`unreachable` in
/// `asyncify_stop_unwind`, after the driver saw `cur > end`), not in some
/// other trap.
fn assert_overflow_trap(outcome: &asyncify_tests::Outcome) {
    let call = &outcome.calls[0];
    assert!(
        call.overflowed(),
        "expected the overflow trap in asyncify_stop_unwind, got {:?} (driver: {:?})",
        call.result,
        outcome.errors
    );
    assert!(
        outcome
            .errors
            .iter()
            .any(|e| e.contains("cur (") && e.contains("the buffer overflowed")),
        "the driver saw cur > end: {:?}",
        outcome.errors
    );
}

/// The buffer's exact-fit boundary: the size the unwinds need (measured in
/// a roomy buffer) is enough, one byte less overflows with the ABI's trap.
#[test]
fn buffer_just_big_enough() {
    let Some(wasm) = instrumented(SIMPLE, &Options::default()) else {
        return;
    };
    let calls = [("rec", vec![Val::I32(20)])];
    let original = run(
        &asyncify_tests::wasm(SIMPLE),
        &RunConfig::original(),
        &calls,
    );
    let roomy = run(&wasm, &RunConfig::instrumented(Schedule::Always), &calls);
    assert!(roomy.errors.is_empty(), "{:?}", roomy.errors);
    let needed = roomy.buffer_needed;
    assert!(needed > 20 * 4, "21 frames need room: {needed}");
    // Header (8 bytes) plus `frames` bytes for the frames.
    let sized = |frames: u64| {
        RunConfig::instrumented(Schedule::Always).buffer(BufferSpec {
            memory: None,
            addr: Some(0x8000),
            size: Some(8 + frames),
        })
    };
    let exact = run(&wasm, &sized(needed), &calls);
    assert!(exact.errors.is_empty(), "{:?}", exact.errors);
    assert_eq!(exact.results(0), original.results(0));
    assert_eq!(exact.unwinds(), 21);
    let short = run(&wasm, &sized(needed - 1), &calls);
    assert_overflow_trap(&short);
}

/// When a frame does not fit, unwinding writes nothing at or past `end`, but
/// `cur` still advances by every frame's size: the host can tell the buffer
/// was too small, and by how much, before `stop_unwind` traps on `cur > end`.
#[test]
fn overflow_writes_nothing_past_end_and_reports_the_size_needed() {
    use wasmtime::{Caller, Linker, Module, Store};
    let wat = r#"(module
      (import "env" "wait" (func $wait (param i32) (result i32)))
      (memory (export "memory") 1)
      (func $rec (export "rec") (param $n i32) (result i32)
        (local $a i64) (local $b f64)
        (local.set $a (i64.extend_i32_u (local.get $n)))
        (local.set $b (f64.convert_i32_u (local.get $n)))
        (if (result i32) (i32.eqz (local.get $n))
          (then (call $wait (i32.const 0)))
          (else (i32.add
            (call $rec (i32.sub (local.get $n) (i32.const 1)))
            (i32.add (i32.wrap_i64 (local.get $a)) (i32.trunc_f64_u (local.get $b))))))))"#;
    let wasm = asyncify_transform::instrument(wat.as_bytes(), &Options::default())
        .expect("instruments")
        .wasm;
    let measure = |buffer_size: u32| -> (u32, bool) {
        let engine = asyncify_tests::engine();
        let module = Module::new(engine, &wasm).expect("compiles");
        let mut linker: Linker<()> = Linker::new(engine);
        linker
            .func_wrap("env", "wait", |mut caller: Caller<'_, ()>, _: i32| -> i32 {
                let start = caller
                    .get_export("asyncify_start_unwind")
                    .and_then(|e| e.into_func())
                    .expect("export");
                start
                    .typed::<i32, ()>(&caller)
                    .expect("typed")
                    .call(&mut caller, 0x1000)
                    .expect("start_unwind");
                0
            })
            .expect("define");
        let mut store = Store::new(engine, ());
        // The shared test engine meters fuel.
        store.set_fuel(1_000_000).expect("fuel");
        let instance = linker
            .instantiate(&mut store, &module)
            .expect("instantiates");
        let memory = instance.get_memory(&mut store, "memory").expect("memory");
        // Header at 0x1000, frames from 0x1008, canary bytes everywhere after.
        let end = 0x1008 + buffer_size;
        memory.data_mut(&mut store)[0x1000..0x3000].fill(0xAB);
        memory.data_mut(&mut store)[0x1000..0x1004].copy_from_slice(&0x1008u32.to_le_bytes());
        memory.data_mut(&mut store)[0x1004..0x1008].copy_from_slice(&end.to_le_bytes());
        let rec = instance
            .get_typed_func::<i32, i32>(&mut store, "rec")
            .expect("rec");
        rec.call(&mut store, 10).expect("unwinds without trapping");
        let data = memory.data(&store);
        let cur = u32::from_le_bytes(data[0x1000..0x1004].try_into().expect("4 bytes"));
        let untouched = data[end as usize..0x3000].iter().all(|&b| b == 0xAB);
        (cur - 0x1008, untouched)
    };
    let (needed, _) = measure(4096);
    assert!(needed > 64, "eleven frames need room: {needed}");
    let (reported, untouched) = measure(64);
    assert_eq!(
        reported, needed,
        "cur advances by the full size even when frames do not fit"
    );
    assert!(untouched, "nothing is written at or past end");
}
