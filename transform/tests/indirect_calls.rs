//! Which indirect calls may suspend (`src/indirect.rs`): in a module that no
//! function reference can enter from outside, an indirect call is a
//! suspension point only if a function the module references, of the call's
//! type or a subtype of it, may change the state. Any way for a reference to
//! come in (an imported or exported table, an import returning one, an export
//! taking one, a mutable exported global, an imported global, a tag) keeps
//! Binaryen's rule: every indirect call may suspend.

mod common;

use asyncify_transform::{instrument, Options, Reason};
use common::{body_of, instrumented_index};

/// A closed module: `$waits` suspends and sits in the table beside `$adds`,
/// of another type. `table` declares table `$t`; `extra` goes at the end
/// (its imports, which must come first, are moved up).
fn module(table: &str, extra: &str) -> String {
    let (imports, extra): (Vec<&str>, Vec<&str>) = extra
        .lines()
        .map(str::trim)
        .partition(|line| line.starts_with("(import"));
    let (imports, extra) = (imports.join("\n"), extra.join("\n"));
    format!(
        r#"(module
  (type $suspends (func (param i32) (result i32)))
  (type $pure (func (param i32 i32) (result i32)))
  (import "env" "sleep" (func $sleep (param i32)))
  {imports}
  {table}
  (memory 1)
  (elem (table $t) (i32.const 0) func $waits $adds)
  (func $waits (type $suspends) (call $sleep (local.get 0)) (local.get 0))
  (func $adds (type $pure) (i32.add (local.get 0) (local.get 1)))
  (func $calls_waits (export "a") (param i32) (result i32)
    (call_indirect $t (type $suspends) (local.get 0) (i32.const 0)))
  (func $calls_adds (export "b") (param i32) (result i32)
    (call_indirect $t (type $pure) (local.get 0) (local.get 0) (i32.const 1)))
  (func $outer (export "c") (param i32) (result i32) (call $calls_adds (local.get 0)))
  {extra}
)"#
    )
}

const TABLE: &str = "(table $t 4 funcref)";

/// The names of the instrumented functions, in index order.
fn instrumented(wat: &str, options: &Options) -> Vec<String> {
    let out = instrument(wat.as_bytes(), options)
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}\n{wat}"));
    out.instrumented
        .iter()
        .map(|f| {
            f.name
                .clone()
                .unwrap_or_else(|| format!("func {}", f.index))
        })
        .collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_closed_module_instruments_only_calls_of_a_suspending_type() {
    let wat = module(TABLE, "");
    assert_eq!(
        instrumented(&wat, &Options::default()),
        names(&["waits", "calls_waits"])
    );
    // An immutable exported global and an export taking an `externref` let
    // no function reference in.
    let wat = module(
        TABLE,
        r#"(global (export "g") funcref (ref.func $adds))
           (func (export "take") (param externref))"#,
    );
    assert_eq!(
        instrumented(&wat, &Options::default()),
        names(&["waits", "calls_waits"])
    );
}

#[test]
fn the_reason_is_the_indirect_call() {
    let out = instrument(module(TABLE, "").as_bytes(), &Options::default()).expect("instruments");
    let calls_waits = out
        .instrumented
        .iter()
        .find(|f| f.name.as_deref() == Some("calls_waits"))
        .expect("instrumented");
    assert_eq!(calls_waits.reason, Reason::IndirectCall);
}

#[test]
fn every_way_a_reference_can_come_in_keeps_binaryens_rule() {
    let open = [
        ("an exported table", TABLE, r#"(export "t" (table $t))"#),
        (
            "an imported table",
            r#"(import "env" "t" (table $t 4 funcref))"#,
            "",
        ),
        (
            "an import returning a funcref",
            TABLE,
            r#"(import "env" "get" (func (result funcref)))"#,
        ),
        (
            "an export taking a funcref",
            TABLE,
            r#"(func (export "take") (param funcref))"#,
        ),
        (
            "an export taking a typed function reference",
            TABLE,
            r#"(func (export "take") (param (ref null $pure)))"#,
        ),
        (
            "a mutable exported funcref global",
            TABLE,
            r#"(global (export "g") (mut funcref) (ref.null func))"#,
        ),
        (
            "an imported funcref global",
            TABLE,
            r#"(import "env" "g" (global funcref))"#,
        ),
        (
            "an exported tag carrying a funcref",
            TABLE,
            r#"(tag (export "e") (param funcref))"#,
        ),
        (
            "an imported tag carrying a funcref",
            TABLE,
            r#"(import "env" "e" (tag (param funcref)))"#,
        ),
        (
            "a struct holding a funcref and an export taking an externref",
            TABLE,
            r#"(type $box (struct (field funcref)))
               (func (export "take") (param externref))"#,
        ),
    ];
    for (what, table, extra) in open {
        let wat = module(table, extra);
        let got = instrumented(&wat, &Options::default());
        for f in ["waits", "calls_waits", "calls_adds", "outer"] {
            assert!(
                got.iter().any(|g| g == f),
                "with {what}, ${f} must be instrumented (got {got:?})"
            );
        }
    }
}

#[test]
fn a_function_that_makes_a_suspending_indirect_call_makes_its_own_type_suspend() {
    // `$relay` has `$adds`'s type and calls `$waits` indirectly: once it may
    // suspend, so may every call of type `$pure`.
    let wat = module(
        TABLE,
        r#"(elem (table $t) (i32.const 2) func $relay)
           (func $relay (type $pure)
             (call_indirect $t (type $suspends) (local.get 0) (i32.const 0)))"#,
    );
    assert_eq!(
        instrumented(&wat, &Options::default()),
        names(&["waits", "calls_waits", "calls_adds", "outer", "relay"])
    );
}

#[test]
fn an_unreferenced_function_is_not_a_target() {
    let wat = module(
        TABLE,
        r#"(func $waits_too (type $pure) (call $sleep (local.get 0)) (local.get 1))"#,
    );
    assert_eq!(
        instrumented(&wat, &Options::default()),
        names(&["waits", "calls_waits", "waits_too"])
    );
}

#[test]
fn a_suspending_import_in_the_table_is_a_target() {
    let wat = module(
        TABLE,
        r#"(import "env" "pause" (func $pause (type $pure)))
           (elem (table $t) (i32.const 2) func $pause)"#,
    );
    assert_eq!(
        instrumented(&wat, &Options::default()),
        names(&["waits", "calls_waits", "calls_adds", "outer"])
    );
    // The same import, not suspending: `$pure` calls stay plain.
    let options = Options {
        imports: vec!["env.sleep".into()],
        ..Options::default()
    };
    assert_eq!(
        instrumented(&wat, &options),
        names(&["waits", "calls_waits"])
    );
}

#[test]
fn call_ref_is_narrowed_like_call_indirect() {
    let wat = module(
        TABLE,
        r#"(elem declare func $waits $adds)
           (func $ref_waits (export "d") (param i32) (result i32)
             (call_ref $suspends (local.get 0) (ref.func $waits)))
           (func $ref_adds (export "e") (param i32) (result i32)
             (call_ref $pure (local.get 0) (local.get 0) (ref.func $adds)))"#,
    );
    assert_eq!(
        instrumented(&wat, &Options::default()),
        names(&["waits", "calls_waits", "ref_waits"])
    );
}

#[test]
fn a_call_through_a_supertype_reaches_its_subtypes() {
    let wat = r#"(module
  (type $base (sub (func (param i32) (result i32))))
  (type $derived (sub $base (func (param i32) (result i32))))
  (import "env" "sleep" (func $sleep (param i32)))
  (memory 1)
  (table $t 2 funcref)
  (elem (table $t) (i32.const 0) func $waits $plain)
  (func $waits (type $derived) (call $sleep (local.get 0)) (local.get 0))
  (func $plain (type $base) (local.get 0))
  (func $via_base (param i32) (result i32)
    (call_indirect $t (type $base) (local.get 0) (i32.const 0)))
  (func $via_derived (param i32) (result i32)
    (call_indirect $t (type $derived) (local.get 0) (i32.const 0)))
)"#;
    assert_eq!(
        instrumented(wat, &Options::default()),
        names(&["waits", "via_base", "via_derived"])
    );
    // Only the supertype's function suspends: a call through the subtype
    // cannot reach it.
    let wat = wat
        .replace(
            "(func $waits (type $derived) (call $sleep (local.get 0)) (local.get 0))",
            "(func $waits (type $derived) (local.get 0))",
        )
        .replace(
            "(func $plain (type $base) (local.get 0))",
            "(func $plain (type $base) (call $sleep (local.get 0)) (local.get 0))",
        );
    assert_eq!(
        instrumented(&wat, &Options::default()),
        names(&["plain", "via_base"])
    );
}

#[test]
fn only_the_suspending_call_in_an_instrumented_function_is_a_point() {
    // `$both` is instrumented for its `$suspends` call; its `$pure` call is
    // no suspension point, so the output saves less than with every
    // indirect call suspending (as when the table is exported).
    let both = r#"(func $both (export "both") (param i32) (result i32)
        (i32.add
          (call_indirect $t (type $suspends) (local.get 0) (i32.const 0))
          (call_indirect $t (type $pure) (local.get 0) (local.get 0) (i32.const 1))))"#;
    let closed =
        instrument(module(TABLE, both).as_bytes(), &Options::default()).expect("instruments");
    let open_extra = format!("{both} (export \"t\" (table $t))");
    let open = instrument(module(TABLE, &open_extra).as_bytes(), &Options::default())
        .expect("instruments");
    let (closed, open) = (body_size(&closed, "both"), body_size(&open, "both"));
    assert!(closed < open, "closed {closed} B against open {open} B");
}

/// The size of the output body of instrumented function `name`.
fn body_size(out: &asyncify_transform::Output, name: &str) -> usize {
    body_of(&out.wasm, instrumented_index(out, name))
        .as_bytes()
        .len()
}

#[test]
fn ignore_indirect_and_the_only_list_are_unchanged() {
    let wat = module(TABLE, "");
    let ignore = Options {
        ignore_indirect: true,
        ..Options::default()
    };
    assert_eq!(instrumented(&wat, &ignore), names(&["waits"]));
    let only = Options {
        only_list: Some(vec!["calls_adds".into()]),
        ..Options::default()
    };
    assert_eq!(instrumented(&wat, &only), names(&["calls_adds"]));
}
