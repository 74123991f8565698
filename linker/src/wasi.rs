//! WASI preview 1 (`wasi_snapshot_preview1`) served through the [`Linker`],
//! synchronously or as async imports. Needs the crate feature `wasi`.
//!
//! The functions are wasmtime-wasi's own implementation ([`WasiP1Ctx`]),
//! linked as definitions of this crate's [`Linker`] rather than of a separate
//! wasmtime linker, so that they can go through either path:
//!
//! - [`add_to_linker_sync`]: plain host functions, for any module.
//! - [`add_to_linker_async`]: async imports that are pending once before
//!   doing their work, so every WASI call suspends (unwinds) the calling
//!   instance and resumes it. Only modules instrumented with asyncify can
//!   import them. Useful to exercise the asyncify path on a real program, and
//!   as the model for WASI functions that truly wait.
//!
//! The [`WasiP1Ctx`] lives in the store's data; both functions take a
//! projection to it, as wasmtime-wasi's own `add_to_linker_*` do. Build it
//! with [`WasiCtxBuilder`](wasmtime_wasi::WasiCtxBuilder) (`build_p1`).
//! `proc_exit` fails the call with an [`I32Exit`] carrying the exit code:
//! find it with `error.downcast_ref::<I32Exit>()`.
//!
//! Calls that cannot complete at once (a `poll_oneoff` that sleeps, a read
//! from an interactive standard input) block the thread on wasmtime-wasi's
//! own tokio runtime, in both paths, as wasmtime-wasi's synchronous linking
//! does. Like that, they must not run inside a tokio runtime's async context
//! (tokio panics on nested `block_on`): drive the export calls with
//! `futures::executor::block_on`, or from a thread outside the runtime.
//!
//! A calling instance must export its memory as `memory` (a shared memory
//! works too), as for wasmtime-wasi.
//!
//! ```
//! # fn main() -> wasmtime::Result<()> {
//! use asyncify_linker::wasi::{self, I32Exit, WasiP1Ctx};
//! use asyncify_linker::Linker;
//! use wasmtime::{Engine, Module, Store};
//! use wasmtime_wasi::WasiCtxBuilder;
//!
//! // Writes "hi\n" to standard output and exits with code 3.
//! let wat = r#"(module
//!     (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
//!     (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
//!     (memory (export "memory") 1)
//!     (data (i32.const 16) "hi\n")
//!     (func (export "_start")
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
//! let err = futures::executor::block_on(start.call_async(&mut store, ())).unwrap_err();
//! assert_eq!(err.downcast_ref::<I32Exit>().map(|e| e.0), Some(3));
//! # Ok(())
//! # }
//! ```

#![cfg(feature = "wasi")]

use std::future::Future;

use wasmtime::{AsContextMut, Caller, Extern, FuncType, Result, StoreContextMut, Val};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
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

/// Defines every WASI preview 1 function under [`MODULE`] as an async import
/// that is pending once (waking itself) before it does its work: each call
/// unwinds the calling instance and rewinds it, and the program's behaviour
/// is otherwise the same as with [`add_to_linker_sync`].
///
/// Only modules instrumented with asyncify can import these; instantiating
/// one that is not fails with
/// [`Error::NotInstrumented`](crate::Error::NotInstrumented). See the
/// [module docs](self) for an example.
///
/// # Errors
///
/// [`Error::DefinedTwice`](crate::Error::DefinedTwice) if one of the names is
/// already defined and shadowing is off.
pub fn add_to_linker_async<T: 'static>(
    linker: &mut Linker<T>,
    get_ctx: impl Fn(&mut T) -> &mut WasiP1Ctx + Copy + Send + Sync + 'static,
) -> Result<()> {
    define_async(linker, get_ctx)
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
            ctx.set_hostcall_fuel(fuel);
            f(ctx, &mut GuestMemory::Unshared(bytes))
        }
        Some(Extern::SharedMemory(memory)) => {
            let ctx = get_ctx(store.data_mut());
            ctx.set_hostcall_fuel(fuel);
            f(ctx, &mut GuestMemory::Shared(memory.data()))
        }
        _ => Err(wasmtime::format_err!(
            "a WASI function was called by an instance that does not export its memory as \
             `memory`"
        )),
    }
}

/// The result of a WASI function that completes without waiting.
fn now<R>(result: Result<R>) -> Result<R> {
    result
}

/// The result of a WASI function that may wait (file and stream I/O, polls):
/// run to completion on wasmtime-wasi's runtime.
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
                        crate::yield_now().await;
                        #[allow(unused_mut, unused_variables)]
                        let mut values = params.iter();
                        $(let $arg: $ty = next_arg(&mut values)?;)*
                        let result: $ret = caller.try_with(|mut store| {
                            let memory = caller.get_export(&mut store, "memory");
                            with_memory(store, memory, get_ctx, |ctx, memory| {
                                $how(p1::$name(ctx, memory, $($arg),*))
                            })
                        })??;
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

    /// Runs `_start` of `wat` (instrumented if `instrument`) with WASI served
    /// synchronously or asynchronously. Returns the outcome, what the program
    /// wrote to standard output, and how many times the call was pending.
    fn run(wat: &str, instrument: bool, async_wasi: bool) -> (Result<()>, String, usize) {
        let wasm = if instrument {
            asyncify_transform::instrument(wat.as_bytes(), &Default::default())
                .unwrap()
                .wasm
        } else {
            wat::parse_str(wat).unwrap()
        };
        let engine = Engine::default();
        let mut linker = Linker::<WasiP1Ctx>::new(&engine);
        if async_wasi {
            add_to_linker_async(&mut linker, |ctx| ctx).unwrap();
        } else {
            add_to_linker_sync(&mut linker, |ctx| ctx).unwrap();
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
            let (result, out, pending) = run(&program(4, 5), instrument, false);
            assert_eq!(exit_code(&result), Some(5), "{result:?}");
            assert_eq!(out, "3333");
            assert_eq!(pending, 0);
        }
    }

    #[test]
    fn async_path_suspends_once_per_call_with_the_same_output() {
        // args_sizes_get, 4 fd_write and proc_exit: 6 WASI calls.
        let (result, out, pending) = run(&program(4, 7), true, true);
        assert_eq!(exit_code(&result), Some(7), "{result:?}");
        assert_eq!(out, "3333");
        assert_eq!(pending, 6);
    }

    #[test]
    fn async_path_refuses_uninstrumented_modules() {
        let (result, out, _) = run(&program(1, 0), false, true);
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
            let (result, _, _) = run(wat, instrument, false);
            let error = format!("{:?}", result.unwrap_err());
            assert!(error.contains("export its memory as `memory`"), "{error}");
        }
    }
}
