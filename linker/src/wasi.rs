//! WASI preview 1 (`wasi_snapshot_preview1`) served through the [`Linker`],
//! synchronously or as async imports. Needs the crate feature `wasi`.
//!
//! The functions are wasmtime-wasi's own implementation ([`WasiP1Ctx`]),
//! linked as definitions of this crate's [`Linker`] rather than of a separate
//! wasmtime linker, so that they can go through either path:
//!
//! - [`add_to_linker_async`]: async imports for an async server. A call that
//!   has to wait (a `poll_oneoff` that sleeps, file I/O, a read from standard
//!   input that has no data yet) suspends the calling instance, and its
//!   future awaits the I/O without blocking the thread that polls it; the
//!   other calls complete at once, without suspending. Works on any
//!   executor: tokio's multi-thread and current-thread runtimes,
//!   `futures::executor`, others. Only modules instrumented with asyncify can
//!   import these.
//! - [`add_to_linker_async_suspending`]: the same, but every call suspends
//!   once before doing its work: useful to exercise the asyncify path on a
//!   real program.
//! - [`add_to_linker_sync`]: plain host functions, for any module. Calls that
//!   wait block the thread, as wasmtime-wasi's own synchronous linking does,
//!   so they must not run on an async executor's thread (tokio panics).
//!
//! The [`WasiP1Ctx`] lives in the store's data; the functions take a
//! projection to it, as wasmtime-wasi's own `add_to_linker_*` do. Build it
//! with [`WasiCtxBuilder`](wasmtime_wasi::WasiCtxBuilder) (`build_p1`).
//! `proc_exit` fails the call with an [`I32Exit`] carrying the exit code:
//! find it with `error.downcast_ref::<I32Exit>()`.
//!
//! A calling instance must export its memory as `memory` (a shared memory
//! works too), as for wasmtime-wasi.
//!
//! # How the async functions wait
//!
//! wasmtime-wasi implements the functions that may wait as futures that
//! borrow the [`WasiP1Ctx`] and the guest's memory for as long as they run.
//! An asyncify call unwinds while it waits, and the store is free between
//! polls, so such a future cannot borrow the store. Instead, for the length
//! of the call, the context is moved out of the store into the import's
//! future (a small placeholder takes its place) and moved back when the
//! call completes, also when it fails or its export call is dropped; the
//! future reads and writes the guest's memory only while the linker polls
//! it, after checking that the memory has not moved. The I/O itself is
//! wasmtime-wasi's: files go through tokio's blocking thread pool, sleeps
//! through tokio timers, standard input through wasmtime-wasi's reader
//! thread.
//!
//! What that asks of the embedder:
//!
//! - **Tokio.** Inside a tokio runtime the futures use it: it needs its
//!   timer (`enable_time`, or `enable_all`) for `poll_oneoff`. Outside one
//!   (for example under `futures::executor::block_on`) they use
//!   wasmtime-wasi's own background runtime, which needs nothing.
//! - **Do not enable** `WasiCtxBuilder::allow_blocking_current_thread`: it
//!   makes wasmtime-wasi do file I/O and relative sleeps on the calling
//!   thread, which then blocks the executor.
//! - **One WASI call per store at a time.** A second WASI call made while one
//!   waits (possible only when an async import runs two calls back into the
//!   store concurrently) fails with an error saying so.
//! - **Inspecting the context.** Between export calls the context is in the
//!   store. If a call is dropped while a WASI function waits, the context is
//!   moved back at once; in the rare cases where that cannot happen (the
//!   call failed in the middle of the asyncify protocol), it is moved back
//!   by the store's next WASI call.
//! - **Shutting down.** Drop or finish the export calls (and with them any
//!   file reads in flight) before dropping the tokio runtime they ran on.
//!   wasmtime-wasi runs file I/O as tasks on that runtime's blocking pool;
//!   if the runtime goes away while such a task is outstanding, wasmtime-wasi
//!   itself panics ("JoinError::Cancelled") when the future is polled or
//!   dropped. This is wasmtime-wasi's behaviour, not the linker's.
//!
//! ```
//! # fn main() -> wasmtime::Result<()> {
//! use asyncify_linker::wasi::{self, I32Exit, WasiP1Ctx};
//! use asyncify_linker::Linker;
//! use wasmtime::{Engine, Module, Store};
//! use wasmtime_wasi::WasiCtxBuilder;
//!
//! // Sleeps 1 ms, writes "hi\n" to standard output and exits with code 3.
//! let wat = r#"(module
//!     (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
//!     (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
//!     (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
//!     (memory (export "memory") 1)
//!     (data (i32.const 16) "hi\n")
//!     (func (export "_start")
//!         ;; a relative monotonic clock subscription at 64: 1,000,000 ns
//!         (i32.store8 (i32.const 72) (i32.const 0))
//!         (i32.store (i32.const 80) (i32.const 1))
//!         (i64.store (i32.const 88) (i64.const 1000000))
//!         (drop (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160)))
//!         (i32.store (i32.const 0) (i32.const 16))
//!         (i32.store (i32.const 4) (i32.const 3))
//!         (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
//!         (call $proc_exit (i32.const 3))))"#;
//! let wasm = asyncify_transform::instrument(wat.as_bytes(), &Default::default())?.wasm;
//!
//! struct Host { wasi: WasiP1Ctx }
//! let engine = Engine::default();
//! let mut linker = Linker::<Host>::new(&engine);
//! wasi::add_to_linker_async(&mut linker, |host| &mut host.wasi)?;
//! let mut store = Store::new(&engine, Host { wasi: WasiCtxBuilder::new().inherit_stdio().build_p1() });
//! let instance = linker.instantiate(&mut store, &Module::new(&engine, &wasm)?)?;
//! let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
//! // Any executor: here `futures`'; in a tokio program, `.await` it.
//! let err = futures::executor::block_on(start.call_async(&mut store, ())).unwrap_err();
//! assert_eq!(err.downcast_ref::<I32Exit>().map(|e| e.0), Some(3));
//! # Ok(())
//! # }
//! ```

#![cfg(feature = "wasi")]

use std::cell::UnsafeCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use wasmtime::component::Resource;
use wasmtime::{AsContextMut, Caller, Extern, FuncType, Result, StoreContextMut, Val};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wasmtime_wasi::WasiView;
use wiggle::GuestMemory;

use crate::{AsyncCaller, Linker, WasmValue, WasmValues};

pub use wasmtime_wasi;
pub use wasmtime_wasi::p1::WasiP1Ctx;
pub use wasmtime_wasi::I32Exit;

/// The module name the functions are defined under.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// Defines every WASI preview 1 function under [`MODULE`] as a synchronous
/// host function, for instrumented and uninstrumented modules alike.
///
/// `get_ctx` projects the store's data to its [`WasiP1Ctx`].
///
/// # Errors
///
/// [`Error::DefinedTwice`](crate::Error::DefinedTwice) if one of the names is
/// already defined and shadowing is off.
///
/// ```
/// # fn main() -> wasmtime::Result<()> {
/// use asyncify_linker::{wasi, Linker};
/// use wasmtime::{Engine, Module, Store};
/// use wasmtime_wasi::WasiCtxBuilder;
///
/// let engine = Engine::default();
/// let mut linker = Linker::<wasi::WasiP1Ctx>::new(&engine);
/// wasi::add_to_linker_sync(&mut linker, |ctx| ctx)?;
/// let module = Module::new(&engine, wat::parse_str(r#"(module
///     (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
///     (memory (export "memory") 1)
///     (func (export "argc") (result i32)
///         (drop (call $sizes (i32.const 0) (i32.const 4)))
///         (i32.load (i32.const 0))))"#)?)?;
/// let mut store = Store::new(&engine, WasiCtxBuilder::new().args(&["prog", "x"]).build_p1());
/// let instance = linker.instantiate(&mut store, &module)?;
/// let argc = instance.get_typed_func::<(), i32>(&mut store, "argc")?;
/// assert_eq!(futures::executor::block_on(argc.call_async(&mut store, ()))?, 2);
/// # Ok(())
/// # }
/// ```
pub fn add_to_linker_sync<T: 'static>(
    linker: &mut Linker<T>,
    get_ctx: impl Fn(&mut T) -> &mut WasiP1Ctx + Copy + Send + Sync + 'static,
) -> Result<()> {
    define_sync(linker, get_ctx)
}

/// Defines every WASI preview 1 function under [`MODULE`] as an async
/// import whose I/O never blocks the thread that polls it: a call that has
/// to wait suspends the calling instance until its I/O completes; the others
/// complete at once. See the [module docs](self) for how, what it needs from
/// a tokio runtime, and an example.
///
/// Only modules instrumented with asyncify can import these; instantiating
/// one that is not fails with
/// [`Error::NotInstrumented`](crate::Error::NotInstrumented).
///
/// # Errors
///
/// [`Error::DefinedTwice`](crate::Error::DefinedTwice) if one of the names is
/// already defined and shadowing is off.
pub fn add_to_linker_async<T: 'static>(
    linker: &mut Linker<T>,
    get_ctx: impl Fn(&mut T) -> &mut WasiP1Ctx + Copy + Send + Sync + 'static,
) -> Result<()> {
    define_async(linker, get_ctx, false)
}

/// As [`add_to_linker_async`], but every call is pending once (waking
/// itself) before it does its work: each WASI call unwinds the calling
/// instance and rewinds it, and the program's behaviour is otherwise the
/// same. Useful to exercise the asyncify path on a real program.
///
/// # Errors
///
/// [`Error::DefinedTwice`](crate::Error::DefinedTwice) if one of the names is
/// already defined and shadowing is off.
pub fn add_to_linker_async_suspending<T: 'static>(
    linker: &mut Linker<T>,
    get_ctx: impl Fn(&mut T) -> &mut WasiP1Ctx + Copy + Send + Sync + 'static,
) -> Result<()> {
    define_async(linker, get_ctx, true)
}

/// Runs `f` with the WASI context and the calling instance's memory (its
/// export `memory`), as wasmtime-wasi's own linking does.
fn with_memory<T, R>(
    mut store: StoreContextMut<'_, T>,
    memory: Option<Extern>,
    get_ctx: impl Fn(&mut T) -> &mut WasiP1Ctx,
    f: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>) -> Result<R>,
) -> Result<R> {
    let fuel = store.hostcall_fuel();
    match memory {
        Some(Extern::Memory(memory)) => {
            let (bytes, data) = memory.data_and_store_mut(&mut store);
            let ctx = get_ctx(data);
            reclaim(ctx)?;
            ctx.set_hostcall_fuel(fuel);
            f(ctx, &mut GuestMemory::Unshared(bytes))
        }
        Some(Extern::SharedMemory(memory)) => {
            let ctx = get_ctx(store.data_mut());
            reclaim(ctx)?;
            ctx.set_hostcall_fuel(fuel);
            f(ctx, &mut GuestMemory::Shared(memory.data()))
        }
        _ => Err(no_memory()),
    }
}

fn no_memory() -> wasmtime::Error {
    wasmtime::format_err!(
        "a WASI function was called by an instance that does not export its memory as `memory`"
    )
}

/// The result of a WASI function that completes without waiting.
fn now<R>(result: Result<R>) -> Result<R> {
    result
}

/// The result of a WASI function that may wait (file and stream I/O, polls),
/// on the synchronous path: run to completion on wasmtime-wasi's runtime.
fn block<R>(future: impl Future<Output = Result<R>>) -> Result<R> {
    wasmtime_wasi::runtime::in_tokio(future)
}

/// The next parameter of an async import, of the type its definition declares.
fn next_arg<V: WasmValue>(values: &mut std::slice::Iter<'_, Val>) -> Result<V> {
    values
        .next()
        .and_then(V::from_val)
        .ok_or_else(|| wasmtime::format_err!("a WASI function got parameters of the wrong types"))
}

/// Where a context that a [`Lease`] took out of a store goes back to when
/// the store is not at hand: the placeholder left in the store points here.
type Home = Arc<Mutex<Option<WasiP1Ctx>>>;

/// What a placeholder context holds, in its resource table, to be told from
/// a real one.
struct Marker {
    home: Home,
}

/// The table index of a placeholder's [`Marker`]: the first entry of an
/// empty table.
const MARKER_REP: u32 = 0;

/// Placeholders not in use, to spare building one per waiting call.
static PLACEHOLDERS: Mutex<Vec<WasiP1Ctx>> = Mutex::new(Vec::new());

/// At most this many unused placeholders are kept.
const PLACEHOLDERS_KEPT: usize = 1024;

fn lock<V>(mutex: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    // Every update under these locks is a single assignment or push, so a
    // panic elsewhere cannot leave them half done.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The marker of `ctx` if it is a placeholder.
fn marker(ctx: &mut WasiP1Ctx) -> Option<&mut Marker> {
    WasiView::ctx(ctx)
        .table
        .get_mut(&Resource::<Marker>::new_borrow(MARKER_REP))
        .ok()
}

/// A placeholder context whose marker points to `home`.
fn placeholder(home: Home) -> WasiP1Ctx {
    if let Some(mut ctx) = lock(&PLACEHOLDERS).pop() {
        if let Some(marker) = marker(&mut ctx) {
            marker.home = home;
            return ctx;
        }
    }
    let mut ctx = wasmtime_wasi::WasiCtxBuilder::new().build_p1();
    let pushed = WasiView::ctx(&mut ctx).table.push(Marker { home });
    debug_assert!(pushed.is_ok_and(|r| r.rep() == MARKER_REP));
    ctx
}

/// Keeps a placeholder that left its store, for reuse.
fn recycle(mut placeholder: WasiP1Ctx) {
    if let Some(marker) = marker(&mut placeholder) {
        marker.home = Arc::default();
        let mut kept = lock(&PLACEHOLDERS);
        if kept.len() < PLACEHOLDERS_KEPT {
            kept.push(placeholder);
        }
    }
}

/// If the store's context slot holds a placeholder, puts the real context
/// back when its lease returned it, or fails: a WASI call of the store is
/// waiting with it.
fn reclaim(slot: &mut WasiP1Ctx) -> Result<()> {
    let Some(marker) = marker(slot) else {
        return Ok(());
    };
    let returned = lock(&marker.home).take();
    match returned {
        Some(ctx) => {
            recycle(std::mem::replace(slot, ctx));
            Ok(())
        }
        None => Err(wasmtime::format_err!(
            "a WASI function was called while another WASI call of the same store waits with \
             its context; the WASI calls of one store run one at a time"
        )),
    }
}

/// Where the guest's memory was when a call started, to check before each
/// poll that the call's view of it is still valid.
struct MemoryCheck {
    memory: Extern,
    base: usize,
    len: usize,
    /// Address of the store's data, to tell the store apart.
    data: usize,
}

impl MemoryCheck {
    /// The memory's address and size now.
    fn locate<T>(memory: &Extern, store: &StoreContextMut<'_, T>) -> Option<(usize, usize)> {
        match memory {
            Extern::Memory(m) => Some((m.data_ptr(store) as usize, m.data_size(store))),
            Extern::SharedMemory(m) => Some((m.data().as_ptr() as usize, m.data().len())),
            _ => None,
        }
    }

    fn check<T>(&self, store: StoreContextMut<'_, T>) -> Result<()> {
        if store.data() as *const T as usize != self.data {
            wasmtime::bail!("a WASI call was polled with a store other than its own");
        }
        match Self::locate(&self.memory, &store) {
            Some((base, len)) if base == self.base && len >= self.len => Ok(()),
            _ => Err(wasmtime::format_err!(
                "the guest's memory moved while a WASI call waited (wasm ran in the store \
                 meanwhile and grew it); the call cannot go on"
            )),
        }
    }
}

/// A WASI context taken out of the store for one call that may wait, and
/// the call's view of the guest's memory.
struct Lease<T: 'static, G: Fn(&mut T) -> &mut WasiP1Ctx> {
    caller: AsyncCaller<T>,
    get_ctx: G,
    ctx: Option<WasiP1Ctx>,
    home: Home,
    memory: GuestMemory<'static>,
    check: MemoryCheck,
}

impl<T: 'static, G: Fn(&mut T) -> &mut WasiP1Ctx> Lease<T, G> {
    /// Takes the context out of the store lent to `caller`'s import.
    fn take(caller: &AsyncCaller<T>, get_ctx: G) -> Result<Lease<T, G>> {
        caller.try_with(|mut store| {
            let fuel = store.hostcall_fuel();
            let memory = caller
                .get_export(&mut store, "memory")
                .ok_or_else(no_memory)?;
            let (base, len) = MemoryCheck::locate(&memory, &store).ok_or_else(no_memory)?;
            // SAFETY: `base..base + len` is the guest's memory now. The view
            // is used only by the WASI future, which touches memory only
            // while it is polled (its drop does not), and `drive` polls it
            // only after `MemoryCheck::check` found the memory of the same
            // store still at `base` and at least `len` long: wasmtime frees or
            // moves a memory only with its store or when it grows, which
            // the check sees. The view is shared (`UnsafeCell`), as for a
            // shared memory, so writes that the guest or the host make
            // between polls do not invalidate it.
            let bytes: &'static [UnsafeCell<u8>] = if len == 0 {
                &[]
            } else {
                unsafe { std::slice::from_raw_parts(base as *const UnsafeCell<u8>, len) }
            };
            let data = store.data() as *const T as usize;
            let slot = get_ctx(store.data_mut());
            reclaim(slot)?;
            let home = Home::default();
            let mut ctx = std::mem::replace(slot, placeholder(home.clone()));
            ctx.set_hostcall_fuel(fuel);
            Ok(Lease {
                caller: caller.clone(),
                get_ctx,
                ctx: Some(ctx),
                home,
                memory: GuestMemory::Shared(bytes),
                check: MemoryCheck {
                    memory,
                    base,
                    len,
                    data,
                },
            })
        })?
    }

    /// The context, the memory view and its check, for the WASI future.
    fn parts(&mut self) -> Option<(&mut WasiP1Ctx, &mut GuestMemory<'static>, &MemoryCheck)> {
        let Lease {
            ctx, memory, check, ..
        } = self;
        Some((ctx.as_mut()?, memory, check))
    }

    /// Puts the context back in the store if it is lent now, else where the
    /// placeholder in the store points, for the store's next WASI call.
    fn give_back(&mut self) {
        let mut ctx = self.ctx.take();
        if ctx.is_none() {
            return;
        }
        let get_ctx = &self.get_ctx;
        let home = &self.home;
        let _ = self.caller.try_with(|mut store| {
            let slot = get_ctx(store.data_mut());
            let ours = marker(slot).is_some_and(|m| Arc::ptr_eq(&m.home, home));
            if let (true, Some(ctx)) = (ours, ctx.take()) {
                recycle(std::mem::replace(slot, ctx));
            }
        });
        if let Some(ctx) = ctx {
            *lock(home) = Some(ctx);
        }
    }
}

impl<T: 'static, G: Fn(&mut T) -> &mut WasiP1Ctx> Drop for Lease<T, G> {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Polls a WASI future over a leased context: each poll first checks the
/// memory view, and runs inside a tokio runtime (the caller's, or
/// wasmtime-wasi's own when there is none).
async fn drive<T: 'static, R>(
    caller: &AsyncCaller<T>,
    check: &MemoryCheck,
    mut wasi: Pin<&mut impl Future<Output = Result<R>>>,
) -> Result<R> {
    poll_fn(|cx| {
        match caller.try_with(|store| check.check(store)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Poll::Ready(Err(e)),
            Err(e) => return Poll::Ready(Err(e.into())),
        }
        wasmtime_wasi::runtime::with_ambient_tokio_runtime(|| wasi.as_mut().poll(cx))
    })
    .await
}

/// The body of an async import for a WASI function: `now` runs it with the
/// store lent to the import, `block` over a [`Lease`], awaiting its I/O.
macro_rules! wasi_async_call {
    (now, $caller:ident, $get_ctx:ident, $name:ident($($arg:ident),*)) => {
        $caller.try_with(|mut store| {
            let memory = $caller.get_export(&mut store, "memory");
            with_memory(store, memory, $get_ctx, |ctx, memory| {
                p1::$name(ctx, memory, $($arg),*)
            })
        })??
    };
    (block, $caller:ident, $get_ctx:ident, $name:ident($($arg:ident),*)) => {{
        let mut lease = Lease::take(&$caller, $get_ctx)?;
        let result = match lease.parts() {
            Some((ctx, memory, check)) => {
                let wasi = std::pin::pin!(p1::$name(ctx, memory, $($arg),*));
                drive(&$caller, check, wasi).await
            }
            None => Err(wasmtime::format_err!("a WASI call lost its context")),
        };
        lease.give_back();
        result?
    }};
}

/// Generates `define_sync` and `define_async` from the table of functions:
/// `(how) name(params) -> result;`, where `how` is `now` for the functions
/// wasmtime-wasi implements synchronously and `block` for its async ones.
macro_rules! wasi_functions {
    ($(($how:ident) $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        fn define_sync<T: 'static>(
            linker: &mut Linker<T>,
            get_ctx: impl Fn(&mut T) -> &mut WasiP1Ctx + Copy + Send + Sync + 'static,
        ) -> Result<()> {
            $(
                linker.func_wrap(
                    MODULE,
                    stringify!($name),
                    move |mut caller: Caller<'_, T>, $($arg: $ty),*| -> Result<$ret> {
                        let memory = caller.get_export("memory");
                        with_memory(caller.as_context_mut(), memory, get_ctx, |ctx, memory| {
                            $how(p1::$name(ctx, memory, $($arg),*))
                        })
                    },
                )?;
            )*
            Ok(())
        }

        fn define_async<T: 'static>(
            linker: &mut Linker<T>,
            get_ctx: impl Fn(&mut T) -> &mut WasiP1Ctx + Copy + Send + Sync + 'static,
            suspend_first: bool,
        ) -> Result<()> {
            $(
                let ty = FuncType::new(
                    linker.engine(),
                    [$(<$ty as WasmValue>::ty()),*],
                    <$ret as WasmValues>::types(),
                );
                linker.func_new_async(
                    MODULE,
                    stringify!($name),
                    ty,
                    move |caller: AsyncCaller<T>, params: Vec<Val>| async move {
                        if suspend_first {
                            crate::yield_now().await;
                        }
                        #[allow(unused_mut, unused_variables)]
                        let mut values = params.iter();
                        $(let $arg: $ty = next_arg(&mut values)?;)*
                        let result: $ret =
                            wasi_async_call!($how, caller, get_ctx, $name($($arg),*));
                        Ok(result.into_vals())
                    },
                )?;
            )*
            Ok(())
        }
    };
}

wasi_functions! {
    (now) args_get(argv: i32, argv_buf: i32) -> i32;
    (now) args_sizes_get(argc: i32, argv_buf_size: i32) -> i32;
    (now) environ_get(environ: i32, environ_buf: i32) -> i32;
    (now) environ_sizes_get(count: i32, buf_size: i32) -> i32;
    (now) clock_res_get(id: i32, resolution: i32) -> i32;
    (now) clock_time_get(id: i32, precision: i64, time: i32) -> i32;
    (block) fd_advise(fd: i32, offset: i64, len: i64, advice: i32) -> i32;
    (now) fd_allocate(fd: i32, offset: i64, len: i64) -> i32;
    (block) fd_close(fd: i32) -> i32;
    (block) fd_datasync(fd: i32) -> i32;
    (block) fd_fdstat_get(fd: i32, stat: i32) -> i32;
    (now) fd_fdstat_set_flags(fd: i32, flags: i32) -> i32;
    (now) fd_fdstat_set_rights(fd: i32, base: i64, inheriting: i64) -> i32;
    (block) fd_filestat_get(fd: i32, stat: i32) -> i32;
    (block) fd_filestat_set_size(fd: i32, size: i64) -> i32;
    (block) fd_filestat_set_times(fd: i32, atim: i64, mtim: i64, flags: i32) -> i32;
    (block) fd_pread(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nread: i32) -> i32;
    (now) fd_prestat_get(fd: i32, prestat: i32) -> i32;
    (now) fd_prestat_dir_name(fd: i32, path: i32, path_len: i32) -> i32;
    (block) fd_pwrite(fd: i32, iovs: i32, iovs_len: i32, offset: i64, nwritten: i32) -> i32;
    (block) fd_read(fd: i32, iovs: i32, iovs_len: i32, nread: i32) -> i32;
    (block) fd_readdir(fd: i32, buf: i32, buf_len: i32, cookie: i64, bufused: i32) -> i32;
    (block) fd_renumber(fd: i32, to: i32) -> i32;
    (block) fd_seek(fd: i32, offset: i64, whence: i32, newoffset: i32) -> i32;
    (block) fd_sync(fd: i32) -> i32;
    (now) fd_tell(fd: i32, offset: i32) -> i32;
    (block) fd_write(fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> i32;
    (block) path_create_directory(fd: i32, path: i32, path_len: i32) -> i32;
    (block) path_filestat_get(fd: i32, flags: i32, path: i32, path_len: i32, stat: i32) -> i32;
    (block) path_filestat_set_times(
        fd: i32, flags: i32, path: i32, path_len: i32, atim: i64, mtim: i64, fst_flags: i32
    ) -> i32;
    (block) path_link(
        old_fd: i32, old_flags: i32, old_path: i32, old_path_len: i32,
        new_fd: i32, new_path: i32, new_path_len: i32
    ) -> i32;
    (block) path_open(
        fd: i32, dirflags: i32, path: i32, path_len: i32, oflags: i32,
        rights_base: i64, rights_inheriting: i64, fdflags: i32, opened_fd: i32
    ) -> i32;
    (block) path_readlink(
        fd: i32, path: i32, path_len: i32, buf: i32, buf_len: i32, bufused: i32
    ) -> i32;
    (block) path_remove_directory(fd: i32, path: i32, path_len: i32) -> i32;
    (block) path_rename(
        fd: i32, old_path: i32, old_path_len: i32, new_fd: i32, new_path: i32, new_path_len: i32
    ) -> i32;
    (block) path_symlink(
        old_path: i32, old_path_len: i32, fd: i32, new_path: i32, new_path_len: i32
    ) -> i32;
    (block) path_unlink_file(fd: i32, path: i32, path_len: i32) -> i32;
    (block) poll_oneoff(subscriptions: i32, events: i32, count: i32, nevents: i32) -> i32;
    (now) proc_exit(code: i32) -> ();
    (now) proc_raise(signal: i32) -> i32;
    (now) sched_yield() -> i32;
    (now) random_get(buf: i32, buf_len: i32) -> i32;
    (now) sock_accept(fd: i32, flags: i32, opened_fd: i32) -> i32;
    (now) sock_recv(
        fd: i32, ri_data: i32, ri_data_len: i32, ri_flags: i32, ro_datalen: i32, ro_flags: i32
    ) -> i32;
    (now) sock_send(fd: i32, si_data: i32, si_data_len: i32, si_flags: i32, so_datalen: i32) -> i32;
    (now) sock_shutdown(fd: i32, how: i32) -> i32;
}

#[cfg(test)]
mod tests {
    use std::future::{poll_fn, Future};

    use wasmtime::{Engine, Module, Store};
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    use wasmtime_wasi::WasiCtxBuilder;

    use super::*;
    use crate::Error;

    /// Prints its argument count as a digit `n` times, then exits with `code`.
    fn program(n: i32, code: i32) -> String {
        format!(
            r#"(module
            (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
            (memory (export "memory") 1)
            (func $print (param $i i32)
                (i32.store8 (i32.const 64) (i32.add (i32.const 48) (i32.load (i32.const 16))))
                (i32.store (i32.const 0) (i32.const 64))
                (i32.store (i32.const 4) (i32.const 1))
                (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
                (if (i32.gt_s (local.get $i) (i32.const 1))
                    (then (call $print (i32.sub (local.get $i) (i32.const 1))))))
            (func (export "_start")
                (drop (call $sizes (i32.const 16) (i32.const 20)))
                (call $print (i32.const {n}))
                (call $proc_exit (i32.const {code}))))"#
        )
    }

    /// How WASI is linked.
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Sync,
        Async,
        Suspending,
    }

    /// Runs `_start` of `wat` (instrumented if `instrument`) with WASI served
    /// in `mode`. Returns the outcome, what the program wrote to standard
    /// output, and how many times the call was pending.
    fn run(wat: &str, instrument: bool, mode: Mode) -> (Result<()>, String, usize) {
        let wasm = if instrument {
            asyncify_transform::instrument(wat.as_bytes(), &Default::default())
                .unwrap()
                .wasm
        } else {
            wat::parse_str(wat).unwrap()
        };
        let engine = Engine::default();
        let mut linker = Linker::<WasiP1Ctx>::new(&engine);
        match mode {
            Mode::Sync => add_to_linker_sync(&mut linker, |ctx| ctx).unwrap(),
            Mode::Async => add_to_linker_async(&mut linker, |ctx| ctx).unwrap(),
            Mode::Suspending => add_to_linker_async_suspending(&mut linker, |ctx| ctx).unwrap(),
        }
        let stdout = MemoryOutputPipe::new(1 << 20);
        let ctx = WasiCtxBuilder::new()
            .args(&["prog", "a", "b"])
            .stdout(stdout.clone())
            .build_p1();
        let mut store = Store::new(&engine, ctx);
        let module = Module::new(&engine, &wasm).unwrap();
        let outcome = linker
            .instantiate(&mut store, &module)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .map(|start| {
                let mut call = std::pin::pin!(start.call_async(&mut store, ()));
                let mut pending = 0;
                let result = futures::executor::block_on(poll_fn(|cx| {
                    let poll = call.as_mut().poll(cx);
                    pending += usize::from(poll.is_pending());
                    poll
                }));
                (result, pending)
            });
        let (result, pending) = match outcome {
            Ok(run) => run,
            Err(e) => (Err(e), 0),
        };
        let text = String::from_utf8(stdout.contents().to_vec()).unwrap();
        (result, text, pending)
    }

    fn exit_code(result: &Result<()>) -> Option<i32> {
        result
            .as_ref()
            .err()
            .and_then(|e| e.downcast_ref::<I32Exit>())
            .map(|e| e.0)
    }

    #[test]
    fn sync_path_runs_uninstrumented_and_instrumented_modules() {
        for instrument in [false, true] {
            let (result, out, pending) = run(&program(4, 5), instrument, Mode::Sync);
            assert_eq!(exit_code(&result), Some(5), "{result:?}");
            assert_eq!(out, "3333");
            assert_eq!(pending, 0);
        }
    }

    #[test]
    fn suspending_path_suspends_once_per_call_with_the_same_output() {
        // args_sizes_get, 4 fd_write and proc_exit: 6 WASI calls.
        let (result, out, pending) = run(&program(4, 7), true, Mode::Suspending);
        assert_eq!(exit_code(&result), Some(7), "{result:?}");
        assert_eq!(out, "3333");
        assert_eq!(pending, 6);
    }

    #[test]
    fn async_path_suspends_only_to_wait() {
        // Writing to a memory pipe never waits.
        let (result, out, pending) = run(&program(4, 7), true, Mode::Async);
        assert_eq!(exit_code(&result), Some(7), "{result:?}");
        assert_eq!(out, "3333");
        assert_eq!(pending, 0);
    }

    #[test]
    fn async_path_refuses_uninstrumented_modules() {
        let (result, out, _) = run(&program(1, 0), false, Mode::Async);
        let error = result.unwrap_err();
        assert!(
            matches!(error.downcast_ref::<Error>(), Some(Error::NotInstrumented { name, .. }) if name == "args_sizes_get"),
            "{error:?}"
        );
        assert_eq!(out, "");
    }

    #[test]
    fn a_caller_without_memory_export_fails_clearly() {
        let wat = r#"(module
            (import "wasi_snapshot_preview1" "sched_yield" (func $y (result i32)))
            (memory 1)
            (func (export "_start") (drop (call $y))))"#;
        // (The async path fails earlier: the linker has nowhere to put the
        // asyncify buffer.)
        for instrument in [false, true] {
            let (result, _, _) = run(wat, instrument, Mode::Sync);
            let error = format!("{:?}", result.unwrap_err());
            assert!(error.contains("export its memory as `memory`"), "{error}");
        }
    }
}
