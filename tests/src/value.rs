//! Values as the driver records and compares them: floats by their bits, so
//! that two NaNs with the same payload are equal and two different ones are not.

use std::fmt;

use wasmtime::{Val, ValType, V128};

/// One wasm value, comparable and printable. References are recorded only as
/// null or non-null: their identity differs between two instances anyway.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum Value {
    /// An `i32`.
    I32(i32),
    /// An `i64`.
    I64(i64),
    /// An `f32`, by its bits.
    F32(u32),
    /// An `f64`, by its bits.
    F64(u64),
    /// A `v128`.
    V128(u128),
    /// A reference; `true` when it is null.
    Ref {
        /// Whether the reference is null.
        null: bool,
    },
}

impl Value {
    /// Records `val`.
    pub fn from_val(val: &Val) -> Value {
        match val {
            Val::I32(v) => Value::I32(*v),
            Val::I64(v) => Value::I64(*v),
            Val::F32(v) => Value::F32(*v),
            Val::F64(v) => Value::F64(*v),
            Val::V128(v) => Value::V128(v.as_u128()),
            Val::FuncRef(f) => Value::Ref { null: f.is_none() },
            Val::ExternRef(r) => Value::Ref { null: r.is_none() },
            Val::AnyRef(r) => Value::Ref { null: r.is_none() },
            Val::ExnRef(r) => Value::Ref { null: r.is_none() },
            Val::ContRef(r) => Value::Ref { null: r.is_none() },
        }
    }

    /// The wasmtime value of a number; references become null of `ty`.
    pub fn to_val(self, ty: &ValType) -> Val {
        match self {
            Value::I32(v) => Val::I32(v),
            Value::I64(v) => Val::I64(v),
            Value::F32(v) => Val::F32(v),
            Value::F64(v) => Val::F64(v),
            Value::V128(v) => Val::V128(V128::from(v)),
            Value::Ref { .. } => zero(ty),
        }
    }

    /// Little-endian bytes of a number (used to hash arguments).
    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            Value::I32(v) => v.to_le_bytes().to_vec(),
            Value::I64(v) => v.to_le_bytes().to_vec(),
            Value::F32(v) => v.to_le_bytes().to_vec(),
            Value::F64(v) => v.to_le_bytes().to_vec(),
            Value::V128(v) => v.to_le_bytes().to_vec(),
            Value::Ref { null } => vec![*null as u8],
        }
    }
}

/// The zero (or null) value of `ty`: what an unwinding import returns.
pub fn zero(ty: &ValType) -> Val {
    match ty {
        ValType::Ref(r) => Val::null_ref(r.heap_type()),
        other => Val::default_for_ty(other).unwrap_or(Val::I32(0)),
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::I32(v) => write!(f, "i32:{v}"),
            Value::I64(v) => write!(f, "i64:{v}"),
            Value::F32(bits) => write!(f, "f32:{}({bits:#010x})", f32::from_bits(*bits)),
            Value::F64(bits) => write!(f, "f64:{}({bits:#018x})", f64::from_bits(*bits)),
            Value::V128(v) => write!(f, "v128:{v:#034x}"),
            Value::Ref { null: true } => write!(f, "ref:null"),
            Value::Ref { null: false } => write!(f, "ref:non-null"),
        }
    }
}

/// Formats a list of values as `[a, b]`.
pub fn list(values: &[Value]) -> String {
    let items: Vec<String> = values.iter().map(Value::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Records a list of wasmtime values.
pub fn record(vals: &[Val]) -> Vec<Value> {
    vals.iter().map(Value::from_val).collect()
}
