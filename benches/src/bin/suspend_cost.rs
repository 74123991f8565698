//! The cost of an async import call through `asyncify-linker` against the same
//! uninstrumented module under wasmtime's native async (`func_wrap_async`,
//! `call_async`, fibers), measured in one run: an export reaches the import
//! through a chain of D wasm frames; the import's future is either ready at
//! once or pending once (it wakes itself) before it is ready.
//!
//! Run: `cargo run --release -p asyncify-benches --bin suspend_cost`
//! Prints a markdown table of medians (ns per export call) over 7 rounds.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use asyncify_linker::{AsyncCaller, Linker};
use wasmtime::{Engine, Module, Store};

/// A module whose export `run(d)` recurses `d` frames deep, then calls the
/// import; two live locals per frame keep the frames realistic.
const CHAIN: &str = r#"(module
  (import "env" "wait" (func $wait (param i32) (result i32)))
  (memory (export "memory") 1)
  (func $down (param $d i32) (result i32)
    (local $a i32) (local $b i64)
    (local.set $a (i32.mul (local.get $d) (i32.const 3)))
    (local.set $b (i64.extend_i32_u (local.get $d)))
    (if (result i32) (i32.le_s (local.get $d) (i32.const 1))
      (then (call $wait (local.get $d)))
      (else (i32.add
        (call $down (i32.sub (local.get $d) (i32.const 1)))
        (i32.add (local.get $a) (i32.wrap_i64 (local.get $b)))))))
  (func (export "run") (param $d i32) (result i32) (call $down (local.get $d))))"#;

/// Pending once (waking itself), then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

const ROUNDS: usize = 7;

fn median_ns(
    iterations: u32,
    mut round: impl FnMut(u32) -> wasmtime::Result<()>,
) -> wasmtime::Result<f64> {
    round(iterations / 10)?; // warm up
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        round(iterations)?;
        samples.push(start.elapsed().as_nanos() as f64 / f64::from(iterations));
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[ROUNDS / 2])
}

fn ours(
    engine: &Engine,
    module: &Module,
    depth: i32,
    pending: bool,
    n: u32,
) -> wasmtime::Result<f64> {
    let mut linker: Linker<()> = Linker::new(engine);
    linker.func_wrap_async(
        "env",
        "wait",
        move |_: AsyncCaller<()>, x: i32| async move {
            if pending {
                YieldOnce(false).await;
            }
            Ok(x + 1)
        },
    )?;
    let mut store = Store::new(engine, ());
    let instance = linker.instantiate(&mut store, module)?;
    let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
    median_ns(n, |n| {
        futures::executor::block_on(async {
            for _ in 0..n {
                run.call_async(&mut store, depth).await?;
            }
            Ok(())
        })
    })
}

fn fibers(
    engine: &Engine,
    module: &Module,
    depth: i32,
    pending: bool,
    n: u32,
) -> wasmtime::Result<f64> {
    let mut linker: wasmtime::Linker<()> = wasmtime::Linker::new(engine);
    linker.func_wrap_async("env", "wait", move |_caller, (x,): (i32,)| {
        Box::new(async move {
            if pending {
                YieldOnce(false).await;
            }
            Ok(x + 1)
        })
    })?;
    let mut store = Store::new(engine, ());
    let instance = futures::executor::block_on(linker.instantiate_async(&mut store, module))?;
    let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
    median_ns(n, |n| {
        futures::executor::block_on(async {
            for _ in 0..n {
                run.call_async(&mut store, depth).await?;
            }
            Ok(())
        })
    })
}

fn main() -> wasmtime::Result<()> {
    let engine = Engine::default();
    let plain = Module::new(&engine, wat::parse_str(CHAIN)?)?;
    let instrumented = Module::new(
        &engine,
        asyncify_transform::instrument(CHAIN.as_bytes(), &Default::default())
            .map_err(|e| wasmtime::Error::msg(e.to_string()))?
            .wasm,
    )?;
    println!("| D | asyncify-linker, ready | wasmtime fibers, ready | asyncify-linker, pending once | wasmtime fibers, pending once | ratio pending (ours / fibers) |");
    println!("|---|---|---|---|---|---|");
    for depth in [1, 10, 100] {
        let n = if depth == 100 { 20_000 } else { 100_000 };
        let ours_ready = ours(&engine, &instrumented, depth, false, n)?;
        let fibers_ready = fibers(&engine, &plain, depth, false, n)?;
        let ours_pending = ours(&engine, &instrumented, depth, true, n)?;
        let fibers_pending = fibers(&engine, &plain, depth, true, n)?;
        println!(
            "| {depth} | {ours_ready:.0} ns | {fibers_ready:.0} ns | {ours_pending:.0} ns | {fibers_pending:.0} ns | {:.2} |",
            ours_pending / fibers_pending
        );
    }
    Ok(())
}
