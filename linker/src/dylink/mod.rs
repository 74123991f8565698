//! Dynamic linking: a main module and side modules (shared libraries) in one
//! memory and one table, following the tool conventions' dynamic-linking
//! ABI, with `dlopen` as an async import and one asyncify state for them all.
//!
//! A [`DynamicLinker`] takes the host's definitions from a [`Linker`] and a
//! *library loader* (an async function from a library's name to its bytes:
//! a file, the network, a cache). [`DynamicLinker::instantiate`] loads a main
//! module with the libraries it needs and returns a [`DynamicInstance`], the
//! group of instances that share the main's memory, table, stack pointer and
//! asyncify state. The guest calls `dlopen`, `dlsym`, `dlclose` and
//! `dlerror` (imports from `env`, below); the host can do the same through
//! [`DynamicInstance::dlopen`] and [`DynamicInstance::dlsym`].
//!
//! # Guest imports
//!
//! Provided to every module of the group that imports them (they take
//! precedence over the linker's definitions of the same names):
//!
//! | import | type | |
//! |---|---|---|
//! | `env.dlopen` | `(path: i32, flags: i32) -> i32` | **async**: reads the NUL-terminated `path` (at most [`DynamicLinker::max_path_len`] bytes, UTF-8), loads the library and what it needs, runs their relocations and constructors; the guest suspends meanwhile. Returns a handle (non-zero), or 0 and sets the error. `path` 0 is the main module. `flags` are ignored: every library is loaded `RTLD_NOW | RTLD_GLOBAL`. |
//! | `env.dlsym` | `(handle: i32, name: i32) -> i32` | the address of a data symbol, or the table index of a function (given a slot in the shared table the first time). Handle 0 (`RTLD_DEFAULT`) searches every module in load order (the main first); a library's handle searches it and what it needs. 0 and sets the error if there is no such symbol. |
//! | `env.dlclose` | `(handle: i32) -> i32` | 0, or -1 and sets the error for a handle that is not open. |
//! | `env.dlerror` | `() -> i32` | a NUL-terminated message (in memory the loader owns) about the last failure, or 0; reading it clears it, as POSIX says. |
//!
//! A module instrumented with asyncify gets an async `dlopen`; one that is
//! not gets a synchronous one, which fails (0, with a message) when the
//! library loader or a constructor has to wait.
//!
//! # Loading a library
//!
//! 1. Its bytes come from the libraries given with
//!    [`DynamicLinker::library`], else from the loader; its `dylink.0` section
//!    (or the older `dylink`) is read. A module without one is refused.
//! 2. Its `needed` libraries are loaded first, depth first, each once; a cycle
//!    of `needed` entries is refused ([`DylinkError::NeededCycle`]).
//! 3. Each gets a fresh region of the shared memory, aligned as it asks
//!    (`__memory_base`), and of the shared table (`__table_base`), both grown
//!    for it; imports are resolved: `env.memory`,
//!    `env.__indirect_function_table`, the bases, `env.__stack_pointer` (the
//!    main's, or one the loader makes with its own stack),
//!    `env.__asyncify_state`/`env.__asyncify_data`, functions exported by
//!    modules already loaded (the main first, linked directly, wasm to
//!    wasm), then the linker's definitions. `GOT.mem.*` and `GOT.func.*`
//!    entries are resolved once the whole batch is instantiated, so libraries
//!    can use each other's data in any order: a data symbol is its export
//!    plus its module's `__memory_base`, a function gets a table slot. Weak
//!    undefined symbols are 0 (a weak function import traps when called).
//!    Every undefined symbol is reported by name
//!    ([`DylinkError::MissingSymbols`]).
//! 4. `__wasm_apply_data_relocs`, then `_initialize` if exported, else
//!    `__wasm_call_ctors`, run for each new library, dependencies first.
//!    They may call async imports and wait. If one traps, the whole batch is
//!    forgotten and `dlopen` fails ([`DylinkError::Constructor`]).
//!
//! # One suspension across all modules
//!
//! The instances of a group share one asyncify state: the main module is
//! instrumented with `asyncify-export-globals` and side modules with
//! `asyncify-import-globals` (Binaryen's `asyncify-relocatable`), or all of
//! them import the globals (the loader then makes them). The linker drives
//! the group as one instance: one buffer in the shared memory, one list of
//! calls in flight. So an async import called from a side module, reached
//! from the main through a function pointer, unwinds through the frames of
//! both and rewinds them. With [`DynamicLinker::instrument_on_load`] the
//! loader instruments modules that are not instrumented yet.
//!
//! Refused ([`DylinkError::StateNotShared`]): a side module instrumented with
//! its own asyncify state, and a side module that imports the state when
//! the main keeps its own (instrumented without `asyncify-export-globals`):
//! two states cannot be driven as one stack.
//!
//! # Limits
//!
//! - Libraries are never unloaded: wasm instances cannot be freed inside a
//!   store. `dlclose` drops a reference; the library stays loaded (its
//!   memory, table slots and instance), and `dlopen` of the same name gives
//!   the same handle again without running constructors twice.
//! - Memory for libraries is taken by growing the memory. An allocator that
//!   hands out every page up to `memory.size` (Emscripten's `sbrk`) would
//!   hand out those pages too.
//! - wasm32 only; thread-local storage (`__tls_base`) is not provided.
//! - A function import can only be satisfied by a module loaded before the
//!   importer (imports are bound at instantiation); data (`GOT.mem`) and
//!   function pointers (`GOT.func`) can point anywhere.

mod export_memory;
mod group;
mod guest;
mod load;
mod section;
mod space;

use std::future::{poll_fn, Future};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;

use wasmtime::{AsContextMut, Memory, Result, Table};

use crate::{access, Func, Instance, Linker};

pub use section::DylinkInfo;

use group::{Config, Group};

/// The future a library loader returns: the library's bytes.
pub type LibraryFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>>> + Send>>;

/// The embedder's library loader, as the [`DynamicLinker`] keeps it.
type LoaderFn = dyn Fn(String) -> LibraryFuture + Send + Sync;

/// Loads a main module with its shared libraries, and serves `dlopen` and
/// friends to them. See the [module documentation](self).
///
/// ```
/// # fn main() -> wasmtime::Result<()> {
/// use asyncify_linker::{dylink::DynamicLinker, Linker};
/// use wasmtime::{Engine, Store};
///
/// let engine = Engine::default();
/// let mut dynamic = DynamicLinker::new(&Linker::<()>::new(&engine));
/// dynamic.loader(|name: String| async move {
///     // e.g. tokio::fs::read(format!("/usr/lib/wasm/{name}")).await
///     wasmtime::bail!("no library named {name}")
/// });
/// let main = wat::parse_str(r#"(module (memory (export "memory") 1)
///     (func (export "answer") (result i32) i32.const 42))"#)?;
/// let mut store = Store::new(&engine, ());
/// let group = futures::executor::block_on(dynamic.instantiate(&mut store, &main))?;
/// let answer = group.main().get_typed_func::<(), i32>(&mut store, "answer")?;
/// assert_eq!(futures::executor::block_on(answer.call_async(&mut store, ()))?, 42);
/// # Ok(())
/// # }
/// ```
pub struct DynamicLinker<T> {
    linker: Linker<T>,
    config: Config,
}

impl<T> Clone for DynamicLinker<T> {
    fn clone(&self) -> Self {
        DynamicLinker {
            linker: self.linker.clone(),
            config: self.config.clone(),
        }
    }
}

impl<T> std::fmt::Debug for DynamicLinker<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut libraries: Vec<&String> = self.config.libraries.keys().collect();
        libraries.sort();
        f.debug_struct("DynamicLinker")
            .field("linker", &self.linker)
            .field("libraries", &libraries)
            .field("loader", &self.config.loader.is_some())
            .field("instrument_on_load", &self.config.instrument.is_some())
            .field("stack_size", &self.config.stack_size)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> DynamicLinker<T> {
    /// A loader whose modules import the host's definitions from `linker`
    /// (a copy of it: later changes to `linker` do not apply).
    pub fn new(linker: &Linker<T>) -> DynamicLinker<T> {
        DynamicLinker {
            linker: linker.clone(),
            config: Config::default(),
        }
    }

    /// The library loader: `load(name)` returns the bytes of library `name`
    /// (the `needed` entry, or the path given to `dlopen`, exactly as
    /// written). While its future is pending, the guest's `dlopen` call is
    /// suspended. An error becomes [`DylinkError::Load`] (the guest sees 0
    /// and the message from `dlerror`).
    pub fn loader<F, Fut>(&mut self, load: F) -> &mut Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>>> + Send + 'static,
    {
        self.config.loader = Some(Arc::new(move |name| Box::pin(load(name))));
        self
    }

    /// Makes library `name` available without the loader (taking precedence
    /// over it): what `--library NAME=FILE` gives on a command line.
    pub fn library(&mut self, name: &str, wasm: impl Into<Vec<u8>>) -> &mut Self {
        self.config
            .libraries
            .insert(name.to_string(), Arc::new(wasm.into()));
        self
    }

    /// Instruments modules that are not instrumented with asyncify when they
    /// are loaded, with these options: side modules with
    /// `import_globals`, the main module with `export_globals`, so that they
    /// share one state. `None` (the default) loads them as they are.
    pub fn instrument_on_load(
        &mut self,
        options: Option<asyncify_transform::Options>,
    ) -> &mut Self {
        self.config.instrument = options.map(Arc::new);
        self
    }

    /// Bytes of the stack the loader makes when a module imports
    /// `env.__stack_pointer` and the main module exports none (a main module
    /// with a `dylink.0` section, or a plain one that keeps its stack
    /// pointer private). Default 1 MiB.
    pub fn stack_size(&mut self, bytes: u32) -> &mut Self {
        self.config.stack_size = bytes;
        self
    }

    /// The longest path or symbol name (in bytes, without the NUL) the guest
    /// may pass to `dlopen` and `dlsym`. Default 4096.
    pub fn max_path_len(&mut self, bytes: usize) -> &mut Self {
        self.config.max_path_len = bytes;
        self
    }

    /// The most modules (the main included) one group may load. Default 1024.
    pub fn max_libraries(&mut self, count: usize) -> &mut Self {
        self.config.max_libraries = count;
        self
    }

    /// Loads `main` (the bytes of the main module) and the libraries it
    /// needs into `store`, runs their relocations and constructors, and
    /// returns the group. The main module is either a plain module that
    /// exports its memory (and its table as `__indirect_function_table`, and
    /// `__stack_pointer`, when libraries are to use them), or a module with a
    /// `dylink.0` section that imports them (the loader then makes the memory
    /// and table, sized by the main's imports, and places the main like a
    /// library). Constructors may wait for async imports.
    ///
    /// # Errors
    ///
    /// [`DylinkError`]s (downcast the error) for what the loader refuses or
    /// cannot do, naming the library (a main module with no memory to share
    /// is [`DylinkError::Unsupported`]).
    pub async fn instantiate(
        &self,
        mut store: impl AsContextMut<Data = T>,
        main: &[u8],
    ) -> Result<DynamicInstance<T>> {
        let group = Group::new(&mut store, self.linker.clone(), self.config.clone());
        let open = load::open(group.clone(), load::Root::Main(main.to_vec()));
        let index = published(&mut store, open).await?;
        let main = group.instance(index).ok_or(DylinkError::Invalid {
            library: "<main>".into(),
            message: "it was not loaded".into(),
        })?;
        let (memory, table) = {
            let st = group.state();
            (st.memory, st.table)
        };
        let (Some(memory), Some(table)) = (memory, table) else {
            return Err(DylinkError::Unsupported {
                library: "<main>".into(),
                reason: "it has no memory to share (export it as `memory`, or import \
                         `env.memory` with a `dylink.0` section)"
                    .into(),
            }
            .into());
        };
        Ok(DynamicInstance {
            group,
            main,
            main_index: index,
            memory,
            table,
        })
    }
}

/// Polls `future` with `store` lent to it (as the driver lends it to import
/// futures), so that it can instantiate modules and call them.
async fn published<T: 'static, R>(
    mut store: impl AsContextMut<Data = T>,
    future: impl Future<Output = R>,
) -> R {
    let mut future = std::pin::pin!(future);
    poll_fn(|cx| {
        let mut store = store.as_context_mut();
        access::publish(&mut store, || future.as_mut().poll(cx))
    })
    .await
}

/// A handle to a loaded module, as `dlopen` returns it (never 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LibraryHandle(NonZeroU32);

impl LibraryHandle {
    /// The handle with the value `value` the guest got, if not 0.
    pub fn new(value: u32) -> Option<LibraryHandle> {
        NonZeroU32::new(value).map(LibraryHandle)
    }

    /// The value the guest sees.
    pub fn get(self) -> u32 {
        self.0.get()
    }

    fn from_index(index: usize) -> Option<LibraryHandle> {
        u32::try_from(index)
            .ok()?
            .checked_add(1)
            .and_then(LibraryHandle::new)
    }

    fn index(self) -> usize {
        (self.get() - 1) as usize
    }
}

/// What `dlsym` finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Symbol {
    /// A data symbol at this address of the shared memory.
    Data(u32),
    /// A function at this index of the shared table.
    Function(u32),
}

impl Symbol {
    /// The value the guest's `dlsym` returns: the address or the index.
    pub fn value(self) -> u32 {
        match self {
            Symbol::Data(v) | Symbol::Function(v) => v,
        }
    }
}

/// Where a loaded module sits in the shared memory and table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LibraryInfo {
    /// The name it was loaded under (the main module's is `""`).
    pub name: String,
    /// Its `__memory_base` (0 for a plain main module).
    pub memory_base: u32,
    /// Its `__table_base` (0 for a plain main module).
    pub table_base: u32,
    /// How many `dlopen` calls hold it open.
    pub open_count: u32,
}

/// A main module and the libraries loaded into it, in one store: one
/// memory, one table, one asyncify state. Cloning is cheap; clones refer to
/// the same group.
///
/// The host can do what the guest does:
///
/// ```
/// # fn main() -> wasmtime::Result<()> {
/// use asyncify_linker::dylink::{DylinkError, DynamicLinker, Symbol};
/// use asyncify_linker::Linker;
/// use futures::executor::block_on;
/// use wasmtime::{Engine, Store};
///
/// let engine = Engine::default();
/// let lib = wat::parse_str(r#"(module (@dylink.0 (mem-info (memory 4 2)))
///     (import "env" "memory" (memory 0))
///     (import "env" "__memory_base" (global $base i32))
///     (data (global.get $base) "\2a\00\00\00")
///     (global (export "answer") i32 (i32.const 0))
///     (func (export "get") (result i32) (i32.load (global.get $base))))"#)?;
/// let main = wat::parse_str(r#"(module (memory (export "memory") 1)
///     (table (export "__indirect_function_table") 1 funcref))"#)?;
/// let mut dynamic = DynamicLinker::new(&Linker::<()>::new(&engine));
/// dynamic.library("libanswer.so", lib);
/// let mut store = Store::new(&engine, ());
/// let group = block_on(dynamic.instantiate(&mut store, &main))?;
///
/// let lib = block_on(group.dlopen(&mut store, "libanswer.so"))?;
/// assert_eq!(block_on(group.dlopen(&mut store, "libanswer.so"))?, lib);
/// let Symbol::Data(address) = group.dlsym(&mut store, Some(lib), "answer")? else {
///     panic!("`answer` is data");
/// };
/// assert_eq!(group.memory().data(&store)[address as usize], 42);
/// let get = group.get_func(&mut store, Some(lib), "get").unwrap().typed::<(), i32>(&store)?;
/// assert_eq!(block_on(get.call_async(&mut store, ()))?, 42);
///
/// let err = group.dlsym(&mut store, None, "question").unwrap_err();
/// assert!(matches!(
///     err.downcast_ref::<DylinkError>(),
///     Some(DylinkError::UndefinedSymbol { symbol, .. }) if symbol == "question"
/// ));
/// # Ok(())
/// # }
/// ```
pub struct DynamicInstance<T> {
    group: Arc<Group<T>>,
    main: Instance,
    main_index: usize,
    memory: Memory,
    table: Table,
}

impl<T> Clone for DynamicInstance<T> {
    fn clone(&self) -> Self {
        DynamicInstance {
            group: self.group.clone(),
            main: self.main.clone(),
            main_index: self.main_index,
            memory: self.memory,
            table: self.table,
        }
    }
}

impl<T> std::fmt::Debug for DynamicInstance<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicInstance").finish_non_exhaustive()
    }
}

impl<T: 'static> DynamicInstance<T> {
    /// The main module's instance; its exports are called as futures, and a
    /// call suspends across every module of the group.
    pub fn main(&self) -> &Instance {
        &self.main
    }

    /// The handle of the main module (what `dlopen(NULL)` returns).
    pub fn main_handle(&self) -> LibraryHandle {
        LibraryHandle::from_index(self.main_index).unwrap_or(LibraryHandle(NonZeroU32::MIN))
    }

    /// The shared memory.
    pub fn memory(&self) -> Memory {
        self.memory
    }

    /// The shared function table.
    pub fn table(&self) -> Table {
        self.table
    }

    /// Loads library `name` as the guest's `dlopen` would (the same
    /// library loaded twice gives the same handle), waiting for the loader
    /// and for constructors.
    ///
    /// # Errors
    ///
    /// A [`DylinkError`] naming what failed.
    pub async fn dlopen(
        &self,
        mut store: impl AsContextMut<Data = T>,
        name: &str,
    ) -> Result<LibraryHandle> {
        let open = load::open(self.group.clone(), load::Root::Library(name.to_string()));
        let index = published(&mut store, open).await?;
        Ok(
            LibraryHandle::from_index(index).ok_or(DylinkError::TooManyLibraries {
                limit: self.group.config.max_libraries,
            })?,
        )
    }

    /// The symbol `name` in the library `handle` (and what it needs), or
    /// everywhere with `None` (`RTLD_DEFAULT`), as the guest's `dlsym` finds
    /// it. A function gets a table slot the first time.
    ///
    /// # Errors
    ///
    /// [`DylinkError::UndefinedSymbol`], [`DylinkError::InvalidHandle`].
    pub fn dlsym(
        &self,
        mut store: impl AsContextMut<Data = T>,
        handle: Option<LibraryHandle>,
        name: &str,
    ) -> Result<Symbol> {
        let mut store = store.as_context_mut();
        Ok(self
            .group
            .dlsym(&mut store, handle.map(LibraryHandle::index), name)?)
    }

    /// Drops one reference to `handle`, as the guest's `dlclose` (the library
    /// stays loaded; see the module's limits).
    ///
    /// # Errors
    ///
    /// [`DylinkError::InvalidHandle`] if it is not open.
    pub fn dlclose(&self, handle: LibraryHandle) -> Result<()> {
        Ok(self.group.dlclose(handle.index())?)
    }

    /// The instance of the loaded module `handle`.
    pub fn instance(&self, handle: LibraryHandle) -> Option<Instance> {
        self.group.instance(handle.index())
    }

    /// The exported function `name` of module `handle` (or of the first
    /// module that exports it, with `None`), callable as a future driven
    /// with the group.
    pub fn get_func(
        &self,
        mut store: impl AsContextMut<Data = T>,
        handle: Option<LibraryHandle>,
        name: &str,
    ) -> Option<Func> {
        let mut store = store.as_context_mut();
        self.group
            .get_func(&mut store, handle.map(LibraryHandle::index), name)
    }

    /// The handle of the library loaded as `name`, if it is loaded.
    pub fn handle(&self, name: &str) -> Option<LibraryHandle> {
        self.group
            .index_of(name)
            .and_then(LibraryHandle::from_index)
    }

    /// Where module `handle` sits, and how often it is open.
    pub fn info(&self, handle: LibraryHandle) -> Option<LibraryInfo> {
        self.group.info(handle.index())
    }

    /// The message the guest's `dlerror` would return next, without clearing it.
    pub fn last_error(&self) -> Option<String> {
        self.group.last_error()
    }
}

/// A failure of the dynamic loader. It travels in [`wasmtime::Error`]
/// (downcast it); the guest's `dlopen` and `dlsym` turn it into 0 and the
/// message `dlerror` returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DylinkError {
    /// A module or its dynamic-linking section could not be read.
    #[error("library `{library}` is malformed: {message}")]
    Malformed {
        /// The library's name.
        library: String,
        /// What is wrong.
        message: String,
    },
    /// The library loader failed, or there is none and the library was not
    /// given with [`DynamicLinker::library`].
    #[error("cannot load library `{library}`: {message}")]
    Load {
        /// The library's name.
        library: String,
        /// The loader's error.
        message: String,
    },
    /// The module is not a side module (it has no `dylink.0` section).
    #[error(
        "`{library}` is not a shared library (it has no `dylink.0` section); build it with \
         `-shared` (`-sSIDE_MODULE=1`)"
    )]
    NotSideModule {
        /// The library's name.
        library: String,
    },
    /// The module does not compile, or could not be instrumented.
    #[error("library `{library}` cannot be used: {message}")]
    Invalid {
        /// The library's name.
        library: String,
        /// wasmtime's or the transform's message.
        message: String,
    },
    /// What the module needs is not supported by this loader.
    #[error("library `{library}` is not supported: {reason}")]
    Unsupported {
        /// The library's name.
        library: String,
        /// What.
        reason: String,
    },
    /// The `needed` entries form a cycle.
    #[error("the libraries need each other in a cycle: {}", .chain.join(" -> "))]
    NeededCycle {
        /// The libraries on the cycle, the first repeated at the end.
        chain: Vec<String>,
    },
    /// Symbols the module imports are defined nowhere (no loaded module
    /// exports them and the linker does not define them), and are not weak.
    #[error("library `{library}` has undefined symbols: {}", .symbols.join(", "))]
    MissingSymbols {
        /// The importing library.
        library: String,
        /// Every undefined symbol, as `module::name` (`GOT.mem::x`, `env::f`).
        symbols: Vec<String>,
    },
    /// A symbol exists, but not as what the importer expects.
    #[error("library `{library}` imports `{symbol}`, but {reason}")]
    SymbolMismatch {
        /// The importing library.
        library: String,
        /// The symbol.
        symbol: String,
        /// How it differs.
        reason: String,
    },
    /// `dlsym` found no such symbol.
    #[error("undefined symbol `{symbol}`{}", .library.as_ref().map(|l| format!(" in `{l}`")).unwrap_or_default())]
    UndefinedSymbol {
        /// The symbol.
        symbol: String,
        /// The library searched (`None`: every module).
        library: Option<String>,
    },
    /// A relocation or constructor function of the library trapped or failed.
    #[error("the constructors of library `{library}` failed: {message}")]
    Constructor {
        /// The library.
        library: String,
        /// The trap or error.
        message: String,
    },
    /// The module's asyncify state cannot be shared with the group's.
    #[error("library `{library}` cannot join the group's asyncify state: {reason}")]
    StateNotShared {
        /// The library.
        library: String,
        /// Why.
        reason: String,
    },
    /// The shared memory or table cannot grow for the module.
    #[error("no room for library `{library}`: {reason}")]
    NoRoom {
        /// The library.
        library: String,
        /// What could not grow.
        reason: String,
    },
    /// A handle that is not open (or never was).
    #[error("invalid library handle {handle}")]
    InvalidHandle {
        /// The handle's value.
        handle: u32,
    },
    /// A path or symbol name the guest passed cannot be read.
    #[error("bad {what} pointer {pointer:#x}: {reason}")]
    BadString {
        /// `path` or `symbol name`.
        what: String,
        /// The pointer.
        pointer: u32,
        /// Why.
        reason: String,
    },
    /// The group has loaded as many modules as it may
    /// ([`DynamicLinker::max_libraries`]).
    #[error("too many libraries: the limit is {limit} (`DynamicLinker::max_libraries`)")]
    TooManyLibraries {
        /// The limit.
        limit: usize,
    },
    /// Another `dlopen` in progress (suspended) is loading the same library.
    #[error("library `{library}` is being loaded by another `dlopen` that has not finished")]
    InProgress {
        /// The library.
        library: String,
    },
    /// `dlopen` had to wait, but the module that called it is not
    /// instrumented with asyncify.
    #[error(
        "loading library `{library}` has to wait, but the module calling `dlopen` is not \
         instrumented with asyncify"
    )]
    CannotWait {
        /// The library.
        library: String,
    },
}
