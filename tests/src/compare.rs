//! Comparing two [`Outcome`]s and saying, readably, how they differ.

use std::fmt;

use crate::run::{Failure, Outcome};
use crate::value::{list, Value};

/// The differences between two runs, one line each; empty when they agree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff(pub Vec<String>);

impl Diff {
    /// Whether the runs agree.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.0 {
            writeln!(f, "  - {line}")?;
        }
        Ok(())
    }
}

fn show(r: &Result<Vec<Value>, Failure>) -> String {
    match r {
        Ok(v) => list(v),
        Err(f) => f.to_string(),
    }
}

/// Whether two failures count as the same: same trap code (messages differ
/// in backtraces and are not compared).
fn same_failure(a: &Failure, b: &Failure) -> bool {
    // Traps compare by code; an exception that escapes to the host compares
    // by its message (wasmtime does not expose the payload here).
    match (&a.trap, &b.trap) {
        (Some(x), Some(y)) => x == y,
        (None, None) => a.message.contains("exception") && a.message == b.message,
        _ => false,
    }
}

/// Compares `instrumented` against `original`. Driver errors in either run
/// are always reported.
pub fn compare(original: &Outcome, instrumented: &Outcome) -> Diff {
    let mut d = Vec::new();
    for e in &original.errors {
        d.push(format!("driver error in the original run: {e}"));
    }
    for e in &instrumented.errors {
        d.push(format!("driver error: {e}"));
    }
    match (&original.start, &instrumented.start) {
        (None, None) => {}
        (Some(a), Some(b)) if same_failure(a, b) => {}
        (a, b) => d.push(format!(
            "instantiation: original {}, instrumented {}",
            a.as_ref().map_or("ok".into(), ToString::to_string),
            b.as_ref().map_or("ok".into(), ToString::to_string)
        )),
    }
    if original.calls.len() != instrumented.calls.len() {
        d.push(format!(
            "number of export calls: original {}, instrumented {}",
            original.calls.len(),
            instrumented.calls.len()
        ));
    }
    for (i, (a, b)) in original.calls.iter().zip(&instrumented.calls).enumerate() {
        let same = match (&a.result, &b.result) {
            (Ok(x), Ok(y)) => x == y,
            (Err(x), Err(y)) => same_failure(x, y),
            _ => false,
        };
        if !same {
            d.push(format!(
                "call #{i} {}{}: original {}, instrumented {} (after {} unwinds)",
                a.export,
                list(&a.args),
                show(&a.result),
                show(&b.result),
                b.unwinds
            ));
        }
    }
    compare_imports(original, instrumented, &mut d);
    compare_named(
        "memory",
        &original.memories,
        &instrumented.memories,
        &mut d,
        |a, b| memory_diff(a, b),
    );
    compare_named(
        "global",
        &original.globals,
        &instrumented.globals,
        &mut d,
        |a, b| (a != b).then(|| format!("original {a}, instrumented {b}")),
    );
    compare_named(
        "table",
        &original.tables,
        &instrumented.tables,
        &mut d,
        |a, b| table_diff(a, b),
    );
    Diff(d)
}

fn table_diff(a: &[Value], b: &[Value]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!(
            "size {} in the original, {} instrumented",
            a.len(),
            b.len()
        ));
    }
    let first = a.iter().zip(b).position(|(x, y)| x != y)?;
    let count = a.iter().zip(b).filter(|(x, y)| x != y).count();
    Some(format!(
        "{count} elements differ, first at {first}: original {}, instrumented {}",
        a[first], b[first]
    ))
}

fn compare_imports(original: &Outcome, instrumented: &Outcome, d: &mut Vec<String>) {
    let (a, b) = (&original.imports, &instrumented.imports);
    if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        let show = |v: Option<&crate::ImportCall>| v.map_or("(none)".into(), |c| format!("{c:?}"));
        d.push(format!(
            "import log ({} calls original, {} instrumented) first differs at call #{i}: \
             original {}, instrumented {}",
            a.len(),
            b.len(),
            show(a.get(i)),
            show(b.get(i))
        ));
    }
}

fn compare_named<T>(
    what: &str,
    a: &[(String, T)],
    b: &[(String, T)],
    d: &mut Vec<String>,
    differ: impl Fn(&T, &T) -> Option<String>,
) {
    for (name, x) in a {
        match b.iter().find(|(n, _)| n == name) {
            None => d.push(format!(
                "{what} `{name}` missing from the instrumented module"
            )),
            Some((_, y)) => {
                if let Some(why) = differ(x, y) {
                    d.push(format!("{what} `{name}`: {why}"));
                }
            }
        }
    }
    for (name, _) in b {
        if !a.iter().any(|(n, _)| n == name) {
            d.push(format!("{what} `{name}` only in the instrumented module"));
        }
    }
}

fn memory_diff(a: &[u8], b: &[u8]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!(
            "size {:#x} in the original, {:#x} instrumented",
            a.len(),
            b.len()
        ));
    }
    let first = a.iter().zip(b).position(|(x, y)| x != y)?;
    let count = a.iter().zip(b).filter(|(x, y)| x != y).count();
    let end = (first + 16).min(a.len());
    Some(format!(
        "{count} bytes differ, first at {first:#x}: original {:02x?}, instrumented {:02x?}",
        &a[first..end],
        &b[first..end]
    ))
}
