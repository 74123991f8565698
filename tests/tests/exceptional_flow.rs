//! Exceptional control flow and non-nullable references (issue 12): locals
//! that only an exception handler reads, non-nullable reference arguments
//! that a rewind skips, tail-call trampolines, and legacy `catch_all`
//! handlers that suspend and then `rethrow` (C++ landing pads).
//!
//! Each module is differential under wasmtime (`try_table`); wasmtime does not
//! run legacy exceptions, so those are instrumented and validated here and run
//! under Node by `scripts/js-interop` (`handler_liveness.wat`,
//! `landing_pads.wat`, and the C++ programs of `corpus/cpp`).

use asyncify_tests::{Check, Schedule, Val, Value};
use asyncify_transform::{instrument, Error, Options};

fn i32s(values: &[i32]) -> Vec<Val> {
    values.iter().map(|&v| Val::I32(v)).collect()
}

/// The issue's module and its neighbours: a local written before a call that
/// suspends and then throws, read only by the handler's path.
const HANDLER_READS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (tag $e)
  (tag $p (param i32))
  (func $maybe (param $x i32) (result i32) (local $v i32)
    (local.set $v (call $tick (local.get $x)))
    (if (local.get $x) (then (throw $e)))
    (local.get $v))
  (func $maybe_payload (param $x i32) (result i32)
    (drop (call $tick (local.get $x)))
    (if (local.get $x) (then (throw $p (i32.add (local.get $x) (i32.const 7)))))
    (i32.const 3))

  ;; The issue's example: `run(1)` returns 42.
  (func (export "run") (param $x i32) (result i32) (local $acc i32)
    (local.set $acc (i32.const 42))
    (block $h (try_table (catch_all $h) (local.set $acc (call $maybe (local.get $x)))))
    (local.get $acc))

  ;; Read in the handler's code (after a `catch $p` with payload), never on
  ;; the normal path after the call.
  (func (export "in_handler") (param $x i32) (result i32) (local $saved i32)
    (local.set $saved (i32.mul (local.get $x) (i32.const 100)))
    (block $h (result i32)
      (try_table (catch $p $h)
        (drop (call $maybe_payload (local.get $x)))
        (local.set $saved (i32.const -5)))
      (return (local.get $saved)))
    (i32.add (local.get $saved)))

  ;; In a loop: the handler's path goes round again.
  (func (export "in_loop") (param $n i32) (result i32) (local $i i32) (local $sum i32)
    (loop $again
      (local.set $sum (i32.add (local.get $sum) (i32.const 1000)))
      (block $h
        (try_table (catch_all $h)
          (local.set $sum
            (i32.add (local.get $sum) (call $maybe (i32.and (local.get $i) (i32.const 1)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $sum))

  ;; A write after the throwing call in the same straight-line code must not
  ;; hide the value the handler reads.
  (func (export "write_after") (param $x i32) (result i32) (local $v i32)
    (local.set $v (i32.const 11))
    (block $h
      (try_table (catch_all $h)
        (drop (call $maybe (local.get $x)))
        (local.set $v (i32.const 22))))
    (local.get $v))

  ;; Nested: the inner try_table catches only $p, so $e goes on outward.
  (func (export "nested") (param $x i32) (result i32) (local $a i32) (local $b i32)
    (local.set $a (i32.const 5))
    (local.set $b (i32.const 6))
    (block $outer
      (try_table (catch_all $outer)
        (block $inner (result i32)
          (try_table (catch $p $inner)
            (local.set $a (call $maybe (local.get $x)))
            (local.set $b (i32.const 0)))
          (br $outer))
        (drop)))
    (i32.add (i32.mul (local.get $a) (i32.const 10)) (local.get $b))))"#;

fn handler_calls() -> Vec<(&'static str, Vec<Val>)> {
    vec![
        ("run", i32s(&[1])),
        ("run", i32s(&[0])),
        ("in_handler", i32s(&[0])),
        ("in_handler", i32s(&[4])),
        ("in_loop", i32s(&[5])),
        ("write_after", i32s(&[1])),
        ("write_after", i32s(&[0])),
        ("nested", i32s(&[1])),
        ("nested", i32s(&[0])),
    ]
}

#[test]
fn locals_read_only_by_a_handler_are_saved() {
    let report = Check::new(HANDLER_READS).calls(&handler_calls()).run();
    assert_eq!(report.original.results(0), &[Value::I32(42)]);
    for (schedule, outcome) in &report.runs {
        assert_eq!(
            outcome.results(0),
            &[Value::I32(42)],
            "run(1) under {schedule:?}"
        );
    }
    let always = report
        .runs
        .iter()
        .find(|(s, _)| matches!(s, Schedule::Always))
        .expect("an Always run");
    assert!(always.1.unwinds() > 0, "the calls suspend");
}

#[test]
fn locals_read_only_by_a_handler_are_saved_with_exact_saves() {
    let options = Options {
        exact_saves: true,
        ..Options::default()
    };
    Check::new(HANDLER_READS)
        .options(&options)
        .calls(&handler_calls())
        .run();
}

/// Non-nullable reference arguments that a rewind skips computing.
const NON_NULL_ARGS: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $box (struct (field (mut i32))))
  (type $vec (array (mut i32)))
  (type $fn (func (param i32) (result i32)))
  (elem declare func $double)
  (func $double (type $fn) (i32.mul (local.get 0) (i32.const 2)))

  ;; Suspends, then reads the box.
  (func $take (param $b (ref $box)) (param $x i32) (result i32)
    (i32.add (call $tick (local.get $x)) (struct.get $box 0 (local.get $b))))
  (func $take_array (param $a (ref $vec)) (result i32)
    (drop (call $tick (i32.const 3)))
    (array.get $vec (local.get $a) (i32.const 1)))
  (func $take_fn (param $f (ref $fn)) (param $x i32) (result i32)
    (call_ref $fn (call $tick (local.get $x)) (local.get $f)))

  ;; A `struct.new` argument, as the issue describes.
  (func (export "struct_arg") (param $x i32) (result i32)
    (call $take (struct.new $box (i32.add (local.get $x) (i32.const 10))) (local.get $x)))
  (func (export "array_arg") (param $x i32) (result i32)
    (call $take_array (array.new $vec (local.get $x) (i32.const 4))))
  ;; A declared non-nullable local read only as the argument.
  (func (export "local_arg") (param $x i32) (result i32) (local $b (ref $box))
    (local.set $b (struct.new $box (local.get $x)))
    (call $take (local.get $b) (i32.const 5)))
  ;; A pure `ref.func` argument, and a value below the call on the stack.
  (func (export "func_arg") (param $x i32) (result i32)
    (i32.add (local.get $x) (call $take_fn (ref.func $double) (local.get $x))))
  ;; Several calls in a loop, each with a fresh box.
  (func (export "loop_args") (param $n i32) (result i32) (local $i i32) (local $sum i32)
    (loop $again
      (local.set $sum
        (i32.add (local.get $sum) (call $take (struct.new $box (local.get $i)) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $sum))
  ;; A block with a non-nullable parameter around a suspension.
  (func (export "block_param") (param $x i32) (result i32)
    (struct.new $box (local.get $x))
    (block (param (ref $box)) (result i32)
      (drop (call $tick (i32.const 1)))
      (struct.get $box 0))
    (struct.new $box (i32.const 3))
    (block (param (ref $box)) (result i32)
      (struct.get $box 0)
      (i32.add (call $tick (i32.const 2))))
    (i32.add))
  ;; A non-nullable parameter passed on after a suspension.
  (func $relay (param $b (ref $box)) (result i32)
    (drop (call $tick (i32.const 9)))
    (call $take (local.get $b) (i32.const 2)))
  (func (export "relay") (param $x i32) (result i32)
    (call $relay (struct.new $box (local.get $x)))))"#;

#[test]
fn non_nullable_reference_arguments_survive_a_rewind() {
    let report = Check::new(NON_NULL_ARGS)
        .calls(&[
            ("struct_arg", i32s(&[4])),
            ("array_arg", i32s(&[6])),
            ("local_arg", i32s(&[8])),
            ("func_arg", i32s(&[3])),
            ("loop_args", i32s(&[4])),
            ("block_param", i32s(&[12])),
            ("relay", i32s(&[13])),
        ])
        .run();
    for (schedule, outcome) in &report.runs {
        for (i, call) in outcome.calls.iter().enumerate() {
            assert!(
                call.result.is_ok(),
                "call {i} ({}) under {schedule:?}: {:?}",
                call.export,
                call.result
            );
        }
    }
}

/// A suspending tail call in one place does not make every function with a
/// non-nullable parameter a trampoline target.
const TAIL_ELSEWHERE: &str = r#"(module
  (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
  (type $box (struct (field i32)))
  (func $count (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (call $tick (i32.const 0)))
      (else (return_call $count (i32.sub (local.get $n) (i32.const 1))))))
  (func $take (param $b (ref $box)) (result i32)
    (i32.add (call $tick (i32.const 1)) (struct.get $box 0 (local.get $b))))
  (func (export "tail") (param $n i32) (result i32)
    (return_call $count (local.get $n)))
  (func (export "plain") (param $x i32) (result i32)
    (call $take (struct.new $box (local.get $x)))))"#;

#[test]
fn non_nullable_parameters_are_refused_only_where_a_tail_call_reaches() {
    Check::new(TAIL_ELSEWHERE)
        .calls(&[
            ("tail", i32s(&[3])),
            ("plain", i32s(&[5])),
            ("tail", i32s(&[0])),
        ])
        .run();
}

#[test]
fn a_tail_call_target_with_a_non_nullable_parameter_is_refused_by_name() {
    let wat = r#"(module
      (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
      (type $box (struct (field i32)))
      (func $take (param $b (ref $box)) (result i32)
        (i32.add (call $tick (i32.const 1)) (struct.get $box 0 (local.get $b))))
      (func (export "tail") (param $x i32) (result i32)
        (return_call $take (struct.new $box (local.get $x)))))"#;
    let err = instrument(wat.as_bytes(), &Options::default()).expect_err("refused");
    let Error::Unsupported {
        function,
        instruction,
        detail,
    } = &err
    else {
        panic!("expected Unsupported, got {err:?}");
    };
    assert_eq!(function, "$take (func 1)");
    assert_eq!(instruction, "return_call");
    assert!(detail.contains("(ref $box)"), "{detail}");
    // Without a type name, the index as the text format writes it.
    let unnamed = wat
        .replace("(type $box (struct", "(type (struct")
        .replace("$box", "0");
    let err = instrument(unnamed.as_bytes(), &Options::default()).expect_err("refused");
    assert!(err.to_string().contains("(ref 0)"), "{err}");
}

/// The shape of a C++ landing pad (`-fwasm-exceptions`): destructors run in a
/// `catch_all` handler that may suspend, then `rethrow`. Instruments; the
/// output validates and keeps to legacy exception handling. Run under Node by
/// `scripts/js-interop/modules/landing_pads.wat` and `corpus/cpp`.
#[test]
fn landing_pads_that_suspend_and_rethrow_instrument() {
    let wat = r#"(module
      (import "env" "tick" (func $tick (param i32) (result i32)))
  (memory (export "memory") 1)
      (tag $cpp (param i32))
      (tag $jmp (param i32 i64))
      (func (export "pad") (param $x i32) (result i32)
        try (result i32)
          (if (local.get $x) (then (throw $cpp (local.get $x))))
          (i32.const 1)
        catch_all
          (drop (call $tick (i32.const 2)))
          (rethrow 0)
        end))"#;
    let out = instrument(wat.as_bytes(), &Options::default()).expect("landing pads instrument");
    asyncify_tests::interface::validate(&out.wasm).expect("valid output");
    let text = wasmprinter::print_bytes(&out.wasm).expect("prints");
    assert!(!text.contains("try_table"), "keeps to legacy EH");
    // The recorder catches both tags and anything else.
    assert!(
        text.contains("catch 0") || text.contains("catch $cpp"),
        "{text}"
    );
    assert!(
        text.contains("catch 1") || text.contains("catch $jmp"),
        "{text}"
    );
    // A suspension while the handler holds a host exception traps in a
    // function whose name (in backtraces) says why.
    assert!(
        text.contains("cannot suspend inside a catch_all handler that rethrows a host exception"),
        "{text}"
    );
}
