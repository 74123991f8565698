//! Issue 18, item 5: main and side modules built by real toolchains (clang 14
//! and lld 14, emscripten 3.1.6), run through the dynamic loader.
//!
//! The modules, their sources and build commands are in `corpus/dylink/`
//! (its README lists each one); `corpus/dylink/expected/SCENARIO.txt` is what
//! each scenario prints when run with synchronous imports by an independent
//! loader (`corpus/dylink/sync_run.mjs`), and for `callback` also what the
//! statically linked build prints. Every scenario runs here in four modes
//! ([`Mode`]): instrumented with every import pending at its first poll (the
//! library loader's future and each `slow_double`), instrumented with every
//! import ready, instrumented by the loader itself, and not instrumented with
//! synchronous imports. All must print exactly the expected text.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use asyncify_linker::dylink::DynamicLinker;
use asyncify_linker::{AsyncCaller, Linker};
use common::{poll_once, yield_now};
use wasmtime::{
    Caller, Engine, Global, GlobalType, Memory, Module, Mutability, Store, Val, ValType,
};

/// How the modules are prepared and the host's imports answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Instrumented before loading (the main module with
    /// `asyncify-export-globals`, side modules with `asyncify-import-globals`);
    /// the library loader and every `slow_double` are pending at their first
    /// poll, so the guest suspends in every `dlopen` and every `slow_double`.
    Pending,
    /// The same modules; every import is ready at once (no suspension).
    Ready,
    /// The modules as built, instrumented by the loader
    /// ([`DynamicLinker::instrument_on_load`]); every import pending.
    OnLoad,
    /// The modules as built, not instrumented; `slow_double` is a synchronous
    /// host function and the library loader is ready at once.
    Sync,
    /// Every module (the main too) instrumented by Binaryen's `wasm-opt
    /// --asyncify --pass-arg=asyncify-relocatable`, so all import the state
    /// (Binaryen 108 cannot export it); every import pending.
    Binaryen,
}

impl Mode {
    fn pending(self) -> bool {
        matches!(self, Mode::Pending | Mode::OnLoad | Mode::Binaryen)
    }
}

/// The modes to run: all of them, [`Mode::Binaryen`] only when `wasm-opt`
/// is on `PATH` (else the skip is reported as `common::skip` does).
fn modes(test: &str) -> Vec<Mode> {
    let mut modes = vec![Mode::Pending, Mode::Ready, Mode::OnLoad, Mode::Sync];
    if std::process::Command::new("wasm-opt")
        .arg("--version")
        .output()
        .is_ok()
    {
        modes.push(Mode::Binaryen);
    } else {
        common::skip(test, "`wasm-opt` (Binaryen) is not on PATH");
    }
    modes
}

/// The store's data: what the guest printed, and the memory it prints from.
#[derive(Default)]
struct Host {
    output: String,
    memory: Option<Memory>,
}

/// What the host saw during one run.
#[derive(Default)]
struct Counters {
    slow_double_calls: AtomicU32,
    library_loads: AtomicU32,
    /// Futures that were pending at their first poll.
    waits: AtomicU32,
}

/// One run of a main module's `run` export.
#[derive(Debug)]
struct Outcome {
    output: String,
    status: i32,
    slow_double_calls: u32,
    library_loads: u32,
    waits: u32,
}

/// Most polls [`drive`] makes before it gives up.
const MAX_POLLS: usize = 1_000_000;

/// Polls `future` until it is ready. Every future the host gives out here
/// is ready on its second poll, so one that stays pending (a suspension the
/// linker never resumes) fails the test instead of hanging it.
fn drive<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    for _ in 0..MAX_POLLS {
        if let std::task::Poll::Ready(output) = poll_once(future.as_mut()) {
            return output;
        }
    }
    panic!("still pending after {MAX_POLLS} polls");
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/dylink")
}

fn corpus_file(name: &str) -> Vec<u8> {
    let path = corpus_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn expected(scenario: &str) -> String {
    String::from_utf8(corpus_file(&format!("expected/{scenario}.txt"))).unwrap()
}

/// Instruments `wasm` with default options plus `pass_args` (Binaryen
/// pass-arg spellings).
fn instrument(wasm: &[u8], pass_args: &[&str]) -> Vec<u8> {
    let mut options = asyncify_transform::Options::default();
    for arg in pass_args {
        options.apply_pass_arg(arg).unwrap();
    }
    asyncify_transform::instrument(wasm, &options)
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"))
        .wasm
}

/// Binaryen's pass argument that makes a module import the asyncify state.
const RELOCATABLE: &str = "--pass-arg=asyncify-relocatable";

/// `wasm` instrumented by Binaryen's `wasm-opt --asyncify` with `extra`
/// arguments. emcc's output has no features section, hence the
/// mutable-globals flag.
fn binaryen(wasm: &[u8], extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["--enable-mutable-globals"];
    args.extend_from_slice(extra);
    common::wasm_opt_asyncify(wasm, &args)
}

/// Every side module of the corpus under the name the guests `dlopen`
/// (`libNAME.so` for `libNAME.wasm`), `overrides` (`NAME.so`, file) on
/// top; instrumented as `mode` says.
fn libraries(mode: Mode, overrides: &[(&str, &str)]) -> HashMap<String, Vec<u8>> {
    let mut files: HashMap<String, String> = HashMap::new();
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = file
            .strip_prefix("lib")
            .and_then(|f| f.strip_suffix(".wasm"))
        {
            if !stem.contains('.') {
                files.insert(format!("lib{stem}.so"), file.clone());
            }
        }
    }
    for (name, file) in overrides {
        files.insert(name.to_string(), file.to_string());
    }
    files
        .into_iter()
        .map(|(name, file)| {
            let wasm = corpus_file(&file);
            let wasm = match mode {
                Mode::Pending | Mode::Ready => instrument(&wasm, &["asyncify-import-globals"]),
                Mode::Binaryen => binaryen(&wasm, &[RELOCATABLE]),
                Mode::OnLoad | Mode::Sync => wasm,
            };
            (name, wasm)
        })
        .collect()
}

/// The host imports of `corpus/dylink/dl.h` (all but the `dl*` functions,
/// which the loader serves), and what an emscripten main module needs
/// besides.
fn host_linker(
    engine: &Engine,
    store: &mut Store<Host>,
    mode: Mode,
    counters: &Arc<Counters>,
) -> Linker<Host> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap(
            "env",
            "print_str",
            |mut caller: Caller<'_, Host>, ptr: u32, len: u32| -> wasmtime::Result<()> {
                let memory = caller
                    .data()
                    .memory
                    .ok_or_else(|| wasmtime::format_err!("print_str before the memory is known"))?;
                let bytes = memory
                    .data(&caller)
                    .get(ptr as usize..ptr as usize + len as usize)
                    .ok_or_else(|| wasmtime::format_err!("print_str out of bounds"))?;
                let text = String::from_utf8_lossy(bytes).into_owned();
                caller.data_mut().output.push_str(&text);
                Ok(())
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "env",
            "print_i32",
            |mut caller: Caller<'_, Host>, x: i32| {
                caller.data_mut().output.push_str(&x.to_string());
            },
        )
        .unwrap();
    // emscripten's main module (callback_main.emcc.wasm) tells the host when
    // its malloc grows the memory, and reads `__heap_base` through its GOT
    // (the loader resolves a GOT entry nothing exports with the host's
    // `env` global of that name: an absolute address); nothing calls malloc.
    linker
        .func_wrap("env", "emscripten_notify_memory_growth", |_: i32| {})
        .unwrap();
    let heap_base = Global::new(
        &mut *store,
        GlobalType::new(ValType::I32, Mutability::Const),
        Val::I32(0),
    )
    .unwrap();
    linker
        .define(&*store, "env", "__heap_base", heap_base)
        .unwrap();
    if mode == Mode::Sync {
        let counters = counters.clone();
        linker
            .func_wrap("env", "slow_double", move |x: i32| {
                counters.slow_double_calls.fetch_add(1, Ordering::SeqCst);
                x * 2
            })
            .unwrap();
    } else {
        let counters = counters.clone();
        linker
            .func_wrap_async("env", "slow_double", move |_: AsyncCaller<Host>, x: i32| {
                let counters = counters.clone();
                async move {
                    counters.slow_double_calls.fetch_add(1, Ordering::SeqCst);
                    if mode.pending() {
                        counters.waits.fetch_add(1, Ordering::SeqCst);
                        yield_now().await;
                    }
                    Ok(x * 2)
                }
            })
            .unwrap();
    }
    linker
}

/// Runs the `run` export of `main` (a file of the corpus) with the loader,
/// in `mode`, side modules from [`libraries`].
fn run_dynamic(main: &str, overrides: &[(&str, &str)], mode: Mode) -> Outcome {
    let engine = Engine::default();
    let mut store = Store::new(&engine, Host::default());
    let counters = Arc::new(Counters::default());
    let linker = host_linker(&engine, &mut store, mode, &counters);
    let mut dynamic = DynamicLinker::new(&linker);
    let files = Arc::new(libraries(mode, overrides));
    let loader_counters = counters.clone();
    dynamic.loader(move |name: String| {
        let files = files.clone();
        let counters = loader_counters.clone();
        async move {
            counters.library_loads.fetch_add(1, Ordering::SeqCst);
            if mode.pending() {
                counters.waits.fetch_add(1, Ordering::SeqCst);
                yield_now().await;
            }
            files
                .get(&name)
                .cloned()
                .ok_or_else(|| wasmtime::format_err!("no file for library `{name}`"))
        }
    });
    let main_wasm = corpus_file(main);
    let main_wasm = match mode {
        Mode::Pending | Mode::Ready => instrument(&main_wasm, &["asyncify-export-globals"]),
        Mode::OnLoad => {
            dynamic.instrument_on_load(Some(asyncify_transform::Options::default()));
            main_wasm
        }
        Mode::Binaryen => binaryen(&main_wasm, &[RELOCATABLE]),
        Mode::Sync => main_wasm,
    };
    let status = drive(async {
        let group = dynamic
            .instantiate(&mut store, &main_wasm)
            .await
            .unwrap_or_else(|e| panic!("{main} ({mode:?}): loading failed: {e:?}"));
        store.data_mut().memory = Some(group.memory());
        let run = group
            .main()
            .get_typed_func::<(), i32>(&mut store, "run")
            .unwrap();
        run.call_async(&mut store, ()).await
    })
    .unwrap_or_else(|e| {
        panic!(
            "{main} ({mode:?}): run failed: {e:?}\nprinted so far:\n{}",
            store.data().output
        )
    });
    outcome(&mut store, status, &counters)
}

fn outcome(store: &mut Store<Host>, status: i32, counters: &Counters) -> Outcome {
    Outcome {
        output: std::mem::take(&mut store.data_mut().output),
        status,
        slow_double_calls: counters.slow_double_calls.load(Ordering::SeqCst),
        library_loads: counters.library_loads.load(Ordering::SeqCst),
        waits: counters.waits.load(Ordering::SeqCst),
    }
}

/// Checks one run against the scenario's expected output, and that the
/// guest waited exactly where the mode says.
fn check(scenario: &str, what: &str, mode: Mode, outcome: &Outcome) {
    let expected = expected(scenario);
    assert!(
        outcome.output == expected,
        "{scenario}: {what} ({mode:?}) printed\n{}\nexpected (corpus/dylink/expected/{scenario}.txt)\n{expected}",
        outcome.output
    );
    assert_eq!(
        outcome.status, 0,
        "{scenario}: {what} ({mode:?}): run's result"
    );
    let waits = if mode.pending() {
        outcome.slow_double_calls + outcome.library_loads
    } else {
        0
    };
    assert_eq!(
        outcome.waits, waits,
        "{scenario}: {what} ({mode:?}): futures pending at their first poll ({outcome:?})"
    );
}

/// Runs `main` in every mode; all print the expected text, call
/// `slow_double` and the library loader the same number of times, and the
/// pending modes suspend at every one of those calls.
fn scenario(scenario: &str, main: &str, overrides: &[(&str, &str)]) -> Vec<Outcome> {
    let modes = modes(scenario);
    let outcomes: Vec<Outcome> = modes
        .iter()
        .map(|&mode| {
            let outcome = run_dynamic(main, overrides, mode);
            check(scenario, main, mode, &outcome);
            outcome
        })
        .collect();
    for (mode, outcome) in modes.iter().zip(&outcomes) {
        assert_eq!(
            (outcome.slow_double_calls, outcome.library_loads),
            (outcomes[0].slow_double_calls, outcomes[0].library_loads),
            "{scenario}: {main} ({mode:?}): slow_double and library loads against {:?}",
            modes[0]
        );
    }
    outcomes
}

/// Both builds of a scenario's main module: a position-independent
/// executable (dylink.0, imports memory and table) and a plain executable
/// (exports them).
fn both_mains(name: &str, main: &str, overrides: &[(&str, &str)]) -> Vec<Outcome> {
    let mut outcomes = scenario(name, &format!("{main}.pie.wasm"), overrides);
    outcomes.extend(scenario(name, &format!("{main}.exe.wasm"), overrides));
    outcomes
}

/// The statically linked build of scenario 1 (main and library in one
/// module), run through the linker alone: the reference the dynamic runs
/// are compared with (they all print `expected/callback.txt`).
#[test]
fn callback_static_reference() {
    let wasm = corpus_file("callback_static.wasm");
    for mode in [Mode::Pending, Mode::Ready, Mode::Sync, Mode::Binaryen] {
        let engine = Engine::default();
        let mut store = Store::new(&engine, Host::default());
        let counters = Arc::new(Counters::default());
        let linker = host_linker(&engine, &mut store, mode, &counters);
        let module = match mode {
            Mode::Sync => Module::new(&engine, &wasm).unwrap(),
            // Binaryen's default output: the state stays inside the module.
            Mode::Binaryen if modes("callback_static_reference").contains(&mode) => {
                Module::new(&engine, binaryen(&wasm, &[])).unwrap()
            }
            Mode::Binaryen => continue,
            _ => Module::new(&engine, instrument(&wasm, &[])).unwrap(),
        };
        let instance = linker.instantiate(&mut store, &module).unwrap();
        store.data_mut().memory = instance.get_memory(&mut store, "memory");
        let run = instance
            .get_typed_func::<(), i32>(&mut store, "run")
            .unwrap();
        let status = drive(run.call_async(&mut store, ())).unwrap();
        let outcome = outcome(&mut store, status, &counters);
        check("callback", "callback_static.wasm", mode, &outcome);
        assert_eq!(outcome.slow_double_calls, 8, "{mode:?}");
    }
}

/// Scenario 1: `dlopen` (async), `dlsym`, a call through the pointer; the
/// library waits on `slow_double`, calls back into the main module by
/// pointer, by name and through `GOT.func`, and uses the main's data
/// (`GOT.mem`). One suspension unwinds frames of both modules.
#[test]
fn callback_clang_main_and_library() {
    for outcome in both_mains("callback", "callback_main", &[]) {
        assert_eq!((outcome.slow_double_calls, outcome.library_loads), (8, 1));
    }
}

/// Scenario 1 with the library built by `emcc -sSIDE_MODULE=1`.
#[test]
fn callback_emscripten_library() {
    both_mains(
        "callback",
        "callback_main",
        &[("libcallback.so", "libcallback.emcc.wasm")],
    );
}

/// Scenario 1 with the main module built by `emcc -sMAIN_MODULE=2`
/// (imports `GOT.mem.__heap_base` and `env.emscripten_notify_memory_growth`
/// besides the dynamic-linking ones), with both libraries.
#[test]
fn callback_emscripten_main() {
    scenario("callback", "callback_main.emcc.wasm", &[]);
    scenario(
        "callback",
        "callback_main.emcc.wasm",
        &[("libcallback.so", "libcallback.emcc.wasm")],
    );
}

/// Scenario 2: library A needs B (`dylink.0`), A's data points at B's, B
/// reads and writes A's data through `GOT.mem`.
#[test]
fn mutual_data_symbols() {
    for outcome in both_mains("mutual", "mutual_main", &[]) {
        // A and its needed B, once each; the second dlopen finds B loaded.
        assert_eq!(outcome.library_loads, 2);
    }
}

/// Scenario 3: one library opened twice gets one handle, one constructor
/// run, shared data; each `dlopen` has its `dlclose`.
#[test]
fn library_opened_twice() {
    for outcome in both_mains("twice", "twice_main", &[]) {
        assert_eq!(outcome.library_loads, 1);
    }
}

/// Scenario 4: missing symbols, files and handles: 0 and a `dlerror` that
/// names what is missing, reported once.
#[test]
fn missing_symbols_files_and_handles() {
    both_mains("missing", "missing_main", &[]);
}

/// Scenario 5: a constructor that traps makes `dlopen` return 0 with an
/// error; the load is forgotten, so the next `dlopen` runs it again.
#[test]
fn constructor_that_traps() {
    for outcome in both_mains("ctor_trap", "ctor_trap_main", &[]) {
        assert_eq!(outcome.library_loads, 2);
    }
}

/// Scenario 6: a C++ side module (vtables relocated by `__table_base`, a
/// global constructor) whose virtual function waits on `slow_double`.
#[test]
fn cpp_side_module() {
    both_mains("cpp", "cpp_main", &[]);
}

/// Scenario 7: a library constructor that waits on `slow_double`, inside
/// the `dlopen` that is itself waiting.
#[test]
fn constructor_that_waits() {
    for outcome in both_mains("ctor_wait", "ctor_wait_main", &[]) {
        assert_eq!(outcome.slow_double_calls, 1);
    }
}

/// Scenario 8: a library's function calls `dlopen` itself, so the guest
/// suspends with frames of the main module and the library on its stack,
/// and again inside the second library's constructor; the main module's
/// own `dlopen` of that library then finds it loaded.
#[test]
fn library_that_loads_a_library() {
    for outcome in both_mains("nested", "nested_main", &[]) {
        assert_eq!((outcome.slow_double_calls, outcome.library_loads), (2, 2));
    }
}
