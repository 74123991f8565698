//! Inputs the transform must refuse, with the right error.

use asyncify_tests::{Error, Options};

#[test]
fn refuses_an_already_instrumented_module() {
    let wat = r#"(module
      (memory (export "memory") 1)
      (func (export "asyncify_start_unwind") (param i32))
      (func (export "run")))"#;
    match asyncify_transform::instrument(wat.as_bytes(), &Options::default()) {
        Err(Error::AlreadyInstrumented(name)) => assert_eq!(name, "asyncify_start_unwind"),
        other => panic!("expected AlreadyInstrumented, got {other:?}"),
    }
}

#[test]
fn refuses_invalid_bytes() {
    let inputs: [&[u8]; 3] = [
        b"\0asm\x01\0\0\0\x01\xff\xff",
        b"\0asm\x02\0\0\0",
        // A type error: i32.add with one operand.
        &[
            0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 10, 7, 1, 5, 0, 65, 1,
            106, 11,
        ],
    ];
    for input in inputs {
        match asyncify_transform::instrument(input, &Options::default()) {
            Err(Error::InvalidInput { .. }) => {}
            other => panic!("expected InvalidInput for {input:?}, got {other:?}"),
        }
    }
}

/// The refusal of `asyncify.get_state` imported as `[] -> []`.
const RUNTIME_GET_STATE: &str = "cannot instrument: the module imports `asyncify.get_state` \
    with type [] -> [], but the runtime function has type [] -> [i32] (the pointer is i32 \
    because the buffer's memory is 32-bit)";

/// The refusal of `asyncify.start_unwind` taking an `i32` with a 64-bit memory.
const RUNTIME_START_UNWIND: &str = "cannot instrument: the module imports \
    `asyncify.start_unwind` with type [i32] -> [], but the runtime function has type [i64] -> \
    [] (the pointer is i64 because the buffer's memory is 64-bit)";

/// A guest import of a runtime function with the wrong type is refused with
/// an error naming it (found by the fuzzer: it used to produce an invalid
/// module).
#[test]
fn runtime_imports_with_the_wrong_type_are_refused() {
    for (wat, expected) in [
        (
            r#"(module (import "asyncify" "get_state" (func $g)) (memory 1) (func (call $g)))"#,
            RUNTIME_GET_STATE,
        ),
        (
            r#"(module (import "asyncify" "start_unwind" (func $u (param i32)))
            (memory i64 1) (func (call $u (i32.const 16))))"#,
            RUNTIME_START_UNWIND,
        ),
    ] {
        let wasm = wat::parse_str(wat).unwrap();
        match asyncify_transform::instrument(&wasm, &Default::default()) {
            Err(e @ asyncify_transform::Error::RuntimeImportType(_)) => {
                assert_eq!(e.to_string(), expected);
            }
            other => panic!("{wat}: {:?}", other.map(|o| o.wasm.len())),
        }
    }
}
