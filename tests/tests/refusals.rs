//! What the transform documents refusing (README, "Not supported yet"):
//! non-nullable reference results in instrumented functions, a non-nullable
//! reference parameter in a function a suspending tail call may reach, and
//! stack-switching instructions in instrumented functions. Each is refused
//! with `Error::Unsupported` naming the function and the instruction; these
//! tests pin the refusal, so that lifting one (or refusing something else)
//! is a deliberate change.

use asyncify_tests::{Error, Options};

/// Instruments `wat` with default options and returns the refusal's
/// function, instruction and detail, checking that its message names both.
fn refusal(wat: &str) -> (String, String, String) {
    match asyncify_transform::instrument(wat.as_bytes(), &Options::default()) {
        Err(e) if matches!(e, Error::Unsupported { .. }) => {
            let message = e.to_string();
            let Error::Unsupported {
                function,
                instruction,
                detail,
            } = e
            else {
                unreachable!()
            };
            assert!(
                message.contains(&format!("cannot instrument function {function}: "))
                    && message.contains(&format!("(instruction `{instruction}`)")),
                "{message}"
            );
            (function, instruction, detail)
        }
        other => panic!(
            "expected Error::Unsupported, got {:?}",
            other.map(|o| o.wasm.len())
        ),
    }
}

#[test]
fn non_nullable_reference_result() {
    let (function, instruction, detail) = refusal(
        r#"(module
          (import "env" "tick" (func $tick (param i32) (result i32)))
          (memory 1)
          (type $box (struct (field i32)))
          (func $make (export "make") (param i32) (result (ref $box))
            (struct.new $box (call $tick (local.get 0)))))"#,
    );
    assert_eq!(function, "$make (func 1)");
    assert_eq!(instruction, "return");
    // (The type prints as `(ref (module 0))` here, not as wat's `(ref $box)`
    // like the tail-call refusal's: not pinned.)
    assert!(
        detail.starts_with("the function returns a non-nullable reference (")
            && detail.ends_with("which cannot be given a placeholder value while unwinding"),
        "{detail}"
    );
}

#[test]
fn non_nullable_parameter_reached_by_a_suspending_tail_call() {
    let (function, instruction, detail) = refusal(
        r#"(module
          (import "env" "tick" (func $tick (param i32) (result i32)))
          (memory 1)
          (type $box (struct (field i32)))
          (func $take (param $b (ref $box)) (result i32)
            (call $tick (struct.get $box 0 (local.get $b))))
          (func $run (export "run") (param i32) (result i32)
            (return_call $take (struct.new $box (local.get 0)))))"#,
    );
    assert_eq!(function, "$take (func 1)");
    assert_eq!(instruction, "return_call");
    assert!(
        detail.contains("non-nullable reference parameter ((ref $box))")
            && detail.contains("trampoline"),
        "{detail}"
    );
}

#[test]
fn stack_switching_in_an_instrumented_function() {
    let (function, instruction, detail) = refusal(
        r#"(module
          (import "env" "tick" (func $tick (param i32) (result i32)))
          (memory 1)
          (type $ft (func))
          (type $ct (cont $ft))
          (tag $yield)
          (func $task (type $ft) (suspend $yield))
          (elem declare func $task)
          (func $run (export "run") (param i32) (result i32)
            (drop (cont.new $ct (ref.func $task)))
            (call $tick (local.get 0))))"#,
    );
    assert_eq!(function, "$run (func 2)");
    assert_eq!(instruction, "cont_new");
    assert_eq!(
        detail,
        "stack switching instructions are not supported in instrumented functions"
    );
}
