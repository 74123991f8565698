//! The report `inspect` returns: the same fields, names and values as
//! `asyncify inspect --json` prints.

use asyncify_transform::inspect::{explain_import, Interface, Item};
use asyncify_transform::{InstrumentedFunction, Options, Output};
use serde::Serialize;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    input_bytes: usize,
    functions: u32,
    output_bytes: usize,
    growth: f64,
    instrumented: usize,
    suspension_points: u64,
    frames: Frames,
    warnings: Vec<String>,
    imports: Vec<Entry>,
    exports: Vec<Entry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    why: Vec<Why>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instrumented_functions: Option<Vec<Function>>,
}

/// An import (with its module) or an export (module left out).
#[derive(Debug, Serialize)]
struct Entry {
    #[serde(skip_serializing_if = "String::is_empty")]
    module: String,
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

/// Locals per suspension point and frame sizes, largest and mean.
#[derive(Debug, Serialize)]
struct Frames {
    max_saved_locals: u32,
    mean_saved_locals: f64,
    max_live_locals: u32,
    mean_live_locals: f64,
    max_frame_bytes: u32,
    mean_frame_bytes: f64,
}

/// The answer to one `why` name.
#[derive(Debug, Serialize)]
struct Why {
    function: String,
    instrumented: bool,
    chain: Vec<String>,
    /// For an import: whether calls to it may suspend, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    import: Option<String>,
}

/// One instrumented function, with `functions: true`.
#[derive(Debug, Serialize)]
struct Function {
    index: u32,
    name: Option<String>,
    points: u32,
    saved_locals: u32,
    frame_bytes: u32,
    saved_per_point: Vec<u32>,
    live_per_point: Vec<u32>,
}

impl Report {
    /// Builds the report from the module's interface and the transform's
    /// output.
    ///
    /// # Errors
    ///
    /// A message (the command line's) when a `why` name is neither a function
    /// name from the name section nor a function index.
    pub fn new(
        output: &Output,
        interface: Interface,
        why: &[String],
        functions: bool,
        options: &Options,
    ) -> Result<Report, String> {
        let func_imports: Vec<String> = interface
            .imports
            .iter()
            .filter(|i| i.ty.starts_with("func"))
            .map(|i| format!("{}.{}", i.module, i.name))
            .collect();
        let entry = |i: Item| Entry {
            module: i.module,
            name: i.name,
            ty: i.ty,
        };
        let instrumented = &output.instrumented;
        let saved = || instrumented.iter().flat_map(|f| f.saved_per_point.iter());
        let live = || instrumented.iter().flat_map(|f| f.live_per_point.iter());
        let points = saved().count().max(1) as f64;
        let mean = |sum: f64, count: f64| sum / count;
        let frames = Frames {
            max_saved_locals: saved().copied().max().unwrap_or(0),
            mean_saved_locals: mean(saved().map(|&n| f64::from(n)).sum(), points),
            max_live_locals: live().copied().max().unwrap_or(0),
            mean_live_locals: mean(live().map(|&n| f64::from(n)).sum(), points),
            max_frame_bytes: instrumented
                .iter()
                .map(|f| f.frame_bytes)
                .max()
                .unwrap_or(0),
            mean_frame_bytes: mean(
                instrumented.iter().map(|f| f64::from(f.frame_bytes)).sum(),
                instrumented.len().max(1) as f64,
            ),
        };
        let why = why
            .iter()
            .map(|name| {
                let index = find_function(output, name).ok_or_else(|| {
                    format!(
                        "no function is named `{name}` (give a name from the name section or \
                         an index)"
                    )
                })?;
                let chain = output.why(index);
                let import = func_imports
                    .get(index as usize)
                    .map(|import| explain_import(import, options));
                Ok(Why {
                    function: name.clone(),
                    instrumented: !chain.is_empty(),
                    chain,
                    import,
                })
            })
            .collect::<Result<_, String>>()?;
        let row = |f: &InstrumentedFunction| Function {
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
            functions: output.function_count,
            instrumented: instrumented.len(),
            suspension_points: instrumented.iter().map(|f| u64::from(f.points)).sum(),
            imports: interface.imports.into_iter().map(entry).collect(),
            exports: interface.exports.into_iter().map(entry).collect(),
            frames,
            warnings: output.warnings.clone(),
            why,
            instrumented_functions: functions.then(|| instrumented.iter().map(row).collect()),
        })
    }
}

/// A function by name-section name (a leading `$` is allowed), or by index.
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
