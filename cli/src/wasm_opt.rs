//! wasm-opt's command-line spellings, so that a build script's
//! `wasm-opt --asyncify ...` line works with `asyncify` in its place.
//!
//! Some spellings (`-pa`, `-O2`, `--enable-simd`) cannot be declared to clap;
//! [`normalize_args`] rewrites them into hidden canonical flags before
//! parsing. Feature flags only check the input ([`check_features`]); they
//! never change the output.

use std::ffi::OsString;

use anyhow::bail;
use clap::Args;
use wasmparser::{Validator, WasmFeatures};

/// What `instrument --help` says after the options.
pub const AFTER_HELP: &str = "\
wasm-opt spellings, accepted so that a build script's `wasm-opt --asyncify` line carries over
(`asyncify IN.wasm --asyncify ...` without a subcommand means `asyncify instrument`):
  --asyncify                    accepted; `instrument` always runs the asyncify pass
  -pa, --pass-arg KEY@VALUE     as --pass-arg above; arguments of other wasm-opt passes are ignored
  -O, -O0..-O4, -Os, -Oz        there is no optimizer here: noted once, otherwise ignored; run
                                `wasm-opt -O` on the output separately if you want Binaryen's
                                optimizations (likewise --converge, --low-memory-unused,
                                --zero-filled-memory, --fast-math, -tnh, -iit, -cw,
                                --post-emscripten, --strip-debug, --strip-dwarf,
                                --strip-producers, --strip-target-features)
  --all-features, -all          every feature allowed (the default: features are detected)
  --mvp-features, -mvp          only MVP features allowed, plus those --enable-FEATURE adds
  --enable-FEATURE              allow a feature (Binaryen's names: simd, bulk-memory, threads, ...)
  --disable-FEATURE             a module that uses FEATURE is refused
  --detect-features             accepted (the default)
  -g, --debuginfo               accepted; names and custom sections are always kept

Example: asyncify instrument in.wasm -o out.wasm --imports env.sleep,env.fetch";

/// The wasm-opt flags of `asyncify instrument`, in their canonical
/// spellings (see [`normalize_args`]); hidden from the options list and
/// described in [`AFTER_HELP`].
#[derive(Debug, Clone, Default, Args)]
pub struct WasmOptArgs {
    /// wasm-opt's `--asyncify`: the pass to run, always asyncify here.
    #[arg(long, hide = true)]
    asyncify: bool,

    /// An optimizer flag or another pass (`-O2`, `--post-emscripten`...),
    /// recorded for the note.
    #[arg(long = "wasm-opt-optimizer", hide = true, value_name = "FLAG")]
    optimizer: Vec<String>,

    /// wasm-opt's `--all-features`.
    #[arg(long, hide = true)]
    all_features: bool,

    /// wasm-opt's `--mvp-features`.
    #[arg(long, hide = true)]
    mvp_features: bool,

    /// wasm-opt's `--detect-features` (the default).
    #[arg(long, hide = true)]
    detect_features: bool,

    /// wasm-opt's `--enable-FEATURE`.
    #[arg(long = "enable", hide = true, value_name = "FEATURE")]
    enable: Vec<String>,

    /// wasm-opt's `--disable-FEATURE`.
    #[arg(long = "disable", hide = true, value_name = "FEATURE")]
    disable: Vec<String>,

    /// wasm-opt's `-g`: names are always kept.
    #[arg(short = 'g', long = "debuginfo", hide = true)]
    debuginfo: bool,
}

/// Flags without a value that ask wasm-opt for optimizations or for passes
/// other than asyncify: none changes what the instrumented module does, so
/// they are noted and ignored.
const OTHER_PASS_FLAGS: &[&str] = &[
    "-O",
    "-O0",
    "-O1",
    "-O2",
    "-O3",
    "-O4",
    "-Os",
    "-Oz",
    "--converge",
    "--low-memory-unused",
    "--zero-filled-memory",
    "--fast-math",
    "-ffm",
    "--traps-never-happen",
    "-tnh",
    "--ignore-implicit-traps",
    "-iit",
    "--closed-world",
    "-cw",
    "--post-emscripten",
    "--strip-debug",
    "--strip-dwarf",
    "--strip-producers",
    "--strip-target-features",
];

/// The subcommands and top-level flags: a first argument that is none of
/// these, with `--asyncify` among the arguments, is a wasm-opt command line.
const NOT_WASM_OPT: &[&str] = &[
    "instrument",
    "inspect",
    "run",
    "help",
    "-h",
    "--help",
    "-V",
    "--version",
];

/// Rewrites the wasm-opt spellings among `args` (the whole command line,
/// program name first) into the canonical flags of `asyncify instrument`.
/// Only `instrument`'s arguments are touched (`run` passes its trailing
/// arguments to the guest), and nothing after `--`.
pub fn normalize_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut args = args;
    let first = args.get(1).and_then(|a| a.to_str());
    let wasm_opt_line = first.is_some_and(|first| !NOT_WASM_OPT.contains(&first))
        && args.iter().any(|a| a == "--asyncify");
    if wasm_opt_line {
        args.insert(1, "instrument".into());
    }
    if args.get(1).is_none_or(|a| a != "instrument") {
        return args;
    }
    let mut out = Vec::with_capacity(args.len());
    let mut rest = args.into_iter();
    out.extend(rest.by_ref().take(2));
    for arg in rest.by_ref() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            out.push(arg);
            break;
        }
        match rewrite(text) {
            Some(new) => out.extend(new.into_iter().map(OsString::from)),
            None => out.push(arg),
        }
    }
    out.extend(rest);
    out
}

/// The canonical spelling of one wasm-opt argument, if it needs one.
fn rewrite(arg: &str) -> Option<Vec<String>> {
    if OTHER_PASS_FLAGS.contains(&arg) {
        return Some(vec![format!("--wasm-opt-optimizer={arg}")]);
    }
    let single = |s: &str| Some(vec![s.to_owned()]);
    match arg {
        "-pa" => return single("--pass-arg"),
        "-all" => return single("--all-features"),
        "-mvp" => return single("--mvp-features"),
        _ => {}
    }
    if let Some(value) = arg.strip_prefix("-pa=") {
        return Some(vec![format!("--pass-arg={value}")]);
    }
    // `--enable-simd` but not our own `--enable=simd` or `--enable simd`.
    for (prefix, flag) in [("--enable-", "--enable"), ("--disable-", "--disable")] {
        if let Some(feature) = arg.strip_prefix(prefix).filter(|f| !f.is_empty()) {
            return Some(vec![format!("{flag}={feature}")]);
        }
    }
    None
}

/// A Binaryen feature name, and the wasmparser features it stands for: all
/// of them to enable it, `own` (without what wasmparser bundles in) to
/// disable it.
struct Feature {
    name: &'static str,
    enable: WasmFeatures,
    own: WasmFeatures,
}

const fn feature(name: &'static str, bits: WasmFeatures) -> Feature {
    Feature {
        name,
        enable: bits,
        own: bits,
    }
}

/// Binaryen's feature names. `strings` and `fp16` have no wasmparser
/// counterpart: accepted, and never the reason a module is refused.
const FEATURES: &[Feature] = &[
    feature("sign-ext", WasmFeatures::SIGN_EXTENSION),
    feature("threads", WasmFeatures::THREADS),
    feature("mutable-globals", WasmFeatures::MUTABLE_GLOBAL),
    feature(
        "nontrapping-float-to-int",
        WasmFeatures::SATURATING_FLOAT_TO_INT,
    ),
    feature("simd", WasmFeatures::SIMD),
    Feature {
        name: "bulk-memory",
        enable: WasmFeatures::BULK_MEMORY,
        own: WasmFeatures::BULK_MEMORY.difference(WasmFeatures::BULK_MEMORY_OPT),
    },
    feature("bulk-memory-opt", WasmFeatures::BULK_MEMORY_OPT),
    feature(
        "exception-handling",
        WasmFeatures::EXCEPTIONS.union(WasmFeatures::LEGACY_EXCEPTIONS),
    ),
    feature("tail-call", WasmFeatures::TAIL_CALL),
    Feature {
        name: "reference-types",
        enable: WasmFeatures::REFERENCE_TYPES,
        own: WasmFeatures::REFERENCE_TYPES.difference(WasmFeatures::CALL_INDIRECT_OVERLONG),
    },
    feature(
        "call-indirect-overlong",
        WasmFeatures::CALL_INDIRECT_OVERLONG,
    ),
    feature("multivalue", WasmFeatures::MULTI_VALUE),
    feature(
        "gc",
        WasmFeatures::GC.union(WasmFeatures::FUNCTION_REFERENCES),
    ),
    feature("memory64", WasmFeatures::MEMORY64),
    feature("relaxed-simd", WasmFeatures::RELAXED_SIMD),
    feature("extended-const", WasmFeatures::EXTENDED_CONST),
    feature("multimemory", WasmFeatures::MULTI_MEMORY),
    feature("stack-switching", WasmFeatures::STACK_SWITCHING),
    feature("shared-everything", WasmFeatures::SHARED_EVERYTHING_THREADS),
    feature("custom-descriptors", WasmFeatures::CUSTOM_DESCRIPTORS),
    feature("strings", WasmFeatures::empty()),
    feature("fp16", WasmFeatures::empty()),
];

fn lookup(name: &str, flag: &str) -> anyhow::Result<&'static Feature> {
    FEATURES.iter().find(|f| f.name == name).ok_or_else(|| {
        let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
        anyhow::anyhow!(
            "unknown feature in `--{flag}-{name}`; Binaryen's feature names are: {}",
            names.join(", ")
        )
    })
}

impl WasmOptArgs {
    /// The note to print once when optimizer flags or other passes were
    /// given, naming them.
    pub fn optimizer_note(&self) -> Option<String> {
        if self.optimizer.is_empty() {
            return None;
        }
        let mut flags: Vec<&str> = Vec::new();
        for flag in &self.optimizer {
            if !flags.contains(&flag.as_str()) {
                flags.push(flag);
            }
        }
        let flags = flags.join(" ");
        Some(format!(
            "note: asyncify has no optimizer and runs no other wasm-opt pass, so it ignores \
             {flags}; the output is already compact, and `wasm-opt {flags}` can run on it \
             separately"
        ))
    }

    /// Checks the names of the feature flags, so that a typo is reported
    /// before the module is read.
    pub fn check_feature_names(&self) -> anyhow::Result<()> {
        for name in &self.enable {
            lookup(name, "enable")?;
        }
        for name in &self.disable {
            lookup(name, "disable")?;
        }
        Ok(())
    }

    /// Refuses `wasm` if it uses a feature these flags turn off. Without
    /// `--mvp-features` or `--disable-*`, everything is allowed and nothing
    /// is checked.
    pub fn check_features(&self, wasm: &[u8]) -> anyhow::Result<()> {
        let restricted = !self.all_features && self.mvp_features;
        if !restricted && self.disable.is_empty() {
            return Ok(());
        }
        let mut allowed = if restricted {
            WasmFeatures::MVP
        } else {
            WasmFeatures::all()
        };
        for name in &self.enable {
            allowed |= lookup(name, "enable")?.enable;
        }
        for name in &self.disable {
            allowed.remove(lookup(name, "disable")?.own);
        }
        let Err(error) = Validator::new_with_features(allowed).validate_all(wasm) else {
            return Ok(());
        };
        // An invalid module is the transform's to report, with its context.
        if Validator::new_with_features(WasmFeatures::all())
            .validate_all(wasm)
            .is_err()
        {
            return Ok(());
        }
        let culprit = FEATURES.iter().find(|f| {
            !f.own.is_empty()
                && !allowed.contains(f.own)
                && Validator::new_with_features(allowed | f.enable)
                    .validate_all(wasm)
                    .is_ok()
        });
        match culprit {
            Some(feature) => {
                let name = feature.name;
                let (flag, fix) = if self.disable.iter().any(|d| d == name) {
                    let flag = format!("--disable-{name}");
                    let fix = format!("remove {flag}");
                    (flag, fix)
                } else {
                    let flag = "--mvp-features".to_owned();
                    (
                        flag,
                        format!("add --enable-{name} or remove --mvp-features"),
                    )
                };
                bail!(
                    "the module uses the feature {name} ({}), which {flag} turns off; {fix}",
                    error.message()
                )
            }
            None => bail!(
                "the module uses features that the feature flags turn off ({} at byte offset \
                 {:#x}); remove --mvp-features and --disable-* to allow every feature",
                error.message(),
                error.offset()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn wasm_opt_spellings_become_canonical_flags() {
        let args = normalize_args(strings(&[
            "asyncify",
            "in.wasm",
            "--asyncify",
            "-O2",
            "-pa",
            "asyncify-imports@env.sleep",
            "--enable-simd",
            "-all",
            "--",
            "-O3",
        ]));
        assert_eq!(
            args,
            strings(&[
                "asyncify",
                "instrument",
                "in.wasm",
                "--asyncify",
                "--wasm-opt-optimizer=-O2",
                "--pass-arg",
                "asyncify-imports@env.sleep",
                "--enable=simd",
                "--all-features",
                "--",
                "-O3",
            ])
        );
        // `run`'s guest arguments are left alone.
        let run = strings(&["asyncify", "run", "m.wasm", "-O2", "--asyncify"]);
        assert_eq!(normalize_args(run.clone()), run);
    }
}
