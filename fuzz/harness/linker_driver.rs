//! The body of the `linker_driver` fuzz target, shared with the stable-Rust
//! runs in `linker/tests/hostile.rs` (`fuzz_harness_smoke`,
//! `fuzz_harness_long`).
//!
//! The input describes a module that *fakes* the asyncify runtime: its five
//! `asyncify_*` exports and its export `run(x)` are built from the input, from
//! honest pieces (set the state, remember the header, check `cur <= end`,
//! save and load a frame) mixed with hostile ones (set any state, write any
//! `cur`/`end`, trap on the n-th call, call the async imports from inside a
//! runtime function, grow or scribble over memory, advance `cur` by huge
//! frames). It also chooses the linker's buffer settings and the calls to
//! make: how many, with which argument, and after how many polls to drop
//! one (cancellation). The host defines two async imports: `env.wait`, which
//! is pending a few times and may fail, and `env.reenter`, which calls `run`
//! again from inside the import (nesting, bounded by the input).
//!
//! What is checked: nothing panics or aborts; every poll returns (a call
//! still pending after 2,000 polls, a guest that keeps waiting, is
//! cancelled); once every call has ended or been cancelled, the
//! instance holds no saved stack and reports a buffer no larger than it is;
//! an instance the linker declared unusable stays so.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use asyncify_linker::{yield_now, AsyncCaller, Error, Linker};
use wasmtime::{Config, Engine, Module, Store, Val};

/// A small deterministic generator for the stable-Rust runs (unused by the
/// libFuzzer target).
#[allow(dead_code)]
pub struct SplitMix(pub u64);

#[allow(dead_code)]
impl SplitMix {
    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Reads choices from the input; zeros once it runs out.
struct Choices<'a> {
    data: &'a [u8],
    at: usize,
}

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn below(&mut self, n: u32) -> u32 {
        u32::from(self.byte()) % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u32) as usize]
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn value(&mut self) -> i64 {
        const INTERESTING: [i64; 12] = [
            0,
            1,
            2,
            4,
            8,
            16,
            65535,
            65536,
            0x7fff_ffff,
            0xffff_fff0,
            0xffff_ffff,
            0x1000_0000,
        ];
        if self.below(4) == 0 {
            i64::from(self.u32())
        } else {
            self.pick(&INTERESTING)
        }
    }
}

/// One hostile or honest piece of a runtime function's body. `has_ptr`:
/// the function has the pointer parameter `$p`.
fn piece(c: &mut Choices<'_>, has_ptr: bool) -> String {
    match c.below(12) {
        0 => format!("(global.set $state (i32.const {}))", c.pick(&[0, 1, 2, 3, -1])),
        1 if has_ptr => "(global.set $data (local.get $p))".into(),
        1 => format!("(global.set $data (i32.const {}))", c.value()),
        2 => format!(
            "(i32.store offset={} (global.get $data) (i32.const {}))",
            c.pick(&[0, 4]),
            c.value()
        ),
        3 => format!(
            "(if (i32.eq (global.get $calls) (i32.const {})) (then unreachable))",
            c.below(6)
        ),
        4 => format!("(drop (call $wait (i32.const {})))", c.below(8)),
        5 => format!("(drop (call $reenter (i32.const {})))", c.below(4)),
        6 => format!("(drop (memory.grow (i32.const {})))", c.below(3)),
        7 => format!(
            "(memory.fill (global.get $data) (i32.const {}) (i32.const {}))",
            c.byte(),
            c.pick(&[8, 64, 4096])
        ),
        8 => "(if (i32.gt_u (i32.load (global.get $data)) (i32.load offset=4 (global.get $data))) (then unreachable))".into(),
        _ => String::new(),
    }
}

/// A runtime function: honest core (most of the time) with pieces around it.
fn runtime_body(c: &mut Choices<'_>, core: &str, has_ptr: bool) -> String {
    let mut body = String::new();
    for _ in 0..c.below(3) {
        body += &piece(c, has_ptr);
    }
    if c.below(4) != 0 {
        body += core;
    }
    for _ in 0..c.below(3) {
        body += &piece(c, has_ptr);
    }
    body
}

/// The module the input describes.
fn module_text(c: &mut Choices<'_>) -> String {
    let check = "(if (i32.gt_u (i32.load (local.get $p)) (i32.load offset=4 (local.get $p))) (then unreachable))";
    let start_unwind = runtime_body(
        c,
        &format!("(global.set $state (i32.const 1)) (global.set $data (local.get $p)) {check}"),
        true,
    );
    let stop_unwind = runtime_body(c, "(global.set $state (i32.const 0))", false);
    let start_rewind = runtime_body(
        c,
        &format!("(global.set $state (i32.const 2)) (global.set $data (local.get $p)) {check}"),
        true,
    );
    let stop_rewind = runtime_body(c, "(global.set $state (i32.const 0))", false);
    let get_state_pre = runtime_body(c, "", false);
    let get_state = match c.below(8) {
        0 => format!("(i32.const {})", c.pick(&[0, 1, 2, 5])),
        1 => "(global.get $calls)".into(),
        _ => "(global.get $state)".into(),
    };
    let frame = match c.below(8) {
        0 => c.value(),
        1 => 0,
        _ => 4,
    };
    let import = if c.below(4) == 0 { "$reenter" } else { "$wait" };
    let before = runtime_body(c, "", false);
    let after = runtime_body(c, "", false);
    let memory = match c.below(4) {
        0 => format!("1 {}", 1 + c.below(3)),
        _ => "1".into(),
    };
    format!(
        r#"(module
  (import "env" "wait" (func $wait (param i32) (result i32)))
  (import "env" "reenter" (func $reenter (param i32) (result i32)))
  (memory (export "memory") {memory})
  (global $state (mut i32) (i32.const 0))
  (global $data (mut i32) (i32.const 0))
  (global $calls (mut i32) (i32.const 0))
  (func (export "asyncify_start_unwind") (param $p i32) {start_unwind})
  (func (export "asyncify_stop_unwind") {stop_unwind})
  (func (export "asyncify_start_rewind") (param $p i32) {start_rewind})
  (func (export "asyncify_stop_rewind") {stop_rewind})
  (func (export "asyncify_get_state") (result i32) {get_state_pre} {get_state})
  (func (export "run") (param $x i32) (result i32)
    (local $r i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (i32.eq (global.get $state) (i32.const 2)) (then
      (i32.store (global.get $data) (i32.sub (i32.load (global.get $data)) (i32.const {frame})))
      (local.set $x (i32.load (i32.load (global.get $data))))))
    {before}
    (local.set $r (call {import} (local.get $x)))
    (if (i32.eq (global.get $state) (i32.const 1)) (then
      (i32.store (i32.load (global.get $data)) (local.get $x))
      (i32.store (global.get $data) (i32.add (i32.load (global.get $data)) (i32.const {frame})))
      (return (i32.const 0))))
    {after}
    (i32.add (local.get $r) (local.get $x))))"#
    )
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        Engine::new(&config).expect("engine")
    })
}

thread_local! {
    /// How deep `env.reenter` has nested on this thread.
    static NESTED: Cell<u32> = const { Cell::new(0) };
}

/// One level of `env.reenter` in progress (also when its future is dropped).
struct Level;

impl Level {
    fn enter() -> Level {
        NESTED.set(NESTED.get() + 1);
        Level
    }
}

impl Drop for Level {
    fn drop(&mut self) {
        NESTED.set(NESTED.get() - 1);
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut c = Choices { data, at: 0 };
    let text = module_text(&mut c);
    let engine = engine();
    let module = match wat::parse_str(&text).map_err(wasmtime::Error::from) {
        Ok(wasm) => Module::new(engine, wasm),
        Err(e) => Err(e),
    };
    let module = match module {
        Ok(m) => m,
        Err(e) => panic!("the generator made an invalid module: {e:?}\n{text}"),
    };
    let mut linker = Linker::<()>::new(engine);
    match c.below(6) {
        // (`buffer_size(u64::MAX)` grows memory to 4 GiB and makes each
        // suspension copy what the guest claims it saved: correct, but too
        // slow for a fuzzer; `absurd_buffer_settings` in the hostile suite
        // covers it.)
        0 => {
            linker.buffer_size(c.pick(&[0, 8, 64, 4096, 1 << 20]));
        }
        1 => {
            linker
                .buffer_size(64)
                .max_buffer_size(c.pick(&[0, 128, 1 << 16, 1 << 20]));
        }
        2 => {
            let offset = c.pick(&[0, 16, 1024, 65528, u64::MAX]);
            linker.fixed_buffer(offset, c.pick(&[0, 8, 16, 1000, u64::MAX]));
        }
        _ => {}
    }
    let max_nesting = c.below(6);
    linker
        .func_wrap_async("env", "wait", |_: AsyncCaller<()>, x: i32| async move {
            for _ in 0..(x & 3) {
                yield_now().await;
            }
            if x % 7 == 6 {
                return Err(wasmtime::format_err!("wait failed on purpose"));
            }
            Ok(x.wrapping_add(1))
        })
        .expect("define wait");
    linker
        .func_wrap_async(
            "env",
            "reenter",
            move |caller: AsyncCaller<()>, x: i32| async move {
                if x & 1 == 1 {
                    yield_now().await;
                }
                if NESTED.get() >= max_nesting {
                    return Ok(-1);
                }
                let Some(run) = caller.get_func("run") else {
                    return Ok(-2);
                };
                let level = Level::enter();
                let out = caller.call_async(&run, vec![Val::I32(x >> 1)]).await;
                drop(level);
                match out {
                    Ok(values) => Ok(values.first().and_then(|v| v.i32()).unwrap_or(-3)),
                    // Swallowing the nested failure exercises the outer call
                    // going on after it; passing it on, the outer failing.
                    Err(_) if x & 2 == 2 => Ok(-4),
                    Err(e) => Err(e),
                }
            },
        )
        .expect("define reenter");

    let mut store = Store::new(engine, ());
    let instance = match linker.instantiate(&mut store, &module) {
        Ok(i) => i,
        Err(e) => panic!("instantiation failed: {e:?}"),
    };
    let run = instance
        .get_typed_func::<i32, i32>(&mut store, "run")
        .expect("run");
    let mut unusable = false;
    for _ in 0..1 + c.below(5) {
        let x = c.byte() as i32 - 8;
        let drop_after = match c.below(4) {
            0 => Some(c.below(4)),
            _ => None,
        };
        let out = {
            let mut call = pin!(run.call_async(&mut store, x));
            let mut cx = Context::from_waker(Waker::noop());
            let mut polls = 0u32;
            loop {
                if drop_after == Some(polls) {
                    break None;
                }
                match call.as_mut().poll(&mut cx) {
                    Poll::Ready(out) => break Some(out),
                    Poll::Pending => polls += 1,
                }
                // A guest may wait forever (its fake rewind can start the
                // same wait again each time): every poll returned, which is
                // what matters; cancel it.
                if polls >= 2_000 {
                    break None;
                }
            }
        };
        if let Some(Err(e)) = &out {
            let is_unusable = matches!(e.downcast_ref::<Error>(), Some(Error::Unusable { .. }));
            unusable |= is_unusable;
        } else if unusable && out.is_some() {
            panic!("an unusable instance ran a call: {out:?}\n{text}");
        }
        let usage = instance.buffer_usage().expect("instrumented");
        assert_eq!(
            (usage.suspended, usage.in_use),
            (0, 0),
            "a finished call left a saved stack behind\n{text}"
        );
    }
    assert_eq!(NESTED.get(), 0);
}
