//! A plan rule of the transform (`transform/src/plan.rs`) that the fast
//! suites did not pin, found by mutation testing (tests/README.md,
//! "Mutation testing"): when an indirect tail call may suspend, every
//! suspending import that a table holds is replaced by a wrapper that writes
//! a frame, whatever its index.

mod common;

use asyncify_linker::{AsyncCaller, Linker};
use common::{instrumented, poll_once, yield_now};
use futures::executor::block_on;
use wasmtime::{Engine, Store};

#[test]
fn an_indirect_tail_call_to_a_suspending_import_that_is_not_import_0() {
    // Only `get` (import 1) is in the table; `tail` reaches it with
    // `return_call_indirect`, and `get` waits.
    let wat = r#"(module
        (import "env" "a" (func $a (param i32) (result i32)))
        (import "env" "get" (func $get (param i32) (result i32)))
        (type $t (func (param i32) (result i32)))
        (table 1 funcref)
        (elem (i32.const 0) $get)
        (memory (export "memory") 1)
        (func $tail (param $x i32) (result i32)
            (return_call_indirect (type $t) (local.get $x) (i32.const 0)))
        (func (export "run") (param $x i32) (result i32)
            (i32.add (call $tail (local.get $x)) (call $a (i32.const 1)))))"#;
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    linker.func_wrap("env", "a", |x: i32| x * 100).unwrap();
    linker
        .func_wrap_async("env", "get", |_: AsyncCaller<()>, x: i32| async move {
            yield_now().await;
            Ok(x * 2)
        })
        .unwrap();
    let mut store = Store::new(&engine, ());
    let instance = linker
        .instantiate(&mut store, &instrumented(&engine, wat))
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let mut call = std::pin::pin!(run.call_async(&mut store, 5));
    assert!(poll_once(call.as_mut()).is_pending());
    assert_eq!(block_on(call).unwrap(), 110);
}
