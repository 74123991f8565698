//! The imports a test module gets, whichever driver runs it: globals,
//! memories and tables are created zeroed and remembered in the store's
//! [`HostState`] (so the outcome can show them); functions are host functions
//! that log their calls and return deterministic results, defined the way
//! the driver's linker wants (see [`ImportLinker`]).

use wasmtime::{
    Extern, ExternType, FuncType, Global, Memory, Module, Ref, SharedMemory, Store, Table,
};

use crate::host::{HostState, MemHandle, RUNTIME_MODULE};
use crate::value;

/// A linker a driver defines a test module's imports in and then
/// instantiates the module with: wasmtime's for the direct driver,
/// `asyncify-linker`'s for the linked one.
pub(crate) trait ImportLinker {
    /// What instantiating gives.
    type Instance;

    /// Defines import `module.name` as `item`, which the driver created in
    /// `store`.
    fn define_item(
        &mut self,
        store: &mut Store<HostState>,
        module: &str,
        name: &str,
        item: Extern,
    ) -> wasmtime::Result<()>;

    /// Defines function import `module.name` of type `ty` as a host function
    /// that logs its calls, returns deterministic results and, on an
    /// instrumented module, suspends the calls the store's schedule picks.
    /// An import from [`RUNTIME_MODULE`] comes only from an original
    /// module, which only the direct driver runs: there it is a stub (the
    /// state is always 0 and nothing happens).
    fn define_host_func(
        &mut self,
        store: &Store<HostState>,
        module: &str,
        name: &str,
        ty: FuncType,
    ) -> wasmtime::Result<()>;

    /// Instantiates `module` in `store` with the imports defined so far.
    fn instantiate_module(
        &self,
        store: &mut Store<HostState>,
        module: &Module,
    ) -> wasmtime::Result<Self::Instance>;
}

/// Defines every import of `module` in `linker`. Function imports from
/// [`RUNTIME_MODULE`] are an error for an `instrumented` module, which must
/// not import them any more (the original gets stubs, see
/// [`ImportLinker::define_host_func`]).
pub(crate) fn define_imports(
    linker: &mut impl ImportLinker,
    store: &mut Store<HostState>,
    module: &Module,
    instrumented: bool,
) -> Result<(), String> {
    for import in module.imports() {
        let (m, n) = (import.module(), import.name());
        let ty = import.ty();
        if instrumented
            && m == RUNTIME_MODULE
            && !crate::host::is_yield_import(m, n)
            && matches!(ty, ExternType::Func(_))
        {
            return Err(format!(
                "the instrumented module still imports {m}.{n}: calls to the runtime \
                 functions should have been replaced"
            ));
        }
        define_import(linker, store, m, n, ty).map_err(|e| format!("import {m}.{n}: {e}"))?;
    }
    Ok(())
}

/// Defines one import, `module.name` of type `ty`.
fn define_import(
    linker: &mut impl ImportLinker,
    store: &mut Store<HostState>,
    module: &str,
    name: &str,
    ty: ExternType,
) -> wasmtime::Result<()> {
    let item: Extern = match ty {
        ExternType::Func(ft) => return linker.define_host_func(store, module, name, ft),
        ExternType::Global(gt) => {
            let global = Global::new(&mut *store, gt.clone(), value::zero(gt.content()))?;
            store
                .data_mut()
                .imported_globals
                .push((format!("{module}.{name}"), global));
            global.into()
        }
        ExternType::Memory(mt) => {
            let memory = if mt.is_shared() {
                MemHandle::Shared(SharedMemory::new(store.engine(), mt)?)
            } else {
                MemHandle::Plain(Memory::new(&mut *store, mt)?)
            };
            store
                .data_mut()
                .imported_memories
                .push((format!("{module}.{name}"), memory.clone()));
            memory.into()
        }
        ExternType::Table(tt) => {
            let init = Ref::null(tt.element().heap_type());
            Table::new(&mut *store, tt, init)?.into()
        }
        other => {
            return Err(wasmtime::Error::msg(format!(
                "the driver cannot provide {other:?}"
            )))
        }
    };
    linker.define_item(store, module, name, item)
}
