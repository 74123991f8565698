//! Liveness pinned exactly: for small functions, how many locals are live
//! after each suspension point (`InstrumentedFunction::live_per_point`).
//! These kill mutants of `src/liveness.rs` that the differential suites let
//! live (see tests/README.md, "Mutation testing"): a wrong count here is a
//! local saved for nothing (a bigger frame) or, worse, one not saved.

use asyncify_transform::{instrument, Options};

/// `live_per_point` of the function named `name` in `wat`, instrumented
/// with default options (every import may suspend).
fn live(wat: &str, name: &str) -> Vec<u32> {
    let out = instrument(wat.as_bytes(), &Options::default())
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    out.instrumented
        .iter()
        .find(|f| f.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("${name} was not instrumented"))
        .live_per_point
        .clone()
}

#[test]
fn an_unconditional_branch_back_to_a_loop_keeps_what_the_loop_header_reads() {
    // After the point: $i is read, then `br $l` goes to the header, which
    // reads $i and $n. $acc is written first. Without the edge of `br`, the
    // path would fall through to the function's end and lose $n.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $n i32) (result i32)
            (local $i i32) (local $acc i32)
            (block $done
                (loop $l
                    (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
                    (local.set $acc (call $get (local.get $i)))
                    (local.set $i (i32.add (local.get $i) (i32.const 1)))
                    (br $l)))
            (local.get $acc)))"#;
    assert_eq!(live(wat, "f"), [2]);
}

#[test]
fn nothing_after_a_return_is_live() {
    // The read of $x after `return` is dead code.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (drop (call $get (i32.const 0)))
            (return (i32.const 1))
            (local.get $x)))"#;
    assert_eq!(live(wat, "f"), [0]);
}

#[test]
fn delegate_sends_exceptions_past_the_try_in_between() {
    // An exception from the call (after it resumes) is delegated to the
    // outermost `try`, whose handler reads $y and $w; the middle `try`'s
    // handler (reading $z) is skipped.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $y i32) (param $w i32) (param $z i32) (result i32)
            try $outer (result i32)
                try $mid (result i32)
                    try
                        (drop (call $get (i32.const 0)))
                    delegate $outer
                    (i32.const 0)
                catch_all
                    (local.get $z)
                end
            catch_all
                (i32.add (local.get $y) (local.get $w))
            end))"#;
    assert_eq!(live(wat, "f"), [2]);
}

#[test]
fn br_table_with_an_outer_default() {
    // The default target is the outer block: the local read after it is
    // live; the inner target reads nothing.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (param $k i32) (result i32)
            (block $outer
                (block $inner
                    (br_table $inner $outer (call $get (local.get $k))))
                (return (i32.const 7)))
            (local.get $x)))"#;
    assert_eq!(live(wat, "f"), [1]);
}

#[test]
fn a_tail_call_to_an_import_is_a_point_with_nothing_live() {
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (drop (call $get (local.get $x)))
            (return_call $get (local.get $x)))
        (func $g (export "g") (param $c i32) (param $x i32) (result i32)
            (if (local.get $c) (then (return_call $get (local.get $x))))
            (call $get (local.get $x))))"#;
    assert_eq!(live(wat, "f"), [1, 0]);
    // A tail call as the first point, another point after it: each is
    // counted once, in order.
    assert_eq!(live(wat, "g"), [0, 0]);
}

#[test]
fn an_exception_a_legacy_try_does_not_catch_goes_to_the_enclosing_try() {
    // The inner `try` catches only $a (its handler reads $y); $b goes on to
    // the outer `try`, whose handler reads $x: both are live at the call.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (tag $a) (tag $b)
        (memory 1)
        (func $f (export "f") (param $x i32) (param $y i32) (result i32)
            try (result i32)
                try (result i32)
                    (call $get (i32.const 0))
                catch $a
                    (local.get $y)
                end
            catch $b
                (local.get $x)
            end))"#;
    assert_eq!(live(wat, "f"), [2]);
}

#[test]
fn a_legacy_catch_all_keeps_exceptions_from_the_enclosing_try() {
    // The inner `try` has a `catch_all` (reading $y): nothing reaches the
    // outer handler, so $x is not live at the call.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (tag $b)
        (memory 1)
        (func $f (export "f") (param $x i32) (param $y i32) (result i32)
            try (result i32)
                try (result i32)
                    (call $get (i32.const 0))
                catch_all
                    (local.get $y)
                end
            catch $b
                (local.get $x)
            end))"#;
    assert_eq!(live(wat, "f"), [1]);
}

#[test]
fn a_branch_to_an_outer_label_keeps_what_follows_that_label() {
    // `br $out` (depth 1) carries $x out; what follows the inner block
    // (reading $y) is never reached.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (param $y i32) (result i32)
            (block $out (result i32)
                (block $in
                    (drop (call $get (i32.const 0)))
                    (br $out (local.get $x)))
                (local.get $y))))"#;
    assert_eq!(live(wat, "f"), [1]);
}

#[test]
fn a_try_table_catch_to_an_outer_label_keeps_what_follows_that_label() {
    // The `catch_all` goes to $h (depth 1 from the try_table), after which
    // $x is returned; the normal path returns $y.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (param $y i32) (result i32)
            (block $h
                (block $mid
                    (try_table (catch_all $h)
                        (drop (call $get (i32.const 0))))
                    (return (local.get $y)))
                (return (i32.const 0)))
            (local.get $x)))"#;
    assert_eq!(live(wat, "f"), [2]);
}

#[test]
fn nothing_after_a_throw_is_live() {
    // The read of $y after `throw` is dead code, as after `return`.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (tag $e)
        (memory 1)
        (func $f (export "f") (param $y i32) (result i32)
            (drop (call $get (i32.const 0)))
            (throw $e)
            (local.get $y)))"#;
    assert_eq!(live(wat, "f"), [0]);
}
