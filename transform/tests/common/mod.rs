//! Helpers shared by the transform's integration tests: finding a function's
//! body in an output module.

#![allow(dead_code)] // Each test file uses some of them.

use asyncify_transform::Output;
use wasmparser::{FunctionBody, Parser, Payload};

/// The body of function `index` (in the function index space) of `wasm`.
pub fn body_of(wasm: &[u8], index: u32) -> FunctionBody<'_> {
    let mut imports = 0;
    let mut body = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.expect("the output parses") {
            Payload::ImportSection(reader) => {
                imports = reader.into_imports().count() as u32;
            }
            Payload::CodeSectionEntry(func) => {
                if imports + body == index {
                    return func;
                }
                body += 1;
            }
            _ => {}
        }
    }
    panic!("no body for function {index}")
}

/// The operators (as `Debug` text) of function `index` of `wasm`.
pub fn ops_of(wasm: &[u8], index: u32) -> Vec<String> {
    let mut ops = Vec::new();
    let mut reader = body_of(wasm, index)
        .get_operators_reader()
        .expect("operators");
    while !reader.eof() {
        ops.push(format!("{:?}", reader.read().expect("operator")));
    }
    ops
}

/// The index of the instrumented function named `name` in `out`.
pub fn instrumented_index(out: &Output, name: &str) -> u32 {
    out.instrumented
        .iter()
        .find(|f| f.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("${name} was not instrumented"))
        .index
}
