//! `asyncify inspect`: what a module exposes and what the transform would do
//! to it, as text or JSON.

use std::path::PathBuf;

use anyhow::Context;
use asyncify_transform::inspect::{interface, Interface};
use asyncify_transform::{InstrumentedFunction, Output};
use clap::Args;
use serde::Serialize;

use crate::files;
use crate::instrument::{catch_panic, InstrumentFlags};

/// Arguments of `asyncify inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The module, binary (`.wasm`) or text (`.wat`); `-` reads standard input.
    #[arg(value_name = "MODULE")]
    input: PathBuf,

    /// Explain why this function is instrumented: the call chain from it down
    /// to an import or indirect call that may suspend. NAME is a name from the
    /// name section, or a function index.
    #[arg(long, value_name = "NAME")]
    why: Vec<String>,

    /// List every instrumented function with its suspension points, saved
    /// locals and frame size.
    #[arg(long)]
    functions: bool,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    flags: InstrumentFlags,
}

/// The whole report, as printed with `--json`.
#[derive(Debug, Serialize)]
struct Report {
    input_bytes: usize,
    output_bytes: usize,
    growth: f64,
    functions: u32,
    instrumented: usize,
    suspension_points: u64,
    imports: Vec<Entry>,
    exports: Vec<Entry>,
    frames: FrameSummary,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    why: Vec<Why>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instrumented_functions: Option<Vec<FunctionRow>>,
}

#[derive(Debug, Serialize)]
struct Entry {
    #[serde(skip_serializing_if = "String::is_empty")]
    module: String,
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Debug, Serialize)]
struct FrameSummary {
    /// Locals saved per suspension point: largest and mean over instrumented functions.
    max_saved_locals: u32,
    mean_saved_locals: f64,
    /// Locals live after each suspension point (what must be saved): largest and mean.
    max_live_locals: u32,
    mean_live_locals: f64,
    max_frame_bytes: u32,
    mean_frame_bytes: f64,
}

#[derive(Debug, Serialize)]
struct Why {
    function: String,
    instrumented: bool,
    chain: Vec<String>,
}

#[derive(Debug, Serialize)]
struct FunctionRow {
    index: u32,
    name: Option<String>,
    points: u32,
    saved_locals: u32,
    frame_bytes: u32,
    /// Locals an unwind writes at each point, in order.
    saved_per_point: Vec<u32>,
    /// Locals live after each point, in order.
    live_per_point: Vec<u32>,
}

/// Runs `asyncify inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let options = args.flags.to_options()?;
    let input = files::read_input(&args.input)?;
    let what = || format!("cannot inspect {}", files::describe(&args.input));
    let (interface, output) = catch_panic(|| {
        let interface = interface(&input)?;
        asyncify_transform::instrument(&input, &options).map(|output| (interface, output))
    })
    .and_then(|r| r.map_err(Into::into))
    .with_context(what)?;
    let Interface { imports, exports } = interface;
    let report = build_report(&output, imports, exports, &args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn build_report(
    output: &Output,
    imports: Vec<asyncify_transform::inspect::Item>,
    exports: Vec<asyncify_transform::inspect::Item>,
    args: &InspectArgs,
) -> anyhow::Result<Report> {
    let entry = |i: asyncify_transform::inspect::Item| Entry {
        module: i.module,
        name: i.name,
        ty: i.ty,
    };
    let functions = output.function_count;
    let instrumented = &output.instrumented;
    let count = instrumented.len().max(1) as f64;
    let per_point = || {
        instrumented
            .iter()
            .flat_map(|f| f.saved_per_point.iter().copied())
    };
    let live_per_point = || {
        instrumented
            .iter()
            .flat_map(|f| f.live_per_point.iter().copied())
    };
    let points = per_point().count().max(1) as f64;
    let frames = FrameSummary {
        max_saved_locals: per_point().max().unwrap_or(0),
        mean_saved_locals: per_point().map(f64::from).sum::<f64>() / points,
        max_live_locals: live_per_point().max().unwrap_or(0),
        mean_live_locals: live_per_point().map(f64::from).sum::<f64>() / points,
        max_frame_bytes: instrumented
            .iter()
            .map(|f| f.frame_bytes)
            .max()
            .unwrap_or(0),
        mean_frame_bytes: instrumented
            .iter()
            .map(|f| f64::from(f.frame_bytes))
            .sum::<f64>()
            / count,
    };
    let mut why = Vec::new();
    for name in &args.why {
        let index = find_function(output, name).with_context(|| {
            format!("no function is named `{name}` (give a name from the name section or an index)")
        })?;
        let chain = output.why(index);
        why.push(Why {
            function: name.clone(),
            instrumented: !chain.is_empty(),
            chain,
        });
    }
    let rows = |f: &InstrumentedFunction| FunctionRow {
        index: f.index,
        name: f.name.clone(),
        points: f.points,
        saved_locals: f.saved_locals,
        frame_bytes: f.frame_bytes,
        saved_per_point: f.saved_per_point.clone(),
        live_per_point: f.live_per_point.clone(),
    };
    Ok(Report {
        input_bytes: output.input_bytes,
        output_bytes: output.wasm.len(),
        growth: output.wasm.len() as f64 / output.input_bytes.max(1) as f64,
        functions,
        instrumented: instrumented.len(),
        suspension_points: instrumented.iter().map(|f| u64::from(f.points)).sum(),
        imports: imports.into_iter().map(entry).collect(),
        exports: exports.into_iter().map(entry).collect(),
        frames,
        warnings: output.warnings.clone(),
        why,
        instrumented_functions: args
            .functions
            .then(|| instrumented.iter().map(rows).collect()),
    })
}

/// Finds a function by name-section name, or by index.
fn find_function(output: &Output, name: &str) -> Option<u32> {
    let name = name.strip_prefix('$').unwrap_or(name);
    if let Some(index) = output
        .function_names
        .iter()
        .position(|n| n.as_deref() == Some(name))
    {
        return Some(index as u32);
    }
    name.parse::<u32>()
        .ok()
        .filter(|&i| i < output.function_count)
}

fn print_text(r: &Report) {
    println!("imports ({}):", r.imports.len());
    for i in &r.imports {
        println!("  {}.{}: {}", i.module, i.name, i.ty);
    }
    println!("exports ({}):", r.exports.len());
    for e in &r.exports {
        println!("  {}: {}", e.name, e.ty);
    }
    println!(
        "instrumented: {} of {} functions, {} suspension points",
        r.instrumented, r.functions, r.suspension_points
    );
    println!(
        "locals live after a suspension point: at most {}, {:.1} on average; \
         written by an unwind: at most {}, {:.1} on average{}",
        r.frames.max_live_locals,
        r.frames.mean_live_locals,
        r.frames.max_saved_locals,
        r.frames.mean_saved_locals,
        if r.frames.mean_saved_locals > r.frames.mean_live_locals {
            " (nearby points share the code that writes the frame; --exact-saves writes only the live ones)"
        } else {
            ""
        }
    );
    println!(
        "frame size: at most {} bytes, {:.1} on average",
        r.frames.max_frame_bytes, r.frames.mean_frame_bytes
    );
    println!(
        "size: {} -> {} bytes ({:.2}x)",
        r.input_bytes, r.output_bytes, r.growth
    );
    for w in &r.warnings {
        println!("warning: {w}");
    }
    for w in &r.why {
        if w.instrumented {
            println!("why {}:", w.function);
            for (depth, line) in w.chain.iter().enumerate() {
                println!("  {}{line}", "  ".repeat(depth));
            }
        } else {
            println!(
                "why {}: not instrumented (it cannot reach an import or indirect call that may suspend, or the options exclude it)",
                w.function
            );
        }
    }
    if let Some(rows) = &r.instrumented_functions {
        println!(
            "instrumented functions (index, name, points, saved locals, frame bytes, \
             locals live / written at each point):"
        );
        for f in rows {
            let per_point: Vec<String> = f
                .live_per_point
                .iter()
                .zip(&f.saved_per_point)
                .map(|(live, written)| {
                    if live == written {
                        live.to_string()
                    } else {
                        format!("{live}/{written}")
                    }
                })
                .collect();
            println!(
                "  {:>6} {:<40} {:>5} {:>5} {:>6}  {}",
                f.index,
                f.name.as_deref().unwrap_or("-"),
                f.points,
                f.saved_locals,
                f.frame_bytes,
                per_point.join(" ")
            );
        }
    }
}
