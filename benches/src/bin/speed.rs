//! Speed of instrumented code that does not suspend: the compute benchmarks
//! of `corpus/bench/compute.wasm` (sources in `corpus/programs/compute/`)
//! and yosys from the shared corpus, each run as the original module, as
//! this project's output (default options: every import and indirect call
//! may suspend) and as Binaryen's `wasm-opt --all-features -O --asyncify`
//! output, under wasmtime with WASI preview 1. Nothing suspends: this is the
//! cost of the instrumentation alone.
//!
//! ```text
//! target/release/speed [--markdown] [--quick] [--runs N] [--binaryen-timeout SECS] [--no-yosys]
//!                      [--only NAME] [--ours-compute PATH]
//! ```
//!
//! `--only NAME` runs one compute benchmark; `--ours-compute PATH` takes
//! "ours" for `compute.wasm` from a file (an experimental transform's
//! output) instead of instrumenting it now.
//!
//! Each module is compiled once, outside the timing (compiled code is cached
//! in `target/bench-cache/`, as are Binaryen's outputs); a run is
//! instantiation plus `_start`, and the figure is the median of `--runs`
//! runs (5, or 2 with `--quick`) after one warm-up, with the variants
//! interleaved so that noise spreads over all of them. Standard output (and
//! yosys's output file) must be identical across variants. `--quick` skips
//! yosys.

use anyhow::{bail, Context, Result};
use asyncify_benches::binaryen::{self, WasmOpt};
use asyncify_benches::targets::{self, Verdict};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::{Engine, InstancePre, Linker, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// The compute benchmarks, as `compute.wasm` names them.
const COMPUTE_BENCHMARKS: [&str; 6] = ["interp", "sort", "hash", "parse", "recursion", "nbody"];

/// Issue 17: geometric mean of ours over the original, at most.
const GEOMEAN_TARGET: f64 = 1.05;
/// The older notes' geometric mean target, still printed.
const OLDER_GEOMEAN_TARGET: f64 = 1.10;

/// Binaryen's flags for the comparison.
const BINARYEN_FLAGS: [&str; 3] = ["--all-features", "-O", "--asyncify"];

/// The yosys script (from the shared corpus manifest), run on `counter.v`.
const YOSYS_SCRIPT: &str = "read_verilog /w/counter.v; hierarchy -top counter; proc; opt; \
     wreduce; alumacc; opt; tee -q -o /w/stat.txt stat";

/// Command-line settings.
struct Settings {
    markdown: bool,
    quick: bool,
    runs: usize,
    binaryen_timeout: Duration,
    yosys: bool,
    /// Run only this compute benchmark (`--only NAME`).
    only: Option<String>,
    /// Take "ours" for compute.wasm from this file instead of instrumenting
    /// it now (`--ours-compute PATH`), to try an experimental transform.
    ours_compute: Option<PathBuf>,
}

fn parse_args() -> Result<Settings> {
    let mut settings = Settings {
        markdown: false,
        quick: false,
        runs: 0,
        binaryen_timeout: Duration::from_secs(30 * 60),
        yosys: true,
        only: None,
        ours_compute: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--markdown" => settings.markdown = true,
            "--quick" => settings.quick = true,
            "--no-yosys" => settings.yosys = false,
            "--only" => {
                let name = args.next().context("--only needs a benchmark name")?;
                if !COMPUTE_BENCHMARKS.contains(&name.as_str()) {
                    bail!(
                        "--only {name}: not one of {}",
                        COMPUTE_BENCHMARKS.join(", ")
                    );
                }
                settings.only = Some(name);
            }
            "--ours-compute" => {
                let path = args.next().context("--ours-compute needs a path")?;
                settings.ours_compute = Some(PathBuf::from(path));
            }
            "--runs" => {
                let value = args.next().context("--runs needs a number")?;
                settings.runs = value.parse().with_context(|| format!("--runs {value}"))?;
                if settings.runs == 0 {
                    bail!("--runs must be at least 1");
                }
            }
            "--binaryen-timeout" => {
                let value = args.next().context("--binaryen-timeout needs seconds")?;
                let seconds: u64 = value
                    .parse()
                    .with_context(|| format!("--binaryen-timeout {value}"))?;
                settings.binaryen_timeout = Duration::from_secs(seconds);
            }
            "-h" | "--help" => {
                println!(
                    "usage: speed [--markdown] [--quick] [--runs N] [--binaryen-timeout SECS] [--no-yosys]\n             [--only NAME] [--ours-compute PATH]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if settings.runs == 0 {
        settings.runs = if settings.quick { 2 } else { 5 };
    }
    if settings.quick {
        settings.yosys = false;
    }
    Ok(settings)
}

fn main() {
    if let Err(error) = run() {
        eprintln!("speed: {error:#}");
        std::process::exit(1);
    }
}

/// One module of a benchmark program, ready to instantiate.
struct Variant {
    /// The compiled module with WASI linked, or why there is none.
    instance_pre: Result<InstancePre<WasiP1Ctx>, String>,
    /// Size of the module in bytes.
    bytes: usize,
}

/// A program to measure: its three variants and how to run it.
struct Program {
    /// Name for tables.
    label: String,
    /// Original, ours, Binaryen.
    variants: [Variant; 3],
}

/// Medians per variant (`None` where the variant is missing).
struct Row {
    label: String,
    medians: [Option<Duration>; 3],
}

fn run() -> Result<()> {
    let settings = parse_args()?;
    let root = binaryen::workspace_root();
    let engine = Engine::default();
    let binaryen = binaryen::find_wasm_opt().into_iter().next();
    match &binaryen {
        Some(tool) => eprintln!(
            "speed: comparing with {} ({})",
            tool.label,
            tool.path.display()
        ),
        None => eprintln!("speed: no wasm-opt found; the Binaryen column stays empty"),
    }

    let compute_path = root.join("corpus/bench/compute.wasm");
    let compute = prepare(
        &engine,
        "compute.wasm",
        &compute_path,
        settings.ours_compute.as_deref(),
        binaryen.as_ref(),
        &settings,
    )?;
    let mut rows = Vec::new();
    for name in COMPUTE_BENCHMARKS {
        if settings.only.as_ref().is_some_and(|only| only != name) {
            continue;
        }
        eprintln!("speed: running {name} ({} runs per variant)", settings.runs);
        let medians = measure(&compute, settings.runs, |pre| run_compute(pre, name))?;
        rows.push(Row {
            label: format!("`{name}`"),
            medians,
        });
    }

    let yosys_path = root.join("../shared/corpus/yosys.wasm");
    let mut yosys_note = None;
    let mut yosys_program = None;
    if settings.yosys {
        if yosys_path.exists() {
            let program = prepare(
                &engine,
                "yosys",
                &yosys_path,
                None,
                binaryen.as_ref(),
                &settings,
            )?;
            let input = root.join("../shared/corpus/inputs/counter.v");
            eprintln!("speed: running yosys ({} runs per variant)", settings.runs);
            let medians = measure(&program, settings.runs, |pre| run_yosys(pre, &input))?;
            rows.push(Row {
                label: "yosys (counter.v script)".into(),
                medians,
            });
            yosys_program = Some(program);
        } else {
            yosys_note = Some(format!("yosys skipped: {} not found", yosys_path.display()));
        }
    }

    let report = render(
        &settings,
        binaryen.as_ref(),
        &compute,
        yosys_program.as_ref(),
        &rows,
        yosys_note,
    );
    print!("{report}");
    Ok(())
}

/// Reads a module, makes our and Binaryen's instrumented versions, and
/// compiles the three (or loads them from the compiled-code cache).
fn prepare(
    engine: &Engine,
    label: &str,
    path: &Path,
    ours_override: Option<&Path>,
    binaryen: Option<&WasmOpt>,
    settings: &Settings,
) -> Result<Program> {
    let original = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    eprintln!(
        "speed: instrumenting {label} ({} bytes) with asyncify-transform",
        original.len()
    );
    let ours = match ours_override {
        Some(file) => std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
        None => {
            asyncify_transform::instrument(&original, &asyncify_transform::Options::default())
                .with_context(|| format!("instrumenting {}", path.display()))?
                .wasm
        }
    };
    let theirs: Result<Vec<u8>, String> = match binaryen {
        None => Err("no wasm-opt found".into()),
        Some(tool) => {
            match binaryen::cached_wasm_opt(
                tool,
                &original,
                &BINARYEN_FLAGS,
                settings.binaryen_timeout,
            )? {
                Ok(output) => {
                    if !output.from_cache {
                        eprintln!(
                            "speed: {} -O --asyncify on {label}: {:.1} s, {} MB peak",
                            tool.label,
                            output.run.wall.as_secs_f64(),
                            output.run.peak_rss_bytes >> 20
                        );
                    }
                    Ok(output.wasm)
                }
                Err(binaryen::WasmOptFailure::TimedOut(_)) => Err(format!(
                    "{} {}",
                    tool.label,
                    binaryen::describe_time_limit(
                        tool,
                        &binaryen::sha256_hex(&original),
                        &BINARYEN_FLAGS
                    )
                    .unwrap_or_else(|| "did not finish within its time limit".to_string())
                )),
                Err(failure) => Err(format!("{} {failure}", tool.label)),
            }
        }
    };
    let original_variant = Variant {
        bytes: original.len(),
        instance_pre: Ok(link(engine, &original, label, "original")?),
    };
    let ours_variant = Variant {
        bytes: ours.len(),
        instance_pre: Ok(link(engine, &ours, label, "ours")?),
    };
    let theirs_variant = match theirs {
        Ok(wasm) => Variant {
            bytes: wasm.len(),
            instance_pre: Ok(link(engine, &wasm, label, "Binaryen")?),
        },
        Err(reason) => Variant {
            bytes: 0,
            instance_pre: Err(reason),
        },
    };
    Ok(Program {
        label: label.to_string(),
        variants: [original_variant, ours_variant, theirs_variant],
    })
}

/// Compiles a module (or loads its compiled code from `target/bench-cache/`)
/// and links WASI preview 1 to it.
fn link(
    engine: &Engine,
    wasm: &[u8],
    label: &str,
    variant: &str,
) -> Result<InstancePre<WasiP1Ctx>> {
    let cache = binaryen::cache_dir().join(format!(
        "{}-cranelift.cwasm",
        &binaryen::sha256_hex(wasm)[..32]
    ));
    // SAFETY: the file is one this program wrote with `Module::serialize`
    // for an engine of the same configuration; wasmtime checks the version
    // and settings in its header and refuses a mismatch.
    let cached = cache
        .exists()
        .then(|| unsafe { Module::deserialize_file(engine, &cache) });
    let module = match cached {
        Some(Ok(module)) => module,
        _ => {
            eprintln!(
                "speed: compiling {label} ({variant}, {} bytes) with Cranelift",
                wasm.len()
            );
            let started = Instant::now();
            let module = Module::new(engine, wasm)
                .map_err(wasm_error)
                .with_context(|| format!("compiling {label} ({variant})"))?;
            eprintln!(
                "speed:   compiled in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            if let Ok(bytes) = module.serialize() {
                let _ = std::fs::create_dir_all(binaryen::cache_dir());
                let _ = std::fs::write(&cache, bytes);
            }
            module
        }
    };
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx: &mut WasiP1Ctx| ctx)
        .map_err(wasm_error)?;
    linker
        .instantiate_pre(&module)
        .map_err(wasm_error)
        .with_context(|| format!("linking {label} ({variant})"))
}

/// Runs every variant `runs` times (after a warm-up), interleaved, checks
/// that each run prints the same as the original, and returns the medians.
fn measure(
    program: &Program,
    runs: usize,
    run_once: impl Fn(&InstancePre<WasiP1Ctx>) -> Result<(Duration, Vec<u8>)>,
) -> Result<[Option<Duration>; 3]> {
    const NAMES: [&str; 3] = ["original", "ours", "Binaryen"];
    let mut times: [Vec<Duration>; 3] = Default::default();
    let mut expected: Option<Vec<u8>> = None;
    for round in 0..=runs {
        for step in 0..3 {
            let which = (round + step) % 3;
            let Ok(pre) = &program.variants[which].instance_pre else {
                continue;
            };
            let (time, output) =
                run_once(pre).with_context(|| format!("{} ({})", program.label, NAMES[which]))?;
            match &expected {
                None => expected = Some(output),
                Some(first) if *first != output => bail!(
                    "{} ({}) printed something else than the other variants:\n{}\n--- instead of ---\n{}",
                    program.label,
                    NAMES[which],
                    String::from_utf8_lossy(&output),
                    String::from_utf8_lossy(first)
                ),
                Some(_) => {}
            }
            // Round 0 is the warm-up.
            if round > 0 {
                times[which].push(time);
            }
        }
    }
    Ok(times.map(|mut samples| {
        samples.sort();
        (!samples.is_empty()).then(|| samples[samples.len() / 2])
    }))
}

/// Converts wasmtime's error type, keeping its chain of causes (and a
/// trap's wasm backtrace) in the message.
fn wasm_error(error: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{error:?}")
}

/// Instantiates and runs `_start`; `proc_exit(0)` counts as success.
fn start(pre: &InstancePre<WasiP1Ctx>, ctx: WasiP1Ctx) -> Result<Duration> {
    let mut store = Store::new(pre.module().engine(), ctx);
    let started = Instant::now();
    let instance = pre.instantiate(&mut store).map_err(wasm_error)?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(wasm_error)?;
    let result = start.call(&mut store, ());
    let elapsed = started.elapsed();
    match result {
        Ok(()) => Ok(elapsed),
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(I32Exit(0)) => Ok(elapsed),
            Some(I32Exit(code)) => bail!("exited with code {code}"),
            None => Err(wasm_error(error)),
        },
    }
}

/// Runs one compute benchmark; its output is its standard output.
fn run_compute(pre: &InstancePre<WasiP1Ctx>, name: &str) -> Result<(Duration, Vec<u8>)> {
    let stdout = MemoryOutputPipe::new(1 << 20);
    let ctx = WasiCtxBuilder::new()
        .args(&["compute", name])
        .stdout(stdout.clone())
        .inherit_stderr()
        .build_p1();
    let time = start(pre, ctx)?;
    Ok((time, stdout.contents().to_vec()))
}

/// Runs the yosys script in a fresh directory holding `counter.v`; its
/// output is its standard output followed by the `stat.txt` it writes.
fn run_yosys(pre: &InstancePre<WasiP1Ctx>, input: &Path) -> Result<(Duration, Vec<u8>)> {
    let dir = scratch_dir()?;
    std::fs::copy(input, dir.join("counter.v"))
        .with_context(|| format!("copying {}", input.display()))?;
    let stdout = MemoryOutputPipe::new(16 << 20);
    let ctx = WasiCtxBuilder::new()
        .args(&["yosys", "-q", "-p", YOSYS_SCRIPT])
        .stdout(stdout.clone())
        .inherit_stderr()
        .preopened_dir(&dir, "/w", FsPerms::ReadWrite)
        .map_err(wasm_error)?
        .build_p1();
    let time = start(pre, ctx)?;
    let mut output = stdout.contents().to_vec();
    output.extend(std::fs::read(dir.join("stat.txt")).context("yosys wrote no stat.txt")?);
    let _ = std::fs::remove_dir_all(&dir);
    Ok((time, output))
}

/// A new empty directory under the system's temporary directory.
fn scratch_dir() -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "asyncify-speed-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Geometric mean of the ratios of column `column` to the original, over
/// the rows that have both; `None` when no row has.
fn geomean(rows: &[Row], column: usize) -> Option<(f64, usize)> {
    let logs: Vec<f64> = rows
        .iter()
        .filter_map(|row| {
            Some((row.medians[column]?.as_secs_f64() / row.medians[0]?.as_secs_f64()).ln())
        })
        .collect();
    (!logs.is_empty()).then(|| {
        (
            (logs.iter().sum::<f64>() / logs.len() as f64).exp(),
            logs.len(),
        )
    })
}

fn ms(time: Option<Duration>) -> String {
    time.map(|t| format!("{:.1}", t.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

fn ratio(row: &Row, column: usize) -> String {
    match (row.medians[column], row.medians[0]) {
        (Some(t), Some(base)) => format!("{:.2}x", t.as_secs_f64() / base.as_secs_f64()),
        _ => "-".into(),
    }
}

/// Thousands separators for byte counts.
fn bytes(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn render(
    settings: &Settings,
    binaryen: Option<&WasmOpt>,
    compute: &Program,
    yosys: Option<&Program>,
    rows: &[Row],
    yosys_note: Option<String>,
) -> String {
    use std::fmt::Write;
    let tool = binaryen
        .map(|t| t.label.clone())
        .unwrap_or_else(|| "Binaryen (not found)".into());
    let mut out = String::new();
    let _ = writeln!(out, "## Code that does not suspend\n");
    let _ = writeln!(
        out,
        "Execution time under wasmtime 48 (WASI preview 1, nothing suspends) of the original \
         module, this project's output (default options: every import and indirect call may \
         suspend) and `wasm-opt --all-features -O --asyncify` ({tool}). Each figure is the median \
         of {} runs of instantiation plus `_start`, after a warm-up, variants interleaved; \
         compilation is not timed. Every variant printed the same output. The compute \
         benchmarks are `corpus/bench/compute.wasm` (sources: `corpus/programs/compute/`); \
         yosys runs the counter script of `../shared/corpus/MANIFEST.md`.\n",
        settings.runs
    );
    let _ = writeln!(
        out,
        "    cargo build --release -p asyncify-benches --bin speed\n    target/release/speed --markdown{}\n",
        if settings.quick { " --quick" } else { "" }
    );
    let _ = writeln!(out, "| benchmark | original (ms) | ours (ms) | ours / original | {tool} -O (ms) | Binaryen / original |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.label,
            ms(row.medians[0]),
            ms(row.medians[1]),
            ratio(row, 1),
            ms(row.medians[2]),
            ratio(row, 2)
        );
    }
    let compute_rows = &rows[..COMPUTE_BENCHMARKS.len().min(rows.len())];
    let mean_cell = |rows: &[Row], column| {
        geomean(rows, column)
            .map(|(g, _)| format!("**{g:.3}x**"))
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(
        out,
        "| geometric mean, compute set | | | {} | | {} |",
        mean_cell(compute_rows, 1),
        mean_cell(compute_rows, 2)
    );
    if rows.len() > compute_rows.len() {
        let _ = writeln!(
            out,
            "| geometric mean, with yosys | | | {} | | {} |",
            mean_cell(rows, 1),
            mean_cell(rows, 2)
        );
    }
    let _ = writeln!(out);

    let mut sizes = Vec::new();
    for program in std::iter::once(compute).chain(yosys) {
        let [original, ours, theirs] = &program.variants;
        let theirs = match &theirs.instance_pre {
            Ok(_) => format!("{} B", bytes(theirs.bytes)),
            Err(reason) => format!("none ({reason})"),
        };
        sizes.push(format!(
            "{}: original {} B, ours {} B, Binaryen -O {theirs}",
            program.label,
            bytes(original.bytes),
            bytes(ours.bytes)
        ));
    }
    let _ = writeln!(out, "Module sizes: {}.\n", sizes.join("; "));
    if let Some(note) = yosys_note {
        let _ = writeln!(out, "{note}.\n");
    }

    out.push_str(&target_lines(rows, compute, yosys));
    out
}

/// Issue 17's two targets (and the older notes' geometric mean), from the
/// rows of this run.
fn target_lines(rows: &[Row], compute: &Program, yosys: Option<&Program>) -> String {
    let mut out = String::from("Targets:\n\n");
    let yosys_scope = if yosys.is_some() {
        ""
    } else {
        " (yosys not run: `--quick`, `--no-yosys` or not found)"
    };
    let worst = rows
        .iter()
        .filter_map(|row| {
            let r = row.medians[1]?.as_secs_f64() / row.medians[0]?.as_secs_f64();
            Some((row.label.as_str(), r))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let line = match (geomean(rows, 1), worst) {
        (Some((g, n)), Some((label, w))) => targets::SPEED_GEOMEAN.line(
            Verdict::from_met(g <= GEOMEAN_TARGET),
            &format!(
                "{g:.3}x over {n} benchmarks{yosys_scope}; the slowest: {label} {w:.2}x; \
                 Binaryen -O: {}",
                geomean(rows, 2).map_or("-".to_string(), |(b, _)| format!("{b:.3}x"))
            ),
        ),
        _ => targets::SPEED_GEOMEAN.line(Verdict::NotMeasured, "no benchmark ran"),
    };
    out.push_str(&line);
    out.push('\n');

    // A benchmark on which Binaryen gave no output is not compared: there
    // is nothing of Binaryen's to be slower than (a time limit reached is
    // said so, with the limit).
    let binaryen_missing = |label: &str| {
        let program = if label.starts_with("yosys") {
            yosys?
        } else {
            compute
        };
        program.variants[2].instance_pre.as_ref().err().cloned()
    };
    let mut compared = 0;
    let mut worse = Vec::new();
    let mut closest: Option<(String, f64)> = None;
    let mut not_compared = Vec::new();
    for row in rows {
        match (row.medians[1], row.medians[2]) {
            (Some(ours), Some(theirs)) => {
                compared += 1;
                let r = ours.as_secs_f64() / theirs.as_secs_f64();
                if r > 1.0 {
                    worse.push(format!("{} ({r:.2}x Binaryen's time)", row.label));
                }
                if closest.as_ref().is_none_or(|(_, c)| r > *c) {
                    closest = Some((row.label.clone(), r));
                }
            }
            _ => not_compared.push(format!(
                "{} not compared: {}",
                row.label,
                binaryen_missing(&row.label).unwrap_or_else(|| "no Binaryen time".to_string())
            )),
        }
    }
    let mut figures = if worse.is_empty() {
        format!(
            "faster or equal on all {compared} benchmarks compared{}",
            closest
                .map(|(label, r)| format!("; closest: {label} at {r:.2}x Binaryen's time"))
                .unwrap_or_default()
        )
    } else {
        format!("slower on {}", worse.join(", "))
    };
    if !not_compared.is_empty() {
        figures.push_str(&format!("; {}", not_compared.join("; ")));
    }
    let verdict = if compared == 0 {
        Verdict::NotMeasured
    } else {
        Verdict::from_met(worse.is_empty())
    };
    out.push_str(&targets::SPEED_BINARYEN.line(verdict, &figures));
    out.push('\n');

    if let Some((g, n)) = geomean(rows, 1) {
        out.push_str(&format!(
            "- {}: at most {OLDER_GEOMEAN_TARGET:.2}x the original, geometric mean: {} ({g:.3}x \
             over {n} benchmarks).\n",
            targets::OLDER,
            if g <= OLDER_GEOMEAN_TARGET {
                "met"
            } else {
                "not met"
            }
        ));
    }
    out
}
