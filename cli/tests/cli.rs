//! End-to-end tests of the `asyncify` binary: exit codes, messages and files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A module whose export calls an import, so the transform has work to do.
const SLEEPY_WAT: &str = r#"(module
    (import "env" "sleep" (func $sleep (param i32)))
    (memory 1)
    (func $helper (param i32) (call $sleep (local.get 0)))
    (func $run (export "run") (call $helper (i32.const 10))))"#;

/// A fresh directory under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("asyncify-cli-test-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The names of the files in the directory, sorted.
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn asyncify(args: &[&str]) -> Output {
    asyncify_with_stdin(args, &[])
}

fn asyncify_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_asyncify"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A failing run may exit before reading its input.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn str_path(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts exit code 1 and a single `error: ` line on stderr; returns that line.
fn assert_error(output: &Output) -> String {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
    stderr.trim_end().to_owned()
}

/// Deterministic bytes that are neither a wasm binary nor text.
fn garbage(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn help_says_what_the_tool_is_for() {
    let output = asyncify(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("pause and resume"), "{help}");
    assert!(help.contains("instrument"), "{help}");

    let output = asyncify(&["instrument", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--imports",
        "--only-list",
        "--secondary-memory[=<PAGES>]",
        "--pass-arg",
    ] {
        assert!(help.contains(flag), "{flag} missing from: {help}");
    }
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let output = asyncify(&["instrument", "in.wasm", "-o", "out.wasm", "--no-such-flag"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--no-such-flag"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn without_input_the_embedded_demo_is_instrumented() {
    let dir = TempDir::new("demo-default");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_asyncify"))
        .arg("instrument")
        .current_dir(dir.path(""))
        .output()
        .expect("run asyncify");
    assert!(output.status.success(), "{}", stderr(&output));
    let written = std::fs::read(dir.path("demo.asyncify.wasm")).expect("default output written");
    assert!(written.starts_with(b"\0asm"));
    assert!(
        stderr(&output).contains("functions instrumented"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_input_file() {
    let dir = TempDir::new("missing-input");
    let input = dir.path("does-not-exist.wasm");
    let out = dir.path("out.wasm");
    let line = assert_error(&asyncify(&[
        "instrument",
        str_path(&input),
        "-o",
        str_path(&out),
    ]));
    assert!(line.contains(str_path(&input)), "{line}");
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
}

#[test]
fn invalid_input_creates_no_output() {
    let dir = TempDir::new("invalid-input");
    let input = dir.write("garbage.wasm", garbage(4096));
    let out = dir.path("out.wasm");
    let line = assert_error(&asyncify(&[
        "instrument",
        str_path(&input),
        "-o",
        str_path(&out),
    ]));
    assert!(line.contains(str_path(&input)), "{line}");
    assert_eq!(dir.entries(), ["garbage.wasm"]);
}

#[test]
fn failed_transform_keeps_existing_output() {
    let dir = TempDir::new("keep-output");
    let input = dir.write("garbage.wasm", garbage(100));
    let out = dir.write("out.wasm", "previous output");
    assert_error(&asyncify(&[
        "instrument",
        str_path(&input),
        "-o",
        str_path(&out),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), b"previous output");
    assert_eq!(dir.entries(), ["garbage.wasm", "out.wasm"]);
}

#[test]
fn invalid_input_on_stdin_writes_nothing_to_stdout() {
    let output = asyncify_with_stdin(&["instrument", "-", "-o", "-"], &garbage(100));
    let line = assert_error(&output);
    assert!(line.contains("standard input"), "{line}");
    assert!(output.stdout.is_empty());
}

#[test]
fn unknown_pass_arg() {
    let dir = TempDir::new("unknown-pass-arg");
    let input = dir.write("in.wat", SLEEPY_WAT);
    let out = dir.path("out.wasm");
    let output = asyncify(&[
        "instrument",
        str_path(&input),
        "-o",
        str_path(&out),
        "--pass-arg",
        "asyncify-nope@1",
    ]);
    let line = assert_error(&output);
    assert!(
        line.contains("unknown pass argument `asyncify-nope@1`"),
        "{line}"
    );
    assert!(!out.exists());
}

#[test]
fn only_list_cannot_be_combined_with_remove_list() {
    let dir = TempDir::new("only-and-remove");
    let input = dir.write("in.wat", SLEEPY_WAT);
    let out = dir.path("out.wasm");
    let output = asyncify(&[
        "instrument",
        str_path(&input),
        "-o",
        str_path(&out),
        "--only-list",
        "run",
        "--pass-arg",
        "asyncify-removelist@helper",
    ]);
    let line = assert_error(&output);
    assert!(line.contains("only list cannot be combined"), "{line}");
    assert!(!out.exists());
}

#[test]
fn missing_list_file() {
    let dir = TempDir::new("missing-list");
    let input = dir.write("in.wat", SLEEPY_WAT);
    let list = dir.path("no-such-list.txt");
    let out = dir.path("out.wasm");
    let output = asyncify(&[
        "instrument",
        str_path(&input),
        "-o",
        str_path(&out),
        "--add-list",
        &format!("@{}", str_path(&list)),
    ]);
    let line = assert_error(&output);
    assert!(line.contains("--add-list"), "{line}");
    assert!(line.contains(str_path(&list)), "{line}");
}

#[test]
fn zero_page_secondary_memory_is_rejected() {
    let dir = TempDir::new("zero-pages");
    let input = dir.write("in.wat", SLEEPY_WAT);
    let out = dir.path("out.wasm");
    let output = asyncify(&[
        "instrument",
        str_path(&input),
        "-o",
        str_path(&out),
        "--secondary-memory=0",
    ]);
    let line = assert_error(&output);
    assert!(line.contains("at least 1 page"), "{line}");
}

#[test]
fn secondary_memory_without_value_does_not_take_the_next_argument() {
    let dir = TempDir::new("secondary-no-value");
    let input = dir.write("garbage.wasm", garbage(100));
    let out = dir.path("out.wasm");
    // Had `--secondary-memory` taken the input path as its value, this would
    // be a usage error about an invalid number instead.
    let output = asyncify(&[
        "instrument",
        "--secondary-memory",
        str_path(&input),
        "-o",
        str_path(&out),
    ]);
    let line = assert_error(&output);
    assert!(line.contains("is not a wasm binary (bad magic"), "{line}");
}

#[test]
fn instruments_a_text_module() {
    let dir = TempDir::new("instrument-wat");
    let input = dir.write("in.wat", SLEEPY_WAT);
    let out = dir.path("out.wasm");
    let output = asyncify(&["instrument", str_path(&input), "-o", str_path(&out)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(std::fs::read(&out).unwrap().starts_with(b"\0asm"));
    assert_eq!(dir.entries(), ["in.wat", "out.wasm"]);
}

#[test]
fn replaces_an_existing_output() {
    let dir = TempDir::new("replace-output");
    let input = dir.write("in.wat", SLEEPY_WAT);
    let out = dir.write("out.wasm", "previous output");
    let output = asyncify(&["instrument", str_path(&input), "-o", str_path(&out)]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(std::fs::read(&out).unwrap().starts_with(b"\0asm"));
    assert_eq!(dir.entries(), ["in.wat", "out.wasm"]);
}

#[test]
fn writes_to_stdout() {
    let dir = TempDir::new("stdout");
    let input = dir.write("in.wat", SLEEPY_WAT);
    let output = asyncify(&["instrument", str_path(&input), "-o", "-"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stdout.starts_with(b"\0asm"));
    assert_eq!(dir.entries(), ["in.wat"]);
}

#[test]
fn reads_from_stdin() {
    let output = asyncify_with_stdin(&["instrument", "-", "-o", "-"], SLEEPY_WAT.as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stdout.starts_with(b"\0asm"));
}

#[test]
fn verbose_explains_each_function() {
    for flag in [["--verbose", ""], ["--pass-arg", "asyncify-verbose"]] {
        let args: Vec<&str> = ["instrument", "-", "-o", "-"]
            .into_iter()
            .chain(flag.into_iter().filter(|a| !a.is_empty()))
            .collect();
        let output = asyncify_with_stdin(&args, SLEEPY_WAT.as_bytes());
        assert!(output.status.success(), "{}", stderr(&output));
        let stderr = stderr(&output);
        assert!(
            stderr.contains("$helper calls import env.sleep"),
            "{stderr}"
        );
        assert!(stderr.contains("$run calls $helper"), "{stderr}");
    }
}

#[test]
fn quiet_without_verbose() {
    let output = asyncify_with_stdin(&["instrument", "-", "-o", "-"], SLEEPY_WAT.as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
}

#[test]
fn inspect_reports_interface_counts_and_why() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/demo.wat");
    let output = asyncify(&[
        "inspect",
        demo,
        "--why",
        "node",
        "--why",
        "4",
        "--functions",
        "--json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("inspect --json prints JSON");
    assert_eq!(report["imports"][0]["name"], "fetch");
    assert_eq!(
        report["imports"][0]["type"],
        "func (param i32) (result i32)"
    );
    assert_eq!(report["instrumented"], 2);
    assert_eq!(report["suspension_points"], 4);
    assert_eq!(
        report["why"][0]["chain"][0],
        "$node calls import env.fetch, which may suspend"
    );
    assert_eq!(report["why"][1]["instrumented"], false);
    assert!(
        report["output_bytes"].as_u64().unwrap_or(0)
            > report["input_bytes"].as_u64().unwrap_or(u64::MAX)
    );

    let text = asyncify(&["inspect", demo, "--imports", "env.log"]);
    assert!(text.status.success(), "{}", stderr(&text));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("instrumented: 1 of 5 functions, 1 suspension points"),
        "{stdout}"
    );
}

/// Per point, `inspect` shows the locals live after it and the locals an
/// unwind writes; `--exact-saves` makes the two equal.
#[test]
fn inspect_shows_live_and_written_locals_per_point() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/demo.wat");
    let per_point = |extra: &[&str]| {
        let mut args = vec!["inspect", demo, "--functions", "--json"];
        args.extend_from_slice(extra);
        let output = asyncify(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("inspect --json prints JSON");
        let column = |key: &str| -> Vec<u64> {
            report["instrumented_functions"]
                .as_array()
                .expect("function rows")
                .iter()
                .flat_map(|f| f[key].as_array().expect("per-point list").clone())
                .map(|n| n.as_u64().expect("count"))
                .collect()
        };
        (column("live_per_point"), column("saved_per_point"))
    };
    let (live, written) = per_point(&[]);
    assert_eq!(live.len(), 4);
    assert!(
        live.iter().zip(&written).all(|(l, w)| l <= w),
        "{live:?} {written:?}"
    );
    assert!(
        live != written,
        "demo.wat's points share frame-writing code"
    );
    let (exact_live, exact_written) = per_point(&["--exact-saves"]);
    assert_eq!(exact_live, live);
    assert_eq!(exact_written, live);
}

#[test]
fn inspect_unknown_function_is_an_error() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/demo.wat");
    let output = asyncify(&["inspect", demo, "--why", "nope"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("nope"), "{}", stderr(&output));
}
