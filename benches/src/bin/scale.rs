//! Scale: how many calls can be suspended at once on one thread, and what
//! each suspended call costs in memory beyond its instance.
//!
//! For N instances of a small module (an export that reaches an async import
//! through three frames with three live locals each), each in its own store,
//! one call is started on every instance and left suspended on the import,
//! whose future stays pending until all are released. Process RSS is read
//! from `/proc/self/smaps_rollup` with the N instances created and no call
//! started, then with all N calls suspended; memory per suspended call is the
//! difference divided by N. Then every call is released and its result
//! checked. Two sides, each under two settings: tuned (wasmtime's pooling
//! allocator, the linker's buffer fixed in an already-resident page) and
//! default (`Engine::default()`, the linker's default buffer placement, on
//! which issue 17's memory targets are judged at 10,000 instances):
//! - asyncify-linker: the module instrumented by `asyncify_transform` with
//!   default options, run through `asyncify_linker` (no fibers);
//! - wasmtime fibers: the original module, `func_wrap_async` + `call_async`.
//!
//! Each (side, N) runs in a fresh child process (this binary re-executed with
//! `--child SETUP SIDE N`), so RSS figures start clean and a failure (out of memory
//! mappings, typically) is reported instead of ending the run. A child stops
//! itself when its RSS passes 16 GiB.
//!
//! Run: `target/release/scale --markdown [--quick]` (build with
//! `cargo build --release -p asyncify-benches --bin scale`).

use std::future::{poll_fn, Future};
use std::io::Read;
use std::path::Path;
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use asyncify_benches::sections::{first_line, memory, ratio, thousands};
use asyncify_benches::targets::{self, Verdict};
use asyncify_linker::AsyncCaller;
use wasmtime::{
    bail, format_err, Config, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig,
    Result, Store,
};

/// The module: `run(x)` goes three frames down (`$down`), each frame keeping
/// three locals (i32, i64, f64) live across the call below it, and the
/// deepest calls the import `env.wait`. It has no data segment: with one,
/// wasmtime would initialise the memory of an async store on a fiber stack
/// and keep that stack in the store, so it would count as the instance's.
/// Instead [`touch_data`] writes its data after instantiation.
const MODULE: &str = r#"(module
  (import "env" "wait" (func $wait (param i32) (result i32)))
  (memory (export "memory") 1 1)
  (func $down (param $depth i32) (param $x i32) (result i32)
    (local $a i32) (local $b i64) (local $c f64)
    (local.set $a (i32.add (local.get $x) (local.get $depth)))
    (local.set $b (i64.extend_i32_u (i32.mul (local.get $x) (i32.const 3))))
    (local.set $c (f64.convert_i32_u (local.get $depth)))
    (i32.add
      (if (result i32) (i32.le_u (local.get $depth) (i32.const 1))
        (then (call $wait (local.get $x)))
        (else (call $down (i32.sub (local.get $depth) (i32.const 1)) (local.get $x))))
      (i32.add
        (i32.add (local.get $a) (i32.wrap_i64 (local.get $b)))
        (i32.trunc_f64_u (local.get $c)))))
  (func (export "run") (param $x i32) (result i32)
    (call $down (i32.const 3) (local.get $x))))"#;

/// [`MODULE`] for a setup: with the linker's default buffer placement the
/// memory must be able to grow (the buffer's pages go at its end), so the
/// default setup drops the maximum of one page.
fn module_text(setup: Setup) -> String {
    match setup {
        Setup::Tuned => MODULE.to_string(),
        Setup::Default => MODULE.replace(
            r#"(memory (export "memory") 1 1)"#,
            r#"(memory (export "memory") 1)"#,
        ),
    }
}

/// Data written at 1024 in every instance, so that its first page is
/// resident, as a real module's data and shadow stack make it.
const DATA: &[u8] = b"data of the scale benchmark";
const DATA_AT: usize = 1024;

/// Writes [`DATA`] into the instance's exported memory.
fn touch_data(store: &mut Store<()>, memory: Option<wasmtime::Memory>) -> Result<()> {
    let memory = memory.ok_or_else(|| format_err!("the module exports no memory"))?;
    memory.write(store, DATA_AT, DATA)?;
    Ok(())
}

/// Where the linker keeps saved stacks: 1008 bytes at 16, below the data.
const BUFFER_AT: u64 = 16;
const BUFFER_LEN: u64 = 1008;

/// What `run(x)` returns when `wait(x)` answers `2x + 1`: each frame at depth
/// d adds `(x + d) + 3x + d`, for d = 1, 2, 3.
fn expected(x: i32) -> i32 {
    import_answer(x)
        .wrapping_add(x.wrapping_mul(12))
        .wrapping_add(12)
}

/// The import's answer once released.
fn import_answer(x: i32) -> i32 {
    x.wrapping_mul(2).wrapping_add(1)
}

/// The argument of the call on instance `i`.
fn argument(i: usize) -> i32 {
    i as i32
}

/// Set when the suspended calls may finish; until then every import's future
/// is pending.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// Pending until [`RELEASED`] is set. Calls are polled by hand with a noop
/// waker, so it need not wake anyone.
async fn until_released() {
    poll_fn(|_| {
        if RELEASED.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Sizes of the main table.
const COUNTS: [usize; 3] = [1_000, 10_000, 100_000];
/// Sizes of the default settings' table; [`DEFAULT_TARGET_COUNT`] alone with
/// `--quick`.
const DEFAULT_COUNTS: [usize; 2] = [1_000, 10_000];
/// Issue 17 judges the default settings at this many instances.
const DEFAULT_TARGET_COUNT: usize = 10_000;
/// Issue 17: bytes per suspended call with the default settings.
const DEFAULT_TARGET_BYTES_PER_CALL: f64 = 1024.0;
/// Issue 17: an instance with its suspended call through the linker, over
/// the same instance with a fiber, default settings.
const DEFAULT_TARGET_INSTANCE_RATIO: f64 = 0.6;
/// Counts tried, in order, for the largest count each side reaches.
const LADDER: [usize; 5] = [20_000, 30_000, 50_000, 100_000, 200_000];
/// A child stops when its RSS passes this.
const RSS_LIMIT_BYTES: u64 = 16 << 30;
/// A child is killed after this long.
const CHILD_TIMEOUT: Duration = Duration::from_secs(900);
/// Older target (`anchors-and-targets.md`): bytes per suspended call, tuned
/// settings.
const TARGET_BYTES_PER_CALL: f64 = 2048.0;
/// Older target: calls suspended at once, tuned settings.
const TARGET_CALLS: usize = 100_000;

/// Linear memory slot per instance: the module's single 64 KiB page.
const MEMORY_BYTES: u64 = 64 << 10;

/// The engine of a setup; `instances` and `stacks` size the pool of the
/// tuned one (see [`tuned_engine`]).
fn engine(setup: Setup, instances: usize, stacks: usize) -> Result<Engine> {
    match setup {
        Setup::Tuned => tuned_engine(instances, stacks),
        Setup::Default => Ok(Engine::default()),
    }
}

/// The tuned engine both sides use. Memories come from the pooling allocator's
/// slab, each slot exactly one 64 KiB page with no guard region, so that
/// neighbouring slots merge into one mapping; no copy-on-write memory image
/// (with data segments it would map a file into every instance).
/// `stacks` is the number of fiber stacks the pool holds (0 for the linker,
/// which runs on the caller's stack).
fn tuned_engine(instances: usize, stacks: usize) -> Result<Engine> {
    let slots = u32::try_from(instances + 16)?;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(16)
        .total_stacks(u32::try_from(stacks)?)
        .max_memory_size(MEMORY_BYTES as usize);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_reservation(MEMORY_BYTES)
        .memory_guard_size(0)
        .memory_reservation_for_growth(0)
        .guard_before_linear_memory(false)
        .memory_init_cow(false);
    Engine::new(&config)
}

/// Settings of [`engine`], for the report.
const ENGINE_SETTINGS: &str = "wasmtime 48 pooling allocator (`total_core_instances` = \
`total_memories` = N + 16, `total_tables` = 16, `max_memory_size` = 64 KiB, `total_stacks` = \
N + 16 for fibers and 0 for the linker, which uses no fiber stack), `memory_reservation` = \
64 KiB, `memory_guard_size` = 0, `memory_reservation_for_growth` = 0, \
`guard_before_linear_memory` = false, `memory_init_cow` = false; other settings default \
(`async_stack_size` 2 MiB, `max_wasm_stack` 512 KiB)";

/// The engine and linker settings a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    /// The pooling allocator of [`tuned_engine`], and the linker's buffer
    /// fixed at [`BUFFER_AT`] in a page the data already made resident.
    Tuned,
    /// `Engine::default()` (on-demand allocation, no pool) and the linker's
    /// default buffer placement (pages grown at the end of memory the first
    /// time a call suspends): what an embedder gets without tuning.
    Default,
}

impl Setup {
    fn arg(self) -> &'static str {
        match self {
            Setup::Tuned => "tuned",
            Setup::Default => "default",
        }
    }

    fn from_arg(arg: &str) -> Result<Setup> {
        match arg {
            "tuned" => Ok(Setup::Tuned),
            "default" => Ok(Setup::Default),
            _ => bail!("unknown setup `{arg}` (expected `tuned` or `default`)"),
        }
    }
}

/// The two sides compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Linker,
    Fibers,
}

impl Side {
    fn arg(self) -> &'static str {
        match self {
            Side::Linker => "linker",
            Side::Fibers => "fibers",
        }
    }

    fn from_arg(arg: &str) -> Result<Side> {
        match arg {
            "linker" => Ok(Side::Linker),
            "fibers" => Ok(Side::Fibers),
            _ => bail!("unknown side `{arg}` (expected `linker` or `fibers`)"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Side::Linker => "asyncify-linker",
            Side::Fibers => "wasmtime fibers",
        }
    }
}

/// What one child measured (bytes, counts, times).
#[derive(Clone, Debug, Default)]
struct Measured {
    /// RSS with the engine, module and linker ready, before any instance.
    rss_engine: u64,
    /// RSS with the N instances and no call started.
    rss_instances: u64,
    /// RSS with all N calls suspended.
    rss_suspended: u64,
    /// VmHWM at the end (after the calls finished).
    peak_rss: u64,
    /// Mappings (`/proc/self/maps` lines) at the two points.
    maps_instances: u64,
    maps_suspended: u64,
    /// Bytes of saved stack in the asyncify buffer per call (linker only).
    saved_stack: u64,
    /// Time to start (and suspend) all calls, and to finish them all.
    suspend_all: Duration,
    resume_all: Duration,
}

impl Measured {
    /// With the N instances created and measured, `rss_engine` before them.
    fn after_instances(rss_engine: u64) -> Result<Measured> {
        let measured = Measured {
            rss_engine,
            rss_instances: resident_bytes()?,
            maps_instances: mapping_count()?,
            ..Measured::default()
        };
        eprintln!(
            "instances created: RSS {} MiB, {} mappings",
            measured.rss_instances >> 20,
            measured.maps_instances
        );
        Ok(measured)
    }

    /// RSS each suspended call adds.
    fn per_call(&self, n: usize) -> f64 {
        (self.rss_suspended as f64 - self.rss_instances as f64) / n as f64
    }

    /// RSS each instance (with its store) adds, no call started.
    fn per_instance(&self, n: usize) -> f64 {
        (self.rss_instances as f64 - self.rss_engine as f64) / n as f64
    }

    /// One line for the parent (see [`Measured::decode`]).
    fn encode(&self) -> String {
        let fields = [
            self.rss_engine,
            self.rss_instances,
            self.rss_suspended,
            self.peak_rss,
            self.maps_instances,
            self.maps_suspended,
            self.saved_stack,
            self.suspend_all.as_nanos() as u64,
            self.resume_all.as_nanos() as u64,
        ];
        let fields: Vec<String> = fields.iter().map(u64::to_string).collect();
        format!("RESULT {}", fields.join(" "))
    }

    fn decode(line: &str) -> Option<Measured> {
        let fields: Vec<u64> = line
            .strip_prefix("RESULT ")?
            .split(' ')
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let [rss_engine, rss_instances, rss_suspended, peak_rss, maps_instances, maps_suspended, saved_stack, suspend_ns, resume_ns] =
            fields[..]
        else {
            return None;
        };
        Some(Measured {
            rss_engine,
            rss_instances,
            rss_suspended,
            peak_rss,
            maps_instances,
            maps_suspended,
            saved_stack,
            suspend_all: Duration::from_nanos(suspend_ns),
            resume_all: Duration::from_nanos(resume_ns),
        })
    }
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .ok_or_else(|| format_err!("no {field} in /proc/self/status"))?;
    let kb: u64 = line.trim().trim_end_matches("kB").trim().parse()?;
    Ok(kb * 1024)
}

/// Resident set size in bytes, summed over the page tables
/// (`/proc/self/smaps_rollup`): exact, where `VmRSS` in `/proc/self/status`
/// is a counter the kernel may update late.
fn resident_bytes() -> Result<u64> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup")?;
    let line = rollup
        .lines()
        .find_map(|l| l.strip_prefix("Rss:"))
        .ok_or_else(|| format_err!("no Rss in /proc/self/smaps_rollup"))?;
    let kb: u64 = line.trim().trim_end_matches("kB").trim().parse()?;
    Ok(kb * 1024)
}

/// Number of memory mappings of this process.
fn mapping_count() -> Result<u64> {
    Ok(std::fs::read_to_string("/proc/self/maps")?.lines().count() as u64)
}

/// Fails once RSS passes [`RSS_LIMIT_BYTES`]; checked every 1024 steps.
fn check_rss(step: usize) -> Result<()> {
    if step.is_multiple_of(1024) {
        let rss = status_bytes("VmRSS")?;
        if rss > RSS_LIMIT_BYTES {
            bail!(
                "stopped at {step}: RSS {} MiB passed the {} MiB guard",
                rss >> 20,
                RSS_LIMIT_BYTES >> 20
            );
        }
    }
    Ok(())
}

/// One export call in flight, borrowing its store.
type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<i32>> + 'a>>;

/// Polls every call once (all must be pending; `after_first` runs once the
/// first is), measures, releases them and checks each result.
fn suspend_measure_release(
    mut calls: Vec<CallFuture<'_>>,
    started: Instant,
    measured: &mut Measured,
    after_first: impl FnOnce(&mut Measured),
) -> Result<()> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut after_first = Some(after_first);
    for (i, call) in calls.iter_mut().enumerate() {
        if let Poll::Ready(result) = call.as_mut().poll(&mut cx) {
            bail!(
                "call {i} did not suspend: it returned {:?}",
                result.map_err(|e| format!("{e:#}"))
            );
        }
        if let Some(f) = after_first.take() {
            f(measured);
        }
        check_rss(i)?;
    }
    measured.suspend_all = started.elapsed();
    measured.rss_suspended = resident_bytes()?;
    eprintln!("calls suspended: RSS {} MiB", measured.rss_suspended >> 20);
    measured.maps_suspended = mapping_count()?;

    RELEASED.store(true, Ordering::Release);
    let resuming = Instant::now();
    for (i, call) in calls.iter_mut().enumerate() {
        match call.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(got)) if got == expected(argument(i)) => {}
            Poll::Ready(Ok(got)) => bail!(
                "call {i} returned {got}, expected {}",
                expected(argument(i))
            ),
            Poll::Ready(Err(e)) => return Err(e.context(format!("call {i} failed"))),
            Poll::Pending => bail!("call {i} is still pending after the release"),
        }
    }
    measured.resume_all = resuming.elapsed();
    drop(calls);
    measured.peak_rss = status_bytes("VmHWM")?;
    Ok(())
}

/// Child: N instances through asyncify-linker, one suspended call on each.
fn run_linker(setup: Setup, n: usize) -> Result<Measured> {
    let engine = engine(setup, n, 0)?;
    let wasm = asyncify_transform::instrument(module_text(setup).as_bytes(), &Default::default())
        .map_err(|e| format_err!("instrumenting the module: {e}"))?
        .wasm;
    let module = Module::new(&engine, wasm)?;
    let mut linker = asyncify_linker::Linker::<()>::new(&engine);
    if setup == Setup::Tuned {
        linker.fixed_buffer(BUFFER_AT, BUFFER_LEN);
    }
    linker.func_wrap_async("env", "wait", |_: AsyncCaller<()>, x: i32| async move {
        until_released().await;
        Ok(import_answer(x))
    })?;

    let rss_engine = resident_bytes()?;
    let mut stores = Vec::with_capacity(n);
    let mut funcs = Vec::with_capacity(n);
    let mut instances = Vec::with_capacity(n);
    for i in 0..n {
        let mut store = Store::new(&engine, ());
        let instance = linker
            .instantiate(&mut store, &module)
            .map_err(|e| e.context(format!("instantiating instance {i}")))?;
        let memory = instance.get_memory(&mut store, "memory");
        touch_data(&mut store, memory)?;
        funcs.push(instance.get_typed_func::<i32, i32>(&mut store, "run")?);
        instances.push(instance);
        stores.push(store);
        check_rss(i)?;
    }
    let mut measured = Measured::after_instances(rss_engine)?;

    let started = Instant::now();
    let calls: Vec<CallFuture<'_>> = stores
        .iter_mut()
        .zip(&funcs)
        .enumerate()
        .map(|(i, (store, run))| Box::pin(run.call_async(store, argument(i))) as CallFuture<'_>)
        .collect();
    suspend_measure_release(calls, started, &mut measured, |m| {
        m.saved_stack = instances[0].buffer_usage().map_or(0, |u| u.in_use);
    })?;
    Ok(measured)
}

/// Child: N instances under wasmtime's native async, one suspended call on
/// each (each holds a fiber stack).
fn run_fibers(setup: Setup, n: usize) -> Result<Measured> {
    let engine = engine(setup, n, n + 16)?;
    let module = Module::new(&engine, wat::parse_str(module_text(setup))?)?;
    let mut linker = wasmtime::Linker::<()>::new(&engine);
    linker.func_wrap_async("env", "wait", |_caller, (x,): (i32,)| {
        Box::new(async move {
            until_released().await;
            Ok(import_answer(x))
        })
    })?;

    let rss_engine = resident_bytes()?;
    let mut stores = Vec::with_capacity(n);
    let mut funcs = Vec::with_capacity(n);
    let mut cx = Context::from_waker(Waker::noop());
    for i in 0..n {
        let mut store = Store::new(&engine, ());
        // Completes at once: the module has no start function and nothing
        // to initialise on a fiber.
        let instance =
            match std::pin::pin!(linker.instantiate_async(&mut store, &module)).poll(&mut cx) {
                Poll::Ready(instance) => {
                    instance.map_err(|e| e.context(format!("instantiating instance {i}")))?
                }
                Poll::Pending => bail!("instantiating instance {i} did not complete at once"),
            };
        let memory = instance.get_memory(&mut store, "memory");
        touch_data(&mut store, memory)?;
        funcs.push(instance.get_typed_func::<i32, i32>(&mut store, "run")?);
        stores.push(store);
        check_rss(i)?;
    }
    let mut measured = Measured::after_instances(rss_engine)?;

    let started = Instant::now();
    let calls: Vec<CallFuture<'_>> = stores
        .iter_mut()
        .zip(&funcs)
        .enumerate()
        .map(|(i, (store, run))| Box::pin(run.call_async(store, argument(i))) as CallFuture<'_>)
        .collect();
    suspend_measure_release(calls, started, &mut measured, |_| {})?;
    Ok(measured)
}

/// The outcome of one child.
type Outcome = std::result::Result<Measured, String>;

/// Runs one (side, N) in a child process of this binary.
fn run_child(setup: Setup, side: Side, n: usize) -> Result<Outcome> {
    eprintln!(
        "scale: {} with {n} suspended calls, {} settings...",
        side.label(),
        setup.arg()
    );
    let exe = std::env::current_exe()?;
    let mut child = Command::new(&exe)
        .args(["--child", setup.arg(), side.arg(), &n.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    // Output is one short line each way, so reading after the exit cannot
    // block the child on a full pipe.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > CHILD_TIMEOUT {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut stdout)?;
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr)?;
    }
    let Some(status) = status else {
        return Ok(Err(format!(
            "did not finish in {} s",
            CHILD_TIMEOUT.as_secs()
        )));
    };
    if status.success() {
        if let Some(m) = stdout.lines().find_map(Measured::decode) {
            return Ok(Ok(m));
        }
    }
    let reason = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or_else(|| format!("exited with {status}"), |l| l.trim().to_string());
    Ok(Err(reason))
}

/// A count of instances or calls, with thousands separators.
fn count(n: usize) -> String {
    thousands(n as u64)
}

/// `bytes` rounded, with thousands separators and its sign.
fn signed_thousands(bytes: f64) -> String {
    let rounded = bytes.round();
    let sign = if rounded < 0.0 { "-" } else { "" };
    format!("{sign}{}", thousands(rounded.abs() as u64))
}

/// One row of the main table.
fn row(side: Side, n: usize, outcome: &Outcome) -> String {
    match outcome {
        Ok(m) => format!(
            "| {} | {} | {} | {} B | {} | {} B | {} | {} / {} | {:.2} / {:.2} µs |",
            count(n),
            side.label(),
            memory(m.rss_instances),
            signed_thousands(m.per_instance(n)),
            memory(m.rss_suspended),
            signed_thousands(m.per_call(n)),
            memory(m.peak_rss),
            thousands(m.maps_instances),
            thousands(m.maps_suspended),
            m.suspend_all.as_secs_f64() * 1e6 / n as f64,
            m.resume_all.as_secs_f64() * 1e6 / n as f64,
        ),
        Err(reason) => format!(
            "| {} | {} | fails: {} | | | | | | |",
            count(n),
            side.label(),
            first_line(reason)
        ),
    }
}

/// A table of the runs whose count `keep` accepts, by count then side.
fn table(results: &[(Side, usize, Outcome)], keep: impl Fn(usize) -> bool) -> String {
    let mut out = String::from(
        "| N | side | RSS, instances only | per instance | RSS, N calls suspended | \
         per suspended call | peak RSS | mappings (instances / suspended) | \
         start+suspend / release+finish, per call |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let mut rows: Vec<&(Side, usize, Outcome)> =
        results.iter().filter(|(_, n, _)| keep(*n)).collect();
    rows.sort_by_key(|(side, n, _)| (*n, *side == Side::Fibers));
    for (side, n, outcome) in rows {
        out.push_str(&row(*side, *n, outcome));
        out.push('\n');
    }
    out
}

/// The largest count one side reached, and the first count that failed.
struct Largest {
    side: Side,
    reached: Option<usize>,
    failed: Option<(usize, String)>,
}

/// The outcome for (side, n), from `results` or a new child (then recorded).
fn outcome_of(side: Side, n: usize, results: &mut Vec<(Side, usize, Outcome)>) -> Result<Outcome> {
    if let Some((_, _, outcome)) = results.iter().find(|(s, m, _)| *s == side && *m == n) {
        return Ok(outcome.clone());
    }
    let outcome = run_child(Setup::Tuned, side, n)?;
    results.push((side, n, outcome.clone()));
    Ok(outcome)
}

/// Climbs [`LADDER`] until a count fails, then bisects between the last
/// count that worked and the first that failed, to within 2%.
fn find_largest(side: Side, results: &mut Vec<(Side, usize, Outcome)>) -> Result<Largest> {
    let mut reached = None;
    let mut failed = None;
    for &n in &LADDER {
        match outcome_of(side, n, results)? {
            Ok(_) => reached = Some(n),
            Err(reason) => {
                failed = Some((n, reason));
                break;
            }
        }
    }
    if let (Some(mut low), Some((mut high, mut reason))) = (reached, failed.clone()) {
        while high - low > low / 50 {
            // Round to hundreds so the table reads easily.
            let mid = (low + high) / 2 / 100 * 100;
            if mid <= low {
                break;
            }
            match outcome_of(side, mid, results)? {
                Ok(_) => low = mid,
                Err(why) => (high, reason) = (mid, why),
            }
        }
        reached = Some(low);
        failed = Some((high, reason));
    }
    Ok(Largest {
        side,
        reached,
        failed,
    })
}

/// The report: main table, largest counts, targets.
fn report(quick: bool) -> Result<String> {
    let counts: &[usize] = if quick { &COUNTS[..1] } else { &COUNTS };
    let mut results: Vec<(Side, usize, Outcome)> = Vec::new();
    for &n in counts {
        for side in [Side::Linker, Side::Fibers] {
            results.push((side, n, run_child(Setup::Tuned, side, n)?));
        }
    }
    let default_counts: &[usize] = if quick {
        &[DEFAULT_TARGET_COUNT]
    } else {
        &DEFAULT_COUNTS
    };
    let mut defaults: Vec<(Side, usize, Outcome)> = Vec::new();
    for &n in default_counts {
        for side in [Side::Linker, Side::Fibers] {
            defaults.push((side, n, run_child(Setup::Default, side, n)?));
        }
    }
    let mut largest: Vec<Largest> = Vec::new();
    if !quick {
        for side in [Side::Linker, Side::Fibers] {
            largest.push(find_largest(side, &mut results)?);
        }
    }

    let mut out = String::new();
    out.push_str("## Scale: suspended calls held at once\n\n");
    out.push_str(
        "N instances of a small module, each in its own store, with one call started on each and \
         left suspended on an async import (three wasm frames, three live locals each), all held \
         at once on one thread; then all are released and every result is checked. Memory per \
         suspended call is (RSS with the N calls suspended - RSS with the N instances and no \
         call) / N, each (side, N) in a fresh process. asyncify-linker runs the module \
         instrumented by `asyncify_transform` (default options) and keeps the saved stacks in a \
         fixed buffer at [16, 1024) of the instance's memory, in the page that holds data the \
         bench writes at 1024 after instantiating (standing for a real module's data and shadow \
         stack, which make its first pages resident); wasmtime fibers run the original module with \
         `func_wrap_async` + `call_async`.\n\n",
    );
    out.push_str(&format!(
        "Two settings. Tuned (the first tables): {ENGINE_SETTINGS}. Default (the last table, \
         on which issue 17 judges memory): `Engine::default()` and the linker's default buffer \
         placement, at {} instances.\n\n",
        count(DEFAULT_TARGET_COUNT)
    ));
    out.push_str(&format!(
        "    cargo build --release -p asyncify-benches --bin scale && target/release/scale --markdown{}\n\n",
        if quick { " --quick" } else { "" }
    ));
    out.push_str(&table(&results, |n| counts.contains(&n)));
    let saved = results
        .iter()
        .find_map(|(side, _, o)| match (side, o) {
            (Side::Linker, Ok(m)) => Some(m.saved_stack),
            _ => None,
        })
        .unwrap_or(0);
    out.push_str(&format!(
        "\nThe linker's saved stack is {saved} bytes per call (three frames, in the instance's \
         memory); the rest of its per-call figure is the boxed export-call and import futures \
         and the buffer bookkeeping on the Rust heap. A fiber keeps the native stack pages it \
         touched (one 4 KiB page here; deeper guest or host stacks touch more). Placing the \
         buffer in pages nothing else touched (the linker's default: pages grown at the end of \
         memory) adds one 4 KiB page per instance that suspends, since RSS grows by whole \
         pages: the default settings' table below.\n"
    ));
    // Per instance, at the largest count both sides reached.
    let both = results
        .iter()
        .filter_map(|(side, n, o)| match (side, o) {
            (Side::Linker, Ok(ours)) => results.iter().find_map(|(s, m, f)| match (s, f) {
                (Side::Fibers, Ok(fibers)) if m == n => Some((*n, ours, fibers)),
                _ => None,
            }),
            _ => None,
        })
        .max_by_key(|(n, _, _)| *n);
    if let Some((n, ours, fibers)) = both {
        out.push_str(&format!(
            "\nPer instance with no call (its store, instance and resident memory page), at N = \
             {}: asyncify-linker {} B, wasmtime fibers {} B; the difference is the linker's \
             per-instance state (asyncify runtime exports, buffer bookkeeping, its host \
             functions). With its suspended call, an instance costs {} B through the linker and \
             {} B with a fiber.\n",
            count(n),
            signed_thousands(ours.per_instance(n)),
            signed_thousands(fibers.per_instance(n)),
            signed_thousands(ours.per_instance(n) + ours.per_call(n)),
            signed_thousands(fibers.per_instance(n) + fibers.per_call(n)),
        ));
    }

    if !quick {
        out.push_str(&format!(
            "\nLargest count reached: each side climbs {} until a count fails, then bisects \
             between the last count that worked and the first that failed (to within 2%):\n\n",
            LADDER.map(count).join(", ")
        ));
        for l in &largest {
            let reached = l.reached.map_or("none of them".to_string(), count);
            let failed = l.failed.as_ref().map_or_else(
                || "no failure up to the last count tried".to_string(),
                |(n, why)| format!("{} fails: {why}", count(*n)),
            );
            out.push_str(&format!("- {}: {reached}; {failed}\n", l.side.label()));
        }
        if results.iter().any(|(_, n, _)| !counts.contains(n)) {
            out.push_str("\nThe runs of that search, other than the counts above:\n\n");
            out.push_str(&table(&results, |n| !counts.contains(&n)));
        }
        out.push_str(
            "\nThe kernel allows 65,530 mappings per process (`vm.max_map_count`, left at its \
             default). The pool maps every fiber stack with its own guard page (two mappings \
             each, made when the engine is created), so fibers stop near 32,000 whatever the \
             RSS; raising `vm.max_map_count` (root) or stacks without guard pages would move \
             that limit, not the memory each stack holds. The linker needs no mapping per call, \
             and the memory slots, all accessible and without guards, merge into one mapping: \
             its count is bounded by memory (the per-instance figures above), and the search \
             stops at 200,000 to spare this shared machine.\n",
        );
    }

    out.push_str(&default_part(&defaults));
    out.push_str(&targets_part(&results, &defaults, &largest, counts, quick));
    Ok(out)
}

/// An instance with its suspended call, through the linker and with a
/// fiber, at `n` (bytes each), when both sides ran there.
fn instance_with_call(results: &[(Side, usize, Outcome)], n: usize) -> Option<(f64, f64)> {
    let at = |side: Side| {
        results.iter().find_map(|(s, m, o)| match o {
            Ok(measured) if *s == side && *m == n => {
                Some(measured.per_instance(n) + measured.per_call(n))
            }
            _ => None,
        })
    };
    Some((at(Side::Linker)?, at(Side::Fibers)?))
}

/// The default settings' table and what it shows.
fn default_part(defaults: &[(Side, usize, Outcome)]) -> String {
    let mut out = String::from(
        "\n### The default settings\n\nThe same module, the same N instances and suspended \
         calls, with what an embedder gets without tuning: `Engine::default()` (wasmtime's \
         on-demand allocator, no pool: each memory its own reservation with guard pages, each \
         fiber stack allocated when its call starts) and the linker's default buffer placement \
         (no `fixed_buffer`: pages grown at the end of the instance's memory the first time a \
         call suspends, 1 MiB by default of which only the pages written become resident). The \
         module's memory has no maximum here, so that the buffer can grow.\n\n",
    );
    out.push_str(&table(defaults, |_| true));
    if let Some((ours, fibers)) = instance_with_call(defaults, DEFAULT_TARGET_COUNT) {
        out.push_str(&format!(
            "\nWith its suspended call, at N = {} with the default settings, an instance costs \
             {} B through the linker and {} B with a fiber: {}.\n",
            count(DEFAULT_TARGET_COUNT),
            signed_thousands(ours),
            signed_thousands(fibers),
            ratio(ours / fibers)
        ));
    }
    out
}

/// The verdicts: issue 17's (default settings) and the older notes' (tuned).
fn targets_part(
    results: &[(Side, usize, Outcome)],
    defaults: &[(Side, usize, Outcome)],
    largest: &[Largest],
    counts: &[usize],
    quick: bool,
) -> String {
    let mut out = String::from("\nTargets:\n\n");
    let at = |results: &'_ [(Side, usize, Outcome)], side: Side, n: usize| {
        results
            .iter()
            .find(|(s, m, _)| *s == side && *m == n)
            .map(|(_, _, o)| o.clone())
    };
    let n = DEFAULT_TARGET_COUNT;
    // The tuned settings at the count nearest the target's.
    let tuned_note = results
        .iter()
        .filter_map(|(side, m, o)| match o {
            Ok(measured) if *side == Side::Linker => Some((*m, measured.per_call(*m))),
            _ => None,
        })
        .min_by_key(|(m, _)| m.abs_diff(n))
        .map(|(m, bytes)| {
            format!(
                "; tuned settings: {} B at N = {}",
                signed_thousands(bytes),
                count(m)
            )
        })
        .unwrap_or_default();
    let fibers_note = match at(defaults, Side::Fibers, n) {
        Some(Ok(m)) => format!(
            "; wasmtime fibers, default settings: {} B",
            signed_thousands(m.per_call(n))
        ),
        _ => String::new(),
    };
    let line = match at(defaults, Side::Linker, n) {
        Some(Ok(m)) => targets::SCALE_PER_CALL.line(
            Verdict::from_met(m.per_call(n) <= DEFAULT_TARGET_BYTES_PER_CALL),
            &format!(
                "{} B per suspended call through the linker at N = {}{tuned_note}{fibers_note}",
                signed_thousands(m.per_call(n)),
                count(n)
            ),
        ),
        Some(Err(why)) => targets::SCALE_PER_CALL.line(
            Verdict::NotMet,
            &format!("the linker fails at N = {}: {}", count(n), first_line(&why)),
        ),
        None => targets::SCALE_PER_CALL.line(Verdict::NotMeasured, "not run"),
    };
    out.push_str(&line);
    out.push('\n');
    // The floor: the instance alone as wasmtime makes it (the fibers' side
    // before any call), which no change to the linker can go below.
    let floor = match at(defaults, Side::Fibers, n) {
        Some(Ok(m)) => Some(m.per_instance(n)),
        _ => None,
    };
    let line = match instance_with_call(defaults, n) {
        Some((ours, fibers)) => targets::SCALE_INSTANCE.line(
            Verdict::from_met(ours / fibers <= DEFAULT_TARGET_INSTANCE_RATIO),
            &format!(
                "{}: {} B against {} B at N = {}; floor: the instance alone, as wasmtime makes \
                 it with no call and no linker, {} B, {} of the instance with a fiber",
                ratio(ours / fibers),
                signed_thousands(ours),
                signed_thousands(fibers),
                count(n),
                floor.map_or("-".to_string(), signed_thousands),
                floor.map_or("-".to_string(), |floor| ratio(floor / fibers)),
            ),
        ),
        None => targets::SCALE_INSTANCE.line(
            Verdict::NotMeasured,
            &format!("a side did not complete N = {}", count(n)),
        ),
    };
    out.push_str(&line);
    out.push('\n');
    out.push_str(&older_targets(results, largest, counts, quick));
    out
}

/// The older notes' targets, on the tuned settings.
fn older_targets(
    results: &[(Side, usize, Outcome)],
    largest: &[Largest],
    counts: &[usize],
    quick: bool,
) -> String {
    let mut out = String::new();
    let older = targets::OLDER;
    let at = |side: Side, n: usize| {
        results
            .iter()
            .find(|(s, m, _)| *s == side && *m == n)
            .map(|(_, _, o)| o)
    };
    let biggest = counts[counts.len() - 1];
    match at(Side::Linker, biggest) {
        Some(Ok(m)) => {
            let per_call = m.per_call(biggest);
            // Fibers at the largest of the table's counts they reach.
            let fibers_per_call = counts
                .iter()
                .rev()
                .find_map(|&n| match at(Side::Fibers, n) {
                    Some(Ok(f)) => Some((n, f.per_call(n))),
                    _ => None,
                });
            out.push_str(&format!(
                "- {older}: <= 2 KB per suspended call, tuned settings: {} ({} B per call at N = \
                 {}{})\n",
                if per_call <= TARGET_BYTES_PER_CALL {
                    "met"
                } else {
                    "not met"
                },
                signed_thousands(per_call),
                count(biggest),
                fibers_per_call
                    .map(|(n, bytes)| format!(
                        "; wasmtime fibers: {} B at N = {}",
                        signed_thousands(bytes),
                        count(n)
                    ))
                    .unwrap_or_default()
            ));
        }
        Some(Err(why)) => out.push_str(&format!(
            "- {older}: <= 2 KB per suspended call, tuned settings: not met (the linker fails at \
             N = {}: {why})\n",
            count(biggest)
        )),
        None => {}
    }
    if quick {
        out.push_str(&format!(
            "- {older}: 100,000 suspended calls: not measured (--quick)\n"
        ));
        return out;
    }
    let ours = at(Side::Linker, TARGET_CALLS);
    let fibers = at(Side::Fibers, TARGET_CALLS);
    let verdict = if matches!(ours, Some(Ok(_))) {
        "met"
    } else {
        "not met"
    };
    let fibers_note = match fibers {
        Some(Ok(_)) => "fibers also reach it".to_string(),
        _ => {
            let reached = largest
                .iter()
                .find(|l| l.side == Side::Fibers)
                .and_then(|l| l.reached);
            format!(
                "fibers stop first, largest count reached {}",
                reached.map_or("none".to_string(), count)
            )
        }
    };
    out.push_str(&format!(
        "- {older}: 100,000 suspended calls, tuned settings: {verdict} (asyncify-linker {}; \
         {fibers_note})\n",
        match ours {
            Some(Ok(m)) => format!("holds 100,000 in {} RSS", memory(m.rss_suspended)),
            Some(Err(why)) => format!("fails: {why}"),
            None => "not run".to_string(),
        }
    ));
    out
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, setup, side, n] = &args[..] {
        if flag == "--child" {
            let setup = Setup::from_arg(setup)?;
            let side = Side::from_arg(side)?;
            let n: usize = n.parse()?;
            let measured = match side {
                Side::Linker => run_linker(setup, n),
                Side::Fibers => run_fibers(setup, n),
            };
            return match measured {
                Ok(m) => {
                    println!("{}", m.encode());
                    Ok(())
                }
                Err(e) => {
                    eprintln!("{e:#}");
                    std::process::exit(1);
                }
            };
        }
    }
    let mut quick = false;
    for arg in &args {
        match arg.as_str() {
            "--quick" => quick = true,
            "--markdown" => {}
            other => bail!("unknown argument `{other}` (expected --markdown, --quick)"),
        }
    }
    if !Path::new("/proc/self/status").exists() {
        bail!("scale reads RSS from /proc/self/status, which this system does not have");
    }
    print!("{}", report(quick)?);
    Ok(())
}
