//! The linker's own failures.
//!
//! Every fallible function of this crate returns [`wasmtime::Result`], so guest
//! traps (with their wasm backtrace), the errors of host functions and the
//! failures below travel in one type. The failures below can be recognised
//! with `error.downcast_ref::<asyncify_linker::Error>()`.

use std::fmt;

use wasmtime::{ExternType, FuncType, ValType};

/// A failure of the linker itself (as opposed to a guest trap or a host
/// function's error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name was defined twice while shadowing is off.
    #[error(
        "`{module}::{name}` is defined twice; call `Linker::allow_shadowing(true)` \
         to let the last definition win"
    )]
    DefinedTwice {
        /// Module part of the name.
        module: String,
        /// Item part of the name.
        name: String,
    },

    /// [`Linker::alias`](crate::Linker::alias) named an item that is not defined.
    #[error("no item named `{module}::{name}` is defined")]
    NotDefined {
        /// Module part of the name.
        module: String,
        /// Item part of the name.
        name: String,
    },

    /// Instantiation found imports that nothing defines; every one is listed.
    #[error("{}", UnknownImportList(.0))]
    UnknownImports(Vec<UnknownImport>),

    /// An async import was given to a module that is not instrumented with
    /// asyncify, so it could not wait for it.
    #[error(
        "module `{importer}` imports `{module}::{name}`, which is defined as an async import, \
         but the module is not instrumented with asyncify (it lacks the `asyncify_*` exports); \
         instrument it (`asyncify instrument`), or define the import with `func_wrap`"
    )]
    NotInstrumented {
        /// Name of the importing module (from its name section, or `<unnamed>`).
        importer: String,
        /// Module part of the import.
        module: String,
        /// Item part of the import.
        name: String,
    },

    /// The stack saved by a suspending call did not fit in the asyncify buffer.
    /// The call fails (it cannot be replayed: it had side effects); the guest's
    /// memory outside the buffer is untouched and the instance stays usable.
    /// `grown_to` is what later calls really get: the buffer has grown
    /// already when it says so.
    #[error(
        "the call's saved stack did not fit in the asyncify buffer ({size} bytes free); {}",
        match .grown_to {
            Some(n) => format!("later calls get {n} bytes"),
            None => "the buffer cannot grow (its memory is at its maximum, or the buffer at \
                     `Linker::max_buffer_size` or fixed; raise `Linker::max_buffer_size`, give \
                     the module a larger memory maximum or `--secondary-memory`, or a larger \
                     `Linker::fixed_buffer`)".to_string(),
        }
    )]
    BufferOverflow {
        /// Bytes that were free for the call's frames.
        size: u64,
        /// The space later calls get, when the buffer could grow.
        grown_to: Option<u64>,
    },

    /// There is no memory the linker can put the asyncify buffer in.
    #[error("cannot place the asyncify buffer of module `{module}`: {reason}")]
    NoBufferMemory {
        /// Name of the module.
        module: String,
        /// Why.
        reason: String,
    },

    /// An async import's future was not ready, but nothing could wait for it.
    #[error("import `{module}::{name}` needs to wait, but {reason}")]
    CannotSuspend {
        /// Module part of the import.
        module: String,
        /// Item part of the import.
        name: String,
        /// Why no one can wait here.
        reason: String,
    },

    /// A suspended call's import finished while a call that started after it on
    /// the same instance was still suspended. Resuming would interleave the two
    /// calls' guest stacks, so the older call fails instead.
    #[error(
        "a call on instance `{module}` cannot resume while a call started after it on the same \
         instance is still suspended: calls on one instance must finish in the reverse order \
         they started"
    )]
    ResumeOrder {
        /// Name of the instance's module.
        module: String,
    },

    /// [`AsyncCaller::with`](crate::AsyncCaller::with) was used while the
    /// linker was not polling the import's future (or inside another `with`).
    #[error(
        "the store is not available here: an `AsyncCaller` reaches the store only while the \
         linker polls the import's future, and not from inside another `with`"
    )]
    StoreUnavailable,

    /// The instance could not be put back in the normal asyncify state after
    /// a failure in the middle of the protocol (its runtime functions trap or
    /// lie), so the linker refuses to run it: every later call, and every
    /// suspended call's resumption, fails with this error.
    #[error("instance `{module}` cannot be used any more: {reason}")]
    Unusable {
        /// Name of the instance's module.
        module: String,
        /// What went wrong.
        reason: String,
    },

    /// Calls nested inside async imports (an import calling back into an
    /// instance, whose import calls back again...) used more of the host
    /// stack than the linker allows ([`Linker::max_nesting_stack`]); the
    /// innermost call fails, before it runs or resumes.
    ///
    /// [`Linker::max_nesting_stack`]: crate::Linker::max_nesting_stack
    #[error(
        "calls nested inside async imports use {used} bytes of the host stack, more than the \
         {limit} allowed (`Linker::max_nesting_stack`); the innermost call fails"
    )]
    TooDeep {
        /// Bytes of the host stack in use by the nested calls.
        used: u64,
        /// The limit.
        limit: u64,
    },

    /// A call spent its whole budget of yield checks
    /// ([`TimeSlicing::max_budget`](crate::TimeSlicing::max_budget)): it
    /// fails at the check where the budget ran out, and the instance stays
    /// usable.
    #[error(
        "the call ran out of its budget: it spent {spent} of {limit} units (approximate wasm \
         instructions counted by the module's yield checks; `TimeSlicing::max_budget`)"
    )]
    OutOfBudget {
        /// Units the call had spent when it was stopped.
        spent: u64,
        /// The limit.
        limit: u64,
    },

    /// The instance did not follow the asyncify protocol (for example it
    /// started unwinding by itself, or a rewind did not reach the import that
    /// suspended).
    #[error("module `{module}` broke the asyncify protocol: {message}")]
    Protocol {
        /// Name of the module.
        module: String,
        /// What happened.
        message: String,
    },
}

/// An import that nothing in the linker defines.
#[derive(Debug, Clone)]
pub struct UnknownImport {
    /// Module part of the import.
    pub module: String,
    /// Item part of the import.
    pub name: String,
    /// The type the importing module expects.
    pub ty: ExternType,
}

impl UnknownImport {
    /// The type the importing module expects, spelled as every message of
    /// the project spells types ([`asyncify_abi::text`]): `func (param i32)`,
    /// `global (mut i32)`, `memory 1`...
    pub fn type_text(&self) -> String {
        extern_type_text(&self.ty)
    }
}

impl fmt::Display for UnknownImport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}::{}`: {}", self.module, self.name, self.type_text())
    }
}

/// `ty` in the text format's spelling, through the project's one printer.
fn extern_type_text(ty: &ExternType) -> String {
    use asyncify_abi::text::{self, Limits};
    match ty {
        ExternType::Func(t) => func_text(t, false),
        ExternType::Tag(t) => func_text(t.ty(), true),
        ExternType::Global(t) => text::ExternType::Global {
            content: TextValType(t.content().clone()),
            mutable: t.mutability().is_var(),
        }
        .to_string(),
        ExternType::Memory(t) => {
            let memory: text::ExternType<'_, TextValType> = text::ExternType::Memory {
                address64: t.is_64(),
                limits: Limits {
                    min: t.minimum(),
                    max: t.maximum(),
                },
                shared: t.is_shared(),
            };
            memory.to_string()
        }
        ExternType::Table(t) => text::ExternType::Table {
            address64: t.is_64(),
            limits: Limits {
                min: t.minimum(),
                max: t.maximum(),
            },
            element: TextValType(ValType::Ref(t.element().clone())),
        }
        .to_string(),
    }
}

/// A function type, or a tag's when `tag`, through the shared printer.
fn func_text(ty: &FuncType, tag: bool) -> String {
    use asyncify_abi::text;
    let params: Vec<TextValType> = ty.params().map(TextValType).collect();
    let results: Vec<TextValType> = ty.results().map(TextValType).collect();
    let ty = text::FuncType {
        params: &params,
        results: &results,
    };
    if tag {
        text::ExternType::Tag(ty).to_string()
    } else {
        text::ExternType::Func(ty).to_string()
    }
}

/// A wasmtime value type in the transform's spelling: wasmtime writes every
/// reference long (`(ref null func)`), the text format and wasmparser
/// abbreviate (`funcref`).
struct TextValType(ValType);

impl fmt::Display for TextValType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ValType::Ref(r) if r.heap_type().is_abstract() => {
                let heap = r.heap_type().to_string();
                let text = asyncify_abi::text::AbstractRefType {
                    nullable: r.is_nullable(),
                    heap: &heap,
                };
                write!(f, "{text}")
            }
            other => write!(f, "{other}"),
        }
    }
}

struct UnknownImportList<'a>(&'a [UnknownImport]);

impl fmt::Display for UnknownImportList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} import{} not defined: ",
            if n == 1 { " is" } else { "s are" }
        )?;
        for (i, import) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{import}")?;
        }
        Ok(())
    }
}

/// The error an export call fails with, from the error its wasm call
/// returned. wasmtime puts the wasm backtrace on top of a host function's
/// error (an async import's, the linker's own, an unknown import's trap), so
/// that `{}` prints "error while executing at wasm backtrace" instead of the
/// message; such an error gets the message of the layer below the backtrace
/// on top, and keeps the backtrace and what the host function returned in
/// its chain (both still downcast). Guest traps keep wasmtime's layout, and
/// errors without a backtrace on top (an import's error after a wait) are
/// returned as they are.
pub(crate) fn surface(error: wasmtime::Error) -> wasmtime::Error {
    if error.is::<wasmtime::Trap>() {
        return error;
    }
    let Some(trace) = error
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|b| b.to_string())
    else {
        return error;
    };
    let mut chain = error.chain();
    let message = match (chain.next(), chain.next()) {
        (Some(top), Some(below)) if top.to_string() == trace => below.to_string(),
        _ => return error,
    };
    error.context(message)
}
