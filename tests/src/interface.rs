//! The imports and exports of a module, read with wasmparser after validating
//! it with every feature on: what tests assert about the ABI's shape.

use wasmparser::types::EntityType;
use wasmparser::{Validator, WasmFeatures};

/// What kind of thing an import or export is, with the parts of its type the
/// ABI cares about. Value types are spelled as in the text format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A function.
    Func {
        /// Parameter types.
        params: Vec<String>,
        /// Result types.
        results: Vec<String>,
    },
    /// A memory.
    Memory {
        /// 64-bit addresses.
        memory64: bool,
        /// Shared (threads).
        shared: bool,
    },
    /// A global.
    Global {
        /// Its value type.
        ty: String,
        /// Whether it is mutable.
        mutable: bool,
    },
    /// A table.
    Table,
    /// A tag.
    Tag,
}

/// The imports (`module`, `name`, kind) and exports (`name`, kind) of a module.
#[derive(Clone, Debug, Default)]
pub struct Interface {
    /// Imports in order.
    pub imports: Vec<(String, String, Kind)>,
    /// Exports.
    pub exports: Vec<(String, Kind)>,
}

/// Validates `wasm` (binary) with every feature wasmparser knows.
pub fn validate(wasm: &[u8]) -> Result<wasmparser::types::Types, String> {
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(wasm)
        .map_err(|e| format!("invalid module: {e}"))
}

impl Interface {
    /// Reads the interface of `wasm` (binary or text), validating it.
    pub fn of(wasm: &[u8]) -> Result<Interface, String> {
        let wasm = wat::parse_bytes(wasm).map_err(|e| e.to_string())?;
        let types = validate(&wasm)?;
        let types = types.as_ref();
        let kind = |t: EntityType| match t {
            EntityType::Func(id) | EntityType::FuncExact(id) => {
                let f = types[id].unwrap_func();
                Kind::Func {
                    params: f.params().iter().map(ToString::to_string).collect(),
                    results: f.results().iter().map(ToString::to_string).collect(),
                }
            }
            EntityType::Memory(m) => Kind::Memory {
                memory64: m.memory64,
                shared: m.shared,
            },
            EntityType::Global(g) => Kind::Global {
                ty: g.content_type.to_string(),
                mutable: g.mutable,
            },
            EntityType::Table(_) => Kind::Table,
            EntityType::Tag(_) => Kind::Tag,
        };
        Ok(Interface {
            imports: types
                .core_imports()
                .into_iter()
                .flatten()
                .map(|(m, n, t)| (m.to_string(), n.to_string(), kind(t)))
                .collect(),
            exports: types
                .core_exports()
                .into_iter()
                .flatten()
                .map(|(n, t)| (n.to_string(), kind(t)))
                .collect(),
        })
    }

    /// The kind of export `name`.
    pub fn export(&self, name: &str) -> Option<&Kind> {
        self.exports.iter().find(|(n, _)| n == name).map(|(_, k)| k)
    }

    /// The kind of import `module.name`.
    pub fn import(&self, module: &str, name: &str) -> Option<&Kind> {
        self.imports
            .iter()
            .find(|(m, n, _)| m == module && n == name)
            .map(|(_, _, k)| k)
    }

    /// Whether a global is exported as `name`.
    pub fn exports_global(&self, name: &str) -> bool {
        matches!(self.export(name), Some(Kind::Global { .. }))
    }

    /// Whether a memory is exported as `name`.
    pub fn exports_memory(&self, name: &str) -> bool {
        matches!(self.export(name), Some(Kind::Memory { .. }))
    }

    /// Whether a global is imported as `module.name`.
    pub fn imports_global(&self, module: &str, name: &str) -> bool {
        matches!(self.import(module, name), Some(Kind::Global { .. }))
    }

    /// Whether a function is imported from `module`.
    pub fn imports_func_from(&self, module: &str) -> bool {
        self.imports
            .iter()
            .any(|(m, _, k)| m == module && matches!(k, Kind::Func { .. }))
    }
}

/// The function export `name` has exactly this signature (types as in the
/// text format, e.g. `&["i32"]`).
pub fn func(params: &[&str], results: &[&str]) -> Kind {
    Kind::Func {
        params: params.iter().map(ToString::to_string).collect(),
        results: results.iter().map(ToString::to_string).collect(),
    }
}
