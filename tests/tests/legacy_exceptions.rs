//! Legacy exception handling (`try`, `catch`, `catch_all`, `throw`,
//! `rethrow`, `delegate`) in generated modules, instrumented and run under
//! Node against the originals.
//!
//! wasmtime does not run legacy exceptions, so the property tests
//! (`tests/properties/`) never generate them; Node 20 (V8 11.3) does. Each
//! case starts from the property tests' generator ([`generate_for_v8`]: the
//! same wasm-smith modules with injected import calls, minus what V8 11.3
//! lacks: the separate buffer memory, SIMD, extended constants), and
//! [`add_legacy_exceptions`] then adds, with choices drawn per module:
//! tags (exported as `tagN`); `block`s and whole function bodies turned into
//! `try` with `catch $tag` and `catch_all` handlers (or closed by `delegate`
//! to an enclosing label); conditional `throw`s after random instructions
//! (the condition from the fuel global or from an import call); and in the
//! handlers, in some modules, import calls with the caught payload live on the
//! stack (suspension points inside handlers), nested `try`s, and `rethrow`.
//!
//! The module is instrumented with the default options (every import may
//! suspend). A clean refusal (`Error::Unsupported`) is a skip, counted and
//! printed with its reason; more than half skipped fails the test. All the
//! cases are then run by one Node process (`tests/node/drive.mjs`, no npm
//! packages): the original once, the instrumented module under the schedules
//! Never, Always and a drawn pattern, driving the asyncify ABI directly, and
//! comparing results, traps, exceptions escaping an export (tag and
//! payload), the import log, memory and globals. V8 11.3 has no multi-memory,
//! so the buffer is the guest's memory itself: the driver snapshots it when
//! an import suspends, reports any byte outside the frames that the unwind
//! changed and any byte but the header that the rewind changed (a guest store
//! wrongly executed on either path), and puts back only the frames' bytes
//! when the rewind reaches the import (see drive.mjs). Fewer than 60% of the
//! passed cases suspending, or more than a quarter of the draws unusable,
//! fails the test, as does no case run at all.
//!
//! Cases: `PROPTEST_CASES` (default [`DEFAULT_CASES`]). Each case comes from a
//! seed; the first is `LEGACY_EH_SEED` (default: from the clock) and each next
//! one is derived from it. A failure prints the failing cases' seeds: rerun one
//! with `LEGACY_EH_SEED=<seed> PROPTEST_CASES=1`. Run with `--nocapture` to see
//! the counts: skips and their reasons, cases that suspended, modules with a
//! suspension point inside a handler or only inside `try` bodies, and how
//! often a handler's import call actually suspended.
//!
//! ```text
//! PROPTEST_CASES=2000 cargo test -p asyncify-tests --test legacy_exceptions -- --nocapture
//! ```
//!
//! Needs `node` (20 or later) on `PATH`.

#[allow(dead_code)]
#[path = "properties/generate.rs"]
mod generate;
#[path = "properties/shapes.rs"]
mod shapes;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use asyncify_tests::{print_wasm, Error, Options, Val};
use wasm_encoder::reencode::{self, Error as ReencodeError, Reencode};
use wasm_encoder::{
    BlockType, CodeSection, ExportKind, ExportSection, Function, Ieee32, Ieee64, Instruction,
    SectionId, TagKind, TagSection, TagType, TypeSection,
};
use wasmparser::{FuncType, Operator, Parser, Payload, TypeRef, ValType};

use crate::generate::{generate_for_v8, section_rank, skip_kind, with_entry_calls};
use crate::shapes::{Flavor, Kinds};

/// Cases when `PROPTEST_CASES` is not set: sized for well under a minute on
/// two cores in the dev profile.
const DEFAULT_CASES: u32 = 1000;

/// Skips above this share of cases fail the test.
const MAX_SKIP_SHARE: f64 = 0.5;

/// Unusable draws (no module, nothing to call) above this share of all
/// draws fail the test: the generator would be testing too little.
const MAX_UNUSABLE_SHARE: f64 = 0.25;

/// At least this share of the passed cases must suspend at least once.
const MIN_SUSPENDED_SHARE: f64 = 0.6;

/// The whole Node run must finish within this (a hung case is named).
const NODE_TIMEOUT: Duration = Duration::from_secs(600);

/// The first argument of the marker `inject.i32` call at the start of a
/// handler with suspension points (the driver counts these calls).
const HANDLER_MARK: i32 = 0x4841_0000;

use shapes::Rng;

/// The next case seed after `seed`.
fn next_seed(seed: u64) -> u64 {
    Rng(seed ^ 0x7365_6564_7365_6564).next()
}

/// What [`add_legacy_exceptions`] does to one module, drawn per module.
#[derive(Clone, Debug)]
struct Plan {
    /// Parameter types of each tag.
    tags: Vec<Vec<ValType>>,
    /// Quarters of the `block`s turned into `try`.
    try_share: u64,
    /// Quarters of the function bodies (with at most one result) wrapped in
    /// a `try`.
    wrap_share: u64,
    /// Some `try`s end in `delegate` instead of handlers.
    delegate: bool,
    /// Handlers call imports (suspension points inside handlers).
    handler_calls: bool,
    /// Eighths of the handlers that `rethrow` (some conditionally).
    rethrow: u64,
    /// Handlers may contain a `try` of their own.
    nested: bool,
    /// A conditional `throw` goes after one instruction in this many.
    throw_one_in: u64,
}

impl Plan {
    fn draw(rng: &mut Rng) -> Plan {
        let choices: [&[ValType]; 8] = [
            &[],
            &[ValType::I32],
            &[ValType::I32],
            &[ValType::I64],
            &[ValType::F32],
            &[ValType::F64],
            &[ValType::I32, ValType::I64],
            &[ValType::F64, ValType::I32],
        ];
        let tags = (0..1 + rng.below(4))
            .map(|_| choices[rng.below(choices.len() as u64) as usize].to_vec())
            .collect();
        Plan {
            tags,
            try_share: 1 + rng.below(4),
            wrap_share: rng.below(5),
            delegate: rng.ratio(1, 2),
            handler_calls: rng.ratio(3, 8),
            rethrow: [0, 0, 1, 2][rng.below(4) as usize],
            nested: rng.ratio(1, 2),
            throw_one_in: [6, 12, 25, 50][rng.below(4) as usize],
        }
    }

    fn describe(&self) -> String {
        let tags: Vec<String> = self
            .tags
            .iter()
            .map(|t| format!("{t:?}").to_lowercase())
            .collect();
        let mut s = format!(
            "legacy-eh(tags {}, try {}/4 of blocks, wrap {}/4 of bodies, throw 1/{}",
            tags.join(" "),
            self.try_share,
            self.wrap_share,
            self.throw_one_in
        );
        for (on, name) in [
            (self.delegate, "delegate"),
            (self.handler_calls, "handler-calls"),
            (self.nested, "nested"),
        ] {
            if on {
                s += ", ";
                s += name;
            }
        }
        if self.rethrow > 0 {
            let _ = write!(s, ", rethrow {}/8", self.rethrow);
        }
        s + ")"
    }
}

/// Function indices of the injected imports (see `generate.rs`) and where
/// `inject.indirect` is in the table.
struct Inject {
    tick: u32,
    indirect_type: u32,
    table: u32,
    /// `inject.i32`, `.i64`, `.f32`, `.f64`: value in, value out.
    numeric: Vec<(ValType, u32)>,
}

/// What the rewrite needs to know about the module before re-encoding it.
struct Info {
    types: Vec<FuncType>,
    /// Type of each defined function.
    func_types: Vec<u32>,
    /// Function imports: module, name, type.
    imports: Vec<(String, String, u32)>,
    fuel: u32,
    tables: u32,
    inject: Inject,
}

fn read_info(wasm: &[u8]) -> Result<Info, String> {
    let err = |e: wasmparser::BinaryReaderError| e.to_string();
    let mut types = Vec::new();
    let mut func_types = Vec::new();
    let mut imports = Vec::new();
    let mut fuel = None;
    let mut tables = 0;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(err)? {
            Payload::TypeSection(s) => {
                for ty in s.into_iter_err_on_gc_types() {
                    types.push(ty.map_err(err)?);
                }
            }
            Payload::ImportSection(s) => {
                for import in s.into_imports() {
                    let import = import.map_err(err)?;
                    match import.ty {
                        TypeRef::Func(t) => {
                            imports.push((import.module.to_string(), import.name.to_string(), t))
                        }
                        TypeRef::Table(_) => tables += 1,
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(s) => {
                for t in s {
                    func_types.push(t.map_err(err)?);
                }
            }
            Payload::TableSection(s) => tables += s.count(),
            Payload::ExportSection(s) => {
                for e in s {
                    let e = e.map_err(err)?;
                    if e.name == "fuel" {
                        fuel = Some(e.index);
                    }
                }
            }
            _ => {}
        }
    }
    let find = |name: &str| {
        imports
            .iter()
            .position(|(m, n, _)| m == "inject" && n == name)
            .map(|i| i as u32)
            .ok_or_else(|| format!("no import inject.{name}"))
    };
    let indirect = find("indirect")?;
    let inject = Inject {
        tick: find("tick")?,
        indirect_type: imports[indirect as usize].2,
        // `generate.rs` adds the table holding `inject.indirect` last.
        table: tables.checked_sub(1).ok_or("no table")?,
        numeric: vec![
            (ValType::I32, find("i32")?),
            (ValType::I64, find("i64")?),
            (ValType::F32, find("f32")?),
            (ValType::F64, find("f64")?),
        ],
    };
    Ok(Info {
        types,
        func_types,
        imports,
        fuel: fuel.ok_or("no fuel global")?,
        tables,
        inject,
    })
}

/// An open control frame of the function being rewritten.
enum Frame {
    /// Re-encoded as it was (`block`, `loop`, `if`, the function).
    Plain,
    /// A `try` this rewrite opened: closed by handlers producing `results`,
    /// or by `delegate` to that label.
    Try {
        results: Vec<ValType>,
        delegate: Option<u32>,
    },
}

/// The re-encoder that adds legacy exception handling (see the module doc).
struct Legacy<'a> {
    info: &'a Info,
    plan: Plan,
    rng: Rng,
    /// Types in the input: the tags' types come after them.
    input_types: u32,
    /// Defined functions re-encoded so far.
    body: usize,
    tags_added: bool,
    handlers: u32,
}

type Res<T> = Result<T, ReencodeError<Infallible>>;

impl Legacy<'_> {
    fn tag_count(&self) -> u32 {
        self.plan.tags.len() as u32
    }

    fn results_of(&self, bt: wasmparser::BlockType) -> Vec<ValType> {
        match bt {
            wasmparser::BlockType::Empty => Vec::new(),
            wasmparser::BlockType::Type(t) => vec![t],
            wasmparser::BlockType::FuncType(i) => self.info.types[i as usize].results().to_vec(),
        }
    }

    /// Whether a handler can make values of these types from nothing.
    fn producible(types: &[ValType]) -> bool {
        types.iter().all(|t| match t {
            ValType::Ref(r) => r.is_nullable(),
            _ => true,
        })
    }

    fn constant(&mut self, f: &mut Function, ty: ValType) -> Res<()> {
        let k = self.rng.below(64) as i64 - 16;
        let i = match ty {
            ValType::I32 => Instruction::I32Const(k as i32),
            ValType::I64 => Instruction::I64Const(k * 1_000_003),
            ValType::F32 => Instruction::F32Const(Ieee32::from(k as f32 / 4.0)),
            ValType::F64 => Instruction::F64Const(Ieee64::from(k as f64 / 8.0)),
            ValType::V128 => Instruction::V128Const(k as i128),
            ValType::Ref(r) => Instruction::RefNull(self.heap_type(r.heap_type())?),
        };
        f.instruction(&i);
        Ok(())
    }

    fn numeric_import(&self, ty: ValType) -> Option<u32> {
        let found = self.info.inject.numeric.iter().find(|(t, _)| *t == ty);
        found.map(|(_, f)| *f)
    }

    /// An import call that leaves the stack as it was: the value on top
    /// (of type `top`) goes through `inject.<type>`, or `inject.tick` (direct
    /// or through the table) is called.
    fn suspension_point(&mut self, f: &mut Function, top: Option<ValType>) {
        let inject = &self.info.inject;
        match top.and_then(|t| self.numeric_import(t)) {
            Some(import) if self.rng.ratio(3, 4) => {
                f.instruction(&Instruction::Call(import));
            }
            _ if self.rng.ratio(1, 3) => {
                f.instruction(&Instruction::I32Const(0));
                f.instruction(&Instruction::CallIndirect {
                    type_index: inject.indirect_type,
                    table_index: inject.table,
                });
            }
            _ => {
                f.instruction(&Instruction::Call(inject.tick));
            }
        }
    }

    /// Pushes an `i32` that is zero now and then: from the fuel global, or
    /// (with `calls`) from an import call.
    fn condition(&mut self, f: &mut Function, calls: bool) {
        if calls && self.rng.ratio(1, 2) {
            let k = self.rng.below(1000) as i32;
            f.instruction(&Instruction::I32Const(k));
            f.instruction(&Instruction::Call(
                self.numeric_import(ValType::I32).unwrap(),
            ));
        } else {
            f.instruction(&Instruction::GlobalGet(self.info.fuel));
        }
        let m = 2 + self.rng.below(4) as i32;
        f.instruction(&Instruction::I32Const(m));
        f.instruction(&Instruction::I32RemU);
        f.instruction(&Instruction::I32Eqz);
    }

    /// `if (condition) throw $tag end`, stack-neutral.
    fn maybe_throw(&mut self, f: &mut Function, calls: bool) -> Res<()> {
        self.condition(f, calls);
        let tag = self.rng.below(self.tag_count().into()) as u32;
        f.instruction(&Instruction::If(BlockType::Empty));
        for ty in self.plan.tags[tag as usize].clone() {
            self.constant(f, ty)?;
        }
        f.instruction(&Instruction::Throw(tag));
        f.instruction(&Instruction::End);
        Ok(())
    }

    /// Closes a `try` that yields `results` with handlers, and `end`.
    fn close_try(&mut self, f: &mut Function, results: &[ValType]) -> Res<()> {
        let mut tags: Vec<u32> = (0..self.tag_count()).collect();
        let catches = self.rng.below(3).min(tags.len() as u64);
        for _ in 0..catches {
            let tag = tags.remove(self.rng.below(tags.len() as u64) as usize);
            f.instruction(&Instruction::Catch(tag));
            let payload = self.plan.tags[tag as usize].clone();
            self.handler(f, &payload, results)?;
        }
        let catch_all = if catches == 0 {
            self.rng.ratio(7, 8)
        } else {
            self.rng.ratio(1, 2)
        };
        if catch_all {
            f.instruction(&Instruction::CatchAll);
            self.handler(f, &[], results)?;
        }
        f.instruction(&Instruction::End);
        Ok(())
    }

    /// A handler's code: starts with `payload` on the stack, ends with
    /// `results` (or rethrows).
    fn handler(&mut self, f: &mut Function, payload: &[ValType], results: &[ValType]) -> Res<()> {
        let calls = self.plan.handler_calls;
        if calls {
            // The marker call, then a call with the payload live.
            let id = self.handlers;
            self.handlers += 1;
            f.instruction(&Instruction::I32Const(HANDLER_MARK + (id & 0xffff) as i32));
            f.instruction(&Instruction::Call(
                self.numeric_import(ValType::I32).unwrap(),
            ));
            f.instruction(&Instruction::Drop);
            if self.rng.ratio(2, 3) {
                self.suspension_point(f, payload.last().copied());
            }
        }
        if self.plan.nested && self.rng.ratio(1, 3) {
            f.instruction(&Instruction::Try(BlockType::Empty));
            if calls && self.rng.ratio(1, 2) {
                self.suspension_point(f, None);
            }
            self.maybe_throw(f, calls)?;
            f.instruction(&Instruction::CatchAll);
            if calls && self.rng.ratio(1, 2) {
                self.suspension_point(f, None);
            }
            f.instruction(&Instruction::End);
        }
        // The payload becomes the result when it fits, else it is dropped.
        let keep = payload == results && payload.len() == 1 && self.rng.ratio(2, 3);
        if !keep {
            for _ in payload {
                f.instruction(&Instruction::Drop);
            }
        }
        if self.rng.below(8) < self.plan.rethrow {
            if self.rng.ratio(1, 2) {
                f.instruction(&Instruction::Rethrow(0));
                return Ok(());
            }
            self.condition(f, calls);
            f.instruction(&Instruction::If(BlockType::Empty));
            f.instruction(&Instruction::Rethrow(1));
            f.instruction(&Instruction::End);
        }
        if !keep {
            for &ty in results {
                self.constant(f, ty)?;
            }
        }
        if calls && self.rng.ratio(1, 3) {
            if let Some(&top) = results.last() {
                if let Some(import) = self.numeric_import(top) {
                    f.instruction(&Instruction::Call(import));
                }
            }
        }
        Ok(())
    }
}

impl Reencode for Legacy<'_> {
    type Error = Infallible;

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Res<()> {
        reencode::utils::parse_type_section(self, types, section)?;
        self.input_types = types.len();
        for tag in self.plan.tags.clone() {
            let params = tag.iter().map(|&t| self.val_type(t));
            let params = params.collect::<Result<Vec<_>, _>>()?;
            types.ty().function(params, []);
        }
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Res<()> {
        reencode::utils::parse_export_section(self, exports, section)?;
        for i in 0..self.tag_count() {
            exports.export(&format!("tag{i}"), ExportKind::Tag, i);
        }
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Res<()> {
        let past = before.is_none_or(|b| section_rank(b) > section_rank(SectionId::Tag));
        if past && !self.tags_added {
            let mut tags = TagSection::new();
            for i in 0..self.tag_count() {
                tags.tag(TagType {
                    kind: TagKind::Exception,
                    func_type_idx: self.input_types + i,
                });
            }
            module.section(&tags);
            self.tags_added = true;
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Res<()> {
        let index = self.body;
        self.body += 1;
        if index + 1 == self.info.func_types.len() {
            // `refuel`, added last: left alone.
            return reencode::utils::parse_function_body(self, code, func);
        }
        let mut f = self.new_function_with_parsed_locals(&func)?;
        let ty = self.info.func_types[index] as usize;
        let results = self.info.types[ty].results().to_vec();
        let mut frames = vec![Frame::Plain];
        if results.len() <= 1
            && Self::producible(&results)
            && self.rng.below(4) < self.plan.wrap_share
        {
            let bt = match results.first() {
                None => BlockType::Empty,
                Some(&t) => BlockType::Result(self.val_type(t)?),
            };
            f.instruction(&Instruction::Try(bt));
            frames.push(Frame::Try {
                results,
                delegate: None,
            });
        }
        let mut reader = func.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            match op {
                Operator::Block { blockty } => {
                    let results = self.results_of(blockty);
                    if Self::producible(&results) && self.rng.below(4) < self.plan.try_share {
                        let delegate = (self.plan.delegate && self.rng.ratio(1, 4))
                            .then(|| self.rng.below(frames.len() as u64) as u32);
                        f.instruction(&Instruction::Try(self.block_type(blockty)?));
                        frames.push(Frame::Try { results, delegate });
                    } else {
                        f.instruction(&self.instruction(op)?);
                        frames.push(Frame::Plain);
                    }
                }
                Operator::Loop { .. } | Operator::If { .. } => {
                    f.instruction(&self.instruction(op)?);
                    frames.push(Frame::Plain);
                }
                Operator::End => {
                    // The function's own `end` closes a wrapping `try` first.
                    while let Some(frame) = frames.pop() {
                        match frame {
                            Frame::Plain => {
                                f.instruction(&Instruction::End);
                            }
                            Frame::Try {
                                delegate: Some(d), ..
                            } => {
                                f.instruction(&Instruction::Delegate(d));
                            }
                            Frame::Try { results, .. } => {
                                // Often a throw just before the handlers, so
                                // that they run after the body's calls.
                                if self.rng.ratio(1, 2) {
                                    self.maybe_throw(&mut f, true)?;
                                }
                                self.close_try(&mut f, &results)?;
                            }
                        }
                        if !reader.eof() || frames.is_empty() {
                            break;
                        }
                    }
                }
                _ => {
                    f.instruction(&self.instruction(op)?);
                }
            }
            if !frames.is_empty() && self.rng.below(self.plan.throw_one_in) == 0 {
                self.maybe_throw(&mut f, true)?;
            }
        }
        code.function(&f);
        Ok(())
    }
}

/// Adds legacy exception handling to a module from [`generate_for_v8`],
/// with choices drawn from `seed` (see the module doc).
fn add_legacy_exceptions(wasm: &[u8], seed: u64) -> Result<(Vec<u8>, Plan), String> {
    let info = read_info(wasm)?;
    let mut rng = Rng(seed ^ 0x6c65_6761_6379_6568);
    let plan = Plan::draw(&mut rng);
    let mut legacy = Legacy {
        info: &info,
        plan: plan.clone(),
        rng,
        input_types: 0,
        body: 0,
        tags_added: false,
        handlers: 0,
    };
    let mut module = wasm_encoder::Module::new();
    legacy
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| format!("re-encoding: {e}"))?;
    let out = module.finish();
    asyncify_tests::interface::validate(&out)?;
    Ok((out, plan))
}

/// Where a module has legacy `try`s and suspension points in them (calls to
/// imports, indirect calls, and calls to functions that reach those: what
/// the transform instruments with default options).
#[derive(Default, Clone, Copy)]
struct Shape {
    has_try: bool,
    in_body: bool,
    in_catch: bool,
    in_catch_all: bool,
    /// A `catch_all` handler with a suspension point that rethrows.
    catch_all_rethrow: bool,
}

impl Shape {
    fn in_handler(&self) -> bool {
        self.in_catch || self.in_catch_all
    }
}

fn shape(wasm: &[u8]) -> Result<Shape, String> {
    let err = |e: wasmparser::BinaryReaderError| e.to_string();
    let mut imported = 0;
    let mut bodies = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(err)? {
            Payload::ImportSection(s) => {
                for import in s.into_imports() {
                    if let TypeRef::Func(_) = import.map_err(err)?.ty {
                        imported += 1;
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut ops = Vec::new();
                let mut reader = body.get_operators_reader().map_err(err)?;
                while !reader.eof() {
                    ops.push(reader.read().map_err(err)?);
                }
                bodies.push(ops);
            }
            _ => {}
        }
    }
    let indirect = |op: &Operator| {
        matches!(
            op,
            Operator::CallIndirect { .. }
                | Operator::CallRef { .. }
                | Operator::ReturnCallIndirect { .. }
                | Operator::ReturnCallRef { .. }
        )
    };
    let callee = |op: &Operator| match op {
        Operator::Call { function_index } | Operator::ReturnCall { function_index } => {
            Some(*function_index)
        }
        _ => None,
    };
    let mut may_suspend: Vec<bool> = (0..imported).map(|_| true).collect();
    may_suspend.extend(bodies.iter().map(|ops| ops.iter().any(indirect)));
    loop {
        let mut changed = false;
        for (i, ops) in bodies.iter().enumerate() {
            let f = imported + i;
            if !may_suspend[f]
                && ops
                    .iter()
                    .any(|op| callee(op).is_some_and(|c| may_suspend[c as usize]))
            {
                may_suspend[f] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Region {
        Body,
        Catch,
        CatchAll,
    }
    struct TryFrame {
        region: Region,
        suspends: bool,
        rethrows: bool,
    }
    struct Open {
        /// Whether the frame was entered by reachable code.
        live: bool,
        /// `None`: not a `try`.
        try_frame: Option<TryFrame>,
    }
    let close_handler = |frame: &TryFrame, s: &mut Shape| {
        if frame.region == Region::CatchAll && frame.suspends && frame.rethrows {
            s.catch_all_rethrow = true;
        }
    };
    let mut s = Shape::default();
    for ops in &bodies {
        let mut frames: Vec<Open> = Vec::new();
        // Code after an unconditional branch, up to the end of its arm, is
        // dead: the transform leaves it alone, and so does the count.
        let mut dead = false;
        for op in ops {
            let suspends = indirect(op) || callee(op).is_some_and(|c| may_suspend[c as usize]);
            if suspends && !dead {
                // The innermost handler around the call, if any, else
                // whether a `try` body is.
                let mut handler = None;
                let mut body = false;
                for frame in frames.iter_mut().rev().filter_map(|f| f.try_frame.as_mut()) {
                    if frame.region == Region::Body {
                        body = true;
                    } else {
                        frame.suspends = true;
                        handler.get_or_insert(frame.region);
                    }
                }
                match handler {
                    Some(Region::Catch) => s.in_catch = true,
                    Some(_) => s.in_catch_all = true,
                    None => s.in_body |= body,
                }
            }
            match op {
                Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => frames
                    .push(Open {
                        live: !dead,
                        try_frame: None,
                    }),
                Operator::Try { .. } => {
                    s.has_try = true;
                    frames.push(Open {
                        live: !dead,
                        try_frame: Some(TryFrame {
                            region: Region::Body,
                            suspends: false,
                            rethrows: false,
                        }),
                    });
                }
                Operator::Else => dead = !frames.last().is_some_and(|f| f.live),
                Operator::Catch { .. } | Operator::CatchAll => {
                    let Some(open) = frames.last_mut() else {
                        continue;
                    };
                    dead = !open.live;
                    if let Some(frame) = &mut open.try_frame {
                        close_handler(frame, &mut s);
                        frame.region = if matches!(op, Operator::CatchAll) {
                            Region::CatchAll
                        } else {
                            Region::Catch
                        };
                        frame.suspends = false;
                        frame.rethrows = false;
                    }
                }
                Operator::Rethrow { relative_depth } => {
                    let at = frames.len().checked_sub(1 + *relative_depth as usize);
                    if let Some(frame) = at
                        .and_then(|i| frames.get_mut(i))
                        .and_then(|f| f.try_frame.as_mut())
                    {
                        frame.rethrows |= !dead;
                    }
                    dead = true;
                }
                Operator::End | Operator::Delegate { .. } => {
                    if let Some(open) = frames.pop() {
                        if let Some(frame) = &open.try_frame {
                            close_handler(frame, &mut s);
                        }
                        dead = !open.live;
                    }
                }
                Operator::Br { .. }
                | Operator::BrTable { .. }
                | Operator::Return
                | Operator::Unreachable
                | Operator::Throw { .. }
                | Operator::ThrowRef
                | Operator::ReturnCall { .. }
                | Operator::ReturnCallIndirect { .. }
                | Operator::ReturnCallRef { .. } => dead = true,
                _ => {}
            }
        }
    }
    Ok(s)
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out + "\""
}

fn type_name(ty: &ValType) -> String {
    match ty {
        ValType::I32 => "i32".into(),
        ValType::I64 => "i64".into(),
        ValType::F32 => "f32".into(),
        ValType::F64 => "f64".into(),
        ValType::V128 => "v128".into(),
        ValType::Ref(r) if r.is_func_ref() => "funcref".into(),
        ValType::Ref(r) if r.is_extern_ref() => "externref".into(),
        ValType::Ref(_) => "ref".into(),
    }
}

fn json_types(types: &[ValType]) -> String {
    let names: Vec<String> = types.iter().map(|t| json_str(&type_name(t))).collect();
    format!("[{}]", names.join(","))
}

fn json_val(v: &Val) -> String {
    let (ty, text) = match v {
        Val::I32(x) => ("i32", x.to_string()),
        Val::I64(x) => ("i64", x.to_string()),
        Val::F32(bits) => ("f32", bits.to_string()),
        Val::F64(bits) => ("f64", bits.to_string()),
        Val::FuncRef(_) => ("funcref", "null".into()),
        Val::ExternRef(_) => ("externref", "null".into()),
        other => ("unsupported", format!("{other:?}")),
    };
    format!("[{},{}]", json_str(ty), json_str(&text))
}

/// One case ready for Node.
struct Prepared {
    id: usize,
    seed: u64,
    original: Vec<u8>,
    description: String,
    shape: Shape,
    json: String,
}

/// What became of one seed before Node.
enum Prepare {
    Ready(Prepared),
    /// Refused by the transform: the reason, and the module's shape.
    Skipped(String, Shape),
    /// Not a case (wasm-smith failed, or nothing to call).
    Unusable,
    /// The transform failed otherwise: a failure.
    Failed(String),
}

fn prepare(id: usize, seed: u64, dir: &Path) -> Prepare {
    let mut rng = Rng(seed);
    let len = 1000 + rng.below(19_001) as usize;
    let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    let case = match generate_for_v8(&bytes) {
        Ok(case) if !case.calls.is_empty() => case,
        _ => return Prepare::Unusable,
    };
    let (original, plan) = match add_legacy_exceptions(&case.wasm, seed) {
        Ok(x) => x,
        Err(e) => {
            return Prepare::Failed(format!(
                "seed {seed}: adding legacy exceptions failed: {e}\n{}",
                print_wasm(&case.wasm)
            ))
        }
    };
    // Hand-shaped legacy `try`s beside the rewritten code (see `shapes`):
    // locals read only in handlers, throws from below suspension points.
    let shapes_seed = next_seed(seed ^ 0x5348_4150_4553);
    // V8 11.3 runs no GC without a flag: exception shapes only.
    let kinds = Kinds::from_env(Kinds {
        eh: true,
        gc: false,
    });
    let (original, shapes, calls) =
        match shapes::splice(&original, shapes_seed, Flavor::Legacy, kinds) {
            Ok(s) => {
                let calls = with_entry_calls(case.calls.clone(), &s.entries, shapes_seed);
                (s.wasm, s.description, calls)
            }
            Err(e) => {
                return Prepare::Failed(format!(
                    "seed {seed}: adding the shapes failed: {e}\n{}",
                    print_wasm(&original)
                ))
            }
        };
    let shape = match shape(&original) {
        Ok(s) => s,
        Err(e) => return Prepare::Failed(format!("seed {seed}: scanning: {e}")),
    };
    let instrumented = match asyncify_transform::instrument(&original, &Options::default()) {
        Ok(out) => out.wasm,
        Err(Error::Unsupported { detail, .. }) => return Prepare::Skipped(detail, shape),
        Err(e) => {
            return Prepare::Failed(format!(
                "seed {seed}: the transform failed: {e}\noriginal module:\n{}",
                print_wasm(&original)
            ))
        }
    };
    let write = |suffix: &str, bytes: &[u8]| {
        let path = dir.join(format!("{id}.{suffix}.wasm"));
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
    };
    write("orig", &original);
    write("inst", &instrumented);
    let info = read_info(&original).expect("the module was read before");
    let imports: Vec<String> = info
        .imports
        .iter()
        .map(|(m, n, t)| {
            let ty = &info.types[*t as usize];
            format!(
                "[{},{},{},{}]",
                json_str(m),
                json_str(n),
                json_types(ty.params()),
                json_types(ty.results())
            )
        })
        .collect();
    let tags: Vec<String> = plan.tags.iter().map(|t| json_types(t)).collect();
    let json_calls: Vec<String> = calls
        .iter()
        .map(|(export, args)| {
            let args: Vec<String> = args.iter().map(json_val).collect();
            format!("[{},[{}]]", json_str(export), args.join(","))
        })
        .collect();
    let pattern: String = case
        .pattern
        .iter()
        .map(|&b| if b { 'S' } else { '-' })
        .collect();
    let json = format!(
        "{{\"id\":{id},\"imports\":[{}],\"tags\":[{}],\"calls\":[{}],\"pattern\":{}}}",
        imports.join(","),
        tags.join(","),
        json_calls.join(","),
        json_str(&pattern)
    );
    let shown_calls: Vec<String> = calls.iter().map(|(e, a)| format!("{e}{a:?}")).collect();
    let description = format!(
        "seed {seed} (LEGACY_EH_SEED={seed} PROPTEST_CASES=1)\nfeatures [{} {} {}] ({} tables)\n\
         calls {}\npattern {pattern}",
        case.features,
        plan.describe(),
        shapes,
        info.tables,
        shown_calls.join(" "),
    );
    Prepare::Ready(Prepared {
        id,
        seed,
        original,
        description,
        shape,
        json,
    })
}

/// The `node` executable on `PATH`.
fn find_node() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`node` is not on PATH: the legacy-exceptions test runs its modules under \
                 Node 20 or later (V8 runs legacy exception handling, wasmtime does not); \
                 install Node.js"
            )
        })
}

/// What Node said about one case.
#[derive(Default)]
struct NodeResult {
    done: bool,
    ok: bool,
    unusable: Option<String>,
    diffs: Vec<String>,
    /// Unwinds under Never, Always, the pattern.
    unwinds: [u64; 3],
    calls: u64,
    escaped: u64,
    trapped: u64,
    handler_calls: u64,
    handler_suspends: u64,
}

/// Runs `drive.mjs` over `dir`, returning its verdicts by case id, and the
/// id of the case it was running if it timed out or crashed, with why.
fn run_node(dir: &Path, cases: usize) -> (Vec<NodeResult>, Option<(usize, String)>) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/node/drive.mjs");
    let mut child = Command::new(find_node())
        .arg(script)
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node: {e}"));
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > NODE_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                timed_out = true;
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for node: {e}"),
        }
    };
    let lines = reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    let mut results: Vec<NodeResult> = (0..cases).map(|_| NodeResult::default()).collect();
    let mut running: Option<usize> = None;
    for line in &lines {
        let mut words = line.splitn(3, ' ');
        let (Some(kind), Some(id)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(r) = id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) else {
            continue;
        };
        let rest = words.next().unwrap_or("");
        match kind {
            "start" => running = id.parse().ok(),
            "diff" => r.diffs.push(rest.to_string()),
            "unusable" => {
                r.done = true;
                r.unusable = Some(rest.to_string());
            }
            "case" => {
                let f: Vec<&str> = rest.split(' ').collect();
                let n = |i: usize| f.get(i).and_then(|w| w.parse().ok()).unwrap_or(0);
                r.done = true;
                r.ok = f.first() == Some(&"ok");
                r.unwinds = [n(1), n(2), n(3)];
                r.calls = n(4);
                r.escaped = n(5);
                r.trapped = n(6);
                r.handler_calls = n(7);
                r.handler_suspends = n(8);
            }
            _ => {}
        }
    }
    if !stderr.trim().is_empty() {
        println!("node's stderr:\n{stderr}");
    }
    let stopped = running.filter(|&i| timed_out || !results[i].done);
    let why = if timed_out {
        format!("node did not finish within {NODE_TIMEOUT:?}")
    } else {
        format!("node stopped ({status:?}) in this case:\n{stderr}")
    };
    if status.is_some_and(|s| !s.success()) && stopped.is_none() {
        panic!("node failed ({status:?}):\n{stderr}");
    }
    (results, stopped.map(|i| (i, why)))
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v:?}: {e}")),
    )
}

#[test]
fn legacy_exceptions_under_node() {
    let start = Instant::now();
    let cases = env_u64("PROPTEST_CASES").unwrap_or(DEFAULT_CASES.into()) as usize;
    let first_seed = env_u64("LEGACY_EH_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |d| d.as_nanos() as u64)
    });
    println!("legacy exceptions under node: {cases} cases from LEGACY_EH_SEED={first_seed}");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("legacy_exceptions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {dir:?}: {e}"));

    let mut ready = Vec::new();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_reasons: Vec<String> = Vec::new();
    let mut skipped_shapes = Vec::new();
    let mut unusable = 0;
    let mut failures = Vec::new();
    let mut seed = first_seed;
    for id in 0..cases {
        match prepare(id, seed, &dir) {
            Prepare::Ready(p) => ready.push(p),
            Prepare::Skipped(why, shape) => {
                if first_reasons.len() < 3 {
                    first_reasons.push(format!("seed {seed}: {why}"));
                }
                *skipped.entry(skip_kind(&why)).or_default() += 1;
                skipped_shapes.push(shape);
            }
            Prepare::Unusable => unusable += 1,
            Prepare::Failed(report) => failures.push((usize::MAX, seed, report)),
        }
        seed = next_seed(seed);
    }
    let prepared_in = start.elapsed();
    let entries: Vec<&str> = ready.iter().map(|p| p.json.as_str()).collect();
    std::fs::write(
        dir.join("cases.json"),
        format!("{{\"cases\":[\n{}\n]}}\n", entries.join(",\n")),
    )
    .expect("writing cases.json");

    let node_start = Instant::now();
    let (results, stopped) = run_node(&dir, cases);
    let node_time = node_start.elapsed();

    let mut passed = 0;
    let mut suspended = 0;
    let mut v8_rejected = Vec::new();
    let (mut calls, mut escaped, mut trapped) = (0, 0, 0);
    let (mut handler_ran, mut handler_suspended) = (0, 0);
    let mut shapes = Vec::new();
    for p in &ready {
        let r = &results[p.id];
        if let Some((_, why)) = stopped.as_ref().filter(|(i, _)| *i == p.id) {
            failures.push((
                p.original.len(),
                p.seed,
                format!(
                    "{}\n  - {why}\n\noriginal module:\n{}",
                    p.description,
                    print_wasm(&p.original)
                ),
            ));
        } else if let Some(why) = &r.unusable {
            v8_rejected.push(format!("seed {}: {why}", p.seed));
        } else if !r.done {
            failures.push((
                p.original.len(),
                p.seed,
                format!(
                    "{}\n  - node gave no verdict (it stopped before)",
                    p.description
                ),
            ));
        } else if !r.ok {
            failures.push((
                p.original.len(),
                p.seed,
                format!(
                    "{}\n{}\n\noriginal module:\n{}",
                    p.description,
                    r.diffs
                        .iter()
                        .map(|d| format!("  - {d}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    print_wasm(&p.original)
                ),
            ));
        } else {
            passed += 1;
            shapes.push(p.shape);
            suspended += u64::from(r.unwinds.iter().any(|&u| u > 0));
            calls += r.calls;
            escaped += r.escaped;
            trapped += r.trapped;
            handler_ran += u64::from(r.handler_calls > 0);
            handler_suspended += u64::from(r.handler_suspends > 0);
        }
    }

    let skips: u64 = skipped.values().sum();
    let tried = passed + skips + failures.len() as u64;
    let share = skips as f64 / tried.max(1) as f64;
    println!(
        "{passed} passed ({suspended} suspended at least once), {skips} skipped ({:.1}% of \
         {tried}), {unusable} unusable, {} rejected by V8, {} failing; prepared in {:.1} s, \
         node took {:.1} s, {:.1} s in all",
        100.0 * share,
        v8_rejected.len(),
        failures.len(),
        prepared_in.as_secs_f64(),
        node_time.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    for (why, n) in &skipped {
        println!("  skipped {n}x: {why}");
    }
    for why in &first_reasons {
        println!("  first skips: {why}");
    }
    for why in v8_rejected.iter().take(3) {
        println!("  rejected by V8: {why}");
    }
    let count = |shapes: &[Shape], f: fn(&Shape) -> bool| shapes.iter().filter(|s| f(s)).count();
    for (what, list) in [("passed", &shapes), ("skipped", &skipped_shapes)] {
        println!(
            "  {what}: {} modules; with a legacy try {}; with a suspension point in a handler {} \
             (catch {}, catch_all {}, catch_all that also rethrows {}); only in try bodies {}",
            list.len(),
            count(list, |s| s.has_try),
            count(list, Shape::in_handler),
            count(list, |s| s.in_catch),
            count(list, |s| s.in_catch_all),
            count(list, |s| s.catch_all_rethrow),
            count(list, |s| s.in_body && !s.in_handler()),
        );
    }
    println!(
        "  passed cases: {calls} export calls, {escaped} ended with an exception escaping, \
         {trapped} trapped; a handler with suspension points ran in {handler_ran} cases and \
         suspended in {handler_suspended}"
    );

    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("the modules are in {}", dir.display());
        failures.sort_by_key(|(size, _, _)| *size);
        println!("failing cases, smallest first:");
        for (_, seed, report) in failures.iter().take(20) {
            let first_diff = report.lines().find(|l| l.starts_with("  - "));
            println!("  seed {seed}: {}", first_diff.unwrap_or("").trim());
        }
        panic!(
            "{} failing cases; the smallest:\n{}",
            failures.len(),
            failures[0].2
        );
    }
    let drawn = tried + unusable + v8_rejected.len() as u64;
    assert!(passed > 0, "no case ran ({drawn} drawn)");
    assert!(
        tried < 20 || share <= MAX_SKIP_SHARE,
        "{:.1}% of cases skipped as unsupported: the generator tests too little",
        100.0 * share
    );
    assert!(
        drawn < 20 || unusable as f64 <= MAX_UNUSABLE_SHARE * drawn as f64,
        "{unusable} of {drawn} drawn cases were unusable: the generator tests too little"
    );
    assert!(
        passed < 20 || suspended as f64 >= MIN_SUSPENDED_SHARE * passed as f64,
        "only {suspended} of {passed} passed cases suspended: suspension is not being exercised"
    );
    assert!(
        v8_rejected.len() as u64 * 10 <= tried.max(10),
        "V8 rejected {} original modules: the generator makes modules Node 20 cannot run",
        v8_rejected.len()
    );
}
