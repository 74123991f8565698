//! `asyncify inspect`: what a module exposes and what the transform would do
//! to it, as text or JSON.

use std::path::PathBuf;

use anyhow::Context;
use asyncify_transform::inspect::{explain_import, interface, Interface, Item};
use asyncify_transform::{Error, InstrumentedFunction, Options, Output};
use clap::Args;
use serde::Serialize;
use wasmparser::{ExternalKind, Payload, TypeRef};

use crate::files;
use crate::instrument::{catch_panic, InstrumentFlags};
use crate::message::transform_error;

/// Arguments of `asyncify inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The module, binary (`.wasm`) or text (`.wat`); `-` reads standard input.
    #[arg(value_name = "MODULE")]
    input: PathBuf,

    /// Explain why this function is instrumented: the call chain from it down
    /// to an import or indirect call that may suspend. NAME is a name from the
    /// name section, an export name, an import (`module.name`), or a function
    /// index. Repeatable.
    #[arg(long, value_name = "NAME")]
    why: Vec<String>,

    /// List every instrumented function with its suspension points, saved
    /// locals and frame size.
    #[arg(long)]
    functions: bool,

    /// List the module's imports and exports with their types (the text
    /// report counts them only; --json always lists them).
    #[arg(long)]
    interface: bool,

    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,

    // Last: its help heading would otherwise carry over.
    #[command(flatten)]
    flags: InstrumentFlags,
}

/// The whole report, as printed with `--json`.
#[derive(Debug, Serialize)]
struct Report {
    input_bytes: usize,
    /// Functions in the input, imported and defined.
    functions: u32,
    /// For a module that is already instrumented: the asyncify export that
    /// shows it (the transform refuses such a module; nothing else is
    /// reported about the transform).
    #[serde(skip_serializing_if = "Option::is_none")]
    already_instrumented: Option<String>,
    #[serde(flatten)]
    transform: Option<TransformSummary>,
    imports: Vec<Entry>,
    exports: Vec<Entry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    why: Vec<Why>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instrumented_functions: Option<Vec<FunctionRow>>,
}

/// What the transform did.
#[derive(Debug, Serialize)]
struct TransformSummary {
    output_bytes: usize,
    growth: f64,
    instrumented: usize,
    suspension_points: u64,
    frames: FrameSummary,
    warnings: Vec<String>,
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
    /// For an import: why calls to it may or may not suspend.
    #[serde(skip_serializing_if = "Option::is_none")]
    import: Option<String>,
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

/// The function index space as `--why` needs it: imported functions and
/// exported functions by name.
#[derive(Debug, Default)]
struct Functions {
    /// `module.name` of each imported function, in index order.
    imports: Vec<String>,
    /// Functions the module defines.
    defined: u32,
    /// Exported functions: name and function index.
    exports: Vec<(String, u32)>,
}

impl Functions {
    /// Reads the function imports and exports of a valid binary `wasm`.
    fn read(wasm: &[u8]) -> anyhow::Result<Functions> {
        let mut functions = Functions::default();
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::ImportSection(reader) => {
                    for group in reader {
                        for import in group? {
                            let (_, import) = import?;
                            if let TypeRef::Func(_) | TypeRef::FuncExact(_) = import.ty {
                                functions
                                    .imports
                                    .push(format!("{}.{}", import.module, import.name));
                            }
                        }
                    }
                }
                Payload::FunctionSection(reader) => functions.defined = reader.count(),
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        if export.kind == ExternalKind::Func {
                            functions
                                .exports
                                .push((export.name.to_owned(), export.index));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(functions)
    }

    fn count(&self) -> u32 {
        self.imports.len() as u32 + self.defined
    }
}

/// Runs `asyncify inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let options = args.flags.to_options()?;
    let input = files::read_module(&args.input)?;
    let what = || format!("cannot inspect {}", files::describe(&args.input));
    let (interface, output) = catch_panic(|| {
        let interface = interface(&input)?;
        match asyncify_transform::instrument(&input, &options) {
            Ok(output) => Ok((interface, Ok(output))),
            Err(Error::AlreadyInstrumented(export)) => Ok((interface, Err(export))),
            Err(error) => Err(error),
        }
    })
    .and_then(|r| r.map_err(transform_error))
    .with_context(what)?;
    let functions = Functions::read(&input).with_context(what)?;
    let Interface { imports, exports } = interface;
    let entry = |i: Item| Entry {
        module: i.module,
        name: i.name,
        ty: i.ty,
    };
    let mut report = Report {
        input_bytes: input.len(),
        functions: functions.count(),
        already_instrumented: None,
        transform: None,
        imports: imports.into_iter().map(entry).collect(),
        exports: exports.into_iter().map(entry).collect(),
        why: Vec::new(),
        instrumented_functions: None,
    };
    match &output {
        Ok(output) => {
            report.transform = Some(summarize(output));
            report.why = explain(output, &functions, &options, &args.why)?;
            report.instrumented_functions = args
                .functions
                .then(|| output.instrumented.iter().map(row).collect());
        }
        Err(export) => report.already_instrumented = Some(export.clone()),
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report, args.interface);
    }
    Ok(())
}

fn summarize(output: &Output) -> TransformSummary {
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
    TransformSummary {
        output_bytes: output.wasm.len(),
        growth: output.wasm.len() as f64 / output.input_bytes.max(1) as f64,
        instrumented: instrumented.len(),
        suspension_points: instrumented.iter().map(|f| u64::from(f.points)).sum(),
        frames,
        warnings: output.warnings.clone(),
    }
}

fn row(f: &InstrumentedFunction) -> FunctionRow {
    FunctionRow {
        index: f.index,
        name: f.name.clone(),
        points: f.points,
        saved_locals: f.saved_locals,
        frame_bytes: f.frame_bytes,
        saved_per_point: f.saved_per_point.clone(),
        live_per_point: f.live_per_point.clone(),
    }
}

/// The `--why` answers, one per name.
fn explain(
    output: &Output,
    functions: &Functions,
    options: &Options,
    names: &[String],
) -> anyhow::Result<Vec<Why>> {
    let mut why = Vec::new();
    for name in names {
        let index = find_function(output, functions, name).with_context(|| {
            format!(
                "no function is named `{name}` (give a name from the name section, an export \
                 name, an import as `module.name`, or a function index)"
            )
        })?;
        let import = functions
            .imports
            .get(index as usize)
            .map(|import| explain_import(import, options));
        let chain = output.why(index);
        why.push(Why {
            function: name.clone(),
            instrumented: !chain.is_empty(),
            chain,
            import,
        });
    }
    Ok(why)
}

/// Finds a function by name-section name, export name, import
/// (`module.name`), or index.
fn find_function(output: &Output, functions: &Functions, name: &str) -> Option<u32> {
    let bare = name.strip_prefix('$').unwrap_or(name);
    if let Some(index) = output
        .function_names
        .iter()
        .position(|n| n.as_deref() == Some(bare))
    {
        return Some(index as u32);
    }
    if let Some((_, index)) = functions.exports.iter().find(|(export, _)| export == name) {
        return Some(*index);
    }
    if let Some(index) = functions.imports.iter().position(|import| import == name) {
        return Some(index as u32);
    }
    bare.parse::<u32>()
        .ok()
        .filter(|&i| i < output.function_count)
}

fn print_text(r: &Report, interface: bool) {
    if let Some(export) = &r.already_instrumented {
        println!(
            "already instrumented: the module exports `{export}`, so `asyncify instrument` \
             refuses it (instrumenting it again would break it); instrument the original \
             module instead, or run this one as it is (`asyncify run` drives it)"
        );
        println!("functions: {}", r.functions);
        println!("size: {} bytes", r.input_bytes);
    }
    if let Some(t) = &r.transform {
        print_summary(t, r.functions, r.input_bytes);
    }
    if interface {
        println!("imports ({}):", r.imports.len());
        for i in &r.imports {
            println!("  {}.{}: {}", i.module, i.name, i.ty);
        }
        println!("exports ({}):", r.exports.len());
        for e in &r.exports {
            println!("  {}: {}", e.name, e.ty);
        }
    } else {
        println!(
            "interface: {}, {} (--interface lists them)",
            plural(r.imports.len(), "import"),
            plural(r.exports.len(), "export")
        );
    }
    for w in &r.why {
        print_why(w);
    }
    if let Some(rows) = &r.instrumented_functions {
        print_rows(rows);
    }
}

/// `1 import`, `2 imports`.
fn plural(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

fn print_summary(t: &TransformSummary, functions: u32, input_bytes: usize) {
    println!(
        "instrumented: {} of {} functions, {} suspension points",
        t.instrumented, functions, t.suspension_points
    );
    println!(
        "locals live after a suspension point: at most {}, {:.1} on average; \
         written by an unwind: at most {}, {:.1} on average{}",
        t.frames.max_live_locals,
        t.frames.mean_live_locals,
        t.frames.max_saved_locals,
        t.frames.mean_saved_locals,
        if t.frames.mean_saved_locals > t.frames.mean_live_locals {
            " (nearby points share the code that writes the frame; --exact-saves writes only the live ones)"
        } else {
            ""
        }
    );
    println!(
        "frame size: at most {} bytes, {:.1} on average",
        t.frames.max_frame_bytes, t.frames.mean_frame_bytes
    );
    println!(
        "size: {} -> {} bytes ({:.2}x)",
        input_bytes, t.output_bytes, t.growth
    );
    for w in &t.warnings {
        println!("warning: {w}");
    }
}

fn print_why(w: &Why) {
    if let Some(import) = &w.import {
        println!("why {}: {import}", w.function);
    } else if w.instrumented {
        println!("why {}:", w.function);
        for (depth, line) in w.chain.iter().enumerate() {
            println!("  {}{line}", "  ".repeat(depth));
        }
    } else {
        println!(
            "why {}: not instrumented (it cannot reach an import or indirect call that may \
             suspend, or the options exclude it)",
            w.function
        );
    }
}

fn print_rows(rows: &[FunctionRow]) {
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
