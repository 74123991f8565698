//! Makes a module that imports its memory also export it as `memory`.
//!
//! Side modules (and position-independent main modules) import the shared
//! memory as `env.memory` and export none. Host functions find the calling
//! instance's memory through its export `memory`, as WASI does
//! (wasmtime-wasi, and this crate's `wasi`): without it, a library could not
//! print through `fd_write`. In a group there is one memory, so exporting
//! the imported one under that name gives every host function the memory it
//! would see in the main module. Nothing else in the module changes.

use std::ops::Range;

use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// The export name host functions look for.
const MEMORY_EXPORT: &str = "memory";

/// The section id of the export section, and the ids of the sections that
/// come after it in a module (start, element, data count, code, data).
const EXPORT_SECTION: u8 = 7;
const AFTER_EXPORT: [u8; 5] = [8, 9, 12, 10, 11];

/// `wasm` with its imported memory 0 exported as `memory`, or `None` when
/// there is nothing to do (memory 0 is not imported, or something is
/// exported as `memory` already).
pub(super) fn export_imported_memory(wasm: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut memory_imported = false;
    let mut sections: Vec<(u8, Range<usize>)> = Vec::new();
    let mut exports: Option<Vec<(String, ExternalKind, u32)>> = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| e.to_string())?;
        match &payload {
            Payload::ImportSection(reader) => {
                let mut memories = 0;
                for import in reader.clone().into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    if matches!(import.ty, TypeRef::Memory(_)) {
                        memory_imported |= memories == 0;
                        memories += 1;
                    }
                }
            }
            Payload::ExportSection(reader) => {
                let mut list = Vec::new();
                for export in reader.clone() {
                    let export = export.map_err(|e| e.to_string())?;
                    if export.name == MEMORY_EXPORT {
                        return Ok(None);
                    }
                    list.push((export.name.to_string(), export.kind, export.index));
                }
                exports = Some(list);
            }
            // Nested modules and components are not core modules.
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => {
                return Ok(None);
            }
            _ => {}
        }
        if let Some((id, range)) = payload.as_section() {
            let to_usize = |n: u64| usize::try_from(n).map_err(|e| e.to_string());
            sections.push((id, to_usize(range.start)?..to_usize(range.end)?));
        }
    }
    if !memory_imported {
        return Ok(None);
    }

    let mut export_section = wasm_encoder::ExportSection::new();
    for (name, kind, index) in exports.iter().flatten() {
        export_section.export(name, export_kind(*kind)?, *index);
    }
    export_section.export(MEMORY_EXPORT, wasm_encoder::ExportKind::Memory, 0);

    let mut module = wasm_encoder::Module::new();
    let mut placed = false;
    for (id, range) in sections {
        let is_export = id == EXPORT_SECTION;
        let past_exports = AFTER_EXPORT.contains(&id);
        if !placed && (is_export || past_exports) {
            module.section(&export_section);
            placed = true;
        }
        if !is_export {
            module.section(&wasm_encoder::RawSection {
                id,
                data: &wasm[range],
            });
        }
    }
    if !placed {
        module.section(&export_section);
    }
    Ok(Some(module.finish()))
}

/// The encoder's name for an export kind of a core module.
fn export_kind(kind: ExternalKind) -> Result<wasm_encoder::ExportKind, String> {
    Ok(match kind {
        ExternalKind::Func => wasm_encoder::ExportKind::Func,
        ExternalKind::Table => wasm_encoder::ExportKind::Table,
        ExternalKind::Memory => wasm_encoder::ExportKind::Memory,
        ExternalKind::Global => wasm_encoder::ExportKind::Global,
        ExternalKind::Tag => wasm_encoder::ExportKind::Tag,
        other => return Err(format!("an export of kind {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exports(wasm: &[u8]) -> Vec<(String, ExternalKind, u32)> {
        let mut out = Vec::new();
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::ExportSection(reader) = payload.unwrap() {
                for e in reader {
                    let e = e.unwrap();
                    out.push((e.name.to_string(), e.kind, e.index));
                }
            }
        }
        out
    }

    #[test]
    fn an_imported_memory_is_exported_and_the_rest_is_kept() {
        let side = wat::parse_str(
            r#"(module
                (@custom "dylink.0" (before first) "\01\04\00\00\00\00")
                (import "env" "memory" (memory 1))
                (func $f (export "f") (result i32) (i32.load (i32.const 0)))
                (start $s) (func $s)
                (data (i32.const 0) "x"))"#,
        )
        .unwrap();
        let out = export_imported_memory(&side).unwrap().unwrap();
        wasmparser::Validator::new().validate_all(&out).unwrap();
        assert_eq!(
            exports(&out),
            [
                ("f".to_string(), ExternalKind::Func, 0),
                ("memory".to_string(), ExternalKind::Memory, 0)
            ]
        );
        // The custom section stays first.
        let first = Parser::new(0).parse_all(&out).nth(1).unwrap().unwrap();
        assert!(matches!(first, Payload::CustomSection(c) if c.name() == "dylink.0"));

        // No export section at all: one is added, before the code.
        let bare = wat::parse_str(
            r#"(module (import "env" "memory" (memory 1)) (func (drop (i32.const 1))))"#,
        )
        .unwrap();
        let out = export_imported_memory(&bare).unwrap().unwrap();
        wasmparser::Validator::new().validate_all(&out).unwrap();
        assert_eq!(exports(&out).len(), 1);
    }

    #[test]
    fn nothing_changes_without_an_imported_memory_or_with_an_export_named_memory() {
        let own = wat::parse_str(r#"(module (memory 1))"#).unwrap();
        assert_eq!(export_imported_memory(&own).unwrap(), None);
        let named = wat::parse_str(
            r#"(module (import "env" "memory" (memory 1)) (func (export "memory")))"#,
        )
        .unwrap();
        assert_eq!(export_imported_memory(&named).unwrap(), None);
    }
}
