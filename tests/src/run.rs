//! Running a module: instantiate it with the generic host imports, call its
//! exports (driving unwind/rewind for an instrumented module) and record an
//! [`Outcome`].

use std::sync::Arc;

use wasmtime::{Extern, Func, Global, Instance, Linker, Module, Store, Val, ValType};

use crate::engine;
use crate::host::{
    identify, identify_all, note_exported_funcs, BufferLayout, HostState, MemHandle, Runtime,
    SuspendPredicate,
};
use crate::imports::{define_imports, ImportLinker};
use crate::schedule::Schedule;
use crate::value::{self, Value};
use crate::ImportCall;

/// Export names of the asyncify runtime; left out of an [`Outcome`].
pub fn is_runtime_export(name: &str) -> bool {
    name.starts_with("asyncify_") || name.starts_with("__asyncify_")
}

/// Where the driver puts the asyncify buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BufferSpec {
    /// The memory, by export name (or `module.name` of a memory import).
    /// Default: `asyncify_memory` when the module exports it, else `memory`.
    pub memory: Option<String>,
    /// Address of the header. Default: 0 in `asyncify_memory`, else 0x8000.
    pub addr: Option<u64>,
    /// Size including the header. Default: 0x8000 (clipped to the memory).
    pub size: Option<u64>,
}

impl BufferSpec {
    /// The buffer in memory `name`, at the default address and size.
    pub fn in_memory(name: &str) -> Self {
        BufferSpec {
            memory: Some(name.to_string()),
            ..Default::default()
        }
    }

    /// The name of the buffer's memory: the one `memory` names, else
    /// `asyncify_memory` when the module exports something by that name
    /// (`exports_own`), else `memory`.
    pub(crate) fn memory_name(&self, exports_own: bool) -> String {
        match &self.memory {
            Some(n) => n.clone(),
            None if exports_own => "asyncify_memory".to_string(),
            None => "memory".to_string(),
        }
    }
}

/// How to run a module.
#[derive(Clone)]
pub struct RunConfig {
    /// Drive the asyncify protocol (the module is instrumented). When false,
    /// nothing suspends and `asyncify.*` imports are no-op stubs.
    pub instrumented: bool,
    /// Which calls to suspendable imports suspend.
    pub schedule: Schedule,
    /// Which imports may suspend at all.
    pub may_suspend: SuspendPredicate,
    /// Where the buffer is.
    pub buffer: BufferSpec,
    /// Fuel for the whole run, so a broken module cannot loop forever.
    pub fuel: u64,
    /// Unwinds allowed per export call before the driver gives up.
    pub max_unwinds: u64,
}

impl RunConfig {
    /// Runs the original module: nothing suspends.
    pub fn original() -> Self {
        RunConfig {
            instrumented: false,
            schedule: Schedule::Never,
            may_suspend: Arc::new(|_, _| false),
            buffer: BufferSpec::default(),
            fuel: 500_000_000,
            max_unwinds: 100_000,
        }
    }

    /// Runs an instrumented module under `schedule`; every import may suspend.
    pub fn instrumented(schedule: Schedule) -> Self {
        RunConfig {
            instrumented: true,
            schedule,
            may_suspend: Arc::new(|_, _| true),
            ..RunConfig::original()
        }
    }

    /// Sets which imports may suspend.
    pub fn may_suspend(mut self, p: impl Fn(&str, &str) -> bool + Send + Sync + 'static) -> Self {
        self.may_suspend = Arc::new(p);
        self
    }

    /// Sets where the buffer is.
    pub fn buffer(mut self, buffer: BufferSpec) -> Self {
        self.buffer = buffer;
        self
    }
}

/// Why something did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The wasm trap code (`UnreachableCodeReached`, ...), if it was a trap.
    pub trap: Option<String>,
    /// What went wrong (the root cause), for information only (not compared).
    pub message: String,
    /// The whole error with its context (for a trap the wasm backtrace),
    /// prefixed with `in NAME:` for a trap in a runtime function the driver
    /// called; not compared.
    pub detail: String,
}

impl Failure {
    pub(crate) fn from_error(e: &wasmtime::Error) -> Self {
        Failure {
            trap: e.downcast_ref::<wasmtime::Trap>().map(|t| format!("{t:?}")),
            message: e.root_cause().to_string(),
            detail: format!("{e:?}"),
        }
    }

    /// A trap in the runtime function `name`, which the driver called (the
    /// output has no names for the backtrace to show): `detail` starts with
    /// `in {name}:`.
    pub(crate) fn in_runtime(name: &str, e: &wasmtime::Error) -> Self {
        let mut failure = Failure::from_error(e);
        failure.detail = format!("in {name}: {}", failure.detail);
        failure
    }

    pub(crate) fn driver(message: String) -> Self {
        Failure {
            trap: None,
            detail: message.clone(),
            message,
        }
    }

    /// The driver's failure when the module has no function export `export`.
    pub(crate) fn missing_export(export: &str) -> Self {
        Failure::driver(format!("no exported function `{export}`"))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first_line = self.message.lines().next().unwrap_or("");
        match &self.trap {
            Some(t) => write!(f, "trap {t} ({first_line})"),
            None => write!(f, "error ({first_line})"),
        }
    }
}

/// One export call and what came of it.
#[derive(Clone, Debug)]
pub struct CallOutcome {
    /// The export.
    pub export: String,
    /// Its arguments.
    pub args: Vec<Value>,
    /// Its results, or why it failed.
    pub result: Result<Vec<Value>, Failure>,
    /// How many times it unwound (instrumented runs).
    pub unwinds: u64,
}

impl CallOutcome {
    /// Whether the call trapped (a wasm trap, not a driver error).
    pub fn trapped(&self) -> bool {
        matches!(&self.result, Err(f) if f.trap.is_some())
    }

    /// Whether the call ended in the trap the ABI gives a buffer that is
    /// too small: `unreachable` executed in `asyncify_stop_unwind` (the
    /// runtime function that checks `cur > end` after an unwind).
    pub fn overflowed(&self) -> bool {
        matches!(&self.result, Err(f) if f.trap.as_deref() == Some("UnreachableCodeReached")
            && f.detail.starts_with("in asyncify_stop_unwind:"))
    }
}

/// Everything observable about a run.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Compilation and instantiation (including the start function).
    pub start: Option<Failure>,
    /// One entry per export call.
    pub calls: Vec<CallOutcome>,
    /// Every host import call, in order.
    pub imports: Vec<ImportCall>,
    /// Final contents of each exported (or imported) memory, by name, with
    /// the asyncify buffer zeroed.
    pub memories: Vec<(String, Vec<u8>)>,
    /// Final values of the exported globals.
    pub globals: Vec<(String, Value)>,
    /// Final contents of the exported tables, by name: one value per
    /// element (so the length is the size), references by identity.
    pub tables: Vec<(String, Vec<Value>)>,
    /// The most buffer bytes (past the header) an unwind of the direct
    /// driver asked for: `cur - start` after the unwind, also when that is
    /// past `end` (the transform advances `cur` by the full size of frames
    /// that do not fit).
    pub buffer_needed: u64,
    /// Protocol violations the driver saw (always a failure).
    pub errors: Vec<String>,
}

impl Outcome {
    /// Total unwinds over all export calls.
    pub fn unwinds(&self) -> u64 {
        self.calls.iter().map(|c| c.unwinds).sum()
    }

    /// The results of call `i`, panicking with the failure if it failed.
    pub fn results(&self, i: usize) -> &[Value] {
        match &self.calls[i].result {
            Ok(v) => v,
            Err(f) => panic!("call {i} ({}) failed: {f}", self.calls[i].export),
        }
    }
}

/// Runs `wasm` (binary or text) under `config`, calling each export in
/// `calls` in order in one instance.
pub fn run(wasm: &[u8], config: &RunConfig, calls: &[(&str, Vec<Val>)]) -> Outcome {
    let mut outcome = Outcome::default();
    let new_linker = |_: &Module| {
        let mut linker = Linker::new(engine());
        linker.allow_shadowing(true);
        linker
    };
    let Some((mut store, instance)) =
        start(wasm, config, config.instrumented, new_linker, &mut outcome)
    else {
        return outcome;
    };
    note_exported_funcs(&mut store, &instance);
    crate::host::spend_yield_budget(&mut store, &instance);
    let buffer = resolve_buffer(&mut store, &instance, &config.buffer);
    if config.instrumented {
        match buffer
            .clone()
            .and_then(|b| find_runtime(&mut store, &instance, b))
        {
            Ok(rt) => store.data_mut().runtime = Some(rt),
            Err(e) => {
                outcome.start = Some(Failure::driver(e));
                return outcome;
            }
        }
    }
    record_calls(&mut outcome, calls, |export, args| {
        let before = store.data().unwinds;
        let result = call_export(&mut store, &instance, export, args, config.max_unwinds);
        (result, store.data().unwinds - before)
    });
    finish(&mut store, &instance, buffer.ok().as_ref(), outcome)
}

/// The set-up both drivers share: compiles `wasm`, makes its store (host
/// state and fuel from `config`), defines its imports in the linker
/// `new_linker` makes for it (see [`define_imports`] for `instrumented`),
/// instantiates it and marks the store instantiated. When any of that fails,
/// `outcome.start` says why, `outcome.imports` has the calls the start
/// function made, and this returns `None`.
pub(crate) fn start<L: ImportLinker>(
    wasm: &[u8],
    config: &RunConfig,
    instrumented: bool,
    new_linker: impl FnOnce(&Module) -> L,
    outcome: &mut Outcome,
) -> Option<(Store<HostState>, L::Instance)> {
    let engine = engine();
    let module = match Module::new(engine, wasm) {
        Ok(m) => m,
        Err(e) => {
            outcome.start = Some(Failure::driver(format!("does not compile: {e:#}")));
            return None;
        }
    };
    let state = HostState::new(config.schedule.clone(), config.may_suspend.clone());
    let mut store = Store::new(engine, state);
    if let Err(e) = store.set_fuel(config.fuel) {
        outcome.start = Some(Failure::driver(format!("set_fuel: {e:?}")));
        return None;
    }
    let mut linker = new_linker(&module);
    if let Err(e) = define_imports(&mut linker, &mut store, &module, instrumented) {
        outcome.start = Some(Failure::driver(e));
        return None;
    }
    match linker.instantiate_module(&mut store, &module) {
        Ok(instance) => {
            store.data_mut().instantiated = true;
            Some((store, instance))
        }
        Err(e) => {
            outcome.start = Some(Failure::from_error(&e));
            outcome.imports = std::mem::take(&mut store.data_mut().log);
            None
        }
    }
}

/// Makes the export calls of `calls` in order through `call`, which gives a
/// call's results (or why there are none) and how many times it unwound, and
/// records each in `outcome.calls`.
pub(crate) fn record_calls(
    outcome: &mut Outcome,
    calls: &[(&str, Vec<Val>)],
    mut call: impl FnMut(&str, &[Val]) -> (Result<Vec<Value>, Failure>, u64),
) {
    for (export, args) in calls {
        let (result, unwinds) = call(export, args);
        outcome.calls.push(CallOutcome {
            export: export.to_string(),
            args: value::record(args),
            result,
            unwinds,
        });
    }
}

/// Where the buffer is by default, in a memory other than
/// `asyncify_memory`.
pub(crate) const DEFAULT_BUFFER_ADDR: u64 = 0x8000;
/// The buffer's default size, header included.
pub(crate) const DEFAULT_BUFFER_SIZE: u64 = 0x8000;

/// Finds the buffer `spec` describes in the instance (or among the memories
/// the driver created for its imports), with the defaults filled in.
pub(crate) fn resolve_buffer(
    store: &mut Store<HostState>,
    instance: &Instance,
    spec: &BufferSpec,
) -> Result<BufferLayout, String> {
    let exports_own = instance
        .get_export(&mut *store, "asyncify_memory")
        .is_some();
    let name = spec.memory_name(exports_own);
    let mem = match instance.get_export(&mut *store, &name) {
        Some(Extern::Memory(m)) => MemHandle::Plain(m),
        Some(Extern::SharedMemory(m)) => MemHandle::Shared(m),
        Some(_) => return Err(format!("export `{name}` is not a memory")),
        None => store
            .data()
            .imported_memories
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m.clone())
            .ok_or_else(|| format!("no memory exported (or imported) as `{name}`"))?,
    };
    let default_addr = if name == "asyncify_memory" {
        0
    } else {
        DEFAULT_BUFFER_ADDR
    };
    let addr = spec.addr.unwrap_or(default_addr);
    let len = mem.len(&*store);
    let size = spec
        .size
        .unwrap_or(DEFAULT_BUFFER_SIZE)
        .min(len.saturating_sub(addr));
    if size < 16 {
        return Err(format!(
            "memory `{name}` ({len:#x} bytes) has no room for a buffer at {addr:#x}"
        ));
    }
    let wide = mem.is_64(&*store);
    Ok(BufferLayout {
        name,
        mem,
        addr,
        size,
        wide,
    })
}

fn find_runtime(
    store: &mut Store<HostState>,
    instance: &Instance,
    buffer: BufferLayout,
) -> Result<Runtime, String> {
    let mut get = |name: &str| -> Result<Func, String> {
        instance
            .get_func(&mut *store, name)
            .ok_or_else(|| format!("the instrumented module does not export function `{name}`"))
    };
    let rt = Runtime {
        start_unwind: get("asyncify_start_unwind")?,
        stop_unwind: get("asyncify_stop_unwind")?,
        start_rewind: get("asyncify_start_rewind")?,
        stop_rewind: get("asyncify_stop_rewind")?,
        get_state: get("asyncify_get_state")?,
        buffer,
        state_global: runtime_global(store, instance, "__asyncify_state"),
        data_global: runtime_global(store, instance, "__asyncify_data"),
    };
    let params: Vec<ValType> = rt.start_unwind.ty(&*store).params().collect();
    match (params.as_slice(), rt.buffer.wide) {
        ([ValType::I32], false) | ([ValType::I64], true) => Ok(rt),
        (other, wide) => Err(format!(
            "asyncify_start_unwind takes {other:?}, but the buffer memory `{}` is {}-bit",
            rt.buffer.name,
            if wide { 64 } else { 32 }
        )),
    }
}

/// The runtime global `name`, exported by the module or imported from `env`.
fn runtime_global(store: &mut Store<HostState>, instance: &Instance, name: &str) -> Option<Global> {
    instance.get_global(&mut *store, name).or_else(|| {
        let env_name = format!("env.{name}");
        store
            .data()
            .imported_globals
            .iter()
            .find(|(n, _)| *n == env_name)
            .map(|(_, g)| *g)
    })
}

/// Calls one export; for an instrumented module, unwinds and rewinds until it
/// returns in the normal state.
fn call_export(
    store: &mut Store<HostState>,
    instance: &Instance,
    export: &str,
    args: &[Val],
    max_unwinds: u64,
) -> Result<Vec<Value>, Failure> {
    let func = instance
        .get_func(&mut *store, export)
        .ok_or_else(|| Failure::missing_export(export))?;
    let ty = func.ty(&*store);
    let mut results: Vec<Val> = ty.results().map(|t| value::zero(&t)).collect();
    let Some(rt) = store.data().runtime.clone() else {
        return match func.call(&mut *store, args, &mut results) {
            Ok(()) => Ok(identify_all(&mut *store, &results)),
            Err(e) => Err(Failure::from_error(&e)),
        };
    };
    let fail = |store: &mut Store<HostState>, message: String| {
        store.data_mut().errors.push(format!("{export}: {message}"));
        rt.reset(&mut *store);
        Err(Failure::driver(message))
    };
    if let Err(e) = rt.buffer.init_header(&mut *store) {
        return fail(store, e);
    }
    store.data_mut().pending = None;
    let start = rt.buffer.data_start();
    let mut unwinds = 0;
    loop {
        if let Err(e) = func.call(&mut *store, args, &mut results) {
            rt.reset(&mut *store);
            store.data_mut().pending = None;
            return Err(Failure::from_error(&e));
        }
        let state = match rt.state(&mut *store) {
            Ok(s) => s,
            Err(e) => return fail(store, format!("asyncify_get_state failed: {e:?}")),
        };
        let header = rt.buffer.header(&*store);
        if let Err(e) = rt.check_globals(&mut *store, state) {
            return fail(store, e);
        }
        match state {
            0 => {
                if store.data().pending.is_some() {
                    return fail(
                        store,
                        "returned normally while a suspended import was never resumed".into(),
                    );
                }
                return match header {
                    Some((cur, _)) if cur == start => Ok(identify_all(&mut *store, &results)),
                    other => fail(
                        store,
                        format!(
                            "returned with header (cur, end) = {other:x?}; cur should be back \
                             at {start:#x}"
                        ),
                    ),
                };
            }
            1 => {
                unwinds += 1;
                store.data_mut().unwinds += 1;
                if let Some((cur, _)) = header {
                    let needed = &mut store.data_mut().buffer_needed;
                    *needed = (*needed).max(cur.saturating_sub(start));
                }
                match header {
                    Some((cur, end)) if start <= cur && cur <= end => {}
                    Some((cur, end)) if cur > end => {
                        // Overflow. The ABI says the next start/stop call
                        // traps: that trap is the call's outcome.
                        store.data_mut().errors.push(format!(
                            "{export}: after unwind #{unwinds}, cur ({cur:#x}) > end ({end:#x}): \
                             the buffer overflowed"
                        ));
                        return match rt.call(&rt.stop_unwind, &mut *store, false) {
                            Err(e) => {
                                rt.reset(&mut *store);
                                Err(Failure::in_runtime("asyncify_stop_unwind", &e))
                            }
                            Ok(()) => fail(
                                store,
                                "asyncify_stop_unwind did not trap although cur > end".into(),
                            ),
                        };
                    }
                    other => {
                        return fail(
                            store,
                            format!(
                                "after unwind #{unwinds}, header (cur, end) = {other:x?}: cur \
                                 must lie in [{start:#x}, end]"
                            ),
                        )
                    }
                }
                if unwinds > max_unwinds {
                    return fail(store, format!("still unwinding after {max_unwinds} rounds"));
                }
                // A trap in the runtime functions is the module's verdict
                // (for example on overflow): report it as the call's trap.
                for (f, with_ptr, name) in [
                    (&rt.stop_unwind, false, "asyncify_stop_unwind"),
                    (&rt.start_rewind, true, "asyncify_start_rewind"),
                ] {
                    if let Err(e) = rt.call(f, &mut *store, with_ptr) {
                        rt.reset(&mut *store);
                        return Err(Failure::in_runtime(name, &e));
                    }
                }
            }
            s => {
                return fail(
                    store,
                    format!(
                        "returned in state {s}: {}",
                        if s == 2 {
                            "the rewind never reached the call that suspended"
                        } else {
                            "not a valid state"
                        }
                    ),
                )
            }
        }
    }
}

/// Ends a run: records the memories the instance exports or imports (the
/// buffer zeroed), its exported globals, the import log and the driver's
/// errors in `outcome`.
pub(crate) fn finish(
    store: &mut Store<HostState>,
    instance: &Instance,
    buffer: Option<&BufferLayout>,
    mut outcome: Outcome,
) -> Outcome {
    let exports: Vec<(String, Extern)> = instance
        .exports(&mut *store)
        .filter(|e| !is_runtime_export(e.name()))
        .map(|e| (e.name().to_string(), e.into_extern()))
        .collect();
    let mut memories: Vec<(String, MemHandle)> = store.data().imported_memories.clone();
    for (name, ext) in exports {
        match ext {
            Extern::Memory(m) => memories.push((name, MemHandle::Plain(m))),
            Extern::SharedMemory(m) => memories.push((name, MemHandle::Shared(m))),
            Extern::Global(g) => {
                let v = g.get(&mut *store);
                let v = identify(&mut *store, &v);
                outcome.globals.push((name, v));
            }
            Extern::Table(t) => {
                let size = t.size(&*store);
                let elements = (0..size)
                    .map(|i| {
                        let v = t.get(&mut *store, i).map_or(Val::I32(0), Val::from);
                        identify(&mut *store, &v)
                    })
                    .collect();
                outcome.tables.push((name, elements));
            }
            _ => {}
        }
    }
    for (name, mem) in memories {
        let mut bytes = mem.snapshot(&*store);
        if let Some(b) = buffer.filter(|b| b.mem.base(&*store) == mem.base(&*store)) {
            let lo = (b.addr as usize).min(bytes.len());
            let hi = (b.data_end() as usize).min(bytes.len());
            bytes[lo..hi].fill(0);
        }
        outcome.memories.push((name, bytes));
    }
    let data = store.data_mut();
    outcome.imports = std::mem::take(&mut data.log);
    outcome.errors = std::mem::take(&mut data.errors);
    outcome.buffer_needed = data.buffer_needed;
    outcome
}
