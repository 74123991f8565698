//! Running an instrumented module through `asyncify-linker`, the way an
//! embedder does: every import that may suspend is an async import whose
//! future is pending (once) on the calls the schedule picks, the linker
//! unwinds and rewinds, and the export calls are futures driven by
//! `futures::executor::block_on`. The [`Outcome`] compares with
//! [`run`](crate::run)'s outcome of the original.
//!
//! The set-up ([`start`]), the imports other than functions
//! ([`define_imports`](crate::imports::define_imports)) and the record of
//! the run ([`finish`]) are the direct driver's; what differs is how
//! function imports suspend and how an export call is driven.

use std::future::Future;
use std::pin::pin;

use asyncify_linker::{AsyncCaller, Instance, Linker};
use wasmtime::{AsContextMut, Extern, FuncType, Module, Store, StoreContextMut, Val, ValType};

use crate::engine;
use crate::host::{as_vals, fill_results, identify_all, HostState};
use crate::imports::ImportLinker;
use crate::run::{
    finish, record_calls, resolve_buffer, start, BufferSpec, Failure, Outcome, RunConfig,
    DEFAULT_BUFFER_ADDR, DEFAULT_BUFFER_SIZE,
};
use crate::value::{self, Value};

/// Runs `calls` on instrumented `wasm` through the linker under `config`'s
/// schedule, suspension predicate and buffer. An outcome's `unwinds` counts
/// how many times the export call's future was pending.
pub fn run_linked(wasm: &[u8], config: &RunConfig, calls: &[(&str, Vec<Val>)]) -> Outcome {
    let mut outcome = Outcome::default();
    let new_linker = |module: &Module| {
        let mut linker = Linker::new(engine());
        linker.allow_shadowing(true);
        place_buffer(&mut linker, module, &config.buffer);
        linker
    };
    // The module is instrumented whatever `config` says: importing the
    // runtime functions is an error.
    let Some((mut store, instance)) = start(wasm, config, true, new_linker, &mut outcome) else {
        return outcome;
    };
    crate::host::note_exported_funcs(&mut store, &instance.wasmtime());
    crate::host::spend_yield_budget(&mut store, &instance.wasmtime());
    record_calls(&mut outcome, calls, |export, args| {
        call_through_linker(&mut store, &instance, export, args)
    });
    let buffer = resolve_buffer(&mut store, &instance.wasmtime(), &config.buffer).ok();
    finish(&mut store, &instance.wasmtime(), buffer.as_ref(), outcome)
}

/// Calls one export as a future, driven to the end on this thread; gives its
/// results (or why there are none) and how many times it was pending.
fn call_through_linker(
    store: &mut Store<HostState>,
    instance: &Instance,
    export: &str,
    args: &[Val],
) -> (Result<Vec<Value>, Failure>, u64) {
    let Some(func) = instance.get_func(&mut *store, export) else {
        return (Err(Failure::missing_export(export)), 0);
    };
    let ty = func.ty(&*store);
    let mut results: Vec<Val> = ty.results().map(|t| value::zero(&t)).collect();
    let mut pending = 0u64;
    let result = {
        let mut call = pin!(func.call_async(&mut *store, args, &mut results));
        futures::executor::block_on(std::future::poll_fn(|cx| {
            let poll = call.as_mut().poll(cx);
            pending += u64::from(poll.is_pending());
            poll
        }))
    };
    let result = result
        .map(|()| crate::host::identify_all(&mut *store, &results))
        .map_err(|e| Failure::from_error(&e));
    (result, pending)
}

/// Tells the linker where the buffer is, as [`BufferSpec`] says (the same
/// defaults as the direct driver).
fn place_buffer(linker: &mut Linker<HostState>, module: &Module, spec: &BufferSpec) {
    let exports_own = module.get_export("asyncify_memory").is_some();
    let name = spec.memory_name(exports_own);
    if name == "asyncify_memory" && exports_own {
        // The linker uses the module's own buffer memory from its start.
        return;
    }
    linker.buffer_memory(&name);
    linker.fixed_buffer(
        spec.addr.unwrap_or(DEFAULT_BUFFER_ADDR),
        spec.size.unwrap_or(DEFAULT_BUFFER_SIZE),
    );
}

/// Logs an import call and returns its deterministic results, and whether
/// it suspends (never during instantiation).
fn host_call(
    mut store: StoreContextMut<'_, HostState>,
    module: &str,
    name: &str,
    result_types: &[ValType],
    args: &[Val],
) -> (Vec<Value>, bool) {
    let args = identify_all(&mut store, args);
    let data = store.data_mut();
    let values = data.log_call(module, name, args, result_types);
    let suspend = data.instantiated && data.suspends(module, name);
    (values, suspend)
}

/// The linked driver's linker: function imports that may suspend are async
/// imports, pending once on the calls the schedule suspends; the others are
/// plain host functions.
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
        store: &Store<HostState>,
        module: &str,
        name: &str,
        ty: FuncType,
    ) -> wasmtime::Result<()> {
        let (m, n) = (module.to_string(), name.to_string());
        let result_types: Vec<ValType> = ty.results().collect();
        if (store.data().may_suspend)(module, name) {
            self.func_new_async(
                module,
                name,
                ty,
                move |caller: AsyncCaller<HostState>, params: Vec<Val>| {
                    let (m, n, types) = (m.clone(), n.clone(), result_types.clone());
                    async move {
                        let (values, suspend) =
                            caller.try_with(|store| host_call(store, &m, &n, &types, &params))?;
                        if suspend {
                            asyncify_linker::yield_now().await;
                        }
                        Ok(caller.try_with(|store| as_vals(store, values, &types))?)
                    }
                },
            )?;
        } else {
            self.func_new(module, name, ty, move |mut caller, params, results| {
                let (values, _) = host_call(caller.as_context_mut(), &m, &n, &result_types, params);
                fill_results(&mut caller, results, values, &result_types);
                Ok(())
            })?;
        }
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
