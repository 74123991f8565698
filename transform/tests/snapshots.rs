//! Snapshot tests of the output's shape, one per mechanism of the transform.
//!
//! Each `snapshots/NAME.wat` is an input; its first line may be
//! `;; options: ARG ...` (Binaryen pass arguments such as `asyncify-asserts`,
//! or `exact-saves`). `snapshots/NAME.out.wat` is the instrumented output as
//! `wasmprinter` prints it, after a header with what the transform reported
//! per instrumented function. A change to the output's shape (more saved
//! locals, a larger dispatch, another layout) fails here even when every
//! differential test still passes.
//!
//! After a deliberate change, review the new outputs and update them with
//!
//! ```text
//! BLESS=1 cargo test -p asyncify-transform --test snapshots
//! ```

use std::path::{Path, PathBuf};

use asyncify_transform::Options;

/// The command that rewrites the expected outputs.
const BLESS: &str = "BLESS=1 cargo test -p asyncify-transform --test snapshots";

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// The options named on the input's `;; options:` line.
fn options_of(wat: &str) -> Options {
    let mut options = Options::default();
    let Some(line) = wat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(";; options:"))
    else {
        return options;
    };
    for arg in line.split_whitespace() {
        if arg == "exact-saves" {
            options.exact_saves = true;
        } else {
            options
                .apply_pass_arg(arg)
                .unwrap_or_else(|e| panic!("bad option `{arg}`: {e}"));
        }
    }
    options
}

/// The instrumented output of `wat` as text, with a header of what the
/// transform reported.
fn render(name: &str, wat: &str) -> String {
    let options = options_of(wat);
    let out = asyncify_transform::instrument(wat.as_bytes(), &options)
        .unwrap_or_else(|e| panic!("{name}: the transform failed: {e}"));
    let mut text = format!(";; Output of {name}.wat. Update with: {BLESS}\n");
    for f in &out.instrumented {
        text.push_str(&format!(
            ";; func {} {}: points {}, saved locals {}, saved per point {:?}, live per point {:?}, frame {} bytes\n",
            f.index,
            f.name.as_deref().unwrap_or("-"),
            f.points,
            f.saved_locals,
            f.saved_per_point,
            f.live_per_point,
            f.frame_bytes,
        ));
    }
    for w in &out.warnings {
        text.push_str(&format!(";; warning: {w}\n"));
    }
    text.push_str(&wasmprinter::print_bytes(&out.wasm).expect("the output prints"));
    text
}

#[test]
fn snapshots() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(snapshot_dir())
        .expect("tests/snapshots exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".wat") && !name.ends_with(".out.wat")
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no snapshot inputs");
    let mut failed = Vec::new();
    for input in &inputs {
        let name = input.file_stem().and_then(|n| n.to_str()).expect("a name");
        let wat = std::fs::read_to_string(input).expect("read input");
        let actual = render(name, &wat);
        let expected_path = input.with_extension("out.wat");
        if bless {
            std::fs::write(&expected_path, &actual).expect("write expected output");
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => {
                let line = expected
                    .lines()
                    .zip(actual.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
                failed.push(format!(
                    "{name}: the output differs from {name}.out.wat from line {} on \
                     (expected `{}`, got `{}`)",
                    line + 1,
                    expected.lines().nth(line).unwrap_or("<end>"),
                    actual.lines().nth(line).unwrap_or("<end>"),
                ));
            }
            Err(_) => failed.push(format!("{name}: {name}.out.wat is missing")),
        }
    }
    assert!(
        failed.is_empty(),
        "{} snapshot(s) changed:\n{}\nIf the change is deliberate, review it and run `{BLESS}`",
        failed.len(),
        failed.join("\n")
    );
}

/// The options line is read, so a snapshot can pin an option's output.
#[test]
fn options_line_is_read() {
    let options = options_of(";; options: exact-saves asyncify-asserts\n(module)");
    assert!(options.exact_saves && options.asserts);
    assert_eq!(options_of("(module)"), Options::default());
}
