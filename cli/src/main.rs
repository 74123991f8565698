//! The `asyncify` command: a thin front end to `asyncify-transform`.
//!
//! This crate only parses arguments, reads and writes files and prints; the
//! transform itself lives in the `asyncify-transform` library.

mod cache;
mod dylink;
mod files;
mod inspect;
mod instrument;
mod message;
mod progress;
mod run;
mod wasm_opt;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Make WebAssembly modules able to pause and resume their call stack, so that
/// synchronous guest code can call asynchronous host functions.
///
/// `asyncify instrument` applies the asyncify transform (Binaryen's ABI): the
/// output is a drop-in replacement for `wasm-opt --asyncify` output, so
/// existing runtimes drive it unchanged.
#[derive(Debug, Parser)]
#[command(name = "asyncify", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Instrument a module so it can unwind and rewind its call stack
    /// (what `wasm-opt --asyncify` does).
    Instrument(instrument::InstrumentArgs),
    /// Show a module's imports and exports, what the transform would do to it,
    /// and why a function is instrumented.
    Inspect(inspect::InspectArgs),
    /// Run a WASI command (or call one export) on wasmtime through
    /// asyncify-linker, optionally instrumenting it first.
    Run(run::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(wasm_opt::normalize_args(std::env::args_os().collect()));
    let result = match cli.command {
        Command::Instrument(args) => instrument::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Run(args) => return run::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", message::format_error(&error));
            ExitCode::FAILURE
        }
    }
}
