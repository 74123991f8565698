//! Rules of the driver (`src/driver.rs`) that the other suites did not pin,
//! found by mutation testing (tests/README.md, "Mutation testing"): the
//! driver's thread-local bookkeeping must be undone after every call, also
//! when a host function panics, and an import that completes at once must
//! leave the call able to suspend at the next import.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use asyncify_linker::{AsyncCaller, Error, Linker};
use common::{instance_with_export, instrumented, plain, yield_now};
use futures::executor::block_on;
use wasmtime::Engine;

/// `run(x)` calls `check(x)` (a synchronous host function) and returns
/// `get(x) + get(x + 1)` (`get` is async).
const MODULE: &str = r#"(module
    (import "env" "check" (func $check (param i32)))
    (import "env" "get" (func $get (param i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "run") (param $x i32) (result i32)
        (call $check (local.get $x))
        (i32.add
            (call $get (local.get $x))
            (call $get (i32.add (local.get $x) (i32.const 1))))))"#;

/// `check` panics on 13; `get(x)` waits once for odd `x` and answers at
/// once for even `x`, returning `10 * x`.
fn linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap("env", "check", |x: i32| assert!(x != 13, "unlucky"))
        .unwrap();
    linker
        .func_wrap_async("env", "get", |_: AsyncCaller<()>, x: i32| async move {
            if x % 2 != 0 {
                yield_now().await;
            }
            Ok(x * 10)
        })
        .unwrap();
    linker
}

#[test]
fn an_import_that_answers_at_once_leaves_the_next_one_free_to_wait() {
    // get(2) is ready on its first poll, get(3) then waits: the driver must
    // still be there for the second import of the same call.
    let engine = Engine::default();
    let (mut store, _, run) =
        instance_with_export(&linker(&engine), &instrumented(&engine, MODULE), (), "run");
    assert_eq!(block_on(run.call_async(&mut store, 2)).unwrap(), 50);
}

#[test]
fn a_panic_in_a_host_function_leaves_no_driver_behind() {
    // After the panic, a call that no driver makes (wasmtime's own, on the
    // same thread) must find no driver: `get(1)`, which waits, fails with
    // CannotSuspend instead of unwinding into a driver that is gone.
    let engine = Engine::default();
    let (mut store, instance, run) =
        instance_with_export(&linker(&engine), &instrumented(&engine, MODULE), (), "run");
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        block_on(run.call_async(&mut store, 13))
    }));
    assert!(panicked.is_err(), "the host function's panic was swallowed");
    let raw = instance
        .wasmtime()
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let err = raw.call(&mut store, 1).unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::CannotSuspend { .. })
        ),
        "{err:?}"
    );
}

/// Uses about `depth` times 4 KiB of the host stack, then runs `f`.
fn deep<R>(depth: u32, f: &mut dyn FnMut() -> R) -> R {
    let pad = std::hint::black_box([0u8; 4096]);
    if depth == 0 {
        return f();
    }
    let r = deep(depth - 1, f);
    std::hint::black_box(&pad);
    r
}

#[test]
fn the_nesting_limit_measures_from_each_outermost_call() {
    // A call from a shallow host stack, then one from 128 KiB deeper: each
    // is outermost, so neither is nested, whatever the limit.
    let engine = Engine::default();
    let mut linker = linker(&engine);
    linker.max_nesting_stack(64 * 1024);
    let module = instrumented(&engine, MODULE);
    let (mut store, _, run) = instance_with_export(&linker, &module, (), "run");
    assert_eq!(block_on(run.call_async(&mut store, 1)).unwrap(), 30);
    let result = deep(32, &mut || block_on(run.call_async(&mut store, 1)));
    assert_eq!(result.unwrap(), 30);
}

#[test]
fn a_rewind_that_returns_before_the_import_is_named_as_such() {
    // A guest that keeps the ABI's state but, told to rewind, returns at
    // once instead of calling the import that suspended: the call fails,
    // saying so (not that the instance stayed in the rewinding state).
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory (export "memory") 1)
        (global $state (mut i32) (i32.const 0))
        (func (export "asyncify_start_unwind") (param i32) (global.set $state (i32.const 1)))
        (func (export "asyncify_stop_unwind") (global.set $state (i32.const 0)))
        (func (export "asyncify_start_rewind") (param i32) (global.set $state (i32.const 2)))
        (func (export "asyncify_stop_rewind") (global.set $state (i32.const 0)))
        (func (export "asyncify_get_state") (result i32) (global.get $state))
        (func (export "run") (param $x i32) (result i32)
            (if (i32.eq (global.get $state) (i32.const 2))
                (then (return (i32.const 0))))
            (call $get (local.get $x))))"#;
    let engine = Engine::default();
    let (mut store, instance, run) =
        instance_with_export(&linker(&engine), &plain(&engine, wat), (), "run");
    assert!(instance.is_instrumented());
    let err = block_on(run.call_async(&mut store, 1)).unwrap_err();
    assert!(
        err.to_string()
            .contains("a rewind returned without reaching the import that suspended"),
        "{err:?}"
    );
}
