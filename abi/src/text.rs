//! One spelling of WebAssembly types for every message and report of the
//! project: the text format's (`func (param i32) (result i32)`,
//! `global (mut i32)`, `memory i64 1 2 shared`, `table 1 funcref`,
//! `tag (param i32)`), the keyword of the import or export followed by the
//! type as a `.wat` file writes it.
//!
//! The description is neutral: each crate fills it from the types of its own
//! parser or runtime (wasmparser in the transform, wasmtime in the linker and
//! the CLI), so this crate stays free of dependencies and the spellings
//! cannot drift apart.
//!
//! ```
//! use asyncify_abi::text::{ExternType, FuncType, Limits};
//!
//! let global = ExternType::Global { content: "i32", mutable: true };
//! assert_eq!(global.to_string(), "global (mut i32)");
//!
//! let func = ExternType::Func(FuncType { params: &["i32", "i64"], results: &["i32"] });
//! assert_eq!(func.to_string(), "func (param i32 i64) (result i32)");
//!
//! let memory: ExternType<'_, &str> = ExternType::Memory {
//!     address64: true,
//!     limits: Limits { min: 1, max: Some(2) },
//!     shared: true,
//! };
//! assert_eq!(memory.to_string(), "memory i64 1 2 shared");
//! ```

use core::fmt::{self, Display};

/// A function type's parameters and results; displays as
/// `(param i32) (result i32)`, leaving out an empty list (so a function
/// without either displays as nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuncType<'a, V> {
    /// Parameter types.
    pub params: &'a [V],
    /// Result types.
    pub results: &'a [V],
}

impl<V: Display> Display for FuncType<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (word, types) in [("param", self.params), ("result", self.results)] {
            if types.is_empty() {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "({word}")?;
            for t in types {
                write!(f, " {t}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl<V> FuncType<'_, V> {
    fn is_empty(&self) -> bool {
        self.params.is_empty() && self.results.is_empty()
    }
}

/// The limits of a memory or table; displays as `min` or `min max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Initial size (pages or elements).
    pub min: u64,
    /// Maximum size, if any.
    pub max: Option<u64>,
}

impl Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.min)?;
        if let Some(max) = self.max {
            write!(f, " {max}")?;
        }
        Ok(())
    }
}

/// A reference type over an abstract heap type (`func`, `extern`, `any`,
/// `none`...); displays as the text format abbreviates it when nullable
/// (`funcref`, `nullref`, `nullexternref`...) and as `(ref func)` otherwise,
/// the way wasmparser prints it. Runtimes that spell every reference in the
/// long form (wasmtime's `(ref null func)`) print through this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbstractRefType<'a> {
    /// Whether `null` is a value of the type.
    pub nullable: bool,
    /// The heap type's name: `func`, `nofunc`, `extern`, `any`, `none`...
    pub heap: &'a str,
}

impl Display for AbstractRefType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.nullable {
            return write!(f, "(ref {})", self.heap);
        }
        // The bottom types abbreviate with `null`: (ref null none) is `nullref`.
        match self.heap {
            "none" => f.write_str("nullref"),
            heap => match heap.strip_prefix("no") {
                Some(rest) => write!(f, "null{rest}ref"),
                None => write!(f, "{heap}ref"),
            },
        }
    }
}

/// The type of an import or an export, with value types `V` that display in
/// the text format (wasmparser's and wasmtime's `ValType` both do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternType<'a, V> {
    /// `func (param ...) (result ...)`.
    Func(FuncType<'a, V>),
    /// `global i32` or `global (mut i32)`.
    Global {
        /// The value type.
        content: V,
        /// Whether it is mutable.
        mutable: bool,
    },
    /// `memory 1`, `memory i64 1 2 shared`...
    Memory {
        /// Whether addresses are `i64` (memory64).
        address64: bool,
        /// Size in pages.
        limits: Limits,
        /// Whether it is shared (threads).
        shared: bool,
    },
    /// `table 1 funcref`, `table i64 1 10 externref`...
    Table {
        /// Whether indices are `i64` (table64).
        address64: bool,
        /// Size in elements.
        limits: Limits,
        /// The element (reference) type.
        element: V,
    },
    /// `tag (param i32)`.
    Tag(FuncType<'a, V>),
}

/// `func`, or `func (param ...)` when the type has parameters or results.
fn keyword_and_type<V: Display>(
    f: &mut fmt::Formatter<'_>,
    keyword: &str,
    ty: &FuncType<'_, V>,
) -> fmt::Result {
    f.write_str(keyword)?;
    if ty.is_empty() {
        Ok(())
    } else {
        write!(f, " {ty}")
    }
}

impl<V: Display> Display for ExternType<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let address = |f: &mut fmt::Formatter<'_>, address64: bool| {
            if address64 {
                f.write_str(" i64")
            } else {
                Ok(())
            }
        };
        match self {
            ExternType::Func(ty) => keyword_and_type(f, "func", ty),
            ExternType::Tag(ty) => keyword_and_type(f, "tag", ty),
            ExternType::Global {
                content,
                mutable: true,
            } => write!(f, "global (mut {content})"),
            ExternType::Global { content, .. } => write!(f, "global {content}"),
            ExternType::Memory {
                address64,
                limits,
                shared,
            } => {
                f.write_str("memory")?;
                address(f, *address64)?;
                write!(f, " {limits}")?;
                if *shared {
                    f.write_str(" shared")?;
                }
                Ok(())
            }
            ExternType::Table {
                address64,
                limits,
                element,
            } => {
                f.write_str("table")?;
                address(f, *address64)?;
                write!(f, " {limits} {element}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    const NONE: &[&str] = &[];

    #[test]
    fn spellings() {
        let cases: [(ExternType<'_, &str>, &str); 8] = [
            (
                ExternType::Func(FuncType {
                    params: NONE,
                    results: NONE,
                }),
                "func",
            ),
            (
                ExternType::Func(FuncType {
                    params: NONE,
                    results: &["i32"],
                }),
                "func (result i32)",
            ),
            (
                ExternType::Tag(FuncType {
                    params: &["i32"],
                    results: NONE,
                }),
                "tag (param i32)",
            ),
            (
                ExternType::Global {
                    content: "i64",
                    mutable: false,
                },
                "global i64",
            ),
            (
                ExternType::Memory {
                    address64: false,
                    limits: Limits { min: 1, max: None },
                    shared: false,
                },
                "memory 1",
            ),
            (
                ExternType::Table {
                    address64: false,
                    limits: Limits {
                        min: 1,
                        max: Some(10),
                    },
                    element: "funcref",
                },
                "table 1 10 funcref",
            ),
            (
                ExternType::Table {
                    address64: true,
                    limits: Limits { min: 0, max: None },
                    element: "externref",
                },
                "table i64 0 externref",
            ),
            (
                ExternType::Global {
                    content: "(ref null any)",
                    mutable: true,
                },
                "global (mut (ref null any))",
            ),
        ];
        for (ty, text) in cases {
            assert_eq!(ty.to_string(), text);
        }
        for (nullable, heap, text) in [
            (true, "func", "funcref"),
            (true, "none", "nullref"),
            (true, "nofunc", "nullfuncref"),
            (true, "noextern", "nullexternref"),
            (false, "any", "(ref any)"),
        ] {
            assert_eq!(AbstractRefType { nullable, heap }.to_string(), text);
        }
        let sig = FuncType {
            params: &["i32", "f64"],
            results: NONE,
        };
        assert_eq!(sig.to_string(), "(param i32 f64)");
    }
}
