//! Definitions, name resolution and shadowing.

use std::collections::HashMap;
use std::future::{ready, Future};
use std::sync::{Arc, OnceLock};
use std::task::Poll;

use wasmtime::{
    AsContext, AsContextMut, Caller, Engine, Extern, ExternType, FuncType, ImportType, IntoFunc,
    Module, Result, StoreContextMut, Val,
};

use crate::buffer::BufferConfig;
use crate::driver;
use crate::error::surface;
use crate::host::{self, AsyncHostFunc, InstanceSlot};
use crate::instance::{Func, Instance, StoreCall};
use crate::runtime::{self, Runtime};
use crate::time_slice::TimeSlicing;
use crate::{AsyncCaller, Error, UnknownImport, WasmValues};

/// What a name is bound to.
enum Definition<T> {
    /// An item of one store (from [`Linker::define`] or an uninstrumented instance).
    Extern(Extern),
    /// A synchronous host function, kept in the inner wasmtime linker under this key.
    Sync(String),
    /// An async host function.
    Async(Arc<AsyncHostFunc<T>>),
    /// A function exported by an instrumented instance.
    Export(Func),
}

impl<T> Clone for Definition<T> {
    fn clone(&self) -> Self {
        match self {
            Definition::Extern(e) => Definition::Extern(e.clone()),
            Definition::Sync(k) => Definition::Sync(k.clone()),
            Definition::Async(h) => Definition::Async(h.clone()),
            Definition::Export(f) => Definition::Export(f.clone()),
        }
    }
}

/// Links modules by name and instantiates them, with imports that may be
/// async closures.
///
/// The model is wasmtime's [`Linker`](wasmtime::Linker) (and wasm-linker-js's):
/// define host functions, memories, tables and globals under `module::name`,
/// register whole instances under a module name, then instantiate modules
/// whose imports are resolved by name. What is new is
/// [`func_wrap_async`](Self::func_wrap_async) and
/// [`func_new_async`](Self::func_new_async): imports served by futures. A
/// module instrumented with asyncify (by this project or by Binaryen's
/// `wasm-opt --asyncify`) unwinds while such a future is pending and rewinds
/// when it completes, so its exports are called as futures
/// ([`Func::call_async`]) on any executor, with wasmtime's async support off
/// and no fiber stacks.
///
/// By default a name can be defined once; see [`allow_shadowing`](Self::allow_shadowing).
///
/// ```
/// # fn main() -> wasmtime::Result<()> {
/// use asyncify_linker::{AsyncCaller, Linker};
/// use wasmtime::{Engine, Module, Store};
///
/// let engine = Engine::default();
/// let wat = r#"(module
///     (import "host" "fetch" (func $fetch (param i32) (result i32)))
///     (memory (export "memory") 1)
///     (func (export "run") (param i32) (result i32)
///         (i32.add (call $fetch (local.get 0)) (i32.const 1))))"#;
/// let instrumented = asyncify_transform::instrument(wat.as_bytes(), &Default::default())?;
/// let module = Module::new(&engine, &instrumented.wasm)?;
///
/// let mut linker = Linker::new(&engine);
/// linker.func_wrap_async("host", "fetch", |_caller: AsyncCaller<()>, x: i32| async move {
///     // Waits for another thread: the instance unwinds meanwhile.
///     let (tx, rx) = futures::channel::oneshot::channel();
///     std::thread::spawn(move || tx.send(x * 10));
///     Ok(rx.await?)
/// })?;
/// let mut store = Store::new(&engine, ());
/// let instance = linker.instantiate(&mut store, &module)?;
/// let run = instance.get_typed_func::<i32, i32>(&mut store, "run")?;
/// assert_eq!(futures::executor::block_on(run.call_async(&mut store, 4))?, 41);
/// # Ok(())
/// # }
/// ```
pub struct Linker<T> {
    engine: Engine,
    /// Holds the synchronous host functions, each under a unique key in module "".
    sync: wasmtime::Linker<T>,
    next_sync: u64,
    map: HashMap<String, HashMap<String, Definition<T>>>,
    allow_shadowing: bool,
    buffer: BufferConfig,
    /// Set by [`Linker::time_slicing`]: instances get its first slice.
    pub(crate) time_slicing: Option<TimeSlicing>,
}

impl<T> std::fmt::Debug for Linker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<String> = self
            .map
            .iter()
            .flat_map(|(m, names)| names.keys().map(move |n| format!("{m}::{n}")))
            .collect();
        names.sort();
        f.debug_struct("Linker")
            .field("definitions", &names)
            .field("allow_shadowing", &self.allow_shadowing)
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for Linker<T> {
    fn clone(&self) -> Self {
        Linker {
            engine: self.engine.clone(),
            sync: self.sync.clone(),
            next_sync: self.next_sync,
            map: self.map.clone(),
            allow_shadowing: self.allow_shadowing,
            buffer: self.buffer.clone(),
            time_slicing: self.time_slicing,
        }
    }
}

impl<T: 'static> Linker<T> {
    /// A linker with no definitions, for stores of `engine`.
    ///
    /// ```
    /// let engine = wasmtime::Engine::default();
    /// let linker = asyncify_linker::Linker::<()>::new(&engine);
    /// assert!(wasmtime::Engine::same(linker.engine(), &engine));
    /// ```
    pub fn new(engine: &Engine) -> Linker<T> {
        Linker {
            engine: engine.clone(),
            sync: wasmtime::Linker::new(engine),
            next_sync: 0,
            map: HashMap::new(),
            allow_shadowing: false,
            buffer: BufferConfig::default(),
            time_slicing: None,
        }
    }

    /// The engine this linker defines functions for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether defining a name that is already defined replaces it (`true`:
    /// the last definition wins, as in wasm-linker-js) or is an error naming
    /// it (`false`, the default).
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// # let engine = wasmtime::Engine::default();
    /// let mut linker = asyncify_linker::Linker::<()>::new(&engine);
    /// linker.func_wrap("env", "f", || 1i32)?;
    /// let err = linker.func_wrap("env", "f", || 2i32).unwrap_err();
    /// assert!(err.to_string().contains("`env::f` is defined twice"));
    /// linker.allow_shadowing(true);
    /// linker.func_wrap("env", "f", || 2i32)?; // now replaces the first
    /// # Ok(())
    /// # }
    /// ```
    pub fn allow_shadowing(&mut self, allow: bool) -> &mut Self {
        self.allow_shadowing = allow;
        self
    }

    /// The free space (in bytes) a suspending call gets at least in the
    /// asyncify buffer of instances created from now on. Default 1 MiB.
    ///
    /// The space is taken (in whole pages) the first time a call suspends.
    /// When a call's stack does not fit, that call fails with
    /// [`Error::BufferOverflow`] and the space doubles for later calls, up to
    /// [`max_buffer_size`](Self::max_buffer_size). See the crate docs on the
    /// buffer for where it is placed.
    ///
    /// ```
    /// # let engine = wasmtime::Engine::default();
    /// let mut linker = asyncify_linker::Linker::<()>::new(&engine);
    /// linker.buffer_size(64 * 1024).max_buffer_size(16 << 20);
    /// ```
    pub fn buffer_size(&mut self, bytes: u64) -> &mut Self {
        self.buffer.initial = bytes;
        self
    }

    /// The most free space a suspending call can get after the buffer grew
    /// because of overflows, and the most bytes the suspended calls of one
    /// instance keep saved (in host memory) all together. Default 64 MiB.
    pub fn max_buffer_size(&mut self, bytes: u64) -> &mut Self {
        self.buffer.max = bytes;
        self
    }

    /// The most host stack (in bytes) that calls nested inside async imports
    /// may use on one thread, for instances created from now on. Default
    /// 1 MiB.
    ///
    /// An async import can call back into an instance
    /// ([`AsyncCaller::call_async`]), whose import can call back again, and
    /// so on: each level that waits keeps its future inside the one above,
    /// and polling the innermost goes through all of them on the host
    /// stack. The linker measures the stack in use when it starts or
    /// resumes a call, and fails that call with [`Error::TooDeep`] past this
    /// limit, instead of letting a guest overflow the host's stack. Keep it
    /// well below the stack of the threads that poll the calls (2 MiB for
    /// Rust's spawned threads, 8 MiB for the main thread on Linux), leaving
    /// room for wasm (wasmtime's `max_wasm_stack`, 512 KiB by default).
    ///
    /// ```
    /// # let engine = wasmtime::Engine::default();
    /// let mut linker = asyncify_linker::Linker::<()>::new(&engine);
    /// linker.max_nesting_stack(256 * 1024);
    /// ```
    pub fn max_nesting_stack(&mut self, bytes: u64) -> &mut Self {
        self.buffer.nesting_stack = bytes;
        self
    }

    /// Puts the asyncify buffer of instances created from now on at
    /// `[offset, offset + len)` of their memory, which the embedder knows the
    /// guest leaves alone (the JS runtime uses 1000 bytes at 16, below the
    /// data that LLVM places at 1024). The buffer then never grows. The
    /// module's `asyncify_memory`, if it exports one, still takes precedence.
    ///
    /// The setting applies to instances created after it. Instances that
    /// share one memory need distinct ranges (change the setting between
    /// their instantiations): each uses its range as its own.
    pub fn fixed_buffer(&mut self, offset: u64, len: u64) -> &mut Self {
        self.buffer.fixed = Some((offset, len));
        self
    }

    /// Names the exported memory that the modules were instrumented to keep
    /// their buffer in (Binaryen's `asyncify-memory@NAME`, for modules with
    /// several memories). By default: `asyncify_memory` if exported, else the
    /// imported memory, else the export `memory`, else the only exported memory.
    pub fn buffer_memory(&mut self, export: &str) -> &mut Self {
        self.buffer.memory = Some(export.to_string());
        self
    }

    fn insert(&mut self, module: &str, name: &str, def: Definition<T>) -> Result<()> {
        let names = self.map.entry(module.to_string()).or_default();
        if !self.allow_shadowing && names.contains_key(name) {
            return Err(Error::DefinedTwice {
                module: module.to_string(),
                name: name.to_string(),
            }
            .into());
        }
        names.insert(name.to_string(), def);
        Ok(())
    }

    /// Fails as `insert` would, before anything is registered.
    fn check_free(&self, module: &str, name: &str) -> Result<()> {
        if !self.allow_shadowing && self.lookup(module, name).is_some() {
            return Err(Error::DefinedTwice {
                module: module.to_string(),
                name: name.to_string(),
            }
            .into());
        }
        Ok(())
    }

    fn lookup(&self, module: &str, name: &str) -> Option<&Definition<T>> {
        self.map.get(module)?.get(name)
    }

    /// Defines `module::name` as `item`: a function, memory, table or global
    /// of `store`. Several modules importing the same memory and table share
    /// them, as in dynamic linking.
    ///
    /// A function defined here is linked as it is. To import functions of an
    /// instrumented instance (which may suspend), register the instance with
    /// [`instance`](Self::instance) instead, so that the linker knows.
    ///
    /// # Errors
    ///
    /// [`Error::DefinedTwice`] if the name is taken and shadowing is off.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Memory, MemoryType, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let mut store = Store::new(&engine, ());
    /// let memory = Memory::new(&mut store, MemoryType::new(1, None))?;
    /// let mut linker = Linker::new(&engine);
    /// linker.define(&store, "env", "memory", memory)?;
    /// let wat = r#"(module (import "env" "memory" (memory 1))
    ///     (func (export "poke") (i32.store (i32.const 8) (i32.const 99))))"#;
    /// let module = Module::new(&engine, wat::parse_str(wat)?)?;
    /// let instance = linker.instantiate(&mut store, &module)?;
    /// let poke = instance.get_typed_func::<(), ()>(&mut store, "poke")?;
    /// futures::executor::block_on(poke.call_async(&mut store, ()))?;
    /// assert_eq!(memory.data(&store)[8], 99);
    /// # Ok(())
    /// # }
    /// ```
    pub fn define(
        &mut self,
        store: impl AsContext<Data = T>,
        module: &str,
        name: &str,
        item: impl Into<Extern>,
    ) -> Result<&mut Self> {
        let _ = store;
        self.insert(module, name, Definition::Extern(item.into()))?;
        Ok(self)
    }

    fn sync_key(&mut self) -> String {
        self.next_sync += 1;
        format!("sync{}", self.next_sync)
    }

    /// Defines `module::name` as a synchronous host function, exactly as
    /// [`wasmtime::Linker::func_wrap`] does (same closures: plain values in
    /// and out, optionally a [`Caller`] first). It works for instrumented and
    /// uninstrumented modules alike.
    ///
    /// A synchronous function must not call back into an instrumented
    /// instance's exports; use an async import for callbacks
    /// ([`AsyncCaller::call_async`]).
    ///
    /// # Errors
    ///
    /// [`Error::DefinedTwice`] if the name is taken and shadowing is off.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let mut linker = Linker::new(&engine);
    /// linker.func_wrap("host", "double", |x: i32| x * 2)?;
    /// let wat = r#"(module (import "host" "double" (func $d (param i32) (result i32)))
    ///     (func (export "quad") (param i32) (result i32) (call $d (call $d (local.get 0)))))"#;
    /// let module = Module::new(&engine, wat::parse_str(wat)?)?;
    /// let mut store = Store::new(&engine, ());
    /// let instance = linker.instantiate(&mut store, &module)?;
    /// let quad = instance.get_typed_func::<i32, i32>(&mut store, "quad")?;
    /// assert_eq!(futures::executor::block_on(quad.call_async(&mut store, 3))?, 12);
    /// # Ok(())
    /// # }
    /// ```
    pub fn func_wrap<Params, Args>(
        &mut self,
        module: &str,
        name: &str,
        func: impl IntoFunc<T, Params, Args>,
    ) -> Result<&mut Self> {
        self.check_free(module, name)?;
        let key = self.sync_key();
        self.sync.func_wrap("", &key, func)?;
        self.insert(module, name, Definition::Sync(key))?;
        Ok(self)
    }

    /// Defines `module::name` as a synchronous host function of type `ty`
    /// with dynamically typed values, as [`wasmtime::Linker::func_new`].
    ///
    /// # Errors
    ///
    /// [`Error::DefinedTwice`] if the name is taken and shadowing is off.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, FuncType, Val, ValType};
    ///
    /// let engine = Engine::default();
    /// let mut linker = Linker::<()>::new(&engine);
    /// let ty = FuncType::new(&engine, [ValType::I64], [ValType::I64]);
    /// linker.func_new("host", "inc", ty, |_caller, params, results| {
    ///     results[0] = Val::I64(params[0].unwrap_i64() + 1);
    ///     Ok(())
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<()> + Send + Sync + 'static,
    ) -> Result<&mut Self> {
        self.check_free(module, name)?;
        let key = self.sync_key();
        self.sync.func_new("", &key, ty, func)?;
        self.insert(module, name, Definition::Sync(key))?;
        Ok(self)
    }

    /// Defines `module::name` as an async import: `func` gets an
    /// [`AsyncCaller`] and the parameters (`()`, one value, or a tuple: see
    /// [`WasmValues`]) and returns a future of the results.
    ///
    /// When the future is ready on its first poll the import returns at once,
    /// with no unwinding. Otherwise the calling instance unwinds, the export
    /// call returns `Pending`, and the instance resumes once the future
    /// completes. If the future fails, the export call fails with that error
    /// and the instance stays usable.
    ///
    /// Only modules instrumented with asyncify can import it; instantiating a
    /// module that is not fails with [`Error::NotInstrumented`].
    ///
    /// # Errors
    ///
    /// [`Error::DefinedTwice`] if the name is taken and shadowing is off.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use std::time::Duration;
    /// use asyncify_linker::{AsyncCaller, Linker};
    ///
    /// # let engine = wasmtime::Engine::default();
    /// let mut linker = Linker::<()>::new(&engine);
    /// linker.func_wrap_async("env", "sleep_ms", |_: AsyncCaller<()>, ms: u32| async move {
    ///     // e.g. tokio::time::sleep(Duration::from_millis(ms.into())).await;
    ///     let _ = Duration::from_millis(ms.into());
    ///     Ok(())
    /// })?;
    /// linker.func_wrap_async("env", "div", |_: AsyncCaller<()>, (a, b): (i64, i64)| async move {
    ///     if b == 0 {
    ///         wasmtime::bail!("division by zero");
    ///     }
    ///     Ok((a / b, a % b))
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn func_wrap_async<Params, Results, F, Fut>(
        &mut self,
        module: &str,
        name: &str,
        func: F,
    ) -> Result<&mut Self>
    where
        Params: WasmValues,
        Results: WasmValues,
        F: Fn(AsyncCaller<T>, Params) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Results>> + Send + 'static,
    {
        let ty = FuncType::new(&self.engine, Params::types(), Results::types());
        let (m, n) = (module.to_string(), name.to_string());
        let host = AsyncHostFunc {
            ty: Some(ty),
            call: Box::new(move |caller, values| match Params::from_vals(&values) {
                Some(params) => host::boxed(func(caller, params)),
                None => Box::pin(ready(Err(wasmtime::format_err!(
                    "import `{m}::{n}` got parameters of the wrong types"
                )))),
            }),
        };
        self.insert(module, name, Definition::Async(Arc::new(host)))?;
        Ok(self)
    }

    /// Defines `module::name` as an async import of type `ty` with
    /// dynamically typed values: `func` gets an [`AsyncCaller`] and the
    /// parameters, and returns a future of the results. Otherwise as
    /// [`func_wrap_async`](Self::func_wrap_async).
    ///
    /// Unlike wasmtime's `func_new_async`, parameters come as an owned `Vec`
    /// and results are returned, because the future outlives the wasm call.
    ///
    /// # Errors
    ///
    /// [`Error::DefinedTwice`] if the name is taken and shadowing is off.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{FuncType, Val, ValType};
    ///
    /// # let engine = wasmtime::Engine::default();
    /// let mut linker = Linker::<()>::new(&engine);
    /// let ty = FuncType::new(&engine, [ValType::I32], [ValType::I32]);
    /// linker.func_new_async("env", "echo", ty, |_caller, params| async move { Ok(params) })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn func_new_async<F, Fut>(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: F,
    ) -> Result<&mut Self>
    where
        F: Fn(AsyncCaller<T>, Vec<Val>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Val>>> + Send + 'static,
    {
        let host = AsyncHostFunc {
            ty: Some(ty),
            call: Box::new(move |caller, values| Box::pin(func(caller, values))),
        };
        self.insert(module, name, Definition::Async(Arc::new(host)))?;
        Ok(self)
    }

    /// Registers every export of `instance` under `module_name`, so that
    /// modules instantiated later can import them.
    ///
    /// Functions of an instrumented instance may suspend: a module importing
    /// one calls it as a nested export call, and suspends with it. For that
    /// the importing module must be instrumented too, with these imports among
    /// those that may suspend (the default when instrumenting). An importer
    /// that is not instrumented can still call them; such a call fails with
    /// [`Error::CannotSuspend`] if it would have to wait.
    ///
    /// # Errors
    ///
    /// [`Error::DefinedTwice`] if a name is taken and shadowing is off.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let mut store = Store::new(&engine, ());
    /// let mut linker = Linker::new(&engine);
    /// let math = Module::new(&engine, wat::parse_str(r#"(module (func (export "sq") (param i32) (result i32)
    ///     (i32.mul (local.get 0) (local.get 0))))"#)?)?;
    /// let math = linker.instantiate(&mut store, &math)?;
    /// linker.instance(&mut store, "math", &math)?;
    /// let user = Module::new(&engine, wat::parse_str(r#"(module (import "math" "sq" (func $sq (param i32) (result i32)))
    ///     (func (export "run") (result i32) (call $sq (i32.const 9))))"#)?)?;
    /// let user = linker.instantiate(&mut store, &user)?;
    /// let run = user.get_typed_func::<(), i32>(&mut store, "run")?;
    /// assert_eq!(futures::executor::block_on(run.call_async(&mut store, ()))?, 81);
    /// # Ok(())
    /// # }
    /// ```
    pub fn instance(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        module_name: &str,
        instance: &Instance,
    ) -> Result<&mut Self> {
        let exports: Vec<(String, Extern)> = instance
            .inner
            .exports(&mut store)
            .map(|e| (e.name().to_string(), e.into_extern()))
            .collect();
        for (name, item) in exports {
            let def = match (item, &instance.runtime) {
                (Extern::Func(f), Some(rt))
                    if asyncify_abi::RuntimeFunction::from_export_name(&name).is_none() =>
                {
                    Definition::Export(Func {
                        inner: f,
                        runtime: Some(rt.clone()),
                    })
                }
                (item, _) => Definition::Extern(item),
            };
            self.insert(module_name, &name, def)?;
        }
        Ok(self)
    }

    /// Instantiates `module` and registers its exports under `module_name`
    /// (see [`instance`](Self::instance)). If the module exports
    /// `_initialize` (a WASI reactor), it is called first.
    ///
    /// Unlike wasmtime's, this always makes one instance (no new instance per
    /// call for WASI commands), as wasm-linker-js does.
    ///
    /// # Errors
    ///
    /// Those of [`instantiate`](Self::instantiate) and
    /// [`instance`](Self::instance); a trap in `_initialize`; and
    /// [`Error::CannotSuspend`] if `_initialize` waits for an async import
    /// (use [`module_async`](Self::module_async) then).
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let mut store = Store::new(&engine, ());
    /// let mut linker = Linker::new(&engine);
    /// let lib = Module::new(&engine, wat::parse_str(r#"(module (global (export "answer") i32 (i32.const 42)))"#)?)?;
    /// linker.module(&mut store, "lib", &lib)?;
    /// let user = Module::new(&engine, wat::parse_str(r#"(module (import "lib" "answer" (global i32)))"#)?)?;
    /// linker.instantiate(&mut store, &user)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn module(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        module_name: &str,
        module: &Module,
    ) -> Result<&mut Self> {
        let instance = self.instantiate(&mut store, module)?;
        if let Some(init) = instance.get_func(&mut store, "_initialize") {
            let mut call = StoreCall::new(store.as_context_mut(), init.runtime.as_deref());
            let inner = init.inner;
            let run = call.poll(&mut driver::noop_context(), |s| inner.call(s, &[], &mut []));
            drop(call);
            match run {
                Poll::Ready(r) => r?,
                Poll::Pending => {
                    return Err(Error::CannotSuspend {
                        module: module_name.to_string(),
                        name: "_initialize".to_string(),
                        reason: "`Linker::module` cannot wait for it; use `Linker::module_async`"
                            .into(),
                    }
                    .into())
                }
            }
        }
        self.instance(store, module_name, &instance)
    }

    /// As [`module`](Self::module), but `_initialize` may wait for async imports.
    ///
    /// # Errors
    ///
    /// As [`module`](Self::module), except that waiting is allowed.
    pub async fn module_async(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        module_name: &str,
        module: &Module,
    ) -> Result<&mut Self> {
        let instance = self.instantiate_async(&mut store, module).await?;
        self.instance(store, module_name, &instance)
    }

    /// Defines `as_module::as_name` as whatever `module::name` is now.
    ///
    /// # Errors
    ///
    /// [`Error::NotDefined`] if `module::name` is not defined;
    /// [`Error::DefinedTwice`] if the new name is taken and shadowing is off.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// # let engine = wasmtime::Engine::default();
    /// let mut linker = asyncify_linker::Linker::<()>::new(&engine);
    /// linker.func_wrap("env", "print", |_: i32| {})?;
    /// linker.alias("env", "print", "console", "log")?;
    /// assert!(linker.alias("env", "missing", "x", "y").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn alias(
        &mut self,
        module: &str,
        name: &str,
        as_module: &str,
        as_name: &str,
    ) -> Result<&mut Self> {
        let def = self
            .lookup(module, name)
            .cloned()
            .ok_or_else(|| Error::NotDefined {
                module: module.to_string(),
                name: name.to_string(),
            })?;
        self.insert(as_module, as_name, def)?;
        Ok(self)
    }

    /// Defines everything currently defined under `module` under `as_module`
    /// too (later definitions under `module` are not copied).
    ///
    /// # Errors
    ///
    /// [`Error::DefinedTwice`] if a new name is taken and shadowing is off.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// # let engine = wasmtime::Engine::default();
    /// let mut linker = asyncify_linker::Linker::<()>::new(&engine);
    /// linker.func_wrap("wasi_unstable", "proc_exit", |_: i32| {})?;
    /// linker.alias_module("wasi_unstable", "wasi_snapshot_preview1")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn alias_module(&mut self, module: &str, as_module: &str) -> Result<&mut Self> {
        let mut items: Vec<(String, Definition<T>)> = self
            .map
            .get(module)
            .map(|names| names.iter().map(|(n, d)| (n.clone(), d.clone())).collect())
            .unwrap_or_default();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, def) in items {
            self.insert(as_module, &name, def)?;
        }
        Ok(self)
    }

    /// Defines every function import of `module` that nothing defines yet as a
    /// function that traps, with an error naming the import, when called.
    ///
    /// # Errors
    ///
    /// None in practice (the names it defines are free).
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let module = Module::new(&engine, wat::parse_str(r#"(module (import "env" "missing" (func $m))
    ///     (func (export "run") (call $m)))"#)?)?;
    /// let mut linker = Linker::new(&engine);
    /// linker.define_unknown_imports_as_traps(&module)?;
    /// let mut store = Store::new(&engine, ());
    /// let instance = linker.instantiate(&mut store, &module)?;
    /// let run = instance.get_typed_func::<(), ()>(&mut store, "run")?;
    /// let err = futures::executor::block_on(run.call_async(&mut store, ())).unwrap_err();
    /// assert_eq!(err.to_string(), "unknown import `env::missing` was called");
    /// # Ok(())
    /// # }
    /// ```
    pub fn define_unknown_imports_as_traps(&mut self, module: &Module) -> Result<&mut Self> {
        for import in module.imports() {
            if self.lookup(import.module(), import.name()).is_some() {
                continue;
            }
            if let ExternType::Func(ty) = import.ty() {
                let message = format!(
                    "unknown import `{}::{}` was called",
                    import.module(),
                    import.name()
                );
                self.func_new(import.module(), import.name(), ty, move |_, _, _| {
                    Err(wasmtime::Error::msg(message.clone()))
                })?;
            }
        }
        Ok(self)
    }

    /// The item `module::name` as an extern of `store`: what a module
    /// importing it would get (async imports, which are made per importing
    /// instance, are `None`).
    pub fn get(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        name: &str,
    ) -> Option<Extern> {
        match self.lookup(module, name)? {
            Definition::Extern(e) => Some(e.clone()),
            Definition::Sync(key) => self.sync.get(&mut store, "", key).ok(),
            Definition::Async(_) => None,
            Definition::Export(f) => Some(Extern::Func(f.inner)),
        }
    }

    /// The function `module::name`, callable as a future: typically an export
    /// of an instance registered with [`instance`](Self::instance) or
    /// [`module`](Self::module). Async imports are `None`.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let mut store = Store::new(&engine, ());
    /// let mut linker = Linker::new(&engine);
    /// let m = Module::new(&engine, wat::parse_str(r#"(module (func (export "one") (result i32) i32.const 1))"#)?)?;
    /// linker.module(&mut store, "m", &m)?;
    /// let one = linker.get_func(&mut store, "m", "one").unwrap().typed::<(), i32>(&store)?;
    /// assert_eq!(futures::executor::block_on(one.call_async(&mut store, ()))?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_func(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
        name: &str,
    ) -> Option<Func> {
        match self.lookup(module, name)? {
            Definition::Export(f) => Some(f.clone()),
            _ => Some(Func {
                inner: self.get(&mut store, module, name)?.into_func()?,
                runtime: None,
            }),
        }
    }

    /// Instantiates `module` with its imports resolved by name, running its
    /// start function.
    ///
    /// The module is instrumented if it exports the five `asyncify_*`
    /// functions; only then may it import async functions, and it then gets
    /// an asyncify buffer the first time one of its calls suspends.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownImports`] listing every import nothing defines, with
    /// its type; [`Error::NotInstrumented`] naming an async import given to a
    /// module that is not instrumented; wasmtime's errors for imports of the
    /// wrong type; a trap in the start function.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::{Error, Linker};
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let module = Module::new(&engine, wat::parse_str(r#"(module (import "env" "a" (func (param i32)))
    ///     (import "env" "b" (global i64)))"#)?)?;
    /// let mut store = Store::new(&engine, ());
    /// let err = Linker::new(&engine).instantiate(&mut store, &module).unwrap_err();
    /// assert!(matches!(err.downcast_ref::<Error>(), Some(Error::UnknownImports(list)) if list.len() == 2));
    /// assert!(err.to_string().contains("`env::a`: func (param i32)"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn instantiate(
        &self,
        store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> Result<Instance> {
        self.resolve(module)?
            .instantiate(store, &self.sync, &self.buffer)
    }

    /// As [`instantiate`](Self::instantiate), then calls the module's
    /// `_initialize` export if it has one (a WASI reactor), which may wait for
    /// async imports: the future completes when it has returned.
    ///
    /// The wasm start function runs during instantiation, before the linker
    /// has an instance to unwind, so it cannot wait: an async import that is
    /// not ready when it calls it fails instantiation with
    /// [`Error::CannotSuspend`]. Modules that need to wait while they set up
    /// do it in `_initialize`.
    ///
    /// # Errors
    ///
    /// Those of [`instantiate`](Self::instantiate), and those of the
    /// `_initialize` call ([`Func::call_async`]).
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::{AsyncCaller, Linker};
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let wat = r#"(module
    ///     (import "env" "load" (func $load (result i32)))
    ///     (memory (export "memory") 1)
    ///     (global $config (mut i32) (i32.const 0))
    ///     (func (export "_initialize") (global.set $config (call $load)))
    ///     (func (export "config") (result i32) (global.get $config)))"#;
    /// let wasm = asyncify_transform::instrument(wat.as_bytes(), &Default::default())?.wasm;
    /// let engine = Engine::default();
    /// let mut linker = Linker::new(&engine);
    /// linker.func_wrap_async("env", "load", |_: AsyncCaller<()>, ()| async {
    ///     asyncify_linker::yield_now().await; // waits: `_initialize` suspends
    ///     Ok(7)
    /// })?;
    /// let module = Module::new(&engine, &wasm)?;
    /// let mut store = Store::new(&engine, ());
    /// let instance = futures::executor::block_on(linker.instantiate_async(&mut store, &module))?;
    /// let config = instance.get_typed_func::<(), i32>(&mut store, "config")?;
    /// assert_eq!(futures::executor::block_on(config.call_async(&mut store, ()))?, 7);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn instantiate_async(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> Result<Instance> {
        let instance = self.instantiate(&mut store, module)?;
        initialize(&instance, store).await?;
        Ok(instance)
    }

    /// Resolves the imports of `module` once, for instantiating it many
    /// times: [`InstancePre::instantiate`] skips the name lookups and checks
    /// that [`instantiate`](Self::instantiate) makes each time. What a server
    /// that makes an instance per request wants.
    ///
    /// The definitions are those of the linker now; later changes to the
    /// linker do not affect the result. Items defined with
    /// [`define`](Self::define) or from [`instance`](Self::instance) belong
    /// to one store, and instantiating into another store fails (wasmtime's
    /// error); host functions and async imports work in any store of the
    /// engine.
    ///
    /// # Errors
    ///
    /// Those of [`instantiate`](Self::instantiate) that do not depend on a
    /// store: [`Error::UnknownImports`] and [`Error::NotInstrumented`].
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::{AsyncCaller, Linker};
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let wat = r#"(module
    ///     (import "env" "next" (func $next (result i32)))
    ///     (memory (export "memory") 1)
    ///     (func (export "run") (result i32) (i32.add (call $next) (i32.const 1))))"#;
    /// let wasm = asyncify_transform::instrument(wat.as_bytes(), &Default::default())?.wasm;
    /// let engine = Engine::default();
    /// let mut linker = Linker::new(&engine);
    /// linker.func_wrap_async("env", "next", |_: AsyncCaller<u32>, ()| async {
    ///     asyncify_linker::yield_now().await;
    ///     Ok(41)
    /// })?;
    /// let pre = linker.instantiate_pre(&Module::new(&engine, &wasm)?)?;
    /// for request in 0..3u32 {
    ///     let mut store = Store::new(&engine, request);
    ///     let instance = pre.instantiate(&mut store)?;
    ///     let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
    ///     assert_eq!(futures::executor::block_on(run.call_async(&mut store, ()))?, 42);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn instantiate_pre(&self, module: &Module) -> Result<InstancePre<T>> {
        Ok(InstancePre {
            resolved: Arc::new(self.resolve(module)?),
            sync: self.sync.clone(),
            buffer: self.buffer.clone(),
        })
    }

    /// Every definition, sorted by module then name, as the extern of
    /// `store` that a module importing it would get; `None` for async
    /// imports, which are made per importing instance.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::{AsyncCaller, Linker};
    /// use wasmtime::{Engine, Store};
    ///
    /// let engine = Engine::default();
    /// let mut linker = Linker::new(&engine);
    /// linker.func_wrap("env", "add", |a: i32, b: i32| a + b)?;
    /// linker.func_wrap_async("env", "wait", |_: AsyncCaller<()>, ()| async { Ok(()) })?;
    /// let mut store = Store::new(&engine, ());
    /// let items: Vec<(&str, &str, bool)> = linker
    ///     .iter(&mut store)
    ///     .map(|(module, name, item)| (module, name, item.is_some()))
    ///     .collect();
    /// assert_eq!(items, [("env", "add", true), ("env", "wait", false)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn iter(
        &self,
        mut store: impl AsContextMut<Data = T>,
    ) -> impl Iterator<Item = (&str, &str, Option<Extern>)> {
        let mut names: Vec<(&str, &str)> = self
            .map
            .iter()
            .flat_map(|(m, names)| names.keys().map(move |n| (m.as_str(), n.as_str())))
            .collect();
        names.sort_unstable();
        names
            .into_iter()
            .map(|(m, n)| (m, n, self.get(&mut store, m, n)))
            .collect::<Vec<_>>()
            .into_iter()
    }

    /// The default export of the module registered as `module`: its export
    /// `""` if defined, else `_start`, as in wasmtime. (This linker keeps one
    /// instance per registered module, so for a WASI command it is that
    /// instance's `_start`, not a new instance per call.)
    ///
    /// # Errors
    ///
    /// [`Error::NotDefined`] naming `module::_start` if neither is defined,
    /// or if the definition is not a function of `store`.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let mut store = Store::new(&engine, ());
    /// let mut linker = Linker::new(&engine);
    /// let cmd = Module::new(&engine, wat::parse_str(r#"(module (func (export "_start")))"#)?)?;
    /// linker.module(&mut store, "cmd", &cmd)?;
    /// let start = linker.get_default(&mut store, "cmd")?;
    /// futures::executor::block_on(start.call_async(&mut store, &[], &mut []))?;
    /// assert!(linker.get_default(&mut store, "nothing").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_default(
        &self,
        mut store: impl AsContextMut<Data = T>,
        module: &str,
    ) -> Result<Func> {
        ["", "_start"]
            .into_iter()
            .find_map(|name| self.get_func(&mut store, module, name))
            .ok_or_else(|| {
                Error::NotDefined {
                    module: module.to_string(),
                    name: "_start".to_string(),
                }
                .into()
            })
    }

    /// The item that `import` names, as [`get`](Self::get) would return it.
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let mut linker = Linker::new(&engine);
    /// linker.func_wrap("env", "f", || {})?;
    /// let module = Module::new(&engine, wat::parse_str(r#"(module (import "env" "f" (func)) (import "env" "g" (func)))"#)?)?;
    /// let mut store = Store::new(&engine, ());
    /// let found: Vec<bool> = module
    ///     .imports()
    ///     .map(|import| linker.get_by_import(&mut store, &import).is_some())
    ///     .collect();
    /// assert_eq!(found, [true, false]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_by_import(
        &self,
        store: impl AsContextMut<Data = T>,
        import: &ImportType<'_>,
    ) -> Option<Extern> {
        self.get(store, import.module(), import.name())
    }

    /// Defines every import of `module` that nothing defines yet as an item
    /// of `store` with default values: functions that ignore their arguments
    /// and return zeros (or null references), and zeroed globals, tables and
    /// memories of the imported types, as wasmtime's method of the same name.
    ///
    /// # Errors
    ///
    /// An error naming the import if its type has no default value (a
    /// non-nullable reference).
    ///
    /// ```
    /// # fn main() -> wasmtime::Result<()> {
    /// use asyncify_linker::Linker;
    /// use wasmtime::{Engine, Module, Store};
    ///
    /// let engine = Engine::default();
    /// let module = Module::new(&engine, wat::parse_str(r#"(module
    ///     (import "env" "answer" (func $answer (result i32)))
    ///     (import "env" "base" (global i32))
    ///     (func (export "run") (result i32) (call $answer)))"#)?)?;
    /// let mut store = Store::new(&engine, ());
    /// let mut linker = Linker::new(&engine);
    /// linker.define_unknown_imports_as_default_values(&mut store, &module)?;
    /// let instance = linker.instantiate(&mut store, &module)?;
    /// let run = instance.get_typed_func::<(), i32>(&mut store, "run")?;
    /// assert_eq!(futures::executor::block_on(run.call_async(&mut store, ()))?, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn define_unknown_imports_as_default_values(
        &mut self,
        mut store: impl AsContextMut<Data = T>,
        module: &Module,
    ) -> Result<&mut Self> {
        let mut store = store.as_context_mut();
        for import in module.imports() {
            if self.lookup(import.module(), import.name()).is_some() {
                continue;
            }
            let item = import.ty().default_value(&mut store).map_err(|e| {
                wasmtime::format_err!(
                    "no default value exists for import `{}::{}` ({}): {e}",
                    import.module(),
                    import.name(),
                    UnknownImport {
                        module: import.module().to_string(),
                        name: import.name().to_string(),
                        ty: import.ty(),
                    }
                )
            })?;
            self.insert(import.module(), import.name(), Definition::Extern(item))?;
        }
        Ok(self)
    }

    /// Looks up every import of `module`, store-independently.
    fn resolve(&self, module: &Module) -> Result<Resolved<T>> {
        let mem64 = runtime::instrumented(module);
        let mut imports = Vec::new();
        let mut unknown = Vec::new();
        for import in module.imports() {
            let (m, n) = (import.module(), import.name());
            let Some(def) = self.lookup(m, n) else {
                unknown.push(UnknownImport {
                    module: m.to_string(),
                    name: n.to_string(),
                    ty: import.ty(),
                });
                continue;
            };
            if let Definition::Async(host) = def {
                if mem64.is_none() {
                    return Err(Error::NotInstrumented {
                        importer: runtime::module_name(module),
                        module: m.to_string(),
                        name: n.to_string(),
                    }
                    .into());
                }
                if host.ty.is_none() {
                    return Err(wasmtime::format_err!("`{m}::{n}` has no type"));
                }
            }
            imports.push(ResolvedImport {
                def: def.clone(),
                module: m.to_string(),
                name: n.to_string(),
                memory: matches!(import.ty(), ExternType::Memory(_)),
            });
        }
        if !unknown.is_empty() {
            return Err(Error::UnknownImports(unknown).into());
        }
        Ok(Resolved {
            module: module.clone(),
            mem64,
            imports,
            time_slicing: self.time_slicing,
        })
    }
}

/// Calls `_initialize` if the instance exports it (a WASI reactor).
async fn initialize<T: 'static>(
    instance: &Instance,
    mut store: impl AsContextMut<Data = T>,
) -> Result<()> {
    if let Some(init) = instance.get_func(&mut store, "_initialize") {
        init.call_async(&mut store, &[], &mut []).await?;
    }
    Ok(())
}

/// One import of a module and what the linker resolved it to.
struct ResolvedImport<T> {
    def: Definition<T>,
    module: String,
    name: String,
    /// Whether the import is a memory (the first one may hold the buffer).
    memory: bool,
}

/// The imports of a module, resolved by name.
struct Resolved<T> {
    module: Module,
    /// `Some(mem64)` if the module is instrumented.
    mem64: Option<bool>,
    imports: Vec<ResolvedImport<T>>,
    /// The linker's [`TimeSlicing`]: instances get its first slice.
    time_slicing: Option<TimeSlicing>,
}

impl<T: 'static> Resolved<T> {
    /// Makes the externs for one instance in `store` and instantiates.
    fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = T>,
        sync: &wasmtime::Linker<T>,
        buffer: &BufferConfig,
    ) -> Result<Instance> {
        let mut store = store.as_context_mut();
        assert!(
            Engine::same(sync.engine(), store.engine()),
            "the store and the linker have different engines"
        );
        let slot: InstanceSlot = Arc::new(OnceLock::new());
        let mut externs = Vec::with_capacity(self.imports.len());
        let mut first_memory = None;
        for import in &self.imports {
            let (m, n) = (import.module.as_str(), import.name.as_str());
            let item = extern_for(&mut store, &import.def, sync, &slot, self.mem64, m, n)?;
            if first_memory.is_none() && import.memory {
                first_memory = Some(item.clone());
            }
            externs.push(item);
        }
        let inner = wasmtime::Instance::new(&mut store, &self.module, &externs).map_err(surface)?;
        let runtime = match self.mem64 {
            Some(mem64) => Some(Arc::new(Runtime::new(
                &mut store,
                inner,
                &self.module,
                mem64,
                first_memory,
                buffer,
            )?)),
            None => None,
        };
        if let Some(slicing) = &self.time_slicing {
            slicing.start_budget(&mut store, inner);
        }
        let instance = Instance { inner, runtime };
        let _ = slot.set(instance.clone());
        Ok(instance)
    }
}

/// The extern that definition `def` of `m::n` gives one importing instance
/// (whose [`Instance`] will be in `slot`; `mem64` is `Some` if the importer is
/// instrumented).
fn extern_for<T: 'static>(
    store: &mut StoreContextMut<'_, T>,
    def: &Definition<T>,
    sync: &wasmtime::Linker<T>,
    slot: &InstanceSlot,
    mem64: Option<bool>,
    m: &str,
    n: &str,
) -> Result<Extern> {
    Ok(match def {
        Definition::Extern(e) => e.clone(),
        Definition::Sync(key) => sync.get(&mut *store, "", key)?,
        Definition::Async(host) => {
            let ty = match &host.ty {
                Some(ty) => ty.clone(),
                None => return Err(wasmtime::format_err!("`{m}::{n}` has no type")),
            };
            Extern::Func(host::async_import(
                &mut *store,
                ty,
                host.clone(),
                slot.clone(),
                m,
                n,
            ))
        }
        Definition::Export(func) => {
            if mem64.is_some() {
                let ty = func.inner.ty(&*store);
                let host = host::export_as_async_import::<T>(func.clone());
                Extern::Func(host::async_import(
                    &mut *store,
                    ty,
                    host,
                    slot.clone(),
                    m,
                    n,
                ))
            } else {
                Extern::Func(host::export_as_sync_import(&mut *store, func.clone(), m, n))
            }
        }
    })
}

/// What the dynamic loader gives one import of a module it instantiates
/// ([`Linker::instantiate_member`]).
pub(crate) enum Provided<T> {
    /// This item, as it is.
    Extern(Extern),
    /// An async host function, made for this importer.
    Async(Arc<AsyncHostFunc<T>>),
    /// The linker's own definition of the name.
    Host,
    /// Nothing: the import is reported as unknown.
    Missing,
}

/// Decides one import of a group member ([`Linker::instantiate_member`]).
pub(crate) type ProvideImport<'a, T> =
    dyn FnMut(&mut StoreContextMut<'_, T>, &ImportType<'_>) -> Result<Provided<T>> + 'a;

/// Gives a new group member (instrumented or not) the group's runtime.
pub(crate) type MemberRuntime<'a, T> = dyn FnMut(&mut StoreContextMut<'_, T>, wasmtime::Instance, bool) -> Result<Option<Arc<Runtime>>>
    + 'a;

impl<T: 'static> Linker<T> {
    /// Whether `module::name` is defined.
    pub(crate) fn defines(&self, module: &str, name: &str) -> bool {
        self.lookup(module, name).is_some()
    }

    /// The definition of `module::name` as an extern that `instance` could
    /// import (an async import is made for it), if defined.
    pub(crate) fn host_extern(
        &self,
        store: &mut StoreContextMut<'_, T>,
        module: &str,
        name: &str,
        instance: &Instance,
    ) -> Option<Result<Extern>> {
        let def = self.lookup(module, name)?;
        let mem64 = instance.runtime.as_ref().map(|_| false);
        if matches!(def, Definition::Async(_)) && mem64.is_none() {
            return Some(Err(wasmtime::format_err!(
                "`{module}::{name}` is an async import, and the main module is not instrumented"
            )));
        }
        let slot: InstanceSlot = Arc::new(OnceLock::new());
        let _ = slot.set(instance.clone());
        Some(extern_for(
            store, def, &self.sync, &slot, mem64, module, name,
        ))
    }

    /// The buffer settings instances get.
    pub(crate) fn buffer_config(&self) -> &BufferConfig {
        &self.buffer
    }

    /// Instantiates `module` as one member of a group of instances that share
    /// one asyncify state (dynamic linking): `provide` decides each import
    /// first, and `runtime` gives the group's runtime to the new instance if
    /// the module is instrumented (creating it from this instance if the
    /// group has none yet). Fails with [`Error::UnknownImports`] listing the
    /// imports `provide` left [`Provided::Missing`] (or [`Provided::Host`]
    /// without a definition).
    pub(crate) fn instantiate_member(
        &self,
        store: &mut StoreContextMut<'_, T>,
        module: &Module,
        provide: &mut ProvideImport<'_, T>,
        runtime: &mut MemberRuntime<'_, T>,
    ) -> Result<Instance> {
        let mem64 = runtime::instrumented(module);
        let slot: InstanceSlot = Arc::new(OnceLock::new());
        let mut externs = Vec::new();
        let mut unknown = Vec::new();
        for import in module.imports() {
            let (m, n) = (import.module(), import.name());
            let item = match provide(store, &import)? {
                Provided::Extern(e) => Some(e),
                Provided::Async(host) => {
                    if mem64.is_none() {
                        return Err(Error::NotInstrumented {
                            importer: runtime::module_name(module),
                            module: m.to_string(),
                            name: n.to_string(),
                        }
                        .into());
                    }
                    let ty = match (&host.ty, import.ty()) {
                        (Some(ty), _) => ty.clone(),
                        (None, ExternType::Func(ty)) => ty,
                        (None, _) => return Err(wasmtime::format_err!("`{m}::{n}` has no type")),
                    };
                    let func = host::async_import(&mut *store, ty, host, slot.clone(), m, n);
                    Some(Extern::Func(func))
                }
                Provided::Host => match self.lookup(m, n) {
                    Some(Definition::Async(_)) if mem64.is_none() => {
                        return Err(Error::NotInstrumented {
                            importer: runtime::module_name(module),
                            module: m.to_string(),
                            name: n.to_string(),
                        }
                        .into())
                    }
                    Some(def) => Some(extern_for(store, def, &self.sync, &slot, mem64, m, n)?),
                    None => None,
                },
                Provided::Missing => None,
            };
            match item {
                Some(item) => externs.push(item),
                None => unknown.push(UnknownImport {
                    module: m.to_string(),
                    name: n.to_string(),
                    ty: import.ty(),
                }),
            }
        }
        if !unknown.is_empty() {
            return Err(Error::UnknownImports(unknown).into());
        }
        let inner = wasmtime::Instance::new(&mut *store, module, &externs).map_err(surface)?;
        let runtime = runtime(store, inner, mem64.is_some())?;
        if let Some(slicing) = &self.time_slicing {
            slicing.start_budget(&mut *store, inner);
        }
        let instance = Instance { inner, runtime };
        let _ = slot.set(instance.clone());
        Ok(instance)
    }
}

/// A module with its imports resolved by a [`Linker`], ready to be
/// instantiated many times ([`Linker::instantiate_pre`]).
///
/// Cloning is cheap; clones share the resolution.
pub struct InstancePre<T> {
    resolved: Arc<Resolved<T>>,
    sync: wasmtime::Linker<T>,
    buffer: BufferConfig,
}

impl<T> Clone for InstancePre<T> {
    fn clone(&self) -> Self {
        InstancePre {
            resolved: self.resolved.clone(),
            sync: self.sync.clone(),
            buffer: self.buffer.clone(),
        }
    }
}

impl<T> std::fmt::Debug for InstancePre<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePre")
            .field("module", &runtime::module_name(&self.resolved.module))
            .field("instrumented", &self.resolved.mem64.is_some())
            .field("imports", &self.resolved.imports.len())
            .finish_non_exhaustive()
    }
}

impl<T: 'static> InstancePre<T> {
    /// The module this instantiates.
    pub fn module(&self) -> &Module {
        &self.resolved.module
    }

    /// Instantiates the module in `store`, running its start function, as
    /// [`Linker::instantiate`] does with the definitions it had when this was
    /// made.
    ///
    /// # Errors
    ///
    /// wasmtime's errors for items of another store or of the wrong type; a
    /// trap in the start function; [`Error::CannotSuspend`] if the start
    /// function waits.
    pub fn instantiate(&self, store: impl AsContextMut<Data = T>) -> Result<Instance> {
        self.resolved.instantiate(store, &self.sync, &self.buffer)
    }

    /// As [`instantiate`](Self::instantiate), then calls `_initialize` if the
    /// module exports it, which may wait (see [`Linker::instantiate_async`]).
    ///
    /// # Errors
    ///
    /// Those of [`instantiate`](Self::instantiate) and of the `_initialize`
    /// call.
    pub async fn instantiate_async(
        &self,
        mut store: impl AsContextMut<Data = T>,
    ) -> Result<Instance> {
        let instance = self.instantiate(&mut store)?;
        initialize(&instance, store).await?;
        Ok(instance)
    }
}
