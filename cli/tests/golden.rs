//! Golden tests of the `asyncify` command line, in the manner of wasm-tools'
//! `tests/cli`: each `tests/golden/NAME.cmd` holds one command line (the
//! arguments after `asyncify`, with `'` or `"` quoting, `#` comment lines
//! first), and `NAME.out` beside it the exit code, standard output and
//! standard error that command must produce, exactly.
//!
//! Commands run in `tests/golden/`, so inputs are named relative to it
//! (`inputs/...`, `../../../corpus/...`). `$TMP` in a command is a fresh
//! directory, written back as `$TMP` in the output; times in instrument's
//! summary line read `[TIME]`; the cache of compiled modules is a fresh
//! directory per case.
//!
//! After a deliberate change of help text or messages, rewrite every `.out`
//! file with:
//!
//!     BLESS=1 cargo test -p asyncify-cli --test golden
//!
//! and review the difference with `git diff cli/tests/golden`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Splits a command line into words: whitespace separates, `'...'` and
/// `"..."` quote (no escapes inside).
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quote in `{line}`");
    words.extend(word);
    words
}

/// Replaces the time at the end of instrument's summary line.
fn mask_times(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        match line.find(" instrumented in ") {
            Some(at) => {
                let cut = at + " instrumented in ".len();
                let newline = if line.ends_with('\n') { "\n" } else { "" };
                write!(out, "{}[TIME]{newline}", &line[..cut]).unwrap();
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Runs one case; returns what it printed, in the `.out` format.
fn run_case(name: &str, command: &str) -> String {
    let tmp = std::env::temp_dir().join(format!("asyncify-golden-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("cache")).unwrap();
    let tmp_text = tmp.to_str().unwrap();
    let words: Vec<String> = split_words(&command.replace("$TMP", tmp_text));
    let output = Command::new(env!("CARGO_BIN_EXE_asyncify"))
        .args(&words)
        .current_dir(golden_dir())
        .env("XDG_CACHE_HOME", tmp.join("cache"))
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    let clean =
        |bytes: &[u8]| mask_times(&String::from_utf8_lossy(bytes).replace(tmp_text, "$TMP"));
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        output
            .status
            .code()
            .map_or("signal".to_owned(), |c| c.to_string()),
        clean(&output.stdout),
        clean(&output.stderr)
    )
}

/// The command of a `.cmd` file: its lines that are not comments, joined.
fn read_command(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn golden() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "cmd"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "golden cases missing");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_stem().unwrap().to_str().unwrap();
        let actual = run_case(name, &read_command(case));
        let expected_path = case.with_extension("out");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{name}: expected ({}):\n{expected}\nactual:\n{actual}",
                expected_path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases differ (after a deliberate change, rewrite them with \
         `BLESS=1 cargo test -p asyncify-cli --test golden`):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn split_words_handles_quotes() {
    assert_eq!(split_words(r#"a 'b c' "d'e" f"#), ["a", "b c", "d'e", "f"]);
    assert_eq!(split_words("x ''"), ["x", ""]);
}
