//! Which import calls suspend, and the deterministic results of host imports.

use std::fmt;

use crate::value::{RefValue, Value};
use wasmtime::{HeapType, ValType};

/// Decides, for the n-th call to an import that may suspend (counting from 0
/// over the whole run), whether that call suspends.
#[derive(Clone, PartialEq, Eq)]
pub enum Schedule {
    /// No call suspends (the instrumented module must behave like the original).
    Never,
    /// Every call that may suspend does.
    Always,
    /// Call `n` suspends when `pattern[n % pattern.len()]` is true.
    Pattern(Vec<bool>),
    /// Pseudo-random, about one call in two, from this seed.
    Seeded(u64),
}

impl Schedule {
    /// Whether the `n`-th call that may suspend does.
    pub fn suspends(&self, n: u64) -> bool {
        match self {
            Schedule::Never => false,
            Schedule::Always => true,
            Schedule::Pattern(p) if p.is_empty() => false,
            Schedule::Pattern(p) => p[(n % p.len() as u64) as usize],
            Schedule::Seeded(seed) => mix(seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) & 1 == 1,
        }
    }

    /// The schedules [`crate::check`] uses.
    pub fn standard() -> Vec<Schedule> {
        vec![
            Schedule::Never,
            Schedule::Always,
            Schedule::Pattern(vec![false, true]),
            Schedule::Pattern(vec![true, false, false]),
            Schedule::Seeded(7),
        ]
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Never => write!(f, "Never"),
            Schedule::Always => write!(f, "Always"),
            Schedule::Pattern(p) => {
                let s: String = p.iter().map(|&b| if b { 'S' } else { '-' }).collect();
                write!(f, "Pattern({s})")
            }
            Schedule::Seeded(s) => write!(f, "Seeded({s})"),
        }
    }
}

/// splitmix64's finaliser: a cheap, well-mixed, stable hash step.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a over the import's name, its arguments and the number of import
/// calls made before it: stable across runs, platforms and Rust versions.
fn seed(module: &str, name: &str, args: &[Value], calls_so_far: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(module.as_bytes());
    eat(b".");
    eat(name.as_bytes());
    for a in args {
        eat(&a.bytes());
    }
    eat(&calls_so_far.to_le_bytes());
    h
}

/// The results a host import returns: a function of the import's name, its
/// arguments and how many import calls came before, one value per result type.
///
/// Integers are small (0..100) three times in four, so that modules can use
/// them as counts, and full-range otherwise. Floats are simple finite numbers,
/// with now and then a NaN carrying a payload, to catch code that loses bits.
/// An `externref` is a new one tagged with a hash (null one time in four),
/// an `anyref`, `eqref` or `i31ref` an `i31`, so that a reference the guest
/// keeps across a suspension can be told from another; other references are
/// null.
pub fn host_results(
    module: &str,
    name: &str,
    args: &[Value],
    calls_so_far: u64,
    types: &[ValType],
) -> Vec<Value> {
    let mut state = seed(module, name, args, calls_so_far);
    types
        .iter()
        .map(|ty| {
            state = mix(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            let h = state;
            let small = h & 3 != 0;
            match ty {
                ValType::I32 if small => Value::I32(((h >> 8) % 100) as i32),
                ValType::I32 => Value::I32((h >> 16) as i32),
                ValType::I64 if small => Value::I64(((h >> 8) % 100) as i64),
                ValType::I64 => Value::I64(h as i64),
                ValType::F32 if h & 15 == 15 => {
                    Value::F32(0x7fc0_0000 | (h >> 40) as u32 & 0x3f_ffff)
                }
                ValType::F32 => Value::F32((((h >> 8) % 2000) as f32 / 8.0 - 100.0).to_bits()),
                ValType::F64 if h & 15 == 15 => {
                    Value::F64(0x7ff8_0000_0000_0000 | (h >> 12) & 0x7_ffff_ffff_ffff)
                }
                ValType::F64 => Value::F64((((h >> 8) % 2000) as f64 / 8.0 - 100.0).to_bits()),
                ValType::V128 => Value::V128((u128::from(h) << 64) | u128::from(mix(h))),
                ValType::Ref(r) => Value::Ref(match r.heap_type() {
                    HeapType::Extern if small || !r.is_nullable() => RefValue::Tag(h >> 8),
                    HeapType::Any | HeapType::Eq | HeapType::I31 if small || !r.is_nullable() => {
                        RefValue::I31((h >> 8) as u32 & 0x7fff_ffff)
                    }
                    _ => RefValue::Null,
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_deterministic_and_depend_on_inputs() {
        let t = [
            ValType::I32,
            ValType::I64,
            ValType::F32,
            ValType::F64,
            ValType::V128,
        ];
        let a = host_results("env", "f", &[Value::I32(1)], 0, &t);
        assert_eq!(a, host_results("env", "f", &[Value::I32(1)], 0, &t));
        assert_ne!(a, host_results("env", "f", &[Value::I32(2)], 0, &t));
        assert_ne!(a, host_results("env", "f", &[Value::I32(1)], 1, &t));
        assert_ne!(a, host_results("env", "g", &[Value::I32(1)], 0, &t));
    }

    #[test]
    fn schedules() {
        assert!(!Schedule::Never.suspends(3));
        assert!(Schedule::Always.suspends(3));
        let p = Schedule::Pattern(vec![true, false]);
        assert!(p.suspends(0) && !p.suspends(1) && p.suspends(2));
        let s = Schedule::Seeded(7);
        let n = (0..1000).filter(|&i| s.suspends(i)).count();
        assert!((300..700).contains(&n), "{n}");
    }
}
