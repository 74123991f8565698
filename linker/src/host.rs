//! Host functions: async imports and their handle on the instance
//! ([`AsyncCaller`]), and the wrappers that let one instance import another
//! instrumented instance's exports.

use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use wasmtime::{
    AsContextMut, Caller, Extern, Func as WasmFunc, FuncType, Result, StoreContextMut, Val, ValRaw,
    ValType, WasmParams, WasmResults,
};

use crate::access;
use crate::driver::{self, CallCore, Driven, ImportFuture, ImportName};
use crate::error::surface;
use crate::instance::{Func, Instance, TypedFunc};
use crate::Error;

/// The handle an async import's future gets on the instance that called it.
///
/// The future outlives the wasm call that created it (the instance unwinds
/// while it waits), so it cannot hold a `wasmtime::Caller`. It holds this
/// instead, and reaches the store with [`with`](Self::with) whenever it is
/// being polled: before its first `.await`, between awaits, and after the
/// last one. The linker lends the store for exactly the duration of each poll
/// of the import's future, which it only does while it has the store
/// mutably borrowed itself.
///
/// ```
/// # fn main() -> wasmtime::Result<()> {
/// use asyncify_linker::{AsyncCaller, Linker};
/// use wasmtime::Engine;
///
/// struct Host { log: Vec<String> }
///
/// let engine = Engine::default();
/// let mut linker = Linker::<Host>::new(&engine);
/// // `log(ptr, len)`: reads a string from the guest's memory, waits, then
/// // records it in the store's data.
/// linker.func_wrap_async("env", "log", |caller: AsyncCaller<Host>, (ptr, len): (u32, u32)| async move {
///     let text = caller.with(|mut store| {
///         let memory = caller.get_memory(&mut store, "memory").expect("exported memory");
///         let bytes = &memory.data(&store)[ptr as usize..][..len as usize];
///         String::from_utf8_lossy(bytes).into_owned()
///     });
///     futures::future::ready(()).await; // any future: a timer, a channel, I/O...
///     caller.with(|mut store| store.data_mut().log.push(text));
///     Ok(())
/// })?;
/// # Ok(())
/// # }
/// ```
pub struct AsyncCaller<T> {
    instance: Option<Instance>,
    _data: PhantomData<fn() -> T>,
}

impl<T> Clone for AsyncCaller<T> {
    fn clone(&self) -> Self {
        AsyncCaller {
            instance: self.instance.clone(),
            _data: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for AsyncCaller<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncCaller")
            .field("instance", &self.instance)
            .finish()
    }
}

impl<T> AsyncCaller<T> {
    /// A handle that belongs to no instance, for the linker's own futures
    /// that reach the store the same way (the dynamic loader's).
    pub(crate) fn detached() -> AsyncCaller<T> {
        AsyncCaller {
            instance: None,
            _data: PhantomData,
        }
    }
}

impl<T: 'static> AsyncCaller<T> {
    /// Runs `f` with the store.
    ///
    /// # Panics
    ///
    /// Panics with [`Error::StoreUnavailable`] when the import's future is not
    /// being polled by the linker (for example if it was moved to another
    /// task), or from inside another `with`. See [`try_with`](Self::try_with).
    pub fn with<R>(&self, f: impl FnOnce(StoreContextMut<'_, T>) -> R) -> R {
        match self.try_with(f) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// Runs `f` with the store, or fails with [`Error::StoreUnavailable`] when
    /// the store is not lent (see [`with`](Self::with)).
    ///
    /// Calling the instance's wasmtime functions directly inside `f` works,
    /// but an async import they reach cannot wait there (it fails with
    /// [`Error::CannotSuspend`]); use [`call_async`](Self::call_async) to call
    /// back into the instance.
    pub fn try_with<R>(&self, f: impl FnOnce(StoreContextMut<'_, T>) -> R) -> Result<R, Error> {
        access::with_published(|store| driver::barrier(|| f(store)))
    }

    /// The instance whose import is running. `None` only while the module's
    /// start function runs during instantiation.
    pub fn instance(&self) -> Option<&Instance> {
        self.instance.as_ref()
    }

    /// The instance's export `name`.
    pub fn get_export(&self, store: impl AsContextMut<Data = T>, name: &str) -> Option<Extern> {
        self.instance.as_ref()?.get_export(store, name)
    }

    /// The instance's exported memory `name` (usually `"memory"`).
    pub fn get_memory(
        &self,
        store: impl AsContextMut<Data = T>,
        name: &str,
    ) -> Option<wasmtime::Memory> {
        self.instance.as_ref()?.get_memory(store, name)
    }

    /// The instance's exported function `name`, to call with
    /// [`call_async`](Self::call_async).
    pub fn get_func(&self, name: &str) -> Option<Func> {
        let instance = self.instance.as_ref()?;
        self.try_with(|store| instance.get_func(store, name)).ok()?
    }

    /// Calls `func` (an export of this or any other instance in the store)
    /// from inside an async import: re-entrance. The call nests inside the
    /// call that is waiting for this import: if it suspends, so does that one,
    /// and both resume in order.
    ///
    /// The returned future owns what it needs and may be awaited anywhere in
    /// the import's future. Polled anywhere else, it fails with
    /// [`Error::StoreUnavailable`].
    pub fn call_async(
        &self,
        func: &Func,
        params: Vec<Val>,
    ) -> impl Future<Output = Result<Vec<Val>>> + Send + 'static {
        detached_call::<T>(func.clone(), params)
    }

    /// Typed form of [`call_async`](Self::call_async).
    pub fn call_typed<Params, Results>(
        &self,
        func: &TypedFunc<Params, Results>,
        params: Params,
    ) -> impl Future<Output = Result<Results>> + Send + 'static
    where
        Params: WasmParams + Clone + Send + 'static,
        Results: WasmResults + Send + 'static,
    {
        let func = func.clone();
        async move {
            let mut core = CallCore::new(func.runtime.as_deref());
            let inner = func.inner;
            poll_fn(move |cx| {
                poll_detached::<T, _>(cx, |store, cx| {
                    core.poll(store, cx, |store| inner.call(store, params.clone()))
                })
            })
            .await
        }
    }
}

/// A call polled with the store published by whoever polls it.
async fn detached_call<T: 'static>(func: Func, params: Vec<Val>) -> Result<Vec<Val>> {
    let mut core = CallCore::new(func.runtime.as_deref());
    let mut results = Vec::new();
    let inner = func.inner;
    poll_fn(|cx| {
        poll_detached::<T, _>(cx, |store, cx| {
            core.poll(store, cx, |mut store| {
                let n = inner.ty(&store).results().len();
                results.clear();
                results.resize(n, Val::I32(0));
                inner.call(&mut store, &params, &mut results)
            })
        })
    })
    .await?;
    Ok(results)
}

fn poll_detached<T: 'static, O>(
    cx: &mut Context<'_>,
    f: impl FnOnce(StoreContextMut<'_, T>, &mut Context<'_>) -> Poll<Result<O>>,
) -> Poll<Result<O>> {
    match access::with_published::<T, _>(|store| f(store, cx)) {
        Ok(Poll::Ready(Err(e))) => Poll::Ready(Err(surface(e))),
        Ok(poll) => poll,
        Err(e) => Poll::Ready(Err(e.into())),
    }
}

/// An async host function, store-independent, as the linker keeps it.
pub(crate) struct AsyncHostFunc<T> {
    /// `None`: the type of the export it forwards to, known per store.
    pub ty: Option<FuncType>,
    pub call: Box<dyn Fn(AsyncCaller<T>, Vec<Val>) -> ImportFuture + Send + Sync>,
}

/// Where an import's instance will be, once instantiation is done.
pub(crate) type InstanceSlot = Arc<OnceLock<Instance>>;

/// Makes the wasmtime function that serves async import `module::name` for
/// the instance in `slot`.
pub(crate) fn async_import<T: 'static>(
    store: impl AsContextMut<Data = T>,
    ty: FuncType,
    host: Arc<AsyncHostFunc<T>>,
    slot: InstanceSlot,
    module: &str,
    name: &str,
) -> WasmFunc {
    let import = AsyncImport {
        zeros: ty.results().map(|t| Val::default_for_ty(&t)).collect(),
        host,
        slot,
        names: Arc::new(ImportName {
            module: module.to_string(),
            name: name.to_string(),
        }),
    };
    let params: Vec<ValType> = ty.params().collect();
    let results: Vec<ValType> = ty.results().collect();
    if params.iter().chain(&results).all(is_plain) {
        // The common case, numbers only: read and write the raw values
        // directly, which spares wasmtime's checked `Val` conversions on
        // every call (a tenth of the cost of a suspension).
        let serve = move |caller: Caller<'_, T>, raw: &mut [MaybeUninit<ValRaw>]| {
            import.serve(
                caller,
                RawValues {
                    raw,
                    params: &params,
                    results: &results,
                },
            )
        };
        // SAFETY: `RawValues` reads the first `params.len()` slots as the
        // parameter types of `ty` and writes results of exactly the result
        // types of `ty` (it checks every value), and `ty` is the type given
        // here. Only plain numbers are involved, so no GC references.
        unsafe { WasmFunc::new_unchecked(store, ty, serve) }
    } else {
        WasmFunc::new(store, ty, move |caller, params, results| {
            import.serve(caller, CheckedValues { params, results })
        })
    }
}

/// A number or vector type, whose raw form needs no store to convert.
fn is_plain(ty: &ValType) -> bool {
    matches!(
        ty,
        ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64 | ValType::V128
    )
}

/// The parameters and results of one import call, in either of the forms
/// wasmtime hands them over.
trait ImportValues {
    fn params(&self) -> Vec<Val>;
    /// Writes the results; fails if their number or types are wrong.
    fn write(&mut self, values: &[Val]) -> Result<(), String>;
}

/// The error for an import that returned the wrong number of values.
fn check_result_count(returned: usize, expected: usize) -> Result<(), String> {
    if returned == expected {
        Ok(())
    } else {
        Err(format!(
            "returned {returned} values, its type has {expected}"
        ))
    }
}

/// Values as wasmtime's `Func::new` gives them (already checked by it).
struct CheckedValues<'a> {
    params: &'a [Val],
    results: &'a mut [Val],
}

impl ImportValues for CheckedValues<'_> {
    fn params(&self) -> Vec<Val> {
        self.params.to_vec()
    }

    fn write(&mut self, values: &[Val]) -> Result<(), String> {
        check_result_count(values.len(), self.results.len())?;
        self.results.clone_from_slice(values);
        Ok(())
    }
}

/// Values as wasmtime's `Func::new_unchecked` gives them: parameters first,
/// results written over them. Only for plain types ([`is_plain`]).
struct RawValues<'a> {
    raw: &'a mut [MaybeUninit<ValRaw>],
    params: &'a [ValType],
    results: &'a [ValType],
}

impl ImportValues for RawValues<'_> {
    fn params(&self) -> Vec<Val> {
        self.params
            .iter()
            .zip(self.raw.iter())
            .map(|(ty, raw)| {
                // SAFETY: wasmtime initialises one slot per parameter.
                let raw = unsafe { raw.assume_init() };
                match ty {
                    ValType::I32 => Val::I32(raw.get_i32()),
                    ValType::I64 => Val::I64(raw.get_i64()),
                    ValType::F32 => Val::F32(raw.get_f32()),
                    ValType::F64 => Val::F64(raw.get_f64()),
                    _ => Val::V128(raw.get_v128().into()),
                }
            })
            .collect()
    }

    fn write(&mut self, values: &[Val]) -> Result<(), String> {
        check_result_count(values.len(), self.results.len())?;
        for ((slot, value), ty) in self.raw.iter_mut().zip(values).zip(self.results) {
            let raw = match (value, ty) {
                (Val::I32(x), ValType::I32) => ValRaw::i32(*x),
                (Val::I64(x), ValType::I64) => ValRaw::i64(*x),
                (Val::F32(x), ValType::F32) => ValRaw::f32(*x),
                (Val::F64(x), ValType::F64) => ValRaw::f64(*x),
                (Val::V128(x), ValType::V128) => ValRaw::v128(x.as_u128()),
                (value, ty) => {
                    return Err(format!(
                        "returned {} where its type has {ty}",
                        kind_of(value)
                    ))
                }
            };
            slot.write(raw);
        }
        Ok(())
    }
}

/// What kind of value `value` is, for messages.
fn kind_of(value: &Val) -> &'static str {
    match value {
        Val::I32(_) => "an i32",
        Val::I64(_) => "an i64",
        Val::F32(_) => "an f32",
        Val::F64(_) => "an f64",
        Val::V128(_) => "a v128",
        _ => "a reference",
    }
}

/// What serves one async import.
struct AsyncImport<T> {
    host: Arc<AsyncHostFunc<T>>,
    slot: InstanceSlot,
    /// The results returned while unwinding (`None`: a result type has no
    /// default, a non-nullable reference).
    zeros: Option<Vec<Val>>,
    names: Arc<ImportName>,
}

impl<T: 'static> AsyncImport<T> {
    fn serve(&self, mut caller: Caller<'_, T>, mut values: impl ImportValues) -> Result<()> {
        let (module, name) = (&self.names.module, &self.names.name);
        let write = |values: &mut dyn ImportValues, results: &[Val]| {
            values
                .write(results)
                .map_err(|e| wasmtime::format_err!("import `{module}::{name}` {e}"))
        };
        let instance = self.slot.get();
        let runtime = instance.and_then(|i| i.runtime.as_ref());
        if let Some(step) = crate::runtime::protocol_step() {
            // A runtime function called this import (re-exported it, or
            // calls it): serving it would re-enter the protocol, and each
            // unwind would start another.
            return Err(Error::Protocol {
                module: runtime.map_or_else(|| "<instantiating>".into(), |rt| rt.module.clone()),
                message: format!(
                    "its `{step}` called the import `{module}::{name}`; the linker calls the \
                     runtime functions to drive the protocol, and they must not call imports"
                ),
            }
            .into());
        }
        let driven = match runtime {
            Some(rt) => driver::driven(rt),
            None => Driven::No,
        };
        let caller_handle = || AsyncCaller {
            instance: instance.cloned(),
            _data: PhantomData,
        };
        match (driven, runtime) {
            (
                Driven::Rewinding {
                    call,
                    values: ready,
                },
                Some(rt),
            ) => {
                rt.stop_rewind(&mut caller)?;
                rt.shared().buffer.finish_rewind(call);
                write(&mut values, &ready)
            }
            (Driven::Unwinding { first }, Some(_)) => Err(Error::CannotSuspend {
                module: first.module.clone(),
                name: first.name.clone(),
                reason: format!(
                    "the module was not instrumented to let it wait: it is not among the \
                     imports that may suspend (`asyncify instrument --imports`, Binaryen's \
                     `asyncify-imports`), so the code that called it went on running while the \
                     instance was unwinding, and called `{module}::{name}`"
                ),
            }
            .into()),
            (Driven::Normal { call, waker, frame }, Some(rt)) => {
                let mut future = (self.host.call)(caller_handle(), values.params());
                let mut store = caller.as_context_mut();
                let poll = access::publish(&mut store, || {
                    future.as_mut().poll(&mut Context::from_waker(&waker))
                });
                match poll {
                    Poll::Ready(ready) => {
                        driver::give_back(frame, waker);
                        write(&mut values, &ready?)
                    }
                    Poll::Pending => {
                        let Some(zeros) = &self.zeros else {
                            driver::give_back(frame, waker);
                            return Err(wasmtime::format_err!(
                                "import `{module}::{name}` returns a non-nullable reference, \
                                 which it cannot return while unwinding"
                            ));
                        };
                        driver::set_pending(frame, future, self.names.clone(), waker);
                        let ptr = rt.shared().buffer.reserve(&mut caller, call)?;
                        if let Err(e) = rt.start_unwind(&mut caller, ptr) {
                            if e.downcast_ref::<Error>().is_some() {
                                return Err(e);
                            }
                            return Err(rt
                                .protocol(format!(
                                    "its `asyncify_start_unwind` failed, with a valid header \
                                     at {ptr:#x}: {e}"
                                ))
                                .into());
                        }
                        write(&mut values, zeros)
                    }
                }
            }
            _ => {
                // No driver: poll once, and fail if the import needs to wait.
                let mut future = (self.host.call)(caller_handle(), values.params());
                let mut store = caller.as_context_mut();
                // The future is dropped with the store lent, so that what it
                // took from the store can go back (see `wasi`).
                let poll = access::publish(&mut store, move || {
                    driver::barrier(|| future.as_mut().poll(&mut driver::noop_context()))
                });
                match poll {
                    Poll::Ready(ready) => write(&mut values, &ready?),
                    Poll::Pending => Err(Error::CannotSuspend {
                        module: module.clone(),
                        name: name.clone(),
                        reason: if instance.is_none() {
                            "it was called during instantiation (by the start function), \
                             which cannot wait"
                                .into()
                        } else {
                            "it was called outside an export call driven by the linker \
                             (from a synchronous host function, or through a wasmtime \
                             function called directly)"
                                .into()
                        },
                    }
                    .into()),
                }
            }
        }
    }
}

/// An instrumented instance's export as an async import of another
/// instrumented instance: calling it is a nested export call.
pub(crate) fn export_as_async_import<T: 'static>(func: Func) -> Arc<AsyncHostFunc<T>> {
    Arc::new(AsyncHostFunc {
        ty: None,
        call: Box::new(move |_caller, params| Box::pin(detached_call::<T>(func.clone(), params))),
    })
}

/// An instrumented instance's export as an import of a module that is not
/// instrumented: it runs to completion, and fails if it needs to wait.
pub(crate) fn export_as_sync_import<T: 'static>(
    mut store: impl AsContextMut<Data = T>,
    func: Func,
    module: &str,
    name: &str,
) -> WasmFunc {
    let ty = func.inner.ty(&store);
    let (module, name) = (module.to_string(), name.to_string());
    WasmFunc::new(&mut store, ty, move |mut caller, params, results| {
        let mut core = CallCore::new(func.runtime.as_deref());
        let inner = func.inner;
        let run = driver::run_without_waiting(&mut core, caller.as_context_mut(), |store| {
            inner.call(store, params, results)
        });
        access::publish(&mut caller.as_context_mut(), move || drop(core));
        match run {
            Ok(r) => r,
            Err(()) => Err(Error::CannotSuspend {
                module: module.clone(),
                name: name.clone(),
                reason: "the importing module is not instrumented with asyncify, so it cannot \
                         wait for the instance that exports it"
                    .into(),
            }
            .into()),
        }
    })
}

/// Boxes a future of typed values into the linker's import future.
pub(crate) fn boxed<R: crate::WasmValues>(
    future: impl Future<Output = Result<R>> + Send + 'static,
) -> ImportFuture {
    Box::pin(async move { future.await.map(R::into_vals) })
}
