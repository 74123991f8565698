//! Rules of the buffer (`src/buffer.rs`) that the other suites did not pin,
//! found by mutation testing (tests/README.md, "Mutation testing"): the
//! exact-fit boundary of a fixed area, the header left valid after an
//! overflow, the overflow reported when a guest traps while unwinding
//! with its stack past the area, and a 64-bit memory growing as far as its
//! maximum allows, and no promise of growth for a stack above the maximum.

mod common;

use asyncify_linker::{AsyncCaller, Error, Linker};
use common::{instrumented, plain, poll_once, yield_now};
use futures::executor::block_on;
use wasmtime::{Engine, Module, Store};

/// `deep(n)` recurses `n` levels and calls the async `get` at the bottom.
const DEEP: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (memory (export "memory") 1)
    (func $deep (export "deep") (param $n i32) (result i32)
        (local $a i64)
        (local.set $a (i64.extend_i32_u (local.get $n)))
        (if (result i32) (i32.eqz (local.get $n))
            (then (call $get (i32.const 1)))
            (else (i32.add
                (call $deep (i32.sub (local.get $n) (i32.const 1)))
                (i32.wrap_i64 (i64.sub (local.get $a) (local.get $a))))))))"#;

/// The area's header: `cur` and `end`, 4 bytes each in a 32-bit memory.
const HEADER: u64 = 8;
/// Where the tests put the fixed area.
const AT: u64 = 1024;

fn linker(engine: &Engine) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async("env", "get", |_: AsyncCaller<()>, x: i32| async move {
            yield_now().await;
            Ok(x * 2)
        })
        .unwrap();
    linker
}

/// Calls `deep(10)` with a fixed area of `len` bytes at [`AT`].
fn deep_in_fixed_area(
    engine: &Engine,
    module: &Module,
    len: u64,
) -> (Store<()>, wasmtime::Result<i32>, asyncify_linker::Instance) {
    let mut store = Store::new(engine, ());
    let mut linker = linker(engine);
    linker.fixed_buffer(AT, len);
    let instance = linker.instantiate(&mut store, module).unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    let result = block_on(deep.call_async(&mut store, 10));
    (store, result, instance)
}

#[test]
fn a_fixed_area_that_fits_the_stack_exactly_is_enough() {
    let engine = Engine::default();
    let module = instrumented(&engine, DEEP);
    // How many bytes the suspended call saved, with room to spare.
    let needed = {
        let mut store = Store::new(&engine, ());
        let mut linker = linker(&engine);
        linker.fixed_buffer(AT, 4096);
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let deep = instance
            .get_typed_func::<i32, i32>(&mut store, "deep")
            .unwrap();
        let mut call = std::pin::pin!(deep.call_async(&mut store, 10));
        assert!(poll_once(call.as_mut()).is_pending());
        instance.buffer_usage().unwrap().in_use
    };
    assert!(needed > 0);
    let (_, result, _) = deep_in_fixed_area(&engine, &module, HEADER + needed);
    assert_eq!(result.unwrap(), 2, "the stack fits exactly");
    let (mut store, result, instance) = deep_in_fixed_area(&engine, &module, HEADER + needed - 1);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::BufferOverflow { size, grown_to: None }) if *size == needed - 1
        ),
        "{err:?}"
    );
    // The header was reset: nothing saved, the area's end as the linker set it.
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    let header = &memory.data(&store)[AT as usize..(AT + HEADER) as usize];
    let cur = u32::from_le_bytes(header[..4].try_into().unwrap());
    let end = u32::from_le_bytes(header[4..].try_into().unwrap());
    assert_eq!(
        (u64::from(cur), u64::from(end)),
        (AT + HEADER, AT + HEADER + needed - 1)
    );
}

#[test]
fn max_buffer_size_is_the_most_a_suspended_call_may_keep_inclusive() {
    // `max_buffer_size(n)` lets a call keep a stack of exactly n bytes, and
    // fails one of n + 1 bytes (`buffer_size` too is small: the maximum is
    // never below it).
    let engine = Engine::default();
    let module = instrumented(&engine, DEEP);
    let needed = {
        let mut store = Store::new(&engine, ());
        let instance = linker(&engine).instantiate(&mut store, &module).unwrap();
        let deep = instance
            .get_typed_func::<i32, i32>(&mut store, "deep")
            .unwrap();
        let mut call = std::pin::pin!(deep.call_async(&mut store, 10));
        assert!(poll_once(call.as_mut()).is_pending());
        instance.buffer_usage().unwrap().in_use
    };
    for (max, fits) in [(needed, true), (needed - 1, false)] {
        let mut store = Store::new(&engine, ());
        let mut linker = linker(&engine);
        linker
            .fixed_buffer(AT, 4096)
            .buffer_size(8)
            .max_buffer_size(max);
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let deep = instance
            .get_typed_func::<i32, i32>(&mut store, "deep")
            .unwrap();
        let result = block_on(deep.call_async(&mut store, 10));
        if fits {
            assert_eq!(result.unwrap(), 2, "max {max}, stack {needed}");
        } else {
            let err = result.unwrap_err();
            assert!(
                matches!(
                    err.downcast_ref::<Error>(),
                    Some(Error::BufferOverflow { .. })
                ),
                "{err:?}"
            );
        }
    }
}

#[test]
fn a_trap_while_unwinding_past_the_area_is_an_overflow() {
    // A guest whose unwind claims a stack far past the area, then traps
    // (as code that writes past the end would): the call fails with a
    // BufferOverflow naming the area's size, not with the bare trap.
    let wat = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory (export "memory") 1)
        (global $state (mut i32) (i32.const 0))
        (func (export "asyncify_start_unwind") (param $p i32)
            (i32.store (local.get $p) (i32.const 0x8000))
            (global.set $state (i32.const 1)))
        (func (export "asyncify_stop_unwind") (global.set $state (i32.const 0)))
        (func (export "asyncify_start_rewind") (param i32) (global.set $state (i32.const 2)))
        (func (export "asyncify_stop_rewind") (global.set $state (i32.const 0)))
        (func (export "asyncify_get_state") (result i32) (global.get $state))
        (func (export "run") (param $x i32) (result i32)
            (drop (call $get (local.get $x)))
            (if (i32.eq (global.get $state) (i32.const 1)) (then unreachable))
            (i32.const 0)))"#;
    let engine = Engine::default();
    let mut store = Store::new(&engine, ());
    let mut linker = linker(&engine);
    linker.fixed_buffer(AT, 1000);
    let instance = linker
        .instantiate(&mut store, &plain(&engine, wat))
        .unwrap();
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let err = block_on(run.call_async(&mut store, 1)).unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::BufferOverflow {
                size: 992,
                grown_to: None
            })
        ),
        "{err:?}"
    );
}

/// [`DEEP`] in a 64-bit memory of one page that may grow to four.
const DEEP64: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (memory (export "memory") i64 1 4)
    (func $deep (export "deep") (param $n i32) (result i32)
        (if (result i32) (i32.eqz (local.get $n))
            (then (call $get (i32.const 1)))
            (else (call $deep (i32.sub (local.get $n) (i32.const 1)))))))"#;

#[test]
fn a_memory64_that_cannot_grow_as_asked_grows_to_its_maximum() {
    // The buffer asks for ten pages; a 64-bit memory with a maximum of four
    // grows by the three it allows, not by one.
    let engine = Engine::default();
    let module = instrumented(&engine, DEEP64);
    let mut store = Store::new(&engine, ());
    let mut linker = linker(&engine);
    linker.buffer_size(10 * 65536);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    assert_eq!(block_on(deep.call_async(&mut store, 5)).unwrap(), 2);
    let memory = instance.get_memory(&mut store, "memory").unwrap();
    assert_eq!(memory.size(&store), 4);
}

/// [`DEEP`] with four `i64` locals live across each call (36 bytes a frame).
const WIDE: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (memory (export "memory") 1)
    (func $deep (export "deep") (param $n i32) (result i32)
        (local $a i64) (local $b i64) (local $c i64) (local $d i64)
        (local.set $a (i64.extend_i32_u (local.get $n)))
        (local.set $b (local.get $a))
        (local.set $c (local.get $a))
        (local.set $d (local.get $a))
        (if (result i32) (i32.eqz (local.get $n))
            (then (call $get (i32.const 1)))
            (else (i32.add
                (call $deep (i32.sub (local.get $n) (i32.const 1)))
                (i32.wrap_i64 (i64.sub
                    (i64.add (i64.add (local.get $a) (local.get $b))
                             (i64.add (local.get $c) (local.get $d)))
                    (i64.mul (local.get $a) (i64.const 4)))))))))"#;

#[test]
fn a_stack_larger_than_the_maximum_gets_no_promise_of_growth() {
    // The first area is a fresh 64 KiB page, below the 100,000-byte maximum;
    // 4000 frames need about 144 KB. The overflow must not grow the buffer
    // to the maximum and promise room that still cannot hold the stack.
    const MAX: u64 = 100_000;
    let engine = Engine::default();
    let module = instrumented(&engine, WIDE);
    let mut store = Store::new(&engine, ());
    let mut linker = linker(&engine);
    linker.buffer_size(1024).max_buffer_size(MAX);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let deep = instance
        .get_typed_func::<i32, i32>(&mut store, "deep")
        .unwrap();
    let err = block_on(deep.call_async(&mut store, 4000)).unwrap_err();
    match err.downcast_ref::<Error>() {
        Some(Error::BufferOverflow { size, grown_to }) => {
            assert_eq!(*grown_to, None, "{err}");
            assert!(*size < MAX, "{err}");
        }
        _ => panic!("expected a buffer overflow, got {err:?}"),
    }
}
