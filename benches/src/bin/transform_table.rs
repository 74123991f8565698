//! Instrumenting real modules: wall time, peak RSS and output size of
//! `asyncify instrument` against Binaryen's `wasm-opt --all-features
//! --asyncify` and `wasm-opt --all-features -O --asyncify` (every Binaryen
//! build found), with an in-process `wasmparser` validation of the same bytes
//! as the floor.
//!
//! `target/release/transform_table --markdown [--quick] [--shared-corpus DIR]
//! [--timeout SECONDS] [--fresh | --cache-only | --cache-only-large]`
//!
//! Modules: every `.wasm` in the shared corpus (default `../shared/corpus`)
//! and the project's `corpus/*.wasm` and `corpus/wasi/*.wasm`. Every tool
//! runs as a child process with default options (every import and indirect
//! call may suspend); wall time is spawn to exit, peak RSS is `wait4`'s
//! `ru_maxrss`. Medians of 5 runs of ours and 3 of each Binaryen run (1 for
//! modules over 5 MB); `--quick` takes QuickJS and the project's modules
//! only, one run each. Binaryen results (time, RSS, size, or its refusal)
//! are kept in the benches' one Binaryen cache (`target/bench-cache/`, by input SHA-256,
//! Binaryen version and flags: `binaryen::cached_runs`), so a rerun does not spend the half hour that
//! Binaryen needs on yosys; `--fresh` ignores the cache, `--cache-only` never
//! runs Binaryen (figures not in the cache show as not measured),
//! `--cache-only-large` runs it only on modules under 5 MB.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use asyncify_benches::binaryen::{self, RunRecord, RunResult, WasmOpt};
use asyncify_benches::sections::{self, duration, memory, ratio, thousands, thread_cpu_time};
use asyncify_benches::targets::{self, Verdict};

/// Runs of `asyncify instrument` (and of validation) per module.
const OUR_RUNS: usize = 5;
/// Runs of each Binaryen configuration on a module under [`LARGE_MODULE`].
const BINARYEN_RUNS: usize = 3;
/// Modules this large or larger get one Binaryen run (yosys: ~7 minutes).
const LARGE_MODULE: u64 = 5_000_000;
/// Default limit for one run of any tool.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Issue 17's targets ([`targets::YOSYS_INSTRUMENT`], [`targets::OUTPUT_SIZE`]).
const VALIDATION_RATIO_TARGET: f64 = 6.0;
const RSS_TARGET_BYTES: u64 = 300_000_000;
const SIZE_RATIO_TARGET: f64 = 0.70;
/// Targets of `../shared/notes/anchors-and-targets.md` still printed.
const SPEEDUP_TARGET: f64 = 100.0;
const OLDER_SIZE_RATIO_TARGET: f64 = 0.85;

/// Command-line options.
struct Args {
    quick: bool,
    shared_corpus: PathBuf,
    timeout: Duration,
    fresh: bool,
    cache_only: bool,
    /// Binaryen runs only on modules under [`LARGE_MODULE`]; larger ones
    /// from the cache only.
    cache_only_large: bool,
}

fn parse_args() -> Result<Args> {
    let mut quick = false;
    let mut shared_corpus = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut fresh = false;
    let mut cache_only = false;
    let mut cache_only_large = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // The table is markdown either way.
            "--markdown" => {}
            "--quick" => quick = true,
            "--fresh" => fresh = true,
            "--cache-only" => cache_only = true,
            "--cache-only-large" => cache_only_large = true,
            "--shared-corpus" => {
                let dir = args.next().context("--shared-corpus needs a directory")?;
                shared_corpus = Some(PathBuf::from(dir));
            }
            "--timeout" => {
                let seconds = args.next().context("--timeout needs a number of seconds")?;
                let seconds: u64 = seconds
                    .parse()
                    .with_context(|| format!("--timeout {seconds}: not a number of seconds"))?;
                timeout = Duration::from_secs(seconds);
            }
            "-h" | "--help" => {
                println!(
                    "usage: transform_table [--markdown] [--quick] [--shared-corpus DIR] \
                     [--timeout SECONDS] [--fresh | --cache-only | --cache-only-large]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    Ok(Args {
        quick,
        shared_corpus: sections::shared_corpus_dir(shared_corpus.as_deref()),
        timeout,
        fresh,
        cache_only,
        cache_only_large,
    })
}

/// One input module.
struct CorpusModule {
    /// How the tables name it: the file name for the shared corpus, the
    /// path from the workspace root for the project's own.
    name: String,
    path: PathBuf,
    size: u64,
}

/// The `.wasm` files directly in `dir`, sorted by name.
fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The modules to measure: the shared corpus (smallest first), then the
/// project's own. With `quick`, QuickJS is the only shared one.
fn corpus_modules(args: &Args) -> Result<Vec<CorpusModule>> {
    let mut modules = Vec::new();
    if args.shared_corpus.is_dir() {
        let mut shared = Vec::new();
        for path in wasm_files(&args.shared_corpus)? {
            let name = file_name(&path);
            if args.quick && name != "quickjs.wasm" {
                continue;
            }
            let size = std::fs::metadata(&path)?.len();
            shared.push(CorpusModule { name, path, size });
        }
        shared.sort_by_key(|module| module.size);
        modules.extend(shared);
    } else {
        eprintln!(
            "transform_table: no shared corpus at {} (pass --shared-corpus DIR)",
            args.shared_corpus.display()
        );
    }
    let root = binaryen::workspace_root();
    for dir in ["corpus", "corpus/wasi"] {
        for path in wasm_files(&root.join(dir))? {
            let size = std::fs::metadata(&path)?.len();
            let name = format!("{dir}/{}", file_name(&path));
            modules.push(CorpusModule { name, path, size });
        }
    }
    Ok(modules)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One Binaryen column: a `wasm-opt` build, with or without `-O`.
struct BinaryenConfig {
    tool: WasmOpt,
    optimize: bool,
}

impl BinaryenConfig {
    fn flags(&self) -> Vec<&'static str> {
        if self.optimize {
            vec!["--all-features", "-O", "--asyncify"]
        } else {
            vec!["--all-features", "--asyncify"]
        }
    }

    /// Column heading, e.g. "108 `-O --asyncify`".
    fn heading(&self) -> String {
        let flags = if self.optimize {
            "-O --asyncify"
        } else {
            "--asyncify"
        };
        format!("{} `{flags}`", self.tool.version)
    }
}

/// What one tool did with one module.
enum Outcome {
    /// Medians over the successful runs.
    Measured(Measured),
    /// It exited with an error (first line of its message).
    Refused {
        message: String,
        cached_at: Option<u64>,
    },
    /// Killed at the timeout.
    TimedOut {
        after: Duration,
        cached_at: Option<u64>,
    },
    /// Not run (`--cache-only` or `--cache-only-large`, and nothing cached).
    NotMeasured,
}

struct Measured {
    wall: Duration,
    /// User plus system CPU time (measured for ours only).
    cpu: Option<Duration>,
    peak_rss: u64,
    output_bytes: u64,
    /// When the runs taken from the cache were measured (Unix seconds).
    cached_at: Vec<u64>,
}

impl Outcome {
    fn measured(&self) -> Option<&Measured> {
        match self {
            Outcome::Measured(measured) => Some(measured),
            _ => None,
        }
    }

    fn cached_at(&self) -> Vec<u64> {
        match self {
            Outcome::Measured(measured) => measured.cached_at.clone(),
            Outcome::Refused { cached_at, .. } | Outcome::TimedOut { cached_at, .. } => {
                cached_at.iter().copied().collect()
            }
            Outcome::NotMeasured => Vec::new(),
        }
    }

    /// A table cell for an outcome that is not a measurement.
    fn failure_cell(&self) -> Option<String> {
        match self {
            Outcome::Measured(_) => None,
            Outcome::Refused { message, .. } => Some(format!("refused: {message}")),
            Outcome::TimedOut { after, .. } => {
                Some(format!("did not finish within {} s", after.as_secs()))
            }
            Outcome::NotMeasured => Some("not measured (not cached, not run here)".to_string()),
        }
    }

    /// The mark for figures that came from the cache.
    fn cache_mark(&self) -> &'static str {
        if self.cached_at().is_empty() {
            ""
        } else {
            " †"
        }
    }
}

/// The first line of a tool's error, without a leading `error:`/`Fatal:`.
fn refusal_message(stderr: &str, status: Option<std::process::ExitStatus>) -> String {
    let line = sections::first_line(stderr);
    if line == "(no message)" {
        return status.map_or_else(|| line.clone(), |status| status.to_string());
    }
    for prefix in ["error: ", "Fatal: "] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    line
}

/// Runs `asyncify instrument` on `module` `runs` times.
fn measure_ours(
    asyncify: &Path,
    module: &CorpusModule,
    runs: usize,
    timeout: Duration,
    scratch: &Path,
) -> Result<Outcome> {
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut peaks = Vec::new();
    let mut output_bytes = 0;
    for run in 1..=runs {
        asyncify_benches::binaryen::reset_peak_rss_mark();
        let cpu_before = children_cpu();
        let measured = binaryen::run_measured(
            Command::new(asyncify)
                .arg("instrument")
                .arg(&module.path)
                .arg("-o")
                .arg(scratch),
            timeout,
        )?;
        if measured.timed_out() {
            return Ok(Outcome::TimedOut {
                after: measured.wall,
                cached_at: None,
            });
        }
        if !measured.succeeded() {
            return Ok(Outcome::Refused {
                message: refusal_message(&measured.stderr, measured.status),
                cached_at: None,
            });
        }
        output_bytes = std::fs::metadata(scratch)
            .with_context(|| format!("reading the size of {}", scratch.display()))?
            .len();
        eprintln!(
            "transform_table: {}: ours run {run}/{runs}: {}, {}",
            module.name,
            duration(measured.wall),
            memory(measured.peak_rss_bytes)
        );
        walls.push(measured.wall.as_secs_f64());
        cpus.push((children_cpu().saturating_sub(cpu_before)).as_secs_f64());
        peaks.push(measured.peak_rss_bytes as f64);
    }
    let _ = std::fs::remove_file(scratch);
    Ok(Outcome::Measured(Measured {
        wall: Duration::from_secs_f64(sections::median(&walls).unwrap_or(0.0)),
        cpu: Some(Duration::from_secs_f64(
            sections::median(&cpus).unwrap_or(0.0),
        )),
        peak_rss: sections::median(&peaks).unwrap_or(0.0) as u64,
        output_bytes,
        cached_at: Vec::new(),
    }))
}

/// Medians of an in-process validation with every feature enabled.
struct Validation {
    wall: Duration,
    /// CPU time of the validating thread.
    cpu: Duration,
}

/// Validates `bytes` `runs` times, or returns the validator's error.
fn measure_validation(bytes: &[u8], runs: usize) -> std::result::Result<Validation, String> {
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..runs {
        let (started, cpu_before) = (Instant::now(), thread_cpu_time());
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(bytes)
            .map_err(|error| sections::first_line(&error.to_string()))?;
        walls.push(started.elapsed().as_secs_f64());
        cpus.push(thread_cpu_time().saturating_sub(cpu_before).as_secs_f64());
    }
    let median =
        |samples: &[f64]| Duration::from_secs_f64(sections::median(samples).unwrap_or(0.0));
    Ok(Validation {
        wall: median(&walls),
        cpu: median(&cpus),
    })
}

/// CPU time (user + system) of this process's children that have been
/// waited for, summed.
fn children_cpu() -> Duration {
    // SAFETY: an all-zero `rusage` is valid for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for writes.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Binaryen on `module`: the cached runs, topped up with fresh ones until
/// there are `runs` successful ones (a failure or a timeout at least as long
/// as `timeout` ends it; both are cached too).
fn measure_binaryen(
    config: &BinaryenConfig,
    module: &CorpusModule,
    input_sha256: &str,
    runs: usize,
    args: &Args,
    scratch: &Path,
) -> Result<Outcome> {
    let cache_only = args.cache_only || (args.cache_only_large && module.size >= LARGE_MODULE);
    let mut records: Vec<RunRecord> = if args.fresh {
        Vec::new()
    } else {
        binaryen::cached_runs(&config.tool, input_sha256, &config.flags())
    };
    // A timeout shorter than the one asked for now proves nothing.
    records.retain(|record| match record.result {
        RunResult::TimedOut(after) => cache_only || after >= args.timeout,
        _ => true,
    });
    let cached_count = records.len();
    loop {
        if let Some(outcome) = outcome_of(&records, cached_count) {
            return Ok(outcome);
        }
        let successes = records
            .iter()
            .filter(|record| matches!(record.result, RunResult::Succeeded { .. }))
            .count();
        if successes >= runs || (cache_only && successes > 0) {
            return Ok(Outcome::Measured(medians(&records, cached_count)));
        }
        if cache_only {
            return Ok(Outcome::NotMeasured);
        }
        eprintln!(
            "transform_table: {}: {} {} run {}/{runs} (timeout {})",
            module.name,
            config.tool.label,
            config.flags().join(" "),
            successes + 1,
            duration(args.timeout)
        );
        asyncify_benches::binaryen::reset_peak_rss_mark();
        let run = binaryen::run_measured(
            Command::new(&config.tool.path)
                .args(config.flags())
                .arg(&module.path)
                .arg("-o")
                .arg(scratch),
            args.timeout,
        )?;
        let result = if run.timed_out() {
            RunResult::TimedOut(run.wall)
        } else if !run.succeeded() {
            RunResult::Failed(refusal_message(&run.stderr, run.status))
        } else {
            let output_bytes = std::fs::metadata(scratch)
                .with_context(|| format!("reading the size of {}", scratch.display()))?
                .len();
            RunResult::Succeeded {
                wall: run.wall,
                peak_rss: run.peak_rss_bytes,
                output_bytes,
            }
        };
        let _ = std::fs::remove_file(scratch);
        eprintln!("transform_table:   {}", describe(&result));
        let record = RunRecord::now(result);
        binaryen::append_run(&config.tool, input_sha256, &config.flags(), &record)?;
        records.push(record);
    }
}

fn describe(result: &RunResult) -> String {
    match result {
        RunResult::Succeeded {
            wall,
            peak_rss,
            output_bytes,
        } => format!(
            "{}, {}, {} B",
            duration(*wall),
            memory(*peak_rss),
            thousands(*output_bytes)
        ),
        RunResult::Failed(message) => format!("refused: {message}"),
        RunResult::TimedOut(after) => format!("timed out after {}", duration(*after)),
    }
}

/// A refusal or timeout among the records, if any (the first record with
/// index below `cached_count` came from the cache).
fn outcome_of(records: &[RunRecord], cached_count: usize) -> Option<Outcome> {
    records.iter().enumerate().find_map(|(index, record)| {
        let cached_at = (index < cached_count).then_some(record.measured_at);
        match &record.result {
            RunResult::Failed(message) => Some(Outcome::Refused {
                message: message.clone(),
                cached_at,
            }),
            RunResult::TimedOut(after) => Some(Outcome::TimedOut {
                after: *after,
                cached_at,
            }),
            RunResult::Succeeded { .. } => None,
        }
    })
}

/// Medians over the successful records.
fn medians(records: &[RunRecord], cached_count: usize) -> Measured {
    let mut walls = Vec::new();
    let mut peaks = Vec::new();
    let mut sizes = Vec::new();
    let mut cached_at = Vec::new();
    for (index, record) in records.iter().enumerate() {
        if let RunResult::Succeeded {
            wall,
            peak_rss,
            output_bytes,
        } = record.result
        {
            walls.push(wall.as_secs_f64());
            peaks.push(peak_rss as f64);
            // Records of the older format do not know the size (0).
            if output_bytes > 0 {
                sizes.push(output_bytes as f64);
            }
            if index < cached_count {
                cached_at.push(record.measured_at);
            }
        }
    }
    Measured {
        wall: Duration::from_secs_f64(sections::median(&walls).unwrap_or(0.0)),
        cpu: None,
        peak_rss: sections::median(&peaks).unwrap_or(0.0) as u64,
        output_bytes: sections::median(&sizes).unwrap_or(0.0) as u64,
        cached_at,
    }
}

/// Every measurement of one module.
struct ModuleResult {
    module: CorpusModule,
    validation: std::result::Result<Validation, String>,
    ours: Outcome,
    /// One per Binaryen configuration, in column order.
    binaryen: Vec<Outcome>,
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    let load_at_start = sections::load_average();
    let asyncify = sections::binaries_dir().join("asyncify");
    if !asyncify.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release -p asyncify-cli`",
            asyncify.display()
        );
    }
    let tools = binaryen::find_wasm_opt();
    if tools.is_empty() {
        eprintln!(
            "transform_table: no wasm-opt found (apt-get install binaryen, or Node for npm's); \
             the Binaryen columns are left out"
        );
    }
    let configs: Vec<BinaryenConfig> = tools
        .iter()
        .flat_map(|tool| {
            [false, true].map(|optimize| BinaryenConfig {
                tool: tool.clone(),
                optimize,
            })
        })
        .collect();
    let modules = corpus_modules(&args)?;
    if modules.is_empty() {
        bail!(
            "no modules found (shared corpus: {})",
            args.shared_corpus.display()
        );
    }
    let scratch_dir = binaryen::cache_dir();
    std::fs::create_dir_all(&scratch_dir)
        .with_context(|| format!("creating {}", scratch_dir.display()))?;
    let scratch = scratch_dir.join(format!("tmp-transform-table-{}.wasm", std::process::id()));

    let our_runs = if args.quick { 1 } else { OUR_RUNS };
    let mut results = Vec::new();
    for module in modules {
        eprintln!(
            "transform_table: {} ({} B) at {}",
            module.name,
            thousands(module.size),
            duration(started.elapsed())
        );
        let bytes = std::fs::read(&module.path)
            .with_context(|| format!("reading {}", module.path.display()))?;
        let validation = measure_validation(&bytes, our_runs);
        let input_sha256 = binaryen::sha256_hex(&bytes);
        // Keep this process small while tools run (see `reset_peak_rss_mark`).
        drop(bytes);
        let ours = measure_ours(&asyncify, &module, our_runs, args.timeout, &scratch)?;
        let binaryen_runs = if args.quick || module.size >= LARGE_MODULE {
            1
        } else {
            BINARYEN_RUNS
        };
        let mut binaryen = Vec::new();
        for config in &configs {
            binaryen.push(measure_binaryen(
                config,
                &module,
                &input_sha256,
                binaryen_runs,
                &args,
                &scratch,
            )?);
        }
        results.push(ModuleResult {
            module,
            validation,
            ours,
            binaryen,
        });
    }
    let _ = std::fs::remove_file(&scratch);

    print!(
        "{}",
        render(
            &args,
            &tools,
            &configs,
            &results,
            &load_at_start,
            started.elapsed()
        )
    );
    Ok(())
}

/// The markdown section.
fn render(
    args: &Args,
    tools: &[WasmOpt],
    configs: &[BinaryenConfig],
    results: &[ModuleResult],
    load_at_start: &str,
    elapsed: Duration,
) -> String {
    let mut out = String::new();
    let push = |out: &mut String, line: &str| {
        out.push_str(line);
        out.push('\n');
    };
    push(&mut out, "## Instrumenting: time, memory, output size\n");
    let runs = if args.quick {
        "one run of each tool (`--quick`: QuickJS and the project's modules only)".to_string()
    } else {
        format!(
            "medians of {OUR_RUNS} runs of ours and of validation, {BINARYEN_RUNS} of each \
             Binaryen run (1 for modules over {} MB)",
            LARGE_MODULE / 1_000_000
        )
    };
    push(
        &mut out,
        &format!(
            "Every module of the shared corpus and of `corpus/`, instrumented with default \
             options (every import and indirect call may suspend) by each tool as a child \
             process: wall time from spawn to exit and peak RSS (`wait4`), {runs}. \
             \"validate\" is an in-process `wasmparser` validation of the same bytes with every \
             feature enabled: the floor for any tool that reads the module. Load average at \
             the start: {load_at_start}; the section took {}.\n",
            duration(elapsed)
        ),
    );
    push(&mut out, "    target/release/transform_table --markdown");
    push(
        &mut out,
        "    target/release/asyncify instrument IN.wasm -o OUT.wasm",
    );
    push(
        &mut out,
        "    wasm-opt --all-features --asyncify IN.wasm -o OUT.wasm",
    );
    push(
        &mut out,
        "    wasm-opt --all-features -O --asyncify IN.wasm -o OUT.wasm\n",
    );
    if tools.is_empty() {
        push(
            &mut out,
            "No Binaryen was found (install Debian's `binaryen`, or Node so that `npm ci` in \
             `scripts/js-interop` installs npm's), so there are no Binaryen columns.\n",
        );
    } else {
        push(
            &mut out,
            &format!("Binaryen builds: {}.\n", sections::describe_tools(tools)),
        );
    }

    // Time and memory.
    push(&mut out, "### Time and peak RSS\n");
    push(
        &mut out,
        "Binaryen cells: time, peak RSS, and its time over ours. Ours and Binaryen include \
         starting a process (a few ms, most of ours on the smallest modules); validation \
         does not. The CPU column compares CPU time (user + system) instead of wall time, \
         which a busy machine disturbs less.\n",
    );
    let mut heading = String::from(
        "| module | input | validate | ours | ours ÷ validate | CPU: ours ÷ validate |",
    );
    let mut rule = String::from("|---|---:|---:|---:|---:|---:|");
    for config in configs {
        heading.push_str(&format!(" {} |", config.heading()));
        rule.push_str("---:|");
    }
    push(&mut out, &heading);
    push(&mut out, &rule);
    for result in results {
        let validate = match &result.validation {
            Ok(validation) => duration(validation.wall),
            Err(message) => format!("invalid: {message}"),
        };
        let (ours, over_validation, cpu_over_validation) =
            match (result.ours.measured(), &result.validation) {
                (Some(ours), Ok(validation)) => (
                    format!("{}, {}", duration(ours.wall), memory(ours.peak_rss)),
                    ratio(ours.wall.as_secs_f64() / validation.wall.as_secs_f64()),
                    ours.cpu.map_or_else(
                        || "-".to_string(),
                        |cpu| ratio(cpu.as_secs_f64() / validation.cpu.as_secs_f64()),
                    ),
                ),
                (Some(ours), Err(_)) => (
                    format!("{}, {}", duration(ours.wall), memory(ours.peak_rss)),
                    "-".to_string(),
                    "-".to_string(),
                ),
                (None, _) => (
                    result.ours.failure_cell().unwrap_or_default(),
                    "-".to_string(),
                    "-".to_string(),
                ),
            };
        let mut row = format!(
            "| {} | {} B | {validate} | {ours} | {over_validation} | {cpu_over_validation} |",
            result.module.name,
            thousands(result.module.size)
        );
        for outcome in &result.binaryen {
            let cell = match outcome.measured() {
                Some(theirs) => {
                    let times_ours = result
                        .ours
                        .measured()
                        .map(|ours| {
                            format!(
                                ", {}",
                                ratio(theirs.wall.as_secs_f64() / ours.wall.as_secs_f64())
                            )
                        })
                        .unwrap_or_default();
                    format!(
                        "{}, {}{times_ours}{}",
                        duration(theirs.wall),
                        memory(theirs.peak_rss),
                        outcome.cache_mark()
                    )
                }
                None => format!(
                    "{}{}",
                    outcome.failure_cell().unwrap_or_default(),
                    outcome.cache_mark()
                ),
            };
            row.push_str(&format!(" {cell} |"));
        }
        push(&mut out, &row);
    }
    out.push('\n');

    // Output sizes.
    push(&mut out, "### Output size\n");
    push(
        &mut out,
        "Bytes; the ratio columns are ours over Binaryen's `-O --asyncify` output.\n",
    );
    let mut heading = String::from("| module | input | ours |");
    let mut rule = String::from("|---|---:|---:|");
    for config in configs {
        heading.push_str(&format!(" {} |", config.heading()));
        rule.push_str("---:|");
        if config.optimize {
            heading.push_str(&format!(" ours ÷ {} `-O` |", config.tool.version));
            rule.push_str("---:|");
        }
    }
    push(&mut out, &heading);
    push(&mut out, &rule);
    for result in results {
        let ours_bytes = result.ours.measured().map(|ours| ours.output_bytes);
        let ours = match ours_bytes {
            Some(bytes) => thousands(bytes),
            None => result.ours.failure_cell().unwrap_or_default(),
        };
        let mut row = format!(
            "| {} | {} | {ours} |",
            result.module.name,
            thousands(result.module.size)
        );
        for (config, outcome) in configs.iter().zip(&result.binaryen) {
            let theirs = outcome.measured().map(|theirs| theirs.output_bytes);
            let cell = match theirs {
                Some(bytes) => format!("{}{}", thousands(bytes), outcome.cache_mark()),
                None => format!(
                    "{}{}",
                    outcome.failure_cell().unwrap_or_default(),
                    outcome.cache_mark()
                ),
            };
            row.push_str(&format!(" {cell} |"));
            if config.optimize {
                let cell = match (ours_bytes, theirs) {
                    (Some(ours), Some(theirs)) if theirs > 0 => ratio(ours as f64 / theirs as f64),
                    _ => "-".to_string(),
                };
                row.push_str(&format!(" {cell} |"));
            }
        }
        push(&mut out, &row);
    }
    out.push('\n');

    let cached: Vec<u64> = results
        .iter()
        .flat_map(|result| result.binaryen.iter().flat_map(Outcome::cached_at))
        .collect();
    if let (Some(first), Some(last)) = (cached.iter().min(), cached.iter().max()) {
        let when = |at: u64| sections::utc_timestamp(UNIX_EPOCH + Duration::from_secs(at));
        let span = if first == last {
            when(*first)
        } else {
            format!("between {} and {}", when(*first), when(*last))
        };
        push(
            &mut out,
            &format!(
                "† from the cache in `target/bench-cache/` (same input bytes, \
                 Binaryen version and flags), measured {span}; `--fresh` measures again.\n"
            ),
        );
    }

    out.push_str(&time_limit_notes(configs, results));

    push(&mut out, "### Targets\n");
    for line in verdicts(configs, results) {
        push(&mut out, &line);
    }
    out.push('\n');
    out
}

/// A list of the Binaryen runs that hit their time limit, each with when
/// and how it was recorded (empty when none did).
fn time_limit_notes(configs: &[BinaryenConfig], results: &[ModuleResult]) -> String {
    let mut lines = Vec::new();
    for result in results {
        let mut hash = None;
        for (config, outcome) in configs.iter().zip(&result.binaryen) {
            let Outcome::TimedOut { after, .. } = outcome else {
                continue;
            };
            let hash = hash.get_or_insert_with(|| {
                std::fs::read(&result.module.path)
                    .map(|bytes| binaryen::sha256_hex(&bytes))
                    .unwrap_or_default()
            });
            let described = binaryen::describe_time_limit(&config.tool, hash, &config.flags())
                .unwrap_or_else(|| format!("did not finish within {} s", after.as_secs()));
            lines.push(format!(
                "- {}: {} `{}` {described}.",
                result.module.name,
                config.tool.label,
                config.flags().join(" ")
            ));
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "Binaryen runs that hit their time limit (`--timeout`, {} s by default; a run is tried \
         again only with a longer limit):\n\n{}\n\n",
        DEFAULT_TIMEOUT.as_secs(),
        lines.join("\n")
    )
}

/// The result for the module named `name`, if it was measured.
fn find<'a>(results: &'a [ModuleResult], name: &str) -> Option<&'a ModuleResult> {
    results.iter().find(|result| result.module.name == name)
}

fn met(yes: bool) -> &'static str {
    if yes {
        "**met**"
    } else {
        "**not met**"
    }
}

/// One line per target this section measures: issue 17's, then the older
/// notes' still printed.
fn verdicts(configs: &[BinaryenConfig], results: &[ModuleResult]) -> Vec<String> {
    let mut lines = vec![yosys_verdict(results)];
    lines.extend(size_verdicts(configs, results));

    // Speed against Binaryen 108 without -O.
    let target = format!(
        "- {}: at least {SPEEDUP_TARGET:.0}x faster than `wasm-opt --asyncify` (Binaryen 108) on \
         QuickJS",
        targets::OLDER
    );
    let column = configs
        .iter()
        .position(|config| config.tool.version == "108" && !config.optimize);
    lines.push(match (find(results, "quickjs.wasm"), column) {
        (None, _) => format!("{target}: not measured (no quickjs.wasm)."),
        (Some(_), None) => format!("{target}: not measured (Binaryen 108 not found)."),
        (Some(quickjs), Some(column)) => {
            match (quickjs.ours.measured(), quickjs.binaryen[column].measured()) {
                (Some(ours), Some(theirs)) => {
                    let speedup = theirs.wall.as_secs_f64() / ours.wall.as_secs_f64();
                    format!(
                        "{target}: {} ({}: {} against {}).",
                        met(speedup >= SPEEDUP_TARGET),
                        ratio(speedup),
                        duration(theirs.wall),
                        duration(ours.wall)
                    )
                }
                _ => format!("{target}: not measured (a tool failed on QuickJS)."),
            }
        }
    });

    lines
}

/// Issue 17's target for yosys: time against its validation, and memory.
fn yosys_verdict(results: &[ModuleResult]) -> String {
    let target = &targets::YOSYS_INSTRUMENT;
    let Some(yosys) = find(results, "yosys.wasm") else {
        return target.line(
            Verdict::NotMeasured,
            "no yosys.wasm in the shared corpus, or `--quick`",
        );
    };
    let (Some(ours), Ok(validation)) = (yosys.ours.measured(), &yosys.validation) else {
        return target.line(
            Verdict::NotMeasured,
            "instrumenting or validating yosys failed",
        );
    };
    let over = ours.wall.as_secs_f64() / validation.wall.as_secs_f64();
    let cpu = ours
        .cpu
        .map(|cpu| {
            format!(
                "; CPU time {}: {} against {}",
                ratio(cpu.as_secs_f64() / validation.cpu.as_secs_f64()),
                duration(cpu),
                duration(validation.cpu),
            )
        })
        .unwrap_or_default();
    target.line(
        Verdict::from_met(over <= VALIDATION_RATIO_TARGET && ours.peak_rss <= RSS_TARGET_BYTES),
        &format!(
            "wall time {}: {} against {}{cpu}; peak RSS {}",
            ratio(over),
            duration(ours.wall),
            duration(validation.wall),
            memory(ours.peak_rss)
        ),
    )
}

/// Issue 17's size target (0.70x), and the older notes' (0.85x), against
/// every `-O` build found, on QuickJS and sqlite3.
fn size_verdicts(configs: &[BinaryenConfig], results: &[ModuleResult]) -> Vec<String> {
    let optimized: Vec<(usize, &BinaryenConfig)> = configs
        .iter()
        .enumerate()
        .filter(|(_, config)| config.optimize)
        .collect();
    let mut figures = Vec::new();
    let mut ratios = Vec::new();
    let mut complete = !optimized.is_empty();
    let mut missing = Vec::new();
    for name in ["quickjs.wasm", "sqlite3.wasm"] {
        let Some(result) = find(results, name) else {
            missing.push(name);
            complete = false;
            continue;
        };
        for (column, config) in &optimized {
            match (result.ours.measured(), &result.binaryen[*column]) {
                (Some(ours), Outcome::Measured(theirs)) => {
                    let over = ours.output_bytes as f64 / theirs.output_bytes as f64;
                    ratios.push(over);
                    figures.push(format!(
                        "{name} {} of {} ({} B against {} B)",
                        ratio(over),
                        config.tool.version,
                        thousands(ours.output_bytes),
                        thousands(theirs.output_bytes)
                    ));
                }
                (_, outcome) => {
                    complete = false;
                    let why = outcome
                        .failure_cell()
                        .unwrap_or_else(|| "ours failed".to_string());
                    figures.push(format!(
                        "{name}: no figure against {} ({why})",
                        config.tool.version
                    ));
                }
            }
        }
    }
    let worst = ratios.iter().copied().fold(f64::NAN, f64::max);
    let mut figures = if optimized.is_empty() {
        "no Binaryen found".to_string()
    } else {
        format!("worst {}; {}", ratio(worst), figures.join("; "))
    };
    if !missing.is_empty() {
        figures.push_str(&format!("; not measured here: {}", missing.join(", ")));
    }
    // A run with a module or a Binaryen figure missing judges nothing.
    let verdict = |limit: f64| {
        if complete {
            Verdict::from_met(worst <= limit)
        } else {
            Verdict::NotMeasured
        }
    };
    let older = match verdict(OLDER_SIZE_RATIO_TARGET) {
        Verdict::Met => "met",
        Verdict::NotMet => "not met",
        Verdict::NotMeasured => "not measured",
    };
    vec![
        targets::OUTPUT_SIZE.line(verdict(SIZE_RATIO_TARGET), &figures),
        format!(
            "- {}: output at most {OLDER_SIZE_RATIO_TARGET}x the size of `wasm-opt -O \
             --asyncify` on QuickJS and sqlite3: {older} (worst {}).",
            targets::OLDER,
            ratio(worst)
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_lose_their_prefix() {
        assert_eq!(
            refusal_message(
                "error: cannot instrument `x`: already instrumented\nmore",
                None
            ),
            "cannot instrument `x`: already instrumented"
        );
    }
}
