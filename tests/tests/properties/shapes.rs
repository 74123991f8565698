//! Hand-shaped code spliced into generated modules: what wasm-smith (almost)
//! never produces, drawn from a small grammar.
//!
//! wasm-smith's functions rarely call each other inside a `try`, and the
//! property tests inject import calls at random points, so a local written
//! before a call that suspends and then throws, read only by the handler,
//! practically never occurs; nor do non-nullable reference arguments of
//! calls to functions that suspend. [`splice`] adds functions of these
//! shapes beside wasm-smith's, with exported entry points (`sN`) that the
//! driver calls:
//!
//! - *throwers* (`$s_tN`): call `inject.i32` (a suspension point), then
//!   throw on a condition (of the argument or of the host's value), or throw
//!   first and suspend after, or call a deeper thrower first: throws from
//!   below a suspension point, in frames deeper than the handler's; with
//!   GC, some take a `(ref $s_box)` and write to it before throwing;
//! - *middles* (`$s_mN`): a `try` around a call of a thrower (or of a lower
//!   middle) that catches only some tags, or catches and throws again
//!   (`catch_ref` + `throw_ref`, legacy `rethrow`), so exceptions cross
//!   frames that have handlers of their own;
//! - *entries* (`sN`, exported, `(param i32) (result i32)`): one to three
//!   `try`s, some in loops, each around a call of a thrower or middle, all
//!   inside an outermost `catch_all`. Before each `try`, locals of every
//!   numeric type (and, with GC, a struct reference) are written; each is
//!   read only in the handlers (never on the normal path after the call), or
//!   overwritten on the normal path after the call and read after the `try`
//!   (so only the way through a handler reads the value written before the
//!   call), or read on both paths. Handlers may suspend themselves
//!   (`inject.tick`) before reading. Both flavours: `try_table` with `catch`,
//!   `catch_all`, `catch_ref` (the `exnref` kept in a local across a
//!   suspension), or legacy `try` with `catch`, `catch_all` and `rethrow`
//!   (never `rethrow` from a `catch_all`: the transform refuses that when the
//!   handler may suspend);
//! - with GC, *reference callees* (`$s_cN`) taking one to three reference
//!   parameters among `(ref $s_box)`, `(ref null $s_box)`, `(ref $s_arr)`,
//!   `(ref $s_fn)` (called with `call_ref`, targets that suspend) and
//!   `(ref $s_pair)` (a struct holding a `(ref $s_box)`), plus an `i32`,
//!   using them before and after suspending, passing them on to lower
//!   callees, returning `i32` or a nullable `(ref null $s_box)` (never a
//!   non-nullable reference result: the transform refuses those); and GC
//!   entries (`sN`) that build structs and arrays and pass them (from
//!   nullable locals through `ref.as_non_null`, freshly built, from
//!   non-nullable locals) as arguments, some with an argument after them
//!   that is itself a suspending call, then read the structs and arrays back.
//!
//! Everything is drawn from a seed, so a case stays deterministic. The
//! functions are added in the text format: the module is printed with
//! wasmprinter, the new fields go before its closing parenthesis (new
//! types, tags and functions take the next indices, so nothing existing
//! moves), and the text is parsed again.

use wasmparser::{Parser, Payload, TypeRef};

/// Which exception handling the added code uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `try_table`, `catch_ref`, `throw_ref` (wasmtime).
    TryTable,
    /// `try`, `catch`, `catch_all`, `rethrow` (V8 11.3).
    #[allow(dead_code)] // Used by the legacy-exceptions test.
    Legacy,
}

/// The module with the added functions.
pub struct Spliced {
    pub wasm: Vec<u8>,
    /// Exported entry points, each `(param i32) (result i32)`.
    pub entries: Vec<String>,
    /// What was added, for the report.
    pub description: String,
}

/// splitmix64 (also the legacy-exception test's generator).
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `a / b`.
    pub fn ratio(&mut self, a: u64, b: u64) -> bool {
        self.below(b) < a
    }

    fn k(&mut self) -> i32 {
        (self.below(1000) as i32) - 300
    }
}

/// The kinds of reference parameters of the GC callees.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RefKind {
    Box,
    BoxNull,
    Arr,
    Fn,
    Pair,
}

impl RefKind {
    const ALL: [RefKind; 5] = [
        RefKind::Box,
        RefKind::BoxNull,
        RefKind::Arr,
        RefKind::Fn,
        RefKind::Pair,
    ];

    fn ty(self) -> &'static str {
        match self {
            RefKind::Box => "(ref $s_box)",
            RefKind::BoxNull => "(ref null $s_box)",
            RefKind::Arr => "(ref $s_arr)",
            RefKind::Fn => "(ref $s_fn)",
            RefKind::Pair => "(ref $s_pair)",
        }
    }
}

struct GcCallee {
    name: String,
    params: Vec<RefKind>,
    /// Returns `(ref null $s_box)` instead of `i32`.
    returns_box: bool,
}

/// A thrower or middle: `(param i32 [(ref $s_box)]) (result i32)`.
struct Callee {
    name: String,
    box_param: bool,
}

/// How often each shape went in, for the report.
#[derive(Default)]
struct Tally {
    trys: u32,
    handler_only: u32,
    after_try: u32,
    in_loops: u32,
    handler_suspends: u32,
    rethrows: u32,
    box_throwers: u32,
    gc_calls: u32,
    suspending_arg: u32,
    non_null_locals: u32,
}

struct Gen {
    rng: Rng,
    flavor: Flavor,
    gc: bool,
    /// Function indices of `inject.i32` and `inject.tick`.
    i32_fn: u32,
    tick_fn: u32,
    fields: Vec<String>,
    throwers: Vec<Callee>,
    middles: Vec<Callee>,
    fn_targets: Vec<String>,
    gc_callees: Vec<GcCallee>,
    entries: Vec<String>,
    /// Label counter, unique per module.
    labels: u32,
    tally: Tally,
}

/// A local written before a `try` and read in its handlers or after it.
#[derive(Clone, Copy)]
struct Pre {
    name: &'static str,
    /// Read only in the handlers; else overwritten after the call on the
    /// normal path and read after the `try`; or read on both paths.
    mode: Mode,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    HandlerOnly,
    AfterTry,
    Both,
}

impl Gen {
    fn label(&mut self, what: &str) -> String {
        self.labels += 1;
        format!("$s_{what}{}", self.labels)
    }

    /// The locals every EH function declares.
    fn eh_locals(&self) -> String {
        let mut s = String::from(
            "(local $a i32) (local $b i64) (local $c f64) (local $d f32) (local $r i32) \
             (local $acc i32) (local $i i32)",
        );
        if self.flavor == Flavor::TryTable {
            s += " (local $exn exnref)";
        }
        if self.gc {
            s += " (local $bx (ref null $s_box))";
        }
        s
    }

    fn pre_names(&self) -> Vec<&'static str> {
        let mut v = vec!["$a", "$b", "$c", "$d"];
        if self.gc {
            v.push("$bx");
        }
        v
    }

    /// Writes `name` with a value that depends on `$x` (never the default).
    fn write(&mut self, name: &str) -> String {
        let k = self.rng.k() | 0x101;
        match name {
            "$a" => format!("(local.set $a (i32.xor (local.get $x) (i32.const {k})))"),
            "$b" => format!(
                "(local.set $b (i64.add (i64.mul (i64.extend_i32_u (local.get $x)) (i64.const {})) (i64.const {k})))",
                0x1_0000_0001u64 + self.rng.below(1000)
            ),
            "$c" => format!(
                "(local.set $c (f64.add (f64.convert_i32_s (local.get $x)) (f64.const {k}.5)))"
            ),
            "$d" => format!(
                "(local.set $d (f32.sub (f32.const {k}.25) (f32.convert_i32_u (local.get $x))))"
            ),
            _ => format!("(local.set $bx (struct.new $s_box (i32.add (local.get $x) (i32.const {k}))))"),
        }
    }

    /// Overwrites `name` with a constant (the normal path's kill).
    fn kill(&mut self, name: &str) -> String {
        let k = self.rng.k();
        match name {
            "$a" => format!("(local.set $a (i32.const {k}))"),
            "$b" => format!("(local.set $b (i64.const {k}))"),
            "$c" => format!("(local.set $c (f64.const {k}))"),
            "$d" => format!("(local.set $d (f32.const {k}))"),
            _ => format!("(local.set $bx (struct.new $s_box (i32.const {k})))"),
        }
    }

    /// An `i32` read of `name`.
    fn read(name: &str) -> &'static str {
        match name {
            "$a" => "(local.get $a)",
            "$b" => "(i32.wrap_i64 (i64.rotl (local.get $b) (i64.const 17)))",
            "$c" => "(i32.trunc_sat_f64_s (local.get $c))",
            "$d" => "(i32.reinterpret_f32 (local.get $d))",
            _ => "(struct.get $s_box 0 (local.get $bx))",
        }
    }

    /// `i32` expression: the reads of `pres` combined, on top of `base`.
    fn reads(pres: &[Pre], keep: impl Fn(Mode) -> bool, base: String) -> String {
        pres.iter().filter(|p| keep(p.mode)).fold(base, |acc, p| {
            format!(
                "(i32.add (i32.mul {acc} (i32.const 7)) {})",
                Self::read(p.name)
            )
        })
    }

    fn box_arg(&mut self) -> String {
        if self.rng.ratio(1, 2) {
            "(ref.as_non_null (local.get $bx))".into()
        } else {
            format!("(struct.new $s_box (i32.const {}))", self.rng.k())
        }
    }

    /// A call of `callee` with argument `$x + $i`.
    fn call_of(&mut self, callee: (String, bool)) -> String {
        let (name, box_param) = callee;
        if box_param {
            let b = self.box_arg();
            format!("(call {name} (i32.add (local.get $x) (local.get $i)) {b})")
        } else {
            format!("(call {name} (i32.add (local.get $x) (local.get $i)))")
        }
    }

    fn pick_callee(&mut self, middles_below: usize) -> (String, bool) {
        let n = self.throwers.len() + middles_below;
        let j = self.rng.below(n as u64) as usize;
        let c = if j < self.throwers.len() {
            &self.throwers[j]
        } else {
            &self.middles[j - self.throwers.len()]
        };
        (c.name.clone(), c.box_param)
    }

    /// A statement: the locals written, a `try` around `call` whose value is
    /// folded into `$acc`, then the reads after the `try`. `catch_everything`:
    /// the handlers catch every exception (else some pass through).
    fn try_stmt(&mut self, call: String, catch_everything: bool) -> String {
        self.tally.trys += 1;
        let mut pres = Vec::new();
        for name in self.pre_names() {
            if self.rng.ratio(2, 3) {
                let mode = match self.rng.below(8) {
                    0..=3 => Mode::HandlerOnly,
                    4..=6 => Mode::AfterTry,
                    _ => Mode::Both,
                };
                pres.push(Pre { name, mode });
            }
        }
        if pres.is_empty() {
            pres.push(Pre {
                name: "$a",
                mode: Mode::HandlerOnly,
            });
        }
        if pres.iter().any(|p| p.mode == Mode::HandlerOnly) {
            self.tally.handler_only += 1;
        }
        if pres.iter().any(|p| p.mode == Mode::AfterTry) {
            self.tally.after_try += 1;
        }
        let mut s = String::new();
        // Some writes before the `try`, some at the start of its body.
        let mut in_body = String::new();
        for p in &pres {
            let w = self.write(p.name);
            if self.rng.ratio(1, 3) {
                in_body += &w;
            } else {
                s += &w;
            }
        }
        let mut body = in_body;
        if self.rng.ratio(1, 4) {
            body += &self.tick();
        }
        body += &format!("(local.set $r {call})");
        if self.rng.ratio(1, 4) {
            // A throw of this function's own, after the call.
            body += "(if (i32.and (local.get $r) (i32.const 1)) (then (throw $s_f)))";
        }
        for p in &pres {
            if p.mode == Mode::AfterTry {
                body += &self.kill(p.name);
            }
        }
        let normal = Self::reads(&pres, |m| m == Mode::Both, "(local.get $r)".into());
        let suspend_in_handler = self.rng.ratio(1, 3);
        if suspend_in_handler {
            self.tally.handler_suspends += 1;
        }
        let tick = if suspend_in_handler {
            self.tick()
        } else {
            String::new()
        };
        let handler = |base: &str| Self::reads(&pres, |m| m != Mode::AfterTry, base.to_string());
        let value = match self.flavor {
            Flavor::TryTable => {
                let (j, he, ha, hr) = (
                    self.label("j"),
                    self.label("he"),
                    self.label("ha"),
                    self.label("hr"),
                );
                // Catch clauses: `$s_e` by value or by reference (then
                // thrown again after the handler's reads), `catch_all`.
                let by_ref = self.rng.ratio(1, 4) && !catch_everything;
                let catch_e = catch_everything || self.rng.ratio(2, 3);
                let catch_all = catch_everything || self.rng.ratio(1, 2);
                let mut catches = String::new();
                if by_ref {
                    self.tally.rethrows += 1;
                    catches += &format!("(catch_ref $s_e {hr}) ");
                } else if catch_e {
                    catches += &format!("(catch $s_e {he}) ");
                }
                if catch_all {
                    catches += &format!("(catch_all {ha}) ");
                }
                let e_handler = handler("(local.get $r)");
                let all_handler = handler("(i32.const 5)");
                format!(
                    "(block {j} (result i32)
                       (block {ha}
                         (block {he} (result i32)
                           (block {hr} (result i32 exnref)
                             (try_table {catches} {body})
                             (br {j} {normal}))
                           ;; catch_ref: the reads go into $acc, the exception on
                           (local.set $exn)
                           {tick}
                           (local.set $acc (i32.add (local.get $acc) (i32.add {e_handler})))
                           (throw_ref (local.get $exn)))
                         ;; catch $s_e: the payload is on the stack
                         {tick}
                         (br {j} (i32.add {e_handler})))
                       {tick}
                       {all_handler})"
                )
            }
            Flavor::Legacy => {
                let t = self.label("t");
                let rethrow = !catch_everything && self.rng.ratio(1, 4);
                let catch_e = catch_everything || rethrow || self.rng.ratio(2, 3);
                let catch_all = catch_everything || self.rng.ratio(1, 2);
                let e_handler = handler("(local.get $r)");
                let all_handler = handler("(i32.const 5)");
                // Flat: the wat crate reads legacy `try` only unfolded.
                let mut s = format!("try {t} (result i32) {body} {normal} ");
                if catch_e {
                    if rethrow {
                        self.tally.rethrows += 1;
                        s += &format!(
                            "catch $s_e {tick} (local.set $acc (i32.add (local.get $acc) (i32.add {e_handler}))) (rethrow {t}) "
                        );
                    } else {
                        s += &format!("catch $s_e {tick} (i32.add {e_handler}) ");
                    }
                }
                if catch_all {
                    s += &format!("catch_all {tick} {all_handler} ");
                }
                s + "end"
            }
        };
        // `value` leaves the `try`'s result on the stack.
        s += &format!("{value} (i32.mul (local.get $acc) (i32.const 31)) i32.add (local.set $acc)");
        let after = Self::reads(&pres, |m| m == Mode::AfterTry, "(local.get $acc)".into());
        s += &format!("(local.set $acc {after})");
        s
    }

    fn thrower(&mut self) {
        let k = self.throwers.len();
        let name = format!("$s_t{k}");
        let box_param = self.gc && self.rng.ratio(1, 2);
        if box_param {
            self.tally.box_throwers += 1;
        }
        let c = self.rng.k();
        let suspend = format!(
            "(local.set $v (call {} (i32.add (local.get $x) (i32.const {c}))))",
            self.i32_fn
        );
        let m = 2 + self.rng.below(3);
        let cond_x = match self.rng.below(2) {
            0 => format!("(i32.eqz (i32.rem_u (local.get $x) (i32.const {m})))"),
            _ => "(i32.and (local.get $x) (i32.const 1))".to_string(),
        };
        let cond = if self.rng.ratio(1, 3) {
            format!(
                "(i32.lt_u (local.get $v) (i32.const {}))",
                20 + self.rng.below(60)
            )
        } else {
            cond_x.clone()
        };
        let throw = if self.rng.ratio(1, 2) {
            format!(
                "(throw $s_e (i32.add (local.get $v) (i32.const {})))",
                self.rng.k()
            )
        } else {
            "(throw $s_f)".to_string()
        };
        let touch = if box_param {
            "(struct.set $s_box 0 (local.get $b) (i32.add (struct.get $s_box 0 (local.get $b)) (local.get $v)))"
        } else {
            ""
        };
        let body = match self.rng.below(if k > 0 { 4 } else { 3 }) {
            // Suspend, then throw (the common case: the caller's frame was
            // unwound and rewound before the exception reaches it).
            0 | 1 => format!("{suspend} {touch} (if {cond} (then {throw}))"),
            // Throw before suspending.
            2 => format!("(if {cond_x} (then {throw})) {suspend} {touch}"),
            // A deeper thrower first, then suspend and maybe throw.
            _ => {
                let j = self.rng.below(k as u64) as usize;
                let deeper = &self.throwers[j];
                let arg = if deeper.box_param {
                    if box_param {
                        " (local.get $b)".to_string()
                    } else {
                        " (struct.new $s_box (i32.const 3))".to_string()
                    }
                } else {
                    String::new()
                };
                format!(
                    "(local.set $w (call {} (local.get $x){arg})) {suspend} {touch} (if {cond} (then {throw})) (local.set $v (i32.add (local.get $v) (local.get $w)))",
                    deeper.name
                )
            }
        };
        let param = if box_param {
            " (param $b (ref $s_box))"
        } else {
            ""
        };
        self.fields.push(format!(
            "(func {name} (param $x i32){param} (result i32) (local $v i32) (local $w i32)\n  {body}\n  (i32.add (local.get $v) (i32.const {c})))"
        ));
        self.throwers.push(Callee { name, box_param });
    }

    fn tick(&self) -> String {
        format!("(call {})", self.tick_fn)
    }

    /// A function with a `try` of its own around a call of a thrower or a
    /// lower middle, that lets some exceptions through.
    fn middle(&mut self) {
        let k = self.middles.len();
        let name = format!("$s_m{k}");
        let callee = self.pick_callee(k);
        let call = self.call_of(callee);
        let stmt = self.try_stmt(call, false);
        let locals = self.eh_locals();
        let init = if self.gc {
            "(local.set $bx (struct.new $s_box (local.get $x)))"
        } else {
            ""
        };
        self.fields.push(format!(
            "(func {name} (param $x i32) (result i32) {locals}\n  {init} {stmt}\n  (local.get $acc))"
        ));
        self.middles.push(Callee {
            name,
            box_param: false,
        });
    }

    /// An exported entry with `try`s (some in loops) inside a `catch_all`.
    fn eh_entry(&mut self) {
        let n = self.entries.len();
        let export = format!("s{n}");
        let mut body = String::new();
        if self.gc {
            body += "(local.set $bx (struct.new $s_box (local.get $x)))";
        }
        for _ in 0..1 + self.rng.below(3) {
            let callee = self.pick_callee(self.middles.len());
            let call = self.call_of(callee);
            let everything = self.rng.ratio(3, 4);
            let stmt = self.try_stmt(call, everything);
            if self.rng.ratio(1, 2) {
                self.tally.in_loops += 1;
                let l = self.label("l");
                let iterations = 2 + self.rng.below(3);
                body += &format!(
                    "(local.set $i (i32.const 0)) (loop {l} {stmt} (br_if {l} (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const {iterations}))))"
                );
            } else {
                body += &stmt;
            }
        }
        let locals = self.eh_locals();
        let wrapped = match self.flavor {
            Flavor::TryTable => {
                let (out, h) = (self.label("out"), self.label("oh"));
                format!(
                    "(block {out} (result i32) (block {h} (try_table (catch_all {h}) {body}) (br {out} (local.get $acc))) (i32.add (local.get $acc) (i32.const 1000000)))"
                )
            }
            Flavor::Legacy => format!(
                "try (result i32) {body} (local.get $acc) catch_all (i32.add (local.get $acc) (i32.const 1000000)) end"
            ),
        };
        self.fields.push(format!(
            "(func $s_x{n} (export \"{export}\") (param $x i32) (result i32) {locals}\n  {wrapped})"
        ));
        self.entries.push(export);
    }

    /// A `(type $s_fn)` function that suspends, for `call_ref`.
    fn fn_target(&mut self) {
        let k = self.fn_targets.len();
        let name = format!("$s_fn{k}");
        self.fields.push(format!(
            "(func {name} (type $s_fn) (param $y i32) (result i32) (i32.add (call {} (local.get $y)) (i32.const {})))",
            self.i32_fn,
            self.rng.k()
        ));
        self.fn_targets.push(name);
    }

    /// An argument expression of kind `kind`; `own` names this function's
    /// parameters of each kind, to pass on.
    fn ref_arg(&mut self, kind: RefKind, own: &[(RefKind, String)], in_entry: bool) -> String {
        if let Some((_, p)) = own.iter().find(|(k, _)| *k == kind) {
            if self.rng.ratio(2, 3) {
                return format!("(local.get {p})");
            }
        }
        let k = self.rng.k();
        match kind {
            RefKind::Box => match self.rng.below(3) {
                0 if in_entry => "(ref.as_non_null (local.get $bx))".into(),
                1 if in_entry && self.rng.ratio(1, 2) => "(local.get $nb)".into(),
                _ => format!("(struct.new $s_box (i32.const {k}))"),
            },
            RefKind::BoxNull => match self.rng.below(3) {
                0 if in_entry => "(local.get $bx)".into(),
                1 => "(ref.null $s_box)".into(),
                _ => format!("(struct.new $s_box (i32.const {k}))"),
            },
            RefKind::Arr => match self.rng.below(3) {
                0 if in_entry => "(ref.as_non_null (local.get $ar))".into(),
                1 => format!("(array.new $s_arr (i32.const {k}) (i32.const 2))"),
                _ => format!(
                    "(array.new_fixed $s_arr 3 (i32.const {k}) (i32.const 1) (i32.const 2))"
                ),
            },
            RefKind::Fn => {
                let j = self.rng.below(self.fn_targets.len() as u64) as usize;
                format!("(ref.func {})", self.fn_targets[j])
            }
            RefKind::Pair => {
                let b = self.ref_arg(RefKind::Box, own, in_entry);
                format!("(struct.new $s_pair {b} (i64.const {k}))")
            }
        }
    }

    /// The `i32` argument: plain, or a call that suspends while the
    /// reference arguments before it are on the stack.
    fn x_arg(&mut self) -> String {
        if self.rng.ratio(1, 3) {
            self.tally.suspending_arg += 1;
            format!("(call {} (local.get $x))", self.i32_fn)
        } else {
            "(i32.add (local.get $x) (local.get $i))".into()
        }
    }

    /// A call of a random GC callee as an `i32` expression.
    fn gc_call(&mut self, own: &[(RefKind, String)], in_entry: bool, below: usize) -> String {
        self.tally.gc_calls += 1;
        let j = self.rng.below(below as u64) as usize;
        let (name, params, returns_box) = {
            let c = &self.gc_callees[j];
            (c.name.clone(), c.params.clone(), c.returns_box)
        };
        let mut args = String::new();
        for kind in params {
            args += &self.ref_arg(kind, own, in_entry);
            args += " ";
        }
        args += &self.x_arg();
        let call = format!("(call {name} {args})");
        if returns_box {
            format!(
                "(block (result i32) (local.set $rb {call}) (if (result i32) (ref.is_null (local.get $rb)) (then (i32.const -1)) (else (struct.get $s_box 0 (local.get $rb)))))"
            )
        } else {
            call
        }
    }

    fn use_ref(kind: RefKind, p: &str) -> String {
        match kind {
            RefKind::Box => format!(
                "(struct.set $s_box 0 (local.get {p}) (i32.add (struct.get $s_box 0 (local.get {p})) (local.get $v)))"
            ),
            RefKind::BoxNull => format!(
                "(if (i32.eqz (ref.is_null (local.get {p}))) (then (struct.set $s_box 0 (local.get {p}) (i32.sub (struct.get $s_box 0 (local.get {p})) (local.get $v)))))"
            ),
            RefKind::Arr => format!(
                "(array.set $s_arr (local.get {p}) (i32.rem_u (local.get $v) (array.len (local.get {p}))) (i32.add (local.get $x) (local.get $v)))"
            ),
            RefKind::Fn => format!(
                "(local.set $v (i32.add (local.get $v) (call_ref $s_fn (local.get $v) (local.get {p}))))"
            ),
            RefKind::Pair => format!(
                "(struct.set $s_pair 1 (local.get {p}) (i64.add (struct.get $s_pair 1 (local.get {p})) (i64.extend_i32_u (local.get $v)))) (struct.set $s_box 0 (struct.get $s_pair 0 (local.get {p})) (local.get $v))"
            ),
        }
    }

    fn gc_callee(&mut self) {
        let k = self.gc_callees.len();
        let name = format!("$s_c{k}");
        let n = 1 + self.rng.below(3);
        let params: Vec<RefKind> = (0..n)
            .map(|_| RefKind::ALL[self.rng.below(5) as usize])
            .collect();
        let own: Vec<(RefKind, String)> = params
            .iter()
            .enumerate()
            .map(|(i, &kind)| (kind, format!("$p{i}")))
            .collect();
        let returns_box = self.rng.ratio(1, 4);
        let suspend = format!(
            "(local.set $v (i32.add (local.get $v) (call {} (local.get $x))))",
            self.i32_fn
        );
        let mut body = String::new();
        let mut suspended = false;
        for (kind, p) in &own {
            if !suspended && self.rng.ratio(1, 2) {
                body += &suspend;
                suspended = true;
            }
            body += &Self::use_ref(*kind, p);
        }
        if !suspended || self.rng.ratio(1, 3) {
            body += &suspend;
        }
        if k > 0 && self.rng.ratio(1, 2) {
            let call = self.gc_call(&own, false, k);
            body += &format!("(local.set $v (i32.add (local.get $v) {call}))");
            if self.rng.ratio(1, 2) {
                let (kind, p) = &own[self.rng.below(own.len() as u64) as usize];
                body += &Self::use_ref(*kind, p);
            }
        }
        let params_text: String = own
            .iter()
            .map(|(kind, p)| format!("(param {p} {}) ", kind.ty()))
            .collect();
        let (result, tail) = if returns_box {
            let boxed = own
                .iter()
                .find(|(k, _)| matches!(k, RefKind::Box | RefKind::BoxNull))
                .map(|(_, p)| format!("(local.get {p})"))
                .unwrap_or_else(|| "(struct.new $s_box (local.get $v))".into());
            ("(ref null $s_box)", boxed)
        } else {
            ("i32", "(local.get $v)".to_string())
        };
        self.fields.push(format!(
            "(func {name} {params_text}(param $x i32) (result {result}) (local $v i32) (local $i i32) (local $rb (ref null $s_box))\n  {body}\n  {tail})"
        ));
        self.gc_callees.push(GcCallee {
            name,
            params,
            returns_box,
        });
    }

    fn gc_entry(&mut self) {
        let n = self.entries.len();
        let export = format!("s{n}");
        let non_null_local = self.rng.ratio(1, 3);
        let mut body = String::from(
            "(local.set $bx (struct.new $s_box (local.get $x))) (local.set $ar (array.new_fixed $s_arr 3 (local.get $x) (i32.const 2) (i32.const 3)))",
        );
        let mut locals = String::from(
            "(local $bx (ref null $s_box)) (local $ar (ref null $s_arr)) (local $rb (ref null $s_box)) (local $acc i32) (local $i i32)",
        );
        if non_null_local {
            self.tally.non_null_locals += 1;
            locals += " (local $nb (ref $s_box))";
            body += &format!(
                "(local.set $nb (struct.new $s_box (i32.const {})))",
                self.rng.k()
            );
        }
        let mut calls = String::new();
        for _ in 0..1 + self.rng.below(3) {
            let below = self.gc_callees.len();
            let call = self.gc_call(&[], true, below);
            let call = if non_null_local {
                call
            } else {
                call.replace("(local.get $nb)", "(ref.as_non_null (local.get $bx))")
            };
            calls += &format!(
                "(local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) {call}))"
            );
        }
        if self.rng.ratio(1, 2) {
            let l = self.label("l");
            body += &format!(
                "(loop {l} {calls} (br_if {l} (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 2))))"
            );
        } else {
            body += &calls;
        }
        let mut result = String::from(
            "(i32.add (local.get $acc) (i32.add (struct.get $s_box 0 (local.get $bx)) (i32.add (array.get $s_arr (local.get $ar) (i32.const 0)) (i32.add (array.get $s_arr (local.get $ar) (i32.const 1)) (array.get $s_arr (local.get $ar) (i32.const 2))))))",
        );
        if non_null_local {
            result = format!("(i32.add {result} (struct.get $s_box 0 (local.get $nb)))");
        }
        self.fields.push(format!(
            "(func $s_x{n} (export \"{export}\") (param $x i32) (result i32) {locals}\n  {body}\n  {result})"
        ));
        self.entries.push(export);
    }
}

/// The function indices of `inject.i32` and `inject.tick` in `wasm`.
fn inject_indices(wasm: &[u8]) -> Result<(u32, u32), String> {
    let (mut i32_, mut tick) = (None, None);
    let mut funcs = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::ImportSection(s) = payload.map_err(|e| e.to_string())? {
            for import in s.into_imports() {
                let import = import.map_err(|e| e.to_string())?;
                if let TypeRef::Func(_) = import.ty {
                    if import.module == "inject" && import.name == "i32" {
                        i32_ = Some(funcs);
                    }
                    if import.module == "inject" && import.name == "tick" {
                        tick = Some(funcs);
                    }
                    funcs += 1;
                }
            }
        }
    }
    Ok((
        i32_.ok_or("no import inject.i32")?,
        tick.ok_or("no import inject.tick")?,
    ))
}

/// Which shapes [`splice`] adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kinds {
    /// Exception-handling entries, throwers and middles.
    pub eh: bool,
    /// GC entries and callees, struct parameters of throwers.
    pub gc: bool,
}

impl Kinds {
    /// From `ASYNCIFY_TESTS_SHAPES` (`all`, the default, `eh`, `gc` or
    /// `none`), limited to what `allowed` has: for measuring what each kind
    /// of shape catches.
    pub fn from_env(allowed: Kinds) -> Kinds {
        let (eh, gc) = match std::env::var("ASYNCIFY_TESTS_SHAPES").as_deref() {
            Err(_) | Ok("all") => (true, true),
            Ok("eh") => (true, false),
            Ok("gc") => (false, true),
            Ok("none") => (false, false),
            Ok(other) => panic!("ASYNCIFY_TESTS_SHAPES={other:?}: all, eh, gc or none"),
        };
        Kinds {
            eh: eh && allowed.eh,
            gc: gc && allowed.gc,
        }
    }
}

/// Adds the shapes described in the module doc to `wasm` (a module from the
/// generator, with the `inject` imports), drawn from `seed`: with
/// `kinds.eh`, one or two EH entries (`flavor`) with their throwers and
/// middles; with `kinds.gc`, in two cases of three one or two GC entries
/// with their callees, and struct parameters for some throwers.
pub fn splice(wasm: &[u8], seed: u64, flavor: Flavor, kinds: Kinds) -> Result<Spliced, String> {
    if !kinds.eh && !kinds.gc {
        return Ok(Spliced {
            wasm: wasm.to_vec(),
            entries: Vec::new(),
            description: "no shapes".into(),
        });
    }
    let (i32_index, tick_index) = inject_indices(wasm)?;
    let mut rng = Rng(seed ^ 0x7368_6170_6573_0001);
    let gc_entries = match (kinds.eh, kinds.gc) {
        (_, false) => 0,
        (true, true) => rng.below(3),
        (false, true) => 1 + rng.below(2),
    };
    let gc = gc_entries > 0 || (kinds.gc && rng.ratio(1, 2));
    let mut g = Gen {
        rng,
        flavor,
        gc,
        i32_fn: i32_index,
        tick_fn: tick_index,
        fields: Vec::new(),
        throwers: Vec::new(),
        middles: Vec::new(),
        fn_targets: Vec::new(),
        gc_callees: Vec::new(),
        entries: Vec::new(),
        labels: 0,
        tally: Tally::default(),
    };
    g.fields.push("(tag $s_e (param i32))".into());
    g.fields.push("(tag $s_f)".into());
    if gc {
        g.fields
            .push("(type $s_box (struct (field (mut i32))))".into());
        g.fields.push("(type $s_arr (array (mut i32)))".into());
        g.fields
            .push("(type $s_fn (func (param i32) (result i32)))".into());
        g.fields
            .push("(type $s_pair (struct (field (ref $s_box)) (field (mut i64))))".into());
    }
    if kinds.eh {
        for _ in 0..1 + g.rng.below(3) {
            g.thrower();
        }
        for _ in 0..g.rng.below(3) {
            g.middle();
        }
        for _ in 0..1 + g.rng.below(2) {
            g.eh_entry();
        }
    }
    if gc_entries > 0 {
        for _ in 0..1 + g.rng.below(2) {
            g.fn_target();
        }
        for _ in 0..1 + g.rng.below(3) {
            g.gc_callee();
        }
        for _ in 0..gc_entries {
            g.gc_entry();
        }
        let targets = g.fn_targets.join(" ");
        g.fields.push(format!("(elem declare func {targets})"));
    }
    let text = wasmprinter::print_bytes(wasm).map_err(|e| format!("printing: {e}"))?;
    let end = text
        .rfind(')')
        .ok_or("printed module without a closing parenthesis")?;
    let mut spliced = String::with_capacity(text.len() + 16 * 1024);
    spliced += &text[..end];
    for field in &g.fields {
        spliced += "  ";
        spliced += field;
        spliced += "\n";
    }
    spliced += ")\n";
    let out = wat::parse_str(&spliced).map_err(|e| format!("splicing shapes: {e}"))?;
    asyncify_tests::interface::validate(&out)
        .map_err(|e| format!("spliced shapes: {e}\n{}", g.fields.join("\n")))?;
    let t = &g.tally;
    let mut description = format!(
        "shapes({} {} entries, {} trys: handler-only reads {}, after-try reads {}, in loops {}, \
         suspending handlers {}, rethrows {}",
        match flavor {
            Flavor::TryTable => "try_table",
            Flavor::Legacy => "legacy-try",
        },
        g.entries.len(),
        t.trys,
        t.handler_only,
        t.after_try,
        t.in_loops,
        t.handler_suspends,
        t.rethrows
    );
    if gc {
        description += &format!(
            "; gc: {} entries, box throwers {}, calls with reference args {}, suspending args {}, non-null locals {}",
            gc_entries, t.box_throwers, t.gc_calls, t.suspending_arg, t.non_null_locals
        );
    }
    description += ")";
    Ok(Spliced {
        wasm: out,
        entries: g.entries,
        description,
    })
}
