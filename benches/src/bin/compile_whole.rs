//! Whole-module Cranelift compile time of the output: the original module,
//! this project's output and Binaryen's `-O --asyncify` output, each compiled
//! by wasmtime on one thread (`Config::parallel_compilation(false)`,
//! `Engine::precompile_module`), in CPU time; and the functions whose own
//! compile time grew most.
//!
//! `target/release/compile_whole --markdown [--quick] [--shared-corpus DIR]
//! [--rounds N] [--binaryen-timeout SECONDS]` prints the section for
//! `cargo bench-report`: QuickJS, sqlite3, the `speed` compute set
//! (`corpus/bench/compute.wasm`), esbuild and yosys (`--quick`: QuickJS
//! only). Binaryen's outputs come from `target/bench-cache/` (the cache the
//! `speed` bench fills); modules over 5 MB are never given to Binaryen here,
//! only looked up.
//!
//! `compile_whole MODULE [OTHER]` compiles MODULE (and OTHER) and prints the
//! CPU time; with OTHER, a module with the same defined functions in the same
//! order (such as MODULE instrumented), also the functions whose compile time
//! grew most. Per-function times come from wasmtime's own log records around
//! each function (`compiling Wasm function` .. `compiled in`), timed with this
//! thread's CPU clock in a separate compile, so the whole-module figures carry
//! no logging cost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use asyncify_benches::binaryen::{self, workspace_root, WasmOpt};
use asyncify_benches::compile_time::{
    build_profile, compile, per_function, single_thread_engine, Bodies, Compiled,
};
use asyncify_benches::sections::{self, duration, ratio, thousands};
use asyncify_benches::targets::{self, Verdict};

/// Binaryen's flags, the same as the `speed` bench's (so they share the cache).
const BINARYEN_FLAGS: [&str; 3] = ["--all-features", "-O", "--asyncify"];
/// Modules at least this large are not given to Binaryen here (yosys takes
/// it most of an hour); their output is only looked up in the cache.
const LARGE_MODULE: usize = 5_000_000;
/// Targets of issue 17 ([`targets::COMPILE_WHOLE`], [`targets::COMPILE_FUNCTION`]).
const WHOLE_TARGET: f64 = 1.3;
const FUNCTION_TARGET: f64 = 2.0;
/// Functions whose instrumented compile took less than this are left out of
/// the per-function target: one sample of a sub-millisecond compile is noise.
const FUNCTION_FLOOR: Duration = Duration::from_millis(5);
/// Rows of the worst-function table per module.
const WORST_ROWS: usize = 5;

/// Command-line options.
struct Args {
    markdown: bool,
    quick: bool,
    shared_corpus: Option<PathBuf>,
    rounds: Option<usize>,
    binaryen_timeout: Duration,
    modules: Vec<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut parsed = Args {
        markdown: false,
        quick: false,
        shared_corpus: None,
        rounds: None,
        binaryen_timeout: Duration::from_secs(600),
        modules: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--markdown" => parsed.markdown = true,
            "--quick" => parsed.quick = true,
            "--shared-corpus" => {
                let dir = args.next().context("--shared-corpus needs a directory")?;
                parsed.shared_corpus = Some(PathBuf::from(dir));
            }
            "--rounds" => {
                let n = args.next().context("--rounds needs a number")?;
                let n: usize = n.parse().with_context(|| format!("--rounds {n}"))?;
                parsed.rounds = Some(n.max(1));
            }
            "--binaryen-timeout" => {
                let s = args.next().context("--binaryen-timeout needs seconds")?;
                let s: u64 = s
                    .parse()
                    .with_context(|| format!("--binaryen-timeout {s}"))?;
                parsed.binaryen_timeout = Duration::from_secs(s);
            }
            "-h" | "--help" => {
                println!(
                    "usage: compile_whole MODULE [OTHER]\n       \
                     compile_whole --markdown [--quick] [--shared-corpus DIR] [--rounds N] \
                     [--binaryen-timeout SECONDS]"
                );
                std::process::exit(0);
            }
            flag if flag.starts_with("--") => bail!("unknown flag `{flag}` (try --help)"),
            _ => parsed.modules.push(PathBuf::from(arg)),
        }
    }
    Ok(parsed)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if args.markdown {
        return markdown_section(&args);
    }
    let engine = single_thread_engine()?;
    let rounds = args.rounds.unwrap_or(1);
    match args.modules.as_slice() {
        [one] => {
            let wasm = read(one)?;
            let whole = compile_median(&engine, &[&wasm], rounds)?;
            println!("{}: {}", one.display(), Shown(whole[0]));
        }
        [original, other] => {
            let (a, b) = (read(original)?, read(other)?);
            let whole = compile_median(&engine, &[&a, &b], rounds)?;
            println!("{}: {}", original.display(), Shown(whole[0]));
            println!("{}: {}", other.display(), Shown(whole[1]));
            println!("ratio {}", ratio(whole[1].ratio_to(&whole[0])));
            let rows = worst_functions(&engine, &a, &b)?;
            println!("function: original -> other compile (ratio), bodies");
            for row in rows.iter().take(20) {
                println!(
                    "{}: {} -> {} ({}), {} B -> {} B",
                    row.index,
                    duration(row.original),
                    duration(row.other),
                    ratio(row.ratio()),
                    thousands(row.original_bytes as u64),
                    thousands(row.other_bytes as u64)
                );
            }
        }
        _ => bail!("usage: compile_whole MODULE [OTHER] (or --markdown; try --help)"),
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} CPU ({} wall), {} B compiled",
            duration(self.0.cpu),
            duration(self.0.wall),
            thousands(self.0.artifact as u64)
        )
    }
}

/// A compile's figures for a progress line.
struct Shown(Compiled);

/// Compiles each module `rounds` times, interleaved (one of each per round,
/// so a busy spell on the machine hits all alike), and returns the median
/// CPU time of each (with the wall time of the same run).
fn compile_median(
    engine: &wasmtime::Engine,
    modules: &[&[u8]],
    rounds: usize,
) -> Result<Vec<Compiled>> {
    let mut samples: Vec<Vec<Compiled>> = vec![Vec::new(); modules.len()];
    for round in 0..rounds {
        for (i, wasm) in modules.iter().enumerate() {
            let run = compile(engine, wasm)?;
            eprintln!(
                "compile_whole:   round {}/{rounds}, module {}: {}",
                round + 1,
                i + 1,
                Shown(run)
            );
            samples[i].push(run);
        }
    }
    Ok(samples
        .into_iter()
        .map(|mut runs| {
            runs.sort_by_key(|run| run.cpu);
            runs[runs.len() / 2]
        })
        .collect())
}

/// One function's compile time in two modules.
struct FunctionRow {
    /// Index in the original module.
    index: u32,
    original: Duration,
    other: Duration,
    original_bytes: usize,
    other_bytes: usize,
}

impl FunctionRow {
    fn ratio(&self) -> f64 {
        self.other.as_secs_f64() / self.original.as_secs_f64().max(1e-6)
    }
}

/// Each defined function of `original` with its compile time there and in
/// `other` (matched by position among defined functions, which the transform
/// keeps; functions it adds are left out), worst ratio first among those
/// that took at least [`FUNCTION_FLOOR`] in `other`, then the rest.
fn worst_functions(
    engine: &wasmtime::Engine,
    original: &[u8],
    other: &[u8],
) -> Result<Vec<FunctionRow>> {
    let (before, after) = (Bodies::of(original)?, Bodies::of(other)?);
    let time_before = per_function(engine, original)?;
    let time_after = per_function(engine, other)?;
    let mut rows: Vec<FunctionRow> = (0..before.ranges.len().min(after.ranges.len()))
        .filter_map(|defined| {
            let index = before.imported + defined as u32;
            let index_after = after.imported + defined as u32;
            Some(FunctionRow {
                index,
                original: *time_before.get(&index)?,
                other: *time_after.get(&index_after)?,
                original_bytes: before.size(defined),
                other_bytes: after.size(defined),
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        let (a_counts, b_counts) = (a.other >= FUNCTION_FLOOR, b.other >= FUNCTION_FLOOR);
        b_counts
            .cmp(&a_counts)
            .then(b.ratio().total_cmp(&a.ratio()))
    });
    Ok(rows)
}

/// One module of the section and what was measured on it.
struct ModuleResult {
    name: String,
    original_bytes: usize,
    ours_bytes: usize,
    original: Compiled,
    ours: Compiled,
    /// Binaryen's output compiled, or why there is none.
    binaryen: std::result::Result<(usize, Compiled), String>,
    /// When Binaryen hit its time limit: the record's description (when,
    /// how), for a note under the table.
    binaryen_limit: Option<String>,
    worst: Vec<FunctionRow>,
    /// Sum of per-function CPU time, original and ours (all functions).
    functions_total: (Duration, Duration),
}

/// The modules of the section: QuickJS, sqlite3, the compute set, esbuild,
/// yosys (`--quick`: QuickJS).
fn section_modules(shared: &Path, quick: bool) -> Vec<PathBuf> {
    let mut modules = vec![shared.join("quickjs.wasm")];
    if !quick {
        modules.push(shared.join("sqlite3.wasm"));
        modules.push(workspace_root().join("corpus/bench/compute.wasm"));
        modules.push(shared.join("esbuild.wasm"));
        modules.push(shared.join("yosys.wasm"));
    }
    modules
}

/// Binaryen's `-O --asyncify` output for `original`: run (small modules) or
/// looked up in the cache (large ones).
fn binaryen_output(
    tool: Option<&WasmOpt>,
    original: &[u8],
    timeout: Duration,
) -> std::result::Result<Vec<u8>, String> {
    let Some(tool) = tool else {
        return Err("no wasm-opt found".to_string());
    };
    let outcome = if original.len() >= LARGE_MODULE {
        match binaryen::lookup_cached_wasm_opt(tool, original, &BINARYEN_FLAGS) {
            Some(outcome) => outcome,
            None => {
                return Err(format!(
                    "not in the cache ({} is not run here on modules over 5 MB; `speed` and \
                     `transform_table` run it)",
                    tool.label
                ))
            }
        }
    } else {
        match binaryen::cached_wasm_opt(tool, original, &BINARYEN_FLAGS, timeout) {
            Ok(outcome) => outcome,
            Err(error) => return Err(format!("{error:#}")),
        }
    };
    match outcome {
        Ok(output) => Ok(output.wasm),
        Err(binaryen::WasmOptFailure::TimedOut(after)) => Err(format!(
            "{} did not finish within {} s",
            tool.label,
            after.as_secs()
        )),
        Err(failure) => Err(format!("{} {failure}", tool.label)),
    }
}

/// Instruments, compiles and times one module.
fn measure_module(
    engine: &wasmtime::Engine,
    path: &Path,
    tool: Option<&WasmOpt>,
    args: &Args,
) -> Result<ModuleResult> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let original = read(path)?;
    eprintln!("compile_whole: {name}: instrumenting");
    let ours = asyncify_transform::instrument(&original, &Default::default())
        .with_context(|| format!("instrumenting {}", path.display()))?
        .wasm;
    let theirs = binaryen_output(tool, &original, args.binaryen_timeout);
    let rounds = args
        .rounds
        .unwrap_or(if original.len() >= LARGE_MODULE { 1 } else { 3 });
    let mut modules: Vec<&[u8]> = vec![&original, &ours];
    if let Ok(wasm) = &theirs {
        modules.push(wasm);
    }
    eprintln!("compile_whole: {name}: whole-module compiles, {rounds} round(s)");
    let whole = compile_median(engine, &modules, rounds)?;
    eprintln!("compile_whole: {name}: per-function compiles");
    let worst = worst_functions(engine, &original, &ours)?;
    let functions_total = (
        worst.iter().map(|row| row.original).sum(),
        worst.iter().map(|row| row.other).sum(),
    );
    Ok(ModuleResult {
        name,
        original_bytes: original.len(),
        ours_bytes: ours.len(),
        original: whole[0],
        ours: whole[1],
        binaryen_limit: match (&theirs, tool) {
            (Err(_), Some(tool)) => binaryen::describe_time_limit(
                tool,
                &binaryen::sha256_hex(&original),
                &BINARYEN_FLAGS,
            ),
            _ => None,
        },
        binaryen: match theirs {
            Ok(wasm) => Ok((wasm.len(), whole[2])),
            Err(reason) => Err(reason),
        },
        worst,
        functions_total,
    })
}

/// Measures every module and prints the markdown section.
fn markdown_section(args: &Args) -> Result<()> {
    let shared = sections::shared_corpus_dir(args.shared_corpus.as_deref());
    let load = sections::load_average();
    let tool = binaryen::find_wasm_opt().into_iter().next();
    let engine = single_thread_engine()?;
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for path in section_modules(&shared, args.quick) {
        if !path.exists() {
            missing.push(format!("{} not found", path.display()));
            continue;
        }
        results.push(measure_module(&engine, &path, tool.as_ref(), args)?);
    }
    print!("{}", render(args, &results, &missing, tool.as_ref(), &load));
    Ok(())
}

/// The section's markdown.
fn render(
    args: &Args,
    results: &[ModuleResult],
    missing: &[String],
    tool: Option<&WasmOpt>,
    load: &str,
) -> String {
    let mut out = String::from("## Compiling the output: whole modules\n\n");
    out.push_str(&format!(
        "What an engine pays to compile the output: wasmtime {} (Cranelift, default settings, \
         `parallel_compilation(false)`, `Engine::precompile_module`) compiling each module on \
         one thread, in CPU time of that thread, median of 3 interleaved rounds (1 for modules \
         over 5 MB); measured from {}. Ours is the default options' output, instrumented in \
         process; Binaryen's is {} `{}`. Per-function times come from a separate compile of \
         each module, timed at wasmtime's per-function log records. Load average at the start: \
         {load}.\n\n",
        WASMTIME_VERSION,
        build_profile(),
        tool.map_or("(none found)", |t| t.label.as_str()),
        BINARYEN_FLAGS.join(" ")
    ));
    let quick = if args.quick { " --quick" } else { "" };
    out.push_str(&format!(
        "    target/release/compile_whole --markdown{quick}\n    # one module, by hand:\n    \
         target/release/asyncify instrument MODULE -o /tmp/out.wasm\n    \
         target/release/compile_whole MODULE /tmp/out.wasm\n\n"
    ));
    out.push_str(
        "| module | original | ours | ours / original | Binaryen `-O --asyncify` | Binaryen / \
         original | sum of functions, ours / original |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        let binaryen = match &r.binaryen {
            Ok((_, compiled)) => (
                duration(compiled.cpu),
                ratio(compiled.ratio_to(&r.original)),
            ),
            Err(reason) => (sections::first_line(reason), "-".to_string()),
        };
        out.push_str(&format!(
            "| {} ({} B; ours {} B) | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            thousands(r.original_bytes as u64),
            thousands(r.ours_bytes as u64),
            duration(r.original.cpu),
            duration(r.ours.cpu),
            ratio(r.ours.ratio_to(&r.original)),
            binaryen.0,
            binaryen.1,
            ratio(r.functions_total.1.as_secs_f64() / r.functions_total.0.as_secs_f64()),
        ));
    }
    for line in missing {
        out.push_str(&format!("\n{line}; skipped.\n"));
    }
    let limits: Vec<String> = results
        .iter()
        .filter_map(|r| {
            let limit = r.binaryen_limit.as_ref()?;
            Some(format!(
                "- {}: {} `{}` {limit}.\n",
                r.name,
                tool.map_or("Binaryen", |t| t.label.as_str()),
                BINARYEN_FLAGS.join(" ")
            ))
        })
        .collect();
    if !limits.is_empty() {
        out.push_str(
            "\nBinaryen runs that hit their time limit (from `target/bench-cache/`; a longer \
             `--binaryen-timeout` in `speed` or `transform_table` tries again):\n\n",
        );
        out.push_str(&limits.concat());
    }
    out.push_str(&format!(
        "\nThe functions whose compile time grew most (among those that took at least {} \
         once instrumented; one compile each):\n\n",
        duration(FUNCTION_FLOOR)
    ));
    out.push_str(
        "| module | function | body, original -> ours | original | ours | ratio |\n\
         |---|---:|---|---:|---:|---:|\n",
    );
    for r in results {
        for row in r
            .worst
            .iter()
            .filter(|row| row.other >= FUNCTION_FLOOR)
            .take(WORST_ROWS)
        {
            out.push_str(&format!(
                "| {} | {} | {} B -> {} B | {} | {} | {} |\n",
                r.name,
                row.index,
                thousands(row.original_bytes as u64),
                thousands(row.other_bytes as u64),
                duration(row.original),
                duration(row.other),
                ratio(row.ratio())
            ));
        }
    }
    out.push_str(&targets(results, args.quick));
    out
}

/// The verdict lines of issue 17's two compile-time targets.
fn targets(results: &[ModuleResult], quick: bool) -> String {
    let mut out = String::from("\nTargets:\n\n");
    let scope = if quick {
        "; `--quick`: QuickJS only"
    } else {
        ""
    };
    let whole: Vec<String> = results
        .iter()
        .map(|r| {
            let binaryen = match &r.binaryen {
                Ok((_, compiled)) => {
                    format!(", Binaryen {}", ratio(compiled.ratio_to(&r.original)))
                }
                Err(_) => String::new(),
            };
            format!(
                "{} {}{binaryen}",
                r.name,
                ratio(r.ours.ratio_to(&r.original))
            )
        })
        .collect();
    let worst_whole = results
        .iter()
        .map(|r| r.ours.ratio_to(&r.original))
        .fold(f64::NAN, f64::max);
    let line = if results.is_empty() {
        targets::COMPILE_WHOLE.line(Verdict::NotMeasured, "no module found")
    } else {
        targets::COMPILE_WHOLE.line(
            Verdict::from_met(worst_whole <= WHOLE_TARGET),
            &format!(
                "worst {}; ours / original: {}{scope}",
                ratio(worst_whole),
                whole.join("; ")
            ),
        )
    };
    out.push_str(&line);
    out.push('\n');
    let worst = results
        .iter()
        .filter_map(|r| {
            let row = r.worst.iter().find(|row| row.other >= FUNCTION_FLOOR)?;
            Some((r.name.as_str(), row))
        })
        .max_by(|a, b| a.1.ratio().total_cmp(&b.1.ratio()));
    let line = match worst {
        Some((name, row)) => targets::COMPILE_FUNCTION.line(
            Verdict::from_met(row.ratio() <= FUNCTION_TARGET),
            &format!(
                "worst {}: {name} function {}, {} against {}, among functions taking at least {} \
                 once instrumented{scope}",
                ratio(row.ratio()),
                row.index,
                duration(row.other),
                duration(row.original),
                duration(FUNCTION_FLOOR)
            ),
        ),
        None => targets::COMPILE_FUNCTION.line(Verdict::NotMeasured, "no function measured"),
    };
    out.push_str(&line);
    out.push('\n');
    out
}

/// wasmtime's version as locked (for the text; the crate does not export it).
const WASMTIME_VERSION: &str = "48";
