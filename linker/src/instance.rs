//! Calling exports: instances, and their functions typed and dynamic.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use wasmtime::{
    AsContext, AsContextMut, Extern, FuncType, Global, Memory, Result, StoreContextMut, Table, Val,
    WasmParams, WasmResults,
};

use crate::access;
use crate::buffer::BufferUsage;
use crate::driver::CallCore;
use crate::error::surface;
use crate::runtime::Runtime;

/// An instantiated module, as returned by [`Linker::instantiate`].
///
/// It wraps a [`wasmtime::Instance`] and, when the module is instrumented with
/// asyncify, what the linker needs to suspend and resume calls into it. Its
/// functions are called as futures: see [`Func::call_async`] and
/// [`TypedFunc::call_async`].
///
/// Cloning is cheap; clones refer to the same instance.
///
/// ```
/// # fn main() -> wasmtime::Result<()> {
/// use asyncify_linker::Linker;
/// use wasmtime::{Engine, Module, Store};
///
/// let engine = Engine::default();
/// let module = Module::new(&engine, wat::parse_str(r#"(module (func (export "answer") (result i32) i32.const 42))"#)?)?;
/// let mut store = Store::new(&engine, ());
/// let instance = Linker::new(&engine).instantiate(&mut store, &module)?;
/// let answer = instance.get_typed_func::<(), i32>(&mut store, "answer")?;
/// assert_eq!(futures::executor::block_on(answer.call_async(&mut store, ()))?, 42);
/// assert!(!instance.is_instrumented());
/// # Ok(())
/// # }
/// ```
///
/// [`Linker::instantiate`]: crate::Linker::instantiate
#[derive(Clone, Debug)]
pub struct Instance {
    pub(crate) inner: wasmtime::Instance,
    pub(crate) runtime: Option<Arc<Runtime>>,
}

impl Instance {
    /// Wraps an instance created without the linker (for example with
    /// [`wasmtime::Instance::new`]), so that it can be registered with
    /// [`Linker::instance`](crate::Linker::instance) and its functions called
    /// as futures.
    ///
    /// Its imports were not resolved by the linker, so none of them is async
    /// and its calls never suspend: it is treated as not instrumented.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::{Instance, Linker};
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let mut store = Store::new(&engine, ());
    /// let module = Module::new(&engine, wat::parse_str(r#"(module (func (export "f")))"#)?)?;
    /// let raw = wasmtime::Instance::new(&mut store, &module, &[])?;
    /// let mut linker = Linker::new(&engine);
    /// linker.instance(&mut store, "lib", &Instance::from_wasmtime(raw))?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_wasmtime(instance: wasmtime::Instance) -> Instance {
        Instance {
            inner: instance,
            runtime: None,
        }
    }

    /// The underlying wasmtime instance.
    ///
    /// Calling its functions directly bypasses the linker: an async import
    /// that needs to wait then fails the call with
    /// [`Error::CannotSuspend`](crate::Error::CannotSuspend).
    pub fn wasmtime(&self) -> wasmtime::Instance {
        self.inner
    }

    /// Whether the module is instrumented with asyncify (exports the five
    /// `asyncify_*` functions), so that its imports may be async.
    pub fn is_instrumented(&self) -> bool {
        self.runtime.is_some()
    }

    /// How much of the asyncify buffer is in use (`None` if the module is not
    /// instrumented). Useful to check that failing or cancelled calls leave
    /// nothing behind.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// # use asyncify_linker::Linker;
    /// # use wasmtime::{Engine, Module, Store};
    /// # let engine = Engine::default();
    /// # let module = Module::new(&engine, wat::parse_str("(module)")?)?;
    /// # let mut store = Store::new(&engine, ());
    /// let instance = Linker::new(&engine).instantiate(&mut store, &module)?;
    /// assert_eq!(instance.buffer_usage(), None); // not instrumented
    /// # Ok(())
    /// # }
    /// ```
    pub fn buffer_usage(&self) -> Option<BufferUsage> {
        self.runtime.as_ref().map(|rt| rt.shared().buffer.usage())
    }

    /// The exported function `name`, callable as a future.
    ///
    /// Returns `None` if there is no such export or it is not a function.
    pub fn get_func(&self, store: impl AsContextMut, name: &str) -> Option<Func> {
        let func = self.inner.get_func(store, name)?;
        Some(Func {
            inner: func,
            runtime: self.runtime.clone(),
        })
    }

    /// The exported function `name` with a static signature.
    ///
    /// # Errors
    ///
    /// Fails if there is no function export `name`, or if its type is not
    /// `Params -> Results` (wasmtime's message names both types).
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// # use asyncify_linker::Linker;
    /// # use wasmtime::{Engine, Module, Store};
    /// # let engine = Engine::default();
    /// let wat = r#"(module (func (export "add") (param i32 i32) (result i32)
    ///     (i32.add (local.get 0) (local.get 1))))"#;
    /// # let module = Module::new(&engine, wat::parse_str(wat)?)?;
    /// # let mut store = Store::new(&engine, ());
    /// let instance = Linker::new(&engine).instantiate(&mut store, &module)?;
    /// let add = instance.get_typed_func::<(i32, i32), i32>(&mut store, "add")?;
    /// assert_eq!(futures::executor::block_on(add.call_async(&mut store, (2, 3)))?, 5);
    /// assert!(instance.get_typed_func::<(), ()>(&mut store, "add").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_typed_func<Params, Results>(
        &self,
        mut store: impl AsContextMut,
        name: &str,
    ) -> Result<TypedFunc<Params, Results>>
    where
        Params: WasmParams,
        Results: WasmResults,
    {
        let func = self
            .get_func(&mut store, name)
            .ok_or_else(|| wasmtime::format_err!("failed to find function export `{name}`"))?;
        func.typed(&store)
    }

    /// The export `name`, whatever its kind.
    pub fn get_export(&self, store: impl AsContextMut, name: &str) -> Option<Extern> {
        self.inner.get_export(store, name)
    }

    /// The exported memory `name`.
    pub fn get_memory(&self, store: impl AsContextMut, name: &str) -> Option<Memory> {
        self.inner.get_memory(store, name)
    }

    /// The exported global `name`.
    pub fn get_global(&self, store: impl AsContextMut, name: &str) -> Option<Global> {
        self.inner.get_global(store, name)
    }

    /// The exported table `name`.
    pub fn get_table(&self, store: impl AsContextMut, name: &str) -> Option<Table> {
        self.inner.get_table(store, name)
    }
}

/// An exported function, called as a future with dynamically typed values.
///
/// Get one from [`Instance::get_func`] or [`Linker::get_func`](crate::Linker::get_func).
#[derive(Clone, Debug)]
pub struct Func {
    pub(crate) inner: wasmtime::Func,
    pub(crate) runtime: Option<Arc<Runtime>>,
}

impl Func {
    /// The underlying wasmtime function (calling it directly bypasses the
    /// linker, see [`Instance::wasmtime`]).
    pub fn wasmtime(&self) -> wasmtime::Func {
        self.inner
    }

    /// The function's type.
    pub fn ty(&self, store: impl AsContext) -> FuncType {
        self.inner.ty(store)
    }

    /// Calls the function: `params` in, `results` filled when the future
    /// completes.
    ///
    /// Each poll runs wasm synchronously. When an async import of the
    /// instance is not ready, the instance unwinds, the future returns
    /// `Pending`, and the import's future is polled on later polls; once it
    /// completes the instance rewinds and continues where it stopped.
    ///
    /// The future borrows the store mutably, so one store runs one call at a
    /// time; calls made from inside an async import (with
    /// [`AsyncCaller::call_async`](crate::AsyncCaller::call_async)) nest.
    /// Dropping the future while it is suspended cancels the call: the
    /// instance stays usable, as after a trap at the point where it waited.
    ///
    /// # Errors
    ///
    /// A guest trap (with its wasm backtrace), an error returned by an import
    /// (as returned), a wrong number or type of values, or a failure of the
    /// linker ([`Error`](crate::Error)).
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Module, Store, Val};
    ///
    /// let engine = Engine::default();
    /// let wat = r#"(module (func (export "neg") (param i64) (result i64)
    ///     (i64.sub (i64.const 0) (local.get 0))))"#;
    /// let module = Module::new(&engine, wat::parse_str(wat)?)?;
    /// let mut store = Store::new(&engine, ());
    /// let instance = Linker::new(&engine).instantiate(&mut store, &module)?;
    /// let neg = instance.get_func(&mut store, "neg").unwrap();
    /// let mut results = [Val::I64(0)];
    /// futures::executor::block_on(neg.call_async(&mut store, &[Val::I64(7)], &mut results))?;
    /// assert_eq!(results[0].unwrap_i64(), -7);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_async<T: 'static>(
        &self,
        store: impl AsContextMut<Data = T>,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<()> {
        let mut call = StoreCall::new(store, self.runtime.as_deref());
        let func = self.inner;
        poll_fn(|cx| call.poll(cx, |store| func.call(store, params, results))).await
    }

    /// This function with a static signature.
    ///
    /// # Errors
    ///
    /// Fails if the function's type is not `Params -> Results`.
    pub fn typed<Params, Results>(
        &self,
        store: impl AsContext,
    ) -> Result<TypedFunc<Params, Results>>
    where
        Params: WasmParams,
        Results: WasmResults,
    {
        Ok(TypedFunc {
            inner: self.inner.typed(store)?,
            runtime: self.runtime.clone(),
        })
    }
}

/// An exported function with a static signature, such as `(i32, i32) -> i32`,
/// called as a future.
///
/// `Params` is a tuple of wasm value types (`()`, `i32`, `(i32, i64)`, ...)
/// and `Results` likewise, as in [`wasmtime::TypedFunc`].
pub struct TypedFunc<Params, Results> {
    pub(crate) inner: wasmtime::TypedFunc<Params, Results>,
    pub(crate) runtime: Option<Arc<Runtime>>,
}

impl<Params, Results> Clone for TypedFunc<Params, Results> {
    fn clone(&self) -> Self {
        TypedFunc {
            inner: self.inner.clone(),
            runtime: self.runtime.clone(),
        }
    }
}

impl<Params, Results> std::fmt::Debug for TypedFunc<Params, Results> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedFunc")
            .field("instrumented", &self.runtime.is_some())
            .finish_non_exhaustive()
    }
}

impl<Params, Results> TypedFunc<Params, Results>
where
    Params: WasmParams + Clone,
    Results: WasmResults,
{
    /// Calls the function; the future completes with its results.
    ///
    /// Behaves as [`Func::call_async`] (suspension, nesting, cancellation,
    /// errors); `params` are kept to call the export again when it resumes.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let module = Module::new(&engine, wat::parse_str(r#"(module (func (export "swap") (param i32 f64) (result f64 i32)
    ///     local.get 1 local.get 0))"#)?)?;
    /// let mut store = Store::new(&engine, ());
    /// let instance = Linker::new(&engine).instantiate(&mut store, &module)?;
    /// let swap = instance.get_typed_func::<(i32, f64), (f64, i32)>(&mut store, "swap")?;
    /// let out = futures::executor::block_on(swap.call_async(&mut store, (1, 2.5)))?;
    /// assert_eq!(out, (2.5, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_async<T: 'static>(
        &self,
        store: impl AsContextMut<Data = T>,
        params: Params,
    ) -> Result<Results> {
        let mut call = StoreCall::new(store, self.runtime.as_deref());
        let func = &self.inner;
        poll_fn(|cx| call.poll(cx, |store| func.call(store, params.clone()))).await
    }

    /// The dynamically typed view of this function.
    pub fn func(&self) -> Func {
        Func {
            inner: *self.inner.func(),
            runtime: self.runtime.clone(),
        }
    }
}

/// An export call with the store it runs in.
///
/// Its errors come out as [`surface`] makes them, and it is dropped with the
/// store lent to the import futures it drops, so that what an import future
/// took out of the store goes back when a suspended call is cancelled (the
/// WASI functions do that with the context, see `wasi`).
pub(crate) struct StoreCall<'r, S: AsContextMut> {
    store: S,
    /// `None` only while being dropped.
    core: Option<CallCore<'r>>,
}

impl<'r, T: 'static, S: AsContextMut<Data = T>> StoreCall<'r, S> {
    /// A call into an instance with `runtime` (`None`: not instrumented).
    pub(crate) fn new(store: S, runtime: Option<&'r Runtime>) -> Self {
        StoreCall {
            store,
            core: Some(CallCore::new(runtime)),
        }
    }

    /// Advances the call (see `CallCore::poll`).
    pub(crate) fn poll<O>(
        &mut self,
        cx: &mut Context<'_>,
        invoke: impl FnMut(StoreContextMut<'_, T>) -> Result<O>,
    ) -> Poll<Result<O>> {
        let Some(core) = &mut self.core else {
            return Poll::Ready(Err(wasmtime::format_err!(
                "an export call was polled after it was dropped"
            )));
        };
        match core.poll(self.store.as_context_mut(), cx, invoke) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(surface(e))),
            poll => poll,
        }
    }
}

impl<S: AsContextMut> Drop for StoreCall<'_, S>
where
    S::Data: 'static,
{
    fn drop(&mut self) {
        let core = self.core.take();
        access::publish(&mut self.store.as_context_mut(), move || drop(core));
    }
}
