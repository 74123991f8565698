//! `stress`: a WASI command for differential runs of asyncify (plain,
//! instrumented, and with every WASI call suspending). Every WASI call it
//! makes is a point where an instrumented run unwinds and rewinds, so the
//! values it keeps live across those calls must all come back intact.
//!
//! Usage: `stress MODE [ARGS]`, where MODE is
//! - `recurse N`: recursion N deep, writing a line at every level on the way
//!   down and up (each write suspends with the whole stack live);
//! - `locals`: many live values of every type (i32, i64, f32, f64, 128-bit
//!   SIMD) held across writes;
//! - `indirect N`: N rounds of calls through function pointers and trait
//!   objects, each writing;
//! - `files DIR`: writes, appends, reads back and lists files under DIR;
//! - `trap`: writes, then executes `unreachable` (a wasm trap), or `panic`:
//!   exits through a Rust panic (abort, a trap too);
//! - `exit N`: writes to stdout and stderr, exits with code N.

use std::fs;
use std::hint::black_box;
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let arg = |i: usize| -> String { args.get(i).cloned().unwrap_or_default() };
    let number = |i: usize, default: u64| arg(i).parse().unwrap_or(default);
    match mode {
        "recurse" => {
            let depth = number(2, 1000) as u32;
            let total = recurse(depth, 1);
            println!("total {total}");
        }
        "locals" => locals(),
        "indirect" => indirect(number(2, 200) as u32),
        "files" => files(&arg(2)),
        "trap" => {
            println!("about to trap");
            trap();
        }
        "panic" => {
            println!("about to panic");
            panic!("stress: a panic on purpose");
        }
        "exit" => {
            println!("to stdout");
            eprintln!("to stderr");
            std::process::exit(number(2, 0) as i32);
        }
        _ => {
            eprintln!("usage: stress recurse|locals|indirect|files|trap|panic|exit [ARG]");
            std::process::exit(2);
        }
    }
}

/// A wasm `unreachable` trap, below a few frames that wrote.
#[inline(never)]
fn trap() {
    println!("in trap");
    #[cfg(target_arch = "wasm32")]
    std::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// Recursion with a write on the way down and up; returns a checksum that
/// depends on every level's locals.
#[inline(never)]
fn recurse(depth: u32, acc: u64) -> u64 {
    let mixed = acc.wrapping_mul(6364136223846793005).wrapping_add(depth as u64);
    let f = depth as f64 * 0.5;
    println!("down {depth} {mixed:x}");
    let below = if depth > 0 {
        recurse(depth - 1, mixed)
    } else {
        0
    };
    println!("up {depth} {f}");
    black_box(below ^ mixed ^ f.to_bits())
}

/// Values of every type, all live across each `println!`.
#[inline(never)]
fn locals() {
    let mut a = black_box(1i32);
    let mut b = black_box(-2i64);
    let mut c = black_box(1.5f32);
    let mut d = black_box(-2.25f64);
    let mut v = black_box(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10u128);
    let mut e = black_box([3u8; 16]);
    let mut g = black_box((7u16, 8i8, 9u64));
    for round in 0..20 {
        println!("round {round}: {a} {b} {c} {d} {v:x} {e:?} {g:?}");
        a = a.wrapping_mul(31).wrapping_add(round);
        b = b.wrapping_mul(-7).wrapping_sub(a as i64);
        c = c * 1.25 - a as f32 * 0.01;
        d = d / 1.5 + b as f64 * 1e-9;
        v = v.rotate_left(7) ^ (b as u128);
        e[round as usize % 16] = e[(round as usize + 5) % 16].wrapping_add(a as u8);
        g = (g.0.wrapping_add(a as u16), g.1.wrapping_sub(1), g.2 ^ (d.to_bits()));
        simd(round as u32);
    }
    println!("final: {a} {b} {c} {d} {v:x} {e:?} {g:?}");
}

/// 128-bit SIMD values live across writes.
#[cfg(target_arch = "wasm32")]
#[inline(never)]
fn simd(round: u32) {
    use std::arch::wasm32::*;
    let x = black_box(u32x4(round, round + 1, round * 3, 0xdead_beef));
    let y = black_box(f64x2(round as f64 * 0.5, -1.0));
    println!("simd {round}");
    let sum = i32x4_add(x, x);
    let prod = f64x2_mul(y, y);
    println!(
        "simd {} {} {} {}",
        u32x4_extract_lane::<0>(sum),
        u32x4_extract_lane::<3>(sum),
        f64x2_extract_lane::<0>(prod),
        f64x2_extract_lane::<1>(prod)
    );
}

#[cfg(not(target_arch = "wasm32"))]
fn simd(round: u32) {
    println!("simd {round}");
}

trait Shape {
    fn area(&self) -> f64;
    fn describe(&self, out: &mut dyn Write);
}

struct Square(f64);
struct Circle(f64);

impl Shape for Square {
    fn area(&self) -> f64 {
        self.0 * self.0
    }
    fn describe(&self, out: &mut dyn Write) {
        let _ = writeln!(out, "square {}", self.0);
    }
}

impl Shape for Circle {
    fn area(&self) -> f64 {
        3.0 * self.0 * self.0
    }
    fn describe(&self, out: &mut dyn Write) {
        let _ = writeln!(out, "circle {}", self.0);
    }
}

fn double(x: u64) -> u64 {
    println!("double {x}");
    x * 2
}

fn increment(x: u64) -> u64 {
    println!("increment {x}");
    x + 1
}

fn square(x: u64) -> u64 {
    println!("square {x}");
    x.wrapping_mul(x) % 1_000_003
}

/// Calls through function pointers and trait objects (`call_indirect`),
/// each of which writes.
#[inline(never)]
fn indirect(rounds: u32) {
    let table: [fn(u64) -> u64; 3] = [double, increment, square];
    let shapes: Vec<Box<dyn Shape>> = vec![Box::new(Square(2.0)), Box::new(Circle(1.5))];
    let mut x = 1u64;
    let mut area = 0.0;
    let mut out = std::io::stdout();
    for i in 0..rounds {
        let f = table[black_box(i as usize) % table.len()];
        x = f(x);
        let shape = &shapes[i as usize % shapes.len()];
        shape.describe(&mut out);
        area += shape.area();
    }
    println!("x {x} area {area}");
}

/// Creates, appends to, reads back and lists files under `dir`.
fn files(dir: &str) {
    let path = format!("{dir}/stress-out.txt");
    fs::write(&path, "first line\n").expect("write");
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open for append");
    for i in 0..50 {
        writeln!(file, "line {i}").expect("append");
    }
    drop(file);
    let text = fs::read_to_string(&path).expect("read back");
    println!("{} lines, {} bytes", text.lines().count(), text.len());
    fs::create_dir_all(format!("{dir}/sub")).expect("mkdir");
    fs::write(format!("{dir}/sub/b.txt"), text.to_uppercase()).expect("write b");
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    println!("entries: {names:?}");
}
