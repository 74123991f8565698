//! Options of the transform, with Binaryen's pass-arg spellings.

use crate::Error;

/// What to instrument and how. `Default` matches `wasm-opt --asyncify` with no
/// pass arguments: every import and every indirect call may suspend.
///
/// Build it field by field, or from Binaryen pass arguments with
/// [`Options::apply_pass_arg`]; check it with [`Options::validate`] before use.
///
/// ```
/// use asyncify_transform::Options;
///
/// let mut options = Options::default();
/// options.apply_pass_arg("asyncify-imports@env.sleep,env.read_*")?;
/// options.apply_pass_arg("asyncify-asserts")?;
/// options.validate()?;
/// assert_eq!(options.imports, ["env.sleep", "env.read_*"]);
/// assert!(options.asserts);
/// # Ok::<(), asyncify_transform::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Imports that may suspend, as `module.name` patterns (`*` globs). Empty: all imports.
    pub imports: Vec<String>,
    /// No import may suspend (only the guest-imported `asyncify.*` runtime functions do).
    pub ignore_imports: bool,
    /// Indirect calls (`call_indirect`, `call_ref`) are assumed not to suspend.
    ///
    /// Without it, an indirect call may suspend, except in a module that no
    /// function reference can enter from outside (no imported or exported
    /// table, global, tag or function signature carries one): there a call
    /// may suspend only if a function the module references, of the call's
    /// type or a subtype of it, may change the state.
    pub ignore_indirect: bool,
    /// Functions to instrument even if analysis says they cannot suspend.
    pub add_list: Vec<String>,
    /// Functions that never suspend and do not make their callers suspend.
    pub remove_list: Vec<String>,
    /// If set, exactly these functions are instrumented.
    pub only_list: Option<Vec<String>>,
    /// Callers of add-list functions are instrumented too.
    pub propagate_add_list: bool,
    /// Uninstrumented code traps if the state changes under it.
    pub asserts: bool,
    /// Import the two globals as `env.__asyncify_state` / `env.__asyncify_data`.
    pub import_globals: bool,
    /// Export the two globals as `__asyncify_state` / `__asyncify_data`.
    pub export_globals: bool,
    /// Put the buffer in a new memory of this many pages, exported as `asyncify_memory`.
    pub secondary_memory: Option<u64>,
    /// With several memories: use the one exported under this name.
    pub memory: Option<String>,
    /// An unwind writes exactly the locals live at its suspension point. By
    /// default nearby points share the code that writes the frame, which then
    /// writes the union of their live locals (dead ones are harmless: a
    /// rewind loads them into locals nothing reads); that output is much
    /// smaller (QuickJS: 835,678 bytes against 1,235,930).
    pub exact_saves: bool,
    /// Add budget checks at loop headers and at the entry of functions that
    /// can recurse, which call the import `asyncify.yield` when the budget
    /// (the exported global `asyncify_budget`) is spent: a host can then
    /// suspend a CPU-bound guest and resume it later (time-slicing). See
    /// [`yield_checks`](crate::yield_checks).
    pub yield_checks: bool,
}

/// Every pass argument [`Options::apply_pass_arg`] understands, as shown in its error.
const PASS_ARG_KEYS: &[&str] = &[
    "asyncify-imports@LIST",
    "asyncify-ignore-imports",
    "asyncify-ignore-indirect",
    "asyncify-addlist@LIST",
    "asyncify-removelist@LIST",
    "asyncify-onlylist@LIST",
    "asyncify-propagate-addlist",
    "asyncify-asserts",
    "asyncify-verbose",
    "asyncify-import-globals",
    "asyncify-export-globals",
    "asyncify-in-secondary-memory",
    "asyncify-secondary-memory-size@N",
    "asyncify-memory@NAME",
    "asyncify-yield-checks",
];

impl Options {
    /// Applies one Binaryen pass argument, spelled as after `wasm-opt --pass-arg`:
    /// `KEY` for a switch, `KEY@VALUE` for a value.
    ///
    /// | key | effect |
    /// |---|---|
    /// | `asyncify-imports@LIST` | appends to [`imports`](Self::imports) |
    /// | `asyncify-ignore-imports` | sets [`ignore_imports`](Self::ignore_imports) |
    /// | `asyncify-ignore-indirect` | sets [`ignore_indirect`](Self::ignore_indirect) |
    /// | `asyncify-addlist@LIST` | appends to [`add_list`](Self::add_list) |
    /// | `asyncify-removelist@LIST` (old: `asyncify-blacklist`) | appends to [`remove_list`](Self::remove_list) |
    /// | `asyncify-onlylist@LIST` (old: `asyncify-whitelist`) | appends to [`only_list`](Self::only_list) (see [`extend_only_list`](Self::extend_only_list)) |
    /// | `asyncify-propagate-addlist` | sets [`propagate_add_list`](Self::propagate_add_list) |
    /// | `asyncify-asserts` | sets [`asserts`](Self::asserts) |
    /// | `asyncify-verbose` | accepted and ignored here: printing reasons is the caller's job (the `asyncify` CLI turns on `--verbose`) |
    /// | `asyncify-import-globals` (old: `asyncify-relocatable`) | sets [`import_globals`](Self::import_globals) |
    /// | `asyncify-export-globals` | sets [`export_globals`](Self::export_globals) |
    /// | `asyncify-in-secondary-memory` | sets [`secondary_memory`](Self::secondary_memory) to 1 page unless a size is already set |
    /// | `asyncify-secondary-memory-size@N` | sets [`secondary_memory`](Self::secondary_memory) to `N` pages; this alone turns the secondary memory on |
    /// | `asyncify-memory@NAME` | sets [`memory`](Self::memory) |
    /// | `asyncify-yield-checks` (this crate's own) | sets [`yield_checks`](Self::yield_checks) |
    ///
    /// `LIST` is parsed by [`parse_list`], so `@file` reads it from a file. Lists
    /// given several times append. The two secondary-memory keys give the same
    /// result in either order.
    ///
    /// # Errors
    ///
    /// [`Error::Options`] for an unknown key, a switch given a value
    /// (`asyncify-asserts@1`), a missing value (`asyncify-imports`, `asyncify-memory@`)
    /// or a size that is not a number; [`Error::ListFile`] when an `@file` list
    /// cannot be read.
    ///
    /// ```
    /// use asyncify_transform::Options;
    ///
    /// let mut options = Options::default();
    /// options.apply_pass_arg("asyncify-secondary-memory-size@4")?;
    /// options.apply_pass_arg("asyncify-in-secondary-memory")?;
    /// assert_eq!(options.secondary_memory, Some(4));
    /// assert!(options.apply_pass_arg("asyncify-sleep").is_err());
    /// # Ok::<(), asyncify_transform::Error>(())
    /// ```
    pub fn apply_pass_arg(&mut self, arg: &str) -> Result<(), Error> {
        let (key, value) = match arg.split_once('@') {
            Some((key, value)) => (key, Some(value)),
            None => (arg, None),
        };
        let list = || parse_list(value.ok_or_else(|| missing_value(arg, key, "LIST"))?);
        let switch = |field: &mut bool| -> Result<(), Error> {
            match value {
                Some(v) if !v.is_empty() => Err(Error::Options(format!(
                    "pass argument `{arg}`: `{key}` is a switch and takes no value; write `{key}`"
                ))),
                _ => {
                    *field = true;
                    Ok(())
                }
            }
        };
        match key {
            "asyncify-imports" => self.imports.extend(list()?),
            "asyncify-ignore-imports" => switch(&mut self.ignore_imports)?,
            "asyncify-ignore-indirect" => switch(&mut self.ignore_indirect)?,
            "asyncify-addlist" => self.add_list.extend(list()?),
            "asyncify-removelist" | "asyncify-blacklist" => self.remove_list.extend(list()?),
            "asyncify-onlylist" | "asyncify-whitelist" => self.extend_only_list(list()?),
            "asyncify-propagate-addlist" => switch(&mut self.propagate_add_list)?,
            "asyncify-asserts" => switch(&mut self.asserts)?,
            // Only checked: printing the reasons is the caller's job.
            "asyncify-verbose" => switch(&mut false)?,
            "asyncify-import-globals" | "asyncify-relocatable" => switch(&mut self.import_globals)?,
            "asyncify-export-globals" => switch(&mut self.export_globals)?,
            "asyncify-in-secondary-memory" => {
                // A size given earlier wins over the default of 1 page.
                switch(&mut false)?;
                self.secondary_memory.get_or_insert(1);
            }
            "asyncify-secondary-memory-size" => {
                let size = non_empty_value(arg, key, value, "N")?;
                let pages = size.trim().parse::<u64>().map_err(|_| {
                    Error::Options(format!(
                        "pass argument `{arg}`: the secondary memory size must be a whole number of 64 KiB pages, not `{size}`"
                    ))
                })?;
                self.secondary_memory = Some(pages);
            }
            "asyncify-memory" => {
                let name = non_empty_value(arg, key, value, "NAME")?;
                self.memory = Some(name.to_owned());
            }
            "asyncify-yield-checks" => switch(&mut self.yield_checks)?,
            _ => {
                return Err(Error::Options(format!(
                    "unknown pass argument `{arg}`; expected one of {}",
                    PASS_ARG_KEYS.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// Appends `entries` to the only list. As in Binaryen, an empty only list
    /// is the same as none: if there is no only list yet and `entries` is
    /// empty, [`only_list`](Self::only_list) stays `None` (instead of
    /// instrumenting nothing at all).
    pub fn extend_only_list(&mut self, entries: impl IntoIterator<Item = String>) {
        let mut entries = entries.into_iter().peekable();
        if self.only_list.is_some() || entries.peek().is_some() {
            self.only_list.get_or_insert_with(Vec::new).extend(entries);
        }
    }

    /// Checks that the options make sense together. This does not look at a
    /// module: patterns that match nothing are reported by the transform.
    ///
    /// # Errors
    ///
    /// [`Error::Options`] when the only list is combined with the add list or
    /// the remove list, or when the secondary memory has 0 pages or more than
    /// [`MAX_SECONDARY_MEMORY_PAGES`].
    ///
    /// ```
    /// use asyncify_transform::Options;
    ///
    /// let options = Options {
    ///     only_list: Some(vec!["main".into()]),
    ///     remove_list: vec!["log".into()],
    ///     ..Options::default()
    /// };
    /// assert!(options.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        if self.only_list.is_some() && !(self.add_list.is_empty() && self.remove_list.is_empty()) {
            return Err(Error::Options(
                "the only list cannot be combined with the add list or the remove list: \
                 the only list already names exactly the functions to instrument. \
                 Give either the only list alone, or the add and remove lists"
                    .into(),
            ));
        }
        if self.secondary_memory == Some(0) {
            return Err(Error::Options(
                "the secondary memory must have at least 1 page (64 KiB)".into(),
            ));
        }
        if let Some(pages) = self
            .secondary_memory
            .filter(|&p| p > MAX_SECONDARY_MEMORY_PAGES)
        {
            return Err(Error::Options(format!(
                "the secondary memory can have at most {MAX_SECONDARY_MEMORY_PAGES} pages \
                 (4 GiB), not {pages}: it is a 32-bit memory, as in Binaryen, because the \
                 asyncify ABI passes buffer addresses as i32"
            )));
        }
        Ok(())
    }
}

/// The most 64 KiB pages a 32-bit memory can have (4 GiB).
pub const MAX_SECONDARY_MEMORY_PAGES: u64 = 65_536;

/// The value of a `KEY@VALUE` pass argument whose value cannot be empty.
fn non_empty_value<'a>(
    arg: &str,
    key: &str,
    value: Option<&'a str>,
    placeholder: &str,
) -> Result<&'a str, Error> {
    value
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| missing_value(arg, key, placeholder))
}

fn missing_value(arg: &str, key: &str, placeholder: &str) -> Error {
    Error::Options(format!(
        "pass argument `{arg}` needs a value: write `{key}@{placeholder}`"
    ))
}

/// Parses a list of names or patterns, as given to the list options.
///
/// If `text` starts with `@`, the rest is a file path and the list is read from
/// that file. Entries are separated by newlines or, when there is no newline,
/// by commas; each entry is trimmed and empty entries are dropped. Commas
/// inside `()`, `<>`, `[]` or `{}` do not separate entries, so demangled C++
/// names such as `foo(int, int)` or `std::map<int, int>::at` stay whole; the
/// symbols of operator names (`operator<`, `operator,`, `operator()`) do not
/// count as brackets.
///
/// # Errors
///
/// [`Error::ListFile`] when the file cannot be read; [`Error::Options`] when
/// the brackets of a comma-separated list do not balance (a newline-separated
/// list has no such restriction).
///
/// ```
/// use asyncify_transform::parse_list;
///
/// assert_eq!(parse_list("env.sleep, env.read_*,")?, ["env.sleep", "env.read_*"]);
/// assert_eq!(parse_list("foo(int, int),bar")?, ["foo(int, int)", "bar"]);
/// assert_eq!(parse_list("a,b\nc")?, ["a,b", "c"]);
/// # Ok::<(), asyncify_transform::Error>(())
/// ```
pub fn parse_list(text: &str) -> Result<Vec<String>, Error> {
    let Some(path) = text.strip_prefix('@') else {
        return split_list(text);
    };
    let contents = std::fs::read_to_string(path).map_err(|source| Error::ListFile {
        path: path.to_owned(),
        source,
    })?;
    split_list(&contents)
}

/// Splits list text into trimmed, non-empty entries (see [`parse_list`]).
fn split_list(text: &str) -> Result<Vec<String>, Error> {
    let pieces = if text.contains('\n') {
        text.lines().collect()
    } else {
        split_top_level_commas(text)?
    };
    Ok(pieces
        .into_iter()
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Splits `text` at the commas that are not inside brackets.
fn split_top_level_commas(text: &str) -> Result<Vec<&str>, Error> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(len) = operator_symbol_len(bytes, i) {
            i += len;
            continue;
        }
        match bytes[i] {
            b'(' | b'<' | b'[' | b'{' => depth += 1,
            b')' | b'>' | b']' | b'}' => {
                depth = depth.checked_sub(1).ok_or_else(|| unbalanced(text))?;
            }
            b',' if depth == 0 => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return Err(unbalanced(text));
    }
    pieces.push(&text[start..]);
    Ok(pieces)
}

/// If a C++ operator name such as `operator<<` or `operator()` starts at `i`,
/// the length of `operator` plus its symbol, so those symbols are not taken
/// for brackets or separators.
fn operator_symbol_len(bytes: &[u8], i: usize) -> Option<usize> {
    const WORD: &[u8] = b"operator";
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if !bytes[i..].starts_with(WORD) || (i > 0 && is_ident(bytes[i - 1])) {
        return None;
    }
    let rest = &bytes[i + WORD.len()..];
    let symbol = if rest.starts_with(b"()") || rest.starts_with(b"[]") {
        2
    } else if rest.starts_with(b",") {
        1
    } else {
        rest.iter()
            .take_while(|b| b"<>=-!+*/%^&|~".contains(b))
            .count()
    };
    (symbol > 0).then_some(WORD.len() + symbol)
}

fn unbalanced(text: &str) -> Error {
    Error::Options(format!(
        "the brackets in the list `{text}` do not balance, so it cannot be split at commas; \
         put one entry per line instead (in a file given as `@file`)"
    ))
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters
/// (possibly empty) and every other character matches itself.
///
/// Runs in `O(pattern × name)` time at worst, and linear time for patterns
/// with at most one `*`.
///
/// ```
/// use asyncify_transform::glob_match;
///
/// assert!(glob_match("env.*", "env.sleep"));
/// assert!(glob_match("*sleep*", "env.usleep_ms"));
/// assert!(!glob_match("env.sleep", "env.sleep2"));
/// ```
pub fn glob_match(pattern: &str, name: &str) -> bool {
    // Greedy matching that, on a mismatch, only retries from the latest `*`:
    // an earlier `*` never needs to take more, because the latest one can
    // absorb the difference. Working on bytes is exact for UTF-8, since a
    // literal can only match starting at the first byte of a character.
    let (pattern, name) = (pattern.as_bytes(), name.as_bytes());
    let (mut p, mut n) = (0, 0);
    // Pattern position just after the latest `*`, and where in `name` its run ends.
    let mut retry: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                retry = Some((p, n));
            }
            Some(&c) if c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match retry {
                Some((star_p, star_n)) => {
                    p = star_p;
                    n = star_n + 1;
                    retry = Some((star_p, n));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(args: &[&str]) -> Result<Options, Error> {
        let mut options = Options::default();
        for arg in args {
            options.apply_pass_arg(arg)?;
        }
        Ok(options)
    }

    fn options_error(result: Result<impl std::fmt::Debug, Error>) -> String {
        match result {
            Err(Error::Options(message)) => message,
            other => panic!("expected Error::Options, got {other:?}"),
        }
    }

    /// A file under the temp dir, removed when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(tag: &str, contents: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "asyncify-options-test-{}-{}-{tag}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }

        fn list_arg(&self) -> String {
            format!("@{}", self.0.display())
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn parse_list_commas() {
        assert_eq!(parse_list("a,b,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(parse_list(" a , b ,, c , ").unwrap(), ["a", "b", "c"]);
        assert_eq!(parse_list("env.sleep").unwrap(), ["env.sleep"]);
    }

    #[test]
    fn parse_list_empty() {
        assert!(parse_list("").unwrap().is_empty());
        assert!(parse_list(" , ,").unwrap().is_empty());
        assert!(parse_list("\n\n").unwrap().is_empty());
    }

    #[test]
    fn parse_list_newlines_take_precedence_over_commas() {
        assert_eq!(
            parse_list("foo(int, int)\r\n  bar \n\nbaz,qux\n").unwrap(),
            ["foo(int, int)", "bar", "baz,qux"]
        );
    }

    #[test]
    fn parse_list_keeps_commas_inside_brackets() {
        assert_eq!(
            parse_list("foo(int, int),std::map<int, float>::at(int),arr[1,2],{lambda(a, b)#1},x")
                .unwrap(),
            [
                "foo(int, int)",
                "std::map<int, float>::at(int)",
                "arr[1,2]",
                "{lambda(a, b)#1}",
                "x"
            ]
        );
        assert_eq!(
            parse_list("f(std::vector<std::pair<int, int>>, char), g").unwrap(),
            ["f(std::vector<std::pair<int, int>>, char)", "g"]
        );
    }

    #[test]
    fn parse_list_operator_names() {
        assert_eq!(
            parse_list("operator<(A, B),operator()(int, int),operator,(X, Y),S::operator->(),a")
                .unwrap(),
            [
                "operator<(A, B)",
                "operator()(int, int)",
                "operator,(X, Y)",
                "S::operator->()",
                "a"
            ]
        );
        assert_eq!(
            parse_list("std::ostream::operator<<(int),x").unwrap(),
            ["std::ostream::operator<<(int)", "x"]
        );
        // `operator` inside a longer identifier is not an operator name.
        assert_eq!(
            parse_list("my_operator<int, int>,y").unwrap(),
            ["my_operator<int, int>", "y"]
        );
    }

    #[test]
    fn parse_list_unbalanced_brackets() {
        let message = options_error(parse_list("foo(int, bar"));
        assert!(message.contains("one entry per line"), "{message}");
        options_error(parse_list("foo), bar"));
        // One entry per line needs no balancing.
        assert_eq!(parse_list("foo(int\nbar)").unwrap(), ["foo(int", "bar)"]);
    }

    #[test]
    fn parse_list_from_file() {
        let file = TempFile::new("lines", "env.sleep\n  foo(int, int)  \n\nbar\n");
        assert_eq!(
            parse_list(&file.list_arg()).unwrap(),
            ["env.sleep", "foo(int, int)", "bar"]
        );
        let file = TempFile::new("commas", "a, b,c");
        assert_eq!(parse_list(&file.list_arg()).unwrap(), ["a", "b", "c"]);
    }

    #[test]
    fn parse_list_missing_file() {
        let path = std::env::temp_dir().join("asyncify-options-test-does-not-exist.txt");
        let path = path.display().to_string();
        let error = parse_list(&format!("@{path}")).unwrap_err();
        assert!(error.to_string().contains(&path), "{error}");
        match error {
            Error::ListFile { path: p, source } => {
                assert_eq!(p, path);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected Error::ListFile, got {other:?}"),
        }
    }

    #[test]
    fn glob_literal() {
        assert!(glob_match("env.sleep", "env.sleep"));
        assert!(!glob_match("env.sleep", "env.sleeP"));
        assert!(!glob_match("env.sleep", "env.sleep2"));
        assert!(!glob_match("env.sleep", "env.slee"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
        // Only `*` is special.
        assert!(glob_match("a?b[c]", "a?b[c]"));
        assert!(!glob_match("a?b", "axb"));
    }

    #[test]
    fn glob_star() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("**", "x"));
        assert!(glob_match("env.*", "env."));
        assert!(glob_match("env.*", "env.sleep"));
        assert!(!glob_match("env.*", "wasi.sleep"));
        assert!(glob_match("*.sleep", "env.sleep"));
        assert!(glob_match("*sle*p*", "env.usleep"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("*aab", "aaaab"));
        assert!(glob_match("a*a", "aa"));
        assert!(!glob_match("a*a", "a"));
        assert!(glob_match("*é*", "café au lait"));
        assert!(glob_match("caf*", "café"));
    }

    #[test]
    fn glob_is_not_exponential() {
        let name = "a".repeat(5_000);
        let pattern = format!("{}b", "a*".repeat(50));
        let start = std::time::Instant::now();
        assert!(!glob_match(&pattern, &name));
        assert!(glob_match(&format!("{}a", "*a".repeat(50)), &name));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn pass_arg_lists_append() {
        let options = apply(&[
            "asyncify-imports@env.sleep,env.read",
            "asyncify-imports@wasi.*",
            "asyncify-addlist@a",
            "asyncify-addlist@b,c",
            "asyncify-removelist@r1",
            "asyncify-blacklist@r2",
        ])
        .unwrap();
        assert_eq!(options.imports, ["env.sleep", "env.read", "wasi.*"]);
        assert_eq!(options.add_list, ["a", "b", "c"]);
        assert_eq!(options.remove_list, ["r1", "r2"]);
        assert_eq!(options.only_list, None);
    }

    #[test]
    fn pass_arg_only_list() {
        let options = apply(&["asyncify-onlylist@main", "asyncify-whitelist@f(int, int)"]).unwrap();
        assert_eq!(
            options.only_list,
            Some(vec!["main".to_owned(), "f(int, int)".to_owned()])
        );
        // Empty only list: same as none, as in Binaryen.
        assert_eq!(apply(&["asyncify-onlylist@"]).unwrap().only_list, None);
        assert_eq!(
            apply(&["asyncify-onlylist@a", "asyncify-onlylist@"])
                .unwrap()
                .only_list,
            Some(vec!["a".to_owned()])
        );
    }

    #[test]
    fn pass_arg_list_from_file() {
        let file = TempFile::new("imports", "env.sleep\nenv.fetch\n");
        let options = apply(&[&format!("asyncify-imports@{}", file.list_arg())]).unwrap();
        assert_eq!(options.imports, ["env.sleep", "env.fetch"]);

        let missing = std::env::temp_dir().join("asyncify-options-test-missing-list");
        let result = apply(&[&format!("asyncify-removelist@@{}", missing.display())]);
        assert!(matches!(result, Err(Error::ListFile { .. })), "{result:?}");
    }

    #[test]
    fn pass_arg_switches() {
        let options = apply(&[
            "asyncify-ignore-imports",
            "asyncify-ignore-indirect",
            "asyncify-propagate-addlist",
            "asyncify-asserts",
            "asyncify-export-globals",
            "asyncify-import-globals",
        ])
        .unwrap();
        let expected = Options {
            ignore_imports: true,
            ignore_indirect: true,
            propagate_add_list: true,
            asserts: true,
            export_globals: true,
            import_globals: true,
            ..Options::default()
        };
        assert_eq!(options, expected);
        assert!(apply(&["asyncify-relocatable"]).unwrap().import_globals);
        // An empty value is the same as none.
        assert!(apply(&["asyncify-asserts@"]).unwrap().asserts);
    }

    #[test]
    fn pass_arg_verbose_changes_nothing() {
        assert_eq!(apply(&["asyncify-verbose"]).unwrap(), Options::default());
        options_error(apply(&["asyncify-verbose@1"]));
    }

    #[test]
    fn pass_arg_switch_with_value_is_an_error() {
        for arg in [
            "asyncify-asserts@1",
            "asyncify-ignore-imports@true",
            "asyncify-in-secondary-memory@2",
        ] {
            let message = options_error(apply(&[arg]));
            assert!(message.contains("takes no value"), "{message}");
        }
    }

    #[test]
    fn pass_arg_missing_value_is_an_error() {
        for arg in [
            "asyncify-imports",
            "asyncify-onlylist",
            "asyncify-memory",
            "asyncify-memory@",
            "asyncify-secondary-memory-size",
            "asyncify-secondary-memory-size@",
        ] {
            let message = options_error(apply(&[arg]));
            assert!(message.contains("needs a value"), "{arg}: {message}");
        }
    }

    #[test]
    fn pass_arg_secondary_memory() {
        assert_eq!(
            apply(&["asyncify-in-secondary-memory"])
                .unwrap()
                .secondary_memory,
            Some(1)
        );
        assert_eq!(
            apply(&["asyncify-secondary-memory-size@8"])
                .unwrap()
                .secondary_memory,
            Some(8)
        );
        assert_eq!(
            apply(&[
                "asyncify-in-secondary-memory",
                "asyncify-secondary-memory-size@8"
            ])
            .unwrap()
            .secondary_memory,
            Some(8)
        );
        assert_eq!(
            apply(&[
                "asyncify-secondary-memory-size@8",
                "asyncify-in-secondary-memory"
            ])
            .unwrap()
            .secondary_memory,
            Some(8)
        );
        let message = options_error(apply(&["asyncify-secondary-memory-size@lots"]));
        assert!(message.contains("`lots`"), "{message}");
        options_error(apply(&["asyncify-secondary-memory-size@-1"]));
    }

    #[test]
    fn pass_arg_memory() {
        let options = apply(&["asyncify-memory@heap", "asyncify-memory@main"]).unwrap();
        assert_eq!(options.memory.as_deref(), Some("main"));
    }

    #[test]
    fn pass_arg_unknown_key() {
        for arg in [
            "asyncify-sleep",
            "asyncify-imports2@x",
            "inline-functions-with-loops",
            "",
            "@x",
        ] {
            let message = options_error(apply(&[arg]));
            assert!(
                message.starts_with(&format!("unknown pass argument `{arg}`; expected one of ")),
                "{message}"
            );
            assert!(message.contains("asyncify-imports@LIST"), "{message}");
        }
    }

    #[test]
    fn validate_only_list_excludes_add_and_remove_lists() {
        let only = |options: Options| Options {
            only_list: Some(vec!["main".into()]),
            ..options
        };
        assert!(only(Options::default()).validate().is_ok());
        for options in [
            Options {
                add_list: vec!["a".into()],
                ..Options::default()
            },
            Options {
                remove_list: vec!["r".into()],
                ..Options::default()
            },
        ] {
            assert!(options.validate().is_ok());
            let message = options_error(only(options).validate());
            assert!(
                message.contains("only list cannot be combined"),
                "{message}"
            );
        }
    }

    #[test]
    fn validate_secondary_memory_size() {
        let with_pages = |pages| Options {
            secondary_memory: pages,
            ..Options::default()
        };
        assert!(with_pages(None).validate().is_ok());
        assert!(with_pages(Some(1)).validate().is_ok());
        options_error(with_pages(Some(0)).validate());
        assert!(with_pages(Some(65_536)).validate().is_ok());
        for pages in [65_537, 1 << 32, u64::MAX] {
            let message = options_error(with_pages(Some(pages)).validate());
            assert!(message.contains("at most 65536 pages"), "{message}");
        }
        options_error(
            apply(&["asyncify-secondary-memory-size@0"])
                .unwrap()
                .validate(),
        );
    }

    #[test]
    fn default_validates() {
        assert!(Options::default().validate().is_ok());
    }
}
