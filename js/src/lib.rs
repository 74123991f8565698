//! `asyncify-transform` for JavaScript hosts.
//!
//! Built for `wasm32-unknown-unknown` (see `js/build.sh`), this crate is the
//! `.wasm` file of the npm package in this directory. It exports a small C ABI
//! that the hand-written glue (`js/lib/core.js`) drives:
//!
//! | export | what it does |
//! |---|---|
//! | `asyncify_alloc(len) -> ptr` | reserves `len` bytes for an argument |
//! | `asyncify_free(ptr, len)` | releases them |
//! | `asyncify_instrument(in, in_len, opts, opts_len) -> status` | instruments the input |
//! | `asyncify_inspect(in, in_len, opts, opts_len) -> status` | the `inspect --json` report |
//! | `asyncify_result_ptr()`, `asyncify_result_len()` | the last call's result |
//! | `asyncify_warnings_ptr()`, `asyncify_warnings_len()` | its warnings, a JSON array of strings |
//! | `asyncify_result_free()` | drops the last result |
//! | `asyncify_panic_ptr()`, `asyncify_panic_len()` | the message of a panic, after a trap |
//!
//! The status is 0 on success, when the result is the instrumented module or
//! the report (UTF-8 JSON), and 1 on failure, when the result is a JSON
//! object `{"kind": ..., "message": ...}` whose message is the one the
//! `asyncify` command line prints. Options arrive as UTF-8 JSON (see
//! [`options::parse`]).
//!
//! The same functions are available to Rust as [`instrument`] and
//! [`inspect`], which is how they are tested natively.

pub mod options;
mod report;

#[cfg(target_arch = "wasm32")]
mod abi;

use asyncify_transform::Error;
use serde::Serialize;

pub use options::{Call, CallOptions};

/// A failure, as the JavaScript glue turns it into an `AsyncifyError`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The [`Error`] variant (`InvalidInput`, `Options`, `Limit`, ...), or
    /// `Why` for a `why` name that names no function.
    pub kind: &'static str,
    /// The one-paragraph message, as the command line prints it after
    /// `cannot instrument FILE: `.
    pub message: String,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let kind = match &error {
            Error::InvalidInput { .. } => "InvalidInput",
            Error::InvalidText(_) => "InvalidText",
            Error::AlreadyInstrumented(_) => "AlreadyInstrumented",
            Error::Unsupported { .. } => "Unsupported",
            Error::RuntimeImportType(_) => "RuntimeImportType",
            Error::Options(_) => "Options",
            Error::ListFile { .. } => "ListFile",
            Error::Limit(_) => "Limit",
            Error::InvalidOutput(_) => "InvalidOutput",
            // The enum may grow; the message still says what happened.
            #[allow(unreachable_patterns)]
            _ => "Error",
        };
        Failure {
            kind,
            message: error.to_string(),
        }
    }
}

/// What `instrument` returns: the module and the warnings the command line
/// would print.
#[derive(Debug, Clone)]
pub struct Instrumented {
    /// The instrumented module.
    pub wasm: Vec<u8>,
    /// Warnings, one paragraph each.
    pub warnings: Vec<String>,
}

/// Instruments `input` (binary or text) with options given as the JSON of the
/// JavaScript options object.
///
/// # Errors
///
/// A [`Failure`] for bad options or a module the transform refuses.
pub fn instrument(input: &[u8], options_json: &str) -> Result<Instrumented, Failure> {
    let call = options::parse(options_json, Call::Instrument)?;
    let output = asyncify_transform::instrument(input, &call.options)?;
    Ok(Instrumented {
        wasm: output.wasm,
        warnings: output.warnings,
    })
}

/// The report of `asyncify inspect --json` for `input`, as JSON text.
///
/// # Errors
///
/// A [`Failure`] for bad options, a module the transform refuses, or a `why`
/// name that names no function.
pub fn inspect(input: &[u8], options_json: &str) -> Result<String, Failure> {
    let call = options::parse(options_json, Call::Inspect)?;
    let interface = asyncify_transform::inspect::interface(input)?;
    let output = asyncify_transform::instrument(input, &call.options)?;
    let report = report::Report::new(&output, interface, &call.why, call.functions, &call.options)
        .map_err(|message| Failure {
            kind: "Why",
            message,
        })?;
    Ok(serde_json::to_string(&report).expect("the report serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(module
        (import "env" "sleep" (func $sleep (param i32)))
        (memory 1)
        (func $run (export "run") (call $sleep (i32.const 10))))"#;

    #[test]
    fn instrument_matches_the_library() {
        let ours = instrument(WAT.as_bytes(), r#"{"imports": "env.sleep"}"#).unwrap();
        let options = asyncify_transform::Options {
            imports: vec!["env.sleep".into()],
            ..Default::default()
        };
        let theirs = asyncify_transform::instrument(WAT.as_bytes(), &options).unwrap();
        assert_eq!(ours.wasm, theirs.wasm);
        assert_eq!(ours.warnings, theirs.warnings);
    }

    #[test]
    fn inspect_reports() {
        let json = inspect(WAT.as_bytes(), r#"{"why": "run", "functions": true}"#).unwrap();
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["instrumented"], 1);
        assert_eq!(
            report["why"][0]["chain"][0],
            "$run calls import env.sleep, which may suspend"
        );
        assert_eq!(report["instrumented_functions"][0]["name"], "run");
        assert_eq!(report["imports"][0]["module"], "env");
        assert!(report["exports"][0].get("module").is_none());
        let failure = inspect(WAT.as_bytes(), r#"{"why": "nope"}"#).unwrap_err();
        assert_eq!(failure.kind, "Why");
        assert!(failure.message.starts_with("no function is named `nope`"));
    }

    #[test]
    fn failures_carry_the_message() {
        let failure = instrument(b"\0asm\x02\0\0\0", "").unwrap_err();
        assert_eq!(failure.kind, "InvalidInput");
        assert!(failure
            .message
            .starts_with("the input is not a valid WebAssembly module"));
        let failure = instrument(WAT.as_bytes(), r#"{"onlyList": "a", "addList": "b"}"#);
        assert_eq!(failure.unwrap_err().kind, "Options");
    }
}
