//! Host functions: async imports and their handle on the instance
//! ([`AsyncCaller`]), and the wrappers that let one instance import another
//! instrumented instance's exports.

use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use wasmtime::{
    AsContextMut, Extern, Func as WasmFunc, FuncType, Result, StoreContextMut, Val, WasmParams,
    WasmResults,
};

use crate::access;
use crate::driver::{self, CallCore, Driven, ImportFuture};
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
            let mut core = CallCore::new(func.runtime.clone());
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
    let mut core = CallCore::new(func.runtime.clone());
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
    let zeros: Option<Vec<Val>> = ty.results().map(|t| Val::default_for_ty(&t)).collect();
    let (module, name) = (module.to_string(), name.to_string());
    WasmFunc::new(store, ty, move |mut caller, params, results| {
        let instance = slot.get();
        let runtime = instance.and_then(|i| i.runtime.as_ref());
        let driven = match runtime {
            Some(rt) => driver::driven(rt),
            None => Driven::No,
        };
        let caller_handle = || AsyncCaller {
            instance: instance.cloned(),
            _data: PhantomData,
        };
        match (driven, runtime) {
            (Driven::Rewinding { call, values }, Some(rt)) => {
                rt.stop_rewind(&mut caller)?;
                rt.shared().buffer.release(call);
                write_results(&module, &name, values, results)
            }
            (Driven::Normal { call, waker }, Some(rt)) => {
                let mut future = (host.call)(caller_handle(), params.to_vec());
                let mut store = caller.as_context_mut();
                let poll = access::publish(&mut store, || {
                    future.as_mut().poll(&mut Context::from_waker(&waker))
                });
                match poll {
                    Poll::Ready(Ok(values)) => write_results(&module, &name, values, results),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => {
                        let Some(zeros) = &zeros else {
                            return Err(wasmtime::format_err!(
                                "import `{module}::{name}` returns a non-nullable reference, \
                                 which it cannot return while unwinding"
                            ));
                        };
                        let ptr = rt.shared().buffer.reserve(&mut caller, call)?;
                        rt.start_unwind(&mut caller, ptr)?;
                        driver::set_pending(future);
                        results.clone_from_slice(zeros);
                        Ok(())
                    }
                }
            }
            _ => {
                // No driver: poll once, and fail if the import needs to wait.
                let mut future = (host.call)(caller_handle(), params.to_vec());
                let mut store = caller.as_context_mut();
                let poll = access::publish(&mut store, || {
                    driver::barrier(|| future.as_mut().poll(&mut driver::noop_context()))
                });
                match poll {
                    Poll::Ready(Ok(values)) => write_results(&module, &name, values, results),
                    Poll::Ready(Err(e)) => Err(e),
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
    })
}

fn write_results(module: &str, name: &str, values: Vec<Val>, results: &mut [Val]) -> Result<()> {
    if values.len() != results.len() {
        return Err(wasmtime::format_err!(
            "import `{module}::{name}` returned {} values, its type has {}",
            values.len(),
            results.len()
        ));
    }
    for (slot, value) in results.iter_mut().zip(values) {
        *slot = value;
    }
    Ok(())
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
        let mut core = CallCore::new(func.runtime.clone());
        let inner = func.inner;
        match driver::run_without_waiting(&mut core, caller.as_context_mut(), |store| {
            inner.call(store, params, results)
        }) {
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
