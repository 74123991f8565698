//! Which functions of a module are slow for wasmtime (Cranelift) to compile.
//!
//! `cargo run --release -p asyncify-benches --bin compile_hotspots -- MODULE [INDEX...]`
//!
//! For each function index given (default: the 10 largest bodies), builds a
//! copy of MODULE where every other body is `unreachable` and times
//! `Module::new` on it, on one thread (`parallel_compilation(false)`); the time
//! includes compiling the `unreachable` stubs (see `compile_shapes` for the
//! function's own time). Used to find instrumented functions
//! whose shape makes Cranelift's SSA construction or register allocation
//! slow.
//!
//! `target/release/compile_hotspots --markdown [--quick] [--shared-corpus DIR] [MODULE [INDEX...]]`
//! instead compares each function before and after instrumenting (in process,
//! default options) and prints a markdown section for `cargo bench-report`.
//! Without MODULE it takes yosys's three heaviest instrumented functions
//! (21229, 22905, 26431); `--quick` takes QuickJS's three largest bodies.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use asyncify_benches::compile_time::{self, Bodies};
use asyncify_benches::sections::{self, duration, ratio, thousands};

/// yosys's functions that took longest to compile once instrumented
/// (BENCHMARKS.md, "Earlier measurements").
const YOSYS_HOTSPOTS: [u32; 3] = [21229, 22905, 26431];

/// Command-line options.
struct Args {
    markdown: bool,
    quick: bool,
    shared_corpus: Option<PathBuf>,
    module: Option<PathBuf>,
    functions: Vec<u32>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        markdown: false,
        quick: false,
        shared_corpus: None,
        module: None,
        functions: Vec::new(),
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
            "-h" | "--help" => {
                println!(
                    "usage: compile_hotspots MODULE [INDEX...]\n       \
                     compile_hotspots --markdown [--quick] [--shared-corpus DIR] [MODULE [INDEX...]]"
                );
                std::process::exit(0);
            }
            flag if flag.starts_with("--") => bail!("unknown flag `{flag}` (try --help)"),
            _ if parsed.module.is_none() => parsed.module = Some(PathBuf::from(arg)),
            index => parsed.functions.push(
                index
                    .parse()
                    .with_context(|| format!("`{index}` is not a function index"))?,
            ),
        }
    }
    Ok(parsed)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if args.markdown {
        return markdown_section(args);
    }
    let path = args
        .module
        .ok_or_else(|| anyhow::anyhow!("usage: MODULE [INDEX...] (or --markdown)"))?;
    let wasm = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let layout = Bodies::of(&wasm)?;
    let targets = if args.functions.is_empty() {
        layout.largest(10)
    } else {
        args.functions
    };
    let engine = engine()?;
    for target in targets {
        let (compiled_in, shape) = compile_one(&engine, &wasm, &layout, target)?;
        println!(
            "function {target}: {} body bytes, {shape}, compiled in {compiled_in:.2?}",
            shape.body_bytes
        );
    }
    Ok(())
}

/// Compiles each function alone, original and instrumented, and prints the
/// markdown section.
fn markdown_section(args: Args) -> anyhow::Result<()> {
    let shared = sections::shared_corpus_dir(args.shared_corpus.as_deref());
    let default_module = if args.quick {
        "quickjs.wasm"
    } else {
        "yosys.wasm"
    };
    let path = args
        .module
        .clone()
        .unwrap_or_else(|| shared.join(default_module));
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wasm = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let layout = Bodies::of(&wasm)?;
    let functions = if !args.functions.is_empty() {
        args.functions.clone()
    } else if args.module.is_none() && !args.quick {
        YOSYS_HOTSPOTS.to_vec()
    } else {
        layout.largest(3)
    };

    eprintln!("compile_hotspots: instrumenting {name}");
    let started = Instant::now();
    let instrumented = asyncify_transform::instrument(&wasm, &Default::default())
        .with_context(|| format!("instrumenting {}", path.display()))?
        .wasm;
    let instrumented_in = started.elapsed();
    let instrumented_layout = Bodies::of(&instrumented)?;

    let engine = engine()?;
    let mut rows = Vec::new();
    for &function in &functions {
        eprintln!("compile_hotspots: function {function}, original");
        let (original_time, original) = compile_one(&engine, &wasm, &layout, function)?;
        eprintln!(
            "compile_hotspots:   {}; instrumented",
            duration(original_time)
        );
        let (instrumented_time, after) =
            compile_one(&engine, &instrumented, &instrumented_layout, function)?;
        eprintln!("compile_hotspots:   {}", duration(instrumented_time));
        rows.push(format!(
            "| {function} | {} B, {} locals, {} calls | {} B, {} locals | {} | {} | {} |",
            thousands(original.body_bytes as u64),
            original.locals,
            original.calls,
            thousands(after.body_bytes as u64),
            after.locals,
            duration(original_time),
            duration(instrumented_time),
            ratio(instrumented_time.as_secs_f64() / original_time.as_secs_f64())
        ));
    }

    let indices: Vec<String> = functions.iter().map(u32::to_string).collect();
    let mut command = String::from("target/release/compile_hotspots --markdown");
    if args.quick {
        command.push_str(" --quick");
    }
    if args.module.is_some() || !args.functions.is_empty() {
        command.push_str(&format!(" {} {}", path.display(), indices.join(" ")));
    }
    println!("## Compiling the output: Cranelift time per function\n");
    println!(
        "An instrumented module must also be cheap for engines to compile. For each function, \
         the time wasmtime 48 (Cranelift, one thread) takes on a copy of the module where every \
         other body is `unreachable`, for the original {name} and for this project's output \
         (default options; instrumented in process in {}). One compile each; load average at \
         the start: {}.\n",
        duration(instrumented_in),
        sections::load_average()
    );
    println!("    {command}");
    println!("    # or, by hand:");
    println!(
        "    target/release/asyncify instrument {} -o /tmp/out.wasm",
        path.display()
    );
    println!(
        "    target/release/compile_hotspots {} {}",
        path.display(),
        indices.join(" ")
    );
    println!(
        "    target/release/compile_hotspots /tmp/out.wasm {}\n",
        indices.join(" ")
    );
    println!(
        "| function | original body | instrumented body | compile, original | compile, \
         instrumented | ratio |"
    );
    println!("|---|---|---|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    println!(
        "\nIssue 17's target for these (every function at most 2x its original's compile time) \
         is judged in \"Compiling the output: whole modules\", over every function of each \
         module; the history at the end shows how these functions went from minutes to \
         seconds.\n"
    );
    Ok(())
}

/// A wasmtime engine that compiles on this thread only.
fn engine() -> anyhow::Result<wasmtime::Engine> {
    compile_time::single_thread_engine()
}

/// Compiles `wasm` with only function `target`'s body kept; returns the
/// compile time and the body's shape.
fn compile_one(
    engine: &wasmtime::Engine,
    wasm: &[u8],
    layout: &Bodies,
    target: u32,
) -> anyhow::Result<(Duration, Shape)> {
    let keep = target
        .checked_sub(layout.imported)
        .filter(|&i| (i as usize) < layout.ranges.len())
        .ok_or_else(|| anyhow::anyhow!("{target} is not a defined function"))?;
    let (module, _) = compile_time::only_body(wasm, target, None)?;
    let (start, end) = layout.ranges[keep as usize];
    let shape = shape(&wasm[start..end], start)?;
    let started = Instant::now();
    wasmtime::Module::new(engine, &module).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok((started.elapsed(), shape))
}

/// What a function body is made of.
struct Shape {
    body_bytes: usize,
    locals: u32,
    operators: u32,
    constructs: u32,
    deepest: u32,
    branches: u32,
    calls: u32,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} locals, {} operators, {} blocks/loops/ifs (depth {}), {} branches, {} calls",
            self.locals, self.operators, self.constructs, self.deepest, self.branches, self.calls
        )
    }
}

/// Locals, operators, constructs and the deepest nesting of one body.
fn shape(body: &[u8], offset: usize) -> anyhow::Result<Shape> {
    let body_bytes = body.len();
    let body = wasmparser::FunctionBody::new(wasmparser::BinaryReader::new(body, offset as u64));
    let mut locals = 0u32;
    for l in body.get_locals_reader()? {
        locals += l?.0;
    }
    let (mut operators, mut constructs, mut calls, mut depth, mut deepest, mut branches) =
        (0, 0, 0, 0u32, 0u32, 0);
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        operators += 1;
        match reader.read()? {
            wasmparser::Operator::Block { .. }
            | wasmparser::Operator::Loop { .. }
            | wasmparser::Operator::If { .. } => {
                constructs += 1;
                depth += 1;
                deepest = deepest.max(depth);
            }
            wasmparser::Operator::End => depth = depth.saturating_sub(1),
            wasmparser::Operator::Call { .. } | wasmparser::Operator::CallIndirect { .. } => {
                calls += 1
            }
            wasmparser::Operator::Br { .. }
            | wasmparser::Operator::BrIf { .. }
            | wasmparser::Operator::BrTable { .. } => branches += 1,
            _ => {}
        }
    }
    Ok(Shape {
        body_bytes,
        locals,
        operators,
        constructs,
        deepest,
        branches,
        calls,
    })
}
