//! Timing wasmtime's (Cranelift's) compile of a module and of each of its
//! functions, on one thread, in CPU time: what `compile_whole`,
//! `compile_hotspots` and `compile_shapes` share.
//!
//! Whole-module times come from [`compile`] on an engine from
//! [`single_thread_engine`]. Per-function times come from wasmtime's own log
//! records around each function (`compiling Wasm function` ..
//! `translated to CLIF in`, `finish compiling` .. `compiled in`), timed with
//! this thread's CPU clock by a logger that [`per_function`] turns on for one
//! compile only, so other compiles carry no logging cost.
//!
//! ```no_run
//! use asyncify_benches::compile_time;
//!
//! let wasm = std::fs::read("module.wasm")?;
//! let engine = compile_time::single_thread_engine()?;
//! let whole = compile_time::compile(&engine, &wasm)?;
//! let each = compile_time::per_function(&engine, &wasm)?;
//! println!("{:?} in all; function 7 took {:?}", whole.cpu, each.get(&7));
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::sections::thread_cpu_time as thread_cpu;
use wasm_encoder::{CodeSection, Function, Instruction, RawSection};
use wasmparser::{Parser, Payload};

/// A wasmtime engine that compiles on the calling thread only
/// (`parallel_compilation(false)`), so this thread's CPU clock sees all of
/// the work; otherwise wasmtime's defaults.
pub fn single_thread_engine() -> Result<wasmtime::Engine> {
    let mut config = wasmtime::Config::new();
    config.parallel_compilation(false);
    wasmtime::Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// The build this code runs in, for a section's text.
pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "a dev-profile build (wasmtime at opt-level 2 with debug assertions on; ratios hold, \
         absolute times are higher than a release build's)"
    } else {
        "a release build"
    }
}

/// One whole-module compile's cost.
#[derive(Debug, Clone, Copy)]
pub struct Compiled {
    /// CPU time of the compiling thread.
    pub cpu: Duration,
    /// Wall time.
    pub wall: Duration,
    /// Size of the compiled artifact (`Engine::precompile_module`'s bytes).
    pub artifact: usize,
}

impl Compiled {
    /// This compile's CPU time over `base`'s.
    pub fn ratio_to(&self, base: &Compiled) -> f64 {
        self.cpu.as_secs_f64() / base.cpu.as_secs_f64()
    }
}

/// Compiles `wasm` once (`Engine::precompile_module`) and measures it.
pub fn compile(engine: &wasmtime::Engine, wasm: &[u8]) -> Result<Compiled> {
    let (cpu, wall) = (thread_cpu(), Instant::now());
    let artifact = engine
        .precompile_module(wasm)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(Compiled {
        cpu: thread_cpu().saturating_sub(cpu),
        wall: wall.elapsed(),
        artifact: artifact.len(),
    })
}

/// The logger behind [`per_function`].
struct FunctionClock {
    state: Mutex<ClockState>,
}

struct ClockState {
    /// The function being compiled and the CPU time when it started.
    running: Option<(u32, Duration)>,
    /// CPU time per function index, summed over both phases.
    spent: BTreeMap<u32, Duration>,
    /// Cranelift's own pass timings per function index (both phases' tables).
    passes: BTreeMap<u32, String>,
}

static FUNCTION_CLOCK: FunctionClock = FunctionClock {
    state: Mutex::new(ClockState {
        running: None,
        spent: BTreeMap::new(),
        passes: BTreeMap::new(),
    }),
};

/// The log target of wasmtime's per-function compile records.
const COMPILER_TARGET: &str = "wasmtime_internal_cranelift::compiler";

/// `N` in a symbol such as `wasm[0]::function[N]` or `"wasm[0]::function[N]::name"`.
fn function_index(text: &str) -> Option<u32> {
    let rest = &text[text.find("::function[")? + "::function[".len()..];
    rest[..rest.find(']')?].parse().ok()
}

impl log::Log for FunctionClock {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.target() == COMPILER_TARGET
    }

    fn log(&self, record: &log::Record) {
        if record.target() != COMPILER_TARGET {
            return;
        }
        let now = thread_cpu();
        let text = record.args().to_string();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if text.starts_with("compiling Wasm function: ") || text.starts_with("finish compiling ") {
            if let Some(index) = function_index(&text) {
                state.running = Some((index, now));
            }
        } else if text.contains("` timing info") {
            if let Some(index) = function_index(&text) {
                let table = state.passes.entry(index).or_default();
                table.push_str(&text);
                table.push('\n');
            }
        } else if text.contains("` translated to CLIF in ") || text.contains("` compiled in ") {
            if let (Some((index, started)), Some(named)) = (state.running, function_index(&text)) {
                if index == named {
                    *state.spent.entry(index).or_default() += now.saturating_sub(started);
                    state.running = None;
                }
            }
        }
    }

    fn flush(&self) {}
}

/// Compiles `wasm` once with the function clock on and returns the CPU time
/// each function's compile took, by function index. Installs the clock as
/// the process's logger on first use (an error if another logger is set).
pub fn per_function(engine: &wasmtime::Engine, wasm: &[u8]) -> Result<BTreeMap<u32, Duration>> {
    Ok(per_function_with_passes(engine, wasm)?.0)
}

/// [`per_function`], and Cranelift's pass timing tables per function (the
/// text wasmtime logs at trace level).
pub fn per_function_with_passes(
    engine: &wasmtime::Engine,
    wasm: &[u8],
) -> Result<(BTreeMap<u32, Duration>, BTreeMap<u32, String>)> {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*INSTALLED.get_or_init(|| log::set_logger(&FUNCTION_CLOCK).is_ok()) {
        bail!("another logger is installed; per-function compile times need their own");
    }
    if let Ok(mut state) = FUNCTION_CLOCK.state.lock() {
        state.running = None;
        state.spent.clear();
        state.passes.clear();
    }
    log::set_max_level(log::LevelFilter::Trace);
    let compiled = engine.precompile_module(wasm);
    log::set_max_level(log::LevelFilter::Off);
    compiled.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (spent, passes) = FUNCTION_CLOCK
        .state
        .lock()
        .map(|mut state| {
            (
                std::mem::take(&mut state.spent),
                std::mem::take(&mut state.passes),
            )
        })
        .unwrap_or_default();
    if spent.is_empty() {
        bail!("wasmtime logged no per-function compile records (did its log target change?)");
    }
    Ok((spent, passes))
}

/// Where the defined function bodies of a module are.
pub struct Bodies {
    /// Imported functions (the index of the first defined one).
    pub imported: u32,
    /// Byte range of each defined body (without its size), by defined index.
    pub ranges: Vec<(usize, usize)>,
}

impl Bodies {
    /// Reads the import and code sections of `wasm`.
    pub fn of(wasm: &[u8]) -> Result<Bodies> {
        let mut imported = 0u32;
        let mut ranges = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload? {
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        if matches!(import?.ty, wasmparser::TypeRef::Func(_)) {
                            imported += 1;
                        }
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let range = body.range();
                    ranges.push((range.start as usize, range.end as usize));
                }
                _ => {}
            }
        }
        Ok(Bodies { imported, ranges })
    }

    /// Size in bytes of defined body number `defined`.
    pub fn size(&self, defined: usize) -> usize {
        self.ranges
            .get(defined)
            .map_or(0, |(start, end)| end - start)
    }

    /// Function indices of the `count` largest bodies, largest first.
    pub fn largest(&self, count: usize) -> Vec<u32> {
        let mut by_size: Vec<u32> = (0..self.ranges.len() as u32).collect();
        by_size.sort_by_key(|&i| std::cmp::Reverse(self.size(i as usize)));
        by_size.truncate(count);
        by_size.into_iter().map(|i| i + self.imported).collect()
    }
}

/// What [`only_body`] puts in place of the kept body: its new bytes (without
/// their size) from the original body.
pub type BodyRewrite<'r> = &'r dyn Fn(&wasmparser::FunctionBody<'_>) -> Result<Vec<u8>>;

/// `wasm` with every defined body but function `function`'s replaced by
/// `unreachable`; that one is copied, or replaced by what `rewrite` returns
/// for it (a body's bytes without their size). Also returns the kept body's
/// size.
pub fn only_body(
    wasm: &[u8],
    function: u32,
    rewrite: Option<BodyRewrite<'_>>,
) -> Result<(Vec<u8>, usize)> {
    let mut imported = 0u32;
    let mut defined = 0u32;
    let mut kept = None;
    let mut out = wasm_encoder::Module::new();
    let mut code = CodeSection::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    if matches!(import?.ty, wasmparser::TypeRef::Func(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::CodeSectionStart { .. } => continue,
            Payload::CodeSectionEntry(body) => {
                if imported + defined == function {
                    let range = body.range();
                    let bytes = match rewrite {
                        None => wasm[range.start as usize..range.end as usize].to_vec(),
                        Some(rewrite) => rewrite(body)?,
                    };
                    kept = Some(bytes.len());
                    code.raw(&bytes);
                } else {
                    let mut stub = Function::new([]);
                    stub.instruction(&Instruction::Unreachable);
                    stub.instruction(&Instruction::End);
                    code.function(&stub);
                }
                defined += 1;
                continue;
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            if !code.is_empty() {
                out.section(&code);
                code = CodeSection::new();
            }
            out.section(&RawSection {
                id,
                data: &wasm[range.start as usize..range.end as usize],
            });
        }
    }
    if !code.is_empty() {
        out.section(&code);
    }
    match kept {
        Some(size) => Ok((out.finish(), size)),
        None => bail!("{function} is not a defined function"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_name_their_function() {
        assert_eq!(function_index("\"wasm[0]::function[26431]\""), Some(26431));
        assert_eq!(
            function_index("`wasm[0]::function[7]::main` compiled in 1ms"),
            Some(7)
        );
        assert_eq!(function_index("wasm[0]::array_to_wasm_trampoline[3]"), None);
    }

    #[test]
    fn times_each_function() {
        let wasm = wat::parse_str(
            "(module (func (result i32) i32.const 1) (func (param i32) (result i32) \
             local.get 0 i32.const 2 i32.add))",
        )
        .unwrap();
        let engine = single_thread_engine().unwrap();
        let each = per_function(&engine, &wasm).unwrap();
        assert_eq!(each.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        let (alone, size) = only_body(&wasm, 1, None).unwrap();
        assert!(size > 0);
        assert_eq!(
            per_function(&engine, &alone).unwrap().keys().count(),
            2,
            "the other body is a stub, still compiled"
        );
    }
}
