//! Binaryen's `wasm-opt --asyncify` as a second instrumenter: it validates the
//! driver and the tests against the reference implementation. Optional: when
//! `wasm-opt` is not on `PATH`, [`available`] is false and callers skip,
//! unless [`REQUIRE_TOOLS_ENV`] is set (CI sets it), which makes the skip a
//! failure: see [`skip`].

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use asyncify_transform::Options;

use crate::interface::Interface;

/// `wasm-opt --version`'s number (108 for "wasm-opt version 108"), if it runs.
pub fn version() -> Option<u32> {
    static VERSION: OnceLock<Option<u32>> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let out = Command::new("wasm-opt").arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .filter_map(|w| w.parse::<u32>().ok())
            .next()
    })
}

/// Whether `wasm-opt` can be run.
pub fn available() -> bool {
    version().is_some()
}

/// The environment variable that turns a missing tool or corpus into a test
/// failure. `.ci/run` installs everything the suites need and sets it, so in
/// CI a suite can never pass by skipping.
pub const REQUIRE_TOOLS_ENV: &str = "ASYNCIFY_REQUIRE_TOOLS";

/// Whether [`REQUIRE_TOOLS_ENV`] is set to anything but empty or `0`.
pub fn tools_required() -> bool {
    std::env::var(REQUIRE_TOOLS_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The one way a test gives up because something it needs (`missing`) is not
/// there: with [`REQUIRE_TOOLS_ENV`] set it panics, failing the test; else it
/// writes `SKIPPED <test>: <missing>` to the process's standard error
/// directly, past the test harness's capture, so a plain `cargo test` shows
/// every skip beside the test names instead of an `ok` that hides it.
pub fn skip(test: &str, missing: &str) {
    if tools_required() {
        panic!(
            "{test}: {missing}, and {REQUIRE_TOOLS_ENV} is set: a suite must not pass by \
             skipping (.ci/run installs the tools and fetches the corpus; unset \
             {REQUIRE_TOOLS_ENV} to allow skips locally)"
        );
    }
    // `eprintln!` would be captured and shown only for a failing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {missing} (set {REQUIRE_TOOLS_ENV}=1 to make this a failure)"
    );
}

/// True (after [`skip`]) when `wasm-opt` is missing: the caller returns.
pub fn skip_if_unavailable(test: &str) -> bool {
    if available() {
        return false;
    }
    skip(test, "`wasm-opt` (Binaryen) is not on PATH");
    true
}

/// The `--pass-arg`s equivalent to `options`.
pub fn pass_args(options: &Options) -> Vec<String> {
    let mut args = Vec::new();
    let mut arg = |a: String| args.push(format!("--pass-arg={a}"));
    if !options.imports.is_empty() {
        arg(format!("asyncify-imports@{}", options.imports.join(",")));
    }
    if options.ignore_imports {
        arg("asyncify-ignore-imports".into());
    }
    if options.ignore_indirect {
        arg("asyncify-ignore-indirect".into());
    }
    if !options.add_list.is_empty() {
        arg(format!("asyncify-addlist@{}", options.add_list.join(",")));
    }
    if !options.remove_list.is_empty() {
        arg(format!(
            "asyncify-removelist@{}",
            options.remove_list.join(",")
        ));
    }
    if let Some(only) = &options.only_list {
        arg(format!("asyncify-onlylist@{}", only.join(",")));
    }
    if options.propagate_add_list {
        arg("asyncify-propagate-addlist".into());
    }
    if options.asserts {
        arg("asyncify-asserts".into());
    }
    if options.import_globals {
        // The old spelling: the only one older releases understand.
        arg("asyncify-relocatable".into());
    }
    if options.export_globals {
        arg("asyncify-export-globals".into());
    }
    if let Some(pages) = options.secondary_memory {
        arg("asyncify-in-secondary-memory".into());
        arg(format!("asyncify-secondary-memory-size@{pages}"));
    }
    if let Some(name) = &options.memory {
        arg(format!("asyncify-memory@{name}"));
    }
    args
}

fn temp_path(suffix: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("asyncify-tests-{}-{n}{suffix}", std::process::id()))
}

/// Instruments `wasm` (binary) with `wasm-opt --all-features --asyncify`.
///
/// Fails when wasm-opt refuses the module, or when it silently ignored an
/// option the output should show (older releases ignore unknown pass args).
pub fn instrument(wasm: &[u8], options: &Options) -> Result<Vec<u8>, String> {
    if options.yield_checks {
        return Err("Binaryen has no yield checks (this project's own option)".into());
    }
    let input = temp_path(".in.wasm");
    let output = temp_path(".out.wasm");
    std::fs::write(&input, wasm).map_err(|e| format!("writing {}: {e}", input.display()))?;
    let result = Command::new("wasm-opt")
        .args(["--all-features", "--asyncify", "-g"])
        .args(pass_args(options))
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output();
    let bytes = std::fs::read(&output);
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    let out = result.map_err(|e| format!("cannot run wasm-opt: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "wasm-opt failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    let bytes = bytes.map_err(|e| format!("wasm-opt wrote no output: {e}"))?;
    let shape = Interface::of(&bytes)?;
    let ignored = |what: &str| {
        Err(format!(
            "wasm-opt {} ignored `{what}` (the option is newer than this release)",
            version().unwrap_or(0)
        ))
    };
    if options.export_globals && !shape.exports_global("__asyncify_state") {
        return ignored("asyncify-export-globals");
    }
    if options.secondary_memory.is_some() && !shape.exports_memory("asyncify_memory") {
        // 108 ignores the option; later releases add the memory but do not
        // export it, so a host cannot set up the buffer header in it.
        return Err(format!(
            "wasm-opt {} did not export a secondary memory `asyncify_memory`",
            version().unwrap_or(0)
        ));
    }
    if options.import_globals && !shape.imports_global("env", "__asyncify_state") {
        return ignored("asyncify-relocatable");
    }
    Ok(bytes)
}
