//! What in the output's shape makes Cranelift slow: compiles one function of
//! an instrumented module alone (every other body `unreachable`, one thread,
//! the CPU time wasmtime's per-function log records bracket, median of
//! several compiles) as it is and with
//! parts of the instrumentation taken out, one part per variant.
//!
//! `compile_shapes ORIGINAL FUNCTION... [--ours FILE] [--rounds N] [--dump DIR]
//! [--passes] [--also NAME=FILE]...`
//!
//! ORIGINAL is instrumented in process with default options unless `--ours`
//! gives the output to study (say, a prototype transform's). The variants
//! are not correct programs; they only show which part of the shape the
//! compile time goes to:
//!
//! - `original`: the function before instrumenting;
//! - `ours`: as instrumented;
//! - `no-unwind-edges`: without the `global.get $state; br_if` after each
//!   call that branches to the shared frame-writing code on unwinding (that
//!   code becomes unreachable, so Cranelift drops it);
//! - `no-dispatch`: without the resume dispatches (`global.get $state; if;
//!   local.get $point; ...; br_table; end`);
//! - `no-prologue`: without the frame pop and local reloads at entry;
//! - `no-dispatch-no-prologue`;
//! - `no-dispatch-of-16-or-more` / `no-dispatch-under-16`: only the
//!   dispatches whose table has at least 16 entries (those of a `switch`'s
//!   cases, mostly) / fewer;
//! - `fold-switch-dispatch`: nothing taken out, but each dispatch in front
//!   of a `switch` folded into the switch's own `br_table` (the shape
//!   proposed in `benches/earlier-measurements.md`, 2026-12-02);
//! - `none` (unwind edges, dispatches and prologue taken out).
//!
//! `--also NAME=FILE` adds another instrumented module (say, a prototype
//! transform's output of ORIGINAL) as a variant named NAME.
//! `--dump DIR` writes each variant's single-function module there;
//! `--passes` prints Cranelift's pass timings of each (first compile) on stderr.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use asyncify_benches::compile_time::{only_body, per_function_with_passes, single_thread_engine};
use asyncify_benches::sections::{duration, ratio, thousands};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasmparser::{BlockType, Operator};

/// A variant that takes nothing out.
const NO_CUT: Cut = Cut {
    unwind_edges: false,
    dispatch: false,
    prologue: false,
    dispatch_at_least: 0,
    dispatch_at_most: 0,
    fold_switches: false,
};

/// The parts of the instrumentation a variant takes out.
#[derive(Clone, Copy, Default)]
struct Cut {
    unwind_edges: bool,
    dispatch: bool,
    prologue: bool,
    /// Take out only the dispatches whose table has at least this many
    /// entries (0: all, when `dispatch`).
    dispatch_at_least: usize,
    /// ... and at most this many (0: no limit).
    dispatch_at_most: usize,
    /// Instead of taking dispatches out, fold each one that stands in front
    /// of a `switch` into the switch's `br_table` (see [`fold_switches`]).
    fold_switches: bool,
}

const VARIANTS: [(&str, Cut); 9] = [
    (
        "ours",
        Cut {
            unwind_edges: false,
            dispatch: false,
            prologue: false,
            ..NO_CUT
        },
    ),
    (
        "no-unwind-edges",
        Cut {
            unwind_edges: true,
            dispatch: false,
            prologue: false,
            ..NO_CUT
        },
    ),
    (
        "no-dispatch",
        Cut {
            unwind_edges: false,
            dispatch: true,
            prologue: false,
            ..NO_CUT
        },
    ),
    (
        "no-prologue",
        Cut {
            unwind_edges: false,
            dispatch: false,
            prologue: true,
            ..NO_CUT
        },
    ),
    (
        "no-dispatch-no-prologue",
        Cut {
            unwind_edges: false,
            dispatch: true,
            prologue: true,
            ..NO_CUT
        },
    ),
    (
        "no-dispatch-of-16-or-more",
        Cut {
            dispatch: true,
            dispatch_at_least: 16,
            ..NO_CUT
        },
    ),
    (
        "no-dispatch-under-16",
        Cut {
            dispatch: true,
            dispatch_at_most: 15,
            ..NO_CUT
        },
    ),
    (
        "fold-switch-dispatch",
        Cut {
            fold_switches: true,
            ..NO_CUT
        },
    ),
    (
        "none",
        Cut {
            unwind_edges: true,
            dispatch: true,
            prologue: true,
            ..NO_CUT
        },
    ),
];

struct Args {
    original: PathBuf,
    functions: Vec<u32>,
    ours: Option<PathBuf>,
    rounds: usize,
    dump: Option<PathBuf>,
    passes: bool,
    /// More instrumented modules to compare (`--also NAME=FILE`).
    also: Vec<(String, Vec<u8>)>,
}

fn parse_args() -> Result<Args> {
    let mut original = None;
    let mut functions = Vec::new();
    let mut ours = None;
    let mut rounds = 3;
    let mut dump = None;
    let mut passes = false;
    let mut also = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ours" => ours = Some(PathBuf::from(args.next().context("--ours needs a file")?)),
            "--passes" => passes = true,
            "--also" => {
                let spec = args.next().context("--also needs NAME=FILE")?;
                let (name, file) = spec.split_once('=').context("--also needs NAME=FILE")?;
                let wasm = std::fs::read(file).with_context(|| format!("reading {file}"))?;
                also.push((name.to_string(), wasm));
            }
            "--dump" => dump = Some(PathBuf::from(args.next().context("--dump needs a dir")?)),
            "--rounds" => {
                let n = args.next().context("--rounds needs a number")?;
                rounds = n
                    .parse::<usize>()
                    .with_context(|| format!("--rounds {n}"))?
                    .max(1);
            }
            "-h" | "--help" => {
                println!(
                    "usage: compile_shapes ORIGINAL FUNCTION... [--ours FILE] [--rounds N] \
                     [--dump DIR] [--passes] [--also NAME=FILE]..."
                );
                std::process::exit(0);
            }
            flag if flag.starts_with("--") => bail!("unknown flag `{flag}` (try --help)"),
            _ if original.is_none() => original = Some(PathBuf::from(arg)),
            index => functions.push(
                index
                    .parse()
                    .with_context(|| format!("`{index}` is not a function index"))?,
            ),
        }
    }
    Ok(Args {
        original: original.context("usage: compile_shapes ORIGINAL FUNCTION... (try --help)")?,
        functions,
        ours,
        rounds,
        dump,
        passes,
        also,
    })
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let original = std::fs::read(&args.original)
        .with_context(|| format!("reading {}", args.original.display()))?;
    let ours = match &args.ours {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => {
            asyncify_transform::instrument(&original, &Default::default())
                .context("instrumenting")?
                .wasm
        }
    };
    let engine = single_thread_engine()?;
    println!(
        "| function | variant | body | compile (CPU, median of {}) | vs original |",
        args.rounds
    );
    println!("|---:|---|---:|---:|---:|");
    for &function in &args.functions {
        let mut modules = vec![(
            "original".to_string(),
            only_body(&original, function, None)?,
        )];
        for (name, cut) in VARIANTS {
            let rewrite = move |body: &wasmparser::FunctionBody<'_>| cut_body(body, cut);
            modules.push((
                name.to_string(),
                only_body(&ours, function, Some(&rewrite))?,
            ));
        }
        for extra in &args.also {
            modules.push((extra.0.clone(), only_body(&extra.1, function, None)?));
        }
        if let Some(dir) = &args.dump {
            std::fs::create_dir_all(dir)?;
            for (name, (module, _)) in &modules {
                std::fs::write(dir.join(format!("{function}.{name}.wasm")), module)?;
            }
        }
        let medians = measure(&engine, function, &modules, args.rounds, args.passes)?;
        for ((name, (_, body_bytes)), median) in modules.iter().zip(&medians) {
            println!(
                "| {function} | {name} | {} B | {} | {} |",
                thousands(*body_bytes as u64),
                duration(*median),
                ratio(median.as_secs_f64() / medians[0].as_secs_f64())
            );
        }
    }
    Ok(())
}

/// The median compile time of `function` in each module, rounds interleaved
/// (one compile of each module per round, so a busy spell hits all alike).
fn measure(
    engine: &wasmtime::Engine,
    function: u32,
    modules: &[(String, (Vec<u8>, usize))],
    rounds: usize,
    passes: bool,
) -> Result<Vec<std::time::Duration>> {
    let mut samples = vec![Vec::new(); modules.len()];
    for round in 0..rounds {
        for (i, (name, (module, _))) in modules.iter().enumerate() {
            let (each, tables) =
                per_function_with_passes(engine, module).with_context(|| name.clone())?;
            samples[i].push(each.get(&function).copied().unwrap_or_default());
            if round == 0 && passes {
                if let Some(table) = tables.get(&function) {
                    eprintln!("{function} {name}:\n{table}");
                }
            }
        }
    }
    Ok(samples
        .into_iter()
        .map(|mut runs| {
            runs.sort();
            runs[runs.len() / 2]
        })
        .collect())
}

/// A body with the parts `cut` names removed, encoded (without its size).
fn cut_body(body: &wasmparser::FunctionBody<'_>, cut: Cut) -> Result<Vec<u8>> {
    let mut ops = Vec::new();
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        ops.push(reader.read()?);
    }
    let mut skip = removed(&ops, cut);
    let folded = if cut.fold_switches {
        fold_switches(&ops, &mut skip)
    } else {
        std::collections::BTreeMap::new()
    };
    let mut reencoder = RoundtripReencoder;
    let mut function = reencoder
        .new_function_with_parsed_locals(body)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    for (i, op) in ops.into_iter().enumerate() {
        if let Some(instructions) = folded.get(&i) {
            for instruction in instructions {
                function.instruction(instruction);
            }
        } else if !skip[i] {
            let instruction = reencoder
                .instruction(op)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            function.instruction(&instruction);
        }
    }
    let mut bytes = Vec::new();
    wasm_encoder::Encode::encode(&function, &mut bytes);
    // `Function::encode` writes the size first; the code section adds its own.
    let mut size_reader = wasmparser::BinaryReader::new(&bytes, 0);
    size_reader.read_var_u32()?;
    Ok(bytes[size_reader.original_position() as usize..].to_vec())
}

/// Which operators the cut removes.
fn removed(ops: &[Operator<'_>], cut: Cut) -> Vec<bool> {
    let mut skip = vec![false; ops.len()];
    // The state global: the body starts `global.get $state; if` (the prologue).
    let state = match (ops.first(), ops.get(1)) {
        (Some(Operator::GlobalGet { global_index }), Some(Operator::If { .. })) => *global_index,
        _ => return skip,
    };
    let mut i = 0;
    while i + 1 < ops.len() {
        let is_state =
            matches!(ops[i], Operator::GlobalGet { global_index } if global_index == state);
        if !is_state {
            i += 1;
            continue;
        }
        let after_call = i > 0
            && matches!(
                ops[i - 1],
                Operator::Call { .. } | Operator::CallIndirect { .. } | Operator::CallRef { .. }
            );
        match &ops[i + 1] {
            Operator::BrIf { .. } if after_call && cut.unwind_edges => {
                skip[i] = true;
                skip[i + 1] = true;
                i += 2;
            }
            Operator::If {
                blockty: BlockType::Empty,
            } => {
                let Some(end) = matching_end(ops, i + 1) else {
                    i += 1;
                    continue;
                };
                let inner = &ops[i + 2..end];
                let is_prologue = i == 0;
                let is_dispatch = !is_prologue
                    && matches!(inner.first(), Some(Operator::LocalGet { .. }))
                    && inner
                        .iter()
                        .any(|op| matches!(op, Operator::BrTable { .. } | Operator::BrIf { .. }))
                    && !inner.iter().any(|op| {
                        matches!(
                            op,
                            Operator::Call { .. }
                                | Operator::Else
                                | Operator::LocalSet { .. }
                                | Operator::I32Store { .. }
                        )
                    });
                let entries = inner
                    .iter()
                    .map(|op| match op {
                        Operator::BrTable { targets } => targets.len() as usize + 1,
                        _ => 0,
                    })
                    .sum::<usize>()
                    .max(1);
                let sized = entries >= cut.dispatch_at_least
                    && (cut.dispatch_at_most == 0 || entries <= cut.dispatch_at_most);
                if (is_prologue && cut.prologue) || (is_dispatch && cut.dispatch && sized) {
                    skip[i..=end].iter_mut().for_each(|s| *s = true);
                    i = end + 1;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    skip
}

/// The shape recommended for a dispatch in front of a `switch`, written over
/// the current one: the dispatch (`global.get $state; if; local.get $point;
/// [i32.const k; i32.sub;] br_table D; end`) is marked in `skip`, and the
/// switch's `br_table S (n entries) default` that follows it (after block
/// openings and the selector's code only) becomes `local.get $point;
/// i32.const n+1-k; i32.add; global.get $state; i32.eqz; select; br_table
/// S default D'`, D' being D's targets seen from the switch. So a rewind
/// reaches the case through the switch's own table and the case blocks keep
/// one predecessor. (The transform would also compute the selector only on
/// the normal path and send selectors of n or more to the default; neither
/// changes the compile much.) Returns the replacement of each switch.
fn fold_switches<'a>(
    ops: &[Operator<'a>],
    skip: &mut [bool],
) -> std::collections::BTreeMap<usize, Vec<wasm_encoder::Instruction<'a>>> {
    use wasm_encoder::Instruction;
    let mut folded = std::collections::BTreeMap::new();
    let state = match (ops.first(), ops.get(1)) {
        (Some(Operator::GlobalGet { global_index }), Some(Operator::If { .. })) => *global_index,
        _ => return folded,
    };
    let mut i = 2;
    while i + 1 < ops.len() {
        let dispatch = matches!(ops[i], Operator::GlobalGet { global_index } if global_index == state)
            && matches!(
                ops[i + 1],
                Operator::If {
                    blockty: BlockType::Empty
                }
            );
        let Some(end) = dispatch.then(|| matching_end(ops, i + 1)).flatten() else {
            i += 1;
            continue;
        };
        // local.get P; [i32.const k; i32.sub;] br_table D
        let (point, k, table) = match &ops[i + 2..end] {
            [Operator::LocalGet { local_index }, Operator::BrTable { targets }] => {
                (*local_index, 0, targets)
            }
            [Operator::LocalGet { local_index }, Operator::I32Const { value }, Operator::I32Sub, Operator::BrTable { targets }] => {
                (*local_index, *value, targets)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let mut dispatch_targets: Vec<u32> = table.targets().filter_map(|t| t.ok()).collect();
        dispatch_targets.push(table.default());
        // Only block openings and straight-line code up to the switch.
        let mut depth = 0u32;
        let mut switch = None;
        for (j, op) in ops.iter().enumerate().skip(end + 1) {
            match op {
                Operator::Block { .. } => depth += 1,
                Operator::BrTable { targets } => {
                    switch = Some((j, targets));
                    break;
                }
                Operator::Loop { .. }
                | Operator::If { .. }
                | Operator::Else
                | Operator::End
                | Operator::Br { .. }
                | Operator::BrIf { .. }
                | Operator::Return
                | Operator::Unreachable
                | Operator::Call { .. }
                | Operator::CallIndirect { .. } => break,
                _ => {}
            }
        }
        // A target 0 resumes right after the dispatch: not a case.
        let Some((at, switch_table)) = switch.filter(|_| dispatch_targets.iter().all(|&t| t > 0))
        else {
            i = end + 1;
            continue;
        };
        let mut entries: Vec<u32> = switch_table.targets().filter_map(|t| t.ok()).collect();
        let n = entries.len() as i32;
        entries.push(switch_table.default());
        entries.extend(dispatch_targets.iter().map(|&t| t - 1 + depth));
        skip[i..=end].iter_mut().for_each(|s| *s = true);
        folded.insert(
            at,
            vec![
                Instruction::LocalGet(point),
                Instruction::I32Const(n + 1 - k),
                Instruction::I32Add,
                Instruction::GlobalGet(state),
                Instruction::I32Eqz,
                Instruction::Select,
                Instruction::BrTable(entries.into(), switch_table.default()),
            ],
        );
        i = end + 1;
    }
    folded
}

/// The `end` closing the block, loop or if opened at `open`.
fn matching_end(ops: &[Operator<'_>], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, op) in ops.iter().enumerate().skip(open) {
        match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. } => depth += 1,
            Operator::End => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}
