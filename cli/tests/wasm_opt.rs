//! wasm-opt command lines, as build scripts hold them, give the same output
//! bytes as the plain `asyncify instrument` spelling of the same options.
//!
//! The lines follow, in spirit, Emscripten's asyncify invocation (optimizer
//! flags, other passes and their pass arguments, `--mvp-features` with
//! `--enable-*`, `-g`), the asyncify-wasm README's `wasm-opt --asyncify`,
//! and wasm-pack style post-processing (in place, `-Oz`, `-pa`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A module shaped like toolchain output: Emscripten's `invoke_*` and sleep
/// imports, a wasm-bindgen import, an indirect call, bulk memory and
/// sign extension in use.
const MODULE_WAT: &str = r#"(module
    (type $v (func))
    (import "env" "invoke_vi" (func $invoke_vi (param i32 i32)))
    (import "env" "emscripten_sleep" (func $sleep (param i32)))
    (import "env" "emscripten_wget" (func $wget (param i32 i32)))
    (import "wbg" "__wbg_fetch_1234" (func $fetch (param i32) (result i32)))
    (import "env" "log" (func $log (param i32)))
    (memory (export "memory") 2)
    (table 2 funcref)
    (elem (i32.const 0) $leaf $work)
    (func $leaf (call $log (i32.const 1)))
    (func $work
      (call $sleep (i32.const 5))
      (call $invoke_vi (i32.const 0) (i32.extend8_s (i32.const 300))))
    (func $fetch_twice (param i32) (result i32)
      (i32.add (call $fetch (local.get 0)) (call $fetch (local.get 0))))
    (func $main (export "main") (result i32)
      (memory.fill (i32.const 0) (i32.const 0) (i32.const 16))
      (call $work)
      (call_indirect (type $v) (i32.const 0))
      (call $wget (i32.const 0) (i32.const 0))
      (call $fetch_twice (i32.const 7))))"#;

/// A fresh directory under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "asyncify-wasm-opt-test-{}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn asyncify(dir: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asyncify"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// A build-script line (with `in.wasm` and `out.wasm`), and the plain
/// `asyncify instrument` options that mean the same.
struct Case {
    from: &'static str,
    line: &'static str,
    plain: &'static str,
    /// Whether the line asks for an optimizer or another pass (noted once).
    noted: bool,
}

const CASES: &[Case] = &[
    Case {
        from: "Emscripten -sASYNCIFY -O2 (optimizer, other passes, their pass args, features)",
        line: "wasm-opt --post-emscripten -O2 --low-memory-unused --zero-filled-memory \
               --pass-arg=directize-initial-contents-immutable --asyncify \
               --pass-arg=asyncify-imports@env.invoke_*,env.emscripten_sleep,env.emscripten_wget \
               in.wasm -o out.wasm --mvp-features --enable-mutable-globals --enable-sign-ext \
               --enable-bulk-memory --enable-bulk-memory-opt --enable-nontrapping-float-to-int \
               --enable-call-indirect-overlong --enable-reference-types --enable-multivalue",
        plain: "--imports env.invoke_*,env.emscripten_sleep,env.emscripten_wget",
        noted: true,
    },
    Case {
        from: "Emscripten -sASYNCIFY -sASSERTIONS -sASYNCIFY_IGNORE_INDIRECT -g",
        line: "wasm-opt --asyncify --pass-arg=asyncify-asserts \
               --pass-arg=asyncify-ignore-indirect \
               --pass-arg=asyncify-imports@env.emscripten_sleep in.wasm -o out.wasm -g \
               --detect-features",
        plain: "--asserts --ignore-indirect --imports env.emscripten_sleep",
        noted: false,
    },
    Case {
        from: "Emscripten -sASYNCIFY_REMOVE / -sASYNCIFY_ADD with -sASYNCIFY_PROPAGATE_ADD",
        line: "wasm-opt -O3 --asyncify --pass-arg=asyncify-imports@env.emscripten_sleep \
               --pass-arg=asyncify-removelist@leaf --pass-arg=asyncify-addlist@fetch_twice \
               --pass-arg=asyncify-propagate-addlist in.wasm -o out.wasm --strip-debug",
        plain: "--imports env.emscripten_sleep --remove-list leaf --add-list fetch_twice \
                --propagate-add-list",
        noted: true,
    },
    Case {
        from: "Emscripten -sASYNCIFY_ONLY",
        line: "wasm-opt --asyncify --pass-arg=asyncify-onlylist@main,work,fetch_twice \
               -Os in.wasm -o out.wasm --all-features",
        plain: "--only-list main,work,fetch_twice",
        noted: true,
    },
    Case {
        from: "asyncify-wasm README: the plain pass",
        line: "wasm-opt --asyncify in.wasm -o out.wasm",
        plain: "",
        noted: false,
    },
    Case {
        from: "asyncify-wasm README: with -O and an imports list",
        line: "wasm-opt --asyncify -O --pass-arg=asyncify-imports@wbg.__wbg_fetch_1234 \
               in.wasm -o out.wasm",
        plain: "--imports wbg.__wbg_fetch_1234",
        noted: true,
    },
    Case {
        from: "a Rust crate's build script: -O4, --pass-arg with a space",
        line: "wasm-opt --asyncify -O4 --pass-arg asyncify-imports@env.emscripten_sleep,env.log \
               in.wasm -o out.wasm",
        plain: "--imports env.emscripten_sleep,env.log",
        noted: true,
    },
    Case {
        from: "wasm-pack style post-processing: -pa, -Oz, features of the Rust target",
        line: "wasm-opt in.wasm -o out.wasm -Oz --asyncify -pa asyncify-imports@wbg.* \
               --enable-bulk-memory --enable-mutable-globals --enable-sign-ext",
        plain: "--imports wbg.*",
        noted: true,
    },
    Case {
        from: "wasm-pack style, the short forms -all and -g",
        line: "wasm-opt -all -g --asyncify in.wasm -o out.wasm \
               -pa asyncify-imports@wbg.__wbg_fetch_1234",
        plain: "--imports wbg.__wbg_fetch_1234",
        noted: false,
    },
    Case {
        from: "a secondary memory and the exported state globals",
        line: "wasm-opt --asyncify --pass-arg=asyncify-in-secondary-memory \
               --pass-arg=asyncify-secondary-memory-size@2 --pass-arg=asyncify-export-globals \
               in.wasm -o out.wasm -O1",
        plain: "--secondary-memory=2 --export-globals",
        noted: true,
    },
    Case {
        from: "a disabled feature the module does not use, --converge, -q",
        line: "wasm-opt -q --asyncify --disable-simd --disable-gc --converge -O3 in.wasm \
               -o out.wasm --pass-arg=asyncify-ignore-imports",
        plain: "--ignore-imports",
        noted: false,
    },
    Case {
        from: "the subcommand spelled out with wasm-opt flags",
        line: "instrument in.wasm --asyncify -tnh -O2 --output=out.wasm \
               -pa=asyncify-imports@env.emscripten_sleep",
        plain: "--imports env.emscripten_sleep",
        noted: true,
    },
];

#[test]
fn wasm_opt_command_lines_match_the_plain_spelling() {
    let dir = TempDir::new("lines");
    let input = wat::parse_str(MODULE_WAT).unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        std::fs::write(dir.0.join("in.wasm"), &input).unwrap();
        let mut plain = words("instrument in.wasm -o plain.wasm");
        plain.extend(words(case.plain));
        let output = asyncify(&dir.0, &plain);
        assert!(
            output.status.success(),
            "{}: plain spelling failed: {}",
            case.from,
            String::from_utf8_lossy(&output.stderr)
        );
        let expected = std::fs::read(dir.0.join("plain.wasm")).unwrap();
        assert_ne!(expected, input, "{}: nothing instrumented", case.from);

        // The build script's line, with `wasm-opt` replaced by `asyncify`.
        let line = words(case.line.strip_prefix("wasm-opt ").unwrap_or(case.line));
        let output = asyncify(&dir.0, &line);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            failures.push(format!("{}: failed: {stderr}", case.from));
            continue;
        }
        if std::fs::read(dir.0.join("out.wasm")).unwrap() != expected {
            failures.push(format!(
                "{}: output differs from the plain spelling",
                case.from
            ));
        }
        let notes = stderr.matches("note: asyncify has no optimizer").count();
        if notes != usize::from(case.noted) {
            failures.push(format!(
                "{}: expected {} optimizer note(s), stderr: {stderr}",
                case.from,
                usize::from(case.noted)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// wasm-pack post-processes in place: the input is also the output.
#[test]
fn in_place_like_wasm_pack() {
    let dir = TempDir::new("in-place");
    let input = wat::parse_str(MODULE_WAT).unwrap();
    std::fs::write(dir.0.join("in.wasm"), &input).unwrap();
    let output = asyncify(&dir.0, &words("instrument in.wasm -o plain.wasm"));
    assert!(output.status.success());
    let expected = std::fs::read(dir.0.join("plain.wasm")).unwrap();
    let output = asyncify(
        &dir.0,
        &words("in.wasm --asyncify -Oz -o in.wasm --enable-bulk-memory"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read(dir.0.join("in.wasm")).unwrap(), expected);
}
