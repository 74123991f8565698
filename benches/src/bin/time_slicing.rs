//! The cost of time-slicing: yield checks (`asyncify instrument
//! --yield-checks`) served by `asyncify-linker`, against plain
//! instrumentation and against wasmtime's own epoch-based yielding (which
//! needs its fiber-based async support: a native stack per call).
//!
//! Three CPU-bound guests: `count` (a tight loop), `fib` (recursion, so
//! entry checks) and `sum` (nested loops over memory). For each it measures
//! the CPU time of one export call:
//! - **original**: the uninstrumented module, a plain wasmtime call;
//! - **instrumented**: default instrumentation, driven by the linker
//!   (nothing suspends: the cost of the instrumentation alone);
//! - **checks, never firing**: with yield checks, the linker's time slicing
//!   set to neither yield nor limit, so the budget never runs out;
//! - **checks, yielding**: yield checks firing every `SLICE` units, each one
//!   a suspension that returns to the executor and resumes;
//! - **epoch yielding (fibers)**: the original module under wasmtime's async
//!   support with epoch interruption, yielding at every epoch tick (a thread
//!   ticks every millisecond).
//!
//! It also measures one yield (from the "yielding" runs, the extra time over
//! "never firing" divided by the yields counted) against one suspension at
//! the same depth (an import that is pending once, called from the export).
//!
//! Run: `cargo run --release -p asyncify-benches --bin time_slicing -- [--quick]`
//! (prints a markdown section; progress on stderr).

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use asyncify_benches::sections::{load_average, median, ratio, thread_cpu_time};
use asyncify_linker::{AsyncCaller, Linker, TimeSlicing};
use asyncify_transform::Options;
use wasmtime::{Config, Engine, Module, Result, Store};

/// The guests; each export takes a size and returns a checksum.
const GUESTS: &str = r#"(module
    (import "env" "wait" (func $wait (param i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "count") (param $n i32) (result i32) (local $i i32) (local $acc i32)
        (loop $l
            (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $i)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $acc))
    (func $fib (export "fib") (param $n i32) (result i32)
        (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
            (then (local.get $n))
            (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                           (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
    (func (export "sum") (param $rounds i32) (result i32) (local $r i32) (local $p i32) (local $acc i32)
        (loop $outer
            (local.set $p (i32.const 0))
            (loop $inner
                (local.set $acc (i32.add (local.get $acc) (i32.load (local.get $p))))
                (i32.store (local.get $p) (i32.add (local.get $acc) (local.get $r)))
                (local.set $p (i32.add (local.get $p) (i32.const 4)))
                (br_if $inner (i32.lt_u (local.get $p) (i32.const 65536))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br_if $outer (i32.lt_u (local.get $r) (local.get $rounds))))
        (local.get $acc))
    (func (export "wait_once") (result i32) (call $wait (i32.const 1))))"#;

/// Export, argument (full run), argument (`--quick`).
const WORK: [(&str, i32, i32); 3] = [
    ("count", 50_000_000, 5_000_000),
    ("fib", 30, 25),
    ("sum", 800, 80),
];

/// Units (approximate instructions) per slice in the "yielding" runs.
const SLICE: u32 = 100_000;

/// Counts the polls of a future that returned `Pending` (its yields).
struct CountPending<F> {
    inner: Pin<Box<F>>,
    pending: u64,
}

impl<F: Future> Future for CountPending<F> {
    type Output = (F::Output, u64);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready((out, self.pending)),
            Poll::Pending => {
                self.pending += 1;
                Poll::Pending
            }
        }
    }
}

/// One measured variant: runs the call once and returns (checksum, yields).
type Runner<'a> = Box<dyn FnMut(&str, i32) -> Result<(i32, u64)> + 'a>;

fn instrument(yield_checks: bool) -> Result<Vec<u8>> {
    let options = Options {
        yield_checks,
        ..Options::default()
    };
    Ok(asyncify_transform::instrument(GUESTS.as_bytes(), &options)?.wasm)
}

/// The linker-driven variants: `slicing` set when the module has checks.
fn linked<'a>(engine: &'a Engine, wasm: &[u8], slicing: Option<TimeSlicing>) -> Result<Runner<'a>> {
    let module = Module::new(engine, wasm)?;
    let mut linker = Linker::new(engine);
    linker.func_wrap_async("env", "wait", |_: AsyncCaller<()>, x: i32| async move {
        asyncify_linker::yield_now().await;
        Ok(x)
    })?;
    if let Some(slicing) = slicing {
        linker.time_slicing(slicing)?;
    }
    let mut store = Store::new(engine, ());
    let instance = linker.instantiate(&mut store, &module)?;
    Ok(Box::new(move |export, arg| {
        let (out, yields) = if export == "wait_once" {
            let f = instance.get_typed_func::<(), i32>(&mut store, export)?;
            let call = CountPending {
                inner: Box::pin(f.call_async(&mut store, ())),
                pending: 0,
            };
            futures::executor::block_on(call)
        } else {
            let f = instance.get_typed_func::<i32, i32>(&mut store, export)?;
            let call = CountPending {
                inner: Box::pin(f.call_async(&mut store, arg)),
                pending: 0,
            };
            futures::executor::block_on(call)
        };
        Ok((out?, yields))
    }))
}

/// The original module, a plain synchronous wasmtime call.
fn original(engine: &Engine) -> Result<Runner<'_>> {
    let module = Module::new(engine, wat::parse_str(GUESTS)?)?;
    let mut store = Store::new(engine, ());
    let wait = wasmtime::Func::wrap(&mut store, |x: i32| x);
    let instance = wasmtime::Instance::new(&mut store, &module, &[wait.into()])?;
    Ok(Box::new(move |export, arg| {
        let f = instance.get_typed_func::<i32, i32>(&mut store, export)?;
        Ok((f.call(&mut store, arg)?, 0))
    }))
}

/// The original module under wasmtime's async support, yielding at every
/// epoch tick; a thread ticks every millisecond while `ticking` is set.
fn epoch_fibers(engine: &Engine) -> Result<Runner<'_>> {
    let module = Module::new(engine, wat::parse_str(GUESTS)?)?;
    let mut linker = wasmtime::Linker::new(engine);
    linker.func_wrap("env", "wait", |x: i32| x)?;
    let mut store = Store::new(engine, ());
    store.epoch_deadline_async_yield_and_update(1);
    let instance = futures::executor::block_on(linker.instantiate_async(&mut store, &module))?;
    Ok(Box::new(move |export, arg| {
        let f = instance.get_typed_func::<i32, i32>(&mut store, export)?;
        store.set_epoch_deadline(1);
        let call = CountPending {
            inner: Box::pin(f.call_async(&mut store, arg)),
            pending: 0,
        };
        let (out, yields) = futures::executor::block_on(call);
        Ok((out?, yields))
    }))
}

/// Medians over `rounds` of the CPU time of one call, each variant in turn.
fn measure(
    variants: &mut [(&str, Runner<'_>)],
    export: &str,
    arg: i32,
    rounds: usize,
) -> Result<Vec<(f64, u64)>> {
    let mut samples = vec![Vec::new(); variants.len()];
    let mut yields = vec![0u64; variants.len()];
    for _ in 0..rounds {
        // `sum` changes memory, so the checksum is per round.
        let mut checksum = None;
        for (k, (name, run)) in variants.iter_mut().enumerate() {
            let start = thread_cpu_time();
            let (out, y) = run(export, arg)?;
            samples[k].push((thread_cpu_time() - start).as_secs_f64());
            yields[k] = y;
            if export != "wait_once" {
                match checksum {
                    None => checksum = Some(out),
                    Some(c) if c != out => {
                        wasmtime::bail!("{name} computed {out} for {export}, others {c}")
                    }
                    Some(_) => {}
                }
            }
        }
    }
    Ok(samples
        .iter()
        .zip(yields)
        .map(|(s, y)| (median(s).unwrap_or(f64::NAN), y))
        .collect())
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 9 };
    let engine = Engine::default();
    let mut async_config = Config::new();
    async_config.epoch_interruption(true);
    let async_engine = Engine::new(&async_config)?;
    let ticking = Arc::new(AtomicBool::new(true));
    let ticker = {
        let (engine, ticking) = (async_engine.clone(), ticking.clone());
        std::thread::spawn(move || {
            while ticking.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
                engine.increment_epoch();
            }
        })
    };

    let plain = instrument(false)?;
    let checked = instrument(true)?;
    let never = TimeSlicing {
        yield_to_executor: false,
        max_budget: None,
        ..TimeSlicing::default()
    };
    let yielding = TimeSlicing {
        slice: SLICE,
        ..TimeSlicing::default()
    };
    let mut variants: Vec<(&str, Runner<'_>)> = vec![
        ("original", original(&engine)?),
        ("instrumented", linked(&engine, &plain, None)?),
        (
            "checks, never firing",
            linked(&engine, &checked, Some(never))?,
        ),
        (
            "checks, yielding",
            linked(&engine, &checked, Some(yielding))?,
        ),
        ("epoch yielding (fibers)", epoch_fibers(&async_engine)?),
    ];

    let mut out = String::new();
    let _ = writeln!(
        out,
        "| guest | original | instrumented | checks, never firing | checks, yielding every {SLICE} units | epoch yielding (fibers, 1 ms ticks) | never firing vs instrumented |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let mut per_yield = Vec::new();
    for (export, full, small) in WORK {
        let arg = if quick { small } else { full };
        eprintln!("time_slicing: {export}({arg})");
        let m = measure(&mut variants, export, arg, rounds)?;
        let ms = |k: usize| format!("{:.2} ms", m[k].0 * 1e3);
        let with_yields = |k: usize| format!("{} ({} yields)", ms(k), m[k].1);
        let _ = writeln!(
            out,
            "| `{export}({arg})` | {} | {} | {} | {} | {} | {} |",
            ms(0),
            ms(1),
            ms(2),
            with_yields(3),
            with_yields(4),
            ratio(m[2].0 / m[1].0)
        );
        if m[3].1 > 0 {
            per_yield.push((m[3].0 - m[2].0) / m[3].1 as f64);
        }
    }
    // One suspension at depth 1, against a call whose import is ready.
    let suspension = {
        let m = measure(&mut variants[1..2], "wait_once", 0, rounds * 200)?;
        m[0].0
    };
    ticking.store(false, Ordering::Relaxed);
    let _ = ticker.join();
    let yield_cost = median(&per_yield).unwrap_or(f64::NAN);
    let _ = writeln!(
        out,
        "\nOne yield (extra time of the yielding runs over never firing, per yield): {:.2} µs; \
         one export call that suspends once at depth 1 and resumes: {:.2} µs. Load average {}.",
        yield_cost * 1e6,
        suspension * 1e6,
        load_average()
    );
    print!("{out}");
    Ok(())
}
