//! `asyncify run` with dynamic linking (issue 18): a main module built by
//! clang (a plain executable and a position-independent one) that `dlopen`s
//! a shared library given with `--library` or found through a `--dir`
//! mapping, run plain, instrumented, and with every WASI call suspending
//! across the frames of both modules, with identical output. The fixtures and
//! their build commands are in `tests/inputs/dylink/`.

use std::path::Path;
use std::process::{Command, Output};

/// The three ways of running that must print the same.
const MODES: [&[&str]; 3] = [&[], &["--instrument"], &["--instrument", "--async-wasi"]];

/// The two builds of the main module.
const MAINS: [&str; 2] = ["greet_main.exe.wasm", "greet_main.pie.wasm"];

/// What the program prints when the library loads and runs.
const EXPECTED: &str = "\
libgreet: constructor
libgreet: greet 7
main: main_square 7
libgreet: main_square -> 49
main: greet -> 50
";

fn inputs() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/inputs/dylink")
        .to_string_lossy()
        .into_owned()
}

fn input(name: &str) -> String {
    format!("{}/{name}", inputs())
}

/// Runs `asyncify run --no-cache` with `mode` and then `args`.
fn run(mode: &[&str], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asyncify"))
        .arg("run")
        .arg("--no-cache")
        .args(mode)
        .args(args)
        .output()
        .expect("run the asyncify binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_library_given_with_library_loads_and_runs_the_same_in_every_mode() {
    let library = format!("/lib/libgreet.so={}", input("libgreet.wasm"));
    for main in MAINS {
        for mode in MODES {
            let out = run(
                mode,
                &["--library", &library, &input(main), "/lib/libgreet.so"],
            );
            assert_eq!(
                stdout(&out),
                format!("main: dlopen /lib/libgreet.so\n{EXPECTED}"),
                "{main} {mode:?}: {}",
                stderr(&out)
            );
            assert_eq!(out.status.code(), Some(0), "{main} {mode:?}");
        }
    }
}

#[test]
fn a_library_in_a_dir_mapping_loads_and_runs_the_same_in_every_mode() {
    let dir = format!("{}::/lib", inputs());
    for main in MAINS {
        for mode in MODES {
            let out = run(mode, &["--dir", &dir, &input(main), "/lib/libgreet.wasm"]);
            assert_eq!(
                stdout(&out),
                format!("main: dlopen /lib/libgreet.wasm\n{EXPECTED}"),
                "{main} {mode:?}: {}",
                stderr(&out)
            );
            assert_eq!(out.status.code(), Some(0), "{main} {mode:?}");
        }
    }
}

#[test]
fn the_guest_cannot_load_a_library_outside_its_directories() {
    let dir = format!("{}::/lib", inputs());
    for path in [
        "/lib/../../Cargo.toml",
        "/etc/passwd",
        "/lib/missing.so",
        "/lib/wasi.h",
    ] {
        for mode in [MODES[0], MODES[2]] {
            let out = run(mode, &["--dir", &dir, &input(MAINS[0]), path]);
            let printed = stdout(&out);
            assert!(
                printed.starts_with(&format!("main: dlopen {path}\nmain: dlopen failed: ")),
                "{path} {mode:?}: {printed}"
            );
            assert!(
                printed.contains(&format!("`{path}`")),
                "the message names the path: {printed}"
            );
            assert_eq!(out.status.code(), Some(1), "{path} {mode:?}");
        }
    }
    let outside = run(&[], &["--dir", &dir, &input(MAINS[0]), "/etc/passwd"]);
    assert!(stdout(&outside).contains("not inside a directory given with --dir"));
    let not_wasm = run(&[], &["--dir", &dir, &input(MAINS[0]), "/lib/wasi.h"]);
    assert!(
        stdout(&not_wasm).contains("is not a WebAssembly module"),
        "{}",
        stdout(&not_wasm)
    );
}

#[test]
fn invoke_calls_an_export_of_the_main_module() {
    let library = format!("libgreet.so={}", input("libgreet.wasm"));
    for mode in MODES {
        let out = run(
            mode,
            &[
                "--library",
                &library,
                "--invoke",
                "main_square",
                &input(MAINS[1]),
                "12",
            ],
        );
        assert_eq!(stdout(&out), "main: main_square 12\n144\n", "{mode:?}");
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

#[test]
fn bad_dynamic_linking_command_lines_are_one_clear_error() {
    let main = input(MAINS[0]);
    let library = format!("x={}", input("libgreet.wasm"));
    let cases: [(&[&str], &str); 4] = [
        (&["--library", "nofile", &main], "--library takes NAME=FILE"),
        (
            &["--library", "x=/no/such/file.wasm", &main],
            "cannot read library `x`",
        ),
        (
            &["--trap-unknown-imports", &main],
            "do not apply to a dynamically linked run",
        ),
        (
            &["--preload", &library, &main],
            "--preload does not combine with dynamic linking",
        ),
    ];
    for (args, message) in cases {
        let out = run(&[], args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    // A module that is not a shared library: dlopen fails and says why.
    let not_side = format!("/lib/x.so={}", input(MAINS[0]));
    let out = run(&[], &["--library", &not_side, &main, "/lib/x.so"]);
    assert!(
        stdout(&out).contains("is not a shared library"),
        "{}",
        stdout(&out)
    );
    assert_eq!(out.status.code(), Some(1));
}

/// The real-toolchain scenarios of `corpus/dylink/` (built again with
/// `-DWASI_HOST` into `corpus/dylink/wasi/`: output through WASI, waits
/// through `asyncify_host.yield`), each through `asyncify run --invoke run`
/// in the three modes, against the same expected output as the library
/// tests (`linker/tests/dylink_toolchain.rs`).
#[test]
fn the_corpus_scenarios_run_through_asyncify_run_in_every_mode() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/dylink");
    let wasi = corpus.join("wasi");
    let dir = format!("{}::.", wasi.display());
    let scenarios = [
        "callback",
        "mutual",
        "twice",
        "missing",
        "ctor_trap",
        "cpp",
        "ctor_wait",
        "nested",
    ];
    for scenario in scenarios {
        let expected = std::fs::read_to_string(corpus.join(format!("expected/{scenario}.txt")))
            .expect("read the expected output");
        let main = wasi.join(format!("{scenario}_main.wasm"));
        for mode in MODES {
            let out = run(
                mode,
                &["--dir", &dir, "--invoke", "run", &main.to_string_lossy()],
            );
            assert_eq!(
                stdout(&out),
                format!("{expected}0\n"),
                "{scenario} {mode:?}: {}",
                stderr(&out)
            );
            assert!(out.status.success(), "{scenario} {mode:?}");
        }
    }
}
