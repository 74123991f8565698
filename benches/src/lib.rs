//! Benchmarks (not yet implemented).
