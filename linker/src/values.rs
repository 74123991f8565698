//! Rust values for the parameters and results of typed async imports.

use wasmtime::{Val, ValType, V128};

/// A Rust type that is one wasm value: `i32`, `u32`, `i64`, `u64`, `f32`,
/// `f64` or [`V128`].
///
/// Unsigned integers are the same wasm type as the signed ones, reinterpreted.
pub trait WasmValue: Send + Sized + 'static {
    /// The wasm type.
    fn ty() -> ValType;
    /// Converts from a value of type [`ty`](Self::ty).
    fn from_val(val: &Val) -> Option<Self>;
    /// Converts to a value of type [`ty`](Self::ty).
    fn into_val(self) -> Val;
}

macro_rules! value {
    ($t:ty, $vt:ident, $get:ident, |$x:ident| $from:expr, |$y:ident| $into:expr) => {
        impl WasmValue for $t {
            fn ty() -> ValType {
                ValType::$vt
            }
            fn from_val(val: &Val) -> Option<Self> {
                let $x = val.$get()?;
                Some($from)
            }
            fn into_val(self) -> Val {
                let $y = self;
                $into
            }
        }
    };
}

value!(i32, I32, i32, |x| x, |y| Val::I32(y));
value!(u32, I32, i32, |x| x as u32, |y| Val::I32(y as i32));
value!(i64, I64, i64, |x| x, |y| Val::I64(y));
value!(u64, I64, i64, |x| x as u64, |y| Val::I64(y as i64));
value!(f32, F32, f32, |x| x, |y| Val::F32(y.to_bits()));
value!(f64, F64, f64, |x| x, |y| Val::F64(y.to_bits()));
value!(V128, V128, v128, |x| x, |y| Val::V128(y));

/// A list of wasm values as a Rust type: `()`, one [`WasmValue`], or a tuple
/// of up to eight of them. Used for the parameters and results of
/// [`Linker::func_wrap_async`](crate::Linker::func_wrap_async).
pub trait WasmValues: Send + Sized + 'static {
    /// The wasm types, in order.
    fn types() -> Vec<ValType>;
    /// Converts from values of [`types`](Self::types); `None` on a mismatch.
    fn from_vals(vals: &[Val]) -> Option<Self>;
    /// Converts to values of [`types`](Self::types).
    fn into_vals(self) -> Vec<Val>;
}

impl WasmValues for () {
    fn types() -> Vec<ValType> {
        Vec::new()
    }
    fn from_vals(vals: &[Val]) -> Option<Self> {
        vals.is_empty().then_some(())
    }
    fn into_vals(self) -> Vec<Val> {
        Vec::new()
    }
}

impl<A: WasmValue> WasmValues for A {
    fn types() -> Vec<ValType> {
        vec![A::ty()]
    }
    fn from_vals(vals: &[Val]) -> Option<Self> {
        match vals {
            [a] => A::from_val(a),
            _ => None,
        }
    }
    fn into_vals(self) -> Vec<Val> {
        vec![self.into_val()]
    }
}

macro_rules! tuple {
    ($($n:ident)+) => {
        impl<$($n: WasmValue),+> WasmValues for ($($n,)+) {
            fn types() -> Vec<ValType> {
                vec![$($n::ty()),+]
            }
            #[allow(non_snake_case)]
            fn from_vals(vals: &[Val]) -> Option<Self> {
                match vals {
                    [$($n),+] => Some(($($n::from_val($n)?,)+)),
                    _ => None,
                }
            }
            #[allow(non_snake_case)]
            fn into_vals(self) -> Vec<Val> {
                let ($($n,)+) = self;
                vec![$($n.into_val()),+]
            }
        }
    };
}

tuple!(A1);
tuple!(A1 A2);
tuple!(A1 A2 A3);
tuple!(A1 A2 A3 A4);
tuple!(A1 A2 A3 A4 A5);
tuple!(A1 A2 A3 A4 A5 A6);
tuple!(A1 A2 A3 A4 A5 A6 A7);
tuple!(A1 A2 A3 A4 A5 A6 A7 A8);
