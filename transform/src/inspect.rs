//! What a module looks like from outside: its imports and exports with their
//! types, written the way the text format writes them. Used by
//! `asyncify inspect`; the instrumentation statistics come with [`crate::Output`].

use wasmparser::{ExternalKind, Parser, Payload, TypeRef, Validator};

use crate::read::features;
use crate::Error;

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
                            TypeRef::Table(t) => {
                                format!("table {} {}", limits(t.initial, t.maximum), t.element_type)
                            }
                            TypeRef::Global(g) => format_global(g.content_type, g.mutable),
                            TypeRef::Tag(t) => format!(
                                "tag {}",
                                func(types.core_type_at_in_module(t.func_type_idx))
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
                        ExternalKind::Table => {
                            let t = types.table_at(e.index);
                            format!("table {} {}", limits(t.initial, t.maximum), t.element_type)
                        }
                        ExternalKind::Global => {
                            let g = types.global_at(e.index);
                            format_global(g.content_type, g.mutable)
                        }
                        ExternalKind::Tag => format!("tag {}", func(types.tag_at(e.index))),
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

fn limits(min: u64, max: Option<u64>) -> String {
    match max {
        Some(max) => format!("{min} {max}"),
        None => min.to_string(),
    }
}

fn format_memory(m: &wasmparser::MemoryType) -> String {
    let mut s = String::from("memory ");
    if m.memory64 {
        s.push_str("i64 ");
    }
    s.push_str(&limits(m.initial, m.maximum));
    if m.shared {
        s.push_str(" shared");
    }
    s
}

fn format_global(t: wasmparser::ValType, mutable: bool) -> String {
    if mutable {
        format!("global (mut {t})")
    } else {
        format!("global {t}")
    }
}

/// `func (param ...) (result ...)` for a function type.
pub fn format_func(f: &wasmparser::FuncType) -> String {
    let mut s = String::from("func");
    if !f.params().is_empty() {
        s.push_str(" (param");
        for p in f.params() {
            s.push_str(&format!(" {p}"));
        }
        s.push(')');
    }
    if !f.results().is_empty() {
        s.push_str(" (result");
        for r in f.results() {
            s.push_str(&format!(" {r}"));
        }
        s.push(')');
    }
    s
}
