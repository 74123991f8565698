//! Differential test driver: runs a module and its asyncify-instrumented
//! version under wasmtime with deterministic host imports, suspends and
//! resumes the instrumented one through the asyncify ABI, and compares what
//! both did.
//!
//! Every function import becomes a host function that logs its call and
//! returns results derived from a hash of its name, arguments and call
//! number. For the instrumented module a [`Schedule`] decides which calls
//! suspend: the host computes and logs the result, calls
//! `asyncify_start_unwind`, and returns zeros; the driver then stops the
//! unwind, starts a rewind and calls the same export again, and the import,
//! seeing state 2, stops the rewind and returns the saved result. An
//! [`Outcome`] (results, traps, import log, memories, globals) of each run is
//! compared with [`compare`].
//!
//! [`check`] instruments with this project's transform, or with Binaryen's
//! `wasm-opt --asyncify` when `ASYNCIFY_TESTS_INSTRUMENTER=binaryen` is set:
//! running the suite that way checks the driver and the tests against the
//! reference (what Binaryen cannot do is skipped with a notice).
//!
//! ```no_run
//! use asyncify_tests::{check, Options};
//! check(
//!     r#"(module
//!         (import "env" "f" (func $f (param i32) (result i32)))
//!         (memory (export "memory") 1)
//!         (func (export "run") (param i32) (result i32)
//!           (i32.add (local.get 0) (call $f (local.get 0)))))"#,
//!     &Options::default(),
//!     &[("run", vec![5.into()])],
//! );
//! ```

use std::sync::OnceLock;

use wasmtime::{Config, Engine};

pub mod binaryen;
mod check;
mod compare;
pub mod features;
mod host;
mod imports;
pub mod interface;
mod linked;
mod run;
mod schedule;
mod value;

pub use asyncify_transform::{Error, Options};
pub use check::{
    buffer_per, check, instrumented_names, may_suspend_per, print_wasm, summary, Check,
    Instrumenter, Report,
};
pub use compare::{compare, Diff};
pub use host::{ImportCall, SuspendPredicate, RUNTIME_MODULE};
pub use interface::Interface;
pub use linked::run_linked;
pub use run::{is_runtime_export, run, BufferSpec, CallOutcome, Failure, Outcome, RunConfig};
pub use schedule::{host_results, Schedule};
pub use value::{RefValue, Value};
pub use wasmtime::{Val, V128};

/// The one engine all runs share (compiling is the slow part; one engine
/// keeps its caches warm). Every feature a test module may use is on.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .wasm_simd(true)
            .wasm_relaxed_simd(true)
            .wasm_multi_value(true)
            .wasm_bulk_memory(true)
            .wasm_reference_types(true)
            .wasm_function_references(true)
            .wasm_gc(true)
            .wasm_multi_memory(true)
            .wasm_memory64(true)
            .wasm_threads(true)
            .shared_memory(true)
            .wasm_tail_call(true)
            .wasm_exceptions(true)
            .wasm_extended_const(true);
        match Engine::new(&config) {
            Ok(e) => e,
            Err(e) => panic!("wasmtime rejects the test configuration: {e:?}"),
        }
    })
}

/// Parses wat text (or passes a binary through), panicking on bad text:
/// test modules are written by hand.
pub fn wasm(module: &str) -> Vec<u8> {
    match wat::parse_str(module) {
        Ok(b) => b,
        Err(e) => panic!("test module does not parse: {e}"),
    }
}
