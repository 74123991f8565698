//! A plan rule (`src/plan.rs`, `pure_inputs` and the pure run) that the
//! differential suites cannot see, found by mutation testing
//! (tests/README.md, "Mutation testing"): the argument of a call that may
//! suspend, when a pure expression that cannot trap computes it, is computed
//! again right before the call (after the dispatch) instead of being moved
//! through a local. Both ways run correctly, so only the output's shape
//! tells them apart; an expression that can trap (or has a side effect) must
//! never be computed again, since on a rewind it would run twice.

use asyncify_transform::{instrument, Options};
use wasmparser::{Operator, Parser, Payload};

/// The operators of the output function whose name section name is `name`.
fn output_ops(wat: &str, name: &str) -> Vec<String> {
    let out = instrument(wat.as_bytes(), &Options::default())
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    let index = out
        .instrumented
        .iter()
        .find(|f| f.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("${name} was not instrumented"))
        .index;
    let mut imports = 0;
    let mut body = 0;
    for payload in Parser::new(0).parse_all(&out.wasm) {
        match payload.expect("the output parses") {
            Payload::ImportSection(reader) => {
                imports = reader.into_imports().count() as u32;
            }
            Payload::CodeSectionEntry(func) => {
                if imports + body == index {
                    let mut ops = Vec::new();
                    let mut reader = func.get_operators_reader().expect("operators");
                    while !reader.eof() {
                        ops.push(format!("{:?}", reader.read().expect("operator")));
                    }
                    return ops;
                }
                body += 1;
            }
            _ => {}
        }
    }
    panic!("no body for function {index}")
}

/// The three operators before each `call 0` (the import `get`).
fn before_calls_of_import_0(ops: &[String]) -> Vec<Vec<&str>> {
    let call = format!("{:?}", Operator::Call { function_index: 0 });
    ops.iter()
        .enumerate()
        .filter(|(_, op)| **op == call)
        .map(|(i, _)| {
            ops[i.saturating_sub(3)..i]
                .iter()
                .map(String::as_str)
                .collect()
        })
        .collect()
}

#[test]
fn a_pure_argument_is_computed_again_right_before_the_call() {
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (call $get (i32.add (local.get $x) (i32.const 7)))))"#;
    let ops = output_ops(wat, "f");
    let before = before_calls_of_import_0(&ops);
    assert_eq!(
        before,
        [[
            "LocalGet { local_index: 0 }",
            "I32Const { value: 7 }",
            "I32Add"
        ]],
        "the argument is not recomputed before the call:\n{}",
        ops.join("\n")
    );
}

#[test]
fn an_argument_that_can_trap_is_computed_once() {
    // `i32.div_s` traps on a zero divisor: on a rewind, where $y may be a
    // dead local reset to zero, computing it again could trap.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (param $y i32) (result i32)
            (call $get (i32.div_s (local.get $x) (local.get $y)))))"#;
    let ops = output_ops(wat, "f");
    let divisions = ops.iter().filter(|op| *op == "I32DivS").count();
    assert_eq!(divisions, 1, "{}", ops.join("\n"));
    let before = before_calls_of_import_0(&ops);
    assert_eq!(before.len(), 1);
    assert_ne!(before[0].last(), Some(&"I32DivS"), "{}", ops.join("\n"));
}

#[test]
fn a_pure_condition_of_an_if_around_a_call_is_computed_again() {
    // The condition `(i32.eqz (local.get $x))` is computed where the `if`
    // is entered, on the normal path and on a rewind, instead of being kept
    // in a local set before the dispatch.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (if (result i32) (i32.eqz (local.get $x))
                (then (call $get (i32.const 1)))
                (else (i32.const 2)))))"#;
    let ops = output_ops(wat, "f");
    let kept = ops
        .windows(2)
        .any(|w| w[0] == "I32Eqz" && w[1].starts_with("LocalSet"));
    assert!(
        !kept,
        "the condition is kept in a local:\n{}",
        ops.join("\n")
    );
    assert!(
        ops.windows(2)
            .any(|w| w[0] == "LocalGet { local_index: 0 }" && w[1] == "I32Eqz"),
        "{}",
        ops.join("\n")
    );
}
