//! Benchmarks against Binaryen and wasmtime fibers: the section binaries of
//! `cargo bench-report` and what they share.

pub mod binaryen;
pub mod compile_time;
pub mod sections;
pub mod targets;
