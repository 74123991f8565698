//! Rules of the rewrite (`src/rewrite.rs`) that no fast suite pins, found by
//! mutation testing (tests/README.md, "Mutation testing"): what the output
//! looks like where two shapes both run correctly (a merged dispatch, a range
//! test, an alignment hint, a body copied as it is), and code that only runs
//! in cases the differential suites lack (a legacy `catch_all` that
//! rethrows, which runs under Node only; declared non-nullable locals after
//! others; a branch across typed blocks; a body with a target of many
//! points last). Each test was seen failing with the mutant it kills applied.

mod common;

use asyncify_transform::{instrument, Options};
use common::ops_of;
use wasmparser::{Parser, Payload};

/// The output of `wat` (text or binary) with `options`.
fn output(wat: &[u8], options: &Options) -> Vec<u8> {
    instrument(wat, options)
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"))
        .wasm
}

/// The operators of the output function named `name` (an input function
/// that keeps its index).
fn ops_named(wat: &str, name: &str) -> Vec<String> {
    let out = instrument(wat.as_bytes(), &Options::default())
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    let index = out
        .function_names
        .iter()
        .position(|n| n.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no function ${name}")) as u32;
    ops_of(&out.wasm, index)
}

fn count(ops: &[String], prefix: &str) -> usize {
    ops.iter().filter(|op| op.starts_with(prefix)).count()
}

#[test]
fn a_block_first_in_a_body_takes_over_its_dispatch() {
    // In $m the block starts the body: one dispatch (a `br_table` over the
    // three points) inside it. In $n code comes first, which a rewind must
    // skip: the body's own dispatch, then the block's.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $m (export "m") (param $x i32) (result i32)
            (block
                (drop (call $get (i32.const 1)))
                (drop (call $get (i32.const 2))))
            (call $get (i32.const 3)))
        (func $n (export "n") (param $x i32) (result i32)
            (local.set $x (i32.const 5))
            (block
                (drop (call $get (i32.const 1)))
                (drop (call $get (i32.const 2))))
            (call $get (i32.const 3)))
        (func $o (export "o") (param $x i32) (result i32)
            (block
                (block
                    (drop (call $get (i32.const 1)))
                    (drop (call $get (i32.const 2))))
                (drop (call $get (i32.const 3))))
            (call $get (i32.const 4))))"#;
    let m = ops_named(wat, "m");
    assert_eq!(count(&m, "BrTable"), 1, "{}", m.join("\n"));
    // Merged twice: one dispatch in the inner block.
    let o = ops_named(wat, "o");
    assert_eq!(count(&o, "BrTable"), 1, "{}", o.join("\n"));
    let n = ops_named(wat, "n");
    assert_eq!(count(&n, "BrTable"), 2, "{}", n.join("\n"));
    let table = n.iter().position(|op| op.starts_with("BrTable"));
    let set = n.iter().position(|op| op == "I32Const { value: 5 }");
    assert!(table < set, "{}", n.join("\n"));
}

#[test]
fn values_moved_through_locals_take_one_local_each() {
    // Both arguments can trap (loads): they are moved to two pool locals
    // (after the index and pointer locals 1 and 2) before the dispatch ends.
    let wat = r#"(module
        (import "env" "two" (func $two (param i32 i32) (result i32)))
        (memory 1)
        (func $t (export "t") (param $x i32) (result i32)
            (call $two (i32.load (local.get $x)) (i32.load offset=4 (local.get $x)))))"#;
    let ops = ops_named(wat, "t");
    let call = ops
        .iter()
        .position(|op| op == "Call { function_index: 0 }")
        .expect("the call");
    assert_eq!(
        ops[call - 5..call],
        [
            "LocalSet { local_index: 4 }",
            "LocalSet { local_index: 3 }",
            "End",
            "LocalGet { local_index: 3 }",
            "LocalGet { local_index: 4 }",
        ],
        "{}",
        ops.join("\n")
    );
}

/// `n` points.
fn points(n: usize) -> String {
    "(drop (call $get (i32.const 0)))".repeat(n)
}

#[test]
fn targets_of_many_points_get_a_range_test_and_the_last_is_the_default() {
    // $r: eight points, then a block of two (points 8 and 9). The block's
    // own dispatch has two targets of one point each: a `br_table`, not a
    // range test (point numbers do not matter, only how many a target has).
    // $w: two blocks of nine points each, after code (so the function keeps
    // its dispatch): the first block gets a range test, the second is the
    // default `br`, whatever its size.
    let wat = format!(
        r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $r (export "r") (param $x i32) (result i32)
            {eight}
            (block {two})
            (i32.const 0))
        (func $w (export "w") (param $x i32) (result i32)
            (local.set $x (i32.const 9))
            (block {nine})
            (block {nine})
            (i32.const 0)))"#,
        eight = points(8),
        two = points(2),
        nine = points(9),
    );
    let r = ops_named(&wat, "r");
    assert_eq!(count(&r, "BrTable"), 2, "{}", r.join("\n"));
    assert_eq!(count(&r, "I32LtU"), 0, "{}", r.join("\n"));
    let w = ops_named(&wat, "w");
    let dispatch = w
        .iter()
        .position(|op| op == "LocalGet { local_index: 1 }")
        .expect("the dispatch reads the point index");
    assert_eq!(
        w[dispatch..dispatch + 5],
        [
            "LocalGet { local_index: 1 }",
            "I32Const { value: 9 }",
            "I32LtU",
            "BrIf { relative_depth: 1 }",
            "Br { relative_depth: 2 }",
        ],
        "{}",
        w.join("\n")
    );
}

#[test]
fn a_saved_v128_is_stored_and_loaded_with_its_natural_alignment() {
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $v (export "v") (param $x v128) (result i32)
            (drop (call $get (i32.const 1)))
            (i32x4.extract_lane 0 (local.get $x))))"#;
    let ops = ops_named(wat, "v");
    let v128 =
        |op: &str| -> Vec<String> { ops.iter().filter(|o| o.starts_with(op)).cloned().collect() };
    for op in [v128("V128Load"), v128("V128Store")] {
        assert_eq!(op.len(), 1, "{}", ops.join("\n"));
        assert!(op[0].contains("MemArg { align: 4,"), "{}", op[0]);
    }
}

#[test]
fn a_rethrowing_catch_all_records_which_tag_it_caught() {
    // The recorder (a `try` around the try body) numbers the module's tags
    // from 1 (0: a tag the module cannot name) as it rethrows them to the
    // handlers; a rewind into the handler throws the recorded tag again.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (tag $e (param i32))
        (tag $g (param i64 i32))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            try (result i32)
                (throw $e (local.get $x))
            catch_all
                (drop (call $get (i32.const 1)))
                rethrow 0
            end))"#;
    let text =
        wasmprinter::print_bytes(output(wat.as_bytes(), &Options::default())).expect("prints");
    let start = text
        .find("try (result i32) ;; label = @4")
        .expect("the try");
    let end = 1
        + start
        + text[start..]
            .find("\n          catch_all\n")
            .expect("its handler");
    let expected = "try (result i32) ;; label = @4
            global.get 0
            if ;; label = @5
              local.get 1
              i32.const 1
              i32.eq
              if ;; label = @6
                local.get 2
                throw $e
              end
              local.get 1
              i32.const 2
              i32.eq
              if ;; label = @6
                local.get 3
                local.get 2
                throw $g
              end
              unreachable
            end
            try (result i32) ;; label = @5
              local.get $x
              throw $e
            catch $e
              local.set 2
              i32.const 1
              local.set 1
              rethrow 0 (;@5;)
            catch $g
              local.set 2
              local.set 3
              i32.const 2
              local.set 1
              rethrow 0 (;@5;)
            catch_all
              i32.const 0
              local.set 1
              rethrow 0 (;@5;)
            end
";
    assert_eq!(&text[start..end], expected);
}

#[test]
fn branches_keep_their_targets_across_the_added_blocks() {
    // Labels of three types: a branch to the wrong depth would not validate.
    // `$c` holds no point: copied as a plain block, still a label.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (block $a (result i32)
                (drop (call $get (i32.const 0)))
                (block $c (br_if $c (local.get $x)) (br_if $a (i32.const 4) (local.get $x)) (drop))
                (drop (block $b (result i64)
                    (drop (br_if $b (i64.const 2) (local.get $x)))
                    (drop (call $get (i32.const 1)))
                    (br $a (i32.const 1))))
                (i32.const 3))))"#;
    output(wat.as_bytes(), &Options::default());
}

#[test]
fn a_declared_non_nullable_local_after_others_is_asserted_non_null() {
    // `$l` (local 3) is declared nullable in the output; every read asserts
    // it non-null again, as its reader expects.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (import "env" "use" (func $use (param (ref extern))))
        (memory 1)
        (func $f (export "f") (param $p (ref extern)) (local $a i32) (local $b i64)
            (local $l (ref extern))
            (local.set $l (local.get $p))
            (local.set $a (call $get (i32.const 1)))
            (call $use (local.get $l))))"#;
    let ops = ops_named(wat, "f");
    let read = ops
        .iter()
        .position(|op| op == "LocalGet { local_index: 3 }")
        .expect("the read of $l");
    assert_eq!(ops[read + 1], "RefAsNonNull", "{}", ops.join("\n"));
}

/// The function index that `wasm` exports as `name`.
fn exported(wasm: &[u8], name: &str) -> u32 {
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ExportSection(reader) = payload.expect("the output parses") {
            for export in reader {
                let export = export.expect("export");
                if export.name == name {
                    return export.index;
                }
            }
        }
    }
    panic!("no export {name}")
}

#[test]
fn a_body_nothing_changes_is_copied_byte_for_byte() {
    // `$k` (exported as "k") neither suspends nor refers to anything whose
    // index changes: its body is copied as it is, so an `i32.const 7`
    // written in six bytes stays six bytes.
    use wasm_encoder::{
        CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
        ImportSection, Instruction, MemorySection, MemoryType, Module, TypeSection, ValType,
    };
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    types.ty().function([], [ValType::I32]);
    let mut imports = ImportSection::new();
    imports.import("env", "get", EntityType::Function(0));
    let mut funcs = FunctionSection::new();
    funcs.function(0);
    funcs.function(1);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export("f", ExportKind::Func, 1);
    exports.export("k", ExportKind::Func, 2);
    let mut code = CodeSection::new();
    let mut f = Function::new([]);
    f.instruction(&Instruction::LocalGet(0));
    f.instruction(&Instruction::Call(0));
    f.instruction(&Instruction::End);
    code.function(&f);
    let padded = [0x41, 0x87, 0x80, 0x80, 0x80, 0x00];
    let mut k = Function::new([]);
    k.raw(padded.iter().copied().chain([0x0b]));
    code.function(&k);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&funcs)
        .section(&memories)
        .section(&exports)
        .section(&code);
    let out = output(&module.finish(), &Options::default());
    assert_eq!(exported(&out, "k"), 2);
    assert!(
        out.windows(padded.len()).any(|w| w == padded),
        "the body of $k was encoded again"
    );
}

#[test]
fn calls_in_a_copied_body_follow_the_functions_that_move() {
    // The guest imports `asyncify.start_unwind`: the transform defines it
    // instead, so the functions after it move down by one, and `$h`, which
    // it does not instrument, must call `$g` at its new index.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (import "asyncify" "start_unwind" (func $su (param i32)))
        (memory 1)
        (func $g (result i32) (i32.const 7))
        (func $h (export "h") (result i32) (call $g))
        (func $f (export "f") (param i32) (result i32) (call $get (local.get 0))))"#;
    let out = output(wat.as_bytes(), &Options::default());
    let h = exported(&out, "h");
    assert_eq!(h, 2);
    assert_eq!(ops_of(&out, h), ["Call { function_index: 1 }", "End"]);
}

#[test]
fn a_runtime_import_in_a_table_makes_only_indirect_calls_test_for_unwinding_exactly() {
    // `asyncify.start_rewind` may be called through the table, which can
    // leave the state at rewinding after a `call_indirect` returns: only
    // there is the state compared with 1 (unwinding). After a direct call
    // to another function, testing it for non-zero is enough.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (import "asyncify" "start_rewind" (func $sr (param i32)))
        (type $t (func (param i32)))
        (table (export "table") 1 funcref)
        (elem (i32.const 0) func $sr)
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (call_indirect (type $t) (local.get $x) (i32.const 0))
            (call $get (local.get $x))))"#;
    let out = output(wat.as_bytes(), &Options::default());
    let ops = ops_of(&out, exported(&out, "f"));
    let after = |call: &str| -> Vec<&str> {
        let at = ops.iter().position(|op| op.starts_with(call)).expect(call);
        ops[at + 1..at + 4].iter().map(String::as_str).collect()
    };
    assert_eq!(
        after("CallIndirect")[1..],
        ["I32Const { value: 1 }", "I32Eq"],
        "{}",
        ops.join("\n")
    );
    assert!(
        after("Call { function_index: 0 }")[1].starts_with("BrIf"),
        "{}",
        ops.join("\n")
    );
}

/// The branches of `ops` (`br*` and `rethrow`), with their depths.
fn branches(ops: &[String]) -> Vec<&str> {
    ops.iter()
        .filter(|op| op.starts_with("Br") || op.starts_with("Rethrow"))
        .map(String::as_str)
        .collect()
}

#[test]
fn every_kind_of_branch_is_given_its_output_depth() {
    // Each branch sits before the points of its body, inside the blocks of
    // the dispatch: in the output its target is two blocks further out.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (type $s (struct))
        (memory 1)
        (func $f (export "f") (param $x i32) (param $r anyref) (result i32)
            (drop (block $any (result anyref)
                (block $out
                    (block (br_if $out (local.get $x)))
                    (block (br_if 0 (local.get $x)) (br $out))
                    (block (br_table $out 0 (local.get $x)))
                    (block (drop (br_on_null $out (local.get $r))))
                    (block (br_on_non_null $any (local.get $r)))
                    (block (drop (br_on_cast $any anyref (ref $s) (local.get $r))))
                    (block (drop (br_on_cast_fail $any anyref (ref $s) (local.get $r))))
                    (drop (call $get (i32.const 1)))
                    (drop (call $get (i32.const 2))))
                (ref.null any)))
            (call $get (i32.const 3)))
        (func $g (export "g") (param $x i32) (result i32)
            try
                (drop (call $get (i32.const 1)))
            catch_all
                (block (br_if 0 (local.get $x)) (rethrow 1))
                (drop (call $get (i32.const 2)))
                (drop (call $get (i32.const 3)))
            end
            (i32.const 0)))"#;
    // The input depths: 1 for each `$out`, 2 for each `$any`, `rethrow 1`.
    let f = ops_named(wat, "f");
    assert_eq!(
        branches(&f),
        [
            // The dispatch.
            "BrTable { targets: BrTable { count: 2, default: 5, targets: [1, 2] } }",
            "BrIf { relative_depth: 3 }",
            "BrIf { relative_depth: 0 }",
            "Br { relative_depth: 3 }",
            "BrTable { targets: BrTable { count: 1, default: 0, targets: [3] } }",
            "BrOnNull { relative_depth: 3 }",
            "BrOnNonNull { relative_depth: 4 }",
            "BrOnCast { relative_depth: 4, from_ref_type: anyref, to_ref_type: (ref (module 0)) }",
            "BrOnCastFail { relative_depth: 4, from_ref_type: anyref, to_ref_type: (ref (module 0)) }",
            // The unwind checks.
            "BrIf { relative_depth: 5 }",
            "BrIf { relative_depth: 4 }",
            "BrIf { relative_depth: 1 }",
        ],
        "{}",
        f.join("\n")
    );
    let g = ops_named(wat, "g");
    let rethrows: Vec<&str> = branches(&g)
        .into_iter()
        .filter(|op| op.starts_with("Rethrow"))
        .collect();
    // The recorder's (its `catch_all` passes the exception on), then ours.
    assert_eq!(
        rethrows,
        [
            "Rethrow { relative_depth: 0 }",
            "Rethrow { relative_depth: 3 }"
        ],
        "{}",
        g.join("\n")
    );
}

#[test]
fn asserts_follow_indirect_calls_in_copied_functions() {
    // With indirect calls ignored, `$f` is copied; with asserts on, a call
    // that returns in another state than normal traps.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (type $t (func (param i32) (result i32)))
        (table (export "table") 1 funcref)
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (call_indirect (type $t) (local.get $x) (i32.const 0))))"#;
    let options = Options {
        ignore_indirect: true,
        asserts: true,
        ..Options::default()
    };
    let out = output(wat.as_bytes(), &options);
    let ops = ops_of(&out, exported(&out, "f"));
    let call = ops
        .iter()
        .position(|op| op.starts_with("CallIndirect"))
        .expect("the call");
    assert!(ops[call + 1].starts_with("GlobalGet"), "{}", ops.join("\n"));
    assert_eq!(
        ops[call + 2..call + 5],
        ["If { blockty: Empty }", "Unreachable", "End"]
    );
}

/// A module with a stack-switching instruction in `$run`, which calls an
/// import that may suspend when `suspends`.
fn stack_switching(suspends: bool) -> String {
    let call = if suspends {
        "(drop (call $tick (i32.const 0)))"
    } else {
        ""
    };
    format!(
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
            {call}
            (i32.const 0))
        (func $f (export "f") (param i32) (result i32) (call $tick (local.get 0))))"#
    )
}

#[test]
fn stack_switching_is_refused_only_in_instrumented_functions() {
    // With asserts on, `$run` is copied through the rewrite (not as bytes).
    let asserts = Options {
        asserts: true,
        ..Options::default()
    };
    output(stack_switching(false).as_bytes(), &asserts);
    match instrument(stack_switching(true).as_bytes(), &Options::default()) {
        Err(asyncify_transform::Error::Unsupported { instruction, .. }) => {
            assert_eq!(instruction, "cont_new")
        }
        other => panic!("not refused: {:?}", other.map(|o| o.instrumented)),
    }
}

#[test]
fn a_reference_to_an_import_in_code_becomes_its_wrapper() {
    // An indirect tail call may suspend: `ref.func $get` must give the
    // wrapper of `get` (a function that writes a frame), as tables do.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (type $t (func (param i32) (result i32)))
        (table (export "table") 1 funcref)
        (elem declare func $get)
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (table.set (i32.const 0) (ref.func $get))
            (return_call_indirect (type $t) (i32.const 1) (local.get $x))))"#;
    let out = output(wat.as_bytes(), &Options::default());
    let ops = ops_of(&out, exported(&out, "f"));
    let refs: Vec<&String> = ops.iter().filter(|op| op.starts_with("RefFunc")).collect();
    assert_eq!(refs.len(), 1, "{}", ops.join("\n"));
    assert_ne!(
        refs[0],
        "RefFunc { function_index: 0 }",
        "{}",
        ops.join("\n")
    );
}

#[test]
fn code_after_a_delegate_keeps_its_depths() {
    // The inner `try` (holding a point) delegates to the outer one; the
    // second point right after it, and a branch, are at the outer try's
    // level (the inner try's dispatch state ends with it).
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            try $outer
                try
                    (drop (call $get (i32.const 1)))
                delegate $outer
                (drop (call $get (i32.const 2)))
                (block (br_if 1 (local.get $x)))
            catch_all
            end
            (i32.const 0)))"#;
    let f = ops_named(wat, "f");
    let flow: Vec<&str> = f
        .iter()
        .filter(|op| op.starts_with("Br") || op.starts_with("Delegate"))
        .map(String::as_str)
        .collect();
    assert_eq!(
        flow,
        [
            "BrTable { targets: BrTable { count: 1, default: 2, targets: [1] } }",
            "BrIf { relative_depth: 4 }",
            "Delegate { relative_depth: 1 }",
            // The unwind check of the second point, then the `br_if 1`.
            "BrIf { relative_depth: 2 }",
            "BrIf { relative_depth: 1 }",
        ],
        "{}",
        f.join("\n")
    );
}

#[test]
fn the_frame_owner_id_comes_after_the_point_index() {
    // Two points (so the frame records which) and a tail call that may
    // suspend (so the frame ends with its writer's id): index at 0, id at 4.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $f (export "f") (param $x i32) (result i32)
            (drop (call $get (i32.const 1)))
            (drop (call $get (i32.const 2)))
            (return_call $f (i32.const 3))))"#;
    let ops = ops_named(wat, "f");
    let stores: Vec<&str> = ops
        .iter()
        .filter(|op| op.starts_with("I32Store"))
        .map(String::as_str)
        .collect();
    assert_eq!(stores.len(), 2, "{}", ops.join("\n"));
    assert!(stores[0].contains("offset: 0,"), "{}", stores[0]);
    assert!(stores[1].contains("offset: 4,"), "{}", stores[1]);
}

#[test]
fn a_frame_that_does_not_fit_in_a_64_bit_buffer_gets_all_ones() {
    // `frame_push` returns all ones (never a frame's address) when the frame
    // does not fit, and the unwind code compares with all ones: two
    // `i64.const -1` in a module whose buffer is in a 64-bit memory.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory i64 1)
        (func $f (export "f") (param $x i32) (result i32)
            (drop (call $get (i32.const 1)))
            (local.get $x)))"#;
    let out = output(wat.as_bytes(), &Options::default());
    let mut all_ones = 0;
    for payload in Parser::new(0).parse_all(&out) {
        if let Payload::CodeSectionEntry(func) = payload.expect("the output parses") {
            let mut reader = func.get_operators_reader().expect("operators");
            while !reader.eof() {
                let op = format!("{:?}", reader.read().expect("operator"));
                all_ones += usize::from(op == "I64Const { value: -1 }");
            }
        }
    }
    assert_eq!(all_ones, 2);
}

#[test]
fn a_non_nullable_result_is_refused_where_a_placeholder_is_needed() {
    // Unwinding returns placeholder results; `(ref extern)` has none.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory 1)
        (func $make (export "make") (param $r (ref extern)) (result (ref extern))
            (drop (call $get (i32.const 1)))
            (local.get $r)))"#;
    match instrument(wat.as_bytes(), &Options::default()) {
        Err(asyncify_transform::Error::Unsupported { instruction, .. }) => {
            assert_eq!(instruction, "return")
        }
        other => panic!("not refused: {:?}", other.map(|o| o.instrumented)),
    }
}
