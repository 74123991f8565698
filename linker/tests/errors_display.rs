//! An export call's error prints its message with `{}`, whatever path it
//! took: an async import's error ready on the first poll or after a wait, the
//! linker's own errors raised inside a wasm call, and the traps of unknown
//! imports. The error can still be downcast to what was returned.

mod common;

use asyncify_linker::{AsyncCaller, Error, Linker};
use common::{instance_with_export, instrumented, plain};
use wasmtime::{Engine, Store};

/// The error an import returns.
#[derive(Debug)]
struct Refused(i32);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request {} refused", self.0)
    }
}

impl std::error::Error for Refused {}

const CALLER: &str = r#"(module
    (import "env" "fetch" (func $fetch (param i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "run") (param i32) (result i32) (call $fetch (local.get 0))))"#;

/// Calls `run(x)` of `CALLER` whose `fetch` fails after `waits` yields.
fn fetch_failing_after(waits: usize, x: i32) -> wasmtime::Error {
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async(
            "env",
            "fetch",
            move |_: AsyncCaller<()>, x: i32| async move {
                for _ in 0..waits {
                    asyncify_linker::yield_now().await;
                }
                Err::<i32, _>(wasmtime::Error::new(Refused(x)))
            },
        )
        .expect("define");
    let module = instrumented(&engine, CALLER);
    let (mut store, _, run) = instance_with_export(&linker, &module, (), "run");
    futures::executor::block_on(run.call_async(&mut store, x)).unwrap_err()
}

#[test]
fn an_import_error_ready_on_the_first_poll_prints_its_message() {
    let err = fetch_failing_after(0, 4);
    println!("{err}");
    assert_eq!(err.to_string(), "request 4 refused");
    assert_eq!(err.downcast_ref::<Refused>().map(|r| r.0), Some(4));
    assert_eq!(err.root_cause().to_string(), "request 4 refused");
    // The wasm backtrace follows in the chain, as for wasmtime's traps.
    assert!(err.downcast_ref::<wasmtime::WasmBacktrace>().is_some());
}

#[test]
fn an_import_error_after_a_wait_prints_its_message() {
    let err = fetch_failing_after(2, 5);
    println!("{err}");
    assert_eq!(err.to_string(), "request 5 refused");
    assert_eq!(err.downcast_ref::<Refused>().map(|r| r.0), Some(5));
}

#[test]
fn an_error_with_context_prints_as_returned() {
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async("env", "fetch", |_: AsyncCaller<()>, x: i32| async move {
            Err::<i32, _>(wasmtime::Error::new(Refused(x)).context("loading the page"))
        })
        .expect("define");
    let module = instrumented(&engine, CALLER);
    let mut store = Store::new(&engine, ());
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiate");
    let run = instance.get_func(&mut store, "run").expect("run");
    let mut out = [wasmtime::Val::I32(0)];
    let err =
        futures::executor::block_on(run.call_async(&mut store, &[wasmtime::Val::I32(6)], &mut out))
            .unwrap_err();
    println!("{err}");
    assert_eq!(err.to_string(), "loading the page");
    assert!(format!("{err:?}").contains("request 6 refused"), "{err:?}");
}

#[test]
fn a_nested_call_error_prints_its_message() {
    // `outer` calls `env.fetch`, which calls back into the instance's `inner`,
    // whose own `env.deny` fails.
    let wat = r#"(module
        (import "env" "fetch" (func $fetch (param i32) (result i32)))
        (import "env" "deny" (func $deny (param i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "inner") (param i32) (result i32) (call $deny (local.get 0)))
        (func (export "run") (param i32) (result i32) (call $fetch (local.get 0))))"#;
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async(
            "env",
            "fetch",
            |caller: AsyncCaller<()>, x: i32| async move {
                let inner = caller.get_func("inner").expect("inner");
                let out = caller
                    .call_async(&inner, vec![wasmtime::Val::I32(x)])
                    .await?;
                Ok(out[0].unwrap_i32())
            },
        )
        .expect("fetch")
        .func_wrap_async("env", "deny", |_: AsyncCaller<()>, x: i32| async move {
            Err::<i32, _>(wasmtime::Error::new(Refused(x)))
        })
        .expect("deny");
    let module = instrumented(&engine, wat);
    let (mut store, _, run) = instance_with_export(&linker, &module, (), "run");
    let err = futures::executor::block_on(run.call_async(&mut store, 7)).unwrap_err();
    println!("{err}");
    assert_eq!(err.to_string(), "request 7 refused");
}

#[test]
fn no_buffer_memory_prints_its_message() {
    // Instrumented, but its memory is neither exported nor imported.
    let wat = r#"(module
        (import "env" "fetch" (func $fetch (param i32) (result i32)))
        (memory 1)
        (func (export "run") (param i32) (result i32) (call $fetch (local.get 0))))"#;
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async("env", "fetch", |_: AsyncCaller<()>, x: i32| async move {
            asyncify_linker::yield_now().await;
            Ok(x)
        })
        .expect("define");
    let module = instrumented(&engine, wat);
    let (mut store, _, run) = instance_with_export(&linker, &module, (), "run");
    let err = futures::executor::block_on(run.call_async(&mut store, 1)).unwrap_err();
    println!("{err}");
    assert!(
        err.to_string()
            .starts_with("cannot place the asyncify buffer of module"),
        "{err}"
    );
    assert!(matches!(
        err.downcast_ref::<Error>(),
        Some(Error::NoBufferMemory { .. })
    ));
    // The wasm backtrace follows in the chain.
    assert!(format!("{err:?}").contains("wasm backtrace"), "{err:?}");
}

#[test]
fn cannot_suspend_prints_its_message() {
    // The start function calls an import that waits.
    let wat = r#"(module
        (import "env" "fetch" (func $fetch (param i32) (result i32)))
        (memory (export "memory") 1)
        (func $init (drop (call $fetch (i32.const 1))))
        (start $init))"#;
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async("env", "fetch", |_: AsyncCaller<()>, x: i32| async move {
            asyncify_linker::yield_now().await;
            Ok(x)
        })
        .expect("define");
    let module = instrumented(&engine, wat);
    let mut store = Store::new(&engine, ());
    let err = linker.instantiate(&mut store, &module).unwrap_err();
    println!("{err}");
    assert!(
        err.to_string()
            .starts_with("import `env::fetch` needs to wait, but"),
        "{err}"
    );
    assert!(matches!(
        err.downcast_ref::<Error>(),
        Some(Error::CannotSuspend { .. })
    ));
}

#[test]
fn cannot_suspend_through_a_direct_wasmtime_call_prints_its_message() {
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async("env", "fetch", |_: AsyncCaller<()>, x: i32| async move {
            asyncify_linker::yield_now().await;
            Ok(x)
        })
        .expect("define");
    let module = instrumented(&engine, CALLER);
    let mut store = Store::new(&engine, ());
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiate");
    // Bypasses the linker: wasmtime's own call, whose error keeps wasmtime's
    // layout; the message is in the chain.
    let run = instance
        .wasmtime()
        .get_typed_func::<i32, i32>(&mut store, "run")
        .expect("run");
    let err = run.call(&mut store, 1).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<Error>(),
        Some(Error::CannotSuspend { .. })
    ));
}

#[test]
fn an_unknown_import_trap_prints_its_message() {
    let engine = Engine::default();
    for module in [plain(&engine, CALLER), instrumented(&engine, CALLER)] {
        let mut linker = Linker::new(&engine);
        linker
            .define_unknown_imports_as_traps(&module)
            .expect("define");
        let (mut store, _, run) = instance_with_export(&linker, &module, (), "run");
        let err = futures::executor::block_on(run.call_async(&mut store, 1)).unwrap_err();
        println!("{err}");
        assert_eq!(err.to_string(), "unknown import `env::fetch` was called");
    }
}

#[test]
fn a_guest_trap_keeps_wasmtime_layout() {
    let wat = r#"(module (func (export "run") unreachable))"#;
    let engine = Engine::default();
    let module = plain(&engine, wat);
    let mut store = Store::new(&engine, ());
    let instance = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .expect("instantiate");
    let run = instance
        .get_typed_func::<(), ()>(&mut store, "run")
        .expect("run");
    let err = futures::executor::block_on(run.call_async(&mut store, ())).unwrap_err();
    assert_eq!(
        err.downcast_ref::<wasmtime::Trap>(),
        Some(&wasmtime::Trap::UnreachableCodeReached)
    );
}
