//! The state of one dynamic-link group: the shared memory, table and
//! globals, the loaded modules, and symbol resolution.
//!
//! The state is behind one mutex, never held across a wasm call (a guest's
//! start function or constructor may call `dlsym`, which takes it).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use asyncify_abi::{globals, RuntimeFunction};
use wasmtime::{
    AsContextMut, Extern, Global, GlobalType, Memory, Mutability, Ref, StoreContextMut, Table, Val,
    ValType,
};

use super::guest::DlFuncs;
use super::section::DylinkInfo;
use super::space::Space;
use super::{DylinkError, LibraryInfo, LoaderFn, Symbol};
use crate::runtime::Runtime;
use crate::{Func, Instance, Linker};

/// The [`DynamicLinker`](super::DynamicLinker)'s settings, shared by its groups.
#[derive(Clone)]
pub(crate) struct Config {
    pub loader: Option<Arc<LoaderFn>>,
    pub libraries: HashMap<String, Arc<Vec<u8>>>,
    pub instrument: Option<Arc<asyncify_transform::Options>>,
    pub stack_size: u32,
    pub max_path_len: usize,
    pub max_libraries: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            loader: None,
            libraries: HashMap::new(),
            instrument: None,
            stack_size: 1 << 20,
            max_path_len: 4096,
            max_libraries: 1024,
        }
    }
}

/// One loaded module.
pub(crate) struct Library {
    pub name: String,
    pub instance: Instance,
    pub memory_base: u32,
    pub table_base: u32,
    /// Whether it has a `dylink.0` section (its data exports are relative
    /// to its `memory_base`).
    pub pic: bool,
    pub info: DylinkInfo,
    /// The libraries it needs, by index.
    pub needed: Vec<usize>,
    /// Open `dlopen` references.
    pub refs: u32,
    /// False once forgotten (its batch failed): not found by name or symbol.
    pub live: bool,
}

/// What changes as modules load.
#[derive(Default)]
pub(crate) struct GroupState {
    pub memory: Option<Memory>,
    pub table: Option<Table>,
    pub stack_pointer: Option<Global>,
    /// The asyncify state and data globals every instrumented member shares.
    pub asyncify: Option<(Global, Global)>,
    /// The group's one asyncify runtime, from its first instrumented member.
    pub runtime: Option<Arc<Runtime>>,
    pub space: Space,
    pub libs: Vec<Library>,
    pub by_name: HashMap<String, usize>,
    pub main: Option<usize>,
    /// Table slots given to functions, by (module index, export name);
    /// `usize::MAX` for the host's functions.
    pub slots: HashMap<(usize, String), u32>,
    /// Libraries some `dlopen` in progress is loading.
    pub in_flight: HashSet<String>,
    /// The message `dlerror` returns next.
    pub error: Option<String>,
    /// Where `dlerror` writes its messages.
    pub error_buf: Option<u32>,
}

/// One `GOT.mem` or `GOT.func` entry of a module being loaded.
pub(crate) struct GotEntry {
    pub global: Global,
    pub func: bool,
    pub name: String,
    pub importer: String,
    pub weak: bool,
}

/// A main module and its libraries.
pub(crate) struct Group<T> {
    pub linker: Linker<T>,
    pub config: Config,
    state: Mutex<GroupState>,
    pub dl: OnceLock<DlFuncs<T>>,
}

/// A symbol found in a module.
enum Found {
    Data(u32),
    Func(usize, wasmtime::Func),
}

impl<T> Group<T> {
    pub fn state(&self) -> MutexGuard<'_, GroupState> {
        // Every update keeps the state consistent step by step, so a panic
        // in a host function while it was held leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the libraries of a batch that failed: no longer found by name
    /// or symbol (their instances stay in the store).
    pub fn forget(&self, indices: &[usize]) {
        let mut st = self.state();
        for &i in indices {
            if let Some(lib) = st.libs.get_mut(i) {
                lib.live = false;
                let name = lib.name.clone();
                if st.by_name.get(&name) == Some(&i) {
                    st.by_name.remove(&name);
                }
            }
            if st.main == Some(i) {
                st.main = None;
            }
        }
    }
}

impl<T: 'static> Group<T> {
    pub fn new(
        mut store: impl AsContextMut<Data = T>,
        linker: Linker<T>,
        config: Config,
    ) -> Arc<Group<T>> {
        let group = Arc::new(Group {
            linker,
            config,
            state: Mutex::new(GroupState::default()),
            dl: OnceLock::new(),
        });
        let dl = DlFuncs::new(&mut store, Arc::downgrade(&group));
        let _ = group.dl.set(dl);
        group
    }

    /// Index of the live library loaded as `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.state().by_name.get(name).copied()
    }

    pub fn instance(&self, index: usize) -> Option<Instance> {
        let st = self.state();
        st.libs
            .get(index)
            .filter(|l| l.live)
            .map(|l| l.instance.clone())
    }

    pub fn info(&self, index: usize) -> Option<LibraryInfo> {
        let st = self.state();
        st.libs.get(index).filter(|l| l.live).map(|l| LibraryInfo {
            name: l.name.clone(),
            memory_base: l.memory_base,
            table_base: l.table_base,
            open_count: l.refs,
        })
    }

    pub fn last_error(&self) -> Option<String> {
        self.state().error.clone()
    }

    pub fn set_error(&self, message: String) {
        self.state().error = Some(message);
    }

    /// Whether `index` is a handle the guest may use: the main module, or a
    /// library some `dlopen` holds open.
    fn check_open(st: &GroupState, index: usize) -> Result<(), DylinkError> {
        match st.libs.get(index) {
            Some(l) if l.live && (l.refs > 0 || st.main == Some(index)) => Ok(()),
            _ => Err(DylinkError::InvalidHandle {
                handle: u32::try_from(index).map_or(u32::MAX, |i| i.saturating_add(1)),
            }),
        }
    }

    /// Modules to search: from `scope` and what it needs, breadth first;
    /// or every live module, the main first.
    fn search_order(st: &GroupState, scope: Option<usize>) -> Vec<usize> {
        let Some(start) = scope else {
            let rest = (0..st.libs.len()).filter(|&i| Some(i) != st.main);
            return st.main.into_iter().chain(rest).collect();
        };
        let mut order = vec![start];
        let mut next = 0;
        while let Some(&i) = order.get(next) {
            next += 1;
            if let Some(lib) = st.libs.get(i) {
                for &dep in &lib.needed {
                    if !order.contains(&dep) {
                        order.push(dep);
                    }
                }
            }
        }
        order
    }

    /// The first definition of `name` among `order`.
    fn lookup(
        st: &GroupState,
        store: &mut StoreContextMut<'_, T>,
        order: &[usize],
        name: &str,
    ) -> Option<Found> {
        if RuntimeFunction::from_export_name(name).is_some()
            || name == globals::STATE
            || name == globals::DATA
        {
            // The asyncify runtime of a module is not a symbol of the program.
            return None;
        }
        for &i in order {
            let Some(lib) = st.libs.get(i).filter(|l| l.live) else {
                continue;
            };
            if lib.info.tls_exports.iter().any(|n| n == name) {
                continue;
            }
            match lib.instance.inner.get_export(&mut *store, name) {
                Some(Extern::Func(f)) => return Some(Found::Func(i, f)),
                Some(Extern::Global(g)) => {
                    let Val::I32(value) = g.get(&mut *store) else {
                        continue;
                    };
                    let absolute = !lib.pic || lib.info.absolute_exports.iter().any(|n| n == name);
                    let base = if absolute { 0 } else { lib.memory_base };
                    return Some(Found::Data((value as u32).wrapping_add(base)));
                }
                _ => {}
            }
        }
        None
    }

    /// The table slot of function `name` of module `owner`, given one the
    /// first time (so that one function has one address).
    fn func_slot(
        st: &mut GroupState,
        store: &mut StoreContextMut<'_, T>,
        owner: usize,
        name: &str,
        func: wasmtime::Func,
    ) -> Result<u32, DylinkError> {
        let key = (owner, name.to_string());
        if let Some(&slot) = st.slots.get(&key) {
            return Ok(slot);
        }
        let no_room = |reason: String| DylinkError::NoRoom {
            library: st
                .libs
                .get(owner)
                .map_or("<host>".into(), |l| l.name.clone()),
            reason,
        };
        let Some(table) = st.table else {
            return Err(no_room("the main module shares no table".into()));
        };
        let slot = table
            .grow(&mut *store, 1, Ref::Func(Some(func)))
            .map_err(|e| no_room(format!("the table cannot grow: {e}")))?;
        let slot = u32::try_from(slot).map_err(|_| no_room("the table is full".into()))?;
        st.slots.insert(key, slot);
        Ok(slot)
    }

    /// The guest's `dlsym`, and the host's.
    pub fn dlsym(
        &self,
        store: &mut StoreContextMut<'_, T>,
        scope: Option<usize>,
        name: &str,
    ) -> Result<Symbol, DylinkError> {
        let mut st = self.state();
        if let Some(index) = scope {
            Self::check_open(&st, index)?;
        }
        let order = Self::search_order(&st, scope);
        match Self::lookup(&st, store, &order, name) {
            Some(Found::Data(address)) => Ok(Symbol::Data(address)),
            Some(Found::Func(owner, f)) => {
                Self::func_slot(&mut st, store, owner, name, f).map(Symbol::Function)
            }
            None => Err(DylinkError::UndefinedSymbol {
                symbol: name.to_string(),
                library: scope.and_then(|i| st.libs.get(i)).map(|l| l.name.clone()),
            }),
        }
    }

    pub fn dlclose(&self, index: usize) -> Result<(), DylinkError> {
        let mut st = self.state();
        let is_main = st.main == Some(index);
        match st.libs.get_mut(index) {
            Some(l) if l.live && is_main => Ok(()),
            Some(l) if l.live && l.refs > 0 => {
                l.refs -= 1;
                Ok(())
            }
            _ => Err(DylinkError::InvalidHandle {
                handle: u32::try_from(index).map_or(u32::MAX, |i| i.saturating_add(1)),
            }),
        }
    }

    /// An exported function of module `scope` (or of any), to call as a future.
    pub fn get_func(
        &self,
        store: &mut StoreContextMut<'_, T>,
        scope: Option<usize>,
        name: &str,
    ) -> Option<Func> {
        let st = self.state();
        for i in Self::search_order(&st, scope) {
            let Some(lib) = st.libs.get(i).filter(|l| l.live) else {
                continue;
            };
            if let Some(f) = lib.instance.get_func(&mut *store, name) {
                return Some(f);
            }
        }
        None
    }

    /// A function exported by a loaded module, for a function import.
    pub fn export_func(
        &self,
        store: &mut StoreContextMut<'_, T>,
        name: &str,
    ) -> Option<wasmtime::Func> {
        let st = self.state();
        let order = Self::search_order(&st, None);
        match Self::lookup(&st, store, &order, name) {
            Some(Found::Func(_, f)) => Some(f),
            _ => None,
        }
    }

    /// Gives every entry its value: the address of its data symbol, or a
    /// table slot of its function; from loaded modules first, then the
    /// host's definitions. Fails naming every undefined strong symbol of the
    /// first importer that has one.
    pub fn resolve_got(
        &self,
        store: &mut StoreContextMut<'_, T>,
        entries: &[GotEntry],
    ) -> Result<(), DylinkError> {
        let mut missing: Vec<(String, String)> = Vec::new();
        for entry in entries {
            let kind = if entry.func { "GOT.func" } else { "GOT.mem" };
            let value = match self.got_value(store, entry)? {
                Some(value) => value,
                None if entry.weak => 0,
                None => {
                    missing.push((entry.importer.clone(), format!("{kind}::{}", entry.name)));
                    continue;
                }
            };
            entry
                .global
                .set(&mut *store, Val::I32(value as i32))
                .map_err(|e| DylinkError::Invalid {
                    library: entry.importer.clone(),
                    message: format!("cannot set its `{kind}::{}` entry: {e}", entry.name),
                })?;
        }
        if let Some((library, _)) = missing.first() {
            let library = library.clone();
            let symbols = missing
                .into_iter()
                .filter(|(l, _)| *l == library)
                .map(|(_, s)| s)
                .collect();
            return Err(DylinkError::MissingSymbols { library, symbols });
        }
        Ok(())
    }

    fn got_value(
        &self,
        store: &mut StoreContextMut<'_, T>,
        entry: &GotEntry,
    ) -> Result<Option<u32>, DylinkError> {
        let mismatch = |reason: &str| DylinkError::SymbolMismatch {
            library: entry.importer.clone(),
            symbol: entry.name.clone(),
            reason: reason.to_string(),
        };
        let found = {
            let st = self.state();
            let order = Self::search_order(&st, None);
            Self::lookup(&st, store, &order, &entry.name)
        };
        match (found, entry.func) {
            (Some(Found::Data(address)), false) => return Ok(Some(address)),
            (Some(Found::Func(owner, f)), true) => {
                let mut st = self.state();
                return Self::func_slot(&mut st, store, owner, &entry.name, f).map(Some);
            }
            (Some(Found::Data(_)), true) => {
                return Err(mismatch("as a function pointer, and it is data"))
            }
            (Some(Found::Func(..)), false) => {
                return Err(mismatch("as data, and it is a function"))
            }
            (None, _) => {}
        }
        // The host's definitions: functions get a slot, i32 globals are
        // absolute addresses.
        let main = self.state().main;
        let main = main.and_then(|i| self.instance(i));
        let host = match &main {
            Some(main) => self
                .linker
                .host_extern(&mut *store, "env", &entry.name, main),
            None => None,
        };
        match (host, entry.func) {
            (Some(Ok(Extern::Func(f))), true) => {
                let mut st = self.state();
                Self::func_slot(&mut st, store, usize::MAX, &entry.name, f).map(Some)
            }
            (Some(Ok(Extern::Global(g))), false) => match g.get(&mut *store) {
                Val::I32(v) => Ok(Some(v as u32)),
                _ => Err(mismatch(
                    "as data, and the host defines a global that is not an i32",
                )),
            },
            (Some(Ok(_)), _) => Err(mismatch("the host defines it as another kind of item")),
            (Some(Err(e)), _) => Err(mismatch(&format!("the host's definition fails: {e}"))),
            (None, _) => Ok(None),
        }
    }

    /// The shared stack pointer, making it (with a stack of its own) the
    /// first time if the main module has none.
    pub fn stack_pointer(
        &self,
        store: &mut StoreContextMut<'_, T>,
        library: &str,
    ) -> Result<Global, DylinkError> {
        let mut st = self.state();
        if let Some(sp) = st.stack_pointer {
            return Ok(sp);
        }
        let no_room = |reason: String| DylinkError::NoRoom {
            library: library.to_string(),
            reason,
        };
        let Some(memory) = st.memory else {
            return Err(no_room("there is no shared memory for a stack".into()));
        };
        let size = u64::from(self.config.stack_size);
        let base = st
            .space
            .alloc(memory, &mut *store, size, 4)
            .map_err(|e| no_room(format!("no room for its stack: {e}")))?;
        let top = u64::from(base) + size;
        let top = u32::try_from(top).map_err(|_| no_room("the stack is beyond 32 bits".into()))?;
        let sp = Global::new(
            &mut *store,
            GlobalType::new(ValType::I32, Mutability::Var),
            Val::I32(top as i32),
        )
        .map_err(|e| no_room(e.to_string()))?;
        st.stack_pointer = Some(sp);
        Ok(sp)
    }

    /// The shared asyncify global (`state` or else `data`) for a module that
    /// imports it.
    pub fn asyncify_global(
        &self,
        store: &mut StoreContextMut<'_, T>,
        library: &str,
        state: bool,
    ) -> Result<Global, DylinkError> {
        let mut st = self.state();
        let pick = |(s, d): (Global, Global)| if state { s } else { d };
        if let Some(pair) = st.asyncify {
            return Ok(pick(pair));
        }
        if st.runtime.is_some() {
            return Err(DylinkError::StateNotShared {
                library: library.to_string(),
                reason: "the main module keeps its asyncify state to itself; instrument it with \
                         `asyncify-export-globals` (`asyncify instrument --export-globals`)"
                    .into(),
            });
        }
        let mut make = || {
            Global::new(
                &mut *store,
                GlobalType::new(ValType::I32, Mutability::Var),
                Val::I32(0),
            )
            .map_err(|e| DylinkError::Invalid {
                library: library.to_string(),
                message: e.to_string(),
            })
        };
        let pair = (make()?, make()?);
        st.asyncify = Some(pair);
        Ok(pick(pair))
    }
}
