//! Every module of the real-world corpus instruments with default options and
//! the output validates; the module Binaryen already instrumented is refused.
//! Skipped, with a notice, when the corpus folder is missing.

use std::path::{Path, PathBuf};

use asyncify_tests::{interface, Error, Options};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus");

/// The modules this file knows; `every_corpus_module_is_covered` fails when
/// the folder gains one that has no test here.
const KNOWN: &[&str] = &[
    "esbuild.wasm",
    "quickjs.binaryen-asyncify.wasm",
    "quickjs.wasm",
    "snappy-napi.wasm",
    "sqlite3.wasm",
    "sqljs.wasm",
    "xxhash-napi.wasm",
    "yosys.wasm",
];

fn corpus_file(name: &str) -> Option<PathBuf> {
    let dir = Path::new(CORPUS);
    if !dir.is_dir() {
        eprintln!("NOTICE: corpus test skipped: {} is missing", dir.display());
        return None;
    }
    Some(dir.join(name))
}

fn instruments_and_validates(name: &str) {
    let Some(path) = corpus_file(name) else {
        return;
    };
    let input = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let out = asyncify_transform::instrument(&input, &Options::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    if let Err(e) = interface::validate(&out.wasm) {
        panic!("{name}: the output does not validate: {e}");
    }
}

macro_rules! corpus_tests {
    ($($test:ident => $file:literal,)*) => {$(
        #[test]
        fn $test() {
            instruments_and_validates($file);
        }
    )*};
}

corpus_tests! {
    quickjs => "quickjs.wasm",
    sqljs => "sqljs.wasm",
    sqlite3 => "sqlite3.wasm",
    snappy_napi => "snappy-napi.wasm",
    xxhash_napi => "xxhash-napi.wasm",
    esbuild => "esbuild.wasm",
    // 30 MB, 34,004 functions: on its own so it runs in parallel with the rest.
    yosys => "yosys.wasm",
}

#[test]
fn quickjs_binaryen_asyncify_is_refused() {
    let Some(path) = corpus_file("quickjs.binaryen-asyncify.wasm") else {
        return;
    };
    let input = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match asyncify_transform::instrument(&input, &Options::default()) {
        Err(Error::AlreadyInstrumented(_)) => {}
        Err(e) => panic!("expected AlreadyInstrumented, got the error {e}"),
        Ok(_) => panic!("expected AlreadyInstrumented, but it instrumented the module"),
    }
}

#[test]
fn every_corpus_module_is_covered() {
    let Some(dir) = corpus_file("") else {
        return;
    };
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let name = entry.map(|e| e.file_name()).unwrap_or_default();
        let name = name.to_string_lossy();
        if name.ends_with(".wasm") {
            assert!(
                KNOWN.contains(&name.as_ref()),
                "corpus module {name} has no test in tests/tests/corpus.rs"
            );
        }
    }
}
