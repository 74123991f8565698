//! Guests built to break the driver: lying runtime exports and headers,
//! self-unwinding, re-entrance at depth, traps at every step of the protocol,
//! tampering with saved stacks, memory at its maximum.
//!
//! Every case runs in a child process (this test binary again, with
//! `ASYNCIFY_HOSTILE_CASE` naming the case and the `child` test selected), on
//! a thread with an 8 MiB stack: a case that aborts the process (a stack
//! overflow, a panic while panicking) fails its test with the child's status
//! and output, instead of taking the whole test run down.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use asyncify_linker::{AsyncCaller, Error, Instance, Linker};
use common::yield_now;
use futures::executor::block_on;
use wasmtime::{Engine, Module, Store, Val};

#[path = "../../fuzz/harness/linker_driver.rs"]
mod linker_driver;

const CASE_VAR: &str = "ASYNCIFY_HOSTILE_CASE";
const PASSED: &str = "hostile case passed:";

/// The entry point of the child processes; does nothing in a normal run.
#[test]
fn child() {
    let Ok(name) = std::env::var(CASE_VAR) else {
        return;
    };
    let case = CASES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no hostile case named `{name}`"))
        .1;
    let thread = std::thread::Builder::new()
        .name(name.clone())
        .stack_size(8 << 20)
        .spawn(case)
        .unwrap();
    if thread.join().is_err() {
        panic!("hostile case `{name}` failed");
    }
    println!("{PASSED} {name}");
}

/// Runs case `name` in a child process and fails unless it passed there.
fn in_child(name: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let how = {
        use std::os::unix::process::ExitStatusExt;
        match out.status.signal() {
            Some(sig) => format!("killed by signal {sig}"),
            None => format!("{}", out.status),
        }
    };
    assert!(
        out.status.success() && stdout.contains(&format!("{PASSED} {name}")),
        "hostile case `{name}` failed in its child process ({how})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

macro_rules! hostile_cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                in_child(stringify!($name));
            }
        )*
        const CASES: &[(&str, fn())] = &[$((stringify!($name), cases::$name)),*];
    };
}

hostile_cases!(
    trap_after_start_rewind_leaves_the_instance_normal,
    traps_and_lies_at_every_protocol_step,
    header_overwritten_while_suspended,
    saved_stack_rewritten_by_a_nested_call,
    runtime_export_reexporting_an_async_import,
    runtime_export_calling_an_async_import,
    deep_reentrance_fails_cleanly,
    nested_saved_stacks_share_one_budget,
    lying_header_after_the_unwind,
    absurd_buffer_settings,
    memory_at_its_maximum_says_it_cannot_grow,
    memory_near_its_maximum_promises_what_it_gets,
    import_outside_the_instrumented_set_with_asserts,
    import_outside_the_instrumented_set_without_asserts,
    self_unwinding_guest,
    fuzz_harness_smoke,
);

/// Swaps the names of pairs of exports in a binary module: `(a, b)` makes
/// the export called `a` be called `b` and the other way round.
fn swap_exports(wasm: &[u8], pairs: &[(&str, &str)]) -> Vec<u8> {
    fn leb(bytes: &[u8], at: &mut usize) -> u32 {
        let (mut value, mut shift) = (0u32, 0);
        loop {
            let b = bytes[*at];
            *at += 1;
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return value;
            }
            shift += 7;
        }
    }
    fn put_leb(out: &mut Vec<u8>, mut value: u32) {
        loop {
            let b = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let mut out = wasm[..8].to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at) as usize;
        let payload = &wasm[at..at + size];
        at += size;
        if id != 7 {
            out.push(id);
            put_leb(&mut out, size as u32);
            out.extend_from_slice(payload);
            continue;
        }
        let mut p = 0;
        let count = leb(payload, &mut p);
        let mut section = Vec::new();
        put_leb(&mut section, count);
        for _ in 0..count {
            let len = leb(payload, &mut p) as usize;
            let name = std::str::from_utf8(&payload[p..p + len]).unwrap();
            p += len;
            let renamed = pairs
                .iter()
                .find_map(|&(a, b)| match name {
                    n if n == a => Some(b),
                    n if n == b => Some(a),
                    _ => None,
                })
                .unwrap_or(name);
            put_leb(&mut section, renamed.len() as u32);
            section.extend_from_slice(renamed.as_bytes());
            section.push(payload[p]);
            p += 1;
            let index = leb(payload, &mut p);
            put_leb(&mut section, index);
        }
        out.push(7);
        put_leb(&mut out, section.len() as u32);
        out.extend(section);
    }
    out
}

/// Instruments `wat` with `pass_args`, then swaps the export names in `swaps`.
fn hostile_module(
    engine: &Engine,
    wat: &str,
    pass_args: &[&str],
    swaps: &[(&str, &str)],
) -> Module {
    let mut options = asyncify_transform::Options::default();
    for arg in pass_args {
        options.apply_pass_arg(arg).unwrap();
    }
    let out = asyncify_transform::instrument(wat.as_bytes(), &options)
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    Module::new(engine, swap_exports(&out.wasm, swaps)).unwrap()
}

/// The five runtime exports, each swapped with its hostile wrapper `h_*`.
const RUNTIME_SWAPS: [(&str, &str); 5] = [
    ("asyncify_start_unwind", "h_start_unwind"),
    ("asyncify_stop_unwind", "h_stop_unwind"),
    ("asyncify_start_rewind", "h_start_rewind"),
    ("asyncify_stop_rewind", "h_stop_rewind"),
    ("asyncify_get_state", "h_get_state"),
];

/// A module whose runtime exports are wrappers around the real ones that
/// misbehave once when armed (`arm(step)`): steps 1..=10 trap before (odd)
/// or after (even) the real function of start_unwind, stop_unwind,
/// start_rewind, stop_rewind, get_state; 11, 12, 13 make get_state return
/// 1, 2, 7; 14..=17 skip the real start_unwind, stop_unwind, start_rewind,
/// stop_rewind. `work(n)` recurses n deep with live locals and waits in
/// `env.get` at the bottom: work(n) = get(7) + 2n(n + 1).
const ARMED: &str = r#"(module
    (import "env" "get" (func $get (param i32) (result i32)))
    (import "asyncify" "start_unwind" (func $a_start_unwind (param i32)))
    (import "asyncify" "stop_unwind" (func $a_stop_unwind))
    (import "asyncify" "start_rewind" (func $a_start_rewind (param i32)))
    (import "asyncify" "stop_rewind" (func $a_stop_rewind))
    (import "asyncify" "get_state" (func $a_get_state (result i32)))
    (memory (export "memory") 1)
    (global $armed (mut i32) (i32.const 0))
    (global $hdr (mut i32) (i32.const 0))
    (func (export "arm") (param i32) (global.set $armed (local.get 0)))
    (func (export "last_header") (result i32) (global.get $hdr))
    (func $fire (param i32) (result i32)
        (if (result i32) (i32.eq (global.get $armed) (local.get 0))
            (then (global.set $armed (i32.const 0)) (i32.const 1))
            (else (i32.const 0))))
    (func $trap_if (param i32) (if (call $fire (local.get 0)) (then unreachable)))
    (func $h_start_unwind (export "h_start_unwind") (param i32)
        (global.set $hdr (local.get 0))
        (call $trap_if (i32.const 1))
        (if (i32.eqz (call $fire (i32.const 14))) (then (call $a_start_unwind (local.get 0))))
        (call $trap_if (i32.const 2)))
    (func $h_stop_unwind (export "h_stop_unwind")
        (call $trap_if (i32.const 3))
        (if (i32.eqz (call $fire (i32.const 15))) (then (call $a_stop_unwind)))
        (call $trap_if (i32.const 4)))
    (func $h_start_rewind (export "h_start_rewind") (param i32)
        (call $trap_if (i32.const 5))
        (if (i32.eqz (call $fire (i32.const 16))) (then (call $a_start_rewind (local.get 0))))
        (call $trap_if (i32.const 6)))
    (func $h_stop_rewind (export "h_stop_rewind")
        (call $trap_if (i32.const 7))
        (if (i32.eqz (call $fire (i32.const 17))) (then (call $a_stop_rewind)))
        (call $trap_if (i32.const 8)))
    (func $h_get_state (export "h_get_state") (result i32)
        (call $trap_if (i32.const 9))
        (if (call $fire (i32.const 11)) (then (return (i32.const 1))))
        (if (call $fire (i32.const 12)) (then (return (i32.const 2))))
        (if (call $fire (i32.const 13)) (then (return (i32.const 7))))
        (call $a_get_state)
        (call $trap_if (i32.const 10)))
    (func $work (export "work") (param $n i32) (result i32)
        (local $a i32) (local $b i64)
        (local.set $a (i32.mul (local.get $n) (i32.const 3)))
        (local.set $b (i64.extend_i32_u (local.get $n)))
        (if (result i32) (i32.eqz (local.get $n))
            (then (call $get (i32.const 7)))
            (else (i32.add (i32.add (local.get $a) (i32.wrap_i64 (local.get $b)))
                (call $work (i32.sub (local.get $n) (i32.const 1))))))))"#;

fn work_result(n: i32) -> i32 {
    70 + 2 * n * (n + 1)
}

/// `env.get(x) = 10x`, pending once first while `pending` is set.
fn get_linker(engine: &Engine, pending: Arc<AtomicBool>) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async("env", "get", move |_: AsyncCaller<()>, x: i32| {
            let pending = pending.load(Ordering::Relaxed);
            async move {
                if pending {
                    yield_now().await;
                }
                Ok(x * 10)
            }
        })
        .unwrap();
    linker
}

fn armed_module(engine: &Engine) -> Module {
    hostile_module(engine, ARMED, &["asyncify-removelist@h_*"], &RUNTIME_SWAPS)
}

/// Calls the guest's `arm(step)` directly, past the linker.
fn arm(store: &mut Store<()>, instance: &Instance, step: i32) {
    instance
        .wasmtime()
        .get_typed_func::<i32, ()>(&mut *store, "arm")
        .unwrap()
        .call(&mut *store, step)
        .unwrap();
}

fn call_work(
    store: &mut Store<()>,
    instance: &Instance,
    pending: &AtomicBool,
    n: i32,
    wait: bool,
) -> wasmtime::Result<i32> {
    pending.store(wait, Ordering::Relaxed);
    let work = instance.get_typed_func::<i32, i32>(&mut *store, "work")?;
    block_on(work.call_async(&mut *store, n))
}

/// After a misbehaving call, honest calls (waiting or not) give the right
/// results and the buffer holds nothing.
fn check_recovered(store: &mut Store<()>, instance: &Instance, pending: &AtomicBool, what: &str) {
    for (n, wait) in [(2, true), (1, false), (4, true), (0, true)] {
        match call_work(store, instance, pending, n, wait) {
            Ok(r) => assert_eq!(r, work_result(n), "{what}: work({n}) after it"),
            Err(e) => panic!("{what}: work({n}) after it failed: {e:?}"),
        }
    }
    let usage = instance.buffer_usage().unwrap();
    assert_eq!((usage.suspended, usage.in_use), (0, 0), "{what}: {usage:?}");
}

mod cases {
    use super::*;

    /// Item 1: the guest's `asyncify_start_rewind` sets the state, then traps.
    pub fn trap_after_start_rewind_leaves_the_instance_normal() {
        let engine = Engine::default();
        let module = armed_module(&engine);
        let pending = Arc::new(AtomicBool::new(true));
        let linker = get_linker(&engine, pending.clone());
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        assert_eq!(
            call_work(&mut store, &instance, &pending, 5, true).unwrap(),
            work_result(5)
        );
        arm(&mut store, &instance, 6);
        let err = call_work(&mut store, &instance, &pending, 5, true).unwrap_err();
        assert!(format!("{err:?}").contains("unreachable"), "{err:?}");
        check_recovered(&mut store, &instance, &pending, "trap after start_rewind");
    }

    /// Items 1 and 2: every step of the protocol traps (before or after the
    /// real function) or lies, once; the instance is normal afterwards.
    pub fn traps_and_lies_at_every_protocol_step() {
        let engine = Engine::default();
        let module = armed_module(&engine);
        let pending = Arc::new(AtomicBool::new(true));
        let linker = get_linker(&engine, pending.clone());
        for step in 1..=17 {
            for (n, wait) in [(3, true), (3, false)] {
                let mut store = Store::new(&engine, ());
                let instance = linker.instantiate(&mut store, &module).unwrap();
                arm(&mut store, &instance, step);
                let first = call_work(&mut store, &instance, &pending, n, wait);
                // A step this call did not reach stays armed: disarm it.
                arm(&mut store, &instance, 0);
                if let Ok(r) = &first {
                    // A lie the guest tells about itself may give it a wrong
                    // result; a trap never does.
                    if step <= 10 {
                        assert_eq!(*r, work_result(n), "step {step}, wait {wait}");
                    }
                }
                check_recovered(
                    &mut store,
                    &instance,
                    &pending,
                    &format!("step {step}, wait {wait}"),
                );
            }
        }
    }

    /// Items 1 and 5: a nested call overwrites the buffer header while the
    /// outer call is suspended.
    pub fn header_overwritten_while_suspended() {
        tamper_while_suspended(&[0x00, 0xff, 0x7f, 0x10]);
    }

    /// Item 5: a nested call into the same instance rewrites every byte of
    /// the guest's memory (so the saved frames too) while the outer call is
    /// suspended, with 32 patterns.
    pub fn saved_stack_rewritten_by_a_nested_call() {
        let patterns: Vec<u8> = (0..32u8)
            .map(|k| k.wrapping_mul(37).wrapping_add(3))
            .collect();
        tamper_while_suspended(&patterns);
    }

    fn tamper_while_suspended(patterns: &[u8]) {
        const WAT: &str = r#"(module
            (import "env" "get" (func $get (param i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "scribble") (param $byte i32)
                (memory.fill (i32.const 0) (local.get $byte)
                    (i32.mul (memory.size) (i32.const 65536))))
            (func $work (export "work") (param $n i32) (result i32)
                (local $a i32) (local $b i64) (local $c f64)
                (local.set $a (i32.mul (local.get $n) (i32.const 3)))
                (local.set $b (i64.extend_i32_u (local.get $n)))
                (local.set $c (f64.convert_i32_u (local.get $n)))
                (if (result i32) (i32.eqz (local.get $n))
                    (then (call $get (i32.const 7)))
                    (else (i32.add
                        (i32.add (local.get $a) (i32.wrap_i64 (local.get $b)))
                        (i32.add (i32.trunc_f64_u (local.get $c))
                            (call $work (i32.sub (local.get $n) (i32.const 1)))))))))"#;
        let engine = Engine::default();
        let module = common::instrumented(&engine, WAT);
        let pattern = Arc::new(AtomicU32::new(0));
        let mut linker = Linker::new(&engine);
        let p = pattern.clone();
        linker
            .func_wrap_async("env", "get", move |caller: AsyncCaller<()>, x: i32| {
                let byte = p.load(Ordering::Relaxed) as i32;
                async move {
                    // Suspend first, then scribble over memory from a nested
                    // call while this call's stack is saved.
                    yield_now().await;
                    let scribble = caller.get_func("scribble").unwrap();
                    caller.call_async(&scribble, vec![Val::I32(byte)]).await?;
                    Ok(x * 10)
                }
            })
            .unwrap();
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let work = instance
            .get_typed_func::<i32, i32>(&mut store, "work")
            .unwrap();
        // work(n) = 70 + 5n(n + 1) / 2 * ... computed by the plain module.
        let expected = |n: i32| 70 + (1..=n).map(|k| 5 * k).sum::<i32>();
        let mut forged = Vec::new();
        for &byte in patterns {
            pattern.store(u32::from(byte), Ordering::Relaxed);
            for n in [1, 6] {
                match block_on(work.call_async(&mut store, n)) {
                    Ok(r) if r == expected(n) => {}
                    other => forged.push(format!("pattern {byte:#04x}, work({n}): {other:?}")),
                }
            }
        }
        assert!(
            forged.is_empty(),
            "tampering changed the outcome:\n{}",
            forged.join("\n")
        );
        let usage = instance.buffer_usage().unwrap();
        assert_eq!((usage.suspended, usage.in_use), (0, 0));
    }

    const SLEEPER: &str = r#"(module
        (import "env" "sleep" (func $sleep (param i32)))
        (memory (export "memory") 1)
        (func (export "h_start_unwind") (param i32) (call $sleep (local.get 0)))
        (func (export "nap") (param i32) (result i32)
            (call $sleep (local.get 0))
            (i32.add (local.get 0) (i32.const 1))))"#;

    fn sleeper_linker(engine: &Engine, wait: Arc<AtomicBool>) -> Linker<()> {
        let mut linker = Linker::new(engine);
        linker
            .func_wrap_async("env", "sleep", move |_: AsyncCaller<()>, _: i32| {
                let wait = wait.load(Ordering::Relaxed);
                async move {
                    if wait {
                        yield_now().await;
                    }
                    Ok(())
                }
            })
            .unwrap();
        linker
    }

    fn check_not_reentered(module: &Module, engine: &Engine) {
        let wait = Arc::new(AtomicBool::new(true));
        let linker = sleeper_linker(engine, wait.clone());
        let mut store = Store::new(engine, ());
        let instance = linker.instantiate(&mut store, module).unwrap();
        let nap = instance
            .get_typed_func::<i32, i32>(&mut store, "nap")
            .unwrap();
        let err = block_on(nap.call_async(&mut store, 4)).unwrap_err();
        assert!(
            matches!(err.downcast_ref::<Error>(), Some(Error::Protocol { message, .. }) if message.contains("asyncify_start_unwind")),
            "{err:?}"
        );
        wait.store(false, Ordering::Relaxed);
        assert_eq!(block_on(nap.call_async(&mut store, 4)).unwrap(), 5);
    }

    /// Item 2: the module re-exports its async import as
    /// `asyncify_start_unwind`, so each unwind would start another.
    pub fn runtime_export_reexporting_an_async_import() {
        let engine = Engine::default();
        let wat = r#"(module
            (import "env" "sleep" (func $sleep (param i32)))
            (memory (export "memory") 1)
            (export "h_start_unwind" (func $sleep))
            (func (export "nap") (param i32) (result i32)
                (call $sleep (local.get 0))
                (i32.add (local.get 0) (i32.const 1))))"#;
        let module = hostile_module(&engine, wat, &[], &[RUNTIME_SWAPS[0]]);
        check_not_reentered(&module, &engine);
    }

    /// Item 2, with a function in between: `asyncify_start_unwind` calls the
    /// async import.
    pub fn runtime_export_calling_an_async_import() {
        let engine = Engine::default();
        let module = hostile_module(
            &engine,
            SLEEPER,
            &["asyncify-removelist@h_start_unwind"],
            &[RUNTIME_SWAPS[0]],
        );
        check_not_reentered(&module, &engine);
    }

    /// Item 3: every level calls back into the instance and waits once.
    pub fn deep_reentrance_fails_cleanly() {
        const WAT: &str = r#"(module
            (import "env" "down" (func $down (param i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "level") (param i32) (result i32)
                (i32.add (call $down (local.get 0)) (i32.const 1))))"#;
        let engine = Engine::default();
        let module = common::instrumented(&engine, WAT);
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap_async(
                "env",
                "down",
                |caller: AsyncCaller<()>, n: i32| async move {
                    yield_now().await;
                    if n == 0 {
                        return Ok(0);
                    }
                    let level = caller.get_func("level").unwrap();
                    let out = caller.call_async(&level, vec![Val::I32(n - 1)]).await?;
                    Ok(out[0].unwrap_i32())
                },
            )
            .unwrap();
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let level = instance
            .get_typed_func::<i32, i32>(&mut store, "level")
            .unwrap();
        assert_eq!(block_on(level.call_async(&mut store, 100)).unwrap(), 101);
        for depth in [10_000, 100_000] {
            match block_on(level.call_async(&mut store, depth)) {
                Ok(r) => assert_eq!(r, depth + 1),
                Err(e) => {
                    assert!(e.to_string().contains("host stack"), "{e:?}");
                    println!("{depth} levels: {e}");
                }
            }
            let usage = instance.buffer_usage().unwrap();
            assert_eq!((usage.suspended, usage.in_use), (0, 0));
            assert_eq!(block_on(level.call_async(&mut store, 100)).unwrap(), 101);
        }
    }

    /// Item 5's limit: saved stacks live in host memory, and the suspended
    /// calls of one instance keep at most `max_buffer_size` there together,
    /// however deep they nest.
    pub fn nested_saved_stacks_share_one_budget() {
        // Each level recurses 250 deep (about 17 KB saved), then calls back
        // in through `env.down`.
        let wat = DEEP
            .replace("MAX", "")
            .replace("(import \"env\" \"get\"", "(import \"env\" \"down\"")
            .replace(
                "(call $get (i32.const 7))",
                "(call $get (global.get $level))",
            )
            .replace(
                "(func $deep (export \"deep\")",
                r#"(global $level (mut i32) (i32.const 0))
                (func (export "level") (param i32) (result i32)
                    (global.set $level (local.get 0))
                    (call $deep (i32.const 250)))
                (func $deep"#,
            );
        let engine = Engine::default();
        let module = common::instrumented(&engine, &wat);
        let mut linker = Linker::new(&engine);
        linker.buffer_size(65536).max_buffer_size(65536);
        linker
            .func_wrap_async(
                "env",
                "down",
                |caller: AsyncCaller<()>, n: i32| async move {
                    yield_now().await;
                    if n == 0 {
                        return Ok(70);
                    }
                    let level = caller.get_func("level").unwrap();
                    let out = caller.call_async(&level, vec![Val::I32(n - 1)]).await?;
                    Ok(out[0].unwrap_i32())
                },
            )
            .unwrap();
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let level = instance
            .get_typed_func::<i32, i32>(&mut store, "level")
            .unwrap();
        assert_eq!(block_on(level.call_async(&mut store, 2)).unwrap(), 70);
        let err = block_on(level.call_async(&mut store, 10)).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<Error>(),
                Some(Error::BufferOverflow { grown_to: None, .. })
            ),
            "{err:?}"
        );
        let usage = instance.buffer_usage().unwrap();
        assert_eq!((usage.suspended, usage.in_use), (0, 0));
        assert_eq!(block_on(level.call_async(&mut store, 2)).unwrap(), 70);
    }

    /// Item 4: after the unwind, the guest rewrites the header with lies.
    pub fn lying_header_after_the_unwind() {
        // `run` is not instrumented: it calls the instrumented `work`, then,
        // while unwinding, writes `cur` and `end` of its choice into the
        // header whose address its `asyncify_start_unwind` wrapper kept.
        let wat = ARMED.replace(
            "(func $work (export \"work\")",
            r#"(global $lie_cur (mut i32) (i32.const 0))
            (global $lie_end (mut i32) (i32.const 0))
            (global $lying (mut i32) (i32.const 0))
            (func (export "lie") (param i32 i32)
                (global.set $lying (i32.const 1))
                (global.set $lie_cur (local.get 0)) (global.set $lie_end (local.get 1)))
            (func $h_run (export "run") (param i32) (result i32)
                (local $r i32)
                (local.set $r (call $work (local.get 0)))
                (if (i32.and (global.get $lying) (i32.eq (call $a_get_state) (i32.const 1)))
                    (then
                        (global.set $lying (i32.const 0))
                        (i32.store (global.get $hdr) (global.get $lie_cur))
                        (i32.store offset=4 (global.get $hdr) (global.get $lie_end))))
                (local.get $r))
            (func $work (export "work")"#,
        );
        let engine = Engine::default();
        let module = hostile_module(&engine, &wat, &["asyncify-removelist@h_*"], &RUNTIME_SWAPS);
        let pending = Arc::new(AtomicBool::new(true));
        let linker = get_linker(&engine, pending.clone());
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let run = instance
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        assert_eq!(
            block_on(run.call_async(&mut store, 3)).unwrap(),
            work_result(3)
        );
        let hdr = instance
            .wasmtime()
            .get_typed_func::<(), i32>(&mut store, "last_header")
            .unwrap()
            .call(&mut store, ())
            .unwrap() as u32;
        let lies: [(u32, u32); 8] = [
            (u32::MAX, u32::MAX),
            (u32::MAX - 3, u32::MAX),
            (0, 0),
            (0, u32::MAX),
            (hdr, hdr),
            (hdr + 7, 1),
            (hdr.wrapping_add(0x20_0000), u32::MAX),
            (u32::MAX, 0),
        ];
        for (cur, end) in lies {
            instance
                .wasmtime()
                .get_typed_func::<(i32, i32), ()>(&mut store, "lie")
                .unwrap()
                .call(&mut store, (cur as i32, end as i32))
                .unwrap();
            let what = format!("lie cur={cur:#x} end={end:#x}");
            let out = block_on(run.call_async(&mut store, 3));
            let usage = instance.buffer_usage().unwrap();
            assert!(usage.in_use <= usage.capacity, "{what}: {usage:?}");
            if let Err(e) = &out {
                assert!(e.downcast_ref::<Error>().is_some(), "{what}: {e:?}");
            }
            let usage = instance.buffer_usage().unwrap();
            assert_eq!((usage.suspended, usage.in_use), (0, 0), "{what}: {usage:?}");
            check_recovered(&mut store, &instance, &pending, &what);
        }
    }

    /// Item 4: buffer settings at the ends of their ranges never panic.
    pub fn absurd_buffer_settings() {
        let engine = Engine::default();
        let module = armed_module(&engine);
        let pending = Arc::new(AtomicBool::new(true));
        type Setting = fn(&mut Linker<()>);
        let settings: [(&str, Setting); 8] = [
            ("buffer_size(u64::MAX)", |l| {
                l.buffer_size(u64::MAX);
            }),
            ("buffer_size(u64::MAX) max u64::MAX", |l| {
                l.buffer_size(u64::MAX).max_buffer_size(u64::MAX);
            }),
            ("buffer_size(0)", |l| {
                l.buffer_size(0);
            }),
            ("max_buffer_size(0)", |l| {
                l.max_buffer_size(0);
            }),
            ("fixed_buffer(u64::MAX, 64)", |l| {
                l.fixed_buffer(u64::MAX, 64);
            }),
            ("fixed_buffer(0, u64::MAX)", |l| {
                l.fixed_buffer(0, u64::MAX);
            }),
            ("fixed_buffer(65530, 16)", |l| {
                l.fixed_buffer(65530, 16);
            }),
            ("fixed_buffer(1024, 0)", |l| {
                l.fixed_buffer(1024, 0);
            }),
        ];
        for (what, set) in settings {
            let mut linker = get_linker(&engine, pending.clone());
            set(&mut linker);
            let mut store = Store::new(&engine, ());
            let instance = linker.instantiate(&mut store, &module).unwrap();
            for n in [3, 0] {
                match call_work(&mut store, &instance, &pending, n, true) {
                    Ok(r) => assert_eq!(r, work_result(n), "{what}"),
                    Err(e) => assert!(
                        matches!(
                            e.downcast_ref::<Error>(),
                            Some(Error::BufferOverflow { .. } | Error::NoBufferMemory { .. })
                        ),
                        "{what}: {e:?}"
                    ),
                }
                let usage = instance.buffer_usage().unwrap();
                assert_eq!((usage.suspended, usage.in_use), (0, 0), "{what}");
            }
            assert_eq!(
                call_work(&mut store, &instance, &pending, 3, false).unwrap(),
                work_result(3)
            );
        }
    }

    /// `deep(n)` recurses n deep, each frame keeping 8 i64 locals live
    /// across the call (about 70 bytes saved per frame); deep(n) = 70.
    const DEEP: &str = r#"(module
        (import "env" "get" (func $get (param i32) (result i32)))
        (memory (export "memory") 1 MAX)
        (func $deep (export "deep") (param $n i32) (result i32)
            (local $a i64) (local $b i64) (local $c i64) (local $d i64)
            (local $e i64) (local $f i64) (local $g i64) (local $h i64)
            (local.set $a (i64.extend_i32_u (local.get $n)))
            (local.set $b (i64.add (local.get $a) (i64.const 1)))
            (local.set $c (i64.add (local.get $a) (i64.const 2)))
            (local.set $d (i64.add (local.get $a) (i64.const 3)))
            (local.set $e (i64.add (local.get $a) (i64.const 4)))
            (local.set $f (i64.add (local.get $a) (i64.const 5)))
            (local.set $g (i64.add (local.get $a) (i64.const 6)))
            (local.set $h (i64.add (local.get $a) (i64.const 7)))
            (if (result i32) (i32.eqz (local.get $n))
                (then (call $get (i32.const 7)))
                (else (i32.add
                    (call $deep (i32.sub (local.get $n) (i32.const 1)))
                    (i32.wrap_i64 (i64.sub
                        (i64.add (i64.add (i64.add (local.get $a) (local.get $b))
                                          (i64.add (local.get $c) (local.get $d)))
                                 (i64.add (i64.add (local.get $e) (local.get $f))
                                          (i64.add (local.get $g) (local.get $h))))
                        (i64.add (i64.mul (local.get $a) (i64.const 8)) (i64.const 28)))))))))"#;

    /// Item 10: the memory is at its declared maximum after the first
    /// suspension; an overflow says the buffer cannot grow, and it is true.
    pub fn memory_at_its_maximum_says_it_cannot_grow() {
        let engine = Engine::default();
        let module = common::instrumented(&engine, &DEEP.replace("MAX", "2"));
        let pending = Arc::new(AtomicBool::new(true));
        let linker = get_linker(&engine, pending.clone());
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let deep = instance
            .get_typed_func::<i32, i32>(&mut store, "deep")
            .unwrap();
        assert_eq!(block_on(deep.call_async(&mut store, 10)).unwrap(), 70);
        let capacity = instance.buffer_usage().unwrap().capacity;
        assert_eq!(capacity, 65536);
        for _ in 0..2 {
            let err = block_on(deep.call_async(&mut store, 3000)).unwrap_err();
            assert!(
                matches!(
                    err.downcast_ref::<Error>(),
                    Some(Error::BufferOverflow { grown_to: None, .. })
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains("cannot grow"), "{err}");
            assert_eq!(instance.buffer_usage().unwrap().capacity, capacity);
        }
        assert_eq!(block_on(deep.call_async(&mut store, 10)).unwrap(), 70);
    }

    /// Item 10: room for part of the promise: the promise is what later
    /// calls really get, and a stack that fits it then succeeds.
    pub fn memory_near_its_maximum_promises_what_it_gets() {
        let engine = Engine::default();
        let module = common::instrumented(&engine, &DEEP.replace("MAX", "3"));
        let pending = Arc::new(AtomicBool::new(true));
        let mut linker = get_linker(&engine, pending.clone());
        linker.buffer_size(4096);
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let deep = instance
            .get_typed_func::<i32, i32>(&mut store, "deep")
            .unwrap();
        // About 100 KB saved: more than the first page, less than two.
        let err = block_on(deep.call_async(&mut store, 1500)).unwrap_err();
        match err.downcast_ref::<Error>() {
            Some(Error::BufferOverflow {
                grown_to: Some(n), ..
            }) => {
                let usage = instance.buffer_usage().unwrap();
                assert!(usage.capacity >= *n, "promised {n}, {usage:?}");
            }
            _ => panic!("{err:?}"),
        }
        assert_eq!(block_on(deep.call_async(&mut store, 1500)).unwrap(), 70);
        // About 200 KB: more than the memory's maximum leaves.
        for _ in 0..2 {
            let err = block_on(deep.call_async(&mut store, 3000)).unwrap_err();
            assert!(
                matches!(
                    err.downcast_ref::<Error>(),
                    Some(Error::BufferOverflow { grown_to: None, .. })
                ),
                "{err:?}"
            );
        }
        assert_eq!(block_on(deep.call_async(&mut store, 10)).unwrap(), 70);
    }

    const OTHER: &str = r#"(module
        (import "env" "get" (func $get (result i32)))
        (import "env" "other" (func $other (result i32)))
        (memory (export "memory") 1)
        (func (export "run") (result i32)
            (i32.add (call $get) (i32.mul (call $other) (i32.const 100)))))"#;

    fn check_outside_the_set(pass_args: &[&str]) {
        let engine = Engine::default();
        let module = common::instrumented_with(&engine, OTHER, pass_args);
        let mut linker = Linker::new(&engine);
        for (name, value) in [("get", 1), ("other", 2)] {
            linker
                .func_wrap_async("env", name, move |_: AsyncCaller<()>, ()| async move {
                    yield_now().await;
                    Ok(value)
                })
                .unwrap();
        }
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let run = instance
            .get_typed_func::<(), i32>(&mut store, "run")
            .unwrap();
        let err = block_on(run.call_async(&mut store, ())).unwrap_err();
        match err.downcast_ref::<Error>() {
            Some(Error::CannotSuspend {
                module,
                name,
                reason,
            }) => {
                assert_eq!((module.as_str(), name.as_str()), ("env", "get"), "{err}");
                assert!(reason.contains("not instrumented"), "{err}");
            }
            _ => panic!("{err:?}"),
        }
        let usage = instance.buffer_usage().unwrap();
        assert_eq!((usage.suspended, usage.in_use), (0, 0));
    }

    /// Item 11, with `asyncify-asserts`: the uninstrumented call site traps.
    pub fn import_outside_the_instrumented_set_with_asserts() {
        check_outside_the_set(&["asyncify-imports@env.other", "asyncify-asserts"]);
    }

    /// Item 11, without asserts: the code goes on and calls `env.other`.
    pub fn import_outside_the_instrumented_set_without_asserts() {
        check_outside_the_set(&["asyncify-imports@env.other"]);
    }

    /// A guest that unwinds by itself (through `asyncify.start_unwind`) in
    /// several ways, and a guest that starts a rewind by itself.
    pub fn self_unwinding_guest() {
        const WAT: &str = r#"(module
            (import "env" "get" (func $get (param i32) (result i32)))
            (import "asyncify" "start_unwind" (func $start_unwind (param i32)))
            (import "asyncify" "start_rewind" (func $start_rewind (param i32)))
            (memory (export "memory") 1)
            (func (export "unwind_at") (param i32)
                (i32.store (i32.const 16) (i32.const 24))
                (i32.store (i32.const 20) (i32.const 1024))
                (call $start_unwind (local.get 0)))
            (func (export "rewind_at") (param i32)
                (call $start_rewind (local.get 0)))
            (func $work (export "work") (param $n i32) (result i32)
                (local $a i32) (local $b i64)
                (local.set $a (i32.mul (local.get $n) (i32.const 3)))
                (local.set $b (i64.extend_i32_u (local.get $n)))
                (if (result i32) (i32.eqz (local.get $n))
                    (then (call $get (i32.const 7)))
                    (else (i32.add (i32.add (local.get $a) (i32.wrap_i64 (local.get $b)))
                        (call $work (i32.sub (local.get $n) (i32.const 1))))))))"#;
        let engine = Engine::default();
        let module = common::instrumented(&engine, WAT);
        let pending = Arc::new(AtomicBool::new(true));
        let linker = get_linker(&engine, pending.clone());
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        for (export, ptr) in [
            ("unwind_at", 16),
            ("unwind_at", 0),
            ("unwind_at", -1),
            ("unwind_at", 65532),
            ("rewind_at", 16),
            ("rewind_at", -8),
        ] {
            let f = instance
                .get_typed_func::<i32, ()>(&mut store, export)
                .unwrap();
            let out = block_on(f.call_async(&mut store, ptr));
            if let Err(e) = &out {
                let mine = e.downcast_ref::<Error>().is_some();
                let trap = e.downcast_ref::<wasmtime::Trap>().is_some();
                assert!(mine || trap, "{export}({ptr}): {e:?}");
            }
            check_recovered(&mut store, &instance, &pending, &format!("{export}({ptr})"));
        }
    }

    /// A few hundred inputs of the fuzz harness (the long runs are
    /// `fuzz_harness_long`, ignored by default, and `cargo fuzz`).
    pub fn fuzz_harness_smoke() {
        let mut rng = linker_driver::SplitMix(0x5eed);
        for _ in 0..300 {
            let len = (rng.next() % 512) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            linker_driver::run(&data);
        }
    }
}

/// The fuzz harness on generated inputs with stable Rust:
/// `ASYNCIFY_FUZZ_INPUTS=N ASYNCIFY_FUZZ_SEED=S [ASYNCIFY_FUZZ_SECONDS=T]
/// cargo test -p asyncify-linker --test hostile -- --ignored
/// fuzz_harness_long --nocapture` (`ASYNCIFY_FUZZ_VERBOSE=1` prints each
/// input before running it, to find one that aborts the process).
#[test]
#[ignore]
fn fuzz_harness_long() {
    let n: u64 = std::env::var("ASYNCIFY_FUZZ_INPUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("ASYNCIFY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let seconds: Option<f64> = std::env::var("ASYNCIFY_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let start = std::time::Instant::now();
    let mut rng = linker_driver::SplitMix(seed);
    let mut n_run = 0;
    for i in 0..n {
        if seconds.is_some_and(|s| start.elapsed().as_secs_f64() > s) {
            break;
        }
        n_run += 1;
        let len = (rng.next() % 1024) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if std::env::var_os("ASYNCIFY_FUZZ_VERBOSE").is_some() {
            eprintln!("input {i}: {}", hex(&data));
        }
        linker_driver::run(&data);
    }
    println!(
        "fuzz_harness_long: {n_run} inputs from seed {seed} in {:.1} s, no findings",
        start.elapsed().as_secs_f64()
    );
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// A guest that offers an `asyncify_budget` export the linker cannot use as
/// the yield checks' budget (an immutable `i32`, a mutable `i64`, a
/// function): time slicing leaves it alone, with no panic, and the guest's
/// own calls still suspend and resume.
#[test]
fn a_budget_export_of_the_wrong_kind_is_left_alone() {
    let engine = Engine::default();
    for (what, budget, value) in [
        (
            "an immutable i32",
            r#"(global $b (export "asyncify_budget") i32 (i32.const 7))"#,
            Some(Val::I32(7)),
        ),
        (
            "a mutable i64",
            r#"(global $b (export "asyncify_budget") (mut i64) (i64.const 7))"#,
            Some(Val::I64(7)),
        ),
        (
            "a function",
            r#"(func (export "asyncify_budget") (result i32) (i32.const 7))"#,
            None,
        ),
    ] {
        let wat = format!(
            r#"(module
                (import "env" "get" (func $get (param i32) (result i32)))
                (memory (export "memory") 1)
                {budget}
                (func (export "run") (param $x i32) (result i32)
                    (i32.add (call $get (local.get $x)) (i32.const 1))))"#
        );
        let mut linker = Linker::new(&engine);
        linker
            .time_slicing(asyncify_linker::TimeSlicing::default())
            .unwrap();
        linker
            .func_wrap_async("env", "get", |_: AsyncCaller<()>, x: i32| async move {
                yield_now().await;
                Ok(x * 2)
            })
            .unwrap();
        let module = common::instrumented(&engine, &wat);
        let (mut store, instance, run) = common::instance_with_export(&linker, &module, (), "run");
        let result = block_on(run.call_async(&mut store, 20));
        assert_eq!(result.unwrap(), 41, "with {what}");
        if let Some(value) = value {
            let global = instance
                .wasmtime()
                .get_global(&mut store, "asyncify_budget")
                .unwrap_or_else(|| panic!("{what}: the export is gone"));
            let now = global.get(&mut store);
            assert_eq!(format!("{now:?}"), format!("{value:?}"), "with {what}");
        }
    }
}
