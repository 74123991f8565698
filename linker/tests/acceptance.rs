//! The acceptance suite (issue 3, item 5): wasm-linker-js's linker tests and
//! the asyncify JS runtime's scenarios, ported to this linker.
//!
//! wasm-linker-js lets the last definition of a name win, so these linkers
//! allow shadowing.

mod common;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncify_linker::{AsyncCaller, Instance, Linker, TypedFunc};
use common::{binaryen, instrumented, instrumented_with, plain, poll_once, tokio_rt, yield_now};
use futures::executor::block_on;
use wasmtime::{Engine, Extern, Func, Memory, MemoryType, Store};

/// A calculator module exporting `add`.
const ADD: &str = r#"(module
    (memory (export "memory") 1 1)
    (func (export "add") (param i32 i32) (result i32)
        (i32.add (local.get 0) (local.get 1))))"#;

/// A module importing `calculator::add` and re-exporting it as `add`.
const USING_ADD: &str = r#"(module
    (import "calculator" "add" (func $calc_add (param i32 i32) (result i32)))
    (memory (export "memory") 1 1)
    (func (export "add") (param i32 i32) (result i32)
        (call $calc_add (local.get 0) (local.get 1))))"#;

/// A module importing `add` from two calculators.
const USING_ADD_WITH_ALIAS: &str = r#"(module
    (import "calculator1" "add" (func $add1 (param i32 i32) (result i32)))
    (import "calculator2" "add" (func $add2 (param i32 i32) (result i32)))
    (memory (export "memory") 1 1)
    (func (export "add1") (param i32 i32) (result i32)
        (call $add1 (local.get 0) (local.get 1)))
    (func (export "add2") (param i32 i32) (result i32)
        (call $add2 (local.get 0) (local.get 1))))"#;

fn shadowing_linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker.allow_shadowing(true);
    linker
}

/// Calls the export `name` of `instance` as `(i32, i32) -> i32`.
fn call2(store: &mut Store<()>, instance: &Instance, name: &str, a: i32, b: i32) -> i32 {
    let f = instance
        .get_typed_func::<(i32, i32), i32>(&mut *store, name)
        .unwrap();
    block_on(f.call_async(&mut *store, (a, b))).unwrap()
}

#[test]
fn define_a_single_method_and_instantiate() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = shadowing_linker(&engine);
    linker
        .func_wrap("calculator", "add", |a: i32, b: i32| a + b)
        .unwrap();
    let instance = linker
        .instantiate(&mut store, &plain(&engine, USING_ADD))
        .unwrap();
    assert_eq!(call2(&mut store, &instance, "add", 1, 2), 3);
}

#[test]
fn define_an_entire_module_and_instantiate() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = shadowing_linker(&engine);
    linker
        .module(&mut store, "calculator", &plain(&engine, ADD))
        .unwrap();
    let instance = linker
        .instantiate(&mut store, &plain(&engine, USING_ADD))
        .unwrap();
    assert_eq!(call2(&mut store, &instance, "add", 1, 2), 3);
}

#[test]
fn the_last_import_wins_between_identical_imports() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = shadowing_linker(&engine);
    linker
        .func_wrap("calculator", "add", |_: i32, _: i32| 42)
        .unwrap();
    linker
        .module(&mut store, "calculator", &plain(&engine, ADD))
        .unwrap();
    let instance = linker
        .instantiate(&mut store, &plain(&engine, USING_ADD))
        .unwrap();
    assert_eq!(call2(&mut store, &instance, "add", 1, 2), 3);
}

#[test]
fn the_last_import_wins_between_identical_imports_in_the_other_order() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = shadowing_linker(&engine);
    linker
        .module(&mut store, "calculator", &plain(&engine, ADD))
        .unwrap();
    linker
        .func_wrap("calculator", "add", |_: i32, _: i32| 42)
        .unwrap();
    let instance = linker
        .instantiate(&mut store, &plain(&engine, USING_ADD))
        .unwrap();
    assert_eq!(call2(&mut store, &instance, "add", 1, 2), 42);
}

#[test]
fn the_last_of_several_identical_definitions_wins() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = shadowing_linker(&engine);
    linker
        .func_wrap("calculator", "add", |_: i32, _: i32| 41)
        .unwrap();
    linker
        .func_wrap("calculator", "add", |_: i32, _: i32| 42)
        .unwrap();
    linker
        .module(&mut store, "calculator", &plain(&engine, ADD))
        .unwrap();
    linker
        .func_wrap("calculator", "add", |_: i32, _: i32| 43)
        .unwrap();
    let instance = linker
        .instantiate(&mut store, &plain(&engine, USING_ADD))
        .unwrap();
    assert_eq!(call2(&mut store, &instance, "add", 1, 2), 43);
}

fn sleeping_add(linker: &mut Linker<()>) {
    linker
        .func_wrap_async(
            "calculator",
            "add",
            |_: AsyncCaller<()>, (_a, _b): (i32, i32)| async move {
                tokio::time::sleep(Duration::from_millis(150)).await;
                Ok(42)
            },
        )
        .unwrap();
}

#[test]
fn an_async_import_that_sleeps() {
    // The module's memory cannot grow (`memory 1 1`), so the buffer goes in
    // a secondary memory.
    let engine = Engine::default();
    let module = instrumented_with(&engine, USING_ADD, &["asyncify-in-secondary-memory"]);
    let mut store = Store::new(&engine, ());
    let mut linker = shadowing_linker(&engine);
    sleeping_add(&mut linker);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let add = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "add")
        .unwrap();
    let start = Instant::now();
    let out = tokio_rt().block_on(add.call_async(&mut store, (1, 2)));
    assert_eq!(out.unwrap(), 42);
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[test]
fn an_async_import_that_sleeps_in_a_binaryen_module_with_the_js_runtime_buffer() {
    // As wasm-linker-js runs it: Binaryen's output, and the buffer where the
    // JS runtime puts it (1000 bytes at address 16).
    const TEST: &str =
        "an_async_import_that_sleeps_in_a_binaryen_module_with_the_js_runtime_buffer";
    let engine = Engine::default();
    let Some(module) = binaryen(&engine, TEST, USING_ADD, &[]) else {
        return;
    };
    let mut store = Store::new(&engine, ());
    let mut linker = shadowing_linker(&engine);
    linker.fixed_buffer(16, 1000);
    sleeping_add(&mut linker);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let add = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "add")
        .unwrap();
    let out = tokio_rt().block_on(async {
        let mut call = std::pin::pin!(add.call_async(&mut store, (1, 2)));
        assert!(
            poll_once(call.as_mut()).is_pending(),
            "the call never waited"
        );
        call.await
    });
    assert_eq!(out.unwrap(), 42);
}

#[test]
fn add_an_existing_instance_to_the_linker() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let calc = wasmtime::Instance::new(&mut store, &plain(&engine, ADD), &[]).unwrap();
    let mut linker = shadowing_linker(&engine);
    linker
        .instance(&mut store, "calculator", &Instance::from_wasmtime(calc))
        .unwrap();
    let instance = linker
        .instantiate(&mut store, &plain(&engine, USING_ADD))
        .unwrap();
    assert_eq!(call2(&mut store, &instance, "add", 1, 2), 3);
}

#[test]
fn alias_modules() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = shadowing_linker(&engine);
    linker
        .module(&mut store, "calculator1", &plain(&engine, ADD))
        .unwrap();
    linker.alias_module("calculator1", "calculator2").unwrap();
    // As in wasm-linker-js, the importing module is instrumented.
    let instance = linker
        .instantiate(&mut store, &instrumented(&engine, USING_ADD_WITH_ALIAS))
        .unwrap();
    assert_eq!(call2(&mut store, &instance, "add1", 1, 99), 100);
    assert_eq!(call2(&mut store, &instance, "add2", 2, 99), 101);
}

/// An "import object": module name → item name → item, defined in one go.
fn define_import_object(
    linker: &mut Linker<()>,
    store: &Store<()>,
    object: Vec<(&str, Vec<(&str, Extern)>)>,
) {
    for (module, items) in object {
        for (name, item) in items {
            linker.define(store, module, name, item).unwrap();
        }
    }
}

#[test]
fn an_import_object_with_one_module() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let add = Func::wrap(&mut store, |a: i32, b: i32| a + b);
    let mut linker = shadowing_linker(&engine);
    define_import_object(
        &mut linker,
        &store,
        vec![("calculator", vec![("add", add.into())])],
    );
    let instance = linker
        .instantiate(&mut store, &plain(&engine, USING_ADD))
        .unwrap();
    assert_eq!(call2(&mut store, &instance, "add", 1, 2), 3);
}

#[test]
fn an_import_object_with_several_modules() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let add = Func::wrap(&mut store, |a: i32, b: i32| a + b);
    let mut linker = shadowing_linker(&engine);
    define_import_object(
        &mut linker,
        &store,
        vec![
            ("calculator1", vec![("add", add.into())]),
            ("calculator2", vec![("add", add.into())]),
        ],
    );
    let instance = linker
        .instantiate(&mut store, &plain(&engine, USING_ADD_WITH_ALIAS))
        .unwrap();
    assert_eq!(call2(&mut store, &instance, "add1", 1, 2), 3);
    assert_eq!(call2(&mut store, &instance, "add2", 1, 2), 3);
}

// The asyncify JS runtime's scenarios.

/// `run()` reads the time, sleeps, and returns whether time went forward;
/// `run2` is the same function.
const TIMED: &str = r#"(module
    (import "env" "get_time" (func $get_time (result i32)))
    (import "env" "sleep" (func $sleep (param i32)))
    (memory (export "memory") 16)
    (func $run (export "run") (result i32)
        (local $start i32)
        (local.set $start (call $get_time))
        (call $sleep (i32.const 100))
        (i32.gt_u (call $get_time) (local.get $start)))
    (export "run2" (func $run)))"#;

/// A linker with `env.get_time` and an async `env.sleep(ms)`; the first
/// `fail_sleeps` sleeps fail. Time is a clock that only a completed sleep
/// moves forward (by its `ms`), so "time went forward" means the guest
/// really waited for the sleep, and the tests never read the real time.
/// The clock is returned beside the linker.
fn timed_linker(engine: &Engine, fail_sleeps: i32) -> (Linker<()>, Arc<AtomicI32>) {
    let clock = Arc::new(AtomicI32::new(0));
    let failures_left = Arc::new(AtomicI32::new(fail_sleeps));
    let mut linker = Linker::new(engine);
    let now = clock.clone();
    linker
        .func_wrap("env", "get_time", move || now.load(Ordering::SeqCst))
        .unwrap();
    let advance = clock.clone();
    linker
        .func_wrap_async("env", "sleep", move |_: AsyncCaller<()>, ms: i32| {
            let fail = failures_left.fetch_sub(1, Ordering::Relaxed) > 0;
            let advance = advance.clone();
            async move {
                if fail {
                    wasmtime::bail!("Expected error");
                }
                tokio::time::sleep(Duration::from_millis(ms as u64 / 10)).await;
                advance.fetch_add(ms, Ordering::SeqCst);
                Ok(())
            }
        })
        .unwrap();
    (linker, clock)
}

/// Calls `func` (`run` or `run2` of [`TIMED`]) on a tokio runtime, checking
/// that the call was pending after its first poll (the guest unwound while
/// `sleep` waited) before it completed.
fn call_sleeping(store: &mut Store<()>, func: &TypedFunc<(), i32>) -> i32 {
    tokio_rt().block_on(async {
        let mut call = std::pin::pin!(func.call_async(&mut *store, ()));
        assert!(
            poll_once(call.as_mut()).is_pending(),
            "the call completed without waiting for `sleep`"
        );
        call.await.unwrap()
    })
}

#[test]
fn js_runtime_exported_memory() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let (linker, clock) = timed_linker(&engine, 0);
    let instance = linker
        .instantiate(&mut store, &instrumented(&engine, TIMED))
        .unwrap();
    for (name, time) in [("run", 100), ("run2", 200)] {
        let func = instance
            .get_typed_func::<(), i32>(&mut store, name)
            .unwrap();
        assert_eq!(call_sleeping(&mut store, &func), 1, "{name}");
        assert_eq!(clock.load(Ordering::SeqCst), time, "{name}");
    }
    assert_eq!(instance.buffer_usage().unwrap().suspended, 0);
}

#[test]
fn js_runtime_imported_memory() {
    let wat = r#"(module
        (import "env" "memory" (memory 16))
        (import "env" "get_time" (func $get_time (result i32)))
        (import "env" "sleep" (func $sleep (param i32)))
        (func $run (export "run") (result i32)
            (local $start i32)
            (local.set $start (call $get_time))
            (call $sleep (i32.const 100))
            (i32.gt_u (call $get_time) (local.get $start))))"#;
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let memory = Memory::new(&mut store, MemoryType::new(16, None)).unwrap();
    let (mut linker, clock) = timed_linker(&engine, 0);
    linker.define(&store, "env", "memory", memory).unwrap();
    let instance = linker
        .instantiate(&mut store, &instrumented(&engine, wat))
        .unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    assert_eq!(call_sleeping(&mut store, &run), 1);
    assert_eq!(clock.load(Ordering::SeqCst), 100);
    // The buffer went into the imported memory, after its 16 pages.
    assert!(memory.size(&store) > 16);
}

#[test]
fn js_runtime_reentrance() {
    // `callback(n)` calls `call_main(n - 1)` while n > 0; `call_main` waits,
    // then calls `callback` again: ten nested calls, each suspended in turn.
    let wat = r#"(module
        (import "env" "call_main" (func $call_main (param i32)))
        (memory (export "memory") 16)
        (func (export "callback") (param $counter i32)
            (if (i32.gt_s (local.get $counter) (i32.const 0))
                (then (call $call_main
                    (local.tee $counter (i32.sub (local.get $counter) (i32.const 1))))))))"#;
    let engine = Engine::default();
    let calls = Arc::new(AtomicI32::new(0));
    let mut linker = Linker::new(&engine);
    let count = calls.clone();
    linker
        .func_wrap_async(
            "env",
            "call_main",
            move |caller: AsyncCaller<()>, counter: i32| {
                count.fetch_add(1, Ordering::Relaxed);
                async move {
                    yield_now().await;
                    let callback = caller.get_func("callback").unwrap();
                    caller.call_async(&callback, vec![counter.into()]).await?;
                    Ok(())
                }
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker
        .instantiate(&mut store, &instrumented(&engine, wat))
        .unwrap();
    let callback = instance
        .get_typed_func::<i32, ()>(&mut store, "callback")
        .unwrap();
    block_on(callback.call_async(&mut store, 10)).unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 10);
    assert_eq!(instance.buffer_usage().unwrap().suspended, 0);
}

#[test]
fn js_runtime_error_handling_twice_then_usable() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let (linker, clock) = timed_linker(&engine, 2);
    let instance = linker
        .instantiate(&mut store, &instrumented(&engine, TIMED))
        .unwrap();
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let rt = tokio_rt();
    for _ in 0..2 {
        let err = rt.block_on(run.call_async(&mut store, ())).unwrap_err();
        // The import's error as it returned it: `{}` prints its message
        // (issue 14); wasmtime's backtrace stays below it in the chain.
        assert_eq!(err.to_string(), "Expected error");
        assert_eq!(err.root_cause().to_string(), "Expected error", "{err:?}");
    }
    // The failed sleeps did not move the clock; the next one waits and does.
    assert_eq!(clock.load(Ordering::SeqCst), 0);
    assert_eq!(call_sleeping(&mut store, &run), 1);
    assert_eq!(clock.load(Ordering::SeqCst), 100);
}

#[test]
fn js_runtime_missing_import_is_named() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let err = Linker::<()>::new(&engine)
        .instantiate(&mut store, &instrumented(&engine, TIMED))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("`env::get_time`: func (result i32)"),
        "{message}"
    );
    assert!(
        message.contains("`env::sleep`: func (param i32)"),
        "{message}"
    );
}
