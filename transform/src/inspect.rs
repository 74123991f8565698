//! What a module looks like from outside: its imports and exports with their
//! types, written the way the text format writes them ([`asyncify_abi::text`]),
//! and why an import may suspend ([`explain_import`]). Used by
//! `asyncify inspect` and the JS package's `inspect`; the instrumentation
//! statistics come with [`crate::Output`].

use asyncify_abi::text::{self, Limits};
use asyncify_abi::RUNTIME_IMPORT_MODULE;
use wasmparser::{ExternalKind, Parser, Payload, TypeRef, ValType, Validator};

use crate::read::features;
use crate::{glob_match, Error, Options};

/// One import or export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Import module, or empty for an export.
    pub module: String,
    /// Import field or export name.
    pub name: String,
    /// Its type in text-format syntax, e.g. `func (param i32) (result i32)`.
    pub ty: String,
}

/// The imports and exports of a module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// Imports, in order.
    pub imports: Vec<Item>,
    /// Exports, in order.
    pub exports: Vec<Item>,
}

/// Reads the interface of `input` (binary or text), validating it.
pub fn interface(input: &[u8]) -> Result<Interface, Error> {
    let bytes = crate::binary_input(input)?;
    let bytes = &bytes[..];
    let types = Validator::new_with_features(features())
        .validate_all(bytes)
        .map_err(|e| Error::InvalidInput {
            message: e.message().to_string(),
            offset: e.offset() as usize,
            function: None,
        })?;
    let types = types.as_ref();
    let func = |id: wasmparser::types::CoreTypeId| format_func(types[id].unwrap_func());
    let mut out = Interface::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::ImportSection(reader) => {
                for group in reader {
                    for import in group? {
                        let (_, import) = import?;
                        let ty = match import.ty {
                            TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                                func(types.core_type_at_in_module(t))
                            }
                            TypeRef::Memory(m) => format_memory(&m),
                            TypeRef::Table(t) => format_table(&t),
                            TypeRef::Global(g) => format_global(g.content_type, g.mutable),
                            TypeRef::Tag(t) => format_tag(
                                types[types.core_type_at_in_module(t.func_type_idx)].unwrap_func(),
                            ),
                        };
                        out.imports.push(Item {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                            ty,
                        });
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let e = export?;
                    let ty = match e.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => {
                            func(types.core_function_at(e.index))
                        }
                        ExternalKind::Memory => format_memory(&types.memory_at(e.index)),
                        ExternalKind::Table => format_table(&types.table_at(e.index)),
                        ExternalKind::Global => {
                            let g = types.global_at(e.index);
                            format_global(g.content_type, g.mutable)
                        }
                        ExternalKind::Tag => format_tag(types[types.tag_at(e.index)].unwrap_func()),
                    };
                    out.exports.push(Item {
                        module: String::new(),
                        name: e.name.to_string(),
                        ty,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn limits(initial: u64, maximum: Option<u64>) -> Limits {
    Limits {
        min: initial,
        max: maximum,
    }
}

fn format_table(t: &wasmparser::TableType) -> String {
    text::ExternType::Table {
        address64: t.table64,
        limits: limits(t.initial, t.maximum),
        element: ValType::Ref(t.element_type),
    }
    .to_string()
}

fn format_memory(m: &wasmparser::MemoryType) -> String {
    let memory: text::ExternType<'_, ValType> = text::ExternType::Memory {
        address64: m.memory64,
        limits: limits(m.initial, m.maximum),
        shared: m.shared,
    };
    memory.to_string()
}

fn format_global(content: ValType, mutable: bool) -> String {
    text::ExternType::Global { content, mutable }.to_string()
}

fn signature(f: &wasmparser::FuncType) -> text::FuncType<'_, ValType> {
    text::FuncType {
        params: f.params(),
        results: f.results(),
    }
}

/// `func (param ...) (result ...)` for a function type, in the spelling
/// every crate of the project uses ([`asyncify_abi::text`]).
pub fn format_func(f: &wasmparser::FuncType) -> String {
    text::ExternType::Func(signature(f)).to_string()
}

fn format_tag(f: &wasmparser::FuncType) -> String {
    text::ExternType::Tag(signature(f)).to_string()
}

/// Why calls to the function import `import` (`module.name`) may suspend or
/// not under `options`: the answer `asyncify inspect --why` and the JS
/// package's `inspect` give for an import.
///
/// ```
/// use asyncify_transform::{inspect::explain_import, Options};
///
/// let options = Options { imports: vec!["env.sleep".into()], ..Options::default() };
/// assert!(explain_import("env.sleep", &options).contains("matches `env.sleep`"));
/// assert!(explain_import("env.log", &options).contains("never suspend"));
/// ```
pub fn explain_import(import: &str, options: &Options) -> String {
    let runtime = import
        .strip_prefix(RUNTIME_IMPORT_MODULE)
        .is_some_and(|rest| rest.starts_with('.'));
    if runtime {
        return format!(
            "`{import}` is an import, not instrumented itself: it is a function of the \
             asyncify runtime, and its callers are instrumented"
        );
    }
    let verdict = if options.ignore_imports {
        "calls to it never suspend (--ignore-imports)".to_owned()
    } else if options.imports.is_empty() {
        "calls to it may suspend (without --imports, every import may)".to_owned()
    } else if let Some(pattern) = options.imports.iter().find(|p| glob_match(p, import)) {
        format!("calls to it may suspend (it matches `{pattern}` in --imports)")
    } else {
        "calls to it never suspend (it is not in --imports)".to_owned()
    };
    format!("`{import}` is an import, not instrumented itself: {verdict}")
}
