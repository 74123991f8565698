//! `compute`: WASI benchmarks for code that never suspends. Each one does
//! about half a second of work under wasmtime, makes many ordinary function
//! calls (direct, through function pointers and trait objects) and prints a
//! deterministic checksum, so an instrumented build can be timed against the
//! original and checked to compute the same thing.
//!
//! Usage: `compute NAME [SCALE]`, where NAME is one of `interp`, `sort`,
//! `hash`, `parse`, `recursion`, `nbody`, or `all`; SCALE (default 1)
//! multiplies the amount of work.
//!
//! Functions marked `#[inline(never)]` are ones a real program would keep
//! out of line anyway (recursive, large or called from many places); they
//! keep the calls that asyncify instrumentation makes more expensive.

use std::collections::HashMap;
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map(String::as_str).unwrap_or("");
    let scale: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let benchmarks: [(&str, fn(u64) -> u64); 6] = [
        ("interp", interp::run),
        ("sort", sort::run),
        ("hash", hash::run),
        ("parse", parse::run),
        ("recursion", recursion::run),
        ("nbody", nbody::run),
    ];
    let mut ran = false;
    for (bench, run) in benchmarks {
        if name == bench || name == "all" {
            println!("{bench} {:016x}", run(scale));
            ran = true;
        }
    }
    if !ran {
        let names: Vec<&str> = benchmarks.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "usage: compute NAME [SCALE] (NAME: {} or all)",
            names.join(", ")
        );
        std::process::exit(2);
    }
}

/// A small deterministic generator (xorshift64*), the same on every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Folds a value into a running checksum.
fn mix(sum: u64, value: u64) -> u64 {
    (sum ^ value).wrapping_mul(0x1000_0000_01b3).rotate_left(17)
}

/// A stack-based bytecode interpreter: a dispatch loop over an instruction
/// array, calls between bytecode functions (each a native recursion of the
/// interpreter), and built-ins reached through a function-pointer table.
mod interp {
    use super::mix;

    #[derive(Clone, Copy, Debug)]
    enum Op {
        Const(i64),
        Load(u8),
        Store(u8),
        Add,
        Sub,
        Mul,
        Rem,
        Lt,
        Eq,
        JumpIfZero(u32),
        Jump(u32),
        Call(u8),
        Builtin(u8),
        Return,
    }

    struct Function {
        params: u8,
        locals: u8,
        code: Vec<Op>,
    }

    type Builtin = fn(i64) -> i64;

    #[inline(never)]
    fn builtin_square(x: i64) -> i64 {
        x.wrapping_mul(x)
    }

    #[inline(never)]
    fn builtin_half(x: i64) -> i64 {
        x >> 1
    }

    #[inline(never)]
    fn builtin_scramble(x: i64) -> i64 {
        (x ^ (x >> 7)).wrapping_mul(0x9e37_79b9)
    }

    const BUILTINS: [Builtin; 3] = [builtin_square, builtin_half, builtin_scramble];

    struct Machine<'a> {
        functions: &'a [Function],
        builtins: &'a [Builtin],
        stack: Vec<i64>,
        executed: u64,
    }

    impl Machine<'_> {
        /// Runs function `index` with its arguments on top of the stack and
        /// leaves its result there.
        #[inline(never)]
        fn call(&mut self, index: usize) {
            let function = &self.functions[index];
            let mut locals = [0i64; 8];
            for slot in (0..function.params as usize).rev() {
                locals[slot] = self.pop();
            }
            let _ = function.locals;
            let mut pc = 0usize;
            loop {
                let op = function.code[pc];
                pc += 1;
                self.executed += 1;
                match op {
                    Op::Const(value) => self.stack.push(value),
                    Op::Load(slot) => self.stack.push(locals[slot as usize]),
                    Op::Store(slot) => locals[slot as usize] = self.pop(),
                    Op::Add => self.binary(i64::wrapping_add),
                    Op::Sub => self.binary(i64::wrapping_sub),
                    Op::Mul => self.binary(i64::wrapping_mul),
                    Op::Rem => self.binary(|a, b| if b == 0 { 0 } else { a.wrapping_rem(b) }),
                    Op::Lt => self.binary(|a, b| (a < b) as i64),
                    Op::Eq => self.binary(|a, b| (a == b) as i64),
                    Op::JumpIfZero(target) => {
                        if self.pop() == 0 {
                            pc = target as usize;
                        }
                    }
                    Op::Jump(target) => pc = target as usize,
                    Op::Call(callee) => self.call(callee as usize),
                    Op::Builtin(which) => {
                        let argument = self.pop();
                        let result = (self.builtins[which as usize])(argument);
                        self.stack.push(result);
                    }
                    Op::Return => return,
                }
            }
        }

        fn pop(&mut self) -> i64 {
            self.stack.pop().unwrap_or(0)
        }

        fn binary(&mut self, operation: impl Fn(i64, i64) -> i64) {
            let b = self.pop();
            let a = self.pop();
            self.stack.push(operation(a, b));
        }
    }

    /// Bytecode: `main(n)` sums `collatz(i) + score(i)` for i below n;
    /// `collatz(x)` counts steps to 1 (halving through a built-in),
    /// `score(x)` combines built-ins.
    #[rustfmt::skip]
    fn program() -> Vec<Function> {
        use Op::*;
        // Locals: 0 = n, 1 = i, 2 = acc.
        let main = Function {
            params: 1,
            locals: 3,
            code: vec![
                /* 0 */ Const(1), Store(1), Const(0), Store(2),
                /* 4: while i < n */ Load(1), Load(0), Lt, JumpIfZero(21),
                /* 8: acc += collatz(i) + score(i) */
                Load(2), Load(1), Call(1), Add, Load(1), Call(2), Add, Store(2),
                /* 16: i += 1 */ Load(1), Const(1), Add, Store(1), Jump(4),
                /* 21 */ Load(2), Return,
            ],
        };
        // Locals: 0 = x, 1 = steps.
        let collatz = Function {
            params: 1,
            locals: 2,
            code: vec![
                /* 0 */ Const(0), Store(1),
                /* 2: if x == 1 return steps */ Load(0), Const(1), Eq, JumpIfZero(8), Load(1), Return,
                /* 8: if x odd */ Load(0), Const(2), Rem, JumpIfZero(19),
                /* 12: x = 3x + 1 */ Load(0), Const(3), Mul, Const(1), Add, Store(0), Jump(22),
                /* 19: x = half(x) */ Load(0), Builtin(1), Store(0),
                /* 22: steps += 1 */ Load(1), Const(1), Add, Store(1), Jump(2),
            ],
        };
        let score = Function {
            params: 1,
            locals: 1,
            code: vec![
                Load(0), Builtin(0), Builtin(2), Const(1009), Rem,
                Load(0), Builtin(2), Const(7), Rem, Sub, Return,
            ],
        };
        vec![main, collatz, score]
    }

    pub fn run(scale: u64) -> u64 {
        let functions = program();
        let mut machine = Machine {
            functions: &functions,
            builtins: &BUILTINS,
            stack: Vec::with_capacity(64),
            executed: 0,
        };
        let mut sum = 0;
        for round in 0..scale * 2 {
            machine.stack.push(super::black_box(30_000 + round as i64));
            machine.call(0);
            sum = mix(sum, machine.pop() as u64);
        }
        mix(sum, machine.executed)
    }
}

/// Sorting: integers (pattern-defeating quicksort from std), strings
/// (stable merge sort, byte-wise comparisons), records by a comparator
/// over several fields, and a hand-written recursive quicksort.
mod sort {
    use super::{mix, Rng};
    use std::cmp::Ordering;

    #[derive(Clone, Debug)]
    struct Record {
        group: u8,
        score: i32,
        name: String,
    }

    #[inline(never)]
    fn compare_records(a: &Record, b: &Record) -> Ordering {
        a.group
            .cmp(&b.group)
            .then_with(|| b.score.cmp(&a.score))
            .then_with(|| a.name.cmp(&b.name))
    }

    #[inline(never)]
    fn partition(values: &mut [u32]) -> usize {
        let last = values.len() - 1;
        values.swap(values.len() / 2, last);
        let pivot = values[last];
        let mut store = 0;
        for i in 0..last {
            if values[i] < pivot {
                values.swap(i, store);
                store += 1;
            }
        }
        values.swap(store, last);
        store
    }

    #[inline(never)]
    fn quicksort(values: &mut [u32]) {
        if values.len() <= 16 {
            insertion_sort(values);
            return;
        }
        let middle = partition(values);
        let (low, high) = values.split_at_mut(middle);
        quicksort(low);
        quicksort(&mut high[1..]);
    }

    #[inline(never)]
    fn insertion_sort(values: &mut [u32]) {
        for i in 1..values.len() {
            let mut j = i;
            while j > 0 && values[j - 1] > values[j] {
                values.swap(j - 1, j);
                j -= 1;
            }
        }
    }

    fn word(rng: &mut Rng) -> String {
        let length = 3 + rng.below(12) as usize;
        (0..length)
            .map(|_| (b'a' + rng.below(26) as u8) as char)
            .collect()
    }

    fn checksum<T>(values: &[T], key: impl Fn(&T) -> u64) -> u64 {
        values
            .iter()
            .step_by(97)
            .fold(values.len() as u64, |sum, v| mix(sum, key(v)))
    }

    pub fn run(scale: u64) -> u64 {
        let mut rng = Rng::new(0x5eed);
        let mut sum = 0;
        for _ in 0..scale {
            let mut integers: Vec<u32> = (0..600_000).map(|_| rng.next() as u32).collect();
            let mut copy = integers.clone();
            integers.sort_unstable();
            quicksort(&mut copy);
            sum = mix(sum, checksum(&integers, |&v| v as u64));
            sum = mix(sum, (integers == copy) as u64);

            let mut words: Vec<String> = (0..180_000).map(|_| word(&mut rng)).collect();
            words.sort();
            sum = mix(
                sum,
                checksum(&words, |w| w.len() as u64 + w.as_bytes()[0] as u64),
            );

            let mut records: Vec<Record> = (0..180_000)
                .map(|_| Record {
                    group: rng.below(16) as u8,
                    score: rng.below(1000) as i32 - 500,
                    name: word(&mut rng),
                })
                .collect();
            records.sort_by(compare_records);
            sum = mix(
                sum,
                checksum(&records, |r| {
                    r.group as u64 * 1000 + r.score as u64 + r.name.len() as u64
                }),
            );
        }
        sum
    }
}

/// Hashing: a hand-written SHA-256 and FNV-1a over a generated buffer, and
/// a `HashMap` (SipHash) counting words.
mod hash {
    use super::{mix, HashMap, Rng};

    const ROUND_CONSTANTS: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// SHA-256's compression function over one 64-byte block.
    #[inline(never)]
    fn compress(state: &mut [u32; 8], block: &[u8]) {
        let mut schedule = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            schedule[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = schedule[i - 15].rotate_right(7)
                ^ schedule[i - 15].rotate_right(18)
                ^ (schedule[i - 15] >> 3);
            let s1 = schedule[i - 2].rotate_right(17)
                ^ schedule[i - 2].rotate_right(19)
                ^ (schedule[i - 2] >> 10);
            schedule[i] = schedule[i - 16]
                .wrapping_add(s0)
                .wrapping_add(schedule[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let choice = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(choice)
                .wrapping_add(ROUND_CONSTANTS[i])
                .wrapping_add(schedule[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let majority = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(majority);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, value) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *slot = slot.wrapping_add(value);
        }
    }

    #[inline(never)]
    fn sha256(data: &[u8]) -> [u8; 32] {
        let mut state: [u32; 8] = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
            0x5be0cd19,
        ];
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            compress(&mut state, block);
        }
        let rest = blocks.remainder();
        let mut tail = [0u8; 128];
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()] = 0x80;
        let tail_len = if rest.len() < 56 { 64 } else { 128 };
        tail[tail_len - 8..tail_len].copy_from_slice(&(data.len() as u64 * 8).to_be_bytes());
        for block in tail[..tail_len].chunks_exact(64) {
            compress(&mut state, block);
        }
        let mut digest = [0u8; 32];
        for (bytes, word) in digest.chunks_exact_mut(4).zip(state) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        digest
    }

    #[inline(never)]
    fn fnv1a(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
            (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    pub fn run(scale: u64) -> u64 {
        let mut rng = Rng::new(0xabcdef);
        let buffer: Vec<u8> = (0..6 << 20).map(|_| (rng.next() >> 32) as u8).collect();
        let mut sum = 0;
        for round in 0..scale * 2 {
            let digest = sha256(&buffer[round as usize..]);
            sum = mix(
                sum,
                u64::from_le_bytes([
                    digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6],
                    digest[7],
                ]),
            );
            // Many short messages: the per-call cost of hashing small keys.
            for chunk in buffer[..2 << 20].chunks(61) {
                sum = mix(sum, sha256(chunk)[31] as u64);
                sum = mix(sum, fnv1a(chunk));
            }
            let mut counts: HashMap<&[u8], u32> = HashMap::new();
            for chunk in buffer.chunks(3).take(300_000) {
                *counts.entry(&chunk[..2]).or_insert(0) += 1;
            }
            let mut pairs: Vec<(&&[u8], &u32)> = counts.iter().collect();
            pairs.sort();
            for (key, count) in pairs.iter().step_by(101) {
                sum = mix(sum, fnv1a(key) ^ **count as u64);
            }
        }
        sum
    }
}

/// Parsing: generates JSON text (nested objects, arrays, strings with
/// escapes, numbers), parses it with a recursive-descent parser into a
/// tree, and walks the tree through a trait-object visitor.
mod parse {
    use super::{mix, Rng};
    use std::fmt::Write;

    enum Value {
        Null,
        Bool(bool),
        Number(f64),
        Text(String),
        List(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    #[inline(never)]
    fn generate(rng: &mut Rng, depth: u32, out: &mut String) {
        match if depth == 0 {
            rng.below(4)
        } else {
            rng.below(6)
        } {
            0 => out.push_str("null"),
            1 => out.push_str(if rng.below(2) == 0 { "true" } else { "false" }),
            2 => {
                let _ = write!(out, "{}", rng.below(2_000_000) as f64 / 8.0 - 1000.0);
            }
            3 => {
                out.push('"');
                for _ in 0..rng.below(16) {
                    match rng.below(20) {
                        0 => out.push_str("\\n"),
                        1 => out.push_str("\\\""),
                        2 => out.push_str("\\u00e9"),
                        _ => out.push((b'a' + rng.below(26) as u8) as char),
                    }
                }
                out.push('"');
            }
            4 => {
                out.push('[');
                for i in 0..rng.below(8) {
                    if i > 0 {
                        out.push(',');
                    }
                    generate(rng, depth - 1, out);
                }
                out.push(']');
            }
            _ => {
                out.push_str("{ ");
                for i in 0..rng.below(8) {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "\"key{}\": ", rng.below(50));
                    generate(rng, depth - 1, out);
                }
                out.push_str(" }");
            }
        }
    }

    struct Parser<'a> {
        text: &'a [u8],
        at: usize,
    }

    type Parsed<T> = Result<T, String>;

    impl Parser<'_> {
        fn skip_space(&mut self) {
            while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
        }

        fn expect(&mut self, byte: u8) -> Parsed<()> {
            self.skip_space();
            if self.text.get(self.at) == Some(&byte) {
                self.at += 1;
                Ok(())
            } else {
                Err(format!("expected {:?} at {}", byte as char, self.at))
            }
        }

        #[inline(never)]
        fn value(&mut self) -> Parsed<Value> {
            self.skip_space();
            match self.text.get(self.at) {
                Some(b'n') => self.literal("null", Value::Null),
                Some(b't') => self.literal("true", Value::Bool(true)),
                Some(b'f') => self.literal("false", Value::Bool(false)),
                Some(b'"') => Ok(Value::Text(self.string()?)),
                Some(b'[') => {
                    self.at += 1;
                    let mut items = Vec::new();
                    self.skip_space();
                    if self.text.get(self.at) == Some(&b']') {
                        self.at += 1;
                        return Ok(Value::List(items));
                    }
                    loop {
                        items.push(self.value()?);
                        self.skip_space();
                        match self.text.get(self.at) {
                            Some(b',') => self.at += 1,
                            Some(b']') => {
                                self.at += 1;
                                return Ok(Value::List(items));
                            }
                            _ => return Err(format!("bad list at {}", self.at)),
                        }
                    }
                }
                Some(b'{') => {
                    self.at += 1;
                    let mut fields = Vec::new();
                    self.skip_space();
                    if self.text.get(self.at) == Some(&b'}') {
                        self.at += 1;
                        return Ok(Value::Object(fields));
                    }
                    loop {
                        self.skip_space();
                        let key = self.string()?;
                        self.expect(b':')?;
                        fields.push((key, self.value()?));
                        self.skip_space();
                        match self.text.get(self.at) {
                            Some(b',') => self.at += 1,
                            Some(b'}') => {
                                self.at += 1;
                                return Ok(Value::Object(fields));
                            }
                            _ => return Err(format!("bad object at {}", self.at)),
                        }
                    }
                }
                _ => self.number(),
            }
        }

        fn literal(&mut self, word: &str, value: Value) -> Parsed<Value> {
            if self.text[self.at..].starts_with(word.as_bytes()) {
                self.at += word.len();
                Ok(value)
            } else {
                Err(format!("bad literal at {}", self.at))
            }
        }

        #[inline(never)]
        fn string(&mut self) -> Parsed<String> {
            self.expect(b'"')?;
            let mut out = String::new();
            loop {
                let byte = *self.text.get(self.at).ok_or("unterminated string")?;
                self.at += 1;
                match byte {
                    b'"' => return Ok(out),
                    b'\\' => {
                        let escape = *self.text.get(self.at).ok_or("bad escape")?;
                        self.at += 1;
                        match escape {
                            b'n' => out.push('\n'),
                            b'u' => {
                                let hex = std::str::from_utf8(&self.text[self.at..self.at + 4])
                                    .map_err(|e| e.to_string())?;
                                let code =
                                    u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                out.push(char::from_u32(code).unwrap_or('?'));
                                self.at += 4;
                            }
                            other => out.push(other as char),
                        }
                    }
                    other => out.push(other as char),
                }
            }
        }

        #[inline(never)]
        fn number(&mut self) -> Parsed<Value> {
            let start = self.at;
            while self.at < self.text.len()
                && matches!(
                    self.text[self.at],
                    b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                )
            {
                self.at += 1;
            }
            let text =
                std::str::from_utf8(&self.text[start..self.at]).map_err(|e| e.to_string())?;
            text.parse()
                .map(Value::Number)
                .map_err(|_| format!("bad number at {start}"))
        }
    }

    /// Something that looks at every node of a tree.
    trait Visitor {
        fn scalar(&mut self, value: &Value);
        fn key(&mut self, key: &str);
        fn enter(&mut self, items: usize);
    }

    struct Summary {
        sum: u64,
        depth_total: u64,
    }

    impl Visitor for Summary {
        fn scalar(&mut self, value: &Value) {
            let bits = match value {
                Value::Null => 1,
                Value::Bool(b) => 2 + *b as u64,
                Value::Number(n) => n.to_bits(),
                Value::Text(t) => t.chars().map(|c| c as u64).sum(),
                _ => 0,
            };
            self.sum = mix(self.sum, bits);
        }

        fn key(&mut self, key: &str) {
            self.sum = mix(self.sum, key.len() as u64);
        }

        fn enter(&mut self, items: usize) {
            self.depth_total += items as u64;
        }
    }

    #[inline(never)]
    fn walk(value: &Value, visitor: &mut dyn Visitor) {
        match value {
            Value::List(items) => {
                visitor.enter(items.len());
                for item in items {
                    walk(item, visitor);
                }
            }
            Value::Object(fields) => {
                visitor.enter(fields.len());
                for (key, item) in fields {
                    visitor.key(key);
                    walk(item, visitor);
                }
            }
            scalar => visitor.scalar(scalar),
        }
    }

    pub fn run(scale: u64) -> u64 {
        let mut rng = Rng::new(0x1234);
        let mut text = String::from("[");
        for i in 0..6000 {
            if i > 0 {
                text.push(',');
            }
            generate(&mut rng, 6, &mut text);
        }
        text.push(']');
        let mut summary = Summary {
            sum: text.len() as u64,
            depth_total: 0,
        };
        for _ in 0..scale * 16 {
            let mut parser = Parser {
                text: text.as_bytes(),
                at: 0,
            };
            match parser.value() {
                Ok(tree) => walk(&tree, &mut summary),
                Err(message) => {
                    eprintln!("parse error: {message}");
                    std::process::exit(1);
                }
            }
        }
        mix(summary.sum, summary.depth_total)
    }
}

/// Recursion: many small calls (Fibonacci, Ackermann, Takeuchi) and
/// building and checking binary trees.
mod recursion {
    use super::{black_box, mix};

    #[inline(never)]
    fn fib(n: u32) -> u64 {
        if n < 2 {
            n as u64
        } else {
            fib(n - 1) + fib(n - 2)
        }
    }

    #[inline(never)]
    fn ackermann(m: u64, n: u64) -> u64 {
        if m == 0 {
            n + 1
        } else if n == 0 {
            ackermann(m - 1, 1)
        } else {
            ackermann(m - 1, ackermann(m, n - 1))
        }
    }

    #[inline(never)]
    fn tak(x: i32, y: i32, z: i32) -> i32 {
        if y < x {
            tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y))
        } else {
            z
        }
    }

    struct Tree {
        children: Option<(Box<Tree>, Box<Tree>)>,
    }

    #[inline(never)]
    fn build(depth: u32) -> Box<Tree> {
        Box::new(Tree {
            children: (depth > 0).then(|| (build(depth - 1), build(depth - 1))),
        })
    }

    #[inline(never)]
    fn count(tree: &Tree) -> u64 {
        match &tree.children {
            Some((left, right)) => 1 + count(left) + count(right),
            None => 1,
        }
    }

    pub fn run(scale: u64) -> u64 {
        let mut sum = 0;
        for _ in 0..scale * 4 {
            sum = mix(sum, fib(black_box(30)));
            sum = mix(sum, ackermann(2, black_box(2000)));
            sum = mix(sum, tak(black_box(18), 12, 6) as u64);
            for depth in 4..18 {
                let tree = build(black_box(depth));
                sum = mix(sum, count(&tree));
            }
        }
        sum
    }
}

/// Floating point: the classic five-body simulation.
mod nbody {
    use super::mix;

    #[derive(Clone, Copy)]
    struct Body {
        position: [f64; 3],
        velocity: [f64; 3],
        mass: f64,
    }

    const SOLAR_MASS: f64 = 4.0 * std::f64::consts::PI * std::f64::consts::PI;
    const DAYS_PER_YEAR: f64 = 365.24;

    fn bodies() -> [Body; 5] {
        let body = |p: [f64; 3], v: [f64; 3], m: f64| Body {
            position: p,
            velocity: [
                v[0] * DAYS_PER_YEAR,
                v[1] * DAYS_PER_YEAR,
                v[2] * DAYS_PER_YEAR,
            ],
            mass: m * SOLAR_MASS,
        };
        let mut bodies = [
            body([0.0; 3], [0.0; 3], 1.0),
            body(
                [
                    4.841_431_442_464_72,
                    -1.160_320_044_027_428_4,
                    -0.103_622_044_471_123_1,
                ],
                [
                    1.660_076_642_744_037e-3,
                    7.699_011_184_197_404e-3,
                    -6.904_600_169_720_63e-5,
                ],
                9.547_919_384_243_266e-4,
            ),
            body(
                [
                    8.343_366_718_244_58,
                    4.124_798_564_124_305,
                    -4.035_234_171_143_214e-1,
                ],
                [
                    -2.767_425_107_268_624e-3,
                    4.998_528_012_349_172e-3,
                    2.304_172_975_737_639_3e-5,
                ],
                2.858_859_806_661_308e-4,
            ),
            body(
                [
                    1.289_436_956_213_913_1e1,
                    -1.511_115_140_169_863_1e1,
                    -2.233_075_788_926_557_3e-1,
                ],
                [
                    2.964_601_375_647_616e-3,
                    2.378_471_739_594_809_5e-3,
                    -2.965_895_685_402_375_6e-5,
                ],
                4.366_244_043_351_563e-5,
            ),
            body(
                [
                    1.537_969_711_485_091_1e1,
                    -2.591_931_460_998_796_4e1,
                    1.792_587_729_503_711_8e-1,
                ],
                [
                    2.680_677_724_903_893_2e-3,
                    1.628_241_700_382_423e-3,
                    -9.515_922_545_197_159e-5,
                ],
                5.151_389_020_466_114_5e-5,
            ),
        ];
        let mut momentum = [0.0; 3];
        for b in &bodies {
            for k in 0..3 {
                momentum[k] += b.velocity[k] * b.mass;
            }
        }
        for k in 0..3 {
            bodies[0].velocity[k] = -momentum[k] / SOLAR_MASS;
        }
        bodies
    }

    #[inline(never)]
    fn advance(bodies: &mut [Body; 5], dt: f64) {
        for i in 0..bodies.len() {
            for j in i + 1..bodies.len() {
                let d = [
                    bodies[i].position[0] - bodies[j].position[0],
                    bodies[i].position[1] - bodies[j].position[1],
                    bodies[i].position[2] - bodies[j].position[2],
                ];
                let distance2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                let magnitude = dt / (distance2 * distance2.sqrt());
                let (mass_i, mass_j) = (bodies[i].mass, bodies[j].mass);
                for k in 0..3 {
                    bodies[i].velocity[k] -= d[k] * mass_j * magnitude;
                    bodies[j].velocity[k] += d[k] * mass_i * magnitude;
                }
            }
        }
        for body in bodies.iter_mut() {
            for k in 0..3 {
                body.position[k] += dt * body.velocity[k];
            }
        }
    }

    #[inline(never)]
    fn energy(bodies: &[Body; 5]) -> f64 {
        let mut energy = 0.0;
        for (i, a) in bodies.iter().enumerate() {
            let speed2: f64 = a.velocity.iter().map(|v| v * v).sum();
            energy += 0.5 * a.mass * speed2;
            for b in &bodies[i + 1..] {
                let distance2: f64 = (0..3)
                    .map(|k| (a.position[k] - b.position[k]).powi(2))
                    .sum();
                energy -= a.mass * b.mass / distance2.sqrt();
            }
        }
        energy
    }

    pub fn run(scale: u64) -> u64 {
        let mut bodies = bodies();
        let mut sum = mix(0, energy(&bodies).to_bits());
        for _ in 0..scale * 40 {
            for _ in 0..100_000 {
                advance(&mut bodies, 0.01);
            }
            // Rounded so that the checksum does not depend on the last bits.
            sum = mix(sum, (energy(&bodies) * 1e9).round() as i64 as u64);
        }
        sum
    }
}
