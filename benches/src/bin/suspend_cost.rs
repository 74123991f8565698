//! The cost of suspending and resuming through `asyncify-linker`, against the
//! same uninstrumented module under wasmtime's native async
//! (`func_wrap_async` + `call_async`, one fiber per call), in one run.
//!
//! The module's export `run(D)` reaches an import through a chain of D wasm
//! frames; every frame holds L locals (i32, i64 and f64 in turn) that are set
//! before its call and summed after it, so all of them are live across the
//! suspension. For each D in 1, 10, 100 and L in 0, 10, 100 it measures one
//! export call whose import future is ready at once, and one whose future is
//! pending once (it wakes itself) and then ready: the call suspends and
//! resumes. "Ours" is `asyncify-linker` with the module instrumented by
//! `asyncify_transform` with default options; "fibers" is wasmtime's
//! `func_wrap_async` + `call_async` on the original module. Both are driven by
//! `futures::executor::block_on`, a new export call per iteration.
//!
//! Run: `cargo run --release -p asyncify-benches --bin suspend_cost -- --markdown [--quick]`
//!
//! Prints one markdown section: per combination, medians of the CPU time per
//! export call over rounds in which ours and fibers take turns, the median
//! per-round ratio, and the verdicts of issue 17's targets at depths 10 and 100
//! (10 live locals, depth 1 printed beside them); progress goes to
//! stderr. `--profile D L CALLS` runs only our pending-once call, for `perf`.

use std::fmt::Write as _;
use std::future::Future;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use asyncify_benches::sections::{load_average, median, ratio, thousands, thread_cpu_time};
use asyncify_benches::targets::{self, Verdict};
use asyncify_linker::{AsyncCaller, Linker};
use wasmtime::{bail, format_err, Engine, Module, Result, Store};

/// Stack depths measured (wasm frames between the export and the import).
const DEPTHS: [u32; 3] = [1, 10, 100];
/// Live locals per frame measured.
const LOCALS: [u32; 3] = [0, 10, 100];
/// Live locals per frame the targets are judged at.
const HEADLINE_LOCALS: u32 = 10;
/// Issue 17: suspend + resume at depth 10 may cost at most this many times
/// the fiber round trip, at depth 100 at most [`DEPTH_100_LIMIT`] times.
const DEPTH_10_LIMIT: f64 = 1.3;
/// Issue 17: the limit at depth 100.
const DEPTH_100_LIMIT: f64 = 2.0;
/// The older notes' limit at depth 10, still printed.
const OLDER_LIMIT: f64 = 2.0;

/// How long to measure: rounds per median and the length of one round.
#[derive(Clone, Copy)]
struct Plan {
    rounds: usize,
    round: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                rounds: 9,
                round: Duration::from_millis(3),
            }
        } else {
            Plan {
                rounds: 31,
                round: Duration::from_millis(10),
            }
        }
    }
}

/// The text of the benchmark module for `locals` live locals per frame.
///
/// `$down(d)` sets its locals from `d`, calls `$down(d - 1)` (or the import
/// `env.wait` when `d <= 1`), then adds every local to the call's result.
fn chain_wat(locals: u32) -> String {
    let kind = |k: u32| k % 3;
    let mut wat = String::from(
        "(module\n  (import \"env\" \"wait\" (func $wait (param i32) (result i32)))\n  \
         (memory (export \"memory\") 1)\n  (func $down (param $d i32) (result i32)\n",
    );
    for k in 0..locals {
        let ty = ["i32", "i64", "f64"][kind(k) as usize];
        let _ = writeln!(wat, "    (local $l{k} {ty})");
    }
    for k in 0..locals {
        let value = format!("(i32.add (local.get $d) (i32.const {k}))");
        let value = match kind(k) {
            0 => value,
            1 => format!("(i64.extend_i32_s {value})"),
            _ => format!("(f64.convert_i32_s {value})"),
        };
        let _ = writeln!(wat, "    (local.set $l{k} {value})");
    }
    wat.push_str(
        "    (if (result i32) (i32.le_s (local.get $d) (i32.const 1))\n      \
         (then (call $wait (local.get $d)))\n      \
         (else (call $down (i32.sub (local.get $d) (i32.const 1)))))\n    \
         i64.extend_i32_s\n",
    );
    for k in 0..locals {
        let widen = ["i64.extend_i32_s", "", "i64.trunc_sat_f64_s"][kind(k) as usize];
        let _ = writeln!(wat, "    local.get $l{k} {widen} i64.add");
    }
    wat.push_str(
        "    i32.wrap_i64)\n  (func (export \"run\") (param $d i32) (result i32)\n    \
         (call $down (local.get $d))))\n",
    );
    wat
}

/// What the import's future does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Import {
    Ready,
    PendingOnce,
}

/// Runs `n` export calls in one `block_on`.
type Batch<'a> = Box<dyn FnMut(u32) -> Result<()> + 'a>;

/// How many calls make a round of about `round`.
fn calls_per_round(round: Duration, batch: &mut Batch<'_>) -> Result<u32> {
    batch(50)?; // warm up
    let mut n = 64u32;
    let per_call = loop {
        let start = thread_cpu_time();
        batch(n)?;
        let elapsed = thread_cpu_time() - start;
        if elapsed >= Duration::from_millis(2) || n >= 1 << 24 {
            break elapsed.as_secs_f64() / f64::from(n);
        }
        n *= 4;
    };
    Ok(((round.as_secs_f64() / per_call) as u32).clamp(10, 1 << 26))
}

/// Ns per call of each batch in each of `plan.rounds` rounds. The batches
/// take turns within each round, so that a busy moment on the machine hits
/// them alike.
fn samples_ns<const N: usize>(plan: Plan, mut batches: [Batch<'_>; N]) -> Result<[Vec<f64>; N]> {
    let mut sizes = [0u32; N];
    for (size, batch) in sizes.iter_mut().zip(&mut batches) {
        *size = calls_per_round(plan.round, batch)?;
    }
    let mut samples: [Vec<f64>; N] = std::array::from_fn(|_| Vec::with_capacity(plan.rounds));
    for _ in 0..plan.rounds {
        for ((batch, &n), samples) in batches.iter_mut().zip(&sizes).zip(&mut samples) {
            let start = thread_cpu_time();
            batch(n)?;
            samples.push((thread_cpu_time() - start).as_nanos() as f64 / f64::from(n));
        }
    }
    Ok(samples)
}

/// Median ns per call, and the median of the per-round ratios ours / fibers
/// (paired rounds, which cancels most of the machine's load changes).
#[derive(Clone, Copy)]
struct Compared {
    ours: f64,
    fibers: f64,
    ratio: f64,
}

impl Compared {
    fn new(ours: Vec<f64>, fibers: Vec<f64>) -> Compared {
        let ratios: Vec<f64> = ours.iter().zip(&fibers).map(|(o, f)| o / f).collect();
        let median = |samples: &[f64]| median(samples).unwrap_or(f64::NAN);
        Compared {
            ratio: median(&ratios),
            ours: median(&ours),
            fibers: median(&fibers),
        }
    }
}

/// The two modules of one combination, compiled.
struct Modules {
    plain: Module,
    instrumented: Module,
}

impl Modules {
    fn new(engine: &Engine, locals: u32) -> Result<Modules> {
        let wat = chain_wat(locals);
        let plain = Module::new(engine, wat::parse_str(&wat)?)?;
        let instrumented = asyncify_transform::instrument(wat.as_bytes(), &Default::default())
            .map_err(|e| format_err!("instrumenting the benchmark module: {e}"))?
            .wasm;
        let instrumented = Module::new(engine, instrumented)?;
        Ok(Modules {
            plain,
            instrumented,
        })
    }
}

/// The result `run(depth)` must return when the import returns `x + 1`.
fn expected(depth: u32, locals: u32) -> i32 {
    let mut sum = 2i64; // the import gets d = 1 and returns 2
    for d in 1..=i64::from(depth) {
        sum += (0..i64::from(locals)).map(|k| d + k).sum::<i64>();
    }
    sum as i32
}

/// A store running `run` through asyncify-linker, ready to be timed.
struct Ours {
    store: Store<()>,
    run: asyncify_linker::TypedFunc<i32, i32>,
    instance: asyncify_linker::Instance,
}

impl Ours {
    fn new(engine: &Engine, module: &Module, import: Import) -> Result<Ours> {
        let mut linker: Linker<()> = Linker::new(engine);
        linker.func_wrap_async(
            "env",
            "wait",
            move |_: AsyncCaller<()>, x: i32| async move {
                if import == Import::PendingOnce {
                    asyncify_linker::yield_now().await;
                }
                Ok(x + 1)
            },
        )?;
        let mut store = Store::new(engine, ());
        let instance = linker.instantiate(&mut store, module)?;
        let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
        Ok(Ours {
            store,
            run,
            instance,
        })
    }

    fn batch(&mut self, depth: u32) -> Batch<'_> {
        Box::new(move |n| {
            futures::executor::block_on(async {
                for _ in 0..n {
                    self.run.call_async(&mut self.store, depth as i32).await?;
                }
                Ok(())
            })
        })
    }

    /// Bytes of saved stack while one call to `run(depth)` is suspended.
    fn saved_bytes(&mut self, depth: u32) -> Result<u64> {
        let mut call = Box::pin(self.run.call_async(&mut self.store, depth as i32));
        let first = call.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        let usage = self.instance.buffer_usage();
        if first.is_ready() {
            bail!("the pending-once call did not suspend");
        }
        futures::executor::block_on(call)?;
        Ok(usage.map_or(0, |u| u.in_use))
    }
}

/// A store running `run` through wasmtime's own async support (fibers).
struct Fibers {
    store: Store<()>,
    run: wasmtime::TypedFunc<i32, i32>,
}

impl Fibers {
    fn new(engine: &Engine, module: &Module, import: Import) -> Result<Fibers> {
        let mut linker: wasmtime::Linker<()> = wasmtime::Linker::new(engine);
        linker.func_wrap_async("env", "wait", move |_caller, (x,): (i32,)| {
            Box::new(async move {
                if import == Import::PendingOnce {
                    asyncify_linker::yield_now().await;
                }
                Ok(x + 1)
            })
        })?;
        let mut store = Store::new(engine, ());
        let instance = futures::executor::block_on(linker.instantiate_async(&mut store, module))?;
        let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
        Ok(Fibers { store, run })
    }

    fn batch(&mut self, depth: u32) -> Batch<'_> {
        Box::new(move |n| {
            futures::executor::block_on(async {
                for _ in 0..n {
                    self.run.call_async(&mut self.store, depth as i32).await?;
                }
                Ok(())
            })
        })
    }
}

/// The measurements of one (depth, locals) combination.
struct Row {
    depth: u32,
    locals: u32,
    /// The import's future is ready at once.
    ready: Compared,
    /// The import's future is pending once: the call suspends and resumes.
    pending: Compared,
    saved_bytes: u64,
}

fn measure(engine: &Engine, modules: &Modules, depth: u32, locals: u32, plan: Plan) -> Result<Row> {
    let want = expected(depth, locals);
    let mut ours_ready = Ours::new(engine, &modules.instrumented, Import::Ready)?;
    let mut ours_pending = Ours::new(engine, &modules.instrumented, Import::PendingOnce)?;
    let mut fibers_ready = Fibers::new(engine, &modules.plain, Import::Ready)?;
    let mut fibers_pending = Fibers::new(engine, &modules.plain, Import::PendingOnce)?;
    for ours in [&mut ours_ready, &mut ours_pending] {
        let got = futures::executor::block_on(ours.run.call_async(&mut ours.store, depth as i32))?;
        if got != want {
            bail!("run({depth}) with {locals} locals returned {got} (ours), expected {want}");
        }
    }
    for fibers in [&mut fibers_ready, &mut fibers_pending] {
        let got =
            futures::executor::block_on(fibers.run.call_async(&mut fibers.store, depth as i32))?;
        if got != want {
            bail!("run({depth}) with {locals} locals returned {got} (fibers), expected {want}");
        }
    }
    let saved_bytes = ours_pending.saved_bytes(depth)?;
    let [ours_ready, fibers_ready, ours_pending, fibers_pending] = samples_ns(
        plan,
        [
            ours_ready.batch(depth),
            fibers_ready.batch(depth),
            ours_pending.batch(depth),
            fibers_pending.batch(depth),
        ],
    )?;
    Ok(Row {
        depth,
        locals,
        ready: Compared::new(ours_ready, fibers_ready),
        pending: Compared::new(ours_pending, fibers_pending),
        saved_bytes,
    })
}

/// Nanoseconds or bytes, rounded, with thousands separators.
fn whole(x: f64) -> String {
    thousands(x.max(0.0).round() as u64)
}

fn section(rows: &[Row], plan: Plan, quick: bool, load: &str) -> Result<String> {
    let mut out = String::new();
    let command = format!(
        "cargo build --release -p asyncify-benches --bin suspend_cost && \
         target/release/suspend_cost --markdown{}",
        if quick { " --quick" } else { "" }
    );
    writeln!(
        out,
        "## Suspension: asyncify-linker against wasmtime fibers\n\n\
         One export call that reaches an async import through D wasm frames, each frame \
         holding L locals (i32, i64, f64 in turn) that are live across the call. \
         \"Ready\": the import's future is ready at once; \"pending once\": it is pending \
         once, so the call suspends, then resumes. Ours: `asyncify-linker` on the module \
         instrumented by `asyncify_transform` (default options); fibers: wasmtime 48's \
         `func_wrap_async` + `call_async` on the original module. Both driven by \
         `futures::executor::block_on`, a new export call per iteration. Figures are ns of \
         CPU time (this thread's, so time the busy machine spends on other work is left \
         out) per call: medians of {} rounds of about {} ms, in which the four measurements \
         of a row take turns; a ratio is the median of the per-round ratios ours / fibers. \
         \"Saved\" is the stack the linker holds while the call is suspended. Load average \
         at the start: {}.\n\n    {command}\n",
        plan.rounds,
        plan.round.as_millis(),
        load,
    )?;
    writeln!(
        out,
        "| D | L | ready, ours | ready, fibers | ratio | pending once, ours | \
         pending once, fibers | ratio | saved |\n|---|---|---|---|---|---|---|---|---|"
    )?;
    for r in rows {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} B |",
            r.depth,
            r.locals,
            whole(r.ready.ours),
            whole(r.ready.fibers),
            ratio(r.ready.ratio),
            whole(r.pending.ours),
            whole(r.pending.fibers),
            ratio(r.pending.ratio),
            thousands(r.saved_bytes),
        )?;
    }
    let at = |depth: u32| {
        rows.iter()
            .find(|r| (r.depth, r.locals) == (depth, HEADLINE_LOCALS))
    };
    let figures = |r: &Row| {
        format!(
            "{}: {} ns against {} ns, {} B saved",
            ratio(r.pending.ratio),
            whole(r.pending.ours),
            whole(r.pending.fibers),
            thousands(r.saved_bytes)
        )
    };
    let depth_1 = at(1).map_or_else(|| "not measured".to_string(), figures);
    writeln!(
        out,
        "\nTargets (pending once, {HEADLINE_LOCALS} live locals per frame; depth 1 for \
         comparison: {depth_1}):\n"
    )?;
    for (target, depth, limit) in [
        (&targets::SUSPEND_DEPTH_10, 10, DEPTH_10_LIMIT),
        (&targets::SUSPEND_DEPTH_100, 100, DEPTH_100_LIMIT),
    ] {
        let line = match at(depth) {
            Some(r) => target.line(Verdict::from_met(r.pending.ratio <= limit), &figures(r)),
            None => target.line(Verdict::NotMeasured, "the combination did not run"),
        };
        writeln!(out, "{line}")?;
    }
    if let Some(r) = at(10) {
        let others: Vec<String> = rows
            .iter()
            .filter(|r| r.depth == 10)
            .map(|r| format!("{} with {} locals", ratio(r.pending.ratio), r.locals))
            .collect();
        writeln!(
            out,
            "- {}: suspend and resume at depth 10 in at most {OLDER_LIMIT}x the fiber round trip: \
             **{}** ({}; at depth 10: {}).",
            targets::OLDER,
            if r.pending.ratio <= OLDER_LIMIT {
                "met"
            } else {
                "not met"
            },
            ratio(r.pending.ratio),
            others.join(", "),
        )?;
    }
    Ok(out)
}

/// `--profile D L CALLS`: only our pending-once call at depth D with L
/// locals, CALLS times, for a profiler (`perf record -g`, or `perf stat`:
/// task-clock / CALLS is the CPU time per call even on a busy machine).
fn profile_loop(args: &[String]) -> Result<()> {
    let [depth, locals, calls] = args else {
        bail!("usage: suspend_cost --profile DEPTH LOCALS CALLS");
    };
    let parse = |what: &str, s: &str| -> Result<u32> {
        s.parse()
            .map_err(|_| format_err!("{what} must be a whole number, got `{s}`"))
    };
    let (depth, locals, calls) = (
        parse("DEPTH", depth)?,
        parse("LOCALS", locals)?,
        parse("CALLS", calls)?,
    );
    // A perf map names the JIT code in profiles (/tmp/perf-PID.map).
    let mut config = wasmtime::Config::new();
    config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    let engine = Engine::new(&config)?;
    let modules = Modules::new(&engine, locals)?;
    let mut ours = Ours::new(&engine, &modules.instrumented, Import::PendingOnce)?;
    let mut batch = ours.batch(depth);
    let start = Instant::now();
    batch(calls)?;
    eprintln!(
        "suspend_cost: {calls} calls, {:.0} ns each (wall clock)",
        start.elapsed().as_nanos() as f64 / f64::from(calls)
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--profile") {
        return profile_loop(&args[1..]);
    }
    let mut quick = false;
    for arg in &args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--markdown" => {} // the only output format
            "-h" | "--help" => {
                println!(
                    "usage: suspend_cost [--markdown] [--quick]\n       \
                     suspend_cost --profile DEPTH LOCALS CALLS   (our pending-once call in a loop)"
                );
                return Ok(());
            }
            other => bail!("unknown argument `{other}` (expected --markdown, --quick, --profile)"),
        }
    }
    let plan = Plan::new(quick);
    let load = load_average();
    let engine = Engine::default();
    let mut rows = Vec::new();
    for locals in LOCALS {
        let modules = Modules::new(&engine, locals)?;
        for depth in DEPTHS {
            eprintln!("suspend_cost: D = {depth}, L = {locals}");
            rows.push(measure(&engine, &modules, depth, locals, plan)?);
        }
    }
    rows.sort_by_key(|r| (r.depth, r.locals));
    print!("{}", section(&rows, plan, quick, &load)?);
    Ok(())
}
