//! WASI preview 1 through `asyncify_linker::wasi::add_to_linker_async` inside
//! real executors: tokio's multi-thread runtime (1,000 concurrent guest calls,
//! each on its own task with its own store, waiting on timers and file reads
//! many times; calls that resume on another worker thread), tokio's
//! current-thread runtime, and `futures::executor`. Standard input that has
//! no data yet makes the guest wait too.
//!
//! `ASYNCIFY_TOKIO_CALLS` and `ASYNCIFY_TOKIO_ROUNDS` change the number of
//! calls (1,000) and the waits per call (8).
#![cfg(feature = "wasi")]

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use asyncify_linker::wasi::{self, wasmtime_wasi, WasiP1Ctx};
use asyncify_linker::{AsyncCaller, InstancePre, Linker};
use wasmtime::{Engine, Module, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Bytes read per round.
const CHUNK: usize = 64;

/// `run(rounds, sleep_ns)`: opens `data.bin` in the preopened directory
/// (fd 3), then `rounds` times sleeps `sleep_ns` (poll_oneoff), reports its
/// thread (`env.where`) and reads the next `CHUNK` bytes; returns the sum of
/// the bytes read. Traps on any WASI error.
fn guest() -> Vec<u8> {
    let wat = format!(
        r#"(module
        (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
        (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
        (import "env" "where" (func $where))
        (memory (export "memory") 1)
        (data (i32.const 256) "data.bin")
        (func $check (param i32) (if (local.get 0) (then unreachable)))
        (func (export "run") (param $rounds i32) (param $sleep i64) (result i32)
            (local $fd i32) (local $i i32) (local $j i32) (local $sum i32)
            (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 8)
                (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 200)))
            (local.set $fd (i32.load (i32.const 200)))
            (block $done (loop $round
                (br_if $done (i32.ge_u (local.get $i) (local.get $rounds)))
                ;; a relative monotonic clock subscription at 64
                (i64.store (i32.const 64) (i64.const 7))
                (i32.store8 (i32.const 72) (i32.const 0))
                (i32.store (i32.const 80) (i32.const 1))
                (i64.store (i32.const 88) (local.get $sleep))
                (i64.store (i32.const 96) (i64.const 0))
                (i32.store16 (i32.const 104) (i32.const 0))
                (call $check (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160)))
                (call $where)
                ;; one iovec at 0: {CHUNK} bytes at 1024; bytes read at 8
                (i32.store (i32.const 0) (i32.const 1024))
                (i32.store (i32.const 4) (i32.const {CHUNK}))
                (call $check (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
                (local.set $j (i32.const 0))
                (block $summed (loop $byte
                    (br_if $summed (i32.ge_u (local.get $j) (i32.load (i32.const 8))))
                    (local.set $sum (i32.add (local.get $sum)
                        (i32.load8_u (i32.add (i32.const 1024) (local.get $j)))))
                    (local.set $j (i32.add (local.get $j) (i32.const 1)))
                    (br $byte)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $round)))
            (call $check (call $fd_close (local.get $fd)))
            (local.get $sum)))"#
    );
    asyncify_transform::instrument(wat.as_bytes(), &Default::default())
        .expect("instrument")
        .wasm
}

/// The store's data: WASI, and the threads the call ran on.
struct Host {
    wasi: WasiP1Ctx,
    threads: Vec<ThreadId>,
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A directory with `data.bin`: `len` bytes, byte `i` being `i % 251`.
fn data_dir(tag: &str, len: usize) -> PathBuf {
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    common::dir_with_file(&format!("tokio-wasi-{tag}"), "data.bin", &bytes).expect("data file")
}

fn expected_sum(rounds: usize) -> i32 {
    (0..rounds * CHUNK).map(|i| (i % 251) as i32).sum()
}

fn pre(engine: &Engine) -> InstancePre<Host> {
    let mut linker = Linker::<Host>::new(engine);
    wasi::add_to_linker_async(&mut linker, |host| &mut host.wasi).expect("wasi");
    linker
        .func_wrap_async("env", "where", |caller: AsyncCaller<Host>, ()| async move {
            let thread = std::thread::current().id();
            caller.with(|mut store| store.data_mut().threads.push(thread));
            Ok(())
        })
        .expect("where");
    let module = Module::new(engine, guest()).expect("module");
    linker.instantiate_pre(&module).expect("instantiate_pre")
}

/// Runs one guest call in its own store. Returns the sum and the threads.
async fn one_call(
    pre: &InstancePre<Host>,
    dir: &Path,
    rounds: usize,
    sleep: Duration,
) -> wasmtime::Result<(i32, Vec<ThreadId>)> {
    let mut ctx = WasiCtxBuilder::new();
    ctx.preopened_dir(dir, ".", FsPerms::ReadOnly)?;
    let host = Host {
        wasi: ctx.build_p1(),
        threads: vec![std::thread::current().id()],
    };
    let mut store = Store::new(pre.module().engine(), host);
    let instance = pre.instantiate_async(&mut store).await?;
    let run = instance.get_typed_func::<(i32, i64), i32>(&mut store, "run")?;
    let sum = run
        .call_async(&mut store, (rounds as i32, sleep.as_nanos() as i64))
        .await?;
    let threads = std::mem::take(&mut store.data_mut().threads);
    Ok((sum, threads))
}

#[test]
fn a_thousand_calls_on_a_multi_thread_runtime() {
    let calls = env_count("ASYNCIFY_TOKIO_CALLS", 1000);
    let rounds = env_count("ASYNCIFY_TOKIO_ROUNDS", 8);
    let dir = data_dir("many", rounds * CHUNK);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let engine = Engine::default();
    let pre = Arc::new(pre(&engine));
    let results = runtime.block_on(async {
        let tasks: Vec<_> = (0..calls)
            .map(|_| {
                let (pre, dir) = (pre.clone(), dir.clone());
                tokio::spawn(
                    async move { one_call(&pre, &dir, rounds, Duration::from_millis(1)).await },
                )
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task"));
        }
        results
    });
    let mut moved = 0;
    for result in results {
        let (sum, threads) = result.expect("call");
        assert_eq!(sum, expected_sum(rounds));
        // The thread that started the call, then one per round.
        assert_eq!(threads.len(), rounds + 1);
        moved += usize::from(threads.iter().collect::<HashSet<_>>().len() > 1);
    }
    // With two workers and a thousand tasks waking from timers and the
    // blocking pool, calls resume on either worker.
    assert!(moved > 0, "no call resumed on another worker thread");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_call_starts_on_one_worker_and_resumes_on_another() {
    let rounds = 40;
    let dir = data_dir("moves", rounds * CHUNK);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let engine = Engine::default();
    let pre = Arc::new(pre(&engine));
    let threads = runtime.block_on(async {
        // Other tasks keep the workers busy in turns, so that the call is
        // picked up by whichever worker is free when its timer fires.
        let busy: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..200 {
                        std::thread::sleep(Duration::from_micros(300));
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        let mut seen = Vec::new();
        for _ in 0..20 {
            let (pre, dir) = (pre.clone(), dir.clone());
            let (sum, threads) = tokio::spawn(async move {
                one_call(&pre, &dir, rounds, Duration::from_micros(200)).await
            })
            .await
            .expect("task")
            .expect("call");
            assert_eq!(sum, expected_sum(rounds));
            seen = threads;
            if seen.iter().collect::<HashSet<_>>().len() > 1 {
                break;
            }
        }
        for task in busy {
            task.abort();
        }
        seen
    });
    let distinct: HashSet<_> = threads.iter().collect();
    assert!(
        distinct.len() > 1,
        "every call ran on one thread: {threads:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_same_program_runs_on_a_current_thread_runtime_and_under_futures_executor() {
    let rounds = 5;
    let dir = data_dir("executors", rounds * CHUNK);
    let engine = Engine::default();
    let pre = pre(&engine);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let on_tokio = runtime
        .block_on(one_call(&pre, &dir, rounds, Duration::from_millis(1)))
        .expect("current-thread runtime");
    let on_futures =
        futures::executor::block_on(one_call(&pre, &dir, rounds, Duration::from_millis(1)))
            .expect("futures::executor");
    for (sum, threads) in [on_tokio, on_futures] {
        assert_eq!(sum, expected_sum(rounds));
        assert_eq!(threads.iter().collect::<HashSet<_>>().len(), 1);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Reads standard input into memory until it ends and echoes it to standard
/// output, one `fd_read` / `fd_write` at a time.
const ECHO: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start")
        (loop $more
            (i32.store (i32.const 0) (i32.const 1024))
            (i32.store (i32.const 4) (i32.const 256))
            (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)) (then unreachable))
            (if (i32.load (i32.const 8)) (then
                (i32.store (i32.const 16) (i32.const 1024))
                (i32.store (i32.const 20) (i32.load (i32.const 8)))
                (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))
                    (then unreachable))
                (br $more))))))"#;

#[test]
fn standard_input_that_arrives_later_makes_the_guest_wait() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (output, pending) = runtime.block_on(async {
        let engine = Engine::default();
        let mut linker = Linker::<WasiP1Ctx>::new(&engine);
        wasi::add_to_linker_async(&mut linker, |ctx| ctx).expect("wasi");
        let wasm = asyncify_transform::instrument(ECHO.as_bytes(), &Default::default())
            .expect("instrument")
            .wasm;
        let module = Module::new(&engine, wasm).expect("module");
        let (mut writer, reader) = tokio::io::duplex(64);
        let stdout = MemoryOutputPipe::new(1 << 16);
        let ctx = WasiCtxBuilder::new()
            .stdin(wasmtime_wasi::cli::AsyncStdinStream::new(reader))
            .stdout(stdout.clone())
            .build_p1();
        let mut store = Store::new(&engine, ctx);
        let instance = linker
            .instantiate(&mut store, &module)
            .expect("instantiate");
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .expect("_start");
        let feeder = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for line in ["first\n", "second\n", "third\n"] {
                tokio::time::sleep(Duration::from_millis(5)).await;
                writer.write_all(line.as_bytes()).await.expect("write");
            }
        });
        let mut call = std::pin::pin!(start.call_async(&mut store, ()));
        let mut pending = 0;
        std::future::poll_fn(|cx| {
            let poll = call.as_mut().poll(cx);
            pending += usize::from(poll.is_pending());
            poll
        })
        .await
        .expect("echo");
        feeder.await.expect("feeder");
        (stdout.contents(), pending)
    });
    assert_eq!(&output[..], b"first\nsecond\nthird\n");
    assert!(pending > 0, "the guest never waited for standard input");
}
