//! `asyncify instrument`: read a module, instrument it, write the result.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Context};
use asyncify_transform::{parse_list, Options, Output};
use clap::builder::NonEmptyStringValueParser;
use clap::Args;

use crate::files;
use crate::message::transform_error;
use crate::progress::ProgressLine;
use crate::wasm_opt::{self, WasmOptArgs};

/// Arguments of `asyncify instrument`.
#[derive(Debug, Args)]
#[command(after_help = wasm_opt::AFTER_HELP)]
pub struct InstrumentArgs {
    /// The module to instrument, binary (`.wasm`) or text (`.wat`); `-` reads
    /// standard input. Without INPUT, the demo module shipped in the project's
    /// `corpus/` (embedded in this binary) is instrumented.
    #[arg(value_name = "INPUT")]
    input: Option<PathBuf>,

    /// Where to write the instrumented module (binary); `-` writes standard
    /// output. An existing file is replaced only once the transform succeeds.
    /// Default: INPUT's name with `.asyncify.wasm` (`demo.asyncify.wasm` for
    /// the embedded demo), in the current directory.
    #[arg(short, long, value_name = "OUTPUT")]
    output: Option<PathBuf>,

    /// Print nothing on success (warnings and errors still print).
    #[arg(short, long)]
    quiet: bool,

    #[command(flatten)]
    flags: InstrumentFlags,

    #[command(flatten)]
    wasm_opt: WasmOptArgs,
}

/// The transform options as command-line flags, for every subcommand that
/// instruments a module.
///
/// LIST values are comma or newline separated, or `@FILE` to read them from a
/// file; giving a list flag several times appends.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Instrumentation")]
pub struct InstrumentFlags {
    /// Only these imports may suspend: `module.name` patterns where `*`
    /// matches any run of characters (default: every import may suspend).
    #[arg(long, value_name = "LIST")]
    imports: Vec<String>,

    /// No import may suspend; only calls to the `asyncify.*` runtime imports do.
    #[arg(long)]
    ignore_imports: bool,

    /// Assume indirect calls (`call_indirect`, `call_ref`) never suspend.
    #[arg(long)]
    ignore_indirect: bool,

    /// Instrument these functions even if analysis says they cannot suspend.
    #[arg(long, value_name = "LIST")]
    add_list: Vec<String>,

    /// These functions never suspend, and do not make their callers suspend.
    #[arg(long, value_name = "LIST")]
    remove_list: Vec<String>,

    /// Instrument exactly these functions and no others (cannot be combined
    /// with --add-list or --remove-list).
    #[arg(long, value_name = "LIST")]
    only_list: Vec<String>,

    /// Also instrument the callers of --add-list functions.
    #[arg(long)]
    propagate_add_list: bool,

    /// Make uninstrumented code trap if the state changes under it.
    #[arg(long)]
    asserts: bool,

    /// Import the state globals as `env.__asyncify_state` and
    /// `env.__asyncify_data`, so dynamically linked modules share them.
    #[arg(long)]
    import_globals: bool,

    /// Export the state globals as `__asyncify_state` and `__asyncify_data`.
    #[arg(long)]
    export_globals: bool,

    /// Keep the unwind buffer in a new memory of PAGES 64 KiB pages (1 if no
    /// value is given), exported as `asyncify_memory`.
    #[arg(
        long,
        value_name = "PAGES",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "1"
    )]
    secondary_memory: Option<u64>,

    /// With several memories: keep the unwind buffer in the one exported as NAME.
    #[arg(long, value_name = "NAME", value_parser = NonEmptyStringValueParser::new())]
    memory: Option<String>,

    /// Make an unwind write exactly the locals live at its suspension point,
    /// instead of sharing frame-writing code between nearby points (which
    /// writes the union of their live locals); the output is larger.
    #[arg(long)]
    exact_saves: bool,

    /// Add budget checks at loop headers and at the entry of functions that
    /// can recurse; a spent budget calls the import `asyncify.yield`, which
    /// may suspend: a CPU-bound guest can then give its thread back
    /// (time-slicing; `asyncify run --yield-every`, `Linker::time_slicing`).
    #[arg(long)]
    yield_checks: bool,

    /// Print to standard error why each function is instrumented.
    #[arg(short, long)]
    verbose: bool,

    /// A Binaryen pass argument, spelled as after `wasm-opt --pass-arg`, for
    /// example `asyncify-imports@env.sleep` or `asyncify-asserts`; applied
    /// after the flags above. Arguments of other wasm-opt passes (keys not
    /// starting with `asyncify-`) are ignored with a note.
    #[arg(long = "pass-arg", value_name = "KEY[@VALUE]")]
    pass_args: Vec<String>,
}

/// The key of a pass argument `KEY[@VALUE]`.
fn pass_arg_key(arg: &str) -> &str {
    arg.split_once('@').map_or(arg, |(key, _)| key)
}

impl InstrumentFlags {
    /// The transform options these flags describe, validated.
    pub fn to_options(&self) -> anyhow::Result<Options> {
        let mut options = Options {
            imports: parse_lists("imports", &self.imports)?,
            ignore_imports: self.ignore_imports,
            ignore_indirect: self.ignore_indirect,
            add_list: parse_lists("add-list", &self.add_list)?,
            remove_list: parse_lists("remove-list", &self.remove_list)?,
            only_list: None,
            propagate_add_list: self.propagate_add_list,
            asserts: self.asserts,
            import_globals: self.import_globals,
            export_globals: self.export_globals,
            secondary_memory: self.secondary_memory,
            memory: self.memory.clone(),
            exact_saves: self.exact_saves,
            yield_checks: self.yield_checks,
        };
        options.extend_only_list(parse_lists("only-list", &self.only_list)?);
        for arg in self.asyncify_pass_args() {
            // The error already quotes the argument.
            options.apply_pass_arg(arg)?;
        }
        options.validate()?;
        if options.ignore_imports && !options.imports.is_empty() {
            bail!(
                "--ignore-imports and --imports cannot be combined: --ignore-imports lets no \
                 import suspend, so the --imports list would instrument nothing. Give \
                 --imports alone to let only those imports suspend (as pass arguments: \
                 `asyncify-ignore-imports`, `asyncify-imports`)"
            );
        }
        Ok(options)
    }

    /// The pass arguments for the asyncify pass.
    fn asyncify_pass_args(&self) -> impl Iterator<Item = &String> {
        self.pass_args
            .iter()
            .filter(|arg| pass_arg_key(arg).starts_with("asyncify-"))
    }

    /// A note naming the pass arguments of other wasm-opt passes, which are
    /// ignored (as Binaryen ignores pass arguments no pass reads).
    pub fn ignored_pass_args_note(&self) -> Option<String> {
        let ignored: Vec<String> = self
            .pass_args
            .iter()
            .filter(|arg| !pass_arg_key(arg).starts_with("asyncify-"))
            .map(|arg| format!("`{arg}`"))
            .collect();
        (!ignored.is_empty()).then(|| {
            format!(
                "note: ignoring --pass-arg {}: not an argument of the asyncify pass",
                ignored.join(", ")
            )
        })
    }

    /// Whether to print why each function is instrumented: `--verbose` or
    /// `--pass-arg asyncify-verbose`.
    pub fn verbose(&self) -> bool {
        self.verbose
            || self
                .pass_args
                .iter()
                .any(|arg| pass_arg_key(arg) == "asyncify-verbose")
    }
}

/// The entries of every occurrence of the list flag `--{flag}`, in order.
fn parse_lists(flag: &str, values: &[String]) -> anyhow::Result<Vec<String>> {
    let mut entries = Vec::new();
    for value in values {
        entries.extend(parse_list(value).with_context(|| format!("in --{flag}"))?);
    }
    Ok(entries)
}

/// The embedded default input: the project's demo module.
const DEMO_WAT: &str = include_str!("../../corpus/demo.wat");

/// Runs `asyncify instrument`.
pub fn run(args: InstrumentArgs) -> anyhow::Result<()> {
    let options = args.flags.to_options()?;
    args.wasm_opt.check_feature_names()?;
    if !args.quiet {
        for note in [
            args.wasm_opt.optimizer_note(),
            args.flags.ignored_pass_args_note(),
        ]
        .into_iter()
        .flatten()
        {
            eprintln!("{note}");
        }
    }
    let (input_path, input) = match &args.input {
        Some(path) => (path.clone(), files::read_module(path)?),
        None => {
            let path = PathBuf::from("demo.wat");
            let wasm = files::to_binary(&path, DEMO_WAT.as_bytes().to_vec())?;
            (path, wasm)
        }
    };
    args.wasm_opt
        .check_features(&input)
        .with_context(|| format!("cannot instrument {}", files::describe(&input_path)))?;
    let output_path = match &args.output {
        Some(path) => path.clone(),
        None if input_path.as_os_str() == "-" => PathBuf::from("-"),
        None => {
            let stem = input_path.file_stem().unwrap_or_default().to_string_lossy();
            PathBuf::from(format!("{stem}.asyncify.wasm"))
        }
    };
    let started = std::time::Instant::now();

    let mut progress = ProgressLine::new();
    let result = catch_panic(|| {
        asyncify_transform::instrument_with_progress(&input, &options, &mut |p| progress.update(p))
    });
    progress.finish();
    let output = result
        .and_then(|r| r.map_err(transform_error))
        .with_context(|| format!("cannot instrument {}", files::describe(&input_path)))?;

    for warning in &output.warnings {
        eprintln!("warning: {warning}");
    }
    if args.flags.verbose() {
        print_reasons(&output);
    }
    files::write_output(&output_path, &output.wasm)?;
    if output_path.as_os_str() != "-" && !args.quiet {
        let count = output.instrumented.len();
        eprintln!(
            "{} ({} bytes) -> {} ({} bytes): {count} function{} instrumented in {:.1?}",
            input_path.display(),
            input.len(),
            output_path.display(),
            output.wasm.len(),
            if count == 1 { "" } else { "s" },
            started.elapsed()
        );
    }
    Ok(())
}

/// Prints, for each instrumented function, the chain of reasons from the
/// function down to the cause, later links indented.
pub fn print_reasons(output: &Output) {
    let mut stderr = std::io::BufWriter::new(std::io::stderr().lock());
    for function in &output.instrumented {
        for (depth, line) in output.why(function.index).iter().enumerate() {
            let indent = if depth == 0 { "" } else { "  " };
            // Nothing sensible to do if standard error is gone.
            let _ = writeln!(stderr, "{indent}{line}");
        }
    }
    let count = output.instrumented.len();
    let plural = if count == 1 { "" } else { "s" };
    let _ = writeln!(stderr, "instrumented {count} function{plural}");
    let _ = stderr.flush();
}

/// Runs `f`, turning a panic into an error: a bug in the transform or in a
/// library it uses (a parser meeting an input shape it does not expect) must
/// still end the command with one paragraph and exit code 1, before any
/// output is written, not with a backtrace and exit code 101.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> anyhow::Result<T> {
    // The first panic's message and place; later ones (other threads
    // stopping) add nothing.
    static MESSAGE: Mutex<Option<String>> = Mutex::new(None);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".to_string());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Ok(mut message) = MESSAGE.lock() {
            message.get_or_insert(format!("{text}{at}"));
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|_| {
        let message = MESSAGE
            .lock()
            .ok()
            .and_then(|mut m| m.take())
            .unwrap_or_else(|| "no message".to_string());
        anyhow::anyhow!(
            "internal error: the transform panicked ({message}); please report this with \
             the input module"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::catch_panic;

    #[test]
    fn a_panic_becomes_an_error() {
        assert_eq!(catch_panic(|| 7).unwrap(), 7);
        let error = catch_panic(|| -> u32 { panic!("index out of bounds:\nthe len is 0") })
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "internal error: the transform panicked (index out of bounds: the len is 0 at "
            ),
            "{error}"
        );
        assert!(
            error.ends_with("please report this with the input module"),
            "{error}"
        );
        // The panic hook is put back: a second panic is caught the same way.
        assert!(catch_panic(|| -> u32 { panic!("again") })
            .unwrap_err()
            .to_string()
            .contains("(again at "));
    }
}
