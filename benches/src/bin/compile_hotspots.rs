//! Which functions of a module are slow for wasmtime (Cranelift) to compile.
//!
//! `cargo run --release -p asyncify-benches --bin compile_hotspots -- MODULE [INDEX...]`
//!
//! For each function index given (default: the 10 largest bodies), builds a
//! copy of MODULE where every other body is `unreachable` and times
//! `Module::new` on it, single-threaded (the workspace builds wasmtime without parallel
//! compilation). Used to find instrumented functions
//! whose shape makes Cranelift's SSA construction or register allocation
//! slow.

use std::time::Instant;

use wasm_encoder::{CodeSection, Function, Instruction, RawSection};
use wasmparser::{Parser, Payload};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: MODULE [INDEX...]"))?;
    let wanted: Vec<u32> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    let wasm = std::fs::read(&path)?;

    // Defined function bodies (by defined index) and the number of imports.
    let mut imported = 0u32;
    let mut bodies: Vec<(usize, usize)> = Vec::new();
    for payload in Parser::new(0).parse_all(&wasm) {
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
                bodies.push((range.start as usize, range.end as usize));
            }
            _ => {}
        }
    }
    let targets: Vec<u32> = if wanted.is_empty() {
        let mut by_size: Vec<u32> = (0..bodies.len() as u32).collect();
        by_size.sort_by_key(|&i| std::cmp::Reverse(bodies[i as usize].1 - bodies[i as usize].0));
        by_size.truncate(10);
        by_size.into_iter().map(|i| i + imported).collect()
    } else {
        wanted
    };

    let config = wasmtime::Config::new();
    let engine = wasmtime::Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    for target in targets {
        let keep = target
            .checked_sub(imported)
            .filter(|&i| (i as usize) < bodies.len())
            .ok_or_else(|| anyhow::anyhow!("{target} is not a defined function"))?;
        let module = only_body(&wasm, keep as usize)?;
        let (start, end) = bodies[keep as usize];
        let shape = shape(&wasm[start..end], start)?;
        let started = Instant::now();
        wasmtime::Module::new(&engine, &module).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        println!(
            "function {target}: {} body bytes, {shape}, compiled in {:.2?}",
            end - start,
            started.elapsed()
        );
    }
    Ok(())
}

/// Locals, operators, constructs and the deepest nesting of one body.
fn shape(body: &[u8], offset: usize) -> anyhow::Result<String> {
    let body = wasmparser::FunctionBody::new(wasmparser::BinaryReader::new(body, offset as u64));
    let mut locals = 0u32;
    for l in body.get_locals_reader()? {
        locals += l?.0;
    }
    let (mut ops, mut constructs, mut calls, mut depth, mut deepest, mut branches) =
        (0, 0, 0, 0u32, 0u32, 0);
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        ops += 1;
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
    Ok(format!(
        "{locals} locals, {ops} operators, {constructs} blocks/loops/ifs (depth {deepest}), \
         {branches} branches, {calls} calls"
    ))
}

/// `wasm` with every defined body but number `keep` replaced by `unreachable`.
fn only_body(wasm: &[u8], keep: usize) -> anyhow::Result<Vec<u8>> {
    let mut out = wasm_encoder::Module::new();
    let mut index = 0;
    let mut code = CodeSection::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match &payload {
            Payload::Version { .. } | Payload::End(_) => {}
            Payload::CodeSectionStart { .. } => {}
            Payload::CodeSectionEntry(body) => {
                if index == keep {
                    let r = body.range();
                    code.raw(&wasm[r.start as usize..r.end as usize]);
                } else {
                    let mut f = Function::new([]);
                    f.instruction(&Instruction::Unreachable);
                    f.instruction(&Instruction::End);
                    code.function(&f);
                }
                index += 1;
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    if index > 0 && !code.is_empty() {
                        out.section(&code);
                        code = CodeSection::new();
                    }
                    out.section(&RawSection {
                        id,
                        data: &wasm[range.start as usize..range.end as usize],
                    });
                }
            }
        }
    }
    if !code.is_empty() {
        out.section(&code);
    }
    Ok(out.finish())
}
