//! Links WebAssembly modules on wasmtime and serves host imports as futures (not yet implemented).
