//! `asyncify-linker` driving generated modules that fake the asyncify
//! runtime (lying states and headers, traps at any step, runtime functions
//! that call imports, nested calls, cancellation). The body is shared with
//! the stable-Rust runs in `linker/tests/hostile.rs`; see
//! `../harness/linker_driver.rs` for what is generated and checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../harness/linker_driver.rs"]
mod linker_driver;

fuzz_target!(|data: &[u8]| {
    linker_driver::run(data);
});
