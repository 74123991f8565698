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

use asyncify_linker::dylink::{DynamicInstance, DynamicLinker, Symbol};
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
