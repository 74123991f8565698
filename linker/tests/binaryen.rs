//! The linker drives modules instrumented by Binaryen's `wasm-opt --asyncify`
//! as it drives this project's. Skipped, with a notice, without `wasm-opt`.

mod common;

use asyncify_linker::{AsyncCaller, Error, Linker};
use common::{binaryen, poll_once, yield_now};
use futures::executor::block_on;
use wasmtime::{Engine, Store};

/// `sum(n)` adds `get(i)` for i in 0..n; `deep(n)` recurses and calls `get`
/// at the bottom. The data segment is a canary.
const MODULE: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 0) "canary-canary-canary")
    (func (export "sum") (param $n i32) (result i32)
        (local $i i32) (local $acc i32)
        (block $done
            (loop $next
                (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $acc (i32.add (local.get $acc) (call $get (local.get $i))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $next)))
        (local.get $acc))
    (func (export "neg") (result i32) (call $get (i32.const -1)))
    (func $deep (export "deep") (param $n i32) (result i32)
        (local $a i64)
        (local.set $a (i64.extend_i32_u (local.get $n)))
        (if (result i32) (i32.eqz (local.get $n))
            (then (call $get (i32.const 1)))
            (else (i32.add
                (call $deep (i32.sub (local.get $n) (i32.const 1)))
                (i32.wrap_i64 (i64.sub (local.get $a) (local.get $a))))))))"#;

fn linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async("env", "get", |_: AsyncCaller<()>, x: i32| async move {
            yield_now().await;
            if x < 0 {
                wasmtime::bail!("negative");
            }
            Ok(x * 2)
        })
        .unwrap();
    linker
}

#[test]
fn binaryen_output_suspends_and_resumes() {
    let engine = Engine::default();
    let Some(module) = binaryen(&engine, "binaryen_output_suspends_and_resumes", MODULE, &[])
    else {
        return;
    };
    let mut store = Store::new(&engine, ());
    let instance = linker(&engine).instantiate(&mut store, &module).unwrap();
    assert!(instance.is_instrumented());
    let sum = instance
        .get_typed_func::<i32, i32>(&mut store, "sum")
        .unwrap();
    // The first poll leaves the call pending (the import waits, so the
    // Binaryen module unwound); the rest of it completes.
    {
        let mut call = std::pin::pin!(sum.call_async(&mut store, 10));
        assert!(poll_once(call.as_mut()).is_pending());
        assert_eq!(instance.buffer_usage().unwrap().suspended, 1);
        assert_eq!(block_on(call).unwrap(), 90);
    }
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    assert_eq!(block_on(deep.call_async(&mut store, 300)).unwrap(), 2);
    assert_eq!(block_on(sum.call_async(&mut store, 0)).unwrap(), 0);
    // A failing import leaves it usable, twice in a row.
    let neg = instance
        .get_typed_func::<(), i32>(&mut store, "neg")
        .unwrap();
    for _ in 0..2 {
        let err = block_on(neg.call_async(&mut store, ())).unwrap_err();
        assert_eq!(err.to_string(), "negative");
    }
    assert_eq!(block_on(sum.call_async(&mut store, 3)).unwrap(), 6);
    assert_eq!(instance.buffer_usage().unwrap().suspended, 0);
}

#[test]
fn binaryen_overflow_fails_the_call_without_corrupting_memory() {
    let engine = Engine::default();
    let Some(module) = binaryen(
        &engine,
        "binaryen_overflow_fails_the_call_without_corrupting_memory",
        MODULE,
        &[],
    ) else {
        return;
    };
    let mut store = Store::new(&engine, ());
    let mut linker = linker(&engine);
    linker.buffer_size(64);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    // Binaryen writes past the buffer's end: with the buffer at the end of
    // memory, that is an out-of-bounds trap, reported as an overflow.
    let err = block_on(deep.call_async(&mut store, 2000)).unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::BufferOverflow {
                grown_to: Some(_),
                ..
            })
        ),
        "{err:?}"
    );
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(&memory.data(&store)[..20], b"canary-canary-canary");
    let mut ok = false;
    for _ in 0..20 {
        if let Ok(v) = block_on(deep.call_async(&mut store, 2000)) {
            assert_eq!(v, 2);
            ok = true;
            break;
        }
    }
    assert!(ok, "the buffer grew until the stack fit");
    assert_eq!(&memory.data(&store)[..20], b"canary-canary-canary");
}

#[test]
fn binaryen_instances_import_each_other() {
    let engine = Engine::default();
    let lib = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "work") (param i32) (result i32)
            (i32.add (call $get (local.get 0)) (i32.const 1))))"#;
    let app = r#"(module
        (import "lib" "work" (func $work (param i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "run") (result i32)
            (i32.mul (call $work (i32.const 3)) (call $work (i32.const 4)))))"#;
    let name = "binaryen_instances_import_each_other";
    let (Some(lib), Some(app)) = (
        binaryen(&engine, name, lib, &[]),
        binaryen(&engine, name, app, &[]),
    ) else {
        return;
    };
    let mut store = Store::new(&engine, ());
    let mut linker = linker(&engine);
    let lib = linker.instantiate(&mut store, &lib).unwrap();
    linker.instance(&mut store, "lib", &lib).unwrap();
    let app = linker.instantiate(&mut store, &app).unwrap();
    let run = app.get_typed_func::<(), i32>(&mut store, "run").unwrap();
    assert_eq!(block_on(run.call_async(&mut store, ())).unwrap(), 7 * 9);
}
