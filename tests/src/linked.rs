//! Running an instrumented module through `asyncify-linker`, the way an
//! embedder does: every import that may suspend is an async import whose
//! future is pending (once) on the calls the schedule picks, the linker
//! unwinds and rewinds, and the export calls are futures driven by
//! `futures::executor::block_on`. The [`Outcome`] compares with
//! [`run`](crate::run)'s outcome of the original.

use std::future::Future;
use std::pin::pin;

use asyncify_linker::{AsyncCaller, Linker};
use wasmtime::{ExternType, Global, Memory, Module, Ref, SharedMemory, Store, Table, Val, ValType};

use crate::engine;
use crate::host::{HostState, MemHandle, RUNTIME_MODULE};
use crate::run::{resolve_buffer, snapshot, BufferSpec, CallOutcome, Failure, Outcome, RunConfig};
use crate::schedule::host_results;
use crate::value::{self, Value};
use crate::ImportCall;

/// Runs `calls` on instrumented `wasm` through the linker under `config`'s
/// schedule, suspension predicate and buffer. An outcome's `unwinds` counts
/// how many times the export call's future was pending.
pub fn run_linked(wasm: &[u8], config: &RunConfig, calls: &[(&str, Vec<Val>)]) -> Outcome {
    let mut outcome = Outcome::default();
    let engine = engine();
    let module = match Module::new(engine, wasm) {
        Ok(m) => m,
        Err(e) => {
            outcome.start = Some(Failure::driver(format!("does not compile: {e:#}")));
            return outcome;
        }
    };
    let state = HostState::new(config.schedule.clone(), config.may_suspend.clone());
    let mut store = Store::new(engine, state);
    if let Err(e) = store.set_fuel(config.fuel) {
        outcome.start = Some(Failure::driver(format!("set_fuel: {e:?}")));
        return outcome;
    }
    let mut linker = Linker::new(engine);
    linker.allow_shadowing(true);
    place_buffer(&mut linker, &module, &config.buffer);
    if let Err(e) = define_imports(&mut linker, &mut store, &module) {
        outcome.start = Some(Failure::driver(e));
        return outcome;
    }
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(i) => i,
        Err(e) => {
            outcome.start = Some(Failure::from_error(&e));
            outcome.imports = std::mem::take(&mut store.data_mut().log);
            return outcome;
        }
    };
    store.data_mut().instantiated = true;
    for (export, args) in calls {
        let Some(func) = instance.get_func(&mut store, export) else {
            outcome.calls.push(CallOutcome {
                export: export.to_string(),
                args: value::record(args),
                result: Err(Failure::driver(format!("no exported function `{export}`"))),
                unwinds: 0,
            });
            continue;
        };
        let ty = func.ty(&store);
        let mut results: Vec<Val> = ty.results().map(|t| value::zero(&t)).collect();
        let mut pending = 0u64;
        let result = {
            let mut call = pin!(func.call_async(&mut store, args, &mut results));
            futures::executor::block_on(std::future::poll_fn(|cx| {
                let poll = call.as_mut().poll(cx);
                pending += u64::from(poll.is_pending());
                poll
            }))
        };
        outcome.calls.push(CallOutcome {
            export: export.to_string(),
            args: value::record(args),
            result: result
                .map(|()| value::record(&results))
                .map_err(|e| Failure::from_error(&e)),
            unwinds: pending,
        });
    }
    let buffer = resolve_buffer(&mut store, &instance.wasmtime(), &config.buffer).ok();
    snapshot(
        &mut store,
        &instance.wasmtime(),
        buffer.as_ref(),
        &mut outcome,
    );
    outcome.imports = std::mem::take(&mut store.data_mut().log);
    outcome.errors = std::mem::take(&mut store.data_mut().errors);
    outcome
}

/// Tells the linker where the buffer is, as [`BufferSpec`] says (the same
/// defaults as the direct driver).
fn place_buffer(linker: &mut Linker<HostState>, module: &Module, spec: &BufferSpec) {
    let exports_own = module.get_export("asyncify_memory").is_some();
    let name = match &spec.memory {
        Some(n) => n.clone(),
        None if exports_own => "asyncify_memory".to_string(),
        None => "memory".to_string(),
    };
    if name == "asyncify_memory" && exports_own {
        // The linker uses the module's own buffer memory from its start.
        return;
    }
    linker.buffer_memory(&name);
    linker.fixed_buffer(spec.addr.unwrap_or(0x8000), spec.size.unwrap_or(0x8000));
}

/// Logs an import call and returns its deterministic results, and whether
/// the schedule suspends it.
fn host_call(
    data: &mut HostState,
    module: &str,
    name: &str,
    result_types: &[ValType],
    args: &[Val],
) -> (Vec<Val>, bool) {
    let args = value::record(args);
    let calls_so_far = data.log.len() as u64;
    let values: Vec<Value> = host_results(module, name, &args, calls_so_far, result_types);
    data.log.push(ImportCall {
        module: module.to_string(),
        name: name.to_string(),
        args,
        results: values.clone(),
    });
    let mut suspend = false;
    if data.instantiated && (data.may_suspend)(module, name) {
        let n = data.suspendable_calls;
        data.suspendable_calls += 1;
        suspend = data.schedule.suspends(n);
    }
    let vals = values
        .into_iter()
        .zip(result_types)
        .map(|(v, ty)| v.to_val(ty))
        .collect();
    (vals, suspend)
}

/// Defines every import: functions that may suspend as async imports, the
/// others as plain ones; globals, memories and tables zeroed, as the direct
/// driver does.
fn define_imports(
    linker: &mut Linker<HostState>,
    store: &mut Store<HostState>,
    module: &Module,
) -> Result<(), String> {
    for import in module.imports() {
        let (m, n) = (import.module().to_string(), import.name().to_string());
        let what = format!("import {m}.{n}");
        let err = |e: wasmtime::Error| format!("{what}: {e}");
        match import.ty() {
            ExternType::Func(_) if m == RUNTIME_MODULE => {
                return Err(format!(
                    "the instrumented module still imports {m}.{n}: calls to the runtime \
                     functions should have been replaced"
                ));
            }
            ExternType::Func(ft) => {
                let result_types: Vec<ValType> = ft.results().collect();
                let may_suspend = (store.data().may_suspend)(&m, &n);
                if may_suspend {
                    linker
                        .func_new_async(
                            &m.clone(),
                            &n.clone(),
                            ft,
                            move |caller: AsyncCaller<HostState>, params: Vec<Val>| {
                                let (m, n, types) = (m.clone(), n.clone(), result_types.clone());
                                async move {
                                    let (vals, suspend) = caller.try_with(|mut store| {
                                        host_call(store.data_mut(), &m, &n, &types, &params)
                                    })?;
                                    if suspend {
                                        asyncify_linker::yield_now().await;
                                    }
                                    Ok(vals)
                                }
                            },
                        )
                        .map_err(err)?;
                } else {
                    linker
                        .func_new(
                            &m.clone(),
                            &n.clone(),
                            ft,
                            move |mut caller, params, results| {
                                let (vals, _) =
                                    host_call(caller.data_mut(), &m, &n, &result_types, params);
                                results.clone_from_slice(&vals);
                                Ok(())
                            },
                        )
                        .map_err(err)?;
                }
            }
            ExternType::Global(gt) => {
                let g =
                    Global::new(&mut *store, gt.clone(), value::zero(gt.content())).map_err(err)?;
                linker.define(&mut *store, &m, &n, g).map_err(err)?;
                store
                    .data_mut()
                    .imported_globals
                    .push((format!("{m}.{n}"), g));
            }
            ExternType::Memory(mt) => {
                let handle = if mt.is_shared() {
                    let mem = SharedMemory::new(store.engine(), mt).map_err(err)?;
                    linker
                        .define(&mut *store, &m, &n, mem.clone())
                        .map_err(err)?;
                    MemHandle::Shared(mem)
                } else {
                    let mem = Memory::new(&mut *store, mt).map_err(err)?;
                    linker.define(&mut *store, &m, &n, mem).map_err(err)?;
                    MemHandle::Plain(mem)
                };
                store
                    .data_mut()
                    .imported_memories
                    .push((format!("{m}.{n}"), handle));
            }
            ExternType::Table(tt) => {
                let init = Ref::null(tt.element().heap_type());
                let t = Table::new(&mut *store, tt, init).map_err(err)?;
                linker.define(&mut *store, &m, &n, t).map_err(err)?;
            }
            other => return Err(format!("{what}: the driver cannot provide {other:?}")),
        }
    }
    Ok(())
}
