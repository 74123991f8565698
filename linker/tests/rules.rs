//! The rules users rely on (issue 3, item 4): errors, traps, cancellation,
//! nested calls, re-entrance, instances importing instances, uninstrumented
//! modules, and the buffer.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use asyncify_linker::{AsyncCaller, Error, Linker};
use common::{instrumented, instrumented_with, plain, poll_once, yield_now};
use futures::executor::block_on;
use wasmtime::{Engine, Store, Trap, WasmBacktrace};

/// `run(x)` returns `get(x) + 1`; `boom` traps two calls deep after an import.
const CALLS_GET: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "run") (param i32) (result i32)
        (i32.add (call $get (local.get 0)) (i32.const 1)))
    (func $inner (param i32)
        (if (local.get 0) (then unreachable)))
    (func $middle (export "boom") (param i32)
        (drop (call $get (local.get 0)))
        (call $inner (local.get 0))))"#;

/// The error the test imports return.
#[derive(Debug)]
struct Failure(i32);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "get({}) failed", self.0)
    }
}
impl std::error::Error for Failure {}

/// `get(x)`: waits once if `wait`, then fails for negative `x`.
fn failing_get(engine: &Engine, wait: bool) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async("env", "get", move |_: AsyncCaller<()>, x: i32| async move {
            if wait {
                yield_now().await;
            }
            if x < 0 {
                return Err(Failure(x).into());
            }
            Ok(x * 10)
        })
        .unwrap();
    linker
}

#[test]
fn import_error_on_first_poll_fails_the_call_and_keeps_the_instance() {
    let engine = Engine::default();
    let module = instrumented(&engine, CALLS_GET);
    let mut store = Store::new(&engine, ());
    let instance = failing_get(&engine, false)
        .instantiate(&mut store, &module)
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let err = block_on(run.call_async(&mut store, -3)).unwrap_err();
    assert_eq!(err.downcast_ref::<Failure>().map(|f| f.0), Some(-3));
    assert_eq!(block_on(run.call_async(&mut store, 4)).unwrap(), 41);
}

#[test]
fn import_error_after_suspending_fails_the_call_100k_times_without_leaking() {
    let engine = Engine::default();
    let module = instrumented(&engine, CALLS_GET);
    let mut store = Store::new(&engine, ());
    let instance = failing_get(&engine, true)
        .instantiate(&mut store, &module)
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(block_on(run.call_async(&mut store, 1)).unwrap(), 11);
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    let pages = memory.size(&store);
    let before = instance.buffer_usage().unwrap();
    block_on(async {
        for i in 0..100_000 {
            let err = run.call_async(&mut store, -1 - i).await.unwrap_err();
            assert_eq!(err.downcast_ref::<Failure>().map(|f| f.0), Some(-1 - i));
        }
    });
    let after = instance.buffer_usage().unwrap();
    assert_eq!(after, before);
    assert_eq!((after.in_use, after.suspended), (0, 0));
    assert_eq!(memory.size(&store), pages);
    assert_eq!(block_on(run.call_async(&mut store, 2)).unwrap(), 21);
}

#[test]
fn failing_twice_in_a_row_then_working() {
    let engine = Engine::default();
    let module = instrumented(&engine, CALLS_GET);
    let mut store = Store::new(&engine, ());
    let instance = failing_get(&engine, true)
        .instantiate(&mut store, &module)
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    for x in [-1, -2] {
        // The import's own error, not some other failure of the driver.
        let err = block_on(run.call_async(&mut store, x)).unwrap_err();
        assert_eq!(
            err.downcast_ref::<Failure>().map(|f| f.0),
            Some(x),
            "{err:?}"
        );
    }
    assert_eq!(block_on(run.call_async(&mut store, 3)).unwrap(), 31);
}

#[test]
fn guest_trap_after_resuming_keeps_its_wasm_backtrace() {
    let engine = Engine::default();
    let module = instrumented(&engine, CALLS_GET);
    let mut store = Store::new(&engine, ());
    let instance = failing_get(&engine, true)
        .instantiate(&mut store, &module)
        .unwrap();
    let boom = instance
        .get_typed_func::<i32, ()>(&mut store, "boom")
        .unwrap();
    let err = block_on(boom.call_async(&mut store, 1)).unwrap_err();
    assert_eq!(
        err.downcast_ref::<Trap>(),
        Some(&Trap::UnreachableCodeReached)
    );
    let trace = err
        .downcast_ref::<WasmBacktrace>()
        .expect("a wasm backtrace");
    let names: Vec<_> = trace
        .frames()
        .iter()
        .filter_map(|f| f.func_name())
        .collect();
    assert_eq!(names, ["inner", "middle"], "{trace}");
    // The instance still works.
    block_on(boom.call_async(&mut store, 0)).unwrap();
}

#[test]
fn dropping_a_suspended_call_resets_the_instance() {
    let engine = Engine::default();
    let module = instrumented(&engine, CALLS_GET);
    let mut store = Store::new(&engine, ());
    let instance = failing_get(&engine, true)
        .instantiate(&mut store, &module)
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    for _ in 0..3 {
        let mut call = Box::pin(run.call_async(&mut store, 5));
        assert!(poll_once(call.as_mut()).is_pending());
        assert_eq!(instance.buffer_usage().unwrap().suspended, 1);
        drop(call);
        assert_eq!(instance.buffer_usage().unwrap().suspended, 0);
    }
    assert_eq!(block_on(run.call_async(&mut store, 5)).unwrap(), 51);
}

/// `outer()` returns `get(1) + get(2)`; `inner(x)` returns `get(x)`; `double(x)`
/// returns `2x` without imports. Used by the re-entrance tests.
const REENTRANT: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (memory (export "memory") 1)
    (global $depth (mut i32) (i32.const 0))
    (func (export "outer") (result i32)
        (i32.add (call $get (i32.const 1)) (call $get (i32.const 2))))
    (func (export "inner") (param i32) (result i32)
        (call $get (local.get 0)))
    (func (export "double") (param i32) (result i32)
        (i32.mul (local.get 0) (i32.const 2))))"#;

/// How `get` behaves in the re-entrance tests.
#[derive(Clone, Copy)]
enum Callback {
    /// Calls `double(x)` on its first poll and returns at once.
    ReadyFirstPoll,
    /// Waits once, then calls `double(x)`.
    AfterWaiting,
    /// For x < 100, calls `inner(x + 100)`, which calls `get` again and waits.
    Suspending,
}

fn reentrant_linker(engine: &Engine, how: Callback) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async(
            "env",
            "get",
            move |caller: AsyncCaller<()>, x: i32| async move {
                match how {
                    Callback::ReadyFirstPoll => {
                        let double = caller.get_func("double").unwrap();
                        let out = caller.call_async(&double, vec![x.into()]).await?;
                        Ok(out[0].unwrap_i32())
                    }
                    Callback::AfterWaiting => {
                        yield_now().await;
                        let double = caller.get_func("double").unwrap();
                        let out = caller.call_async(&double, vec![x.into()]).await?;
                        Ok(out[0].unwrap_i32())
                    }
                    Callback::Suspending if x < 100 => {
                        let inner = caller.get_func("inner").unwrap();
                        let inner = caller.with(|store| inner.typed::<i32, i32>(&store))?;
                        Ok(caller.call_typed(&inner, x + 100).await? + 1000)
                    }
                    Callback::Suspending => {
                        yield_now().await;
                        Ok(x)
                    }
                }
            },
        )
        .unwrap();
    linker
}

#[test]
fn reentrance_ready_on_first_poll() {
    let engine = Engine::default();
    let module = instrumented(&engine, REENTRANT);
    let mut store = Store::new(&engine, ());
    let instance = reentrant_linker(&engine, Callback::ReadyFirstPoll)
        .instantiate(&mut store, &module)
        .unwrap();
    let outer = instance
        .get_typed_func::<(), i32>(&mut store, "outer")
        .unwrap();
    assert_eq!(block_on(outer.call_async(&mut store, ())).unwrap(), 6);
    assert_eq!(instance.buffer_usage().unwrap().capacity, 0, "no unwind");
}

#[test]
fn reentrance_after_waiting() {
    let engine = Engine::default();
    let module = instrumented(&engine, REENTRANT);
    let mut store = Store::new(&engine, ());
    let instance = reentrant_linker(&engine, Callback::AfterWaiting)
        .instantiate(&mut store, &module)
        .unwrap();
    let outer = instance
        .get_typed_func::<(), i32>(&mut store, "outer")
        .unwrap();
    assert_eq!(block_on(outer.call_async(&mut store, ())).unwrap(), 6);
}

#[test]
fn reentrance_where_the_callback_suspends() {
    let engine = Engine::default();
    let module = instrumented(&engine, REENTRANT);
    let mut store = Store::new(&engine, ());
    let instance = reentrant_linker(&engine, Callback::Suspending)
        .instantiate(&mut store, &module)
        .unwrap();
    let outer = instance
        .get_typed_func::<(), i32>(&mut store, "outer")
        .unwrap();
    // get(1) = inner(101) + 1000 = 1101; get(2) = 1102.
    let mut call = Box::pin(outer.call_async(&mut store, ()));
    // First poll: the callback suspends inside the import, so both the inner
    // and the outer call are suspended, each with its own region.
    assert!(poll_once(call.as_mut()).is_pending());
    drop(call);
    assert_eq!(instance.buffer_usage().unwrap().suspended, 0);
    assert_eq!(block_on(outer.call_async(&mut store, ())).unwrap(), 2203);
    assert_eq!(instance.buffer_usage().unwrap().suspended, 0);
}

#[test]
fn resuming_out_of_order_fails_clearly() {
    // The import of the outer call starts a nested call, lets it suspend,
    // hides it away and completes: resuming the outer call now would run it
    // on top of the nested call's guest stack.
    let engine = Engine::default();
    let module = instrumented(&engine, REENTRANT);
    type Hidden = Pin<Box<dyn Future<Output = wasmtime::Result<Vec<wasmtime::Val>>> + Send>>;
    use std::pin::Pin;
    let hidden: Arc<Mutex<Option<Hidden>>> = Arc::default();
    let mut linker = Linker::new(&engine);
    let hide = hidden.clone();
    linker
        .func_wrap_async("env", "get", move |caller: AsyncCaller<()>, x: i32| {
            let hide = hide.clone();
            async move {
                if x >= 100 {
                    yield_now().await;
                    return Ok(x);
                }
                let inner = caller.get_func("inner").unwrap();
                let mut nested: Hidden =
                    Box::pin(caller.call_async(&inner, vec![(x + 100).into()]));
                // Poll the nested call once (it suspends), then keep it.
                let first = futures::poll!(nested.as_mut());
                assert!(first.is_pending());
                *hide.lock().unwrap() = Some(nested);
                yield_now().await;
                Ok(x)
            }
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let outer = instance
        .get_typed_func::<(), i32>(&mut store, "outer")
        .unwrap();
    let err = block_on(outer.call_async(&mut store, ())).unwrap_err();
    assert!(
        matches!(err.downcast_ref::<Error>(), Some(Error::ResumeOrder { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("reverse order"));
    // The hidden call, polled outside any driver, cannot reach the store.
    let mut nested = hidden.lock().unwrap().take().unwrap();
    match poll_once(nested.as_mut()) {
        Poll::Ready(Err(e)) => assert!(matches!(
            e.downcast_ref::<Error>(),
            Some(Error::StoreUnavailable)
        )),
        other => panic!("unexpected {:?}", other.map(|r| r.is_ok())),
    }
    drop(nested);
    assert_eq!(instance.buffer_usage().unwrap().suspended, 0);
    // Everything is back to normal.
    let inner = instance
        .get_typed_func::<i32, i32>(&mut store, "inner")
        .unwrap();
    assert_eq!(block_on(inner.call_async(&mut store, 200)).unwrap(), 200);
}

/// B: `work(x)` waits in `env.get` and returns `get(x) * 2`.
const LIB: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "work") (param i32) (result i32)
        (i32.mul (call $get (local.get 0)) (i32.const 2))))"#;

/// A: `run()` returns `work(1) + work(2) * 100`.
const APP: &str = r#"(module
    (import "lib" "work" (func $work (param i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "run") (result i32)
        (i32.add (call $work (i32.const 1))
                 (i32.mul (call $work (i32.const 2)) (i32.const 100)))))"#;

#[test]
fn an_instance_suspends_when_the_instance_it_imports_from_does() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = failing_get(&engine, true);
    let polls = Arc::new(AtomicUsize::new(0));
    let lib = linker
        .instantiate(&mut store, &instrumented(&engine, LIB))
        .unwrap();
    linker.instance(&mut store, "lib", &lib).unwrap();
    let app = linker
        .instantiate(&mut store, &instrumented(&engine, APP))
        .unwrap();
    let run = app.get_typed_func::<(), i32>(&mut store, "run").unwrap();
    let counted = async {
        let mut call = std::pin::pin!(run.call_async(&mut store, ()));
        loop {
            match futures::poll!(call.as_mut()) {
                Poll::Ready(out) => return out,
                Poll::Pending => {
                    polls.fetch_add(1, Ordering::Relaxed);
                    yield_now().await;
                }
            }
        }
    };
    // work(1) = 20, work(2) = 40.
    assert_eq!(block_on(counted).unwrap(), 20 + 4000);
    assert_eq!(polls.load(Ordering::Relaxed), 2);
    for instance in [&lib, &app] {
        let usage = instance.buffer_usage().unwrap();
        assert!(usage.capacity > 0);
        assert_eq!(usage.suspended, 0);
    }
    // Errors cross instances too.
    let work_fails = linker
        .instantiate(
            &mut store,
            &instrumented(
                &engine,
                r#"(module (import "lib" "work" (func $w (param i32) (result i32)))
                    (memory (export "memory") 1)
                    (func (export "run") (result i32) (call $w (i32.const -7))))"#,
            ),
        )
        .unwrap();
    let run = work_fails
        .get_typed_func::<(), i32>(&mut store, "run")
        .unwrap();
    let err = block_on(run.call_async(&mut store, ())).unwrap_err();
    assert_eq!(err.downcast_ref::<Failure>().map(|f| f.0), Some(-7));
}

#[test]
fn an_uninstrumented_importer_calls_an_instrumented_export_synchronously() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    for wait in [false, true] {
        let mut linker = failing_get(&engine, wait);
        let lib = linker
            .instantiate(&mut store, &instrumented(&engine, LIB))
            .unwrap();
        linker.instance(&mut store, "lib", &lib).unwrap();
        let app = linker
            .instantiate(&mut store, &plain(&engine, APP))
            .unwrap();
        assert!(!app.is_instrumented());
        let run = app.get_typed_func::<(), i32>(&mut store, "run").unwrap();
        let out = block_on(run.call_async(&mut store, ()));
        if wait {
            let err = out.unwrap_err();
            assert!(
                matches!(err.downcast_ref::<Error>(), Some(Error::CannotSuspend { name, .. }) if name == "work"),
                "{err:?}"
            );
            assert_eq!(lib.buffer_usage().unwrap().suspended, 0);
        } else {
            assert_eq!(out.unwrap(), 4020);
        }
    }
}

#[test]
fn uninstrumented_modules_link_with_sync_imports_and_refuse_async_ones() {
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let module = plain(&engine, CALLS_GET);
    let mut linker = Linker::new(&engine);
    linker.func_wrap("env", "get", |x: i32| x + 100).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(block_on(run.call_async(&mut store, 1)).unwrap(), 102);

    let err = failing_get(&engine, false)
        .instantiate(&mut store, &module)
        .unwrap_err();
    assert!(
        matches!(err.downcast_ref::<Error>(), Some(Error::NotInstrumented { module, name, .. })
            if module == "env" && name == "get"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`env::get`"), "{err}");
}

#[test]
fn an_async_import_cannot_wait_in_a_start_function() {
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory (export "memory") 1)
        (func $start (drop (call $get (i32.const 1))))
        (start $start))"#;
    let engine = Engine::default();
    let module = instrumented(&engine, wat);
    let mut store = Store::new(&engine, ());
    // Ready at once: fine.
    failing_get(&engine, false)
        .instantiate(&mut store, &module)
        .unwrap();
    // Would have to wait: a clear error.
    let err = failing_get(&engine, true)
        .instantiate(&mut store, &module)
        .unwrap_err();
    assert!(format!("{err:?}").contains("start function"), "{err:?}");
}

/// `deep(n)`: recurses `n` deep with a few live locals, calls `env.get` at the
/// bottom; the data segment is a canary that must never change.
const DEEP: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 0) "canary-canary-canary")
    (func $deep (export "deep") (param $n i32) (result i32)
        (local $a i64) (local $b i64)
        (local.set $a (i64.extend_i32_u (local.get $n)))
        (local.set $b (i64.mul (local.get $a) (local.get $a)))
        (if (result i32) (i32.eqz (local.get $n))
            (then (call $get (i32.const 1)))
            (else (i32.add
                (call $deep (i32.sub (local.get $n) (i32.const 1)))
                (i32.wrap_i64 (i64.sub (local.get $b) (i64.mul (local.get $a) (local.get $a)))))))))"#;

fn canary(instance: &asyncify_linker::Instance, store: &mut Store<()>) -> Vec<u8> {
    let memory = instance.get_memory(&mut *store, "memory").unwrap();
    memory.data(&*store)[..20].to_vec()
}

#[test]
fn a_stack_too_big_for_the_buffer_fails_the_call_then_the_buffer_grows() {
    let engine = Engine::default();
    let module = instrumented(&engine, DEEP);
    let mut store = Store::new(&engine, ());
    let mut linker = failing_get(&engine, true);
    linker.buffer_size(256);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    assert_eq!(block_on(deep.call_async(&mut store, 3)).unwrap(), 10);
    // The buffer is taken in whole pages: 5000 levels do not fit in one.
    let mut depth = 5000;
    let err = block_on(deep.call_async(&mut store, depth)).unwrap_err();
    match err.downcast_ref::<Error>() {
        Some(Error::BufferOverflow {
            size,
            grown_to: Some(next),
        }) => assert!(next > size),
        _ => panic!("{err:?}"),
    }
    assert!(err
        .to_string()
        .contains("did not fit in the asyncify buffer"));
    assert_eq!(canary(&instance, &mut store), b"canary-canary-canary");
    // The module reports how much it needed, so the next try fits. (Each
    // failure at least doubles the space.)
    let mut failures = 1;
    loop {
        match block_on(deep.call_async(&mut store, depth)) {
            Ok(v) => {
                assert_eq!(v, 10);
                break;
            }
            Err(e) => {
                assert!(matches!(
                    e.downcast_ref::<Error>(),
                    Some(Error::BufferOverflow { .. })
                ));
                failures += 1;
                assert!(failures < 20);
            }
        }
    }
    assert_eq!(failures, 1, "one failure was enough to learn the size");
    assert_eq!(canary(&instance, &mut store), b"canary-canary-canary");
    depth = 10;
    assert_eq!(block_on(deep.call_async(&mut store, depth)).unwrap(), 10);
    assert_eq!(instance.buffer_usage().unwrap().suspended, 0);
}

#[test]
fn a_buffer_that_cannot_grow_says_so() {
    let engine = Engine::default();
    let module = instrumented(&engine, DEEP);
    let mut store = Store::new(&engine, ());
    let mut linker = failing_get(&engine, true);
    linker.buffer_size(256).max_buffer_size(256);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    for _ in 0..3 {
        let err = block_on(deep.call_async(&mut store, 5000)).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<Error>(),
                Some(Error::BufferOverflow { grown_to: None, .. })
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("cannot grow"));
    }
    assert_eq!(canary(&instance, &mut store), b"canary-canary-canary");
    assert_eq!(block_on(deep.call_async(&mut store, 2)).unwrap(), 10);
}

#[test]
fn the_buffer_goes_in_the_secondary_memory_when_there_is_one() {
    let engine = Engine::default();
    let module = instrumented_with(&engine, DEEP, &["asyncify-in-secondary-memory"]);
    let mut store = Store::new(&engine, ());
    let instance = failing_get(&engine, true)
        .instantiate(&mut store, &module)
        .unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    assert_eq!(block_on(deep.call_async(&mut store, 50)).unwrap(), 10);
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(memory.size(&store), 1, "the main memory did not grow");
    assert_eq!(instance.buffer_usage().unwrap().capacity, 65536);
    // One page is too small for a very deep stack, and cannot grow.
    let err = block_on(deep.call_async(&mut store, 5000)).unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::BufferOverflow { grown_to: None, .. })
        ),
        "{err:?}"
    );
    assert_eq!(block_on(deep.call_async(&mut store, 50)).unwrap(), 10);
}

#[test]
fn a_memory_that_cannot_grow_needs_a_fixed_buffer() {
    let wat = DEEP.replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 1 1)",
    );
    let engine = Engine::default();
    let module = instrumented(&engine, &wat);
    let mut store = Store::new(&engine, ());
    let instance = failing_get(&engine, true)
        .instantiate(&mut store, &module)
        .unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    let err = block_on(deep.call_async(&mut store, 3)).unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::NoBufferMemory { .. })
        ),
        "{err:?}"
    );
    assert!(format!("{err:?}").contains("fixed_buffer"), "{err:?}");
    // Still usable for calls that do not wait.
    let mut linker = failing_get(&engine, true);
    linker.fixed_buffer(1024, 4096);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    assert_eq!(block_on(deep.call_async(&mut store, 20)).unwrap(), 10);
    assert_eq!(instance.buffer_usage().unwrap().capacity, 4096);
    assert_eq!(canary(&instance, &mut store), b"canary-canary-canary");
}

#[test]
fn unknown_imports_are_all_listed_with_their_types() {
    let wat = r#"(module
        (import "env" "f" (func (param i32 i64) (result f32)))
        (import "env" "g" (global (mut i32)))
        (import "env" "m" (memory 1 2))
        (import "other" "t" (table 1 funcref)))"#;
    let engine = Engine::default();
    let module = plain(&engine, wat);
    let mut store = Store::new(&engine, ());
    let err = Linker::new(&engine)
        .instantiate(&mut store, &module)
        .unwrap_err();
    let message = err.to_string();
    for expected in [
        "4 imports are not defined",
        "`env::f`: func (param i32 i64) (result f32)",
        "`env::g`: global (mut i32)",
        "`env::m`: memory 1 2",
        "`other::t`: table 1 funcref",
    ] {
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn a_panicking_import_leaves_the_instance_usable() {
    let engine = Engine::default();
    let module = instrumented(&engine, CALLS_GET);
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async("env", "get", |_: AsyncCaller<()>, x: i32| async move {
            yield_now().await;
            assert!(x != 13, "unlucky");
            Ok(x)
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on(run.call_async(&mut store, 13))
    }));
    // The import's own panic reached the caller (not a trap or an error).
    let payload = panicked.expect_err("the panic in the import was swallowed");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    assert_eq!(message, Some("unlucky"));
    let usage = instance.buffer_usage().unwrap();
    assert_eq!((usage.in_use, usage.suspended), (0, 0));
    assert_eq!(block_on(run.call_async(&mut store, 1)).unwrap(), 2);
}

#[test]
fn memory64_modules_are_driven() {
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory (export "memory") i64 1)
        (func $deep (export "deep") (param $n i32) (result i32)
            (if (result i32) (i32.eqz (local.get $n))
                (then (call $get (i32.const 5)))
                (else (i32.add (i32.const 1)
                    (call $deep (i32.sub (local.get $n) (i32.const 1))))))))"#;
    let engine = Engine::default();
    let module = instrumented(&engine, wat);
    let mut store = Store::new(&engine, ());
    let instance = failing_get(&engine, true)
        .instantiate(&mut store, &module)
        .unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    assert_eq!(block_on(deep.call_async(&mut store, 100)).unwrap(), 150);
    assert!(instance.buffer_usage().unwrap().capacity > 0);
}

#[test]
fn modules_share_a_defined_memory_and_table() {
    // As in dynamic linking: `lib` puts its function in the shared table and
    // data in the shared memory; `main` calls through the table, waits in an
    // async import, and reads lib's data.
    let lib = r#"(module
        (import "env" "memory" (memory 1))
        (import "env" "table" (table 4 funcref))
        (data (i32.const 32) "\2a")
        (func $sq (param i32) (result i32) (i32.mul (local.get 0) (local.get 0)))
        (elem (i32.const 1) func $sq))"#;
    let main = r#"(module
        (import "env" "memory" (memory 1))
        (import "env" "table" (table 4 funcref))
        (import "env" "get" (func $get (param i32) (result i32)))
        (type $unary (func (param i32) (result i32)))
        (func (export "run") (param i32) (result i32)
            (i32.add
                (call_indirect (type $unary) (call $get (local.get 0)) (i32.const 1))
                (i32.load8_u (i32.const 32)))))"#;
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let memory = wasmtime::Memory::new(&mut store, wasmtime::MemoryType::new(1, None)).unwrap();
    let table = wasmtime::Table::new(
        &mut store,
        wasmtime::TableType::new(wasmtime::RefType::FUNCREF, 4, None),
        wasmtime::Ref::Func(None),
    )
    .unwrap();
    let mut linker = failing_get(&engine, true);
    linker.define(&store, "env", "memory", memory).unwrap();
    linker.define(&store, "env", "table", table).unwrap();
    linker
        .instantiate(&mut store, &plain(&engine, lib))
        .unwrap();
    let main = linker
        .instantiate(&mut store, &instrumented(&engine, main))
        .unwrap();
    let run = main.get_typed_func::<i32, i32>(&mut store, "run").unwrap();
    // get(3) = 30; 30 * 30 + 42.
    assert_eq!(block_on(run.call_async(&mut store, 3)).unwrap(), 942);
    // The buffer went at the end of the shared memory, after lib's data.
    assert!(memory.size(&store) > 1);
    assert_eq!(memory.data(&store)[32], 42);
}
