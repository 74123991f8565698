//! Rewrites a core WebAssembly module so that it can unwind its call stack into a
//! buffer and rewind it later (the "asyncify" technique), keeping Binaryen's ABI:
//! any runtime that drives `wasm-opt --asyncify` output drives this crate's.
//!
//! ```
//! let wat = r#"(module
//!     (import "env" "sleep" (func $sleep (param i32)))
//!     (memory 1)
//!     (func $run (export "run") (call $sleep (i32.const 10))))"#;
//! let out = asyncify_transform::instrument(wat.as_bytes(), &Default::default()).unwrap();
//! assert!(out.instrumented.iter().any(|f| f.name.as_deref() == Some("run")));
//! ```
//!
//! # Design
//!
//! ## The ABI
//!
//! The contract with the host is in the `asyncify-abi` crate (and in prose in
//! `docs/abi.md`): a state global ([`asyncify_abi::State`]: 0 normal,
//! 1 unwinding, 2 rewinding) and a data global that points at a header of two
//! pointer-sized fields, `cur` and `end` ([`asyncify_abi::header`]); five
//! exported runtime functions ([`asyncify_abi::RuntimeFunction`]) set the state
//! and the pointer, and trap when `cur > end`. A guest may import the same five
//! from `asyncify` to drive itself; those imports become calls of the generated
//! functions. Frames are private to the module: each instrumented function
//! writes its saved locals in its own frame order (a reference as the `i32`
//! index of a table slot), then the point index when it has more than one
//! suspension point, then its owner id when a tail call may suspend
//! ([`asyncify_abi::frame`]).
//!
//! ## The shape of an instrumented function
//!
//! ```text
//! if state == rewinding: pop the frame (cur -= size), load the saved locals and the point index
//! block $unwind            ;; one block per unwind group, innermost first
//!   block $body (result R)
//!     ;; every body (function, block, loop, if, handler) that contains points
//!     ;; starts with a dispatch: while rewinding, branch to the code before
//!     ;; the item that holds the point (br_table, or a range test for an
//!     ;; item that spans many points); values left on the operand stack
//!     ;; before an item are moved into locals so they are saved too
//!     <code> <item: a call that may suspend, or a construct containing one> ...
//!     ;; after each call that may suspend: if state == unwinding, br $unwind(group)
//!   end
//!   return
//! end
//! push the frame (the group's live locals, the point index); return zeros
//! ```
//!
//! Functions that cannot change the state are copied (with indices remapped
//! when imports go, and with state checks after calls under
//! [`Options::asserts`]).
//!
//! ## Phases and files
//!
//! | phase | file | what it does |
//! |---|---|---|
//! | read | `read.rs` | parse and validate the input with every feature, collect imports, names, bodies and a call summary per body |
//! | checks | `pipeline.rs` | refuse what cannot be instrumented (already instrumented, relocatable, names taken), choose the buffer's memory, check `asyncify.*` import types |
//! | analyse | `analysis.rs`, `indirect.rs` | which functions may change the state and why (imports, indirect calls, the add, remove and only lists); in a module closed to function references, which indirect call types can reach a function that changes the state |
//! | plan | `plan.rs`, `liveness.rs` | per function: suspension points, the constructs holding them, stack values to spill, locals live after each point (backward dataflow with loop, branch and exception-handler edges), unwind groups |
//! | layout | `layout.rs` | the output's index spaces, computed once: runtime functions after the input's, then `frame_pop`/`frame_push`, wrappers, trampolines, the host-exception trap; appended types, globals, tables, tags and the secondary memory |
//! | runtime functions | `runtime.rs` | the bodies of the appended functions (the five runtime functions, frame functions, wrappers, trampolines) and the frame ids tail calls share with the rewrite |
//! | rewrite | `rewrite.rs` | emit each body, instrumented or copied, in parallel |
//! | assemble | `emit.rs` | the output's sections through `wasm_encoder`'s `Reencode`: the input's, with the additions appended, and missing sections created in order |
//! | validate | `pipeline.rs`, `limits.rs` | validate the output; an engine limit is reported as [`Error::Limit`], anything else as [`Error::InvalidOutput`] |
//! | report | `pipeline.rs`, [`Output`] | what was instrumented, why, and how large its frames are |
//!
//! ## Beyond Binaryen
//!
//! Binaryen's pass refuses or miscompiles some inputs; this crate handles them:
//! - **Liveness per point**, not per basic block, and unwind groups: nearby
//!   points share the code that writes the frame (the union of their live
//!   locals) unless [`Options::exact_saves`].
//! - **References** (`funcref`, `externref`, typed references) live across a
//!   point: frames are bytes, so each reference type gets an added table (and
//!   two globals, the next free slot and the count of live slots); the frame
//!   holds the slot index.
//! - **Tail calls** that may suspend: frames record their owner's id, and a
//!   rewind re-enters the callee of a tail call through a generated
//!   **trampoline** per result type that dispatches on that id.
//! - **Wrappers**: an import that a tail call inside a `try` reaches, or that
//!   an indirect tail call may reach, gets a small instrumented wrapper that
//!   writes a frame, so a rewind finds its way back into it.
//! - **Exception handlers**: points inside `try_table`, legacy `try` bodies and
//!   `catch`/`catch_all` handlers. A rewind re-enters a handler by throwing
//!   again: the payload is saved, and `catch_all` gets a tag of its own (and a
//!   recorder `try` that notes which tag was caught).
//! - `call_ref`, `asyncify.get_state` imports, 64-bit memories, a secondary
//!   memory, and a check while unwinding: a frame that does not fit is not
//!   written, and the next start/stop function traps.
//!
//! The output is checked by snapshot tests (`tests/snapshots/`, one per
//! mechanism) and, differentially, against Binaryen by the `asyncify-tests` crate.

mod analysis;
mod emit;
mod error;
mod indirect;
pub mod inspect;
mod layout;
mod limits;
mod liveness;
mod options;
mod pipeline;
mod plan;
mod read;
mod rewrite;
mod runtime;
pub mod yield_checks;

pub use error::Error;
pub use options::{glob_match, parse_list, Options, MAX_SECONDARY_MEMORY_PAGES};

/// The result of [`instrument`]: the new module and what was done to it.
#[derive(Debug, Clone)]
pub struct Output {
    /// The instrumented module, already validated.
    pub wasm: Vec<u8>,
    /// Things the user should know that did not stop the transform
    /// (patterns that matched nothing, custom sections dropped, ...).
    pub warnings: Vec<String>,
    /// Every instrumented function with the reason it was chosen, in index order.
    pub instrumented: Vec<InstrumentedFunction>,
    /// Functions in the input (imported and defined).
    pub function_count: u32,
    /// Name of every input function from the name section, by index.
    pub function_names: Vec<Option<String>>,
    /// Size of the binary input (after converting text).
    pub input_bytes: usize,
}

/// A function that the transform instrumented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentedFunction {
    /// Index in the input module's function index space.
    pub index: u32,
    /// Name from the name section, if any.
    pub name: Option<String>,
    /// Why it was instrumented.
    pub reason: Reason,
    /// Calls in it that may suspend (suspension points).
    pub points: u32,
    /// Locals in its frame layout (the union over its points).
    pub saved_locals: u32,
    /// Per suspension point, in order: how many locals an unwind there
    /// writes (those live after the point, and after the points that share
    /// its frame-writing code).
    pub saved_per_point: Vec<u32>,
    /// Per suspension point, in order: how many locals are live after it
    /// (with the saved references, which every unwind writes). Equal to
    /// `saved_per_point` with [`Options::exact_saves`].
    pub live_per_point: Vec<u32>,
    /// Bytes its frame takes in the buffer.
    pub frame_bytes: u32,
}

/// Why a function is instrumented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// It calls an import that may suspend.
    CallsImport {
        /// Import module name.
        module: String,
        /// Import field name.
        name: String,
    },
    /// It makes an indirect call (`call_indirect` or `call_ref`) that may
    /// suspend: indirect calls are not ignored, and either the module can
    /// receive function references from outside or a function it references,
    /// of the call's type or a subtype, changes the state.
    IndirectCall,
    /// It calls a guest-imported runtime function such as `asyncify.start_unwind`.
    CallsRuntime(String),
    /// It calls another instrumented function (by input function index).
    Calls(u32),
    /// It is named in the add list.
    AddList,
    /// It is named in the only list.
    OnlyList,
}

/// Progress of a long transform, reported to an optional callback.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Function bodies done so far.
    pub done: usize,
    /// Function bodies in the module.
    pub total: usize,
}

impl Output {
    /// The chain of reasons that led to function `index` being instrumented,
    /// as human-readable lines from the function itself down to the cause.
    pub fn why(&self, index: u32) -> Vec<String> {
        let by_index = |i: u32| self.instrumented.iter().find(|f| f.index == i);
        let mut lines = Vec::new();
        let mut current = by_index(index);
        let mut seen = std::collections::HashSet::new();
        while let Some(f) = current {
            if !seen.insert(f.index) {
                break;
            }
            let name = display_name(f);
            let (line, next) = match &f.reason {
                Reason::CallsImport { module, name: n } => (
                    format!("{name} calls import {module}.{n}, which may suspend"),
                    None,
                ),
                Reason::IndirectCall => (
                    format!("{name} makes an indirect call, which may suspend"),
                    None,
                ),
                Reason::CallsRuntime(r) => (format!("{name} calls {r}"), None),
                Reason::Calls(callee) => {
                    let callee_name = match self.function_names.get(*callee as usize) {
                        Some(Some(n)) => format!("${n}"),
                        _ => format!("func {callee}"),
                    };
                    (format!("{name} calls {callee_name}"), by_index(*callee))
                }
                Reason::AddList => (format!("{name} is in the add list"), None),
                Reason::OnlyList => (format!("{name} is in the only list"), None),
            };
            lines.push(line);
            current = next;
        }
        lines
    }
}

fn display_name(f: &InstrumentedFunction) -> String {
    match &f.name {
        Some(n) => format!("${n}"),
        None => format!("func {}", f.index),
    }
}

/// Instruments `input` (binary `.wasm`, or text `.wat`) with `options`.
///
/// Returns the validated output module, or an error that names the offset or
/// the function and instruction at fault.
pub fn instrument(input: &[u8], options: &Options) -> Result<Output, Error> {
    instrument_with_progress(input, options, &mut |_| {})
}

/// Like [`instrument`], calling `progress` as function bodies are rewritten.
pub fn instrument_with_progress(
    input: &[u8],
    options: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Output, Error> {
    options.validate()?;
    let bytes = binary_input(input)?;
    if options.yield_checks {
        let bytes = yield_checks::add(&bytes, options)?;
        let options = yield_checks::options_with_yield_import(options);
        let info = read::read(&bytes)?;
        return pipeline::run(&info, &options, progress);
    }
    let info = read::read(&bytes)?;
    pipeline::run(&info, options, progress)
}

/// The binary form of `input`: the bytes themselves, or the text converted.
/// A component (binary or text) is refused with [`Error::Component`].
pub(crate) fn binary_input(input: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Error> {
    if input.starts_with(b"\0asm") {
        if read::is_component(input) {
            return Err(Error::Component);
        }
        return Ok(input.into());
    }
    if starts_component_text(input) {
        return Err(Error::Component);
    }
    let binary =
        wat::parse_bytes(input).map_err(|e| Error::InvalidText(one_paragraph(&e.to_string())))?;
    if read::is_component(&binary) {
        return Err(Error::Component);
    }
    Ok(binary)
}

/// Whether WebAssembly text starts with `(component`, after white space and
/// comments (so that a component is named as such even when it does not parse).
fn starts_component_text(text: &[u8]) -> bool {
    let mut rest = text;
    loop {
        rest = rest.trim_ascii_start();
        if rest.starts_with(b";;") {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            rest = &rest[end..];
        } else if rest.starts_with(b"(;") {
            // Block comments nest.
            let mut depth = 0usize;
            let mut i = 0;
            while i < rest.len() {
                if rest[i..].starts_with(b"(;") {
                    depth += 1;
                    i += 2;
                } else if rest[i..].starts_with(b";)") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            rest = &rest[i..];
        } else {
            break;
        }
    }
    let Some(after) = rest.strip_prefix(b"(") else {
        return false;
    };
    let after = after.trim_ascii_start();
    after.starts_with(b"component")
        && after
            .get(b"component".len())
            .is_none_or(|b| b.is_ascii_whitespace() || matches!(b, b'(' | b')' | b'$' | b';'))
}

/// Folds a multi-line message (wat errors carry a source snippet) into one
/// paragraph: the message and its location.
fn one_paragraph(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default().to_string();
    match lines.find(|l| l.starts_with("-->")) {
        Some(at) => format!("{first} (at {})", at.trim_start_matches("-->").trim()),
        None => first,
    }
}
