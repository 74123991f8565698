//! `asyncify run`: run a WASI preview 1 command, or call one export, on
//! wasmtime through `asyncify-linker`, optionally instrumenting it first.
//!
//! Everything runs on the main thread: the export call is a future of the
//! linker, driven by `futures::executor::block_on`. WASI is wasmtime-wasi's,
//! served through the linker (`asyncify_linker::wasi`); calls that wait for
//! I/O block on wasmtime-wasi's own tokio runtime, which also runs the timers
//! of the built-in `asyncify_host.sleep_ms`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::task::Poll;
use std::time::Duration;

use anyhow::{bail, Context};
use asyncify_abi::{text, RuntimeFunction};
use asyncify_linker::dylink::DynamicLinker;
use asyncify_linker::wasi::{self, wasmtime_wasi, I32Exit, WasiP1Ctx};
use asyncify_linker::{AsyncCaller, Instance, Linker, TimeSlicing, UnknownImport};
use asyncify_transform::Options;
use clap::Args;
use wasmtime::{Engine, ExternType, FuncType, Module, Store, Trap, Val, ValType, WasmBacktrace};
use wasmtime_wasi::{FsPerms, Rng as _, WasiCtxBuilder};

use crate::cache::Cache;
use crate::dylink;
use crate::files;
use crate::instrument::{print_reasons, InstrumentFlags};
use crate::message::{format_error, join_causes, transform_error};
use crate::progress::ProgressLine;

/// The module name of the built-in imports.
const HOST_MODULE: &str = "asyncify_host";
/// The built-in imports' names.
const BUILTINS: [&str; 3] = ["sleep_ms", "yield", "random_u32"];

/// What `--help` says after the options.
const AFTER_HELP: &str = "\
Built-in imports (module `asyncify_host`, defined only for modules that import them):
  sleep_ms: func (param i32)          waits that many milliseconds on a timer; the instance
                                      suspends meanwhile (asleep on the thread if the module
                                      is not instrumented)
  yield: func                         suspends once and resumes at once
  random_u32: func (result i32)       a random number, ready at once (no suspension)

Exit status: the guest's `proc_exit` code (0 when `_start` or the --invoke'd export returns);
134 (128 + SIGABRT, as wasmtime) when the guest traps, with the trap and its wasm backtrace
on standard error; 1 for every other error (files, instrumentation, linking, missing
imports, arguments, a failing host function).

Compiled modules are cached (see --cache-dir): a second run of the same module starts at once.

Examples:
  asyncify run --instrument --async-wasi --dir data::/w prog.wasm /w/input.txt
  asyncify run --default-values-unknown-imports --invoke run corpus/demo.wat 2";

/// Arguments of `asyncify run`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct RunArgs {
    /// Let the guest use host directory HOST (and everything under it), under
    /// the name GUEST (default: HOST as written). Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,

    /// Set an environment variable for the guest; `KEY` alone passes the
    /// host's value, if set. Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    envs: Vec<String>,

    /// Call the export NAME instead of `_start`, with ARGS as its parameters
    /// (integers, floats, `v128` as one 128-bit integer; decimal or `0x`
    /// hex), and print its results one per line. A reactor's `_initialize`
    /// runs first.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,

    /// Instantiate FILE first and register its exports under the module name
    /// NAME, so that MODULE (and later preloads) can import them. Repeatable.
    #[arg(long, value_name = "NAME=FILE")]
    preload: Vec<String>,

    /// Link dynamically: MODULE is the main module, and the shared library
    /// (side module) in FILE is what the guest's `dlopen("NAME")`, or a
    /// `needed` entry NAME, loads. Libraries not given here load from the
    /// guest's --dir directories. Repeatable. A main module with a `dylink.0`
    /// section or `env.dlopen` imports is linked dynamically without it.
    #[arg(long, value_name = "NAME=FILE", conflicts_with = "preload")]
    library: Vec<String>,

    /// Instrument MODULE and the preloaded modules with asyncify before
    /// running them (with the instrumentation options below). A module that
    /// is already instrumented runs as it is; without this flag, such a
    /// module is driven as instrumented, and any other runs with synchronous
    /// imports only.
    #[arg(long)]
    instrument: bool,

    /// Serve every WASI call as an async import that suspends the calling
    /// instance at least once before doing its work (output identical to a
    /// plain run). Needs instrumented modules (see --instrument).
    #[arg(long)]
    async_wasi: bool,

    /// Define every function import that nothing else defines as one that
    /// traps when called, naming the import (instead of refusing to start).
    #[arg(long, conflicts_with = "default_values_unknown_imports")]
    trap_unknown_imports: bool,

    /// Define every function import that nothing else defines as one that
    /// returns zeros (default values) at once, without suspending.
    #[arg(long)]
    default_values_unknown_imports: bool,

    /// Time-slicing: a guest instrumented with yield checks gives the thread
    /// back every N units (approximate wasm instructions) and then goes on.
    /// With --instrument, adds the yield checks (--yield-checks).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    yield_every: Option<u32>,

    /// Stop a call that has run more than N units (approximate wasm
    /// instructions, counted by yield checks) with an error. With
    /// --instrument, adds the yield checks (--yield-checks).
    #[arg(long, value_name = "N")]
    max_budget: Option<u64>,

    /// Compile the module every time: do not read or write the cache of
    /// compiled modules.
    #[arg(long)]
    no_cache: bool,

    /// Keep compiled modules in DIR (default: $XDG_CACHE_HOME/asyncify, else
    /// ~/.cache/asyncify). A second run of the same module loads its
    /// compiled code from there instead of compiling it again; delete the
    /// directory to empty the cache.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,

    /// The module to run, binary (`.wasm`) or text (`.wat`).
    #[arg(value_name = "MODULE")]
    module: PathBuf,

    /// The guest's arguments (its `argv` after MODULE); with --invoke, the
    /// export's parameters. Everything after MODULE belongs here.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,

    // Last: its help heading would otherwise carry over to the arguments.
    #[command(flatten)]
    flags: InstrumentFlags,
}

/// What to do with function imports nothing defines.
#[derive(Debug, Clone, Copy, PartialEq)]
enum UnknownImports {
    /// Refuse to start, listing them.
    Refuse,
    /// Define them as functions that trap.
    Trap,
    /// Define them as functions that return zeros.
    DefaultValues,
}

/// The store's data.
struct Host {
    wasi: WasiP1Ctx,
}

/// A compiled module to link.
struct Loaded {
    path: PathBuf,
    module: Module,
    instrumented: bool,
}

impl Loaded {
    /// Whether the module has yield checks (exports their budget).
    fn has_yield_checks(&self) -> bool {
        let budget = asyncify_transform::yield_checks::BUDGET_EXPORT;
        self.module.exports().any(|e| e.name() == budget)
    }
}

/// Runs `asyncify run`, printing its own errors: the exit status depends on
/// how the guest ended.
pub fn main(args: RunArgs) -> ExitCode {
    match run(&args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", format_error(&error));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let options = instrument_options(args)?;
    let engine = Engine::new(&wasmtime::Config::new()).map_err(wasmtime_error)?;
    let input = files::read_module(&args.module)?;
    if dylink::is_dynamic(&input, &args.library) {
        if !args.preload.is_empty() {
            bail!(
                "--preload does not combine with dynamic linking ({} is a main module: it \
                 uses `dlopen` or has a `dylink.0` section); give its libraries with --library \
                 NAME=FILE",
                files::describe(&args.module)
            );
        }
        return run_dynamic(args, &engine, options, &input);
    }
    let cache = Cache::new(args.no_cache, args.cache_dir.clone());
    let load = |path: &Path, input: Vec<u8>| {
        load(&engine, &cache, path, input, options.as_ref(), &args.flags)
    };
    let main = load(&args.module, input)?;
    let mut preloads = Vec::new();
    for spec in &args.preload {
        let Some((name, file)) = spec
            .split_once('=')
            .filter(|(n, f)| !n.is_empty() && !f.is_empty())
        else {
            bail!("--preload takes NAME=FILE, got `{spec}`");
        };
        preloads.push((
            name,
            load(Path::new(file), files::read_module(Path::new(file))?)?,
        ));
    }
    if args.async_wasi {
        check_async_wasi(&main, &preloads)?;
    }

    let unknown = if args.trap_unknown_imports {
        UnknownImports::Trap
    } else if args.default_values_unknown_imports {
        UnknownImports::DefaultValues
    } else {
        UnknownImports::Refuse
    };
    let wasi = wasi_context(args)?;
    let mut store = Store::new(&engine, Host { wasi });
    let outcome = futures::executor::block_on(async {
        let mut linker = Linker::new(&engine);
        if let Some(slicing) = time_slicing(args) {
            linker.time_slicing(slicing)?;
            if !main.has_yield_checks() {
                eprintln!(
                    "note: {} has no yield checks, so --yield-every and --max-budget do nothing; \
                     instrument it with --yield-checks (or run it with --instrument)",
                    main.path.display()
                );
            }
        }
        for (name, preload) in &preloads {
            let instance = instantiate(&linker, &mut store, preload, args.async_wasi, unknown)?;
            initialize(&instance, &mut store).await?;
            linker.instance(&mut store, name, &instance)?;
        }
        let instance = instantiate(&linker, &mut store, &main, args.async_wasi, unknown)?;
        call_main(args, &instance, &mut store).await
    });
    report(outcome)
}

/// `asyncify run` of a main module and its shared libraries (see
/// [`dylink`]): with --instrument, the loader instruments each module as it
/// loads it, so that they share one asyncify state.
fn run_dynamic(
    args: &RunArgs,
    engine: &Engine,
    options: Option<Options>,
    main: &[u8],
) -> anyhow::Result<ExitCode> {
    if args.trap_unknown_imports || args.default_values_unknown_imports {
        bail!(
            "--trap-unknown-imports and --default-values-unknown-imports do not apply to a \
             dynamically linked run (--library, or a main module that uses `dlopen` or has a \
             `dylink.0` section): every import must be defined"
        );
    }
    let libraries = dylink::read_libraries(&args.library)?;
    let instrumented = options.is_some() || dylink::has_runtime_exports(main);
    let wasi = wasi_context(args)?;
    let mut store = Store::new(engine, Host { wasi });
    let outcome = futures::executor::block_on(async {
        let mut linker = Linker::new(engine);
        if let Some(slicing) = time_slicing(args) {
            linker.time_slicing(slicing)?;
        }
        if args.async_wasi {
            wasi::add_to_linker_async_suspending(&mut linker, |host: &mut Host| &mut host.wasi)?;
        } else {
            wasi::add_to_linker_sync(&mut linker, |host: &mut Host| &mut host.wasi)?;
        }
        // Any module of the group may import them, libraries too.
        define_builtins(&mut linker, BUILTINS.into_iter(), instrumented)?;
        let mut dynamic = DynamicLinker::new(&linker);
        for (name, wasm) in libraries {
            dynamic.library(&name, wasm);
        }
        dynamic.loader(dylink::loader(
            dylink::dir_mappings(&args.dirs),
            args.async_wasi,
        ));
        dynamic.instrument_on_load(options);
        let group = dynamic
            .instantiate(&mut store, main)
            .await
            .map_err(|e| e.context(format!("cannot load {}", files::describe(&args.module))))?;
        call_main(args, group.main(), &mut store).await
    });
    report(outcome)
}

/// Runs `_start`, or the export --invoke names, of `instance`.
async fn call_main(
    args: &RunArgs,
    instance: &Instance,
    store: &mut Store<Host>,
) -> wasmtime::Result<Vec<Val>> {
    match &args.invoke {
        Some(name) => invoke(instance, store, name, &args.args).await,
        None => start(instance, store, &args.module).await,
    }
}

/// Prints the results of a run that returned, or its error; the exit status.
fn report(outcome: wasmtime::Result<Vec<Val>>) -> anyhow::Result<ExitCode> {
    match outcome {
        Ok(results) => {
            for value in &results {
                println!("{}", format_value(value));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => exit_status(error),
    }
}

/// The linker's time slicing, when `--yield-every` or `--max-budget` is given.
fn time_slicing(args: &RunArgs) -> Option<TimeSlicing> {
    if args.yield_every.is_none() && args.max_budget.is_none() {
        return None;
    }
    Some(TimeSlicing {
        slice: args.yield_every.unwrap_or(TimeSlicing::default().slice),
        yield_to_executor: args.yield_every.is_some(),
        max_budget: args.max_budget,
    })
}

/// The transform options, when `--instrument` is given.
fn instrument_options(args: &RunArgs) -> anyhow::Result<Option<Options>> {
    let mut options = args.flags.to_options()?;
    if args.instrument && time_slicing(args).is_some() {
        options.yield_checks = true;
    }
    if let Some(note) = args.flags.ignored_pass_args_note() {
        eprintln!("{note}");
    }
    if args.instrument {
        return Ok(Some(options));
    }
    if options != Options::default() || args.flags.verbose() {
        bail!("the instrumentation options only apply with --instrument");
    }
    Ok(None)
}

/// Optionally instruments, and compiles (or finds in `cache`) the module
/// `input` read from `path`.
fn load(
    engine: &Engine,
    cache: &Cache,
    path: &Path,
    input: Vec<u8>,
    options: Option<&Options>,
    flags: &InstrumentFlags,
) -> anyhow::Result<Loaded> {
    // `--verbose` output comes from the transform: no shortcut then.
    let cached = options
        .filter(|_| !flags.verbose())
        .and_then(|options| cache.instrumented(engine, &input, options));
    let module = match (cached, options) {
        (Some(module), _) => module,
        (None, Some(options)) => {
            let wasm = instrument(path, &input, options, flags)?;
            let module = compile(engine, cache, &wasm, path)?;
            cache.remember_instrumented(engine, &input, options, &wasm);
            module
        }
        (None, None) => compile(engine, cache, &input, path)?,
    };
    Ok(Loaded {
        path: path.to_path_buf(),
        instrumented: is_instrumented(&module),
        module,
    })
}

/// Compiles `wasm` (from `path`), or finds it in `cache`.
fn compile(engine: &Engine, cache: &Cache, wasm: &[u8], path: &Path) -> anyhow::Result<Module> {
    cache
        .module(engine, wasm, path)
        .map_err(wasmtime_error)
        .with_context(|| format!("cannot compile {}", files::describe(path)))
}

/// Instruments `input` (from `path`); a module that is already instrumented
/// is returned as it is, with a warning.
fn instrument(
    path: &Path,
    input: &[u8],
    options: &Options,
    flags: &InstrumentFlags,
) -> anyhow::Result<Vec<u8>> {
    let mut progress = ProgressLine::new();
    let result =
        asyncify_transform::instrument_with_progress(input, options, &mut |p| progress.update(p));
    progress.finish();
    match result {
        Ok(output) => {
            for warning in &output.warnings {
                eprintln!("warning: {warning}");
            }
            if flags.verbose() {
                print_reasons(&output);
            }
            Ok(output.wasm)
        }
        Err(asyncify_transform::Error::AlreadyInstrumented(_)) => {
            eprintln!(
                "warning: {} is already instrumented; running it as it is",
                files::describe(path)
            );
            Ok(input.to_vec())
        }
        Err(error) => Err(transform_error(error))
            .with_context(|| format!("cannot instrument {}", files::describe(path))),
    }
}

/// Whether `module` has the five `asyncify_*` exports, as the linker requires
/// to drive it.
fn is_instrumented(module: &Module) -> bool {
    RuntimeFunction::ALL.iter().all(|f| {
        matches!(
            module.get_export(f.export_name()),
            Some(ExternType::Func(_))
        )
    })
}

/// `--async-wasi` needs every module that calls WASI (and the main one) to be
/// instrumented.
fn check_async_wasi(main: &Loaded, preloads: &[(&str, Loaded)]) -> anyhow::Result<()> {
    let modules = std::iter::once(main).chain(preloads.iter().map(|(_, p)| p));
    for (i, loaded) in modules.enumerate() {
        let imports_wasi = loaded.module.imports().any(|i| i.module() == wasi::MODULE);
        if !loaded.instrumented && (i == 0 || imports_wasi) {
            bail!(
                "--async-wasi needs instrumented modules, and {} is not instrumented with \
                 asyncify; add --instrument to instrument it on the fly (or run `asyncify \
                 instrument` on it first)",
                files::describe(&loaded.path)
            );
        }
    }
    Ok(())
}

/// The WASI context: arguments, environment, inherited stdio, preopens.
fn wasi_context(args: &RunArgs) -> anyhow::Result<WasiP1Ctx> {
    let mut builder = WasiCtxBuilder::new();
    // Everything runs on this one thread anyway: file I/O need not go
    // through tokio's blocking pool.
    builder.allow_blocking_current_thread(true);
    builder.inherit_stdio();
    builder.arg(args.module.to_string_lossy());
    for arg in &args.args {
        builder.arg(arg);
    }
    for env in &args.envs {
        match env.split_once('=') {
            Some((key, value)) => {
                builder.env(key, value);
            }
            None => {
                if let Ok(value) = std::env::var(env) {
                    builder.env(env, value);
                }
            }
        }
    }
    for dir in &args.dirs {
        let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
        builder
            .preopened_dir(host, guest, FsPerms::ReadWrite)
            .map_err(wasmtime_error)
            .with_context(|| format!("cannot open directory `{host}` for --dir {dir}"))?;
    }
    Ok(builder.build_p1())
}

/// Instantiates `loaded` with WASI (sync, or async with `async_wasi`) and the
/// built-in imports it uses, on top of `linker`'s definitions.
fn instantiate(
    linker: &Linker<Host>,
    store: &mut Store<Host>,
    loaded: &Loaded,
    async_wasi: bool,
    unknown: UnknownImports,
) -> wasmtime::Result<Instance> {
    let mut linker = linker.clone();
    if async_wasi {
        wasi::add_to_linker_async_suspending(&mut linker, |host: &mut Host| &mut host.wasi)?;
    } else {
        wasi::add_to_linker_sync(&mut linker, |host: &mut Host| &mut host.wasi)?;
    }
    let host_imports = loaded
        .module
        .imports()
        .filter(|i| i.module() == HOST_MODULE)
        .map(|i| i.name());
    define_builtins(&mut linker, host_imports, loaded.instrumented)?;
    match unknown {
        UnknownImports::Refuse => linker.instantiate(store, &loaded.module),
        UnknownImports::Trap => {
            linker.define_unknown_imports_as_traps(&loaded.module)?;
            linker.instantiate(&mut *store, &loaded.module)
        }
        UnknownImports::DefaultValues => {
            // The linker reports the imports nothing defines; define the
            // functions among them and try once more.
            let error = match linker.instantiate(&mut *store, &loaded.module) {
                Ok(instance) => return Ok(instance),
                Err(error) => error,
            };
            let Some(asyncify_linker::Error::UnknownImports(imports)) = error.downcast_ref() else {
                return Err(error);
            };
            for import in imports {
                if let ExternType::Func(ty) = &import.ty {
                    define_default_values(&mut linker, &import.module, &import.name, ty.clone())?;
                }
            }
            linker.instantiate(store, &loaded.module)
        }
    }
}

/// Defines `module::name` as a function of type `ty` that returns zeros
/// (null references), as wasmtime's `--default-values-unknown-imports`.
fn define_default_values(
    linker: &mut Linker<Host>,
    module: &str,
    name: &str,
    ty: FuncType,
) -> wasmtime::Result<()> {
    let results: Vec<ValType> = ty.results().collect();
    let what = format!("{module}::{name}");
    linker.func_new(module, name, ty, move |_, _, out| {
        for (slot, ty) in out.iter_mut().zip(&results) {
            *slot = Val::default_for_ty(ty).ok_or_else(|| {
                wasmtime::format_err!(
                    "unknown import `{what}` returns a {ty}, which has no default value"
                )
            })?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Defines the `asyncify_host` functions named in `imports` (what a module
/// imports from it): async for an instrumented module, synchronous otherwise.
fn define_builtins<'a>(
    linker: &mut Linker<Host>,
    imports: impl Iterator<Item = &'a str>,
    instrumented: bool,
) -> wasmtime::Result<()> {
    for import in imports {
        match (import, instrumented) {
            ("sleep_ms", true) => {
                linker.func_wrap_async(
                    HOST_MODULE,
                    "sleep_ms",
                    |_: AsyncCaller<Host>, ms: i32| {
                        let timer = wasmtime_wasi::runtime::with_ambient_tokio_runtime(|| {
                            tokio::time::sleep(Duration::from_millis(ms.max(0) as u64))
                        });
                        async move {
                            timer.await;
                            Ok(())
                        }
                    },
                )?;
            }
            ("sleep_ms", false) => {
                linker.func_wrap(HOST_MODULE, "sleep_ms", |ms: i32| {
                    std::thread::sleep(Duration::from_millis(ms.max(0) as u64))
                })?;
            }
            ("yield", true) => {
                linker.func_wrap_async(HOST_MODULE, "yield", |_: AsyncCaller<Host>, ()| {
                    let mut yielded = false;
                    std::future::poll_fn(move |cx| {
                        if yielded {
                            return Poll::Ready(Ok(()));
                        }
                        yielded = true;
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    })
                })?;
            }
            ("yield", false) => {
                linker.func_wrap(HOST_MODULE, "yield", || {})?;
            }
            ("random_u32", true) => {
                linker.func_wrap_async(HOST_MODULE, "random_u32", |_: AsyncCaller<Host>, ()| {
                    std::future::ready(Ok(random_u32()))
                })?;
            }
            ("random_u32", false) => {
                linker.func_wrap(HOST_MODULE, "random_u32", random_u32)?;
            }
            // Left undefined: reported with the other missing imports.
            _ => {}
        }
    }
    Ok(())
}

fn random_u32() -> u32 {
    wasmtime_wasi::thread_rng().next_u32()
}

/// Calls `_initialize` if the instance exports it (a WASI reactor).
async fn initialize(instance: &Instance, store: &mut Store<Host>) -> wasmtime::Result<()> {
    if let Some(init) = instance.get_func(&mut *store, "_initialize") {
        init.call_async(&mut *store, &[], &mut []).await?;
    }
    Ok(())
}

/// Runs the WASI command's `_start`.
async fn start(
    instance: &Instance,
    store: &mut Store<Host>,
    path: &Path,
) -> wasmtime::Result<Vec<Val>> {
    let Some(start) = instance.get_func(&mut *store, "_start") else {
        let exports: Vec<String> = instance
            .wasmtime()
            .exports(&mut *store)
            .filter(|e| e.clone().into_func().is_some())
            .map(|e| format!("`{}`", e.name()))
            .collect();
        wasmtime::bail!(
            "{} has no `_start` export (it is not a WASI command); call one of its exported \
             functions with --invoke NAME [ARGS...]: {}",
            files::describe(path),
            if exports.is_empty() {
                "it exports none".to_string()
            } else {
                exports.join(", ")
            }
        );
    };
    start.call_async(&mut *store, &[], &mut []).await?;
    Ok(Vec::new())
}

/// Calls export `name` with parameters parsed from `args`.
async fn invoke(
    instance: &Instance,
    store: &mut Store<Host>,
    name: &str,
    args: &[String],
) -> wasmtime::Result<Vec<Val>> {
    initialize(instance, store).await?;
    let Some(func) = instance.get_func(&mut *store, name) else {
        wasmtime::bail!("the module has no exported function `{name}` (for --invoke)");
    };
    let ty = func.ty(&*store);
    let params = parse_params(name, &ty, args)?;
    let mut results: Vec<Val> = ty.results().map(|t| zero(&t)).collect();
    func.call_async(&mut *store, &params, &mut results).await?;
    Ok(results)
}

/// A placeholder result value of type `ty`, overwritten by the call.
fn zero(ty: &ValType) -> Val {
    Val::default_for_ty(ty).unwrap_or(Val::I32(0))
}

fn parse_params(name: &str, ty: &FuncType, args: &[String]) -> wasmtime::Result<Vec<Val>> {
    let types: Vec<ValType> = ty.params().collect();
    if types.len() != args.len() {
        wasmtime::bail!(
            "`{name}` takes {} parameter{} ({}), but {} {} given",
            types.len(),
            if types.len() == 1 { "" } else { "s" },
            format_func_type(ty),
            args.len(),
            if args.len() == 1 { "was" } else { "were" }
        );
    }
    types
        .iter()
        .zip(args)
        .enumerate()
        .map(|(i, (ty, text))| {
            parse_value(ty, text).ok_or_else(|| {
                wasmtime::format_err!(
                    "parameter {} of `{name}` is {ty}, and `{text}` is not a valid {ty}",
                    i + 1
                )
            })
        })
        .collect()
}

/// Parses `text` as a value of type `ty`: decimal or `0x` hex integers
/// (signed or unsigned), floats as Rust reads them (`inf`, `NaN` too).
fn parse_value(ty: &ValType, text: &str) -> Option<Val> {
    match ty {
        ValType::I32 => {
            parse_int(text, i32::MIN.into(), u32::MAX.into()).map(|v| Val::I32(v as i32))
        }
        ValType::I64 => {
            parse_int(text, i64::MIN.into(), u64::MAX.into()).map(|v| Val::I64(v as i64))
        }
        ValType::F32 => text.parse::<f32>().ok().map(|v| Val::F32(v.to_bits())),
        ValType::F64 => text.parse::<f64>().ok().map(|v| Val::F64(v.to_bits())),
        ValType::V128 => parse_u128(text).map(|v| Val::V128(v.into())),
        ValType::Ref(_) => None,
    }
}

/// An integer in `[min, max]`, decimal or `0x` hex, with an optional `-`.
fn parse_int(text: &str, min: i128, max: i128) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => i128::from_str_radix(hex, 16).ok()?,
        None => digits.parse::<i128>().ok()?,
    };
    let value = if negative { -magnitude } else { magnitude };
    (min..=max).contains(&value).then_some(value)
}

/// A 128-bit unsigned integer, decimal or `0x` hex.
fn parse_u128(text: &str) -> Option<u128> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u128::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// A result as `--invoke` prints it.
fn format_value(value: &Val) -> String {
    match value {
        Val::I32(v) => v.to_string(),
        Val::I64(v) => v.to_string(),
        Val::F32(bits) => f32::from_bits(*bits).to_string(),
        Val::F64(bits) => f64::from_bits(*bits).to_string(),
        Val::V128(v) => format!("{:#034x}", v.as_u128()),
        Val::FuncRef(None) | Val::ExternRef(None) | Val::AnyRef(None) => "null".to_string(),
        Val::FuncRef(Some(_)) => "<funcref>".to_string(),
        Val::ExternRef(Some(_)) => "<externref>".to_string(),
        _ => "<reference>".to_string(),
    }
}

/// `(param i32 i32) (result i32)`, spelled by the project's one type printer.
fn format_func_type(ty: &FuncType) -> String {
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    text::FuncType {
        params: &params,
        results: &results,
    }
    .to_string()
}

/// The exit status for a run that failed with `error`, after printing it.
fn exit_status(error: wasmtime::Error) -> anyhow::Result<ExitCode> {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Ok(ExitCode::from(u8::try_from(exit.0).unwrap_or(1)));
    }
    if let Some(asyncify_linker::Error::UnknownImports(imports)) = error.downcast_ref() {
        bail!("{}", format_unknown_imports(imports));
    }
    let message = wasmtime_message(&error);
    if error.downcast_ref::<Trap>().is_some() {
        eprintln!("error: the guest trapped: {message}");
        return Ok(ExitCode::from(if cfg!(windows) { 3 } else { 134 }));
    }
    bail!("{message}")
}

fn format_unknown_imports(imports: &[UnknownImport]) -> String {
    let mut text = format!(
        "{} import{} not defined (WASI preview 1 and the built-in `{HOST_MODULE}` functions \
         are; link other modules with --preload NAME=FILE, or define the missing functions \
         with --trap-unknown-imports or --default-values-unknown-imports):",
        imports.len(),
        if imports.len() == 1 { " is" } else { "s are" }
    );
    for import in imports {
        text.push_str(&format!(
            "\n  {}.{}: {}",
            import.module,
            import.name,
            import.type_text()
        ));
    }
    text
}

/// A wasmtime error as one paragraph: its messages joined by `: `, then the
/// wasm backtrace, if it has one.
fn wasmtime_message(error: &wasmtime::Error) -> String {
    let backtrace = error.downcast_ref::<WasmBacktrace>().map(|b| b.to_string());
    let mut text = join_causes(
        error
            .chain()
            .map(|cause| cause.to_string())
            .filter(|message| Some(message) != backtrace.as_ref()),
    );
    if let Some(trace) = backtrace {
        let frames = trace.split_once('\n').map_or("", |(_, frames)| frames);
        if !frames.trim().is_empty() {
            text.push_str("\nwasm backtrace:\n");
            text.push_str(frames);
        }
    }
    text
}

/// A wasmtime error for an `anyhow` chain, keeping its whole message.
fn wasmtime_error(error: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::msg(wasmtime_message(&error))
}
