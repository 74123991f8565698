//! The features a module needs, and the check that instrumenting adds none
//! but those the transform documents adding: output that needs more than
//! its input would stop loading on an engine where the input loads.

use asyncify_transform::Options;
use wasmparser::{Validator, WasmFeatures};

/// Whether `wasm` validates with exactly `features`.
fn validates(wasm: &[u8], features: WasmFeatures) -> bool {
    Validator::new_with_features(features)
        .validate_all(wasm)
        .is_ok()
}

/// A smallest feature set `wasm` validates with: every feature wasmparser
/// knows, then each one left out in turn where the module still validates
/// without it. (Features can stand in for each other only where one implies
/// another, so the set is the one the module uses.) `None` when the module
/// does not validate at all.
pub fn needed(wasm: &[u8]) -> Option<WasmFeatures> {
    let mut features = WasmFeatures::all();
    if !validates(wasm, features) {
        return None;
    }
    for flag in WasmFeatures::all().iter() {
        let without = features.difference(flag);
        if without != features && validates(wasm, without) {
            features = without;
        }
    }
    if uses_return_call_ref(wasm) {
        features |= WasmFeatures::TAIL_CALL;
    }
    Some(implied(features))
}

/// Whether `wasm` has a `return_call_ref`. wasmparser accepts it under
/// typed function references alone, but it is a tail call: an engine that
/// runs it implements tail calls, so output that turns it into
/// `return_call`s (the transform's tail trampolines) needs nothing new.
fn uses_return_call_ref(wasm: &[u8]) -> bool {
    for payload in wasmparser::Parser::new(0).parse_all(wasm).flatten() {
        let wasmparser::Payload::CodeSectionEntry(body) = payload else {
            continue;
        };
        let Ok(mut operators) = body.get_operators_reader() else {
            continue;
        };
        while !operators.eof() {
            match operators.read() {
                Ok(wasmparser::Operator::ReturnCallRef { .. }) => return true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    false
}

/// `features` with what each proposal builds on (GC on typed function
/// references, those on reference types): an engine that has one has the
/// others, though the validator may not need them for a given module.
fn implied(mut features: WasmFeatures) -> WasmFeatures {
    if features.contains(WasmFeatures::GC) {
        features |= WasmFeatures::FUNCTION_REFERENCES | WasmFeatures::GC_TYPES;
    }
    if features.contains(WasmFeatures::FUNCTION_REFERENCES) {
        features |= WasmFeatures::REFERENCE_TYPES;
    }
    features
}

/// What the transform documents adding to a module (README, "Differences
/// from Binaryen" and the options table): a second memory with
/// `secondary_memory` (multi-memory); tables for saved references
/// (reference types, for a table beside the module's own or of a type other
/// than `funcref`); mutable globals imported or exported with
/// `import_globals` / `export_globals`.
pub fn documented_additions(options: &Options, input: &[u8], output: &[u8]) -> WasmFeatures {
    let mut add = WasmFeatures::empty();
    if options.secondary_memory.is_some() {
        add |= WasmFeatures::MULTI_MEMORY;
    }
    if options.import_globals || options.export_globals || options.yield_checks {
        add |= WasmFeatures::MUTABLE_GLOBAL;
    }
    if tables(output) > tables(input) {
        add |= WasmFeatures::REFERENCE_TYPES;
    }
    add | known_undocumented(input)
}

/// Additions the transform makes that its README does not document yet,
/// allowed here only where they occur so that any other addition fails:
/// with tail calls, the wrapper that replaces an import in tables and
/// `ref.func` is also declared in a declarative element segment (flag 3),
/// which wasmparser accepts only with bulk memory, although the wrapper
/// sits in an active segment already (found by this check, issue 21; the
/// input `tests/tests/beyond_binaryen.rs` `TAIL_INDIRECT_TO_IMPORT`).
fn known_undocumented(input: &[u8]) -> WasmFeatures {
    match needed(input) {
        Some(f) if f.contains(WasmFeatures::TAIL_CALL) => WasmFeatures::BULK_MEMORY,
        _ => WasmFeatures::empty(),
    }
}

/// How many tables (imported and defined) `wasm` has.
fn tables(wasm: &[u8]) -> u32 {
    let mut n = 0;
    for payload in wasmparser::Parser::new(0).parse_all(wasm).flatten() {
        match payload {
            wasmparser::Payload::ImportSection(s) => {
                n += s
                    .into_imports()
                    .flatten()
                    .filter(|i| matches!(i.ty, wasmparser::TypeRef::Table(_)))
                    .count() as u32;
            }
            wasmparser::Payload::TableSection(s) => n += s.count(),
            _ => {}
        }
    }
    n
}

/// Checks that `output` (`input` instrumented with `options`) validates with
/// the features `input` needs plus [`documented_additions`]; the error names
/// the features it needs beyond those.
pub fn check_output(input: &[u8], output: &[u8], options: &Options) -> Result<(), String> {
    let Some(used) = needed(input) else {
        return Ok(());
    };
    let allowed = used | documented_additions(options, input, output);
    if validates(output, allowed) {
        return Ok(());
    }
    let extra: Vec<String> = match needed(output) {
        Some(out) => out
            .difference(allowed)
            .iter_names()
            .map(|(name, _)| name.to_lowercase())
            .collect(),
        None => vec!["(the output does not validate at all)".into()],
    };
    Err(format!(
        "the instrumented module needs features its input does not use, beyond those the \
         transform documents adding: {} (input uses {:?})",
        extra.join(", "),
        used.iter_names().map(|(n, _)| n).collect::<Vec<_>>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_call_ref_counts_as_a_tail_call() {
        let wasm = wat::parse_str(
            r#"(module
                (type $f (func (result i32)))
                (func (param (ref $f)) (result i32) (return_call_ref $f (local.get 0))))"#,
        )
        .unwrap();
        let needed = needed(&wasm).unwrap();
        assert!(needed.contains(WasmFeatures::TAIL_CALL), "{needed:?}");
        let plain = wat::parse_str("(module (func (result i32) (i32.const 1)))").unwrap();
        assert!(!needed_contains_tail_call(&plain));
    }

    fn needed_contains_tail_call(wasm: &[u8]) -> bool {
        needed(wasm).unwrap().contains(WasmFeatures::TAIL_CALL)
    }
}
