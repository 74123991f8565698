//! Links WebAssembly modules on wasmtime, with host imports served by Rust
//! futures and driven through the asyncify ABI: no fibers, any executor.
//!
//! A module instrumented with asyncify (by `asyncify-transform` or Binaryen's
//! `wasm-opt --asyncify`) can unwind its stack into a buffer and rewind it
//! later. The [`Linker`] uses that to let an import wait on a future: the
//! export call is itself a future ([`Func::call_async`],
//! [`TypedFunc::call_async`]); each poll runs wasm synchronously, an import
//! whose future is pending unwinds the instance, and the instance rewinds
//! once the future completes. The linking model is wasmtime's `Linker`
//! (and wasm-linker-js's): definitions by `module::name`, whole instances
//! registered under a name, shadowing, aliases.
//!
//! ```
//! # fn main() -> wasmtime::Result<()> {
//! use asyncify_linker::{AsyncCaller, Linker};
//! use wasmtime::{Engine, Module, Store};
//!
//! let wat = r#"(module
//!     (import "env" "sleep" (func $sleep (param i32)))
//!     (memory (export "memory") 1)
//!     (func (export "twice") (param i32) (result i32)
//!         (call $sleep (i32.const 1))
//!         (i32.mul (local.get 0) (i32.const 2))))"#;
//! let wasm = asyncify_transform::instrument(wat.as_bytes(), &Default::default())?.wasm;
//!
//! let engine = Engine::default();
//! let mut linker = Linker::new(&engine);
//! linker.func_wrap_async("env", "sleep", |_: AsyncCaller<()>, ms: i32| async move {
//!     // Not ready on the first poll: the instance unwinds, `twice` returns
//!     // `Pending`, and it resumes when the other thread answers.
//!     let (tx, rx) = futures::channel::oneshot::channel();
//!     std::thread::spawn(move || {
//!         std::thread::sleep(std::time::Duration::from_millis(ms as u64));
//!         let _ = tx.send(());
//!     });
//!     rx.await?;
//!     Ok(())
//! })?;
//! let mut store = Store::new(&engine, ());
//! let instance = linker.instantiate(&mut store, &Module::new(&engine, &wasm)?)?;
//! let twice = instance.get_typed_func::<i32, i32>(&mut store, "twice")?;
//! assert_eq!(futures::executor::block_on(twice.call_async(&mut store, 21))?, 42);
//! # Ok(())
//! # }
//! ```
//!
//! # Rules
//!
//! - **Errors.** An error returned by an async import's future becomes the
//!   error of the export call, as returned (`{}` prints its message, and it
//!   downcasts to what the import returned), whether it was ready at once or
//!   came after a wait; the instance stays usable and its buffer space is
//!   freed. Guest traps carry their wasm backtrace
//!   ([`wasmtime::WasmBacktrace`]), as in wasmtime. The linker's own failures
//!   are [`Error`]s. An error that a host function raised inside a wasm
//!   call (an async import ready at once, the linker's own, an unknown
//!   import's trap, a synchronous host function's) prints its message with
//!   `{}` too, and has the wasm backtrace after it in its chain (`{:?}`),
//!   above what the host function returned.
//! - **Cancellation.** Dropping an export call's future while it is suspended
//!   cancels the call: the instance is in the normal state between polls, so
//!   the linker only frees the call's saved stack, and the instance keeps
//!   working. The guest sees the same as a trap at the point where it waited
//!   (memory it allocated for the call, or its shadow stack pointer if it was
//!   lowered, are not restored).
//! - **One call at a time per store, nesting allowed.** An export call's
//!   future borrows the store mutably, so two top-level calls on one store
//!   cannot interleave (it does not compile). Inside an async import, calls
//!   back into any instance ([`AsyncCaller::call_async`]) nest in the waiting
//!   call: each call keeps its own saved stack and its own import result, so
//!   results are never swapped. A call on an instance resumes only when no
//!   call started after it on that instance is still suspended; otherwise it
//!   fails with [`Error::ResumeOrder`] rather than interleave two guest stacks.
//!
//!   ```compile_fail,E0499
//!   # fn f(store: &mut wasmtime::Store<()>, run: asyncify_linker::TypedFunc<(), ()>) {
//!   let first = run.call_async(&mut *store, ());
//!   let second = run.call_async(&mut *store, ()); // the store is already borrowed
//!   futures::executor::block_on(futures::future::join(first, second));
//!   # }
//!   ```
//! - **Across instances.** When a module imports a function exported by an
//!   instrumented instance registered with [`Linker::instance`] or
//!   [`Linker::module`], the import is treated as async: if the exporting
//!   instance suspends, the importer suspends with it and both resume in
//!   order. The importer must be instrumented with that import among the
//!   ones that may suspend (the default). An uninstrumented importer calls
//!   it synchronously and fails with [`Error::CannotSuspend`] if it would wait.
//! - **Uninstrumented modules** link and run with synchronous imports; an
//!   async import given to one fails instantiation with
//!   [`Error::NotInstrumented`], naming the import.
//! - **Where an import must not wait**: in a start function, under a
//!   synchronous host function, or when the instance's wasmtime functions are
//!   called directly. Such an import is polled once; if it is not ready the
//!   call fails with [`Error::CannotSuspend`].
//!
//! # The buffer
//!
//! Saved stacks are written and read in a buffer area the linker manages
//! without the guest's allocator: the module's `asyncify_memory` if it
//! exports one (`asyncify instrument --secondary-memory`), else a fixed range
//! the embedder names ([`Linker::fixed_buffer`]), else pages the linker grows
//! at the end of the module's memory the first time a call suspends. Between
//! the unwind and the rewind a suspended call's stack is kept in host memory,
//! so all calls of an instance share one area, as large as the largest stack
//! one call saves. A stack that does not fit fails its call with
//! [`Error::BufferOverflow`] (the call cannot be replayed, it had side
//! effects), the guest's memory outside the area is untouched, and later
//! calls get more space: at least double, and as much as the module reported
//! it needed (this project's transform does), up to
//! [`Linker::max_buffer_size`] and what the memory's maximum allows. The
//! error says what they get, or that the buffer cannot grow.
//!
//! # Dynamic linking
//!
//! [`dylink::DynamicLinker`] loads a main module and shared libraries (side
//! modules with a `dylink.0` section, as clang/lld and Emscripten build them)
//! into one memory and one table, following the tool conventions' dynamic
//! linking ABI, and gives the guest `dlopen`, `dlsym`, `dlclose` and
//! `dlerror`. `dlopen` is an async import: the library's bytes come from a
//! future the embedder supplies, and the guest suspends while it loads. All
//! modules of a group share one asyncify state (the main module instrumented
//! with `asyncify-export-globals`, side modules with `asyncify-import-globals`,
//! or [`dylink::DynamicLinker::instrument_on_load`]), and the linker drives
//! them as one: a call suspends and resumes across the frames of every
//! module it went through. See [`dylink`] for the rules.
//!
//! ```
//! # fn main() -> wasmtime::Result<()> {
//! use asyncify_linker::{dylink::DynamicLinker, AsyncCaller, Linker};
//! use asyncify_transform::Options;
//! use wasmtime::{Engine, Store};
//!
//! // The library: `triple(x)` waits for the host's `env.fetch(x)`.
//! let lib = r#"(module
//!     (@dylink.0 (mem-info (memory 0 0)))
//!     (import "env" "memory" (memory 0))
//!     (import "env" "fetch" (func $fetch (param i32) (result i32)))
//!     (func (export "triple") (param i32) (result i32)
//!         (i32.mul (call $fetch (local.get 0)) (i32.const 3))))"#;
//! // The main module opens it, looks `triple` up and calls it through the table.
//! let main = r#"(module
//!     (import "env" "dlopen" (func $dlopen (param i32 i32) (result i32)))
//!     (import "env" "dlsym" (func $dlsym (param i32 i32) (result i32)))
//!     (memory (export "memory") 1)
//!     (table (export "__indirect_function_table") 1 funcref)
//!     (data (i32.const 16) "libtriple.so\00triple\00")
//!     (func (export "run") (param i32) (result i32)
//!         (call_indirect (param i32) (result i32) (local.get 0)
//!             (call $dlsym (call $dlopen (i32.const 16) (i32.const 2)) (i32.const 29)))))"#;
//!
//! let engine = Engine::default();
//! let mut linker = Linker::new(&engine);
//! linker.func_wrap_async("env", "fetch", |_: AsyncCaller<()>, x: i32| async move {
//!     asyncify_linker::yield_now().await; // pending once: every module unwinds
//!     Ok(x + 1)
//! })?;
//! let mut dynamic = DynamicLinker::new(&linker);
//! dynamic
//!     .instrument_on_load(Some(Options::default()))
//!     .loader(move |name: String| {
//!         let lib = lib.to_string();
//!         async move {
//!             asyncify_linker::yield_now().await; // the guest's dlopen waits here
//!             match name.as_str() {
//!                 "libtriple.so" => Ok(wat::parse_str(&lib)?),
//!                 _ => wasmtime::bail!("no library {name}"),
//!             }
//!         }
//!     });
//! let mut store = Store::new(&engine, ());
//! let group = futures::executor::block_on(dynamic.instantiate(&mut store, &wat::parse_str(main)?))?;
//! let run = group.main().get_typed_func::<i32, i32>(&mut store, "run")?;
//! assert_eq!(futures::executor::block_on(run.call_async(&mut store, 13))?, 42);
//! # Ok(())
//! # }
//! ```
//!
//! # Trust model
//!
//! The guest is not trusted: the linker is meant to run modules the embedder
//! did not write. What follows holds for any module, including one that
//! fakes the `asyncify_*` exports, rewrites the buffer header, or traps or
//! lies at any step of the protocol.
//!
//! **What a guest cannot do.**
//! - Crash or abort the host: no value it returns or writes is used without
//!   a check (states, the header's `cur`, pointers and sizes are validated,
//!   all arithmetic on them is checked), and nothing it does makes the linker
//!   panic. It cannot make the host overflow its stack: the runtime
//!   functions the linker calls to drive the protocol may not call imports
//!   (such a call fails with [`Error::Protocol`], so re-exporting an async
//!   import as `asyncify_start_unwind` does not recurse), and calls nested
//!   inside async imports stop at [`Linker::max_nesting_stack`] with
//!   [`Error::TooDeep`].
//! - Touch host memory, or guest memory the linker does not own: the linker
//!   only writes the buffer header and the saved frames it copies back, at
//!   the area it chose, never at an address the guest gave.
//! - Change another call's saved stack: a suspended call's frames are out of
//!   the guest's reach until the call rewinds, so a nested call (or another
//!   instance sharing the memory) cannot forge them.
//! - Swap the import results of two calls: each call keeps its own.
//! - Leave an instance in a half state: after any failure in the middle of
//!   the protocol the linker puts the instance back in the normal state; if
//!   the guest's runtime functions do not let it, the instance is marked
//!   unusable and every later call fails with [`Error::Unusable`], rather
//!   than run with a stale unwind or rewind.
//! - Make the linker's bookkeeping wrong: [`Instance::buffer_usage`] counts
//!   only what the linker itself keeps.
//!
//! **What a guest can do**, to itself and to what it shares:
//! - Fail its own calls (traps, protocol errors), or compute wrong results
//!   for itself by lying in its own runtime functions (a module that fakes
//!   the protocol can return anything, as any module can).
//! - Affect other calls through the state they share by design: calls on one
//!   instance share its memory, tables and globals (a nested call can change
//!   data a suspended call will read, as in any re-entrant program), and
//!   instances that import each other's items share those.
//! - Use resources within the limits the embedder sets: memory (through
//!   wasmtime's limits; the buffer grows to at most
//!   [`Linker::max_buffer_size`]), host memory for saved stacks (at most
//!   [`Linker::max_buffer_size`] per instance, all its suspended calls
//!   together), CPU time (an endless loop: instrument with yield checks
//!   and set [`Linker::time_slicing`], or use wasmtime's epoch interruption
//!   or fuel), and the host stack up to
//!   [`Linker::max_nesting_stack`] plus wasmtime's `max_wasm_stack`.
//! - Make an instance unusable, as above; other instances are not affected.
//!
//! **Dynamic linking** ([`dylink`]) adds guest input of its own: paths and
//! symbol names passed to `dlopen` and `dlsym` are read within the memory's
//! bounds and a length cap, handles are checked, and a failure is 0 and a
//! message for `dlerror`; sizes, alignments and lists in a library's
//! `dylink.0` section are bounded and their arithmetic checked. Which bytes
//! are loaded for a name is the embedder's loader's choice. The modules of a
//! group share their memory, table, stack and asyncify state by design, so
//! each can corrupt what the others keep there, as in a native process.
//!
//! Host code (async imports, the embedder) is trusted: an import that
//! panics unwinds through the linker (the instance stays usable), and an
//! import can reach the guest's memory through [`AsyncCaller`].
//!
//! # Limits
//!
//! - Instances that [`Linker`] makes have an asyncify state each. Modules
//!   that share one (`asyncify-import-globals`, Binaryen's
//!   `asyncify-relocatable`) are driven together only as a dynamic-link group
//!   ([`dylink`]); what the group refuses (a side module with a state of its
//!   own, or one that imports the state when the main keeps its own) is
//!   listed there.
//! - A module that unwinds by itself (through `asyncify.start_unwind`
//!   imports, without an async import) makes the call fail with
//!   [`Error::Protocol`].
//! - A synchronous host function ([`Linker::func_wrap`]) that calls back into
//!   an instrumented instance through wasmtime directly must not let it wait:
//!   the linker cannot tell that call from the one it drives, and on resuming
//!   the host function would run again from its start. Use an async import
//!   and [`AsyncCaller::call_async`] for callbacks.
//! - The linker calls wasm with wasmtime's synchronous `call`: a store that
//!   also holds wasmtime's own async host functions (`Func::wrap_async`) or
//!   yields on fuel requires `call_async` everywhere, and the linker's calls
//!   then fail with wasmtime's error saying so.
//! - Binaryen's `asyncify-in-secondary-memory` does not export the memory it
//!   adds, so the linker cannot use it; this project's transform exports it as
//!   `asyncify_memory`.

mod access;
mod buffer;
mod driver;
pub mod dylink;
mod error;
mod host;
mod instance;
mod linker;
mod runtime;
mod time_slice;
mod values;
/// WASI preview 1 through the linker, sync or async (crate feature `wasi`).
pub mod wasi;
mod yield_now;

pub use buffer::BufferUsage;
pub use error::{Error, UnknownImport};
pub use host::AsyncCaller;
pub use instance::{Func, Instance, TypedFunc};
pub use linker::{InstancePre, Linker};
pub use time_slice::TimeSlicing;
pub use values::{WasmValue, WasmValues};
pub use yield_now::{yield_now, YieldNow};
