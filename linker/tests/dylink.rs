//! Issue 18: the dynamic loader through the library API, with hand-written
//! main and side modules (`dylink_toolchain.rs` runs real toolchain output).
//!
//! Every scenario that can wait runs twice: with every import (the library
//! loader's future, each async host import) pending at its first poll, and
//! with every import ready; the results must be the same.

mod common;

use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::Poll;

use asyncify_linker::dylink::{DylinkError, DynamicInstance, DynamicLinker, Symbol};
use asyncify_linker::{AsyncCaller, Linker};
use common::{poll_once, yield_now};
use wasmtime::{Engine, Store};

/// Instruments `wat` as a side module (`asyncify-import-globals`).
fn side(wat: &str) -> Vec<u8> {
    let options = asyncify_transform::Options {
        import_globals: true,
        ..Default::default()
    };
    asyncify_transform::instrument(wat.as_bytes(), &options)
        .unwrap_or_else(|e| panic!("instrumenting the side module failed: {e}"))
        .wasm
}

/// Instruments `wat` as a main module (`asyncify-export-globals`).
fn main_module(wat: &str) -> Vec<u8> {
    let options = asyncify_transform::Options {
        export_globals: true,
        ..Default::default()
    };
    asyncify_transform::instrument(wat.as_bytes(), &options)
        .unwrap_or_else(|e| panic!("instrumenting the main module failed: {e}"))
        .wasm
}

/// Polls `future` until it is ready, counting the times it was pending.
fn run_counting<F: std::future::Future>(future: F) -> (F::Output, u32) {
    let mut future = pin!(future);
    let mut pending = 0;
    loop {
        match poll_once(future.as_mut()) {
            Poll::Ready(out) => return (out, pending),
            Poll::Pending => pending += 1,
        }
    }
}

/// A linker with `env.slow_double(x) = 2x`, async, pending at its first
/// poll when `pending`.
fn host(engine: &Engine, pending: bool) -> Linker<()> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async(
            "env",
            "slow_double",
            move |_: AsyncCaller<()>, x: i32| async move {
                if pending {
                    yield_now().await;
                }
                Ok(x.wrapping_mul(2))
            },
        )
        .unwrap();
    linker
}

/// A dynamic linker whose loader serves `libraries`, pending at its first
/// poll when `pending`, and counts the loads.
fn dynamic(
    linker: &Linker<()>,
    libraries: Vec<(&str, Vec<u8>)>,
    pending: bool,
) -> (DynamicLinker<()>, Arc<AtomicU32>) {
    let loads = Arc::new(AtomicU32::new(0));
    let counter = loads.clone();
    let libraries: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
        libraries
            .into_iter()
            .map(|(n, b)| (n.to_string(), b))
            .collect(),
    );
    let mut dynamic = DynamicLinker::new(linker);
    dynamic.loader(move |name: String| {
        let libraries = libraries.clone();
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            if pending {
                yield_now().await;
            }
            match libraries.iter().find(|(n, _)| *n == name) {
                Some((_, bytes)) => Ok(bytes.clone()),
                None => wasmtime::bail!("no such file: {name}"),
            }
        }
    });
    (dynamic, loads)
}

/// The main module of the first scenario: `run(x)` opens `libside.so`,
/// finds `side_fn` with `dlsym` and calls it through the table.
const MAIN: &str = r#"(module
    (import "env" "dlopen" (func $dlopen (param i32 i32) (result i32)))
    (import "env" "dlsym" (func $dlsym (param i32 i32) (result i32)))
    (import "env" "dlerror" (func $dlerror (result i32)))
    (import "env" "slow_double" (func $slow (param i32) (result i32)))
    (type $i2i (func (param i32) (result i32)))
    (memory (export "memory") 2)
    (table (export "__indirect_function_table") 1 funcref)
    (global (export "__stack_pointer") (mut i32) (i32.const 65536))
    (data (i32.const 16) "libside.so\00")
    (data (i32.const 32) "side_fn\00")
    (data (i32.const 48) "nothing\00")
    ;; The callback the side module imports: slow_double(x) + 1.
    (func (export "main_callback") (param i32) (result i32)
        (i32.add (call $slow (local.get 0)) (i32.const 1)))
    (func (export "run") (param i32) (result i32)
        (local $h i32) (local $f i32)
        (local.set $h (call $dlopen (i32.const 16) (i32.const 2)))
        (if (i32.eqz (local.get $h)) (then (return (i32.const -1))))
        (local.set $f (call $dlsym (local.get $h) (i32.const 32)))
        (if (i32.eqz (local.get $f)) (then (return (i32.const -2))))
        (call_indirect (type $i2i) (local.get 0) (local.get $f)))
    ;; dlsym of a missing symbol: 0, then dlerror's message address, then 0.
    (func (export "missing") (result i32 i32 i32)
        (call $dlsym (i32.const 0) (i32.const 48))
        (call $dlerror)
        (call $dlerror))
    ;; dlopen of a pointer the guest chose.
    (func (export "open_at") (param i32) (result i32)
        (call $dlopen (local.get 0) (i32.const 0)))
)"#;

/// The side module: `side_fn(x) = slow_double(x) + main_callback(x) + seed`,
/// where `seed` is data at its `__memory_base` (100, plus 1 by its constructor).
const SIDE: &str = r#"(module
    (@dylink.0 (mem-info (memory 8 2)))
    (import "env" "memory" (memory 0))
    (import "env" "__memory_base" (global $mb i32))
    (import "env" "__table_base" (global $tb i32))
    (import "env" "__stack_pointer" (global $sp (mut i32)))
    (import "env" "slow_double" (func $slow (param i32) (result i32)))
    (import "env" "main_callback" (func $cb (param i32) (result i32)))
    (data (global.get $mb) "\64\00\00\00")
    (global (export "seed") i32 (i32.const 0))
    (func (export "__wasm_call_ctors")
        (i32.store (global.get $mb) (i32.add (i32.load (global.get $mb)) (i32.const 1))))
    (func (export "side_fn") (param i32) (result i32)
        (i32.add
            (i32.add (call $slow (local.get 0)) (call $cb (local.get 0)))
            (i32.load (global.get $mb))))
)"#;

fn load_scenario(pending: bool) -> (Store<()>, DynamicInstance<()>, Arc<AtomicU32>) {
    let engine = Engine::default();
    let linker = host(&engine, pending);
    let (dynamic, loads) = dynamic(&linker, vec![("libside.so", side(SIDE))], pending);
    let mut store = Store::new(&engine, ());
    let group = futures::executor::block_on(dynamic.instantiate(&mut store, &main_module(MAIN)))
        .unwrap_or_else(|e| panic!("{e:?}"));
    (store, group, loads)
}

#[test]
fn dlopen_while_suspended_then_a_call_through_dlsym_suspends_across_modules() {
    let mut outcomes = Vec::new();
    for pending in [true, false] {
        let (mut store, group, loads) = load_scenario(pending);
        let run = group
            .main()
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        let (out, waits) = run_counting(run.call_async(&mut store, 5));
        // slow_double(5) + (slow_double(5) + 1) + 101
        assert_eq!(out.unwrap(), 122, "pending: {pending}");
        // The loader, slow_double in the side module, slow_double in the
        // main's callback under it: three suspensions, or none.
        assert_eq!(waits, if pending { 3 } else { 0 });
        // Again: the library is loaded once, its constructor ran once.
        let (again, _) = run_counting(run.call_async(&mut store, 5));
        assert_eq!(again.unwrap(), 122);
        assert_eq!(loads.load(Ordering::Relaxed), 1);
        let usage = group.main().buffer_usage().unwrap();
        assert_eq!((usage.in_use, usage.suspended), (0, 0));
        outcomes.push(out_of(&group, &mut store).1);
    }
    // The data the constructor changed reads the same (its address differs:
    // in the pending run the buffer took pages before the library).
    assert_eq!(outcomes, [101, 101]);
}

/// What the host sees of the group after the scenario.
fn out_of(group: &DynamicInstance<()>, store: &mut Store<()>) -> (Symbol, u32) {
    let handle = group.handle("libside.so").unwrap();
    let seed = group.dlsym(&mut *store, Some(handle), "seed").unwrap();
    let Symbol::Data(address) = seed else {
        panic!("seed is data")
    };
    let memory = group.memory();
    let mut bytes = [0; 4];
    memory.read(&*store, address as usize, &mut bytes).unwrap();
    (seed, u32::from_le_bytes(bytes))
}

/// A plain main module that only opens libraries: `open(path)` is
/// `dlopen`, `sym(handle, name)` is `dlsym`, `close(handle)` is `dlclose`,
/// `error()` is `dlerror`; `put(at, byte)` writes a path.
const OPENER: &str = r#"(module
    (import "env" "dlopen" (func $dlopen (param i32 i32) (result i32)))
    (import "env" "dlsym" (func $dlsym (param i32 i32) (result i32)))
    (import "env" "dlclose" (func $dlclose (param i32) (result i32)))
    (import "env" "dlerror" (func $dlerror (result i32)))
    (memory (export "memory") 1)
    (table (export "__indirect_function_table") 1 funcref)
    (func (export "open") (param i32) (result i32) (call $dlopen (local.get 0) (i32.const 2)))
    (func (export "sym") (param i32 i32) (result i32) (call $dlsym (local.get 0) (local.get 1)))
    (func (export "close") (param i32) (result i32) (call $dlclose (local.get 0)))
    (func (export "error") (result i32) (call $dlerror))
    (func (export "call") (param i32) (result i32) (call_indirect (result i32) (local.get 0)))
)"#;

/// The guest side of [`OPENER`]: writes strings into its memory and calls it.
struct Opener {
    store: Store<()>,
    group: DynamicInstance<()>,
}

impl Opener {
    fn new(libraries: Vec<(&str, Vec<u8>)>, pending: bool) -> (Opener, Arc<AtomicU32>) {
        let engine = Engine::default();
        let linker = host(&engine, pending);
        let (dynamic, loads) = dynamic(&linker, libraries, pending);
        let mut store = Store::new(&engine, ());
        let group =
            futures::executor::block_on(dynamic.instantiate(&mut store, &main_module(OPENER)))
                .unwrap_or_else(|e| panic!("{e:?}"));
        (Opener { store, group }, loads)
    }

    /// Writes `text` and a NUL at `at`; returns `at`.
    fn string(&mut self, at: i32, text: &str) -> i32 {
        let memory = self.group.memory();
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        memory.write(&mut self.store, at as usize, &bytes).unwrap();
        at
    }

    fn call<P: wasmtime::WasmParams + Clone, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
        params: P,
    ) -> R {
        let f = self
            .group
            .main()
            .get_typed_func::<P, R>(&mut self.store, name)
            .unwrap();
        let (out, _) = run_counting(f.call_async(&mut self.store, params));
        out.unwrap_or_else(|e| panic!("{name}: {e:?}"))
    }

    fn open(&mut self, path: &str) -> i32 {
        let at = self.string(512, path);
        self.call("open", at)
    }

    fn sym(&mut self, handle: i32, name: &str) -> i32 {
        let at = self.string(768, name);
        self.call("sym", (handle, at))
    }

    /// `dlerror`'s message, read from the guest's memory.
    fn error(&mut self) -> Option<String> {
        let at: i32 = self.call("error", ());
        if at == 0 {
            return None;
        }
        let data = self.group.memory().data(&self.store);
        let text = &data[at as usize..];
        let len = text.iter().position(|&b| b == 0).unwrap();
        Some(String::from_utf8(text[..len].to_vec()).unwrap())
    }
}

/// B: `b_value` (7) and `b_read_a()`, which reads A's `a_value` through
/// `GOT.mem` (resolvable only once A, loaded after B, is there).
const LIB_B: &str = r#"(module
    (@dylink.0 (mem-info (memory 4 2)))
    (import "env" "memory" (memory 0))
    (import "env" "__memory_base" (global $mb i32))
    (import "GOT.mem" "a_value" (global $a (mut i32)))
    (data (global.get $mb) "\07\00\00\00")
    (global (export "b_value") i32 (i32.const 0))
    (func (export "b_read_a") (result i32) (i32.load (global.get $a)))
)"#;

/// A needs B: `a_value` (3), a pointer to B's `b_value` in its data (set by
/// its data relocations), and `sum() = *b_ptr + b_read_a()`.
const LIB_A: &str = r#"(module
    (@dylink.0 (mem-info (memory 8 2)) (needed "libb.so"))
    (import "env" "memory" (memory 0))
    (import "env" "__memory_base" (global $mb i32))
    (import "GOT.mem" "b_value" (global $b (mut i32)))
    (import "env" "b_read_a" (func $b_read_a (result i32)))
    (data (global.get $mb) "\03\00\00\00\00\00\00\00")
    (global (export "a_value") i32 (i32.const 0))
    (func (export "__wasm_apply_data_relocs")
        (i32.store offset=4 (global.get $mb) (global.get $b)))
    (func (export "sum") (result i32)
        (i32.add (i32.load (i32.load offset=4 (global.get $mb))) (call $b_read_a)))
)"#;

#[test]
fn two_libraries_use_each_others_data() {
    for pending in [true, false] {
        let libs = vec![
            ("liba.so", wat::parse_str(LIB_A).unwrap()),
            ("libb.so", wat::parse_str(LIB_B).unwrap()),
        ];
        let (mut guest, loads) = Opener::new(libs, pending);
        let a = guest.open("liba.so");
        assert!(a > 0, "{:?}", guest.error());
        let sum = guest.sym(a, "sum");
        assert!(sum > 0);
        let got: i32 = guest.call("call", sum);
        assert_eq!(got, 7 + 3);
        // B came with A: opening it finds it loaded, with no new load.
        let b = guest.open("libb.so");
        assert!(b > 0 && b != a);
        assert_eq!(loads.load(Ordering::Relaxed), 2);
        // A's handle searches what A needs too.
        assert!(guest.sym(a, "b_value") > 0);
        assert_eq!(guest.sym(b, "sum"), 0);
        assert!(guest
            .error()
            .unwrap()
            .contains("undefined symbol `sum` in `libb.so`"));
    }
}

/// A library whose constructor counts its runs in its data (`runs`), and
/// that waits in it (`slow_double`).
const COUNTING: &str = r#"(module
    (@dylink.0 (mem-info (memory 4 2)))
    (import "env" "memory" (memory 0))
    (import "env" "__memory_base" (global $mb i32))
    (import "env" "slow_double" (func $slow (param i32) (result i32)))
    (global (export "runs") i32 (i32.const 0))
    (func (export "__wasm_call_ctors")
        (i32.store (global.get $mb)
            (i32.add (i32.load (global.get $mb)) (call $slow (i32.const 1)))))
    (func (export "get_runs") (result i32) (i32.load (global.get $mb)))
)"#;

#[test]
fn a_library_loaded_twice_is_the_same_handle_and_constructed_once() {
    for pending in [true, false] {
        let (mut guest, loads) = Opener::new(vec![("libc.so", side(COUNTING))], pending);
        let first = guest.open("libc.so");
        let second = guest.open("libc.so");
        assert!(first > 0);
        assert_eq!(first, second);
        assert_eq!(loads.load(Ordering::Relaxed), 1);
        let get_runs = guest.sym(first, "get_runs");
        let runs: i32 = guest.call("call", get_runs);
        assert_eq!(runs, 2, "the constructor added slow_double(1) once");
        let handle = guest.group.handle("libc.so").unwrap();
        assert_eq!(guest.group.info(handle).unwrap().open_count, 2);
        let closed: i32 = guest.call("close", first);
        assert_eq!(closed, 0);
        let closed: i32 = guest.call("close", first);
        assert_eq!(closed, 0);
        let closed: i32 = guest.call("close", first);
        assert_eq!(closed, -1);
        assert!(guest.error().unwrap().contains("invalid library handle"));
        // Closed everywhere, it stays loaded: opening it again runs nothing.
        let third = guest.open("libc.so");
        assert_eq!(third, first);
        let runs: i32 = guest.call("call", get_runs);
        assert_eq!(runs, 2);
        assert_eq!(loads.load(Ordering::Relaxed), 1);
    }
}

/// A library that needs a function and a datum nobody defines.
const UNRESOLVED: &str = r#"(module
    (@dylink.0 (mem-info (memory 0 0)))
    (import "env" "memory" (memory 0))
    (import "GOT.mem" "nowhere_data" (global $d (mut i32)))
    (import "GOT.func" "nowhere_func" (global $f (mut i32)))
    (func (export "use") (result i32) (i32.add (global.get $d) (global.get $f)))
)"#;

/// The same, with both weak.
const WEAK: &str = r#"(module
    (@dylink.0 (mem-info (memory 0 0))
        (import-info "GOT.mem" "nowhere_data" binding-weak)
        (import-info "env" "nowhere_call" binding-weak))
    (import "env" "memory" (memory 0))
    (import "GOT.mem" "nowhere_data" (global $d (mut i32)))
    (import "env" "nowhere_call" (func $call))
    (func (export "data") (result i32) (global.get $d))
    (func (export "call_it") (call $call))
)"#;

#[test]
fn missing_symbols_are_named_and_weak_ones_are_zero() {
    let libs = vec![
        ("libu.so", wat::parse_str(UNRESOLVED).unwrap()),
        ("libw.so", wat::parse_str(WEAK).unwrap()),
        ("libside.so", side(SIDE)),
    ];
    let (mut guest, _) = Opener::new(libs, true);
    assert_eq!(guest.error(), None);
    assert_eq!(guest.open("libu.so"), 0);
    let message = guest.error().unwrap();
    assert!(
        message.contains("library `libu.so` has undefined symbols")
            && message.contains("GOT.mem::nowhere_data")
            && message.contains("GOT.func::nowhere_func"),
        "{message}"
    );
    assert_eq!(guest.error(), None, "dlerror clears the message");
    assert_eq!(
        guest.group.handle("libu.so"),
        None,
        "the failed load is forgotten"
    );

    let w = guest.open("libw.so");
    assert!(w > 0, "{:?}", guest.error());
    let data = guest.sym(w, "data");
    let zero: i32 = guest.call("call", data);
    assert_eq!(zero, 0);
    // The weak function traps when called, naming itself.
    let call_it = guest
        .group
        .get_func(&mut guest.store, guest.group.handle("libw.so"), "call_it")
        .unwrap();
    let err = futures::executor::block_on(call_it.call_async(&mut guest.store, &[], &mut []))
        .unwrap_err();
    assert!(format!("{err:?}").contains("weak undefined function `env::nowhere_call`"));

    // A library that imports a function nobody defines.
    assert_eq!(guest.open("libside.so"), 0);
    let message = guest.error().unwrap();
    assert!(message.contains("env::main_callback"), "{message}");
    assert!(!message.contains("slow_double"), "{message}");
    // dlsym of a missing name: 0 and a message naming it, then 0.
    assert_eq!(guest.sym(0, "nothing"), 0);
    assert!(guest
        .error()
        .unwrap()
        .contains("undefined symbol `nothing`"));
    // The host side reports the same as a typed error.
    let err = guest
        .group
        .dlsym(&mut guest.store, None, "nothing")
        .unwrap_err();
    assert!(matches!(
        err.downcast_ref::<DylinkError>(),
        Some(DylinkError::UndefinedSymbol { symbol, library: None }) if symbol == "nothing"
    ));
}

/// A library whose constructor traps (after waiting).
const CTOR_TRAP: &str = r#"(module
    (@dylink.0 (mem-info (memory 0 0)))
    (import "env" "memory" (memory 0))
    (import "env" "slow_double" (func $slow (param i32) (result i32)))
    (func (export "__wasm_call_ctors") (drop (call $slow (i32.const 1))) unreachable)
    (func (export "f") (result i32) (i32.const 1))
)"#;

#[test]
fn a_constructor_that_traps_fails_dlopen_and_is_forgotten() {
    for pending in [true, false] {
        let (mut guest, loads) = Opener::new(vec![("libtrap.so", side(CTOR_TRAP))], pending);
        assert_eq!(guest.open("libtrap.so"), 0);
        let message = guest.error().unwrap();
        assert!(
            message.contains("the constructors of library `libtrap.so` failed")
                && message.contains("unreachable"),
            "{message}"
        );
        assert_eq!(guest.sym(0, "f"), 0, "nothing of it is found");
        // Forgotten: the next dlopen loads it again, and fails again.
        assert_eq!(guest.open("libtrap.so"), 0);
        assert_eq!(loads.load(Ordering::Relaxed), 2);
        // The group still works.
        let usage = guest.group.main().buffer_usage().unwrap();
        assert_eq!((usage.in_use, usage.suspended), (0, 0));
        let err = futures::executor::block_on(guest.group.dlopen(&mut guest.store, "libtrap.so"))
            .unwrap_err();
        assert!(matches!(
            err.downcast_ref::<DylinkError>(),
            Some(DylinkError::Constructor { library, .. }) if library == "libtrap.so"
        ));
    }
}

#[test]
fn needed_cycles_and_absent_libraries_are_refused_by_name() {
    let lib = |needed: &str| {
        wat::parse_str(format!(
            r#"(module (@dylink.0 (mem-info) (needed "{needed}")) (import "env" "memory" (memory 0)))"#
        ))
        .unwrap()
    };
    let libs = vec![
        ("libx.so", lib("liby.so")),
        ("liby.so", lib("libz.so")),
        ("libz.so", lib("liby.so")),
        ("libn.so", lib("libabsent.so")),
        ("plain.wasm", wat::parse_str("(module)").unwrap()),
    ];
    let (mut guest, _) = Opener::new(libs, true);
    assert_eq!(guest.open("libx.so"), 0);
    let message = guest.error().unwrap();
    assert!(
        message.contains("need each other in a cycle: liby.so -> libz.so -> liby.so"),
        "{message}"
    );
    assert_eq!(guest.open("libn.so"), 0);
    let message = guest.error().unwrap();
    assert!(
        message.contains("cannot load library `libabsent.so`: no such file: libabsent.so"),
        "{message}"
    );
    assert_eq!(guest.open("plain.wasm"), 0);
    assert!(guest.error().unwrap().contains("is not a shared library"));
    let err =
        futures::executor::block_on(guest.group.dlopen(&mut guest.store, "libx.so")).unwrap_err();
    assert!(matches!(
        err.downcast_ref::<DylinkError>(),
        Some(DylinkError::NeededCycle { chain }) if chain.len() == 3
    ));
    // Nothing was left half loaded.
    for name in ["libx.so", "liby.so", "libz.so", "libn.so"] {
        assert_eq!(guest.group.handle(name), None, "{name}");
    }
}

#[test]
fn hostile_pointers_and_handles_fail_cleanly() {
    let (mut guest, loads) = Opener::new(vec![("libc.so", side(COUNTING))], true);
    let size = guest.group.memory().data_size(&guest.store) as i32;
    // Outside memory, at its last byte without a NUL, negative.
    for pointer in [size, i32::MAX, -1, -4096] {
        let handle: i32 = guest.call("open", pointer);
        assert_eq!(handle, 0);
        let message = guest.error().unwrap();
        assert!(message.contains("bad path pointer"), "{pointer}: {message}");
    }
    // (`dlerror` took memory for its messages: the memory grew.)
    let size = guest.group.memory().data_size(&guest.store) as i32;
    guest
        .group
        .memory()
        .write(&mut guest.store, size as usize - 1, b"x")
        .unwrap();
    let handle: i32 = guest.call("open", size - 1);
    assert_eq!(handle, 0);
    assert!(guest
        .error()
        .unwrap()
        .contains("no NUL before the end of memory"));
    // Longer than the cap: refused without reading on.
    let long = "a".repeat(5000);
    assert_eq!(guest.open(&long), 0);
    assert!(guest
        .error()
        .unwrap()
        .contains("no NUL in its first 4096 bytes"));
    // Not UTF-8.
    guest
        .group
        .memory()
        .write(&mut guest.store, 600, b"\xff\xfe\0")
        .unwrap();
    let handle: i32 = guest.call("open", 600);
    assert_eq!(handle, 0);
    assert!(guest.error().unwrap().contains("not UTF-8"));
    assert_eq!(
        loads.load(Ordering::Relaxed),
        0,
        "nothing reached the loader"
    );
    // Handles never given out, and the symbol name pointer outside memory.
    let c = guest.open("libc.so");
    for handle in [c + 1, 12345, -1, i32::MIN] {
        assert_eq!(guest.sym(handle, "get_runs"), 0);
        assert!(guest.error().unwrap().contains("invalid library handle"));
    }
    let found: i32 = guest.call("sym", (c, -8));
    assert_eq!(found, 0);
    assert!(guest.error().unwrap().contains("bad symbol name pointer"));
    // dlopen(NULL) is the main module.
    let main: i32 = guest.call("open", 0);
    assert_eq!(main as u32, guest.group.main_handle().get());
}

/// A position-independent main module: it imports its memory, table and
/// bases, and `run(x)` calls `side_fn` of `libpie.so` through `dlsym`.
const PIE_MAIN: &str = r#"(module
    (@dylink.0 (mem-info (memory 24 2) (table 0 0)))
    (import "env" "memory" (memory 1))
    (import "env" "__indirect_function_table" (table 1 funcref))
    (import "env" "__memory_base" (global $mb i32))
    (import "env" "__table_base" (global $tb i32))
    (import "env" "__stack_pointer" (global $sp (mut i32)))
    (import "env" "dlopen" (func $dlopen (param i32 i32) (result i32)))
    (import "env" "dlsym" (func $dlsym (param i32 i32) (result i32)))
    (import "env" "slow_double" (func $slow (param i32) (result i32)))
    (type $i2i (func (param i32) (result i32)))
    (data (global.get $mb) "libpie.so\00\00\00side_fn\00")
    (func (export "main_callback") (param i32) (result i32)
        (i32.add (call $slow (local.get 0)) (i32.const 1)))
    (func (export "run") (param i32) (result i32)
        (local $h i32) (local $f i32)
        (local.set $h (call $dlopen (global.get $mb) (i32.const 2)))
        (if (i32.eqz (local.get $h)) (then (return (i32.const -1))))
        (local.set $f (call $dlsym (local.get $h) (i32.add (global.get $mb) (i32.const 12))))
        (if (i32.eqz (local.get $f)) (then (return (i32.const -2))))
        (call_indirect (type $i2i) (local.get 0) (local.get $f)))
)"#;

/// Calls the main's callback through its address (`GOT.func`), not by name.
const PIE_SIDE: &str = r#"(module
    (@dylink.0 (mem-info (memory 4 2)))
    (import "env" "memory" (memory 0))
    (import "env" "__indirect_function_table" (table 0 funcref))
    (import "env" "__memory_base" (global $mb i32))
    (import "env" "slow_double" (func $slow (param i32) (result i32)))
    (import "GOT.func" "main_callback" (global $cb (mut i32)))
    (type $i2i (func (param i32) (result i32)))
    (func (export "callback_address") (result i32) (global.get $cb))
    (func (export "side_fn") (param i32) (result i32)
        (i32.add
            (call $slow (local.get 0))
            (call_indirect (type $i2i) (local.get 0) (global.get $cb))))
)"#;

#[test]
fn a_position_independent_main_and_a_function_pointer_into_it() {
    for pending in [true, false] {
        let engine = Engine::default();
        let linker = host(&engine, pending);
        let (dynamic, _) = dynamic(&linker, vec![("libpie.so", side(PIE_SIDE))], pending);
        let mut store = Store::new(&engine, ());
        let group =
            futures::executor::block_on(dynamic.instantiate(&mut store, &main_module(PIE_MAIN)))
                .unwrap_or_else(|e| panic!("{e:?}"));
        let main_info = group.info(group.main_handle()).unwrap();
        assert!(main_info.memory_base >= 1024, "address 0 stays NULL");
        let run = group
            .main()
            .get_typed_func::<i32, i32>(&mut store, "run")
            .unwrap();
        let (out, waits) = run_counting(run.call_async(&mut store, 5));
        assert_eq!(out.unwrap(), 10 + 11);
        assert_eq!(waits, if pending { 3 } else { 0 });
        // The side module's GOT entry and the host's dlsym agree: one
        // function, one address.
        let lib = group.handle("libpie.so").unwrap();
        let address = group
            .get_func(&mut store, Some(lib), "callback_address")
            .unwrap()
            .typed::<(), i32>(&store)
            .unwrap();
        let (address, _) = run_counting(address.call_async(&mut store, ()));
        let found = group.dlsym(&mut store, None, "main_callback").unwrap();
        assert_eq!(found, Symbol::Function(address.unwrap() as u32));
    }
}

#[test]
fn modules_instrumented_on_load_share_one_state() {
    let engine = Engine::default();
    let linker = host(&engine, true);
    let libs = vec![("libside.so", wat::parse_str(SIDE).unwrap())];
    let (mut dynamic, _) = dynamic(&linker, libs, true);
    dynamic.instrument_on_load(Some(Default::default()));
    let mut store = Store::new(&engine, ());
    let main = wat::parse_str(MAIN).unwrap();
    let group = futures::executor::block_on(dynamic.instantiate(&mut store, &main)).unwrap();
    let run = group
        .main()
        .get_typed_func::<i32, i32>(&mut store, "run")
        .unwrap();
    let (out, waits) = run_counting(run.call_async(&mut store, 5));
    assert_eq!(out.unwrap(), 122);
    assert_eq!(waits, 3);
    let handle = group.handle("libside.so").unwrap();
    assert!(group.instance(handle).unwrap().is_instrumented());
}

#[test]
fn a_side_module_with_its_own_asyncify_state_is_refused() {
    // Instrumented without `asyncify-import-globals`: its state is its own.
    let own_state = asyncify_transform::instrument(SIDE.as_bytes(), &Default::default())
        .unwrap()
        .wasm;
    let (mut guest, _) = Opener::new(vec![("libside.so", own_state)], false);
    assert_eq!(guest.open("libside.so"), 0);
    let message = guest.error().unwrap();
    assert!(
        message.contains("cannot join the group's asyncify state")
            && message.contains("asyncify-import-globals"),
        "{message}"
    );
}

#[test]
fn a_dlopen_cancelled_while_it_waits_leaves_nothing_half_loaded() {
    let (mut guest, loads) = Opener::new(vec![("libc.so", side(COUNTING))], true);
    let at = guest.string(512, "libc.so");
    let open = guest
        .group
        .main()
        .get_typed_func::<i32, i32>(&mut guest.store, "open")
        .unwrap();
    for polls in [1, 2] {
        // Pending in the loader (1 poll), then in the constructor (2 polls):
        // the call is dropped there.
        let mut call = Box::pin(open.call_async(&mut guest.store, at));
        for _ in 0..polls {
            assert!(poll_once(call.as_mut()).is_pending());
        }
        drop(call);
        assert_eq!(guest.group.handle("libc.so"), None, "after {polls} polls");
        let usage = guest.group.main().buffer_usage().unwrap();
        assert_eq!((usage.in_use, usage.suspended), (0, 0));
    }
    assert_eq!(loads.load(Ordering::Relaxed), 2);
    // Nothing is left in progress: the next dlopen loads it afresh.
    let c = guest.open("libc.so");
    assert!(c > 0, "{:?}", guest.error());
    let get_runs = guest.sym(c, "get_runs");
    let runs: i32 = guest.call("call", get_runs);
    assert_eq!(runs, 2);
    assert_eq!(loads.load(Ordering::Relaxed), 3);
}

/// A library that opens another one itself, and calls into it through
/// `dlsym`: `runs_of_c()` is `get_runs` of `libc.so`.
const OPENS_ANOTHER: &str = r#"(module
    (@dylink.0 (mem-info (memory 20 0)))
    (import "env" "memory" (memory 0))
    (import "env" "__indirect_function_table" (table 0 funcref))
    (import "env" "__memory_base" (global $mb i32))
    (import "env" "dlopen" (func $dlopen (param i32 i32) (result i32)))
    (import "env" "dlsym" (func $dlsym (param i32 i32) (result i32)))
    (data (global.get $mb) "libc.so\00get_runs\00")
    (func (export "runs_of_c") (result i32)
        (call_indirect (result i32)
            (call $dlsym
                (call $dlopen (global.get $mb) (i32.const 2))
                (i32.add (global.get $mb) (i32.const 8)))))
)"#;

#[test]
fn a_library_calls_dlopen_itself_while_the_main_waits_through_it() {
    for pending in [true, false] {
        let libs = vec![
            ("libo.so", side(OPENS_ANOTHER)),
            ("libc.so", side(COUNTING)),
        ];
        let (mut guest, loads) = Opener::new(libs, pending);
        let o = guest.open("libo.so");
        assert!(o > 0, "{:?}", guest.error());
        let runs_of_c = guest.sym(o, "runs_of_c");
        let f = guest
            .group
            .main()
            .get_typed_func::<i32, i32>(&mut guest.store, "call")
            .unwrap();
        // The side module's dlopen waits for the loader, then for
        // slow_double in libc.so's constructor: the main's frame, the side
        // module's and the constructor's call all suspend.
        let (runs, waits) = run_counting(f.call_async(&mut guest.store, runs_of_c));
        assert_eq!(runs.unwrap(), 2);
        assert_eq!(waits, if pending { 2 } else { 0 });
        assert_eq!(loads.load(Ordering::Relaxed), 2);
        assert!(guest.group.handle("libc.so").is_some());
    }
}
