//! The limits WebAssembly engines put on a module (the JS API's "implementation
//! limits", which wasmparser, V8, SpiderMonkey and wasmtime share), and the
//! message for an output that goes over one.
//!
//! The transform adds code, locals, functions, globals, types, tables and a
//! memory. An input close to a limit can produce an output over it; that is
//! not a bug in the transform but a real limit, so it is reported as
//! [`Error::Limit`] naming the limit, instead of as an invalid output.

use wasmparser::{Parser, Payload, TypeRef};

use crate::read::ModuleInfo;
use crate::Error;

/// Locals (parameters included) in one function.
pub const MAX_FUNCTION_LOCALS: u64 = 50_000;
/// Bytes of one function body.
pub const MAX_FUNCTION_SIZE: usize = 7_654_321;
/// Functions, imported and defined.
pub const MAX_FUNCTIONS: u64 = 1_000_000;
/// Globals, imported and defined.
pub const MAX_GLOBALS: u64 = 1_000_000;
/// Types.
pub const MAX_TYPES: u64 = 1_000_000;
/// Memories.
pub const MAX_MEMORIES: u64 = 100;
/// Tables.
pub const MAX_TABLES: u64 = 100_000;

/// Why the output `wasm`, which failed validation, did: the limit it goes
/// over, as an [`Error::Limit`]; `None` if it is within every limit checked
/// here (then the failure is a bug).
pub fn explain(info: &ModuleInfo<'_>, wasm: &[u8]) -> Option<Error> {
    let num_imports = info.func_imports.len();
    let (mut funcs, mut globals, mut types, mut memories, mut tables) = (0u64, 0, 0, 0, 0);
    let mut body_index = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.ok()? {
            Payload::TypeSection(r) => {
                for group in r {
                    types += group.ok()?.types().len() as u64;
                }
            }
            Payload::ImportSection(r) => {
                for group in r {
                    for import in group.ok()? {
                        match import.ok()?.1.ty {
                            TypeRef::Func(_) | TypeRef::FuncExact(_) => funcs += 1,
                            TypeRef::Global(_) => globals += 1,
                            TypeRef::Memory(_) => memories += 1,
                            TypeRef::Table(_) => tables += 1,
                            TypeRef::Tag(_) => {}
                        }
                    }
                }
            }
            Payload::FunctionSection(r) => funcs += u64::from(r.count()),
            Payload::GlobalSection(r) => globals += u64::from(r.count()),
            Payload::MemorySection(r) => memories += u64::from(r.count()),
            Payload::TableSection(r) => tables += u64::from(r.count()),
            Payload::CodeSectionEntry(body) => {
                let d = body_index;
                body_index += 1;
                let function = || match info.bodies.get(d) {
                    Some(_) => info.func_label((num_imports + d) as u32),
                    None => "a function the transform adds".to_string(),
                };
                let params = match info.funcs.get(d) {
                    Some(_) => info.func_type((num_imports + d) as u32).params().len() as u64,
                    None => 0,
                };
                let mut locals = params;
                for group in body.get_locals_reader().ok()? {
                    locals += u64::from(group.ok()?.0);
                }
                if locals > MAX_FUNCTION_LOCALS {
                    let input = info.bodies.get(d).map(|b| {
                        let declared: u64 = b
                            .get_locals_reader()
                            .into_iter()
                            .flatten()
                            .flatten()
                            .map(|(n, _)| u64::from(n))
                            .sum();
                        declared + params
                    });
                    return Some(Error::Limit(format!(
                        "{} would have {locals} locals after instrumenting{}, over the limit of \
                         {MAX_FUNCTION_LOCALS} locals per function that WebAssembly engines \
                         enforce; the transform adds locals for the frame pointer, the point \
                         index and the values it moves off the operand stack. Split the \
                         function, or keep it out of the instrumented functions \
                         (--remove-list) if it never suspends",
                        function(),
                        input.map_or(String::new(), |n| format!(" (it has {n})")),
                    )));
                }
                let size = (body.range().end - body.range().start) as usize;
                if size > MAX_FUNCTION_SIZE {
                    let input = info
                        .bodies
                        .get(d)
                        .map(|b| (b.range().end - b.range().start) as usize);
                    return Some(Error::Limit(format!(
                        "{} would be {size} bytes after instrumenting{}, over the limit of \
                         {MAX_FUNCTION_SIZE} bytes per function body that WebAssembly engines \
                         enforce; the code that saves and restores its locals at its \
                         suspension points is what grows. Split the function, or keep it out \
                         of the instrumented functions (--remove-list) if it never suspends",
                        function(),
                        input.map_or(String::new(), |n| format!(" (it is {n} bytes)")),
                    )));
                }
            }
            _ => {}
        }
    }
    let counts = [
        (
            funcs,
            MAX_FUNCTIONS,
            "functions",
            "the five runtime functions and helpers",
        ),
        (
            globals,
            MAX_GLOBALS,
            "globals",
            "the state and data globals",
        ),
        (types, MAX_TYPES, "types", "the runtime functions' types"),
        (memories, MAX_MEMORIES, "memories", "the secondary memory"),
        (tables, MAX_TABLES, "tables", "tables for saved references"),
    ];
    counts
        .into_iter()
        .find(|&(n, max, _, _)| n > max)
        .map(|(n, max, what, added)| {
            Error::Limit(format!(
                "the instrumented module would have {n} {what}, over the limit of {max} {what} \
                 per module that WebAssembly engines enforce (the transform adds {added})"
            ))
        })
}
