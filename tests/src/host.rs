//! The host side of a run: generic imports that log their calls and return
//! deterministic results, and, for an instrumented module, the host half of
//! the asyncify protocol (suspend by unwinding, resume by rewinding).

use std::sync::Arc;

use wasmtime::{
    AnyRef, AsContext, AsContextMut, Caller, ExnRef, Extern, ExternRef, Func, FuncType, Global,
    Instance, Linker, Memory, Module, OwnedRooted, Rooted, SharedMemory, Store, Val, ValType,
};

use crate::imports::ImportLinker;
use crate::run::is_runtime_export;
use crate::schedule::{host_results, Schedule};
use crate::value::{self, list, RefValue, Value};

/// Whether import `module.name` may suspend (the instrumented module was told
/// it may). The driver only suspends calls for which this says yes.
pub type SuspendPredicate = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// One call of a host import, as logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportCall {
    /// Import module name.
    pub module: String,
    /// Import field name.
    pub name: String,
    /// The arguments.
    pub args: Vec<Value>,
    /// What the host returned (or will return on resume, for a suspended call).
    pub results: Vec<Value>,
}

impl std::fmt::Debug for ImportCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}{} -> {}",
            self.module,
            self.name,
            list(&self.args),
            list(&self.results)
        )
    }
}

/// A memory of the store, plain or shared.
#[derive(Clone)]
pub(crate) enum MemHandle {
    Plain(Memory),
    Shared(SharedMemory),
}

impl MemHandle {
    pub(crate) fn is_64(&self, store: impl AsContext) -> bool {
        match self {
            MemHandle::Plain(m) => m.ty(store).is_64(),
            MemHandle::Shared(m) => m.ty().is_64(),
        }
    }

    pub(crate) fn len(&self, store: impl AsContext) -> u64 {
        match self {
            MemHandle::Plain(m) => m.data_size(store) as u64,
            MemHandle::Shared(m) => m.data_size() as u64,
        }
    }

    /// Where the memory's bytes are: the same for every name it goes by.
    pub(crate) fn base(&self, store: impl AsContext) -> usize {
        match self {
            MemHandle::Plain(m) => m.data_ptr(store) as usize,
            MemHandle::Shared(m) => m.data().as_ptr() as usize,
        }
    }

    /// The whole contents.
    pub(crate) fn snapshot(&self, store: impl AsContext) -> Vec<u8> {
        match self {
            MemHandle::Plain(m) => m.data(&store).to_vec(),
            // SAFETY: the store runs on this thread only and no wasm runs while
            // the driver reads; nothing else writes the shared memory.
            MemHandle::Shared(m) => m.data().iter().map(|c| unsafe { *c.get() }).collect(),
        }
    }

    fn read(&self, store: impl AsContext, addr: u64, len: usize) -> Option<Vec<u8>> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len)?;
        match self {
            MemHandle::Plain(m) => m.data(&store).get(start..end).map(<[u8]>::to_vec),
            // SAFETY: as in `snapshot`.
            MemHandle::Shared(m) => m
                .data()
                .get(start..end)
                .map(|cells| cells.iter().map(|c| unsafe { *c.get() }).collect()),
        }
    }

    fn write(&self, mut store: impl AsContextMut, addr: u64, bytes: &[u8]) -> bool {
        let Ok(start) = usize::try_from(addr) else {
            return false;
        };
        let Some(end) = start.checked_add(bytes.len()) else {
            return false;
        };
        match self {
            MemHandle::Plain(m) => match m.data_mut(&mut store).get_mut(start..end) {
                Some(dst) => {
                    dst.copy_from_slice(bytes);
                    true
                }
                None => false,
            },
            MemHandle::Shared(m) => match m.data().get(start..end) {
                Some(cells) => {
                    for (c, &b) in cells.iter().zip(bytes) {
                        // SAFETY: as in `snapshot`.
                        unsafe { *c.get() = b };
                    }
                    true
                }
                None => false,
            },
        }
    }
}

impl From<MemHandle> for Extern {
    fn from(memory: MemHandle) -> Extern {
        match memory {
            MemHandle::Plain(m) => m.into(),
            MemHandle::Shared(m) => m.into(),
        }
    }
}

/// Where the asyncify buffer is: `[addr, addr + size)` of one memory, with the
/// two-field header (`cur`, `end`) at `addr`.
#[derive(Clone)]
pub(crate) struct BufferLayout {
    /// The export (or `module.name` import) naming the memory.
    pub name: String,
    pub mem: MemHandle,
    pub addr: u64,
    pub size: u64,
    /// Header fields are 8 bytes (memory64) instead of 4.
    pub wide: bool,
}

impl BufferLayout {
    fn field(&self) -> u64 {
        if self.wide {
            8
        } else {
            4
        }
    }

    /// Where saved frames start: just past the header.
    pub(crate) fn data_start(&self) -> u64 {
        self.addr + 2 * self.field()
    }

    pub(crate) fn data_end(&self) -> u64 {
        self.addr + self.size
    }

    /// The pointer passed to `start_unwind` / `start_rewind`.
    pub(crate) fn ptr(&self) -> Val {
        if self.wide {
            Val::I64(self.addr as i64)
        } else {
            Val::I32(self.addr as i32)
        }
    }

    pub(crate) fn init_header(&self, store: impl AsContextMut) -> Result<(), String> {
        let (start, end) = (self.data_start(), self.data_end());
        let bytes: Vec<u8> = if self.wide {
            [start.to_le_bytes(), end.to_le_bytes()].concat()
        } else {
            [(start as u32).to_le_bytes(), (end as u32).to_le_bytes()].concat()
        };
        if self.mem.write(store, self.addr, &bytes) {
            Ok(())
        } else {
            Err(format!(
                "the buffer header at {:#x} is outside memory `{}`",
                self.addr, self.name
            ))
        }
    }

    /// `(cur, end)` as stored in the header.
    pub(crate) fn header(&self, store: impl AsContext) -> Option<(u64, u64)> {
        let w = self.field() as usize;
        let b = self.mem.read(store, self.addr, 2 * w)?;
        let get = |i: usize| {
            let mut v = [0u8; 8];
            v[..w].copy_from_slice(&b[i * w..(i + 1) * w]);
            u64::from_le_bytes(v)
        };
        Some((get(0), get(1)))
    }
}

/// The five functions the instrumented module exports, and the buffer.
#[derive(Clone)]
pub(crate) struct Runtime {
    pub start_unwind: Func,
    pub stop_unwind: Func,
    pub start_rewind: Func,
    pub stop_rewind: Func,
    pub get_state: Func,
    pub buffer: BufferLayout,
    /// `__asyncify_state` / `__asyncify_data` when the module exports them
    /// (or imports them from `env`): checked against `get_state` and the buffer.
    pub state_global: Option<Global>,
    pub data_global: Option<Global>,
}

impl Runtime {
    pub(crate) fn state(&self, mut store: impl AsContextMut) -> wasmtime::Result<i32> {
        let mut out = [Val::I32(0)];
        self.get_state.call(&mut store, &[], &mut out)?;
        Ok(out[0].i32().unwrap_or(-1))
    }

    pub(crate) fn call(
        &self,
        f: &Func,
        mut store: impl AsContextMut,
        with_ptr: bool,
    ) -> wasmtime::Result<()> {
        let args = if with_ptr {
            vec![self.buffer.ptr()]
        } else {
            Vec::new()
        };
        f.call(&mut store, &args, &mut [])
    }

    /// Checks the visible state globals, if any: the state is `state`, and
    /// while unwinding the data pointer is the buffer.
    pub(crate) fn check_globals(
        &self,
        mut store: impl AsContextMut,
        state: i32,
    ) -> Result<(), String> {
        if let Some(g) = &self.state_global {
            let v = Value::from_val(&g.get(&mut store));
            if v != Value::I32(state) {
                return Err(format!("__asyncify_state is {v}, get_state says {state}"));
            }
        }
        if let Some(g) = &self.data_global {
            let v = Value::from_val(&g.get(&mut store));
            let ptr = Value::from_val(&self.buffer.ptr());
            if state == 1 && v != ptr {
                return Err(format!(
                    "while unwinding, __asyncify_data is {v}, not the buffer {ptr}"
                ));
            }
        }
        Ok(())
    }

    /// After a trap: put the state back to normal so the next export call
    /// starts clean (best effort; a trap here is ignored).
    pub(crate) fn reset(&self, mut store: impl AsContextMut) {
        match self.state(&mut store) {
            Ok(1) => drop(self.call(&self.stop_unwind, &mut store, false)),
            Ok(2) => drop(self.call(&self.stop_rewind, &mut store, false)),
            _ => {}
        }
    }
}

/// A reference the run has seen, kept so that the same reference seen again
/// gets the same [`RefValue::Seen`] number.
enum SeenRef {
    Func(usize),
    Any(OwnedRooted<AnyRef>),
    Extern(OwnedRooted<ExternRef>),
    Exn(OwnedRooted<ExnRef>),
}

/// The host-side table of the references a run has seen (see
/// [`identify`]).
#[derive(Default)]
pub(crate) struct RefTable {
    /// The exported functions (raw function references), in export order,
    /// the asyncify runtime's left out.
    exported_funcs: Vec<usize>,
    seen: Vec<SeenRef>,
}

/// Remembers the functions `instance` exports, so that references to them
/// are recorded as [`RefValue::Func`].
/// With yield checks (`Options::yield_checks`), empties the instance's
/// budget so that every check fires from the first: each one then calls
/// the yield import, which the schedule may suspend, and which gives a
/// budget of 0 again ([`HostState::log_call`]).
pub(crate) fn spend_yield_budget(store: &mut Store<HostState>, instance: &Instance) {
    let export = asyncify_abi::yield_checks::BUDGET_EXPORT;
    if let Some(budget) = instance.get_global(&mut *store, export) {
        let _ = budget.set(&mut *store, Val::I32(0));
    }
}

/// Whether `module.name` is the import yield checks call.
pub(crate) fn is_yield_import(module: &str, name: &str) -> bool {
    module == asyncify_abi::yield_checks::IMPORT_MODULE
        && name == asyncify_abi::yield_checks::IMPORT_NAME
}

pub(crate) fn note_exported_funcs(store: &mut Store<HostState>, instance: &Instance) {
    let funcs: Vec<Func> = instance
        .exports(&mut *store)
        .filter(|e| !is_runtime_export(e.name()))
        .filter_map(|e| e.into_func())
        .collect();
    let raw = funcs
        .iter()
        .map(|f| f.to_raw(&mut *store) as usize)
        .collect();
    store.data_mut().refs.exported_funcs = raw;
}

/// Records `val`, giving a reference its identity (see [`RefValue`]) through
/// the run's table of references.
pub(crate) fn identify(mut store: impl AsContextMut<Data = HostState>, val: &Val) -> Value {
    let rooted_eq =
        |store: &wasmtime::StoreContextMut<'_, HostState>, seen: &SeenRef| match (seen, val) {
            (SeenRef::Any(a), Val::AnyRef(Some(b))) => Rooted::ref_eq(store, a, b).unwrap_or(false),
            (SeenRef::Extern(a), Val::ExternRef(Some(b))) => {
                Rooted::ref_eq(store, a, b).unwrap_or(false)
            }
            (SeenRef::Exn(a), Val::ExnRef(Some(b))) => Rooted::ref_eq(store, a, b).unwrap_or(false),
            _ => false,
        };
    let mut store = store.as_context_mut();
    let new = match val {
        Val::FuncRef(Some(f)) => {
            let raw = f.to_raw(&mut store) as usize;
            let refs = &store.data().refs;
            if let Some(i) = refs.exported_funcs.iter().position(|&p| p == raw) {
                return Value::Ref(RefValue::Func(i as u32));
            }
            if let Some(i) = refs
                .seen
                .iter()
                .position(|s| matches!(s, SeenRef::Func(p) if *p == raw))
            {
                return Value::Ref(RefValue::Seen(i as u32));
            }
            SeenRef::Func(raw)
        }
        Val::AnyRef(Some(r)) => {
            if let Ok(Some(i)) = r.as_i31(&store) {
                return Value::Ref(RefValue::I31(i.get_u32()));
            }
            match r.to_owned_rooted(&mut store) {
                Ok(owned) => SeenRef::Any(owned),
                Err(_) => return Value::from_val(val),
            }
        }
        Val::ExternRef(Some(r)) => {
            if let Ok(Some(tag)) = r
                .data(&store)
                .map(|d| d.and_then(|d| d.downcast_ref::<u64>()).copied())
            {
                return Value::Ref(RefValue::Tag(tag));
            }
            match r.to_owned_rooted(&mut store) {
                Ok(owned) => SeenRef::Extern(owned),
                Err(_) => return Value::from_val(val),
            }
        }
        Val::ExnRef(Some(r)) => match r.to_owned_rooted(&mut store) {
            Ok(owned) => SeenRef::Exn(owned),
            Err(_) => return Value::from_val(val),
        },
        other => return Value::from_val(other),
    };
    if let Some(i) = store
        .data()
        .refs
        .seen
        .iter()
        .position(|s| rooted_eq(&store, s))
    {
        return Value::Ref(RefValue::Seen(i as u32));
    }
    let refs = &mut store.data_mut().refs;
    refs.seen.push(new);
    Value::Ref(RefValue::Seen(refs.seen.len() as u32 - 1))
}

/// Records a list of values with [`identify`].
pub(crate) fn identify_all(
    mut store: impl AsContextMut<Data = HostState>,
    vals: &[Val],
) -> Vec<Value> {
    vals.iter().map(|v| identify(&mut store, v)).collect()
}

/// A suspended import's result, returned when the rewind reaches it again.
pub(crate) struct Pending {
    module: String,
    name: String,
    results: Vec<Value>,
}

/// The store's data.
pub(crate) struct HostState {
    pub log: Vec<ImportCall>,
    /// Protocol violations seen by the driver.
    pub errors: Vec<String>,
    /// Calls so far to imports that may suspend (the schedule's counter).
    pub suspendable_calls: u64,
    pub unwinds: u64,
    /// See [`Outcome::buffer_needed`](crate::Outcome::buffer_needed).
    pub buffer_needed: u64,
    pub pending: Option<Pending>,
    /// Set once the instrumented module is instantiated; `None` for the original.
    pub runtime: Option<Runtime>,
    pub schedule: Schedule,
    pub may_suspend: SuspendPredicate,
    /// Memories the driver created for the module's memory imports.
    pub imported_memories: Vec<(String, MemHandle)>,
    /// Globals the driver created for the module's global imports.
    pub imported_globals: Vec<(String, Global)>,
    /// Set once instantiation is over (read by the linker-driven runs: the
    /// start function's import calls never suspend, as with the direct
    /// driver, which has no runtime yet while the start function runs).
    pub instantiated: bool,
    /// The references seen so far (see [`identify`]).
    pub refs: RefTable,
}

impl HostState {
    pub(crate) fn new(schedule: Schedule, may_suspend: SuspendPredicate) -> Self {
        HostState {
            log: Vec::new(),
            errors: Vec::new(),
            suspendable_calls: 0,
            unwinds: 0,
            buffer_needed: 0,
            pending: None,
            runtime: None,
            schedule,
            may_suspend,
            imported_memories: Vec::new(),
            imported_globals: Vec::new(),
            instantiated: false,
            refs: RefTable::default(),
        }
    }

    /// Logs a call of import `module.name` with `args` (recorded with
    /// [`identify`]) and returns the host's deterministic results for it
    /// (which also depend on how many calls the log holds already).
    pub(crate) fn log_call(
        &mut self,
        module: &str,
        name: &str,
        args: Vec<Value>,
        result_types: &[ValType],
    ) -> Vec<Value> {
        if is_yield_import(module, name) {
            // Not in the original module, so not logged: a budget of 0,
            // and the next check fires again.
            return vec![Value::I32(0)];
        }
        let calls_so_far = self.log.len() as u64;
        let results = host_results(module, name, &args, calls_so_far, result_types);
        self.log.push(ImportCall {
            module: module.to_string(),
            name: name.to_string(),
            args,
            results: results.clone(),
        });
        results
    }

    /// Whether this call of import `module.name` suspends: when the import
    /// may suspend, the call is the schedule's next one and the schedule
    /// decides; otherwise it does not (and is not counted).
    pub(crate) fn suspends(&mut self, module: &str, name: &str) -> bool {
        if !(self.may_suspend)(module, name) {
            return false;
        }
        let n = self.suspendable_calls;
        self.suspendable_calls += 1;
        self.schedule.suspends(n)
    }
}

/// The host's results `values` (one for each of `types`) as wasm values
/// (references made in `store`).
pub(crate) fn as_vals(
    mut store: impl AsContextMut,
    values: Vec<Value>,
    types: &[ValType],
) -> Vec<Val> {
    values
        .into_iter()
        .zip(types)
        .map(|(v, ty)| v.to_val(ty, &mut store))
        .collect()
}

/// Writes the host's results `values` into `results`, as wasm values of
/// `types` (references made in `store`).
pub(crate) fn fill_results(
    store: impl AsContextMut,
    results: &mut [Val],
    values: Vec<Value>,
    types: &[ValType],
) {
    for (r, v) in results.iter_mut().zip(as_vals(store, values, types)) {
        *r = v;
    }
}

/// The module the guest imports the runtime functions from, to drive itself.
pub const RUNTIME_MODULE: &str = "asyncify";

/// The direct driver's linker: function imports are [`host_call`].
impl ImportLinker for Linker<HostState> {
    type Instance = Instance;

    fn define_item(
        &mut self,
        store: &mut Store<HostState>,
        module: &str,
        name: &str,
        item: Extern,
    ) -> wasmtime::Result<()> {
        self.define(&*store, module, name, item)?;
        Ok(())
    }

    fn define_host_func(
        &mut self,
        _store: &Store<HostState>,
        module: &str,
        name: &str,
        ty: FuncType,
    ) -> wasmtime::Result<()> {
        if module == RUNTIME_MODULE && !is_yield_import(module, name) {
            self.func_new(module, name, ty, |_caller, _args, results| {
                results.iter_mut().for_each(|r| *r = Val::I32(0));
                Ok(())
            })?;
            return Ok(());
        }
        let (m, n) = (module.to_string(), name.to_string());
        let result_types: Vec<ValType> = ty.results().collect();
        self.func_new(module, name, ty, move |caller, args, results| {
            host_call(caller, &m, &n, &result_types, args, results)
        })?;
        Ok(())
    }

    fn instantiate_module(
        &self,
        store: &mut Store<HostState>,
        module: &Module,
    ) -> wasmtime::Result<Instance> {
        self.instantiate(store, module)
    }
}

/// Records a protocol violation and returns it as the error that traps the guest.
fn violation(caller: &mut Caller<'_, HostState>, message: String) -> wasmtime::Error {
    caller.data_mut().errors.push(message.clone());
    wasmtime::Error::msg(message)
}

/// An import call on the direct driver: in state 2 it is the rewind
/// reaching the call that suspended ([`resume`]); otherwise it logs the call
/// and returns its results, or, when the schedule says so, saves them and
/// starts an unwind.
fn host_call(
    mut caller: Caller<'_, HostState>,
    module: &str,
    name: &str,
    result_types: &[ValType],
    args: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let runtime = caller.data().runtime.clone();
    if let Some(rt) = &runtime {
        match rt.state(&mut caller)? {
            0 => {}
            2 => return resume(&mut caller, rt, module, name, result_types, results),
            s => {
                return Err(violation(
                    &mut caller,
                    format!("import {module}.{name} was called in state {s} (not 0 or 2)"),
                ))
            }
        }
    }
    let args = identify_all(&mut caller, args);
    let values = caller.data_mut().log_call(module, name, args, result_types);
    if let Some(rt) = &runtime {
        let data = caller.data_mut();
        if data.suspends(module, name) {
            data.pending = Some(Pending {
                module: module.to_string(),
                name: name.to_string(),
                results: values,
            });
            rt.call(&rt.start_unwind, &mut caller, true)?;
            for (r, ty) in results.iter_mut().zip(result_types) {
                *r = value::zero(ty);
            }
            return Ok(());
        }
    }
    fill_results(&mut caller, results, values, result_types);
    Ok(())
}

/// The rewind reached an import: it must be the one that suspended.
fn resume(
    caller: &mut Caller<'_, HostState>,
    rt: &Runtime,
    module: &str,
    name: &str,
    result_types: &[ValType],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let start = rt.buffer.data_start();
    match rt.buffer.header(&*caller) {
        Some((cur, _)) if cur == start => {}
        Some((cur, _)) => {
            return Err(violation(
                caller,
                format!(
                    "rewind reached {module}.{name} with cur = {cur:#x}, expected it back at \
                     the start of the buffer ({start:#x})"
                ),
            ))
        }
        None => return Err(violation(caller, "buffer header unreadable".into())),
    }
    rt.call(&rt.stop_rewind, &mut *caller, false)?;
    match caller.data_mut().pending.take() {
        Some(p) if p.module == module && p.name == name => {
            fill_results(&mut *caller, results, p.results, result_types);
            Ok(())
        }
        Some(p) => Err(violation(
            caller,
            format!(
                "rewind reached {module}.{name}, but the suspended call was {}.{}",
                p.module, p.name
            ),
        )),
        None => Err(violation(
            caller,
            format!("rewind reached {module}.{name}, but no import call had suspended"),
        )),
    }
}
