//! Benchmarks (not yet implemented).

pub mod binaryen;
pub mod sections;
