//! The error type of the transform.

/// Everything that can stop the transform. Each message is one paragraph that
/// says what is wrong and where.
///
/// The enum may grow: match it with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not a valid module (binary or text).
    #[error("the input is not a valid WebAssembly module: {message} (at byte offset {offset:#x}{})", function.as_ref().map(|f| format!(", in function {f}")).unwrap_or_default())]
    InvalidInput {
        /// What the parser or validator said.
        message: String,
        /// Byte offset in the binary input.
        offset: usize,
        /// The function the offset falls in, if any.
        function: Option<String>,
    },
    /// The input is WebAssembly text that does not parse.
    #[error("the input is not valid WebAssembly text: {0}")]
    InvalidText(String),
    /// The module already carries the asyncify exports.
    #[error("the module is already instrumented: it exports `{0}`; instrumenting it again would break it. Use the original, uninstrumented module as input.")]
    AlreadyInstrumented(String),
    /// Something in the module is not supported yet.
    #[error("cannot instrument function {function}: {detail} (instruction `{instruction}`)")]
    Unsupported {
        /// The function, by name or index.
        function: String,
        /// The instruction at fault.
        instruction: String,
        /// What is not supported.
        detail: String,
    },
    /// The module imports an `asyncify.*` runtime function with the wrong type.
    #[error("cannot instrument: {0}")]
    RuntimeImportType(String),
    /// The input is a relocatable object file (it has a `linking` or
    /// `reloc.*` section), the output of a compiler before the linker: its
    /// indices are not final, so the linked module is the one to instrument.
    #[error("the input is a relocatable object file (it has a `{section}` section); instrument the linked module instead")]
    Relocatable {
        /// The custom section that shows it.
        section: String,
    },
    /// The options are inconsistent or refer to something missing.
    #[error("invalid options: {0}")]
    Options(String),
    /// A list given as `@file` could not be read.
    #[error("cannot read list file `{path}`: {source}")]
    ListFile {
        /// The path after `@`.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The input is a WebAssembly component; the transform works on the
    /// core modules inside one.
    #[error("the input is a WebAssembly component, not a core module; the transform works on core modules only. Instrument the core module inside it instead: extract it (for example with `wasm-tools component unbundle`, or from the output of `wasm-tools print`), instrument it, and build the component from the instrumented module; or instrument the core module before making it a component (`wasm-tools component new`)")]
    Component,
    /// The instrumented module would exceed a limit that WebAssembly engines
    /// enforce (locals or code size of a function, functions, globals, ...).
    #[error("{0}")]
    Limit(String),
    /// The rewritten module failed validation: a bug in this crate.
    #[error("internal error: the instrumented module does not validate ({0}); please report this with the input module")]
    InvalidOutput(String),
    /// A step of the transform failed where it cannot on a valid input (the
    /// input was validated first): a bug in this crate.
    #[error("internal error: {0}; please report this with the input module")]
    Internal(String),
}

/// Reading the input again after [`crate::instrument`] validated it: a
/// parse error there is the transform's own fault.
impl From<wasmparser::BinaryReaderError> for Error {
    fn from(e: wasmparser::BinaryReaderError) -> Error {
        Error::Internal(format!(
            "reading the validated input failed: {} (at byte offset {:#x})",
            e.message(),
            e.offset()
        ))
    }
}

/// Re-encoding a part of the validated input (with indices changed).
impl From<wasm_encoder::reencode::Error<std::convert::Infallible>> for Error {
    fn from(e: wasm_encoder::reencode::Error<std::convert::Infallible>) -> Error {
        match e {
            wasm_encoder::reencode::Error::ParseError(e) => e.into(),
            other => Error::Internal(format!("re-encoding the validated input failed: {other}")),
        }
    }
}
