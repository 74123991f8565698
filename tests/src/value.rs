//! Values as the driver records and compares them: floats by their bits, so
//! that two NaNs with the same payload are equal and two different ones are
//! not; references by an identity that means the same in two instances (see
//! [`RefValue`]).

use std::fmt;

use wasmtime::{AnyRef, AsContextMut, ExternRef, Val, ValType, I31, V128};

/// A reference as the driver records it. Two instances never share a
/// reference, so identity is what can be compared across them: an `i31` by
/// its value, an `externref` the host made by its tag, a function by the
/// export it is (the functions an instance exports are the same in the
/// original and the instrumented module), and any other reference by the
/// order in which the run first saw it (`Seen(0)` is the first such
/// reference, and the same reference seen again is `Seen(0)` again). A run
/// that hands out a different reference where the original handed out one
/// it had shown before, or a new one, differs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefValue {
    /// A null reference.
    Null,
    /// An `i31ref` with this value.
    I31(u32),
    /// An `externref` the host created with this tag.
    Tag(u64),
    /// A function exported at this position (counting the exports that are
    /// not the asyncify runtime's).
    Func(u32),
    /// The n-th distinct other reference the run saw.
    Seen(u32),
    /// A non-null reference recorded without a store (identity unknown).
    NonNull,
}

/// One wasm value, comparable and printable.
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
    /// A reference, by its identity.
    Ref(RefValue),
}

impl Value {
    /// Records `val` without a store: references only as null or
    /// [`RefValue::NonNull`] (the driver records them with their identity,
    /// through the run's store).
    pub fn from_val(val: &Val) -> Value {
        match val {
            Val::I32(v) => Value::I32(*v),
            Val::I64(v) => Value::I64(*v),
            Val::F32(v) => Value::F32(*v),
            Val::F64(v) => Value::F64(*v),
            Val::V128(v) => Value::V128(v.as_u128()),
            other => Value::Ref(if (*other).ref_().is_some_and(|r| !r.is_null()) {
                RefValue::NonNull
            } else {
                RefValue::Null
            }),
        }
    }

    /// The wasmtime value of type `ty`: a tagged `externref` and an `i31`
    /// are made in `store`; other references become null of `ty`.
    pub fn to_val(self, ty: &ValType, mut store: impl AsContextMut) -> Val {
        let made = match self {
            Value::I32(v) => return Val::I32(v),
            Value::I64(v) => return Val::I64(v),
            Value::F32(v) => return Val::F32(v),
            Value::F64(v) => return Val::F64(v),
            Value::V128(v) => return Val::V128(V128::from(v)),
            Value::Ref(RefValue::Tag(tag)) => {
                ExternRef::new(&mut store, tag).map(|r| Val::ExternRef(Some(r)))
            }
            Value::Ref(RefValue::I31(v)) => Ok(Val::AnyRef(Some(AnyRef::from_i31(
                &mut store,
                I31::wrapping_u32(v),
            )))),
            Value::Ref(_) => return zero(ty),
        };
        made.unwrap_or_else(|_| zero(ty))
    }

    /// Little-endian bytes of a number (used to hash arguments).
    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            Value::I32(v) => v.to_le_bytes().to_vec(),
            Value::I64(v) => v.to_le_bytes().to_vec(),
            Value::F32(v) => v.to_le_bytes().to_vec(),
            Value::F64(v) => v.to_le_bytes().to_vec(),
            Value::V128(v) => v.to_le_bytes().to_vec(),
            Value::Ref(r) => match r {
                RefValue::Null => vec![0],
                RefValue::I31(v) => [&[1][..], &v.to_le_bytes()].concat(),
                RefValue::Tag(t) => [&[2][..], &t.to_le_bytes()].concat(),
                RefValue::Func(i) => [&[3][..], &i.to_le_bytes()].concat(),
                RefValue::Seen(i) => [&[4][..], &i.to_le_bytes()].concat(),
                RefValue::NonNull => vec![5],
            },
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
            Value::Ref(RefValue::Null) => write!(f, "ref:null"),
            Value::Ref(RefValue::I31(v)) => write!(f, "ref:i31({v})"),
            Value::Ref(RefValue::Tag(t)) => write!(f, "ref:extern(tag {t:#x})"),
            Value::Ref(RefValue::Func(i)) => write!(f, "ref:func(export #{i})"),
            Value::Ref(RefValue::Seen(i)) => write!(f, "ref:#{i}"),
            Value::Ref(RefValue::NonNull) => write!(f, "ref:non-null"),
        }
    }
}

/// Formats a list of values as `[a, b]`.
pub fn list(values: &[Value]) -> String {
    let items: Vec<String> = values.iter().map(Value::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// Records a list of wasmtime values without a store (references only as
/// null or non-null; see [`crate::host::identify`] for their identity).
pub fn record(vals: &[Val]) -> Vec<Value> {
    vals.iter().map(Value::from_val).collect()
}
