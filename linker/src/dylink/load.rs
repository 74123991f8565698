//! Loading: fetch a library and what it needs (depth first), instantiate
//! them in the shared memory and table, resolve their GOT entries, run their
//! relocations and constructors.
//!
//! It runs as a future that reaches the store the way async imports do (the
//! store is lent while it is polled), so that the guest's `dlopen` and the
//! host's share it, and constructors may suspend.

use std::sync::Arc;

use asyncify_abi::globals;
use wasmparser::{Parser, Payload};
use wasmtime::{
    Extern, ExternType, Global, GlobalType, ImportType, Memory, MemoryType, Module, Mutability,
    Ref, RefType, StoreContextMut, Table, TableType, Val, ValType,
};

use super::export_memory;
use super::group::{GotEntry, Group, Library};
use super::section::DylinkInfo;
use super::space::{alloc_table, Space, LOW_RESERVE};
use super::DylinkError;
use crate::linker::Provided;
use crate::runtime::{self, Runtime};
use crate::{AsyncCaller, Error};

/// What to load.
pub(crate) enum Root {
    /// The main module's bytes.
    Main(Vec<u8>),
    /// A library, by name.
    Library(String),
}

/// Which way a module not yet instrumented is instrumented.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Main,
    Library,
}

/// What a module's imports and exports say about its asyncify state.
#[derive(Clone, Copy, Default)]
struct Shape {
    instrumented: bool,
    imports_state: bool,
    exports_state: bool,
}

/// A module fetched and compiled, not yet instantiated.
struct Prepared {
    name: String,
    role: Role,
    module: Module,
    info: Option<DylinkInfo>,
    shape: Shape,
}

/// Loads `root` and what it needs; returns the index of `root`'s module.
pub(crate) async fn open<T: 'static>(
    group: Arc<Group<T>>,
    root: Root,
) -> Result<usize, DylinkError> {
    if let Root::Library(name) = &root {
        if let Some(index) = reopen(&group, name)? {
            return Ok(index);
        }
    }
    let caller = AsyncCaller::<T>::detached();
    let mut flight = InFlight {
        group: &group,
        names: Vec::new(),
    };
    let batch = fetch_all(&group, root, &mut flight).await?;
    let mut guard = BatchGuard {
        group: &group,
        indices: Vec::new(),
        committed: false,
    };
    let root_name = batch.last().map(|p| p.name.clone()).unwrap_or_default();
    caller
        .try_with(|mut store| instantiate_batch(&group, &mut store, batch, &mut guard.indices))
        .map_err(|e| DylinkError::Invalid {
            library: root_name.clone(),
            message: e.to_string(),
        })??;
    for &index in &guard.indices {
        run_constructors(&group, &caller, index).await?;
    }
    guard.committed = true;
    let mut st = group.state();
    let root = guard.indices.last().copied();
    match root.and_then(|i| Some((i, st.libs.get_mut(i)?))) {
        Some((index, lib)) => {
            lib.refs = lib.refs.saturating_add(1);
            Ok(index)
        }
        None => Err(DylinkError::Invalid {
            library: root_name,
            message: "nothing was loaded".into(),
        }),
    }
}

/// `dlopen` of a library already loaded: one more reference.
fn reopen<T: 'static>(group: &Group<T>, name: &str) -> Result<Option<usize>, DylinkError> {
    let mut st = group.state();
    if let Some(&index) = st.by_name.get(name) {
        if let Some(lib) = st.libs.get_mut(index) {
            lib.refs = lib.refs.saturating_add(1);
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// The names a `dlopen` in progress is loading, released when it ends.
struct InFlight<'g, T> {
    group: &'g Group<T>,
    names: Vec<String>,
}

impl<T: 'static> InFlight<'_, T> {
    fn add(&mut self, name: &str) -> Result<(), DylinkError> {
        if !self.group.state().in_flight.insert(name.to_string()) {
            return Err(DylinkError::InProgress {
                library: name.to_string(),
            });
        }
        self.names.push(name.to_string());
        Ok(())
    }
}

impl<T> Drop for InFlight<'_, T> {
    fn drop(&mut self) {
        let mut st = self.group.state();
        for name in &self.names {
            st.in_flight.remove(name);
        }
    }
}

/// Forgets the batch's libraries unless it completed (failed, or the
/// `dlopen` was cancelled).
struct BatchGuard<'g, T> {
    group: &'g Group<T>,
    indices: Vec<usize>,
    committed: bool,
}

impl<T> Drop for BatchGuard<'_, T> {
    fn drop(&mut self) {
        if !self.committed {
            self.group.forget(&self.indices);
        }
    }
}

/// Fetches `root` and every library it needs that is not loaded, in the
/// order to instantiate them (dependencies first, `root` last).
async fn fetch_all<T: 'static>(
    group: &Group<T>,
    root: Root,
    flight: &mut InFlight<'_, T>,
) -> Result<Vec<Prepared>, DylinkError> {
    let first = match root {
        Root::Main(bytes) => prepare(group, String::new(), bytes, Role::Main)?,
        Root::Library(name) => {
            flight.add(&name)?;
            fetch(group, name).await?
        }
    };
    let mut stack: Vec<(Prepared, usize)> = vec![(first, 0)];
    let mut order: Vec<Prepared> = Vec::new();
    loop {
        let next = match stack.last_mut() {
            None => break,
            Some((top, i)) => {
                let needed = top.info.as_ref().map_or(&[][..], |info| &info.needed[..]);
                let dep = needed.get(*i).cloned();
                *i += 1;
                dep
            }
        };
        let Some(dep) = next else {
            if let Some((done, _)) = stack.pop() {
                order.push(done);
            }
            continue;
        };
        if let Some(at) = stack.iter().position(|(p, _)| p.name == dep) {
            let mut chain: Vec<String> = stack[at..].iter().map(|(p, _)| p.name.clone()).collect();
            chain.push(dep);
            return Err(DylinkError::NeededCycle { chain });
        }
        if order.iter().any(|p| p.name == dep) || group.index_of(&dep).is_some() {
            continue;
        }
        let loaded = group.state().libs.len();
        if loaded + order.len() + stack.len() >= group.config.max_libraries {
            return Err(DylinkError::TooManyLibraries {
                limit: group.config.max_libraries,
            });
        }
        flight.add(&dep)?;
        let prepared = fetch(group, dep).await?;
        stack.push((prepared, 0));
    }
    Ok(order)
}

/// The bytes of library `name`, from the given libraries or the loader.
async fn fetch<T: 'static>(group: &Group<T>, name: String) -> Result<Prepared, DylinkError> {
    let bytes = if let Some(bytes) = group.config.libraries.get(&name) {
        bytes.to_vec()
    } else if let Some(loader) = &group.config.loader {
        loader(name.clone()).await.map_err(|e| DylinkError::Load {
            library: name.clone(),
            message: format!("{e:#}"),
        })?
    } else {
        return Err(DylinkError::Load {
            library: name,
            message: "it was not given with `DynamicLinker::library`, and there is no library \
                      loader (`DynamicLinker::loader`)"
                .into(),
        });
    };
    prepare(group, name, bytes, Role::Library)
}

/// Reads the module's dynamic-linking section, instruments it if asked,
/// compiles it.
fn prepare<T: 'static>(
    group: &Group<T>,
    name: String,
    bytes: Vec<u8>,
    role: Role,
) -> Result<Prepared, DylinkError> {
    let shown = if role == Role::Main { "<main>" } else { &name };
    let invalid = |message: String| DylinkError::Invalid {
        library: shown.to_string(),
        message,
    };
    let info = DylinkInfo::parse(&bytes).map_err(|e| match e {
        DylinkError::Malformed { message, .. } => DylinkError::Malformed {
            library: shown.to_string(),
            message,
        },
        other => other,
    })?;
    if role == Role::Library && info.is_none() {
        return Err(DylinkError::NotSideModule { library: name });
    }
    let mut shape = shape_of(&bytes).map_err(&invalid)?;
    let bytes = match &group.config.instrument {
        Some(options) if !shape.instrumented => {
            let mut options = (**options).clone();
            options.import_globals = role == Role::Library;
            options.export_globals = role == Role::Main;
            let out = asyncify_transform::instrument(&bytes, &options)
                .map_err(|e| invalid(format!("instrumenting it failed: {e}")))?;
            shape = shape_of(&out.wasm).map_err(&invalid)?;
            out.wasm
        }
        _ => bytes,
    };
    // Host functions (WASI's) find the caller's memory by its export.
    let bytes = export_memory::export_imported_memory(&bytes)
        .map_err(&invalid)?
        .unwrap_or(bytes);
    let module =
        Module::new(group.linker.engine(), &bytes).map_err(|e| invalid(format!("{e:#}")))?;
    if runtime::instrumented(&module) == Some(true) {
        return Err(DylinkError::Unsupported {
            library: shown.to_string(),
            reason: "it is instrumented for a 64-bit memory; the loader links wasm32 modules"
                .into(),
        });
    }
    Ok(Prepared {
        name,
        role,
        module,
        info,
        shape,
    })
}

/// Reads the asyncify [`Shape`] from the module's imports and exports.
fn shape_of(bytes: &[u8]) -> Result<Shape, String> {
    let mut shape = Shape::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| e.to_string())?;
                    if import.module == globals::IMPORT_MODULE && import.name == globals::STATE {
                        shape.imports_state = true;
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    if export.name == asyncify_abi::RuntimeFunction::GetState.export_name() {
                        shape.instrumented = true;
                    }
                    if export.name == globals::STATE {
                        shape.exports_state = true;
                    }
                }
            }
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    Ok(shape)
}

/// Instantiates the batch in order, then resolves its GOT entries. The
/// indices of the modules registered so far are in `added`, also on failure.
fn instantiate_batch<T: 'static>(
    group: &Arc<Group<T>>,
    store: &mut StoreContextMut<'_, T>,
    batch: Vec<Prepared>,
    added: &mut Vec<usize>,
) -> Result<(), DylinkError> {
    let mut got = Vec::new();
    for prepared in batch {
        let index = instantiate_one(group, store, prepared, &mut got)?;
        added.push(index);
    }
    group.resolve_got(store, &got)
}

/// Where one module being instantiated goes, for its imports.
struct Member<'p> {
    prepared: &'p Prepared,
    memory_base: u32,
    table_base: u32,
}

impl Member<'_> {
    fn name(&self) -> String {
        match self.prepared.role {
            Role::Main => "<main>".to_string(),
            Role::Library => self.prepared.name.clone(),
        }
    }
}

fn instantiate_one<T: 'static>(
    group: &Arc<Group<T>>,
    store: &mut StoreContextMut<'_, T>,
    prepared: Prepared,
    got: &mut Vec<GotEntry>,
) -> Result<usize, DylinkError> {
    let shape = prepared.shape;
    if shape.instrumented && !shape.imports_state && prepared.role == Role::Library {
        // Checked again with the instance (`member_runtime`); here it comes
        // before any other complaint about the module.
        return Err(own_state(&prepared.name));
    }
    let (memory_base, table_base) = match &prepared.info {
        Some(info) => {
            if prepared.role == Role::Main {
                make_memory_and_table(group, store, &prepared.module)?;
            }
            place(group, store, &prepared.name, info)?
        }
        None => (0, 0),
    };
    let member = Member {
        prepared: &prepared,
        memory_base,
        table_base,
    };
    let library = member.name();
    let mut provide = |store: &mut StoreContextMut<'_, T>, import: &ImportType<'_>| {
        provide(group, store, &member, import, got).map_err(wasmtime::Error::from)
    };
    let mut runtime = |store: &mut StoreContextMut<'_, T>, inner, instrumented| {
        member_runtime(group, store, &member, inner, instrumented).map_err(wasmtime::Error::from)
    };
    let instance = group
        .linker
        .instantiate_member(store, &prepared.module, &mut provide, &mut runtime)
        .map_err(|e| instantiation_error(&library, e))?;
    if prepared.role == Role::Main && prepared.info.is_none() {
        adopt_plain_main(group, store, &instance)?;
    }
    let mut st = group.state();
    let needed = prepared
        .info
        .as_ref()
        .map(|info| {
            info.needed
                .iter()
                .filter_map(|n| st.by_name.get(n).copied())
                .collect()
        })
        .unwrap_or_default();
    let index = st.libs.len();
    st.libs.push(Library {
        name: prepared.name.clone(),
        instance,
        memory_base,
        table_base,
        pic: prepared.info.is_some(),
        info: prepared.info.clone().unwrap_or_default(),
        needed,
        refs: 0,
        live: true,
    });
    match prepared.role {
        Role::Main => st.main = Some(index),
        Role::Library => {
            st.by_name.insert(prepared.name.clone(), index);
        }
    }
    Ok(index)
}

/// The loader's error for a failed instantiation.
fn instantiation_error(library: &str, e: wasmtime::Error) -> DylinkError {
    if let Some(e) = e.downcast_ref::<DylinkError>() {
        return e.clone();
    }
    if let Some(Error::UnknownImports(list)) = e.downcast_ref::<Error>() {
        return DylinkError::MissingSymbols {
            library: library.to_string(),
            symbols: list
                .iter()
                .map(|i| format!("{}::{}", i.module, i.name))
                .collect(),
        };
    }
    DylinkError::Invalid {
        library: library.to_string(),
        message: format!("{e:#}"),
    }
}

/// Makes the shared memory and table for a main module that imports them.
fn make_memory_and_table<T: 'static>(
    group: &Group<T>,
    store: &mut StoreContextMut<'_, T>,
    module: &Module,
) -> Result<(), DylinkError> {
    let unsupported = |reason: String| DylinkError::Unsupported {
        library: "<main>".into(),
        reason,
    };
    let mut memory_ty = None;
    let mut table_ty = None;
    for import in module.imports() {
        match (import.module(), import.name(), import.ty()) {
            ("env", "memory", ExternType::Memory(ty)) => memory_ty = Some(ty),
            ("env", "__indirect_function_table", ExternType::Table(ty)) => table_ty = Some(ty),
            _ => {}
        }
    }
    let Some(memory_ty) = memory_ty else {
        return Err(unsupported(
            "it has a `dylink.0` section but does not import `env.memory`".into(),
        ));
    };
    if memory_ty.is_64() || memory_ty.is_shared() {
        return Err(unsupported("its memory is 64-bit or shared".into()));
    }
    let minimum = u32::try_from(memory_ty.minimum().max(1))
        .map_err(|_| unsupported("its memory minimum is too large".into()))?;
    let maximum = memory_ty.maximum().and_then(|m| u32::try_from(m).ok());
    let memory = Memory::new(&mut *store, MemoryType::new(minimum, maximum))
        .map_err(|e| unsupported(format!("cannot make its memory: {e}")))?;
    let (table_min, table_max) = match &table_ty {
        Some(ty) => {
            if !RefType::eq(ty.element(), &RefType::FUNCREF) {
                return Err(unsupported("its table is not a funcref table".into()));
            }
            let min = u32::try_from(ty.minimum()).unwrap_or(u32::MAX).max(1);
            (min, ty.maximum().and_then(|m| u32::try_from(m).ok()))
        }
        None => (1, None),
    };
    let table = Table::new(
        &mut *store,
        TableType::new(RefType::FUNCREF, table_min, table_max),
        Ref::Func(None),
    )
    .map_err(|e| unsupported(format!("cannot make its table: {e}")))?;
    let end = memory.data_size(&*store) as u64;
    let mut st = group.state();
    st.memory = Some(memory);
    st.table = Some(table);
    st.space = Space::owned(LOW_RESERVE, end);
    Ok(())
}

/// Takes the memory, table and stack pointer a plain main module exports.
fn adopt_plain_main<T: 'static>(
    group: &Group<T>,
    store: &mut StoreContextMut<'_, T>,
    instance: &crate::Instance,
) -> Result<(), DylinkError> {
    let inner = instance.inner;
    let memory = inner
        .get_memory(&mut *store, "memory")
        .or_else(|| inner.exports(&mut *store).find_map(|e| e.into_memory()));
    let table = match inner.get_table(&mut *store, "__indirect_function_table") {
        Some(t) => Some(t),
        None => Table::new(
            &mut *store,
            TableType::new(RefType::FUNCREF, 1, None),
            Ref::Func(None),
        )
        .ok(),
    };
    let stack_pointer = inner
        .get_global(&mut *store, "__stack_pointer")
        .filter(|g| {
            let ty = g.ty(&*store);
            ty.mutability() == Mutability::Var && matches!(ty.content(), ValType::I32)
        });
    let mut st = group.state();
    st.memory = memory;
    st.table = table;
    if st.stack_pointer.is_none() {
        st.stack_pointer = stack_pointer;
    }
    Ok(())
}

/// Gives the module its regions of the shared memory and table.
fn place<T: 'static>(
    group: &Group<T>,
    store: &mut StoreContextMut<'_, T>,
    name: &str,
    info: &DylinkInfo,
) -> Result<(u32, u32), DylinkError> {
    let no_room = |reason: String| DylinkError::NoRoom {
        library: name.to_string(),
        reason,
    };
    let mut st = group.state();
    let (Some(memory), Some(table)) = (st.memory, st.table) else {
        return Err(no_room(
            "the main module shares no memory (export it as `memory`, or import `env.memory`)"
                .into(),
        ));
    };
    let memory_base = st
        .space
        .alloc(
            memory,
            &mut *store,
            u64::from(info.memory_size),
            info.memory_align,
        )
        .map_err(&no_room)?;
    let table_base = alloc_table(
        table,
        &mut *store,
        u64::from(info.table_size),
        info.table_align,
    )
    .map_err(&no_room)?;
    Ok((memory_base, table_base))
}

/// What one import of a module being loaded gets.
fn provide<T: 'static>(
    group: &Group<T>,
    store: &mut StoreContextMut<'_, T>,
    member: &Member<'_>,
    import: &ImportType<'_>,
    got: &mut Vec<GotEntry>,
) -> Result<Provided<T>, DylinkError> {
    let (m, n, ty) = (import.module(), import.name(), import.ty());
    let library = member.name();
    let pic = member.prepared.info.is_some();
    let invalid = |e: wasmtime::Error| DylinkError::Invalid {
        library: library.clone(),
        message: e.to_string(),
    };
    let constant = |store: &mut StoreContextMut<'_, T>, value: u32| {
        Global::new(
            &mut *store,
            GlobalType::new(ValType::I32, Mutability::Const),
            Val::I32(value as i32),
        )
        .map(|g| Provided::Extern(Extern::Global(g)))
        .map_err(invalid)
    };
    let dl = group.dl.get();
    match (m, n, &ty) {
        ("env", "memory", ExternType::Memory(_)) if pic => {
            if let Some(memory) = group.state().memory {
                return Ok(Provided::Extern(Extern::Memory(memory)));
            }
        }
        ("env", "__indirect_function_table", ExternType::Table(_)) if pic => {
            if let Some(table) = group.state().table {
                return Ok(Provided::Extern(Extern::Table(table)));
            }
        }
        ("env", "__memory_base", ExternType::Global(_)) if pic => {
            return constant(store, member.memory_base)
        }
        ("env", "__table_base", ExternType::Global(_)) if pic => {
            return constant(store, member.table_base)
        }
        ("env", "__stack_pointer", ExternType::Global(_)) if pic => {
            let sp = group.stack_pointer(store, &library)?;
            return Ok(Provided::Extern(Extern::Global(sp)));
        }
        (globals::IMPORT_MODULE, name, ExternType::Global(_))
            if name == globals::STATE || name == globals::DATA =>
        {
            let g = group.asyncify_global(store, &library, name == globals::STATE)?;
            return Ok(Provided::Extern(Extern::Global(g)));
        }
        ("env", name, ExternType::Func(_)) if dl.is_some_and(|dl| dl.serves(name)) => {
            if let Some(dl) = dl {
                return Ok(dl.provide(name, member.prepared.shape.instrumented));
            }
        }
        ("GOT.mem" | "GOT.func", name, ExternType::Global(_)) => {
            let global = Global::new(
                &mut *store,
                GlobalType::new(ValType::I32, Mutability::Var),
                Val::I32(0),
            )
            .map_err(invalid)?;
            let weak = member
                .prepared
                .info
                .as_ref()
                .is_some_and(|info| info.is_weak(name));
            got.push(GotEntry {
                global,
                func: m == "GOT.func",
                name: name.to_string(),
                importer: library.clone(),
                weak,
            });
            return Ok(Provided::Extern(Extern::Global(global)));
        }
        ("env", name, ExternType::Func(fty)) => {
            if let Some(f) = group.export_func(store, name) {
                if !f.ty(&*store).matches(fty) {
                    return Err(DylinkError::SymbolMismatch {
                        library,
                        symbol: name.to_string(),
                        reason: format!(
                            "with type {fty}, and it is defined with type {}",
                            f.ty(&*store)
                        ),
                    });
                }
                return Ok(Provided::Extern(Extern::Func(f)));
            }
        }
        _ => {}
    }
    if group.linker.defines(m, n) {
        return Ok(Provided::Host);
    }
    let weak = member
        .prepared
        .info
        .as_ref()
        .is_some_and(|info| info.is_weak(n));
    match (&ty, weak) {
        (ExternType::Func(fty), true) => {
            let message = format!("the weak undefined function `{m}::{n}` was called");
            let f = wasmtime::Func::new(&mut *store, fty.clone(), move |_, _, _| {
                Err(wasmtime::Error::msg(message.clone()))
            });
            Ok(Provided::Extern(Extern::Func(f)))
        }
        (ExternType::Global(gty), true) if matches!(gty.content(), ValType::I32) => {
            let g = Global::new(&mut *store, gty.clone(), Val::I32(0)).map_err(invalid)?;
            Ok(Provided::Extern(Extern::Global(g)))
        }
        _ => Ok(Provided::Missing),
    }
}

/// The group's runtime for an instrumented module, after checking that it
/// shares the group's asyncify state.
fn member_runtime<T: 'static>(
    group: &Group<T>,
    store: &mut StoreContextMut<'_, T>,
    member: &Member<'_>,
    inner: wasmtime::Instance,
    instrumented: bool,
) -> Result<Option<Arc<Runtime>>, DylinkError> {
    if !instrumented {
        return Ok(None);
    }
    let shape = member.prepared.shape;
    let mut st = group.state();
    if !shape.imports_state {
        let own = member.prepared.role == Role::Main && st.runtime.is_none();
        if !own {
            return Err(own_state(&member.name()));
        }
        if shape.exports_state {
            let state = inner.get_global(&mut *store, globals::STATE);
            let data = inner.get_global(&mut *store, globals::DATA);
            if let (Some(state), Some(data)) = (state, data) {
                st.asyncify = Some((state, data));
            }
        }
    }
    if let Some(rt) = &st.runtime {
        return Ok(Some(rt.clone()));
    }
    let memory = st.memory.map(Extern::Memory);
    let rt = Runtime::new(
        &mut *store,
        inner,
        &member.prepared.module,
        false,
        memory,
        group.linker.buffer_config(),
    )
    .map_err(|e| DylinkError::Invalid {
        library: member.name(),
        message: format!("{e:#}"),
    })?;
    let rt = Arc::new(rt);
    st.runtime = Some(rt.clone());
    Ok(Some(rt))
}

/// The error for a side module instrumented with a state of its own.
fn own_state(library: &str) -> DylinkError {
    DylinkError::StateNotShared {
        library: library.to_string(),
        reason: "it is instrumented with its own asyncify state; instrument side modules with \
                 `asyncify-import-globals` (`asyncify instrument --import-globals`)"
            .into(),
    }
}

/// Runs the module's data relocations, then its constructors
/// (`_initialize` if it exports one, else `__wasm_call_ctors`; a plain main
/// module only `_initialize`), as calls that may suspend.
async fn run_constructors<T: 'static>(
    group: &Group<T>,
    caller: &AsyncCaller<T>,
    index: usize,
) -> Result<(), DylinkError> {
    let Some((name, instance, pic)) = group.state().libs.get(index).map(|l| {
        (
            if l.name.is_empty() {
                "<main>".to_string()
            } else {
                l.name.clone()
            },
            l.instance.clone(),
            l.pic,
        )
    }) else {
        return Ok(());
    };
    let failed = |message: String| DylinkError::Constructor {
        library: name.clone(),
        message,
    };
    let exports = [
        "__wasm_apply_data_relocs",
        "_initialize",
        "__wasm_call_ctors",
    ];
    let funcs = caller
        .try_with(|mut store| exports.map(|export| instance.get_func(&mut store, export)))
        .map_err(|e| failed(e.to_string()))?;
    let [relocs, initialize, ctors] = funcs;
    let ctors = match (initialize, pic) {
        (Some(init), _) => Some(init),
        (None, true) => ctors,
        (None, false) => None,
    };
    for func in [relocs.filter(|_| pic), ctors].into_iter().flatten() {
        caller
            .call_async(&func, Vec::new())
            .await
            .map_err(|e| failed(format!("{e:#}")))?;
    }
    Ok(())
}
