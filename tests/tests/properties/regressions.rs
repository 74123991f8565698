//! Modules the property tests found failing, minimized, as explicit tests.
//! Each names the option set and the calls; [`check`] runs them the way the
//! property does. A case that fails because of a transform bug not fixed yet
//! is `#[ignore = "transform bug: ..."]` until it is.

use asyncify_tests::Val;

use crate::{check_case, OptionSet};

/// Checks `wat` under `set` with `calls` and the schedules `Never`, `Always`
/// and `pattern`; panics with the driver's report on a difference.
fn check(wat: &str, set: OptionSet, calls: &[(&str, Vec<Val>)], pattern: &[bool]) {
    let wasm = asyncify_tests::wasm(wat);
    let calls: Vec<(String, Vec<Val>)> = calls
        .iter()
        .map(|(e, a)| (e.to_string(), a.clone()))
        .collect();
    if let Err(report) = check_case(&wasm, set, &calls, pattern) {
        panic!("{report}");
    }
}

/// The shrunk case that caught a deliberately broken transform (one saved
/// local dropped from every frame): `memory.size`'s result waits on the
/// operand stack across two suspending calls in a loop, under a multi-value
/// block's results. Kept as a check that values below a call's arguments
/// survive, under every option set.
#[test]
fn stack_values_below_calls_in_a_loop() {
    const WAT: &str = r#"(module
      (import "inject" "i32" (func $i32 (param i32) (result i32)))
      (memory (export "memory") 16 16)
      (memory (export "mem0") 1 1)
      (func (export "f1") (param f32) (result f64)
        (loop (result i32)
          memory.size 1
          (block (result f64 i32 i32)
            f64.const 0
            i32.const 0
            i32.const 0)
          drop
          call $i32
          drop
          drop
          call $i32)
        drop
        f64.const 0))"#;
    for set in OptionSet::ALL {
        check(WAT, set, &[("f1", vec![Val::F32(0)])], &[false, true]);
    }
}
