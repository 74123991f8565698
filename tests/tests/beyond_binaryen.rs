//! Constructs the reference pass refuses or gets wrong (see "Where the
//! reference falls short" in the ABI notes): exceptions with `try_table`, tail
//! calls, reference-typed locals live across a suspension. The README lists
//! all of them as supported, so a refusal (`Error::Unsupported`) fails here
//! like a wrong result; what the transform documents refusing is tested in
//! `refusals.rs`.

use asyncify_tests::{Check, Val};

fn i32s(values: &[i32]) -> Vec<Val> {
    values.iter().map(|&v| Val::I32(v)).collect()
}

const EXCEPTIONS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (tag $e (param i32))

  ;; Suspends, then throws for odd inputs.
  (func $thrower (param $x i32) (result i32)
    (local $v i32)
    (local.set $v (call $tick (local.get $x)))
    (if (i32.and (local.get $x) (i32.const 1))
      (then (throw $e (i32.add (local.get $v) (i32.const 1000)))))
    (local.get $v))

  ;; A value on the stack inside the try body across suspensions; the
  ;; handler's path suspends too.
  (func (export "catch") (param $x i32) (result i32)
    (block $caught (result i32)
      (try_table (result i32) (catch $e $caught)
        (i32.add (call $tick (i32.const 100)) (call $thrower (local.get $x)))))
    (i32.add (call $tick (i32.const 7))))

  ;; An exception that escapes the export after a suspension.
  (func (export "escape") (param $x i32) (result i32)
    (call $thrower (local.get $x))))"#;

#[test]
fn try_table() {
    Check::new(EXCEPTIONS)
        .calls(&[
            ("catch", i32s(&[2])),
            ("catch", i32s(&[3])),
            ("escape", i32s(&[4])),
            ("escape", i32s(&[5])),
            ("catch", i32s(&[1])),
        ])
        .run();
}

const TAIL_CALLS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $t (func (param i32 i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $count)
  (func $count (type $t)
    (if (result i32) (i32.eqz (local.get 0))
      (then (local.get 1))
      (else
        (return_call $count
          (i32.sub (local.get 0) (i32.const 1))
          (i32.add (local.get 1) (call $tick (local.get 0)))))))
  (func (export "direct") (param $n i32) (result i32)
    (return_call $count (local.get $n) (i32.const 0)))
  (func (export "indirect") (param $n i32) (result i32)
    (drop (call $tick (i32.const 50)))
    (return_call_indirect (type $t) (local.get $n) (i32.const 1) (i32.const 0))))"#;

#[test]
fn tail_calls() {
    Check::new(TAIL_CALLS)
        .calls(&[
            ("direct", i32s(&[0])),
            ("direct", i32s(&[6])),
            ("indirect", i32s(&[4])),
        ])
        .run();
}

const REF_LOCALS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $t (func (param i32) (result i32)))
  (elem declare func $double $triple)
  (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
  (func $triple (type $t) (i32.mul (local.get 0) (i32.const 3)))
  ;; A function reference and a null externref stay live across the call.
  (func (export "run") (param $x i32) (result i32)
    (local $f (ref null $t)) (local $e externref)
    (local.set $f
      (select (result (ref null $t)) (ref.func $double) (ref.func $triple)
        (i32.and (local.get $x) (i32.const 1))))
    (local.set $e (ref.null extern))
    (i32.add
      (i32.add (call $tick (local.get $x)) (ref.is_null (local.get $e)))
      (call_ref $t (local.get $x) (local.get $f)))))"#;

#[test]
fn reference_locals_live_across_a_suspension() {
    Check::new(REF_LOCALS)
        .calls(&[("run", i32s(&[1])), ("run", i32s(&[2]))])
        .run();
}

const LEGACY_EXCEPTIONS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (tag $e (param i32))

  (func $thrower (param $x i32) (result i32)
    (local $v i32)
    (local.set $v (call $tick (local.get $x)))
    (if (i32.and (local.get $x) (i32.const 1))
      (then (throw $e (i32.add (local.get $v) (i32.const 1000)))))
    (local.get $v))

  ;; Suspensions inside a legacy try body; the handler catches an exception
  ;; thrown after a resume.
  (func (export "catch") (param $x i32) (result i32)
    try (result i32)
      (i32.add (call $tick (i32.const 100)) (call $thrower (local.get $x)))
    catch $e
      (i32.add (i32.const 5))
    catch_all
      (i32.const -1)
    end)

  ;; A try that delegates to an outer one, with suspensions in both bodies.
  (func (export "delegate") (param $x i32) (result i32)
    try (result i32)
      (drop (call $tick (i32.const 3)))
      try (result i32)
        (call $thrower (local.get $x))
      delegate 0
    catch $e
      (i32.sub (i32.const 0))
    end))"#;

/// wasmtime's compiler does not run legacy exceptions, so here the module is
/// only instrumented and validated; `scripts/js-interop/modules/exceptions.wat`
/// runs the same constructs, suspending, under Node (V8 runs legacy exceptions).
#[test]
fn legacy_try_bodies_instrument() {
    let out = asyncify_transform::instrument(LEGACY_EXCEPTIONS.as_bytes(), &Default::default())
        .expect("suspension inside legacy try bodies is supported");
    asyncify_tests::interface::validate(&out.wasm).expect("valid output");
    assert!(
        out.instrumented.iter().any(|f| f.index == 2),
        "the `catch` export is instrumented"
    );
}

/// Suspending inside legacy `catch $tag` and `catch_all` handlers instruments
/// (a rewind throws again to re-enter the handler); the output validates and
/// gains one tag, the one thrown to re-enter `catch_all`. wasmtime does not
/// run legacy exceptions: `scripts/js-interop/modules/catch_handlers.wat`
/// runs these constructs, suspending, under Node, and
/// `tests/tests/legacy_exceptions.rs` runs generated ones.
#[test]
fn suspension_in_legacy_catch_handlers_instruments() {
    let wat = r#"(module
      (import "env" "tick" (func $tick (param i32) (result i32)))
      (memory 1)
      (tag $e (param i32))
      (func (export "run") (param $x i32) (result i32)
        try (result i32)
          (throw $e (local.get $x))
        catch $e
          (i32.add (call $tick (i32.const 1)))
        catch_all
          (call $tick (i32.const 2))
        end)
      (func (export "rethrow") (param $x i32) (result i32)
        try (result i32)
          (throw $e (local.get $x))
        catch $e
          (drop (call $tick (i32.const 1)))
          (rethrow 0)
        end))"#;
    let out = asyncify_transform::instrument(wat.as_bytes(), &Default::default())
        .expect("suspension inside legacy handlers is supported");
    asyncify_tests::interface::validate(&out.wasm).expect("valid output");
    let tags = wasmparser::Parser::new(0)
        .parse_all(&out.wasm)
        .find_map(|p| match p {
            Ok(wasmparser::Payload::TagSection(r)) => Some(r.count()),
            _ => None,
        });
    assert_eq!(
        tags,
        Some(2),
        "the re-entry tag is added after the module's own"
    );
}

/// A `catch_all` handler that may suspend and then rethrows (a C++ landing
/// pad) instruments: the transform records the caught exception's tag and
/// payload on the way into the handler (see `tests/exceptional_flow.rs`; run
/// under Node by `scripts/js-interop/modules/landing_pads.wat`).
#[test]
fn rethrow_from_a_suspending_catch_all_instruments() {
    let wat = r#"(module
      (import "env" "tick" (func $tick (param i32) (result i32)))
      (memory 1)
      (tag $e)
      (func (export "run") (result i32)
        try (result i32)
          (throw $e)
        catch_all
          (drop (call $tick (i32.const 1)))
          (rethrow 0)
        end))"#;
    let out = asyncify_transform::instrument(wat.as_bytes(), &Default::default())
        .expect("landing pads are supported");
    asyncify_tests::interface::validate(&out.wasm).expect("valid output");
}

const NESTED_REFS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $t (func (param i32) (result i32)))
  (elem declare func $double $triple)
  (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
  (func $triple (type $t) (i32.mul (local.get 0) (i32.const 3)))
  ;; Each level keeps a non-nullable function reference and a nullable one
  ;; live across a suspension and a recursive call, so several saved
  ;; references of each type are held at once.
  (func $walk (param $n i32) (result i32)
    (local $f (ref $t)) (local $g (ref null $t)) (local $acc i32)
    (local.set $f (select (result (ref $t)) (ref.func $double) (ref.func $triple)
      (i32.and (local.get $n) (i32.const 1))))
    (local.set $g (select (result (ref null $t)) (ref.func $triple) (ref.null $t)
      (i32.and (local.get $n) (i32.const 2))))
    (local.set $acc (call $tick (local.get $n)))
    (if (i32.gt_s (local.get $n) (i32.const 0))
      (then (local.set $acc (i32.add (local.get $acc)
        (call $walk (i32.sub (local.get $n) (i32.const 1)))))))
    (i32.add
      (call_ref $t (local.get $acc) (local.get $f))
      (if (result i32) (ref.is_null (local.get $g))
        (then (i32.const 7))
        (else (call_ref $t (local.get $n) (local.get $g))))))
  (func (export "run") (param $n i32) (result i32) (call $walk (local.get $n))))"#;

#[test]
fn nested_reference_locals() {
    Check::new(NESTED_REFS)
        .calls(&[
            ("run", i32s(&[0])),
            ("run", i32s(&[5])),
            ("run", i32s(&[9])),
        ])
        .binaryen_shortfall("a live local of reference type is refused")
        .run();
}

const TAIL_CHAINS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $t (func (param i32) (result i32)))
  (table 3 funcref)
  (elem (i32.const 0) $a $b $leaf)
  ;; a -> b by return_call, b -> leaf by return_call_indirect, leaf calls
  ;; (not a tail call) a function that suspends; values on the stack and live
  ;; locals around every call.
  (func $a (param $x i32) (result i32)
    (local $keep i32)
    (local.set $keep (call $tick (local.get $x)))
    (return_call $b (i32.add (local.get $x) (local.get $keep))))
  (func $b (param $x i32) (result i32)
    (if (i32.gt_u (local.get $x) (i32.const 1000))
      (then (return (call $tick (local.get $x)))))
    (return_call_indirect (type $t) (i32.mul (local.get $x) (i32.const 3)) (i32.const 2)))
  (func $leaf (param $x i32) (result i32)
    (i32.add (local.get $x) (call $inner (local.get $x))))
  (func $inner (param $x i32) (result i32)
    (i32.xor (call $tick (local.get $x)) (call $tick (i32.add (local.get $x) (i32.const 1)))))
  ;; Different result types use different trampolines.
  (func $pair (param $x i32) (result i32 i64)
    (return_call $pair_leaf (i32.add (local.get $x) (i32.const 1))))
  (func $pair_leaf (param $x i32) (result i32 i64)
    (call $tick (local.get $x))
    (i64.extend_i32_u (call $tick (i32.const 9))))
  (func (export "chain") (param $x i32) (result i32)
    (i32.add (i32.const 1) (call $a (local.get $x))))
  (func (export "pair") (param $x i32) (result i32)
    (call $pair (local.get $x))
    (i32.wrap_i64)
    (i32.add)))"#;

#[test]
fn tail_call_chains() {
    Check::new(TAIL_CHAINS)
        .calls(&[
            ("chain", i32s(&[1])),
            ("chain", i32s(&[2000])),
            ("pair", i32s(&[4])),
            ("chain", i32s(&[7])),
        ])
        .binaryen_shortfall("tail calls are refused")
        .run();
}

/// Tail calls straight to an import that suspends: the import writes no
/// frame, so the transform makes such a call a plain call and a return
/// (found by the property tests: the rewind used to trap). Inside a
/// `try_table` that would let the function's handlers catch the import's
/// exceptions, so it is refused there.
const TAIL_TO_IMPORT: &str = r#"(module
  (import "env" "f2" (func $f2 (result i32)))
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "direct") (result i32)
    return_call $f2)
  (func (export "after_work") (param $x i32) (result i32)
    (drop (call $tick (local.get $x)))
    (return_call $tick (i32.add (local.get $x) (i32.const 1))))
  (func (export "nested") (param $x i32) (result i32)
    (i32.add (call $inner (local.get $x)) (local.get $x)))
  (func $inner (param $x i32) (result i32)
    (return_call $tick (local.get $x))))"#;

#[test]
fn tail_calls_to_imports() {
    Check::new(TAIL_TO_IMPORT)
        .calls(&[
            ("direct", vec![]),
            ("after_work", i32s(&[5])),
            ("nested", i32s(&[9])),
        ])
        .binaryen_shortfall("tail calls are refused")
        .run();
}

/// Tail calls to imports that suspend, inside `try_table`: as a call and a
/// return the function's handlers would catch the import's exceptions, so
/// they go to a generated wrapper of the import instead (an instrumented
/// function that writes a frame).
const TAIL_TO_IMPORT_IN_TRY: &str = r#"(module
  (import "env" "f2" (func $f2 (result i32)))
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (tag $e (param i32))
  (func (export "direct") (result i32)
    (block $h
      (try_table (catch_all $h) (return_call $f2)))
    (i32.const -1))
  (func $inner (param $x i32) (result i32)
    (local $keep i32)
    (local.set $keep (call $tick (local.get $x)))
    (block $h (result i32)
      (try_table (result i32) (catch $e $h)
        (return_call $tick (i32.add (local.get $x) (local.get $keep)))))
    (i32.const 1000)
    (i32.add))
  (func (export "nested") (param $x i32) (result i32)
    (i32.add (call $inner (local.get $x)) (local.get $x))))"#;

#[test]
fn tail_calls_to_imports_inside_try_table() {
    Check::new(TAIL_TO_IMPORT_IN_TRY)
        .calls(&[
            ("direct", vec![]),
            ("nested", i32s(&[5])),
            ("nested", i32s(&[8])),
        ])
        .binaryen_shortfall("tail calls and try_table are refused")
        .run();
}

/// An indirect tail call whose target is an import that suspends.
const TAIL_INDIRECT_TO_IMPORT: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $t (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) func $tick $double)
  (func $double (param $x i32) (result i32)
    (i32.mul (call $tick (local.get $x)) (i32.const 2)))
  (func (export "run") (param $x i32) (param $i i32) (result i32)
    (return_call_indirect (type $t) (local.get $x) (local.get $i)))
  (func (export "outer") (param $x i32) (param $i i32) (result i32)
    (i32.add (call $run2 (local.get $x) (local.get $i)) (i32.const 1)))
  (func $run2 (param $x i32) (param $i i32) (result i32)
    (return_call_indirect (type $t) (local.get $x) (local.get $i)))
  ;; `ref.func` of the import, tail-called through `return_call_ref`.
  (func (export "by_ref") (param $x i32) (result i32)
    (return_call_ref $t (local.get $x) (ref.func $tick))))"#;

/// The import writes no frame and the tail-calling function's frame is gone,
/// so a rewind could not find its way back into the import: the transform
/// puts a generated wrapper of the import (which writes a frame) in the
/// table instead. Found by the property tests, like the direct case.
#[test]
fn indirect_tail_calls_that_may_reach_an_import() {
    Check::new(TAIL_INDIRECT_TO_IMPORT)
        .calls(&[
            ("run", i32s(&[3, 0])),
            ("run", i32s(&[3, 1])),
            ("outer", i32s(&[4, 0])),
            ("outer", i32s(&[4, 1])),
            ("by_ref", i32s(&[6])),
        ])
        .binaryen_shortfall("tail calls are refused")
        .run();
}
