//! A server-shaped embedding of `asyncify-linker`: a tokio multi-thread
//! runtime serves many concurrent guest calls, each in its own store on its
//! own task, each waiting on timers and file I/O through WASI preview 1. No
//! fibers: while a call waits, its instance has unwound and the task holds
//! only the call's saved stack.
//!
//! Run: `cargo run --release -p asyncify-linker --features wasi --example tokio_server -- [REQUESTS] [ROUNDS]`
//!
//! It prints the throughput (requests per second, each request sleeping 1 ms
//! and reading a file ROUNDS times) and the memory each suspended call holds
//! (the growth of the resident set while REQUESTS calls all wait, divided by
//! REQUESTS; Linux only).
//!
//! What to copy: compile the module once, resolve its imports once
//! ([`Linker::instantiate_pre`]), then per request make a store with its own
//! WASI context, instantiate, and `.await` the export on a spawned task.

// The tests' helpers (a temporary directory with one file).
#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use asyncify_linker::wasi::{self, wasmtime_wasi, WasiP1Ctx};
use asyncify_linker::{InstancePre, Linker};
use wasmtime::{Engine, Module, Store};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// The guest: `handle(request, rounds, sleep_ns)` opens `page.txt` in the
/// preopened directory, then `rounds` times sleeps (`poll_oneoff`) and reads
/// the next 64 bytes; returns the request number plus the bytes' sum.
const HANDLER: &str = r#"(module
    (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
    (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 256) "page.txt")
    (func $check (param i32) (if (local.get 0) (then unreachable)))
    (func (export "handle") (param $request i32) (param $rounds i32) (param $sleep i64) (result i32)
        (local $fd i32) (local $i i32) (local $j i32) (local $sum i32)
        (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 8)
            (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 200)))
        (local.set $fd (i32.load (i32.const 200)))
        (block $done (loop $round
            (br_if $done (i32.ge_u (local.get $i) (local.get $rounds)))
            (i32.store8 (i32.const 72) (i32.const 0))
            (i32.store (i32.const 80) (i32.const 1))
            (i64.store (i32.const 88) (local.get $sleep))
            (call $check (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160)))
            (i32.store (i32.const 0) (i32.const 1024))
            (i32.store (i32.const 4) (i32.const 64))
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
        (i32.add (local.get $request) (local.get $sum))))"#;

/// One request: a fresh store and instance, one call of `handle`.
async fn serve(
    pre: &InstancePre<WasiP1Ctx>,
    root: &Path,
    request: i32,
    rounds: i32,
    sleep: Duration,
) -> wasmtime::Result<i32> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.preopened_dir(root, ".", FsPerms::ReadOnly)?;
    let mut store = Store::new(pre.module().engine(), wasi.build_p1());
    let instance = pre.instantiate_async(&mut store).await?;
    let handle = instance.get_typed_func::<(i32, i32, i64), i32>(&mut store, "handle")?;
    handle
        .call_async(&mut store, (request, rounds, sleep.as_nanos() as i64))
        .await
}

/// Runs `requests` requests concurrently; returns how long they took.
async fn serve_all(
    pre: &Arc<InstancePre<WasiP1Ctx>>,
    root: &Path,
    requests: usize,
    rounds: i32,
    sleep: Duration,
    expected: i32,
) -> wasmtime::Result<Duration> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..requests as i32)
        .map(|request| {
            let (pre, root) = (pre.clone(), root.to_path_buf());
            tokio::spawn(async move { serve(&pre, &root, request, rounds, sleep).await })
        })
        .collect();
    for (request, task) in tasks.into_iter().enumerate() {
        let answer = task.await??;
        wasmtime::ensure!(
            answer == request as i32 + expected,
            "request {request} got {answer}"
        );
    }
    Ok(started.elapsed())
}

/// The resident set of this process in bytes, on Linux.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The sum of the first `rounds` x 64 bytes of the page.
fn page_sum(rounds: i32) -> i32 {
    (0..rounds as u32 * 64)
        .map(|i| i32::from(b'a' + (i % 26) as u8))
        .sum()
}

fn page_dir() -> std::io::Result<PathBuf> {
    let page: Vec<u8> = (0..4096u32).map(|i| b'a' + (i % 26) as u8).collect();
    common::dir_with_file("tokio-server", "page.txt", &page)
}

fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let rounds: i32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let root = page_dir()?;
    let expected = page_sum(rounds);

    let engine = Engine::default();
    let mut linker = Linker::<WasiP1Ctx>::new(&engine);
    wasi::add_to_linker_async(&mut linker, |ctx| ctx)?;
    let wasm = asyncify_transform::instrument(HANDLER.as_bytes(), &Default::default())?.wasm;
    let pre = Arc::new(linker.instantiate_pre(&Module::new(&engine, wasm)?)?);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Warm up: the first requests fill allocator pools and tokio's
        // blocking threads.
        serve_all(&pre, &root, 100, rounds, Duration::from_millis(1), expected).await?;

        let took = serve_all(
            &pre,
            &root,
            requests,
            rounds,
            Duration::from_millis(1),
            expected,
        )
        .await?;
        println!(
            "{requests} requests x {rounds} waits (1 ms sleep + 64-byte file read each): \
             {:.0} ms, {:.0} requests/s",
            took.as_secs_f64() * 1e3,
            requests as f64 / took.as_secs_f64()
        );

        // Memory: all requests wait on one long sleep at the same time.
        let before = resident_bytes();
        let all = serve_all(
            &pre,
            &root,
            requests,
            1,
            Duration::from_millis(500),
            page_sum(1),
        );
        let sample = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            resident_bytes()
        };
        let (done, during) = tokio::join!(all, sample);
        done?;
        match (before, during) {
            (Some(before), Some(during)) => println!(
                "memory per suspended call (store, instance, WASI context, saved stack): \
                 {:.1} KiB ({} calls waiting at once)",
                during.saturating_sub(before) as f64 / requests as f64 / 1024.0,
                requests
            ),
            _ => println!("memory per suspended call: not measured (needs /proc/self/statm)"),
        }
        wasmtime::Result::<()>::Ok(())
    })?;
    let _ = std::fs::remove_dir_all(root);
    Ok(())
}
