//! Benchmarks (not yet implemented).

pub mod binaryen;
pub mod compile_time;
pub mod sections;
