//! Helpers shared by the linker's integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use asyncify_linker::{Instance, Linker, TypedFunc};
use wasmtime::{Engine, Module, Store};

/// Instruments `wat` with default options and compiles it.
pub fn instrumented(engine: &Engine, wat: &str) -> Module {
    let out = asyncify_transform::instrument(wat.as_bytes(), &Default::default())
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    Module::new(engine, &out.wasm).unwrap()
}

/// Instruments `wat` with `options` (Binaryen pass-arg spellings) and compiles it.
pub fn instrumented_with(engine: &Engine, wat: &str, pass_args: &[&str]) -> Module {
    let mut options = asyncify_transform::Options::default();
    for arg in pass_args {
        options.apply_pass_arg(arg).unwrap();
    }
    let out = asyncify_transform::instrument(wat.as_bytes(), &options)
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    Module::new(engine, &out.wasm).unwrap()
}

/// Instantiates `module` through `linker` in a new store holding `data`,
/// and takes its export `name` as an `(i32) -> i32` function: the set-up of
/// most tests that call one export.
pub fn instance_with_export<T: 'static>(
    linker: &Linker<T>,
    module: &Module,
    data: T,
    name: &str,
) -> (Store<T>, Instance, TypedFunc<i32, i32>) {
    let mut store = Store::new(module.engine(), data);
    let instance = linker.instantiate(&mut store, module).expect("instantiate");
    let func = instance
        .get_typed_func::<i32, i32>(&mut store, name)
        .expect("the export");
    (store, instance, func)
}

/// A directory in the temporary directory, unique to this process and
/// `tag`, holding one file `name` with `bytes` (the files WASI guests read).
pub fn dir_with_file(tag: &str, name: &str, bytes: &[u8]) -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("asyncify-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)?;
    Ok(dir)
}

/// Compiles `wat` as it is.
pub fn plain(engine: &Engine, wat: &str) -> Module {
    Module::new(engine, wat::parse_str(wat).unwrap()).unwrap()
}

/// A future that is pending once (waking itself), then ready.
pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Yields to the executor once.
pub fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// A single-threaded tokio runtime with timers.
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Runs `f` on a `LocalPool`.
pub fn local_pool<F: Future>(f: F) -> F::Output {
    futures::executor::LocalPool::new().run_until(f)
}

/// Polls `future` once with a waker that does nothing.
pub fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(std::task::Waker::noop()))
}

/// The environment variable that makes a missing `wasm-opt` fail the tests
/// that need it instead of skipping them (`.ci/run` sets it); the same one
/// `asyncify_tests::binaryen` reads.
pub const REQUIRE_TOOLS_ENV: &str = "ASYNCIFY_REQUIRE_TOOLS";

/// Gives up on `test` because `missing` is not there: panics when
/// [`REQUIRE_TOOLS_ENV`] is set (anything but empty or `0`), else writes
/// `SKIPPED` to the process's standard error past the harness's capture, so
/// a plain `cargo test` shows the skip.
pub fn skip(test: &str, missing: &str) {
    use std::io::Write;
    if std::env::var(REQUIRE_TOOLS_ENV).is_ok_and(|v| !v.is_empty() && v != "0") {
        panic!(
            "{test}: {missing}, and {REQUIRE_TOOLS_ENV} is set: a suite must not pass by \
             skipping (.ci/run installs the tools; unset {REQUIRE_TOOLS_ENV} to allow skips)"
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {missing} (set {REQUIRE_TOOLS_ENV}=1 to make this a failure)"
    );
}

/// Instruments `wat` with Binaryen's `wasm-opt --asyncify` (plus `extra`
/// arguments), or returns `None` after [`skip`] when `wasm-opt` is missing.
pub fn binaryen(engine: &Engine, test: &str, wat: &str, extra: &[&str]) -> Option<Module> {
    use std::process::Command;
    if Command::new("wasm-opt").arg("--version").output().is_err() {
        skip(test, "`wasm-opt` (Binaryen) is not on PATH");
        return None;
    }
    let wasm = wasm_opt_asyncify(&wat::parse_str(wat).unwrap(), extra);
    Some(Module::new(engine, wasm).unwrap())
}

/// `wasm` instrumented by `wasm-opt --asyncify` with `extra` arguments,
/// through files in the temporary directory (unique per call); panics with
/// wasm-opt's message if it fails.
pub fn wasm_opt_asyncify(wasm: &[u8], extra: &[&str]) -> Vec<u8> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir();
    let stem = format!(
        "asyncify-linker-{}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::SeqCst)
    );
    let input = dir.join(format!("{stem}.in.wasm"));
    let output = dir.join(format!("{stem}.out.wasm"));
    std::fs::write(&input, wasm).unwrap();
    let out = std::process::Command::new("wasm-opt")
        .arg("--asyncify")
        .args(extra)
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .unwrap();
    let bytes = std::fs::read(&output);
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    assert!(
        out.status.success(),
        "wasm-opt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bytes.unwrap()
}
