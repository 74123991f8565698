//! Every module of the real-world corpus instruments with default options and
//! the output validates; the module Binaryen already instrumented is refused.
//!
//! The modules are read from `corpus/real/` in the repository (where
//! `scripts/fetch-corpus.sh` puts them, ignored by git), else from the team's
//! `../shared/corpus/` beside the repository. A module in neither is skipped
//! with a `SKIPPED` line, or fails the test when `ASYNCIFY_REQUIRE_TOOLS` is
//! set (`.ci/run` fetches the corpus and sets it).

use std::path::{Path, PathBuf};

use asyncify_tests::{binaryen, interface, Error, Options};

/// The folders searched, in order: the fetched copy, then the team's.
const FOLDERS: &[&str] = &[
    concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/real"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"),
];

/// The modules this file knows; `every_corpus_module_is_covered` fails when
/// a folder gains one that has no test here.
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

/// The first of [`FOLDERS`] that has `name`, or `None` after
/// [`binaryen::skip`] (which fails the test when tools are required).
fn corpus_file(test: &str, name: &str) -> Option<PathBuf> {
    let found = FOLDERS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file());
    if found.is_none() {
        binaryen::skip(
            test,
            &format!(
                "the corpus module {name} is in none of {} (scripts/fetch-corpus.sh fetches it)",
                FOLDERS.join(", ")
            ),
        );
    }
    found
}

fn instruments_and_validates(test: &str, name: &str) {
    let Some(path) = corpus_file(test, name) else {
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
            instruments_and_validates(stringify!($test), $file);
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
    let Some(path) = corpus_file(
        "quickjs_binaryen_asyncify_is_refused",
        "quickjs.binaryen-asyncify.wasm",
    ) else {
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
    let mut seen = 0;
    for dir in FOLDERS.iter().map(Path::new).filter(|d| d.is_dir()) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let name = entry.map(|e| e.file_name()).unwrap_or_default();
            let name = name.to_string_lossy();
            if name.ends_with(".wasm") {
                assert!(
                    KNOWN.contains(&name.as_ref()),
                    "corpus module {name} in {} has no test in tests/tests/corpus.rs",
                    dir.display()
                );
                seen += 1;
            }
        }
    }
    if seen == 0 {
        binaryen::skip(
            "every_corpus_module_is_covered",
            &format!("no corpus module in {}", FOLDERS.join(", ")),
        );
    }
}
