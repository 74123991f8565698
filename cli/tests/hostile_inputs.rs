//! Hostile inputs and outputs through the `asyncify` binary (issue 13,
//! items 6 to 9): deep nesting, components, modules at the limits engines
//! enforce, and `-o` onto devices, FIFOs and symbolic links. The command
//! must succeed or fail with one paragraph and exit code 1: never abort
//! (134), never panic (101), never leave a partial or misplaced file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("asyncify-hostile-{}-{test}", std::process::id()));
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

fn asyncify(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_asyncify"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The command succeeded.
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        stderr(output)
    );
}

/// The command failed cleanly: exit code 1 and one paragraph, `error: ...`,
/// on one line, containing `needle`. Returns the message.
fn assert_clean_failure(output: &Output, needle: &str) -> String {
    let message = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{:?}: {message}",
        output.status
    );
    assert!(message.starts_with("error: "), "{message}");
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    assert!(!message.contains("panicked"), "{message}");
    assert!(
        message.contains(needle),
        "expected `{needle}` in: {message}"
    );
    message
}

fn leb(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, contents: &[u8], out: &mut Vec<u8>) {
    out.push(id);
    leb(contents.len() as u64, out);
    out.extend_from_slice(contents);
}

/// A module importing `env.sleep: [] -> []`, with one memory and an exported
/// function whose body is `locals` then `code` (without the final `end`).
fn module(locals: &[u8], code: &[u8]) -> Vec<u8> {
    let mut out = b"\0asm\x01\0\0\0".to_vec();
    section(1, b"\x01\x60\x00\x00", &mut out);
    section(2, b"\x01\x03env\x05sleep\x00\x00", &mut out);
    section(3, b"\x01\x00", &mut out);
    section(5, b"\x01\x00\x01", &mut out);
    section(7, b"\x01\x03run\x00\x01", &mut out);
    let mut body = locals.to_vec();
    body.extend_from_slice(code);
    body.push(0x0b);
    let mut code_section = vec![1];
    leb(body.len() as u64, &mut code_section);
    code_section.extend_from_slice(&body);
    section(10, &code_section, &mut out);
    out
}

/// `depth` nested blocks around a call to the suspending import.
fn nested_blocks(depth: usize) -> Vec<u8> {
    let mut code = [0x02, 0x40].repeat(depth);
    code.extend_from_slice(&[0x10, 0x00]);
    code.resize(code.len() + depth, 0x0b);
    module(&[0], &code)
}

/// A small module the transform instruments.
fn small() -> Vec<u8> {
    nested_blocks(1)
}

// Item 6: deep nesting.

fn instruments_deep_nesting(depth: usize, test: &str) {
    let dir = TempDir::new(test);
    let input = dir.write("deep.wasm", nested_blocks(depth));
    let out = dir.path("deep.out.wasm");
    assert_success(&asyncify(&[&"instrument", &input, &"-o", &out]));
    assert!(std::fs::metadata(&out).unwrap().len() > depth as u64 * 3);
}

#[test]
fn hundred_thousand_nested_blocks() {
    instruments_deep_nesting(100_000, "nest-100k");
}

#[test]
fn a_million_nested_blocks() {
    instruments_deep_nesting(1_000_000, "nest-1m");
}

#[test]
fn deeply_nested_text_and_inspect() {
    let dir = TempDir::new("nest-text");
    let depth = 100_000;
    let wat = format!(
        r#"(module (import "env" "sleep" (func $s)) (memory 1)
            (func (export "run") {}(call $s){}))"#,
        "(block ".repeat(depth),
        ")".repeat(depth)
    );
    let input = dir.write("deep.wat", wat);
    let out = dir.path("deep.wasm");
    assert_success(&asyncify(&[&"instrument", &input, &"-o", &out]));
    let inspect = asyncify(&[
        &"inspect",
        &dir.write("deep-bin.wasm", nested_blocks(depth)),
    ]);
    assert_success(&inspect);
    let report = String::from_utf8_lossy(&inspect.stdout);
    assert!(report.contains("1 suspension points"), "{report}");
}

// Item 7: components.

#[test]
fn components_are_refused_by_instrument_and_inspect() {
    let dir = TempDir::new("component");
    let text = r#"(component
        (core module $m
            (import "env" "sleep" (func $s))
            (memory 1)
            (func (export "run") (call $s))))"#;
    let inputs = [
        dir.write("c.wasm", wat::parse_str(text).unwrap()),
        dir.write("c.wat", text),
        dir.write("empty.wasm", b"\0asm\x0d\x00\x01\x00"),
    ];
    for input in &inputs {
        let out = dir.path("out.wasm");
        for secondary in [None, Some("--secondary-memory")] {
            let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
                vec![&"instrument", input, &"-o", &out];
            if let Some(flag) = &secondary {
                args.push(flag);
            }
            let message = assert_clean_failure(&asyncify(&args), "is a WebAssembly component");
            assert!(
                message.contains("wasm-tools component unbundle"),
                "{message}"
            );
            assert!(!out.exists());
        }
        assert_clean_failure(
            &asyncify(&[&"inspect", input]),
            "is a WebAssembly component",
        );
    }
}

// Item 8: the limits engines enforce.

/// A body declaring `count` locals of type `ty`, each set before `points`
/// calls to the import and read after them.
fn live_locals(count: u32, ty: u8, points: usize) -> Vec<u8> {
    let mut locals = vec![1];
    leb(u64::from(count), &mut locals);
    locals.push(ty);
    let konst = if ty == 0x7e { 0x42 } else { 0x41 };
    let mut code = Vec::new();
    for i in 0..count {
        code.extend_from_slice(&[konst, 0x01, 0x21]);
        leb(u64::from(i), &mut code);
    }
    code.extend_from_slice(&[0x10, 0x00].repeat(points));
    for i in 0..count {
        code.push(0x20);
        leb(u64::from(i), &mut code);
        code.push(0x1a);
    }
    module(&locals, &code)
}

#[test]
fn fifty_thousand_live_locals() {
    let dir = TempDir::new("locals");
    let input = dir.write("locals.wasm", live_locals(50_000, 0x7f, 1));
    let out = dir.path("out.wasm");
    let message = assert_clean_failure(
        &asyncify(&[&"instrument", &input, &"-o", &out]),
        "over the limit of 50000 locals per function",
    );
    assert!(!message.contains("please report"), "{message}");
    assert_eq!(dir.entries(), ["locals.wasm"]);
}

#[test]
fn i64_locals_at_fifty_points() {
    let dir = TempDir::new("frames");
    let input = dir.write("frames.wasm", live_locals(49_990, 0x7e, 50));
    let out = dir.path("out.wasm");
    assert_success(&asyncify(&[&"instrument", &input, &"-o", &out]));
}

#[test]
fn secondary_memory_over_four_gib() {
    let dir = TempDir::new("secondary");
    let input = dir.write("small.wasm", small());
    let out = dir.path("out.wasm");
    for pages in ["65537", "4294967296", "18446744073709551615"] {
        let flag = format!("--secondary-memory={pages}");
        assert_clean_failure(
            &asyncify(&[&"instrument", &input, &"-o", &out, &flag]),
            "at most 65536 pages",
        );
        let pass_arg = format!("asyncify-secondary-memory-size@{pages}");
        assert_clean_failure(
            &asyncify(&[&"instrument", &input, &"-o", &out, &"--pass-arg", &pass_arg]),
            "at most 65536 pages",
        );
        assert!(!out.exists());
    }
    assert_success(&asyncify(&[
        &"instrument",
        &input,
        &"-o",
        &out,
        &"--secondary-memory=65536",
    ]));
}

// Item 9: `-o` onto special files.

/// The bytes `asyncify instrument` writes for `input`, through a regular file.
fn expected_output(dir: &TempDir, input: &Path) -> Vec<u8> {
    let out = dir.path("expected.wasm");
    assert_success(&asyncify(&[&"instrument", &input, &"-o", &out]));
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    bytes
}

#[cfg(unix)]
#[test]
fn output_to_dev_null_keeps_the_device() {
    use std::os::unix::fs::FileTypeExt;
    let dir = TempDir::new("dev-null");
    let input = dir.write("small.wasm", small());
    assert_success(&asyncify(&[&"instrument", &input, &"-o", &"/dev/null"]));
    let kind = std::fs::symlink_metadata("/dev/null").unwrap().file_type();
    assert!(kind.is_char_device(), "/dev/null is now {kind:?}");
}

#[cfg(unix)]
#[test]
fn output_to_a_fifo_reaches_its_reader() {
    use std::os::unix::fs::FileTypeExt;
    let dir = TempDir::new("fifo");
    let input = dir.write("small.wasm", small());
    let expected = expected_output(&dir, &input);
    let fifo = dir.path("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    assert_success(&asyncify(&[&"instrument", &input, &"-o", &fifo]));
    assert_eq!(reader.join().unwrap(), expected);
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO is now {kind:?}");
    assert_eq!(dir.entries(), ["pipe", "small.wasm"]);
}

#[cfg(unix)]
#[test]
fn output_through_symbolic_links() {
    let dir = TempDir::new("symlink");
    let input = dir.write("small.wasm", small());
    let expected = expected_output(&dir, &input);
    std::fs::create_dir(dir.path("sub")).unwrap();

    // A link to an existing file (relative, into another directory): the
    // target is replaced, the link stays.
    let target = dir.write("sub/target.wasm", b"old");
    let link = dir.path("link.wasm");
    std::os::unix::fs::symlink("sub/target.wasm", &link).unwrap();
    assert_success(&asyncify(&[&"instrument", &input, &"-o", &link]));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("sub/target.wasm")
    );
    assert_eq!(std::fs::read(&target).unwrap(), expected);

    // A chain of links to a file that does not exist yet: it is created.
    let chain = dir.path("chain.wasm");
    std::os::unix::fs::symlink(dir.path("dangling.wasm"), dir.path("middle.wasm")).unwrap();
    std::os::unix::fs::symlink("middle.wasm", &chain).unwrap();
    assert_success(&asyncify(&[&"instrument", &input, &"-o", &chain]));
    assert!(std::fs::symlink_metadata(&chain)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(dir.path("dangling.wasm")).unwrap(), expected);

    // A failed transform leaves the target as it was, and no temporary file.
    std::fs::write(&target, b"old").unwrap();
    let invalid = dir.write("invalid.wasm", b"\0asm\x01\0\0\0\x01");
    assert_clean_failure(
        &asyncify(&[&"instrument", &invalid, &"-o", &link]),
        "not a valid",
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
    let mut sub: Vec<_> = std::fs::read_dir(dir.path("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    sub.sort();
    assert_eq!(sub, ["target.wasm"]);

    // A loop of links is an error, not a hang or a replaced link.
    std::os::unix::fs::symlink("loop-b", dir.path("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", dir.path("loop-b")).unwrap();
    assert_clean_failure(
        &asyncify(&[&"instrument", &input, &"-o", &dir.path("loop-a")]),
        "symbolic links",
    );
    assert!(std::fs::symlink_metadata(dir.path("loop-a"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn output_onto_a_directory_or_into_a_missing_one() {
    let dir = TempDir::new("output-dir");
    let input = dir.write("small.wasm", small());
    std::fs::create_dir(dir.path("sub")).unwrap();
    assert_clean_failure(
        &asyncify(&[&"instrument", &input, &"-o", &dir.path("sub")]),
        "is a directory",
    );
    assert_clean_failure(
        &asyncify(&[&"instrument", &input, &"-o", &dir.path("missing/out.wasm")]),
        "cannot",
    );
    assert_eq!(dir.entries(), ["small.wasm", "sub"]);
    assert_eq!(std::fs::read_dir(dir.path("sub")).unwrap().count(), 0);
}
