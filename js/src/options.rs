//! The JavaScript options object (as JSON) turned into [`Options`], with the
//! same precedence as the `asyncify` command line: the named options first,
//! then `passArgs` in order, then [`Options::validate`].

use asyncify_transform::{parse_list, Error, Options};
use serde_json::{Map, Value};

/// What one call from JavaScript asks for: the transform options and, for
/// `inspect`, the report's extras.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// The transform options.
    pub options: Options,
    /// `inspect` only: functions whose call chain to explain (`--why`).
    pub why: Vec<String>,
    /// `inspect` only: list every instrumented function (`--functions`).
    pub functions: bool,
}

/// Which entry point the options are for: `inspect` takes two more keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `instrument(bytes, options)`.
    Instrument,
    /// `inspect(bytes, options)`.
    Inspect,
}

/// The keys `instrument` understands, in the order its error lists them.
const INSTRUMENT_KEYS: &[&str] = &[
    "imports",
    "ignoreImports",
    "ignoreIndirect",
    "addList",
    "removeList",
    "onlyList",
    "propagateAddList",
    "asserts",
    "importGlobals",
    "exportGlobals",
    "secondaryMemory",
    "memory",
    "exactSaves",
    "yieldChecks",
    "passArgs",
];

/// The keys only `inspect` understands.
const INSPECT_KEYS: &[&str] = &["why", "functions"];

/// Parses the options object that the JavaScript glue serialised with
/// `JSON.stringify` (an empty string means no options).
///
/// Lists are either an array of strings, taken entry by entry as the Rust
/// API takes a `Vec<String>`, or one string parsed as the command line parses
/// a LIST (comma or newline separated, see [`parse_list`]). `null` is the
/// same as leaving a key out.
///
/// # Errors
///
/// [`Error::Options`] for an unknown key, a value of the wrong type, an
/// `@file` list (there is no file system here), or options that
/// [`Options::validate`] rejects.
pub fn parse(json: &str, call: Call) -> Result<CallOptions, Error> {
    let mut out = CallOptions::default();
    if json.trim().is_empty() {
        return Ok(out);
    }
    let value: Value = serde_json::from_str(json)
        .map_err(|e| Error::Options(format!("the options are not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Error::Options(
            "the options must be an object such as `{ imports: [\"env.sleep\"] }`".into(),
        ));
    };
    check_keys(&map, call)?;
    let o = &mut out.options;
    o.imports = list(&map, "imports")?.unwrap_or_default();
    o.ignore_imports = switch(&map, "ignoreImports")?;
    o.ignore_indirect = switch(&map, "ignoreIndirect")?;
    o.add_list = list(&map, "addList")?.unwrap_or_default();
    o.remove_list = list(&map, "removeList")?.unwrap_or_default();
    o.extend_only_list(list(&map, "onlyList")?.unwrap_or_default());
    o.propagate_add_list = switch(&map, "propagateAddList")?;
    o.asserts = switch(&map, "asserts")?;
    o.import_globals = switch(&map, "importGlobals")?;
    o.export_globals = switch(&map, "exportGlobals")?;
    o.secondary_memory = secondary_memory(&map)?;
    o.memory = match present(&map, "memory") {
        None => None,
        Some(Value::String(name)) if !name.is_empty() => Some(name.clone()),
        Some(_) => return Err(wrong_type("memory", "a non-empty string")),
    };
    o.exact_saves = switch(&map, "exactSaves")?;
    o.yield_checks = switch(&map, "yieldChecks")?;
    for arg in strings(&map, "passArgs")? {
        o.apply_pass_arg(&arg)?;
    }
    o.validate()?;
    if call == Call::Inspect {
        out.why = strings(&map, "why")?;
        out.functions = switch(&map, "functions")?;
    }
    Ok(out)
}

fn check_keys(map: &Map<String, Value>, call: Call) -> Result<(), Error> {
    let extra: &[&str] = match call {
        Call::Instrument => &[],
        Call::Inspect => INSPECT_KEYS,
    };
    let known = |key: &str| INSTRUMENT_KEYS.contains(&key) || extra.contains(&key);
    if let Some(key) = map.keys().find(|k| !known(k)) {
        let hint = if call == Call::Instrument && INSPECT_KEYS.contains(&key.as_str()) {
            " (it is an option of inspect)".to_owned()
        } else {
            String::new()
        };
        let expected: Vec<String> = INSTRUMENT_KEYS
            .iter()
            .chain(extra)
            .map(|k| format!("`{k}`"))
            .collect();
        return Err(Error::Options(format!(
            "unknown option `{key}`{hint}; expected one of {}",
            expected.join(", ")
        )));
    }
    Ok(())
}

/// The value under `key`, unless it is missing or `null`.
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

fn wrong_type(key: &str, expected: &str) -> Error {
    Error::Options(format!("option `{key}` must be {expected}"))
}

fn switch(map: &Map<String, Value>, key: &str) -> Result<bool, Error> {
    match present(map, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(wrong_type(key, "true or false")),
    }
}

/// A list option: an array of entries, or one string in the command line's
/// LIST syntax. `None` when absent.
fn list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, Error> {
    let expected = "an array of strings, or one string of comma or newline separated entries";
    match present(map, key) {
        None => Ok(None),
        Some(Value::String(text)) => {
            if text.trim_start().starts_with('@') {
                return Err(Error::Options(format!(
                    "option `{key}`: `@file` lists cannot be read here (there is no file \
                     system); read the file yourself and pass its entries as an array"
                )));
            }
            Ok(Some(parse_list(text)?))
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(wrong_type(key, expected)),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(wrong_type(key, expected)),
    }
}

/// A string or an array of strings, each taken as it is.
fn strings(map: &Map<String, Value>, key: &str) -> Result<Vec<String>, Error> {
    let expected = "a string or an array of strings";
    match present(map, key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(wrong_type(key, expected)),
            })
            .collect(),
        Some(_) => Err(wrong_type(key, expected)),
    }
}

/// `secondaryMemory`: `true` is one page (as `--secondary-memory` alone),
/// a number is the size in pages (`--secondary-memory=PAGES`).
fn secondary_memory(map: &Map<String, Value>) -> Result<Option<u64>, Error> {
    match present(map, "secondaryMemory") {
        None | Some(Value::Bool(false)) => Ok(None),
        Some(Value::Bool(true)) => Ok(Some(1)),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(pages) => Ok(Some(pages)),
            None => Err(wrong_type(
                "secondaryMemory",
                "true, false or a whole number of 64 KiB pages",
            )),
        },
        Some(_) => Err(wrong_type(
            "secondaryMemory",
            "true, false or a whole number of 64 KiB pages",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(json: &str, call: Call) -> String {
        match parse(json, call) {
            Err(e) => e.to_string(),
            Ok(o) => panic!("expected an error, got {o:?}"),
        }
    }

    #[test]
    fn empty_is_default() {
        assert_eq!(parse("", Call::Instrument).unwrap(), CallOptions::default());
        assert_eq!(parse("{}", Call::Inspect).unwrap(), CallOptions::default());
    }

    #[test]
    fn every_option() {
        let json = r#"{
            "imports": ["env.sleep", "env.read_*"], "ignoreImports": true,
            "ignoreIndirect": true, "addList": "a, f(int, int)", "removeList": ["r"],
            "propagateAddList": true, "asserts": true, "importGlobals": true,
            "exportGlobals": false, "secondaryMemory": 3, "memory": "heap",
            "exactSaves": true, "yieldChecks": true, "passArgs": ["asyncify-imports@wasi.*"]
        }"#;
        let o = parse(json, Call::Instrument).unwrap().options;
        let expected = Options {
            imports: vec!["env.sleep".into(), "env.read_*".into(), "wasi.*".into()],
            ignore_imports: true,
            ignore_indirect: true,
            add_list: vec!["a".into(), "f(int, int)".into()],
            remove_list: vec!["r".into()],
            only_list: None,
            propagate_add_list: true,
            asserts: true,
            import_globals: true,
            export_globals: false,
            secondary_memory: Some(3),
            memory: Some("heap".into()),
            exact_saves: true,
            yield_checks: true,
        };
        assert_eq!(o, expected);
    }

    #[test]
    fn arrays_are_taken_entry_by_entry() {
        let o = parse(r#"{"addList": ["a,b", " c "]}"#, Call::Instrument).unwrap();
        assert_eq!(o.options.add_list, ["a,b", " c "]);
    }

    #[test]
    fn only_list_and_secondary_memory() {
        let o = parse(r#"{"onlyList": []}"#, Call::Instrument).unwrap();
        assert_eq!(o.options.only_list, None);
        let o = parse(
            r#"{"onlyList": "main", "secondaryMemory": true}"#,
            Call::Instrument,
        );
        let o = o.unwrap().options;
        assert_eq!(o.only_list, Some(vec!["main".to_owned()]));
        assert_eq!(o.secondary_memory, Some(1));
        let o = parse(
            r#"{"secondaryMemory": false, "memory": null}"#,
            Call::Instrument,
        );
        assert_eq!(o.unwrap(), CallOptions::default());
    }

    #[test]
    fn inspect_keys() {
        let o = parse(r#"{"why": "main", "functions": true}"#, Call::Inspect).unwrap();
        assert_eq!(o.why, ["main"]);
        assert!(o.functions);
        let m = message(r#"{"why": ["main"]}"#, Call::Instrument);
        assert!(
            m.contains("unknown option `why` (it is an option of inspect)"),
            "{m}"
        );
    }

    #[test]
    fn errors() {
        let cases = [
            (
                r#"{"import": []}"#,
                "unknown option `import`; expected one of `imports`",
            ),
            (
                r#"{"imports": 3}"#,
                "option `imports` must be an array of strings",
            ),
            (
                r#"{"imports": [3]}"#,
                "option `imports` must be an array of strings",
            ),
            (
                r#"{"asserts": 1}"#,
                "option `asserts` must be true or false",
            ),
            (
                r#"{"memory": ""}"#,
                "option `memory` must be a non-empty string",
            ),
            (
                r#"{"secondaryMemory": 1.5}"#,
                "option `secondaryMemory` must be",
            ),
            (
                r#"{"secondaryMemory": -1}"#,
                "option `secondaryMemory` must be",
            ),
            (
                r#"{"imports": "@list.txt"}"#,
                "`@file` lists cannot be read here",
            ),
            (r#"[]"#, "the options must be an object"),
            (r#"{"#, "the options are not valid JSON"),
        ];
        for (json, expected) in cases {
            let m = message(json, Call::Instrument);
            assert!(m.starts_with("invalid options: "), "{json}: {m}");
            assert!(m.contains(expected), "{json}: {m}");
        }
    }

    #[test]
    fn validation_is_the_libraries() {
        let m = message(r#"{"secondaryMemory": 0}"#, Call::Instrument);
        let expected = Options {
            secondary_memory: Some(0),
            ..Options::default()
        };
        assert_eq!(m, expected.validate().unwrap_err().to_string());
        let m = message(r#"{"passArgs": "asyncify-sleep"}"#, Call::Instrument);
        assert!(m.contains("unknown pass argument `asyncify-sleep`"), "{m}");
    }
}
