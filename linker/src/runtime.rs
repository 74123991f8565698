//! The asyncify side of one instrumented instance: its five runtime exports,
//! its buffer, and the calls in flight on it.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};

use wasmtime::{AsContextMut, Extern, Instance, Memory, Module, Result, TypedFunc, ValType};

use asyncify_abi::{AbiType, RuntimeFunction};

use crate::buffer::{Buffer, BufferConfig, CallId, Placement};
use crate::Error;

/// Whether `module` is instrumented (has the five exports with their ABI
/// types), and if so whether its buffer pointers are 64-bit.
pub(crate) fn instrumented(module: &Module) -> Option<bool> {
    let func = |f: RuntimeFunction| {
        module
            .get_export(f.export_name())
            .and_then(|e| e.func().cloned())
    };
    let mut mem64 = None;
    for f in RuntimeFunction::ALL {
        let ty = func(f)?;
        let params: Vec<ValType> = ty.params().collect();
        let results: Vec<ValType> = ty.results().collect();
        let sig = f.signature();
        if params.len() != sig.params.len() || results.len() != sig.results.len() {
            return None;
        }
        for (abi, ty) in sig
            .params
            .iter()
            .chain(sig.results)
            .zip(params.iter().chain(&results))
        {
            let wide = match (abi, ty) {
                (AbiType::I32, ValType::I32) => continue,
                (AbiType::Pointer, ValType::I32) => false,
                (AbiType::Pointer, ValType::I64) => true,
                _ => return None,
            };
            if mem64.is_some_and(|w| w != wide) {
                return None;
            }
            mem64 = Some(wide);
        }
    }
    mem64
}

/// The display name of a module in messages.
pub(crate) fn module_name(module: &Module) -> String {
    module.name().unwrap_or("<unnamed>").to_string()
}

enum PtrFunc {
    P32(TypedFunc<i32, ()>),
    P64(TypedFunc<i64, ()>),
}

impl PtrFunc {
    fn call(&self, store: impl AsContextMut, ptr: u64) -> Result<()> {
        match self {
            PtrFunc::P32(f) => f.call(store, ptr as i32),
            PtrFunc::P64(f) => f.call(store, ptr as i64),
        }
    }
}

/// What changes while calls run.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Calls started on this instance and not finished, oldest first.
    pub active: Vec<CallId>,
    pub buffer: Buffer,
    /// Why the instance may not run any more (it could not be put back in
    /// the normal state after a failure).
    pub broken: Option<String>,
}

/// The asyncify runtime of one instrumented instance.
pub(crate) struct Runtime {
    /// The module's name, for messages.
    pub module: String,
    get_state: TypedFunc<(), i32>,
    stop_unwind: TypedFunc<(), ()>,
    stop_rewind: TypedFunc<(), ()>,
    start_unwind: PtrFunc,
    start_rewind: PtrFunc,
    /// Most bytes of host stack that calls nested inside async imports use.
    pub nesting_stack: u64,
    shared: Mutex<Shared>,
}

thread_local! {
    /// The runtime function the linker is calling on this thread, if any.
    static PROTOCOL_STEP: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// The runtime function (`asyncify_start_unwind`...) the linker is calling
/// right now on this thread, if any. An import called from inside one must
/// fail: the driver would re-enter its own protocol.
pub(crate) fn protocol_step() -> Option<&'static str> {
    PROTOCOL_STEP.get()
}

/// Runs `f` (one call of the runtime function `step`) marked as such.
fn in_step<R>(step: RuntimeFunction, f: impl FnOnce() -> R) -> R {
    let step = step.export_name();
    struct Restore(Option<&'static str>);
    impl Drop for Restore {
        fn drop(&mut self) {
            PROTOCOL_STEP.set(self.0);
        }
    }
    let _restore = Restore(PROTOCOL_STEP.replace(Some(step)));
    f()
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("module", &self.module)
            .field("shared", &self.shared.try_lock().ok())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Looks up the runtime exports of `instance` (of the instrumented
    /// `module`) and decides where its buffer goes. `imported_memory` is the
    /// memory given for the module's first memory import, if any.
    pub fn new(
        mut store: impl AsContextMut,
        instance: Instance,
        module: &Module,
        mem64: bool,
        imported_memory: Option<Extern>,
        config: &BufferConfig,
    ) -> Result<Runtime> {
        let mut store = store.as_context_mut();
        let name = module_name(module);
        let ptr_func =
            |store: &mut wasmtime::StoreContextMut<'_, _>, export: &str| -> Result<PtrFunc> {
                Ok(if mem64 {
                    PtrFunc::P64(instance.get_typed_func(&mut *store, export)?)
                } else {
                    PtrFunc::P32(instance.get_typed_func(&mut *store, export)?)
                })
            };
        let start_unwind = ptr_func(&mut store, RuntimeFunction::StartUnwind.export_name())?;
        let start_rewind = ptr_func(&mut store, RuntimeFunction::StartRewind.export_name())?;
        let (memory, placement) = buffer_memory(&mut store, instance, imported_memory, config);
        let buffer = Buffer::new(name.clone(), memory, placement, mem64, config);
        Ok(Runtime {
            get_state: instance
                .get_typed_func(&mut store, RuntimeFunction::GetState.export_name())?,
            stop_unwind: instance
                .get_typed_func(&mut store, RuntimeFunction::StopUnwind.export_name())?,
            stop_rewind: instance
                .get_typed_func(&mut store, RuntimeFunction::StopRewind.export_name())?,
            start_unwind,
            start_rewind,
            nesting_stack: config.nesting_stack,
            module: name,
            shared: Mutex::new(Shared {
                active: Vec::new(),
                buffer,
                broken: None,
            }),
        })
    }

    /// Identity of this runtime in the driver's frames.
    pub fn id(&self) -> usize {
        self as *const Runtime as usize
    }

    pub fn shared(&self) -> MutexGuard<'_, Shared> {
        // A panic while the lock was held leaves bookkeeping that is still
        // consistent enough to go on (every update is a single push/retain).
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state global's value (not checked: see [`State::from_value`]).
    pub fn state(&self, store: impl AsContextMut) -> Result<i32> {
        in_step(RuntimeFunction::GetState, || self.get_state.call(store, ()))
    }

    pub fn start_unwind(&self, store: impl AsContextMut, ptr: u64) -> Result<()> {
        in_step(RuntimeFunction::StartUnwind, || {
            self.start_unwind.call(store, ptr)
        })
    }

    pub fn stop_unwind(&self, store: impl AsContextMut) -> Result<()> {
        in_step(RuntimeFunction::StopUnwind, || {
            self.stop_unwind.call(store, ())
        })
    }

    pub fn start_rewind(&self, store: impl AsContextMut, ptr: u64) -> Result<()> {
        in_step(RuntimeFunction::StartRewind, || {
            self.start_rewind.call(store, ptr)
        })
    }

    pub fn stop_rewind(&self, store: impl AsContextMut) -> Result<()> {
        in_step(RuntimeFunction::StopRewind, || {
            self.stop_rewind.call(store, ())
        })
    }

    pub fn unusable(&self, reason: &str) -> Error {
        Error::Unusable {
            module: self.module.clone(),
            reason: reason.to_string(),
        }
    }

    pub fn protocol(&self, message: impl Into<String>) -> Error {
        Error::Protocol {
            module: self.module.clone(),
            message: message.into(),
        }
    }
}

/// Chooses the memory for the buffer (see `buffer.rs` for the order).
fn buffer_memory(
    mut store: impl AsContextMut,
    instance: Instance,
    imported_memory: Option<Extern>,
    config: &BufferConfig,
) -> (Result<Memory, String>, Placement) {
    let default_placement = match config.fixed {
        Some((offset, len)) => Placement::Fixed(offset, len),
        None => Placement::EndOfMemory,
    };
    if let Some(name) = &config.memory {
        return match instance.get_memory(&mut store, name) {
            Some(m) => (Ok(m), default_placement),
            None => (
                Err(format!(
                    "it exports no memory named `{name}` (`Linker::buffer_memory`)"
                )),
                default_placement,
            ),
        };
    }
    if let Some(m) = instance.get_memory(&mut store, asyncify_abi::SECONDARY_MEMORY_EXPORT) {
        return (Ok(m), Placement::WholeMemory);
    }
    match imported_memory {
        Some(Extern::Memory(m)) => return (Ok(m), default_placement),
        Some(Extern::SharedMemory(_)) => {
            return (
                Err("its memory is shared; instrument it with `--secondary-memory`".into()),
                default_placement,
            )
        }
        _ => {}
    }
    if let Some(m) = instance.get_memory(&mut store, "memory") {
        return (Ok(m), default_placement);
    }
    let exported: Vec<Memory> = instance
        .exports(&mut store)
        .filter_map(|e| e.into_memory())
        .collect();
    match exported[..] {
        [m] => (Ok(m), default_placement),
        [] => (
            Err(
                "its memory is neither exported nor imported; export it, or instrument the \
                 module with `--secondary-memory`"
                    .into(),
            ),
            default_placement,
        ),
        _ => (
            Err(
                "it exports several memories; name the one asyncify uses with \
                 `Linker::buffer_memory`"
                    .into(),
            ),
            default_placement,
        ),
    }
}
