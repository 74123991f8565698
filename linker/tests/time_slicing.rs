//! Time-slicing: modules instrumented with yield checks give their thread
//! back to the executor, so CPU-bound guests and an I/O-bound guest all make
//! progress on one thread, and on a multi-threaded runtime with more guests
//! than threads. Results match the same module run without yield checks.
//!
//! Latency is measured in slices, not in time: after the I/O guest's wait
//! completes, at most one slice of each other guest runs before it resumes.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use asyncify_linker::{AsyncCaller, Error, Linker, TimeSlicing};
use asyncify_transform::Options;
use futures::task::LocalSpawnExt;
use wasmtime::{Engine, Module, Store};

/// Three guests in one module: `spin` never returns, `rec` recurses deeply
/// and returns a checksum, `io` waits on the host `k` times.
const GUESTS: &str = r#"(module
    (import "env" "wait" (func $wait (param i32)))
    (memory (export "memory") 1)
    (func (export "spin")
        (loop $l
            (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
            (br $l)))
    (func $rec (export "rec") (param $n i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n))
            (then (i32.const 1))
            (else
                (i32.add
                    (i32.rem_u
                        (i32.mul (call $rec (i32.sub (local.get $n) (i32.const 1))) (i32.const 31))
                        (i32.const 1000003))
                    (local.get $n)))))
    (func (export "io") (param $k i32) (result i32) (local $i i32) (local $acc i32)
        (loop $l
            (call $wait (local.get $i))
            (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 7)) (local.get $i)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (local.get $k))))
        (local.get $acc)))"#;

const DEPTH: i32 = 3_000;
const WAITS: i32 = 20;

fn with_yield_checks(engine: &Engine) -> Module {
    let options = Options {
        yield_checks: true,
        imports: vec!["env.wait".into()],
        ..Options::default()
    };
    let out = asyncify_transform::instrument(GUESTS.as_bytes(), &options).unwrap();
    Module::new(engine, &out.wasm).unwrap()
}

/// `rec(DEPTH)` and `io(WAITS)` as the original module computes them.
fn expected() -> (i32, i32) {
    let engine = Engine::default();
    let module = common::plain(&engine, GUESTS);
    let mut store = Store::new(&engine, ());
    let wait = wasmtime::Func::wrap(&mut store, |_: i32| {});
    let instance = wasmtime::Instance::new(&mut store, &module, &[wait.into()]).unwrap();
    let rec = instance
        .get_typed_func::<i32, i32>(&mut store, "rec")
        .unwrap();
    let io = instance
        .get_typed_func::<i32, i32>(&mut store, "io")
        .unwrap();
    (
        rec.call(&mut store, DEPTH).unwrap(),
        io.call(&mut store, WAITS).unwrap(),
    )
}

/// A linker whose guests yield every `slice` units, with a buffer large
/// enough for `rec`'s deepest stack (a yield can come at any depth).
fn slicing_linker(engine: &Engine, slice: u32) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker.buffer_size(4 << 20);
    linker
        .time_slicing(TimeSlicing {
            slice,
            ..TimeSlicing::default()
        })
        .unwrap();
    linker
}

/// Polls of the CPU-bound guests after which the fairness test gives up: the
/// other guests should have finished long before (a few thousand slices), so
/// more means they never will, and the test fails instead of running on.
const MAX_CPU_SLICES: u64 = 1_000_000;

/// Fuel (wasm instructions) each store of the fairness test may burn. If
/// guests stopped yielding, `spin` would never return from its first poll
/// and no poll count could stop it: it traps out of fuel instead, after some
/// seconds, and the test fails. With yields it burns a small part of this.
const FUEL_PER_STORE: u64 = 20_000_000_000;

/// Counts polls of a future (each poll of a CPU-bound guest runs one slice),
/// failing past [`MAX_CPU_SLICES`].
struct Counted<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicU64>,
}

impl<F: Future> Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let polls = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(
            polls <= MAX_CPU_SLICES,
            "{polls} polls of a CPU-bound guest: the other guests never finished"
        );
        self.inner.as_mut().poll(cx)
    }
}

/// A store with [`FUEL_PER_STORE`] fuel (its engine must meter fuel).
fn fueled_store(engine: &Engine) -> Store<()> {
    let mut store = Store::new(engine, ());
    store.set_fuel(FUEL_PER_STORE).unwrap();
    store
}

/// Wraps a waker to note the CPU slices run so far at the moment it wakes.
struct Noting {
    inner: Waker,
    cpu_slices: Arc<AtomicU64>,
    woke_at: Arc<AtomicU64>,
}

impl Wake for Noting {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let now = self.cpu_slices.load(Ordering::SeqCst);
        let _ = self
            .woke_at
            .compare_exchange(u64::MAX, now, Ordering::SeqCst, Ordering::SeqCst);
        self.inner.wake_by_ref();
    }
}

/// A wait completed by another thread after a millisecond; when it is
/// polled ready, records how many CPU slices ran since it woke (0 when
/// it was ready without being woken).
struct Wait {
    rx: futures::channel::oneshot::Receiver<()>,
    cpu_slices: Arc<AtomicU64>,
    woke_at: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<u64>>>,
}

impl Future for Wait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let waker = Waker::from(Arc::new(Noting {
            inner: cx.waker().clone(),
            cpu_slices: self.cpu_slices.clone(),
            woke_at: self.woke_at.clone(),
        }));
        match Pin::new(&mut self.rx).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(_) => {
                let woke_at = self.woke_at.load(Ordering::SeqCst);
                let now = self.cpu_slices.load(Ordering::SeqCst);
                // Ready at its first poll (on a loaded machine the sender's
                // millisecond can pass before it): no slice ran in between.
                let latency = if woke_at == u64::MAX {
                    0
                } else {
                    now - woke_at
                };
                self.latencies.lock().unwrap().push(latency);
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[test]
fn cpu_bound_and_io_bound_guests_share_one_thread_fairly() {
    let (expected_rec, expected_io) = expected();
    // Fuel bounds the run if the guests stopped yielding (see FUEL_PER_STORE).
    let engine = Engine::new(wasmtime::Config::new().consume_fuel(true)).unwrap();
    let module = with_yield_checks(&engine);
    let cpu_slices = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut linker = slicing_linker(&engine, 5_000);
    let (slices, lat) = (cpu_slices.clone(), latencies.clone());
    linker
        .func_wrap_async("env", "wait", move |_: AsyncCaller<()>, _: i32| {
            let (tx, rx) = futures::channel::oneshot::channel();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(1));
                let _ = tx.send(());
            });
            let wait = Wait {
                rx,
                cpu_slices: slices.clone(),
                woke_at: Arc::new(AtomicU64::new(u64::MAX)),
                latencies: lat.clone(),
            };
            async move {
                wait.await;
                Ok(())
            }
        })
        .unwrap();

    let mut pool = futures::executor::LocalPool::new();
    let spawner = pool.spawner();
    let spin_polls = Arc::new(AtomicU64::new(0));
    let rec_polls = Arc::new(AtomicU64::new(0));
    // The endless loop: runs until the pool is dropped.
    {
        let mut store = fueled_store(&engine);
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let (polls, all) = (spin_polls.clone(), cpu_slices.clone());
        spawner
            .spawn_local(async move {
                let call = spin.call_async(&mut store, ());
                let counted = Counted {
                    inner: Box::pin(call),
                    polls: polls.clone(),
                };
                let both = Counted {
                    inner: Box::pin(counted),
                    polls: all,
                };
                let result = both.await;
                unreachable!("spin returned: {result:?}");
            })
            .unwrap();
    }
    let rec = {
        let mut store = fueled_store(&engine);
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let rec = instance
            .get_typed_func::<i32, i32>(&mut store, "rec")
            .unwrap();
        let (polls, all) = (rec_polls.clone(), cpu_slices.clone());
        spawner
            .spawn_local_with_handle(async move {
                let call = rec.call_async(&mut store, DEPTH);
                let counted = Counted {
                    inner: Box::pin(call),
                    polls,
                };
                Counted {
                    inner: Box::pin(counted),
                    polls: all,
                }
                .await
            })
            .unwrap()
    };
    let io = {
        let mut store = fueled_store(&engine);
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let io = instance
            .get_typed_func::<i32, i32>(&mut store, "io")
            .unwrap();
        spawner
            .spawn_local_with_handle(async move { io.call_async(&mut store, WAITS).await })
            .unwrap()
    };
    let (rec, io) = pool.run_until(futures::future::join(rec, io));
    assert_eq!(rec.unwrap(), expected_rec);
    assert_eq!(io.unwrap(), expected_io);
    // Both CPU-bound guests ran many slices: they yielded and resumed.
    let spin_polls = spin_polls.load(Ordering::SeqCst);
    let rec_polls = rec_polls.load(Ordering::SeqCst);
    assert!(spin_polls > 10, "spin ran {spin_polls} slices");
    assert!(rec_polls > 2, "rec ran {rec_polls} slices");
    // Every wait was noticed within one slice of each CPU-bound guest.
    let latencies = latencies.lock().unwrap();
    assert_eq!(latencies.len(), WAITS as usize, "{latencies:?}");
    assert!(latencies.iter().all(|&l| l <= 2), "{latencies:?}");
}

#[test]
fn more_guests_than_threads_on_a_multi_threaded_runtime() {
    let (expected_rec, expected_io) = expected();
    let engine = Engine::default();
    let module = with_yield_checks(&engine);
    let mut linker = slicing_linker(&engine, 20_000);
    linker
        .func_wrap_async("env", "wait", |_: AsyncCaller<()>, _: i32| async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            Ok(())
        })
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let call = |export: &'static str, arg: Option<i32>| {
            let mut store = Store::new(&engine, ());
            let instance = linker.instantiate(&mut store, &module).unwrap();
            tokio::spawn(async move {
                match arg {
                    Some(arg) => {
                        let f = instance.get_typed_func::<i32, i32>(&mut store, export)?;
                        f.call_async(&mut store, arg).await.map(Some)
                    }
                    None => {
                        let f = instance.get_typed_func::<(), ()>(&mut store, export)?;
                        f.call_async(&mut store, ()).await.map(|()| None)
                    }
                }
            })
        };
        let spinners: Vec<_> = (0..4).map(|_| call("spin", None)).collect();
        let recs: Vec<_> = (0..2).map(|_| call("rec", Some(DEPTH))).collect();
        let ios: Vec<_> = (0..3).map(|_| call("io", Some(WAITS))).collect();
        for rec in recs {
            assert_eq!(rec.await.unwrap().unwrap(), Some(expected_rec));
        }
        for io in ios {
            assert_eq!(io.await.unwrap().unwrap(), Some(expected_io));
        }
        for spin in &spinners {
            assert!(!spin.is_finished());
            spin.abort();
        }
    });
}

#[test]
fn a_call_over_its_budget_fails_and_the_instance_goes_on() {
    let engine = Engine::default();
    let module = with_yield_checks(&engine);
    let mut linker = Linker::new(&engine);
    linker
        .time_slicing(TimeSlicing {
            slice: 10_000,
            yield_to_executor: false,
            max_budget: Some(1_000_000),
        })
        .unwrap()
        .func_wrap_async("env", "wait", |_: AsyncCaller<()>, _: i32| async {
            common::yield_now().await;
            Ok(())
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    let err = futures::executor::block_on(spin.call_async(&mut store, ())).unwrap_err();
    match err.downcast_ref::<Error>() {
        Some(Error::OutOfBudget { spent, limit }) => {
            assert_eq!(*limit, 1_000_000);
            assert!(*spent >= *limit && *spent < *limit + 10_000, "{spent}");
        }
        _ => panic!("expected OutOfBudget, got {err:?}"),
    }
    // Each call has its own budget, and the instance still works.
    let io = instance
        .get_typed_func::<i32, i32>(&mut store, "io")
        .unwrap();
    let (_, expected_io) = expected();
    let got = futures::executor::block_on(io.call_async(&mut store, WAITS)).unwrap();
    assert_eq!(got, expected_io);
}

#[test]
fn without_yielding_a_spent_slice_does_not_suspend() {
    let engine = Engine::default();
    let module = with_yield_checks(&engine);
    let mut linker = Linker::new(&engine);
    linker
        .time_slicing(TimeSlicing {
            slice: 100,
            yield_to_executor: false,
            max_budget: None,
        })
        .unwrap()
        .func_wrap("env", "wait", |_: i32| {})
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let rec = instance
        .get_typed_func::<i32, i32>(&mut store, "rec")
        .unwrap();
    // Polled with a waker that never wakes: it must finish on the first poll.
    let mut call = Box::pin(rec.call_async(&mut store, DEPTH));
    let Poll::Ready(got) = call.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
        panic!("the call suspended although yielding is off");
    };
    assert_eq!(got.unwrap(), expected().0);
}
