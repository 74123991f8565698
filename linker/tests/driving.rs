//! Driving instrumented modules: ready and pending imports, values, memory
//! and store access across awaits, on several executors.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncify_linker::{AsyncCaller, Linker};
use common::{instrumented, local_pool, tokio_rt, yield_now};
use futures::executor::block_on;
use wasmtime::{Engine, FuncType, Store, Val, ValType};

/// `sum(n)` adds `get(i)` for i in 0..n; `fact(n)` recurses n deep and calls
/// `tick` at every level on the way back up.
const SUM: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (import "env" "tick" (func $tick (param i32)))
    (memory (export "memory") 1)
    (func (export "sum") (param $n i32) (result i32)
        (local $i i32) (local $acc i32)
        (block $done
            (loop $next
                (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                (local.set $acc (i32.add (local.get $acc) (call $get (local.get $i))))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $next)))
        (local.get $acc))
    (func $fact (export "fact") (param $n i64) (result i64)
        (local $r i64)
        (if (i64.le_u (local.get $n) (i64.const 1))
            (then (local.set $r (i64.const 1)))
            (else (local.set $r (i64.mul (local.get $n)
                (call $fact (i64.sub (local.get $n) (i64.const 1)))))))
        (call $tick (i32.wrap_i64 (local.get $n)))
        (local.get $r)))"#;

fn sum_linker(engine: &Engine, pending: bool, polls: Arc<AtomicUsize>) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async("env", "get", move |_: AsyncCaller<()>, i: i32| {
            let polls = polls.clone();
            async move {
                polls.fetch_add(1, Ordering::Relaxed);
                if pending {
                    yield_now().await;
                }
                Ok(i * 2)
            }
        })
        .unwrap();
    linker
        .func_wrap_async(
            "env",
            "tick",
            move |_: AsyncCaller<()>, _: i32| async move {
                if pending {
                    yield_now().await;
                }
                Ok(())
            },
        )
        .unwrap();
    linker
}

/// Counts how often `future` returns `Pending` before it completes.
async fn count_pending<F: std::future::Future>(future: F) -> (F::Output, usize) {
    let mut future = std::pin::pin!(future);
    let mut pending = 0;
    loop {
        match futures::poll!(future.as_mut()) {
            std::task::Poll::Ready(out) => return (out, pending),
            std::task::Poll::Pending => {
                pending += 1;
                yield_now().await;
            }
        }
    }
}

#[test]
fn ready_import_returns_without_unwinding() {
    let engine = Engine::default();
    let module = instrumented(&engine, SUM);
    let calls = Arc::new(AtomicUsize::new(0));
    let linker = sum_linker(&engine, false, calls.clone());
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let sum = instance
        .get_typed_func::<i32, i32>(&mut store, "sum")
        .unwrap();
    let (out, pending) = block_on(count_pending(sum.call_async(&mut store, 10)));
    assert_eq!(out.unwrap(), 90);
    assert_eq!(pending, 0);
    assert_eq!(calls.load(Ordering::Relaxed), 10);
    // No unwind ever happened, so no buffer was ever set up.
    assert_eq!(instance.buffer_usage().unwrap().capacity, 0);
}

#[test]
fn pending_import_suspends_and_resumes() {
    let engine = Engine::default();
    let module = instrumented(&engine, SUM);
    let polls = Arc::new(AtomicUsize::new(0));
    let linker = sum_linker(&engine, true, polls.clone());
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let sum = instance
        .get_typed_func::<i32, i32>(&mut store, "sum")
        .unwrap();
    let (out, pending) = block_on(count_pending(sum.call_async(&mut store, 10)));
    assert_eq!(out.unwrap(), 90);
    assert_eq!(pending, 10, "one suspension per import call");
    // The import's closure ran once per call: rewinding does not call it again.
    assert_eq!(polls.load(Ordering::Relaxed), 10);
    let usage = instance.buffer_usage().unwrap();
    assert!(usage.capacity > 0);
    assert_eq!((usage.in_use, usage.suspended), (0, 0));
}

#[test]
fn deep_recursion_suspends_at_every_level() {
    let engine = Engine::default();
    let module = instrumented(&engine, SUM);
    let linker = sum_linker(&engine, true, Arc::default());
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let fact = instance
        .get_typed_func::<i64, i64>(&mut store, "fact")
        .unwrap();
    let (out, pending) = block_on(count_pending(fact.call_async(&mut store, 20)));
    assert_eq!(out.unwrap(), 2_432_902_008_176_640_000);
    assert_eq!(pending, 20);
    // 2000 levels deep: each suspension saves the whole stack.
    let (out, _) = block_on(count_pending(fact.call_async(&mut store, 2000)));
    let expected = (1..=2000i64).fold(1i64, |acc, n| acc.wrapping_mul(n));
    assert_eq!(out.unwrap(), expected);
}

#[test]
fn values_of_every_type_cross_a_suspension() {
    let wat = r#"(module
        (import "env" "wide" (func $wide (param i64 f32 f64) (result i64 f32 f64 i32)))
        (memory (export "memory") 1)
        (func (export "run") (param i64 f32 f64) (result i64 f32 f64 i32)
            (call $wide (local.get 0) (local.get 1) (local.get 2))))"#;
    let engine = Engine::default();
    let module = instrumented(&engine, wat);
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async(
            "env",
            "wide",
            |_: AsyncCaller<()>, (a, b, c): (i64, f32, f64)| async move {
                yield_now().await;
                Ok((a.wrapping_mul(3), b * 2.0, -c, u32::MAX))
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(i64, f32, f64), (i64, f32, f64, u32)>(&mut store, "run")
        .unwrap();
    let big = 0x7edc_ba98_7654_3210_i64;
    let out = block_on(run.call_async(&mut store, (big, 1.5, 2.25))).unwrap();
    assert_eq!(out, (big.wrapping_mul(3), 3.0, -2.25, u32::MAX));
}

#[test]
fn dynamic_import_and_dynamic_call() {
    let wat = r#"(module
        (import "env" "pair" (func $pair (param i32) (result i64 i32)))
        (memory (export "memory") 1)
        (func (export "run") (param i32) (result i64)
            (local $hi i64)
            (call $pair (local.get 0))
            (i64.extend_i32_u)
            (i64.add)))"#;
    let engine = Engine::default();
    let module = instrumented(&engine, wat);
    let mut linker = Linker::new(&engine);
    let ty = FuncType::new(&engine, [ValType::I32], [ValType::I64, ValType::I32]);
    linker
        .func_new_async("env", "pair", ty, |_: AsyncCaller<()>, params| async move {
            yield_now().await;
            let x = params[0].unwrap_i32();
            Ok(vec![Val::I64(i64::from(x) << 32), Val::I32(x)])
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance.get_func(&mut store, "run").unwrap();
    let mut results = [Val::I64(0)];
    block_on(run.call_async(&mut store, &[Val::I32(5)], &mut results)).unwrap();
    assert_eq!(results[0].unwrap_i64(), (5 << 32) + 5);

    // Wrong number of results from the closure: a clear error, not a panic.
    let mut linker = Linker::new(&engine);
    let ty = FuncType::new(&engine, [ValType::I32], [ValType::I64, ValType::I32]);
    linker
        .func_new_async("env", "pair", ty, |_: AsyncCaller<()>, _| async move {
            Ok(vec![Val::I64(1)])
        })
        .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance.get_func(&mut store, "run").unwrap();
    let err = block_on(run.call_async(&mut store, &[Val::I32(5)], &mut results)).unwrap_err();
    assert!(
        format!("{err:?}").contains("returned 1 values, its type has 2"),
        "{err:?}"
    );
}

/// The store data the memory test uses.
#[derive(Default)]
struct Data {
    seen: Vec<String>,
    before: usize,
    after: usize,
}

#[test]
fn import_reads_and_writes_memory_and_data_around_awaits() {
    // `shout(ptr, len)`: the host reads the string, waits, writes it back
    // upper-cased, and returns its length.
    let wat = r#"(module
        (import "env" "shout" (func $shout (param i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 100) "hello, world")
        (func (export "run") (result i32)
            (call $shout (i32.const 100) (i32.const 12))))"#;
    let engine = Engine::default();
    let module = instrumented(&engine, wat);
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async(
            "env",
            "shout",
            |caller: AsyncCaller<Data>, (ptr, len): (u32, u32)| async move {
                let text = caller.with(|mut store| {
                    store.data_mut().before += 1;
                    let memory = caller.get_memory(&mut store, "memory").unwrap();
                    let bytes = &memory.data(&store)[ptr as usize..][..len as usize];
                    String::from_utf8(bytes.to_vec()).unwrap()
                });
                yield_now().await;
                yield_now().await;
                caller.with(|mut store| {
                    let memory = caller.get_memory(&mut store, "memory").unwrap();
                    memory
                        .write(&mut store, ptr as usize, text.to_uppercase().as_bytes())
                        .unwrap();
                    let data = store.data_mut();
                    data.after += 1;
                    data.seen.push(text);
                });
                Ok(len)
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, Data::default());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), u32>(&mut store, "run")
        .unwrap();
    assert_eq!(block_on(run.call_async(&mut store, ())).unwrap(), 12);
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(&memory.data(&store)[100..112], b"HELLO, WORLD");
    assert_eq!(store.data().seen, ["hello, world"]);
    assert_eq!((store.data().before, store.data().after), (1, 1));
}

#[test]
fn with_outside_a_poll_is_a_clear_error() {
    let wat = r#"(module
        (import "env" "leak" (func $leak))
        (memory (export "memory") 1)
        (func (export "run") (call $leak)))"#;
    let engine = Engine::default();
    let module = instrumented(&engine, wat);
    let kept: Arc<std::sync::Mutex<Option<AsyncCaller<()>>>> = Arc::default();
    let mut linker = Linker::new(&engine);
    let keep = kept.clone();
    linker
        .func_wrap_async("env", "leak", move |caller: AsyncCaller<()>, ()| {
            *keep.lock().unwrap() = Some(caller);
            async { Ok(()) }
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<(), ()>(&mut store, "run")
        .unwrap();
    block_on(run.call_async(&mut store, ())).unwrap();
    let caller = kept.lock().unwrap().take().unwrap();
    let err = caller.try_with(|_| ()).unwrap_err();
    assert!(matches!(err, asyncify_linker::Error::StoreUnavailable));
    assert!(err.to_string().contains("only while the linker polls"));
}

/// The module used on every executor: `run(n)` sleeps `n` times 1 ms.
const SLEEPER: &str = r#"(module
    (import "env" "sleep_ms" (func $sleep (param i32)))
    (memory (export "memory") 1)
    (func (export "run") (param $n i32) (result i32)
        (local $i i32)
        (block $done
            (loop $next
                (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                (call $sleep (i32.const 1))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $next)))
        (local.get $i)))"#;

#[test]
fn runs_on_tokio_with_real_timers() {
    let engine = Engine::default();
    let module = instrumented(&engine, SLEEPER);
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async(
            "env",
            "sleep_ms",
            |_: AsyncCaller<()>, ms: u32| async move {
                tokio::time::sleep(Duration::from_millis(ms.into())).await;
                Ok(())
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let start = Instant::now();
    let out = tokio_rt().block_on(run.call_async(&mut store, 5)).unwrap();
    assert_eq!(out, 5);
    assert!(start.elapsed() >= Duration::from_millis(5));
}

#[test]
fn runs_on_a_local_pool_with_a_thread_timer() {
    let engine = Engine::default();
    let module = instrumented(&engine, SLEEPER);
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async(
            "env",
            "sleep_ms",
            |_: AsyncCaller<()>, ms: u32| async move {
                let (tx, rx) = futures::channel::oneshot::channel();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(ms.into()));
                    let _ = tx.send(());
                });
                rx.await?;
                Ok(())
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    assert_eq!(local_pool(run.call_async(&mut store, 3)).unwrap(), 3);
    assert_eq!(block_on(run.call_async(&mut store, 2)).unwrap(), 2);
}

#[test]
fn export_futures_are_send_and_run_on_a_multi_task_runtime() {
    fn assert_send<F: Send>(f: F) -> F {
        f
    }
    let engine = Engine::default();
    let module = instrumented(&engine, SLEEPER);
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap_async(
            "env",
            "sleep_ms",
            |_: AsyncCaller<()>, ms: u32| async move {
                tokio::time::sleep(Duration::from_millis(ms.into())).await;
                Ok(())
            },
        )
        .unwrap();
    let rt = tokio_rt();
    // Two stores, two tasks, interleaved on one thread.
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            let (engine, module, linker) = (engine.clone(), module.clone(), linker.clone());
            rt.spawn(assert_send(async move {
                let mut store = Store::new(&engine, ());
                let instance = linker.instantiate(&mut store, &module).unwrap();
                let run = instance
                    .get_typed_func::<i32, i32>(&mut store, "run")
                    .unwrap();
                run.call_async(&mut store, 3 + i).await.unwrap()
            }))
        })
        .collect();
    let out: Vec<i32> = rt.block_on(async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(out, [3, 4]);
}
