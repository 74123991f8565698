//! The asyncify ABI, the contract between an instrumented module and the host
//! that drives it, written down once for the transform, the linker and the CLI.
//!
//! It is Binaryen's ABI (`wasm-opt --asyncify`), so any runtime built for
//! Binaryen's output drives ours and ours drives Binaryen's. `docs/abi.md` in
//! the repository describes it in prose; this crate holds the same facts as
//! values, so that no list of names or states is repeated by position.
//!
//! - Two globals: the [`State`] (i32) and the data pointer (pointer-sized).
//! - Five functions ([`RuntimeFunction`]), exported under
//!   [`RuntimeFunction::export_name`]; a module may also import them from
//!   [`RUNTIME_IMPORT_MODULE`] to drive itself.
//! - The data pointer addresses a [`header`] of two pointer-sized fields,
//!   `cur` and `end`; frames are written from `cur` upward, laid out as
//!   [`frame`] says.
//!
//! Beside the ABI, [`text`] holds the one spelling of WebAssembly types the
//! crates use in their messages and reports.
//!
//! ```
//! use asyncify_abi::{RuntimeFunction, State};
//!
//! let f = RuntimeFunction::from_export_name("asyncify_start_unwind").unwrap();
//! assert_eq!(f, RuntimeFunction::StartUnwind);
//! assert_eq!(f.sets_state(), Some(State::Unwinding));
//! assert!(f.takes_pointer());
//! assert_eq!(asyncify_abi::header::end_offset(false), 4);
//! ```

#![no_std]
#![warn(missing_docs)]

pub mod text;

/// The value of the state global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum State {
    /// Code runs normally.
    Normal = 0,
    /// Functions are returning to the host, each writing its frame.
    Unwinding = 1,
    /// Functions are re-entered from the host, each reading its frame back.
    Rewinding = 2,
}

impl State {
    /// The state's value in the state global.
    pub const fn value(self) -> i32 {
        self as i32
    }

    /// The state whose value is `value`, if any.
    pub const fn from_value(value: i32) -> Option<State> {
        match value {
            0 => Some(State::Normal),
            1 => Some(State::Unwinding),
            2 => Some(State::Rewinding),
            _ => None,
        }
    }
}

/// A parameter or result type of a runtime function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbiType {
    /// An address in the buffer's memory: `i32`, or `i64` for a 64-bit memory.
    Pointer,
    /// An `i32`.
    I32,
}

/// The type of a runtime function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    /// Parameter types.
    pub params: &'static [AbiType],
    /// Result types.
    pub results: &'static [AbiType],
}

/// The module that a guest imports the runtime functions from (`asyncify.start_unwind`...).
pub const RUNTIME_IMPORT_MODULE: &str = "asyncify";

/// The five functions an instrumented module exports. The transform places
/// them in the output in [`RuntimeFunction::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuntimeFunction {
    /// `asyncify_start_unwind(ptr)`: state := unwinding, data := `ptr`.
    StartUnwind,
    /// `asyncify_stop_unwind()`: state := normal.
    StopUnwind,
    /// `asyncify_start_rewind(ptr)`: state := rewinding, data := `ptr`.
    StartRewind,
    /// `asyncify_stop_rewind()`: state := normal.
    StopRewind,
    /// `asyncify_get_state() -> i32`: reads the state.
    GetState,
}

impl RuntimeFunction {
    /// Every runtime function, in the order of the output's function index space.
    pub const ALL: [RuntimeFunction; 5] = [
        RuntimeFunction::StartUnwind,
        RuntimeFunction::StopUnwind,
        RuntimeFunction::StartRewind,
        RuntimeFunction::StopRewind,
        RuntimeFunction::GetState,
    ];

    /// The name a guest imports it under from [`RUNTIME_IMPORT_MODULE`].
    pub const fn import_name(self) -> &'static str {
        match self {
            RuntimeFunction::StartUnwind => "start_unwind",
            RuntimeFunction::StopUnwind => "stop_unwind",
            RuntimeFunction::StartRewind => "start_rewind",
            RuntimeFunction::StopRewind => "stop_rewind",
            RuntimeFunction::GetState => "get_state",
        }
    }

    /// The name an instrumented module exports it under.
    pub const fn export_name(self) -> &'static str {
        match self {
            RuntimeFunction::StartUnwind => "asyncify_start_unwind",
            RuntimeFunction::StopUnwind => "asyncify_stop_unwind",
            RuntimeFunction::StartRewind => "asyncify_start_rewind",
            RuntimeFunction::StopRewind => "asyncify_stop_rewind",
            RuntimeFunction::GetState => "asyncify_get_state",
        }
    }

    /// The state it sets, or `None` for [`RuntimeFunction::GetState`], which only reads it.
    pub const fn sets_state(self) -> Option<State> {
        match self {
            RuntimeFunction::StartUnwind => Some(State::Unwinding),
            RuntimeFunction::StartRewind => Some(State::Rewinding),
            RuntimeFunction::StopUnwind | RuntimeFunction::StopRewind => Some(State::Normal),
            RuntimeFunction::GetState => None,
        }
    }

    /// Whether it takes the buffer pointer (and stores it in the data global).
    pub const fn takes_pointer(self) -> bool {
        matches!(
            self,
            RuntimeFunction::StartUnwind | RuntimeFunction::StartRewind
        )
    }

    /// Its type.
    pub const fn signature(self) -> Signature {
        match self {
            RuntimeFunction::StartUnwind | RuntimeFunction::StartRewind => Signature {
                params: &[AbiType::Pointer],
                results: &[],
            },
            RuntimeFunction::StopUnwind | RuntimeFunction::StopRewind => Signature {
                params: &[],
                results: &[],
            },
            RuntimeFunction::GetState => Signature {
                params: &[],
                results: &[AbiType::I32],
            },
        }
    }

    /// The runtime function imported as `asyncify.<name>`.
    pub fn from_import_name(name: &str) -> Option<RuntimeFunction> {
        Self::ALL.into_iter().find(|f| f.import_name() == name)
    }

    /// The runtime function exported as `name`.
    pub fn from_export_name(name: &str) -> Option<RuntimeFunction> {
        Self::ALL.into_iter().find(|f| f.export_name() == name)
    }
}

/// Names of the two globals when they are imported (`asyncify-import-globals`)
/// or exported (`asyncify-export-globals`).
pub mod globals {
    /// The module the globals are imported from.
    pub const IMPORT_MODULE: &str = "env";
    /// The state global ([`State`](crate::State), `i32`).
    pub const STATE: &str = "__asyncify_state";
    /// The data global (the header's address, pointer-sized).
    pub const DATA: &str = "__asyncify_data";
}

/// The export name of the memory added for the buffer with
/// `asyncify-in-secondary-memory`.
pub const SECONDARY_MEMORY_EXPORT: &str = "asyncify_memory";

/// The header the data pointer addresses: two pointer-sized fields the host
/// initialises. The start and stop functions trap when `cur > end` (unsigned).
pub mod header {
    /// Offset of `cur`, where the next frame is written (or read back from
    /// below, while rewinding).
    pub const CUR_OFFSET: u64 = 0;

    /// Offset of `end`, the first byte frames may not use: 4 for a 32-bit
    /// memory, 8 for a 64-bit one.
    pub const fn end_offset(memory64: bool) -> u64 {
        pointer_bytes(memory64)
    }

    /// Size of a pointer field: 4 or 8.
    pub const fn pointer_bytes(memory64: bool) -> u64 {
        if memory64 {
            8
        } else {
            4
        }
    }

    /// Size of the header: two pointer fields.
    pub const fn size(memory64: bool) -> u64 {
        2 * pointer_bytes(memory64)
    }
}

/// The layout of one function's frame in the buffer. The frame is private
/// to the module (a host only moves `cur`), so this is the transform's
/// choice, not Binaryen's: the saved locals in the function's frame order,
/// each at its natural size, then the point index, then the owner id.
pub mod frame {
    /// Bytes of a saved `i32` or `f32`.
    pub const I32_BYTES: u32 = 4;
    /// Bytes of a saved `i64` or `f64`.
    pub const I64_BYTES: u32 = 8;
    /// Bytes of a saved `v128`.
    pub const V128_BYTES: u32 = 16;
    /// Bytes of a saved reference: the frame holds the index of the table
    /// slot the reference is kept in, an `i32`.
    pub const REFERENCE_SLOT_BYTES: u32 = 4;
    /// Bytes of the index of the point the function stopped at (an `i32`
    /// after the locals), present when the function has more than one point.
    pub const POINT_INDEX_BYTES: u32 = 4;
    /// Bytes of the id of the frame's owner (an `i32` after the point index),
    /// present when some tail call may suspend, so a rewind can tell which
    /// function a trampoline must re-enter.
    pub const OWNER_ID_BYTES: u32 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in RuntimeFunction::ALL {
            assert_eq!(RuntimeFunction::from_import_name(f.import_name()), Some(f));
            assert_eq!(RuntimeFunction::from_export_name(f.export_name()), Some(f));
            assert_eq!(
                f.export_name().strip_prefix("asyncify_"),
                Some(f.import_name())
            );
        }
        assert_eq!(RuntimeFunction::from_import_name("sleep"), None);
    }

    #[test]
    fn states_round_trip() {
        for s in [State::Normal, State::Unwinding, State::Rewinding] {
            assert_eq!(State::from_value(s.value()), Some(s));
        }
        assert_eq!(State::from_value(3), None);
    }

    #[test]
    fn header_offsets() {
        assert_eq!(header::end_offset(false), 4);
        assert_eq!(header::end_offset(true), 8);
        assert_eq!(header::size(true), 16);
    }
}

/// Yield checks (this project's extension, `asyncify instrument
/// --yield-checks`): budget checks at loop headers and at the entry of
/// functions that can recurse, for time-slicing a CPU-bound guest.
pub mod yield_checks {
    /// Module of the import a check calls when the budget is spent:
    /// `(func (result i32))`, which may suspend and returns the next budget.
    pub const IMPORT_MODULE: &str = "asyncify";
    /// Name of that import.
    pub const IMPORT_NAME: &str = "yield";
    /// Export name of the budget, a mutable `i32` global the checks charge
    /// (approximate instructions) and the host may set.
    pub const BUDGET_EXPORT: &str = "asyncify_budget";
    /// The budget's initial value: about a millisecond of compiled code.
    pub const DEFAULT_BUDGET: i32 = 1_000_000;
}
