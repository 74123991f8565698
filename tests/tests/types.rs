//! Every numeric type as parameter, local, result, import argument and import
//! result, including NaN bit patterns (signalling and with payloads) and v128.

use asyncify_tests::{check, Options, Val, V128};

const TYPES: &str = r#"(module
  (import "env" "i32" (func $ii (param i32) (result i32)))
  (import "env" "i64" (func $il (param i64) (result i64)))
  (import "env" "f32" (func $if (param f32) (result f32)))
  (import "env" "f64" (func $id (param f64) (result f64)))
  (import "env" "v128" (func $iv (param v128) (result v128)))
  (import "env" "mix" (func $mix (param i32 i64 f32 f64 v128) (result f64 v128 i32 f32 i64)))
  (memory (export "memory") 1)

  ;; Params and locals of every type stay live across each call; the float
  ;; operations used (neg, copysign, reinterpret) keep NaN payloads exact.
  (func (export "all")
    (param $a i32) (param $b i64) (param $c f32) (param $d f64) (param $e v128)
    (result i32 i64 f32 f64 v128)
    (local $la i32) (local $lb i64) (local $lc f32) (local $ld f64) (local $le v128)
    (local.set $la (i32.xor (local.get $a) (i32.const 0x5555)))
    (local.set $lb (i64.xor (local.get $b) (i64.const 0x0123456789abcdef)))
    (local.set $lc (f32.neg (local.get $c)))
    (local.set $ld (f64.neg (local.get $d)))
    (local.set $le (v128.not (local.get $e)))
    (local.set $la (i32.add (local.get $la) (call $ii (local.get $a))))
    (local.set $lb (i64.add (local.get $lb) (call $il (local.get $b))))
    (local.set $lc (f32.copysign (local.get $lc) (call $if (local.get $c))))
    (local.set $ld (f64.copysign (local.get $ld) (call $id (local.get $d))))
    (local.set $le (v128.xor (local.get $le) (call $iv (local.get $e))))
    (i32.add (local.get $la) (local.get $a))
    (i64.add (local.get $lb) (local.get $b))
    (f32.reinterpret_i32 (i32.xor (i32.reinterpret_f32 (local.get $lc))
                                  (i32.reinterpret_f32 (local.get $c))))
    (f64.reinterpret_i64 (i64.xor (i64.reinterpret_f64 (local.get $ld))
                                  (i64.reinterpret_f64 (local.get $d))))
    (v128.or (local.get $le) (local.get $e)))

  ;; Host results of every type (NaNs with payloads among them) returned as
  ;; they came, after further calls.
  (func (export "passthrough") (param $x i32) (result f64 v128 i32 f32 i64)
    (local $r0 f64) (local $r1 v128) (local $r2 i32) (local $r3 f32) (local $r4 i64)
    (call $mix (local.get $x) (i64.const -1) (f32.const -0.0) (f64.const inf) (v128.const i32x4 1 2 3 4))
    (local.set $r4) (local.set $r3) (local.set $r2) (local.set $r1) (local.set $r0)
    (call $mix (local.get $r2) (local.get $r4) (local.get $r3) (local.get $r0) (local.get $r1))
    (drop) (drop) (drop) (drop) (drop)
    (drop (call $if (local.get $r3)))
    (drop (call $id (local.get $r0)))
    (local.get $r0) (local.get $r1) (local.get $r2) (local.get $r3) (local.get $r4))

  ;; Float params unchanged across many calls (the frame must keep all bits).
  (func (export "keep") (param $f f32) (param $d f64) (param $v v128) (result f32 f64 v128)
    (local $i i32)
    (loop $l
      (drop (call $ii (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 4))))
    (local.get $f) (local.get $d) (local.get $v))

  ;; SIMD arithmetic around calls.
  (func (export "simd") (param $x i32) (result v128)
    (local $acc v128)
    (local.set $acc (i32x4.splat (local.get $x)))
    (local.set $acc (i32x4.add (local.get $acc) (i32x4.splat (call $ii (local.get $x)))))
    (local.set $acc (i16x8.mul (local.get $acc) (call $iv (local.get $acc))))
    (f32x4.add (local.get $acc) (f32x4.splat (call $if (f32.const 1.25))))))"#;

fn f32_bits(bits: u32) -> Val {
    Val::F32(bits)
}

fn f64_bits(bits: u64) -> Val {
    Val::F64(bits)
}

fn v128(v: u128) -> Val {
    Val::V128(V128::from(v))
}

#[test]
fn every_numeric_type() {
    let pattern = 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff_u128;
    check(
        TYPES,
        &Options::default(),
        &[
            (
                "all",
                vec![
                    Val::I32(-1),
                    Val::I64(i64::MIN),
                    f32_bits(0x7f80_0001),           // signalling NaN
                    f64_bits(0x7ff8_0000_dead_beef), // quiet NaN, payload
                    v128(pattern),
                ],
            ),
            (
                "all",
                vec![
                    Val::I32(0),
                    Val::I64(0),
                    f32_bits(0x8000_0000),           // -0.0
                    f64_bits(0xfff0_0000_0000_0000), // -inf
                    v128(0),
                ],
            ),
            (
                "all",
                vec![
                    Val::I32(i32::MIN),
                    Val::I64(-1),
                    f32_bits(0xffc0_1234),           // negative NaN, payload
                    f64_bits(0x7ff0_0000_0000_0001), // signalling NaN
                    v128(u128::MAX),
                ],
            ),
            ("passthrough", vec![Val::I32(1)]),
            ("passthrough", vec![Val::I32(2)]),
            ("passthrough", vec![Val::I32(3)]),
            (
                "keep",
                vec![
                    f32_bits(0x7fa0_0001),
                    f64_bits(0x7ff4_0000_0000_0001),
                    v128(pattern.rotate_left(8)),
                ],
            ),
            ("simd", vec![Val::I32(17)]),
        ],
    );
}
