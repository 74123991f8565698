//! Instantiations per second through `asyncify-linker`: resolving imports by
//! name each time (`Linker::instantiate`) against resolving them once
//! (`Linker::instantiate_pre`, then `InstancePre::instantiate`), each with a
//! new store per instance, as a server that makes an instance per request
//! does.
//!
//! The module is instrumented by `asyncify_transform` with default options
//! and imports `SYNC` synchronous host functions, `ASYNC` async imports and
//! nothing else; it exports its memory and one function that calls every
//! import. The linker also holds `EXTRA` other definitions (as a linker with
//! WASI and an application's functions does).
//!
//! Run: `cargo run --release -p asyncify-benches --bin instantiate_pre -- [--quick]`
//!
//! Prints one markdown section: for both ways, the median over rounds (the
//! two take turns) of instantiations per second of CPU time on this thread,
//! and the ratio.

use std::fmt::Write as _;

use asyncify_benches::sections::{median, thousands, thread_cpu_time};
use asyncify_linker::{AsyncCaller, Linker};
use wasmtime::{Engine, Module, Result, Store};

/// Synchronous host functions the module imports.
const SYNC: usize = 8;
/// Async imports the module imports.
const ASYNC: usize = 4;
/// Definitions in the linker that the module does not import.
const EXTRA: usize = 40;

fn module_wat() -> String {
    let mut wat = String::from("(module\n");
    for i in 0..SYNC {
        let _ = writeln!(
            wat,
            "  (import \"host\" \"sync{i}\" (func $s{i} (param i32) (result i32)))"
        );
    }
    for i in 0..ASYNC {
        let _ = writeln!(
            wat,
            "  (import \"host\" \"async{i}\" (func $a{i} (param i32) (result i32)))"
        );
    }
    wat.push_str("  (memory (export \"memory\") 1)\n");
    wat.push_str("  (func (export \"run\") (param $x i32) (result i32)\n");
    for i in 0..SYNC {
        let _ = writeln!(wat, "    (local.set $x (call $s{i} (local.get $x)))");
    }
    for i in 0..ASYNC {
        let _ = writeln!(wat, "    (local.set $x (call $a{i} (local.get $x)))");
    }
    wat.push_str("    (local.get $x)))\n");
    wat
}

fn linker(engine: &Engine) -> Result<Linker<()>> {
    let mut linker = Linker::new(engine);
    for i in 0..SYNC {
        linker.func_wrap("host", &format!("sync{i}"), |x: i32| x + 1)?;
    }
    for i in 0..ASYNC {
        linker.func_wrap_async(
            "host",
            &format!("async{i}"),
            |_: AsyncCaller<()>, x: i32| async move { Ok(x + 1) },
        )?;
    }
    for i in 0..EXTRA {
        linker.func_wrap("other", &format!("f{i}"), |x: i32| x)?;
    }
    Ok(linker)
}

/// Instantiations per second of thread CPU time, `n` at a time.
fn rate(n: u32, mut instantiate: impl FnMut() -> Result<()>) -> Result<f64> {
    let start = thread_cpu_time();
    for _ in 0..n {
        instantiate()?;
    }
    let spent = thread_cpu_time() - start;
    Ok(f64::from(n) / spent.as_secs_f64().max(1e-9))
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, per_round) = if quick { (7, 500) } else { (31, 3000) };
    let engine = Engine::default();
    let wasm = asyncify_transform::instrument(module_wat().as_bytes(), &Default::default())?.wasm;
    let module = Module::new(&engine, &wasm)?;
    let linker = linker(&engine)?;
    let pre = linker.instantiate_pre(&module)?;

    // Both ways make working instances: check one of each.
    for instance in [
        linker.instantiate(&mut Store::new(&engine, ()), &module)?,
        pre.instantiate(&mut Store::new(&engine, ()))?,
    ] {
        assert!(instance.is_instrumented());
    }
    let mut store = Store::new(&engine, ());
    let run = pre
        .instantiate(&mut store)?
        .get_typed_func::<i32, i32>(&mut store, "run")?;
    let answer = futures::executor::block_on(run.call_async(&mut store, 0))?;
    assert_eq!(answer, (SYNC + ASYNC) as i32);

    let by_name = || -> Result<()> {
        let mut store = Store::new(&engine, ());
        linker.instantiate(&mut store, &module)?;
        Ok(())
    };
    let resolved = || -> Result<()> {
        let mut store = Store::new(&engine, ());
        pre.instantiate(&mut store)?;
        Ok(())
    };
    rate(per_round, by_name)?; // warm up
    rate(per_round, resolved)?;
    let (mut slow, mut fast, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        eprint!("\rround {}/{rounds}", round + 1);
        let a = rate(per_round, by_name)?;
        let b = rate(per_round, resolved)?;
        slow.push(a);
        fast.push(b);
        ratios.push(b / a);
    }
    eprintln!();
    let (slow, fast, ratio) = (
        median(&slow).unwrap_or(0.0),
        median(&fast).unwrap_or(0.0),
        median(&ratios).unwrap_or(0.0),
    );
    println!("### `InstancePre` against `Linker::instantiate`\n");
    println!(
        "A new store and instance per instantiation; the module imports {SYNC} synchronous \
         host functions and {ASYNC} async imports, the linker holds {EXTRA} more definitions. \
         Medians over {rounds} rounds of {per_round} instantiations each, thread CPU time.\n"
    );
    println!("| way | instantiations per second |");
    println!("|---|---|");
    println!("| `Linker::instantiate` | {} |", thousands(slow as u64));
    println!(
        "| `InstancePre::instantiate` | {} ({ratio:.2}x) |",
        thousands(fast as u64)
    );
    Ok(())
}
