//! Instrument the demo module, then run it with an async `env.fetch`: the
//! embedding example of the README. `cargo run -p asyncify-cli --example embed`
use asyncify_linker::{yield_now, AsyncCaller, Linker};
use wasmtime::{Engine, Module, Store};

fn main() -> wasmtime::Result<()> {
    let wat = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/demo.wat"))?;
    let wasm = asyncify_transform::instrument(&wat, &Default::default())?.wasm;
    let engine = Engine::default();
    let mut linker = Linker::new(&engine);
    // An import served by a future: the instance unwinds while it is pending.
    linker.func_wrap_async("env", "fetch", |_: AsyncCaller<()>, key: i32| async move {
        yield_now().await; // pending once, as a network or disk read would be
        Ok(key % 7)
    })?;
    linker.func_wrap("env", "log", |_ptr: i32, _len: i32| {})?;
    let mut store = Store::new(&engine, ());
    let instance = linker.instantiate(&mut store, &Module::new(&engine, &wasm)?)?;
    let run = instance.get_typed_func::<i32, i64>(&mut store, "run")?;
    let checksum = futures::executor::block_on(run.call_async(&mut store, 3))?;
    println!("run(3) = {checksum}");
    Ok(())
}
