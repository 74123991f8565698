//! Plan rules (`src/plan.rs`) that the transform's other tests do not pin,
//! found by mutation testing (tests/README.md, "Mutation testing"), pinned
//! through the output's shape or the `instrumented` report.
//!
//! First, the pure run: the argument of a call that may suspend, when a
//! pure expression that cannot trap computes it, is computed again right
//! before the call (after the dispatch) instead of being moved through a
//! local. Both ways run correctly, so only the output's shape tells them
//! apart; an expression that can trap (or has a side effect) must never be
//! computed again, since on a rewind it would run twice. Then the unwind
//! groups' budget, the locals added to hold values across a point, which
//! calls are points, legacy handler recorders, the wrappers of imports and
//! which constructs take over a dispatch.

mod common;

use asyncify_transform::{instrument, Options};
use common::{instrumented_index, ops_of};
use wasmparser::{Operator, Parser, Payload};

/// The operators of the output function whose name section name is `name`.
fn output_ops(wat: &str, name: &str) -> Vec<String> {
    let out = instrument(wat.as_bytes(), &Options::default())
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    ops_of(&out.wasm, instrumented_index(&out, name))
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

/// The instrumented function named `name` in `wat`, with default options.
fn instrumented(wat: &str, name: &str) -> asyncify_transform::InstrumentedFunction {
    let out = instrument(wat.as_bytes(), &Options::default())
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    out.instrumented
        .into_iter()
        .find(|f| f.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("${name} was not instrumented"))
}

/// `n` `i32` locals `${prefix}0`..
fn decl(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|j| format!("(local ${prefix}{j} i32)"))
        .collect()
}

/// `n` suspension points (calls to the import `get`).
fn points(n: usize) -> String {
    "(drop (call $get (i32.const 0)))".repeat(n)
}

/// Reads of `${prefix}0..n`.
fn reads(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|j| format!("(drop (local.get ${prefix}{j}))"))
        .collect()
}

/// Writes of `${prefix}0..n`.
fn writes(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|j| format!("(local.set ${prefix}{j} (i32.const 1))"))
        .collect()
}

/// A module whose function `$f` has `locals` and `body`.
fn module(locals: &str, body: &str) -> String {
    format!(
        r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") {locals} {body}))"#
    )
}

// The unwind groups (`unwind_groups_within`): points share the block that
// writes their frame while points x written locals stays within 4096
// (`UNWIND_GROUP_BUDGET`); `saved_per_point` shows the groups, as each point
// reports how many locals its group writes.

#[test]
fn a_point_whose_new_locals_would_go_over_the_budget_starts_a_group() {
    // 63 points with 32 locals live, then one with 33 others: together
    // 64 x 65 > 4096, so the last point writes only its own 33.
    let wat = module(
        &(decl("a", 32) + &decl("b", 33)),
        &[
            points(63),
            reads("a", 32),
            writes("b", 33),
            points(1),
            reads("b", 33),
        ]
        .concat(),
    );
    let f = instrumented(&wat, "f");
    let expected: Vec<u32> = [vec![32; 63], vec![33]].concat();
    assert_eq!(f.live_per_point, expected);
    assert_eq!(f.saved_per_point, expected);
}

#[test]
fn a_group_of_exactly_the_budget_is_kept() {
    // 63 points with 63 locals live, then one with one more: 64 x 64 = 4096
    // is within the budget, so all 64 points write the 64 locals.
    let wat = module(
        &(decl("a", 63) + &decl("x", 1)),
        &[
            points(63),
            writes("x", 1),
            points(1),
            reads("a", 63),
            reads("x", 1),
        ]
        .concat(),
    );
    let f = instrumented(&wat, "f");
    assert_eq!(f.live_per_point, [vec![63; 63], vec![64]].concat());
    assert_eq!(f.saved_per_point, vec![64; 64]);
}

#[test]
fn saved_references_count_against_the_budget() {
    // As above with one of the 63 locals a reference (every group writes
    // it): 64 x (64 + 1) > 4096, so the last point gets a group of its own.
    let wat = module(
        &(decl("a", 62) + "(local $r externref)" + &decl("x", 1)),
        &[
            points(63),
            writes("x", 1),
            points(1),
            reads("a", 62),
            "(drop (local.get $r))".into(),
            reads("x", 1),
        ]
        .concat(),
    );
    let f = instrumented(&wat, "f");
    let expected: Vec<u32> = [vec![63; 63], vec![64]].concat();
    assert_eq!(f.live_per_point, expected);
    assert_eq!(f.saved_per_point, expected);
}

#[test]
fn a_kept_argument_counts_against_the_budget() {
    // As above, with the last point's one more value a reference argument
    // kept in the frame (see `Item::kept_inputs`) instead of a local:
    // 64 x (62 + 2 + 1 reference) > 4096.
    let wat = format!(
        r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (import "env" "use" (func $use (param (ref extern)) (result i32)))
        (global $g externref (ref.null extern))
        (memory 1)
        (func $f (export "f") {locals} {body}))"#,
        locals = decl("a", 62) + &decl("x", 1),
        body = [
            points(63),
            writes("x", 1),
            "(drop (call $use (ref.as_non_null (global.get $g))))".into(),
            reads("a", 62),
            reads("x", 1),
        ]
        .concat(),
    );
    let f = instrumented(&wat, "f");
    let expected: Vec<u32> = [vec![63; 63], vec![64]].concat();
    assert_eq!(f.live_per_point, expected);
    assert_eq!(f.saved_per_point, expected);
}

#[test]
fn a_run_of_points_over_the_budget_is_split_and_the_rest_shares_on() {
    // 65 points with the same 64 locals live: the 65th would make
    // 65 x 64 > 4096, so it starts a new group, which the next point (one
    // local more) joins.
    let wat = module(
        &(decl("a", 64) + &decl("y", 1)),
        &[
            points(65),
            writes("y", 1),
            points(1),
            reads("a", 64),
            reads("y", 1),
        ]
        .concat(),
    );
    let f = instrumented(&wat, "f");
    assert_eq!(f.live_per_point, [vec![64; 65], vec![65]].concat());
    assert_eq!(f.saved_per_point, [vec![64; 64], vec![65; 2]].concat());
}

#[test]
fn one_point_over_the_budget_is_a_group_of_its_own() {
    let wat = module(&decl("a", 4097), &[points(1), reads("a", 4097)].concat());
    let f = instrumented(&wat, "f");
    assert_eq!(f.live_per_point, [4097]);
    assert_eq!(f.saved_per_point, [4097]);
}

#[test]
fn a_non_nullable_reference_argument_is_kept_in_the_frame() {
    // `ref.as_non_null` may trap, so the argument is not computed again
    // after the dispatch; a rewind must pass the same reference (a
    // placeholder of type `(ref extern)` does not exist): it is saved.
    let wat = r#"(module
        (import "env" "use" (func $use (param (ref extern)) (result i32)))
        (memory 1)
        (func $f (export "f") (param $p externref) (result i32)
            (call $use (ref.as_non_null (local.get $p)))))"#;
    let f = instrumented(wat, "f");
    assert_eq!(f.saved_locals, 1);
    assert_eq!(f.live_per_point, [1]);
}

/// The instrumented function named `name` in `wat`, with `options`.
fn instrumented_with(
    wat: &str,
    name: &str,
    options: &Options,
) -> asyncify_transform::InstrumentedFunction {
    let out =
        instrument(wat.as_bytes(), options).unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    out.instrumented
        .into_iter()
        .find(|f| f.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("${name} was not instrumented"))
}

#[test]
fn calls_in_dead_code_are_not_points() {
    // After `return`: a call in the same block (unreachable to the
    // validator) and one in a block opened there (dead to the planner).
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (drop (call $get (i32.const 0)))
            (return (local.get $x))
            (drop (call $get (i32.const 1)))
            (block (drop (call $get (i32.const 2))))
            (i32.const 0)))"#;
    assert_eq!(instrumented(wat, "f").points, 1);
}

const INDIRECT: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (type $t (func (param i32) (result i32)))
    (table (export "table") 1 funcref)
    (memory 1)
    (func $f (export "f") (param $x i32) (param $i i32) (result i32)
        (drop (call $get (local.get $x)))
        (call_indirect (type $t) (i32.const 5) (local.get $i))))"#;

#[test]
fn an_indirect_call_is_a_point_unless_indirect_calls_are_ignored() {
    // The table index is kept in a saved local: a rewind calls the same
    // function again (`call_indirect` takes it after its argument).
    let f = instrumented(INDIRECT, "f");
    assert_eq!(f.points, 2);
    // `$i` (live after the first point) and the table index.
    assert_eq!(f.saved_locals, 2);
    assert_eq!(f.live_per_point, [1, 1]);
    let ignoring = Options {
        ignore_indirect: true,
        ..Options::default()
    };
    let f = instrumented_with(INDIRECT, "f", &ignoring);
    assert_eq!(f.points, 1);
    assert_eq!(f.saved_locals, 1);
}

#[test]
fn a_tail_call_that_cannot_suspend_adds_no_frame_owner() {
    // Only a tail call that may suspend makes frames end with the id of
    // the function that wrote them (4 bytes).
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $pure (param i32) (result i32) (local.get 0))
        (func $f (export "f") (param $x i32) (result i32)
            (drop (call $get (local.get $x)))
            (return_call $pure (i32.const 1))))"#;
    let f = instrumented(wat, "f");
    assert_eq!(f.frame_bytes, 0);
    let suspending = wat.replace("(return_call $pure", "(return_call $f");
    let f = instrumented(&suspending, "f");
    assert_eq!(f.frame_bytes, 4);
}

#[test]
fn an_indirect_tail_call_may_suspend_unless_indirect_calls_are_ignored() {
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (type $t (func (param i32) (result i32)))
        (table (export "table") 1 funcref)
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (drop (call $get (local.get $x)))
            (return_call_indirect (type $t) (i32.const 1) (i32.const 0))))"#;
    assert_eq!(instrumented(wat, "f").frame_bytes, 4);
    let ignoring = Options {
        ignore_indirect: true,
        ..Options::default()
    };
    assert_eq!(instrumented_with(wat, "f", &ignoring).frame_bytes, 0);
}

#[test]
fn a_block_entered_with_a_value_on_the_stack() {
    // The address waits under the block, which holds the point: it is moved
    // to a saved local (the block's stack, not the call's) and put back
    // under the block's `i64` result. The pure `local.get` before the block
    // is not taken for an `if` condition.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (i64.store (local.get $x)
                (block (result i64) (i64.extend_i32_u (call $get (i32.const 1)))))
            (i32.const 0)))"#;
    let f = instrumented(wat, "f");
    assert_eq!(f.saved_locals, 1);
    assert_eq!(f.live_per_point, [1]);
}

#[test]
fn pure_arguments_are_computed_again_unless_they_read_a_non_nullable_local() {
    // `ref.func` gives a non-nullable reference without reading a local:
    // both arguments are computed again right before the call. `$l`, a
    // declared non-nullable local, would be null on a rewind (it is not
    // live after the point, so not restored): its value is kept in the frame.
    let wat = r#"(module
        (type $v (func))
        (import "env" "two" (func $two (param (ref $v) (ref $v)) (result i32)))
        (import "env" "use" (func $use (param (ref $v)) (result i32)))
        (memory 1)
        (func $g (type $v))
        (elem declare func $g)
        (func $f (export "f") (result i32)
            (call $two (ref.func $g) (ref.func $g)))
        (func $h (export "h") (result i32) (local $l (ref $v))
            (local.set $l (ref.func $g))
            (call $use (local.get $l))))"#;
    let f = instrumented(wat, "f");
    assert_eq!(f.saved_locals, 0);
    let ops = output_ops(wat, "f");
    let call = ops
        .iter()
        .position(|op| op == "Call { function_index: 0 }")
        .expect("the call");
    assert_eq!(
        ops[call - 2..call],
        [
            "RefFunc { function_index: 2 }",
            "RefFunc { function_index: 2 }"
        ],
        "{}",
        ops.join("\n")
    );
    let h = instrumented(wat, "h");
    assert_eq!(h.saved_locals, 1);
}

#[test]
fn two_pure_arguments_are_both_computed_again() {
    // `select` cannot trap either.
    let wat = r#"(module
        (import "env" "two" (func $two (param i32 i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (param $y i32) (result i32)
            (call $two (select (local.get $x) (i32.const 1) (local.get $y)) (i32.const 3))))"#;
    let ops = output_ops(wat, "f");
    let call = ops
        .iter()
        .position(|op| op == "Call { function_index: 0 }")
        .expect("the call");
    assert_eq!(
        ops[call - 5..call],
        [
            "LocalGet { local_index: 0 }",
            "I32Const { value: 1 }",
            "LocalGet { local_index: 1 }",
            "Select",
            "I32Const { value: 3 }"
        ],
        "{}",
        ops.join("\n")
    );
}

#[test]
fn locals_for_references_of_one_type_are_distinct() {
    // One type, `(ref null $t)`, for four values held across the `call_ref`:
    // the reference waiting under it (stranded), its callee, and its two
    // arguments (non-nullable, and `ref.as_non_null` may trap, so they are
    // kept in the frame). Each gets a local of its own, saved with the three
    // parameters (live after the first point).
    let wat = r#"(module
        (type $t (func (param (ref $t) (ref $t)) (result i32)))
        (import "env" "get" (func $get (param i32) (result i32)))
        (import "env" "keep" (func $keep (param (ref null $t) i32) (result i32)))
        (table (export "table") 1 funcref)
        (memory 1)
        (func $f (export "f") (param $a (ref $t)) (param $b (ref $t)) (param $n (ref null $t))
            (result i32)
            (drop (call $get (i32.const 0)))
            (call $keep (local.get $n)
                (call_ref $t (ref.as_non_null (local.get $b))
                    (ref.as_non_null (local.get $b))
                    (local.get $a)))))"#;
    let f = instrumented(wat, "f");
    assert_eq!(f.saved_locals, 7, "{f:?}");
}

#[test]
fn a_point_in_an_else_arm() {
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (if (result i32) (local.get $x)
                (then (call $get (i32.const 1)))
                (else (call $get (i32.const 2))))))"#;
    let f = instrumented(wat, "f");
    assert_eq!(f.points, 2);
}

/// A legacy `catch_all` handler (of a `try` in a block) that may suspend and
/// then rethrows (`rethrow {depth}` from `{depth}` blocks deep), in a module with two
/// tags: the handler gets a recorder, which keeps the tag's number and the
/// payload of either tag in saved locals.
fn rethrowing_handler(depth: u32) -> String {
    let open = "block ".repeat(depth as usize);
    let close = "end ".repeat(depth as usize);
    format!(
        r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (tag $e (param i32))
        (tag $g (param i64 i32))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            block (result i32)
            try (result i32)
                (throw $e (local.get $x))
            catch_all
                (drop (call $get (i32.const 1)))
                {open}rethrow {depth} {close}
                (i32.const 0)
            end
            end))"#
    )
}

#[test]
fn a_catch_all_handler_that_rethrows_records_the_exception() {
    // `which`, the i32 shared by both payloads, and the i64: 3 locals.
    for depth in [0, 1] {
        let f = instrumented(&rethrowing_handler(depth), "f");
        assert_eq!(f.saved_locals, 3, "rethrow {depth}");
        assert_eq!(f.live_per_point, [3], "rethrow {depth}");
    }
}

/// A module with an indirect tail call that may suspend and a table holding
/// both imports (both may suspend), an instrumented function (`$f`, the first
/// defined) and one that cannot suspend (`$g`).
const TABLE_OF_IMPORTS: &str = r#"(module
    (import "env" "other" (func $other (param i32) (result i32)))
    (import "env" "get" (func $get (param i32) (result i32)))
    (type $t (func (param i32) (result i32)))
    (table 4 funcref)
    (elem (i32.const 0) func $get $g $other $f)
    (memory 1)
    (func $f (export "f") (param $x i32) (result i32)
        (return_call_indirect (type $t) (i32.const 1) (local.get $x)))
    (func $g (param i32) (result i32) (local.get 0)))"#;

#[test]
fn imports_in_a_table_are_replaced_by_their_wrappers() {
    // A rewind through the indirect tail call must find a frame, which an
    // import does not write: each import in the table is replaced by its
    // wrapper (11 for `other`, 12 for `get`, after the input's 4 functions
    // and the 7 the runtime adds); defined functions stay.
    let out = instrument(TABLE_OF_IMPORTS.as_bytes(), &Options::default())
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    let mut segments = Vec::new();
    for payload in Parser::new(0).parse_all(&out.wasm) {
        if let Payload::ElementSection(reader) = payload.expect("the output parses") {
            for element in reader {
                match element.expect("element").items {
                    wasmparser::ElementItems::Functions(f) => {
                        segments.push(f.into_iter().collect::<Result<Vec<u32>, _>>().unwrap())
                    }
                    wasmparser::ElementItems::Expressions(..) => panic!("expressions"),
                }
            }
        }
    }
    assert_eq!(segments[0], [12, 3, 11, 2]);
}

#[test]
fn the_wrapper_of_an_import_writes_a_frame_of_its_own() {
    // The wrapper of `get`: an instrumented function that calls it with its
    // parameter, its frame only the owner id (2: frame owners are numbered
    // `$f`, then the wrappers).
    let out = instrument(TABLE_OF_IMPORTS.as_bytes(), &Options::default())
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    let text = wasmprinter::print_bytes(&out.wasm).expect("prints");
    let start = text.find("(func (;12;)").expect("the wrapper of `get`");
    let end = start + text[start..].find("\n  )").expect("its end");
    let expected = "(func (;12;) (type $t) (param i32) (result i32)
    (local i32 i32)
    global.get 0
    if ;; label = @1
      i32.const 4
      call 9
      local.set 2
    end
    block ;; label = @1
      block ;; label = @2
        block (result i32) ;; label = @3
          local.get 0
          call $get
          global.get 0
          br_if 1 (;@2;)
        end
        return
      end
      i32.const 4
      call 10
      local.tee 2
      i32.const -1
      i32.ne
      if ;; label = @2
        local.get 2
        i32.const 2
        i32.store
      end
    end
    i32.const 0";
    assert_eq!(&text[start..end], expected);
    // The wrapper of `other` writes its own id, 1 (`$f` has 0).
    let start = text.find("(func (;11;)").expect("the wrapper of `other`");
    let end = start + text[start..].find("\n  )").expect("its end");
    let wrapper = &text[start..end];
    assert!(wrapper.contains("call $other"), "{wrapper}");
    assert!(
        wrapper.contains("i32.const 1\n        i32.store\n"),
        "{wrapper}"
    );
}

#[test]
fn only_parameters_are_restored_as_non_null() {
    // `$p` is a non-nullable parameter: restored from its table with
    // `ref.as_non_null`. `$l` (declared right after the parameters) is
    // declared nullable in the output; it is restored at both points (every
    // saved reference is), and at the first it is still null, so it must not
    // be asserted non-null there.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (import "env" "use" (func $use (param (ref extern))))
        (memory 1)
        (func $f (export "f") (param $p (ref extern)) (param $q externref)
            (local $l (ref extern))
            (drop (call $get (i32.const 1)))
            (local.set $l (local.get $p))
            (drop (call $get (i32.const 2)))
            (call $use (local.get $l))
            (call $use (local.get $p))))"#;
    let ops = output_ops(wat, "f");
    let asserted_restores = ops
        .windows(2)
        .filter(|w| w[0].starts_with("TableGet") && w[1] == "RefAsNonNull")
        .count();
    assert_eq!(asserted_restores, 1, "{}", ops.join("\n"));
}

#[test]
fn a_legacy_try_does_not_take_over_the_dispatch() {
    // A block or loop first in a body takes over its dispatch (see
    // `merges_dispatch`); a legacy `try` does not: the function's dispatch
    // (a `br_table` over both points) comes before the `try`.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            try
                (drop (call $get (i32.const 1)))
            catch_all
            end
            (call $get (i32.const 2))))"#;
    let ops = output_ops(wat, "f");
    let table = ops.iter().position(|op| op.starts_with("BrTable"));
    let try_ = ops.iter().position(|op| op.starts_with("Try"));
    assert!(table.is_some() && table < try_, "{}", ops.join("\n"));
}
