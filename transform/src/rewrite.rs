//! Rewriting: emit the body of one function, instrumented according to its
//! [`FunctionPlan`], or copied with indices remapped and asserts added.
//!
//! Shape of an instrumented function:
//!
//! ```text
//! if rewinding: pop the frame (saved locals, point index)
//! block $unwind
//!   block $body (result R)
//!     ;; each body that contains items starts with a dispatch:
//!     block $d_n … block $d_1
//!       if rewinding: br_table on the point index to the block before the item
//!       <code before item 1, values left on the stack moved to locals>
//!     end $d_1
//!     <item 1: a call that may suspend, or a construct containing one>
//!     …
//!   end
//!   return
//! end
//! push the frame; return zeros
//! ```
//! After a call that may suspend, `state == unwinding` branches to `$unwind`.

use std::borrow::Cow;
use std::collections::HashMap;

use wasm_encoder::reencode::{Error as ReencodeError, Reencode};
use wasm_encoder::{BlockType, Encode, Instruction, MemArg, MemArgTarget};
use wasmparser::{Operator, OperatorsReader, ValType};

use crate::plan::{nullable, value_size, Construct, FunctionPlan, Handler, Item, Recorder};
use crate::Error;

/// A leading item of a body that spans at least this many points is
/// dispatched to with a range test (about 7 bytes) instead of one table
/// entry (1-2 bytes) per point.
const RANGE_TEST_MIN_POINTS: u32 = 8;

/// Index remapping for functions and globals, used when the module's import
/// lists change.
#[derive(Clone)]
pub struct Remap {
    /// Per input function: its output index.
    pub funcs: Vec<u32>,
    /// Number of imported globals in the input; defined globals shift by `global_shift`.
    pub imported_globals: u32,
    pub global_shift: u32,
}

impl Remap {
    /// Maps a function index.
    pub fn func(&self, f: u32) -> u32 {
        self.funcs.get(f as usize).copied().unwrap_or(f)
    }
    /// Maps a global index.
    pub fn global(&self, g: u32) -> u32 {
        if g >= self.imported_globals {
            g + self.global_shift
        } else {
            g
        }
    }
    /// Whether any index changes.
    pub fn is_identity(&self) -> bool {
        self.global_shift == 0 && self.funcs.iter().enumerate().all(|(i, &f)| i as u32 == f)
    }
}

impl Reencode for Remap {
    type Error = std::convert::Infallible;
    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError<Self::Error>> {
        Ok(self.func(func))
    }
    fn global_index(&mut self, global: u32) -> Result<u32, ReencodeError<Self::Error>> {
        Ok(self.global(global))
    }
}

/// Module-wide facts the emitter needs.
pub struct EmitContext {
    pub remap: Remap,
    pub state_global: u32,
    pub data_global: u32,
    /// Memory holding the buffer, and whether it is 64-bit.
    pub memory: u32,
    pub memory64: bool,
    pub asserts: bool,
    /// Per input function: calls to it skip the asserts check (runtime imports).
    pub no_assert_callee: Vec<bool>,
    /// The generated functions that take a frame off the buffer (`cur -=
    /// size`, returns the frame) and put one on (`cur += size`, returns the
    /// frame, or all ones when it does not fit below `end`).
    pub frame_pop: u32,
    pub frame_push: u32,
    /// Whether a runtime import (`asyncify.*`) is in a table or referenced by
    /// `ref.func`, so an indirect call may change the state to rewinding.
    pub runtime_import_referenced: bool,
    /// Output type index of `[] -> R` for multi-value function results, by input type index.
    pub multi_result_types: HashMap<u32, u32>,
    /// Where saved references of each (nullable) type are kept while suspended.
    pub ref_tables: HashMap<ValType, RefTable>,
    /// Set when some function makes a tail call that may suspend.
    pub tail: Option<TailCalls>,
    /// A tag the transform adds (no payload), thrown to re-enter a legacy
    /// `catch_all` handler when rewinding; set when some handler needs it.
    pub reenter_tag: Option<u32>,
    /// Imports replaced by their wrappers in `ref.func` (input index to
    /// output index), see [`crate::plan::wrapper_plan`].
    pub ref_wrappers: HashMap<u32, u32>,
    /// The generated function that traps when an unwind finds a rethrowing
    /// `catch_all` handler holding a host exception (see
    /// [`crate::plan::Recorder`]); set when some handler needs it.
    pub foreign_exception_trap: Option<u32>,
}

/// Support for tail calls that may suspend. Every frame then ends with the id
/// of the function that wrote it. A function that tail-called on is gone from
/// the wasm stack when its callee unwinds, so when a rewind enters it and the
/// frame on top is not its own, it tail-calls a trampoline that calls the
/// frame's owner (with placeholder arguments: the owner restores its locals).
#[derive(Debug, Clone, Default)]
pub struct TailCalls {
    /// Frame id of each instrumented function, by input function index.
    pub ids: HashMap<u32, u32>,
    /// Output function index of the trampoline for each result type list.
    pub trampolines: HashMap<Vec<ValType>, u32>,
    /// Output function index of each wrapped import (see
    /// [`crate::plan::wrapper_plan`]), by input index.
    pub wrappers: HashMap<u32, u32>,
}

/// A table that holds saved references of one type, with its slot allocator:
/// slots are handed out upward from `next` and all given back when `live`
/// drops to zero (frames are restored last-in first-out, and stacks that are
/// interleaved by a guest scheduler only delay the reset).
#[derive(Debug, Clone, Copy)]
pub struct RefTable {
    pub table: u32,
    pub next_global: u32,
    pub live_global: u32,
}

/// How a function is emitted.
pub enum Mode<'p> {
    /// Instrumented with this plan.
    Instrument(&'p FunctionPlan),
    /// Copied with remapped indices; `asserts` adds state checks after calls.
    Copy { asserts: bool },
}

struct EFrame<'p> {
    out_pos: u32,
    construct: Option<(usize, bool)>, // (item op, is if) for interesting constructs
    after: Option<Item>,
    /// For a legacy `try`: how many of its handlers have started.
    handlers_seen: usize,
    /// For a legacy `try` whose body is wrapped in a [`Recorder`]'s `try`:
    /// that `try`'s output position while the body is open, and the recorder.
    recorder: Option<(u32, &'p Recorder)>,
}

struct Emitter<'c, 'p> {
    cx: &'c EmitContext,
    plan: Option<&'p FunctionPlan>,
    sink: Vec<u8>,
    out_len: u32,
    frames: Vec<EFrame<'p>>,
    /// Extra locals added in this pass (pool temps), beyond the plan's.
    extra_locals: Vec<ValType>,
    first_extra: u32,
    pool: HashMap<ValType, Vec<u32>>,
    /// Per open body with items: (items, cursor, positions of dispatch blocks by item).
    bodies: Vec<BodyState<'p>>,
    asserts: bool,
    func_label: String,
    /// Declared non-nullable reference locals, now nullable (sorted).
    non_null: Vec<u32>,
    /// The function's result types (the trampoline key).
    results_key: Vec<ValType>,
    /// Per point: output position of the block its unwind branches to.
    unwind_targets: Vec<u32>,
    /// Dispatch targets handed from a body to the construct that starts it
    /// (see `begin_body`).
    inherited: Vec<(u32, u32, u32)>,
}

struct BodyState<'p> {
    items: &'p [Item],
    cursor: usize,
    /// Input frame depth (frames.len()) that owns this body.
    frame_depth: usize,
    /// For a body with one item: the output length before its dispatch block
    /// opened and after the dispatch. If the item comes right after the
    /// dispatch, there is nothing to skip and the dispatch is taken out.
    single_dispatch: Option<(usize, usize)>,
    /// The first item is a construct that took over this body's dispatch.
    merged_first: bool,
}

/// Emits the function body (locals and code) of one function.
pub fn emit_function(
    cx: &EmitContext,
    body: &wasmparser::FunctionBody<'_>,
    results: &[ValType],
    type_index: u32,
    mode: Mode<'_>,
    func_label: String,
) -> Result<wasm_encoder::Function, Error> {
    let mut remap = cx.remap.clone();
    let (plan, asserts) = match mode {
        Mode::Instrument(p) => (Some(p), cx.asserts),
        Mode::Copy { asserts } => (None, asserts),
    };
    // In an instrumented function, non-nullable reference locals are declared
    // nullable (the rewrite's blocks hide their initialisation from the
    // validator) and every read of them asserts non-null again.
    let mut declared: Vec<(u32, ValType)> = Vec::new();
    for l in body.get_locals_reader()? {
        declared.push(l?);
    }
    let declared_count: u32 = declared.iter().map(|(n, _)| n).sum();
    let mut non_null = Vec::new();
    let mut locals: Vec<(u32, wasm_encoder::ValType)> = Vec::new();
    let mut next = plan.map_or(0, |p| p.input_locals - declared_count);
    for (n, t) in declared {
        let t = if plan.is_some() && t != nullable(t) {
            non_null.extend(next..next + n);
            nullable(t)
        } else {
            t
        };
        next += n;
        locals.push((n, remap.val_type(t)?));
    }
    let first_extra = match plan {
        Some(p) => p.local_types.len() as u32,
        None => 0,
    };
    let mut em = Emitter {
        cx,
        plan,
        sink: Vec::new(),
        out_len: 0,
        frames: Vec::new(),
        extra_locals: Vec::new(),
        first_extra,
        pool: HashMap::new(),
        bodies: Vec::new(),
        asserts,
        func_label,
        non_null,
        results_key: results.to_vec(),
        unwind_targets: Vec::new(),
        inherited: Vec::new(),
    };
    let ops = body.get_operators_reader()?;
    em.run(ops, results, type_index)?;
    if let Some(p) = plan {
        for &ty in &p.local_types[p.input_locals as usize..] {
            locals.push((1, val_type(ty)));
        }
        for &ty in &em.extra_locals {
            locals.push((1, val_type(ty)));
        }
    }
    let mut f = wasm_encoder::Function::new(locals);
    f.raw(em.sink.iter().copied());
    Ok(f)
}

/// Converts a wasmparser value type (no index changes: types are never renumbered).
pub fn val_type(t: ValType) -> wasm_encoder::ValType {
    wasm_encoder::ValType::try_from(t).expect("value type converts")
}

impl<'c, 'p> Emitter<'c, 'p> {
    /// Pushes whether the module is rewinding, where the state can only be
    /// normal (0) or rewinding (2): on entry and wherever normal code runs
    /// (after a call, an unwinding state branches out at once). So the state
    /// itself is the answer.
    fn rewinding_test(&mut self) {
        self.ins(Instruction::GlobalGet(self.cx.state_global));
    }

    fn ins(&mut self, i: Instruction<'_>) {
        i.encode(&mut self.sink);
    }

    fn open(&mut self, i: Instruction<'_>) -> u32 {
        self.ins(i);
        self.out_len += 1;
        self.out_len - 1
    }

    fn close(&mut self) {
        self.ins(Instruction::End);
        self.out_len -= 1;
    }

    fn depth_to(&self, pos: u32) -> u32 {
        self.out_len - 1 - pos
    }

    /// Output depth for an input relative depth `d`.
    fn map_depth(&self, d: u32) -> u32 {
        let target = &self.frames[self.frames.len() - 1 - d as usize];
        self.depth_to(target.out_pos)
    }

    fn mem_arg(&self, offset: u64, ty: ValType) -> MemArg {
        let align = match value_size(ty) {
            16 => 4,
            8 => 3,
            _ => 2,
        };
        MemArg {
            offset,
            align,
            target: MemArgTarget::Memory(self.cx.memory),
            ordering: None,
        }
    }

    fn ptr_const(&mut self, v: u64) {
        if self.cx.memory64 {
            self.ins(Instruction::I64Const(v as i64));
        } else {
            self.ins(Instruction::I32Const(v as i32));
        }
    }

    fn ptr_type(&self) -> ValType {
        if self.cx.memory64 {
            ValType::I64
        } else {
            ValType::I32
        }
    }

    fn load_header(&mut self, field: u64) {
        let t = self.ptr_type();
        let m = self.mem_arg(field, t);
        self.ins(Instruction::GlobalGet(self.cx.data_global));
        self.ins(if self.cx.memory64 {
            Instruction::I64Load(m)
        } else {
            Instruction::I32Load(m)
        });
    }

    fn store(&mut self, ty: ValType, offset: u64) {
        let m = self.mem_arg(offset, ty);
        self.ins(match ty {
            ValType::I32 => Instruction::I32Store(m),
            ValType::I64 => Instruction::I64Store(m),
            ValType::F32 => Instruction::F32Store(m),
            ValType::F64 => Instruction::F64Store(m),
            ValType::V128 => Instruction::V128Store(m),
            ValType::Ref(_) => unreachable!("reference locals are never saved"),
        });
    }

    fn load(&mut self, ty: ValType, offset: u64) {
        let m = self.mem_arg(offset, ty);
        self.ins(match ty {
            ValType::I32 => Instruction::I32Load(m),
            ValType::I64 => Instruction::I64Load(m),
            ValType::F32 => Instruction::F32Load(m),
            ValType::F64 => Instruction::F64Load(m),
            ValType::V128 => Instruction::V128Load(m),
            ValType::Ref(_) => unreachable!("reference locals are never saved"),
        });
    }

    fn zero(&mut self, ty: ValType) -> Result<(), Error> {
        match zero_instruction(ty, &self.cx.remap) {
            Some(i) => {
                self.ins(i);
                Ok(())
            }
            None => Err(Error::Unsupported {
                function: self.func_label.clone(),
                instruction: "return".into(),
                detail: format!("the function returns a non-nullable reference ({ty}), which cannot be given a placeholder value while unwinding"),
            }),
        }
    }

    /// A pool temp local for each of `types` (nullable for references).
    fn temps(&mut self, types: &[ValType]) -> Vec<u32> {
        let mut out = Vec::with_capacity(types.len());
        for (i, &t) in types.iter().enumerate() {
            let t = nullable(t);
            // The n-th value of this type in the group takes the n-th temp.
            let n = types[..i].iter().filter(|&&u| nullable(u) == t).count();
            let list = self.pool.entry(t).or_default();
            if n == list.len() {
                let l = self.first_extra + self.extra_locals.len() as u32;
                self.extra_locals.push(t);
                list.push(l);
            }
            out.push(list[n]);
        }
        out
    }

    /// Pops `types` (top of stack last) into `locals`.
    fn spill(&mut self, locals: &[u32]) {
        for &l in locals.iter().rev() {
            self.ins(Instruction::LocalSet(l));
        }
    }

    /// Pushes `locals`, restoring non-nullable references.
    fn unspill(&mut self, locals: &[u32], types: &[ValType]) {
        for (&l, &t) in locals.iter().zip(types) {
            self.ins(Instruction::LocalGet(l));
            if let ValType::Ref(r) = t {
                if !r.is_nullable() {
                    self.ins(Instruction::RefAsNonNull);
                }
            }
        }
    }

    /// Starts a body: if it has items, spills its parameters, opens the
    /// dispatch blocks and emits the rewind dispatch. `start_op` is the
    /// operator index where the body's code starts.
    ///
    /// When the first item is a block or loop right at the start, the
    /// dispatch moves into that construct's body, which then also branches
    /// out to this body's later items: normal code runs one rewinding test
    /// instead of one per nesting level (a `switch` nests a block per case).
    ///
    /// `param_locals` are where the parameters go while dispatching (pool
    /// temps if `None`).
    fn begin_body(
        &mut self,
        items: &'p [Item],
        params: &[ValType],
        start_op: usize,
        param_locals: Option<&[u32]>,
    ) {
        let inherited = std::mem::take(&mut self.inherited);
        if items.is_empty() {
            debug_assert!(inherited.is_empty(), "a merged dispatch lost its targets");
            return;
        }
        let plan = self.plan.expect("instrumenting");
        let param_temps = match param_locals {
            Some(l) => l.to_vec(),
            None => self.temps(params),
        };
        self.spill(&param_temps);
        let n = items.len();
        let first = &items[0];
        let merge = params.is_empty()
            && first.op == start_op
            && first.inputs == 0
            && first.stranded.is_empty()
            && plan
                .constructs
                .get(&first.op)
                .is_some_and(|c| c.merges_dispatch);
        let before_dispatch = self.sink.len();
        let mut dblocks = vec![0; n];
        for j in (usize::from(merge)..n).rev() {
            dblocks[j] = self.open(Instruction::Block(BlockType::Empty));
        }
        // Dispatch targets: (first point, last point, output block position).
        let mut targets: Vec<(u32, u32, u32)> = items
            .iter()
            .zip(&dblocks)
            .skip(usize::from(merge))
            .map(|(item, &pos)| (item.lo, item.hi, pos))
            .collect();
        targets.extend(inherited);
        let single = !merge && targets.len() == 1;
        if merge {
            self.inherited = targets;
        } else {
            self.dispatch(&targets);
        }
        let single_dispatch = single.then_some((before_dispatch, self.sink.len()));
        self.unspill(&param_temps, params);
        self.bodies.push(BodyState {
            items,
            cursor: 0,
            frame_depth: self.frames.len(),
            single_dispatch,
            merged_first: merge,
        });
    }

    /// At the start of a legacy `try` body whose handlers hold points: when
    /// rewinding to a point in a handler, throw again so that the handler is
    /// entered (see [`Handler`]). Handler points come after the body's.
    fn reenter_handlers(&mut self, c: &'p Construct) -> Result<(), Error> {
        let plan = self.plan.expect("instrumenting");
        let with_points: Vec<(&'p Handler, u32, u32)> = c
            .handlers
            .iter()
            .filter_map(|h| h.points().map(|(lo, hi)| (h, lo, hi)))
            .collect();
        let Some(&(_, split, _)) = with_points.first() else {
            return Ok(());
        };
        let indexed = plan.records_point_index();
        self.rewinding_test();
        self.open(Instruction::If(BlockType::Empty));
        let body_points = !c.items.is_empty();
        if indexed && body_points {
            self.ins(Instruction::LocalGet(plan.index_local));
            self.ins(Instruction::I32Const(split as i32));
            self.ins(Instruction::I32GeU);
            self.open(Instruction::If(BlockType::Empty));
        }
        for (j, &(h, _, hi)) in with_points.iter().enumerate() {
            if indexed && j + 1 < with_points.len() {
                self.ins(Instruction::LocalGet(plan.index_local));
                self.ins(Instruction::I32Const((hi + 1) as i32));
                self.ins(Instruction::I32LtU);
                self.open(Instruction::If(BlockType::Empty));
                self.throw_again(h)?;
                self.close();
            } else {
                self.throw_again(h)?;
                break;
            }
        }
        if indexed && body_points {
            self.close();
        }
        self.close();
        Ok(())
    }

    /// Throws what handler `h` catches: its tag with the saved payload, or
    /// the transform's own tag for `catch_all`.
    fn throw_again(&mut self, h: &Handler) -> Result<(), Error> {
        match h.tag {
            Some(tag) => {
                self.unspill(&h.payload, &h.params);
                self.ins(Instruction::Throw(tag));
            }
            None => match &h.recorder {
                Some(r) => {
                    // The recorded exception (`which` is never 0 here: an
                    // unwind with an unknown exception traps).
                    for (j, t) in r.tags.iter().enumerate() {
                        self.ins(Instruction::LocalGet(r.which));
                        self.ins(Instruction::I32Const(j as i32 + 1));
                        self.ins(Instruction::I32Eq);
                        self.open(Instruction::If(BlockType::Empty));
                        self.unspill(&t.locals, &t.params);
                        self.ins(Instruction::Throw(t.tag));
                        self.close();
                    }
                    self.ins(Instruction::Unreachable);
                }
                None => {
                    let tag = self.cx.reenter_tag.ok_or_else(|| {
                        Error::Internal("no re-entry tag for a `catch_all` handler".into())
                    })?;
                    self.ins(Instruction::Throw(tag));
                }
            },
        }
        Ok(())
    }

    /// After a legacy `try` opens (and its re-entry check): if its
    /// `catch_all` handler has a [`Recorder`], opens the recorder's `try`
    /// around the body, with the same block type.
    fn open_recorder(
        &mut self,
        c: &'p Construct,
        op: &Operator<'_>,
        remap: &mut Remap,
    ) -> Result<(), Error> {
        let (Operator::Try { blockty }, Some(r)) =
            (op, c.handlers.iter().find_map(|h| h.recorder.as_ref()))
        else {
            return Ok(());
        };
        let bt = remap.block_type(*blockty)?;
        let pos = self.open(Instruction::Try(bt));
        self.frames.last_mut().expect("try frame").recorder = Some((pos, r));
        Ok(())
    }

    /// At the first handler of a legacy `try` with a [`Recorder`]: the
    /// recorder's clauses (each keeps the payload and the tag's number, then
    /// rethrows to the handlers) and its `end`.
    fn close_recorder(&mut self) -> Result<(), Error> {
        let Some((_, r)) = self.frames.last_mut().and_then(|f| f.recorder.take()) else {
            return Ok(());
        };
        for (j, t) in r.tags.iter().enumerate() {
            self.ins(Instruction::Catch(t.tag));
            self.spill(&t.locals);
            self.ins(Instruction::I32Const(j as i32 + 1));
            self.ins(Instruction::LocalSet(r.which));
            self.ins(Instruction::Rethrow(0));
        }
        self.ins(Instruction::CatchAll);
        self.ins(Instruction::I32Const(0));
        self.ins(Instruction::LocalSet(r.which));
        self.ins(Instruction::Rethrow(0));
        self.close();
        Ok(())
    }

    /// When rewinding, branches to the target whose points include the saved
    /// point index. `targets` are ordered by point and cover every point of
    /// the body (and of the bodies that merged their dispatch into it).
    fn dispatch(&mut self, targets: &[(u32, u32, u32)]) {
        let plan = self.plan.expect("instrumenting");
        let n = targets.len();
        self.rewinding_test();
        if n == 1 {
            // Rewinding into this body can only mean its one item.
            self.ins(Instruction::BrIf(self.depth_to(targets[0].2)));
            return;
        }
        self.open(Instruction::If(BlockType::Empty));
        // Leading targets that span many points (typically the nested blocks
        // of a `switch`, each holding every earlier case) get a range test
        // each; a table entry per point would make nested switches quadratic
        // in size.
        let mut first = 0;
        while first + 1 < n && targets[first].1 - targets[first].0 >= RANGE_TEST_MIN_POINTS {
            self.ins(Instruction::LocalGet(plan.index_local));
            self.ins(Instruction::I32Const((targets[first].1 + 1) as i32));
            self.ins(Instruction::I32LtU);
            self.ins(Instruction::BrIf(self.depth_to(targets[first].2)));
            first += 1;
        }
        // The last target (and any index out of range, which a correct frame
        // never holds) is the table's default, so the table only covers the
        // points of the targets before it.
        let last = self.depth_to(targets[n - 1].2);
        if first + 1 == n {
            self.ins(Instruction::Br(last));
        } else {
            let lo = targets[first].0;
            let hi = targets[n - 2].1;
            self.ins(Instruction::LocalGet(plan.index_local));
            if lo != 0 {
                self.ins(Instruction::I32Const(lo as i32));
                self.ins(Instruction::I32Sub);
            }
            let mut table = Vec::with_capacity((hi - lo + 1) as usize);
            let mut j = first;
            for k in lo..=hi {
                while targets[j].1 < k {
                    j += 1;
                }
                table.push(self.depth_to(targets[j].2));
            }
            self.ins(Instruction::BrTable(Cow::Owned(table), last));
        }
        self.close();
    }

    /// If operator `index` starts the next item of the current body, moves the
    /// frame's stack into locals and closes that item's dispatch block.
    fn enter_item(&mut self, index: usize) -> Option<&'p Item> {
        let body = self.bodies.last_mut()?;
        if body.frame_depth != self.frames.len() {
            return None;
        }
        let item = body.items.get(body.cursor)?;
        if item.op != index {
            return None;
        }
        body.cursor += 1;
        if body.merged_first && body.cursor == 1 {
            // Its dispatch moved into the item; nothing to move or close.
            return Some(item);
        }
        if let Some((before, after)) = body.single_dispatch {
            if self.sink.len() == after {
                // Nothing between the dispatch and the item (so nothing on
                // the stack to move either): rewinding or not, control goes
                // straight into the item.
                self.sink.truncate(before);
                self.out_len -= 1;
                return Some(item);
            }
        }
        let inputs = &item.stack[item.stack.len() - item.inputs..item.stack.len() - item.deferred];
        let mut input_temps = self.temps(inputs);
        if let Some(callee) = item.callee {
            // The table index must survive a suspension: it selects the
            // function that is called again when rewinding.
            *input_temps.last_mut().expect("table index input") = callee;
        }
        for &(position, local) in &item.kept_inputs {
            // A non-nullable reference: the value itself comes back on a
            // rewind (see `Item::kept_inputs`).
            input_temps[position] = local;
        }
        self.spill(&input_temps);
        self.spill(&item.stranded);
        self.close();
        self.unspill(&input_temps, inputs);
        Some(item)
    }

    /// After an item: put the stranded values back under its results.
    fn leave_item(&mut self, item: &Item, results: &[ValType]) {
        let results = results.to_vec();
        let results = &results[..];
        if item.stranded.is_empty() {
            return;
        }
        let result_temps = self.temps(results);
        self.spill(&result_temps);
        let stranded_types = item.stack[..item.stranded.len()].to_vec();
        self.unspill(&item.stranded.clone(), &stranded_types);
        self.unspill(&result_temps, results);
    }

    fn assert_check(&mut self) {
        self.ins(Instruction::GlobalGet(self.cx.state_global));
        self.open(Instruction::If(BlockType::Empty));
        self.ins(Instruction::Unreachable);
        self.close();
    }

    /// After the call of point `k`: when it is unwinding, branch to the code
    /// that saves the frame for `k`'s group.
    ///
    /// After a call returns, the state is normal or unwinding (a rewind ends
    /// inside the innermost call, before it returns), so testing it for
    /// non-zero is enough, unless the callee is a runtime import that may
    /// itself start a rewind (`exact`).
    fn unwind_check(&mut self, k: u32, exact: bool) {
        self.ins(Instruction::GlobalGet(self.cx.state_global));
        if exact {
            self.ins(Instruction::I32Const(1));
            self.ins(Instruction::I32Eq);
        }
        let plan = self.plan.expect("instrumenting");
        let whiches: Vec<u32> = plan
            .foreign_checks
            .iter()
            .filter(|&&(lo, hi, _)| (lo..=hi).contains(&k))
            .map(|&(_, _, which)| which)
            .collect();
        if whiches.is_empty() {
            self.ins(Instruction::BrIf(
                self.depth_to(self.unwind_targets[k as usize]),
            ));
            return;
        }
        // Inside `catch_all` handlers whose exception is rethrown: an unwind
        // while one holds an exception of a tag the module cannot name (from
        // the host) could not be resumed, so it traps (see `Recorder`).
        self.open(Instruction::If(BlockType::Empty));
        for which in whiches {
            self.ins(Instruction::LocalGet(which));
            self.ins(Instruction::I32Eqz);
            self.open(Instruction::If(BlockType::Empty));
            match self.cx.foreign_exception_trap {
                Some(trap) => self.ins(Instruction::Call(trap)),
                None => self.ins(Instruction::Unreachable),
            }
            self.close();
        }
        self.ins(Instruction::Br(
            self.depth_to(self.unwind_targets[k as usize]),
        ));
        self.close();
    }

    fn run(
        &mut self,
        mut ops: OperatorsReader<'_>,
        results: &[ValType],
        type_index: u32,
    ) -> Result<(), Error> {
        let mut remap = self.cx.remap.clone();
        let results = results.to_vec();
        let plan = self.plan;
        let frame_size = plan.map_or(0, |p| u64::from(p.frame_bytes(self.cx.tail.is_some())));
        if let Some(p) = plan {
            self.rewind_prologue(p, frame_size);
            // `$tail`, then one block per unwind group, the first innermost.
            let tail = self.open(Instruction::Block(BlockType::Empty));
            debug_assert_eq!(tail, 0);
            self.unwind_targets = vec![0; p.points.len()];
            for group in p.unwind_groups.iter().rev() {
                let pos = self.open(Instruction::Block(BlockType::Empty));
                for k in group.first..=group.last {
                    self.unwind_targets[k as usize] = pos;
                }
            }
            let body_ty = match results.len() {
                0 => BlockType::Empty,
                1 => BlockType::Result(val_type(results[0])),
                _ => BlockType::FunctionType(self.cx.multi_result_types[&type_index]),
            };
            let pos = self.open(Instruction::Block(body_ty));
            self.frames.push(EFrame {
                out_pos: pos,
                construct: None,
                after: None,
                handlers_seen: 0,
                recorder: None,
            });
            self.begin_body(&p.body_items, &[], 0, None);
        } else {
            // The function's own frame: `end` of the body closes it.
            self.frames.push(EFrame {
                out_pos: 0,
                construct: None,
                after: None,
                handlers_seen: 0,
                recorder: None,
            });
            self.out_len = 1;
        }
        let mut index = 0usize;
        let mut point = 0u32;
        let mut next_deferred = 0usize;
        let mut deferred: Vec<Operator<'_>> = Vec::new();
        while !ops.eof() {
            let op = ops.read()?;
            let this = index;
            index += 1;
            if let Some(p) = plan {
                if p.deferred_ops.get(next_deferred) == Some(&this) {
                    // Emitted with its call, after the dispatch block closes.
                    next_deferred += 1;
                    deferred.push(op);
                    continue;
                }
                if let Some(item) = self.enter_item(this) {
                    match &op {
                        Operator::Block { .. }
                        | Operator::Loop { .. }
                        | Operator::If { .. }
                        | Operator::Try { .. }
                        | Operator::TryTable { .. } => {
                            let c: &'p Construct = &p.constructs[&this];
                            let is_if = matches!(op, Operator::If { .. });
                            if is_if {
                                // The condition (computed again here when it is
                                // pure) is on the stack: when rewinding, the arm
                                // that holds the point is taken instead.
                                for op in deferred.drain(..) {
                                    self.plain(op, &mut remap)?;
                                }
                                self.ins(Instruction::LocalGet(p.index_local));
                                self.ins(Instruction::I32Const(c.split as i32));
                                self.ins(Instruction::I32LtU);
                                self.rewinding_test();
                                self.ins(Instruction::I32Eqz);
                                self.ins(Instruction::Select);
                            }
                            debug_assert!(deferred.is_empty(), "only calls and `if` defer inputs");
                            let pos = self.open_construct(&op, &mut remap)?;
                            self.frames.push(EFrame {
                                out_pos: pos,
                                construct: Some((this, is_if)),
                                after: Some(item.clone()),
                                handlers_seen: 0,
                                recorder: None,
                            });
                            self.reenter_handlers(c)?;
                            self.open_recorder(c, &op, &mut remap)?;
                            self.begin_body(&c.items, &c.params, this + 1, None);
                        }
                        _ => {
                            // A call that may suspend.
                            let k = point;
                            debug_assert_eq!(p.points[k as usize], this);
                            debug_assert!(deferred.len() >= item.deferred);
                            for op in deferred.drain(..) {
                                self.plain(op, &mut remap)?;
                            }
                            if p.records_point_index() {
                                self.ins(Instruction::I32Const(k as i32));
                                self.ins(Instruction::LocalSet(p.index_local));
                            }
                            // A tail call to an import is a plain call and a return.
                            let (op, tail) = match op {
                                Operator::ReturnCall { function_index } => {
                                    (Operator::Call { function_index }, true)
                                }
                                op => (op, false),
                            };
                            let exact = match op {
                                Operator::Call { function_index } => {
                                    self.cx.no_assert_callee[function_index as usize]
                                }
                                _ => self.cx.runtime_import_referenced,
                            };
                            let call = remap.instruction(op)?;
                            self.ins(call);
                            self.unwind_check(k, exact);
                            self.leave_item(item, &item.results);
                            if tail {
                                self.ins(Instruction::Return);
                            }
                            point += 1;
                        }
                    }
                    continue;
                }
            }
            if let Some(p) = plan {
                if let Ok(i) = p.tail_to_wrapper.binary_search_by_key(&this, |&(op, _)| op) {
                    let import = p.tail_to_wrapper[i].1;
                    let wrapper = self.cx.tail.as_ref().and_then(|t| t.wrappers.get(&import));
                    let wrapper = *wrapper.ok_or_else(|| {
                        Error::Internal(format!("no wrapper for import {import}"))
                    })?;
                    self.ins(Instruction::ReturnCall(wrapper));
                    continue;
                }
            }
            self.plain(op, &mut remap)?;
        }
        if let Some(p) = plan {
            // `$body` was closed by the input's final `end`.
            self.ins(Instruction::Return);
            for (i, group) in p.unwind_groups.iter().enumerate() {
                self.close();
                self.save_frame(p, frame_size, &group.saved);
                if i + 1 < p.unwind_groups.len() {
                    self.ins(Instruction::Br(self.depth_to(0)));
                }
            }
            self.close();
            self.unwind_tail(&results)?;
            self.ins(Instruction::End);
        }
        Ok(())
    }

    /// Emits an operator that is not an item.
    fn plain(&mut self, op: Operator<'_>, remap: &mut Remap) -> Result<(), Error> {
        match &op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. } => {
                let pos = self.open_construct(&op, remap)?;
                self.frames.push(EFrame {
                    out_pos: pos,
                    construct: None,
                    after: None,
                    handlers_seen: 0,
                    recorder: None,
                });
            }
            Operator::Catch { .. } | Operator::CatchAll => {
                // A legacy try's body state (or its previous handler's) ends here.
                self.pop_body_for(self.frames.len());
                self.close_recorder()?;
                let ins = remap.instruction(op.clone())?;
                self.ins(ins);
                let frame = self.frames.last_mut().expect("try frame");
                if let Some((item_op, false)) = frame.construct {
                    let p = self.plan.expect("instrumenting");
                    let c: &'p Construct = &p.constructs[&item_op];
                    let h: &'p Handler = &c.handlers[frame.handlers_seen];
                    frame.handlers_seen += 1;
                    // The payload is on the stack; a `catch $tag` handler keeps
                    // it in saved locals, for a rewind to throw again.
                    let keep = (!h.payload.is_empty()).then_some(&h.payload[..]);
                    self.begin_body(&h.items, &h.params, usize::MAX, keep);
                }
            }
            Operator::Else => {
                self.ins(Instruction::Else);
                let frame = self.frames.last().expect("if frame");
                if let Some((item_op, true)) = frame.construct {
                    let p = self.plan.expect("instrumenting");
                    let c: &'p Construct = &p.constructs[&item_op];
                    // The then-arm's body state is finished.
                    self.pop_body_for(self.frames.len());
                    // (No merged dispatch in an else arm: `usize::MAX` matches no item.)
                    self.begin_body(&c.else_items, &c.params, usize::MAX, None);
                }
            }
            Operator::End => {
                let frame = self.frames.pop().expect("frame");
                self.pop_body_for(self.frames.len() + 1);
                if self.frames.is_empty() {
                    // End of the function body.
                    self.ins(Instruction::End);
                    self.out_len -= 1;
                    return Ok(());
                }
                self.close();
                if let Some(item) = &frame.after {
                    self.leave_item(item, &item.results);
                }
            }
            Operator::Delegate { relative_depth } => {
                // The label is relative to the try's parent: close the try first.
                let frame = self.frames.pop().expect("try frame");
                self.pop_body_for(self.frames.len() + 1);
                self.out_len -= 1;
                // Delegating to a `try` whose body is wrapped in a recorder
                // goes to the recorder, which passes the exception on.
                let target = &self.frames[self.frames.len() - 1 - *relative_depth as usize];
                let d = match target.recorder {
                    Some((pos, _)) => self.depth_to(pos),
                    None => self.map_depth(*relative_depth),
                };
                self.ins(Instruction::Delegate(d));
                if let Some(item) = &frame.after {
                    self.leave_item(item, &item.results);
                }
            }
            Operator::Br { relative_depth } => {
                let d = self.map_depth(*relative_depth);
                self.ins(Instruction::Br(d));
            }
            Operator::BrIf { relative_depth } => {
                let d = self.map_depth(*relative_depth);
                self.ins(Instruction::BrIf(d));
            }
            Operator::BrOnNull { relative_depth } => {
                let d = self.map_depth(*relative_depth);
                self.ins(Instruction::BrOnNull(d));
            }
            Operator::BrOnNonNull { relative_depth } => {
                let d = self.map_depth(*relative_depth);
                self.ins(Instruction::BrOnNonNull(d));
            }
            Operator::Rethrow { relative_depth } => {
                let d = self.map_depth(*relative_depth);
                self.ins(Instruction::Rethrow(d));
            }
            Operator::BrTable { targets } => {
                let mut out = Vec::with_capacity(targets.len() as usize);
                for t in targets.targets() {
                    let t = t?;
                    out.push(self.map_depth(t));
                }
                let default = self.map_depth(targets.default());
                self.ins(Instruction::BrTable(Cow::Owned(out), default));
            }
            Operator::BrOnCast {
                relative_depth,
                from_ref_type,
                to_ref_type,
            } => {
                let d = self.map_depth(*relative_depth);
                let from_ref_type = remap.ref_type(*from_ref_type)?;
                let to_ref_type = remap.ref_type(*to_ref_type)?;
                self.ins(Instruction::BrOnCast {
                    relative_depth: d,
                    from_ref_type,
                    to_ref_type,
                });
            }
            Operator::BrOnCastFail {
                relative_depth,
                from_ref_type,
                to_ref_type,
            } => {
                let d = self.map_depth(*relative_depth);
                let from_ref_type = remap.ref_type(*from_ref_type)?;
                let to_ref_type = remap.ref_type(*to_ref_type)?;
                self.ins(Instruction::BrOnCastFail {
                    relative_depth: d,
                    from_ref_type,
                    to_ref_type,
                });
            }
            Operator::Resume { .. }
            | Operator::ResumeThrow { .. }
            | Operator::Switch { .. }
            | Operator::ContNew { .. }
            | Operator::Suspend { .. }
                if self.plan.is_some() =>
            {
                return Err(Error::Unsupported {
                    function: self.func_label.clone(),
                    instruction: crate::plan::op_name(&op),
                    detail:
                        "stack switching instructions are not supported in instrumented functions"
                            .into(),
                });
            }
            Operator::Call { function_index } => {
                let check = self.asserts && !self.cx.no_assert_callee[*function_index as usize];
                let ins = remap.instruction(op.clone())?;
                self.ins(ins);
                if check {
                    self.assert_check();
                }
            }
            Operator::RefFunc { function_index }
                if self.cx.ref_wrappers.contains_key(function_index) =>
            {
                self.ins(Instruction::RefFunc(self.cx.ref_wrappers[function_index]));
            }
            Operator::LocalGet { local_index } | Operator::LocalTee { local_index }
                if self.non_null.binary_search(local_index).is_ok() =>
            {
                let ins = remap.instruction(op.clone())?;
                self.ins(ins);
                self.ins(Instruction::RefAsNonNull);
            }
            Operator::CallIndirect { .. } | Operator::CallRef { .. } => {
                let ins = remap.instruction(op.clone())?;
                self.ins(ins);
                if self.asserts {
                    self.assert_check();
                }
            }
            _ => {
                let ins = remap.instruction(op.clone())?;
                self.ins(ins);
            }
        }
        Ok(())
    }

    /// Drops the body state owned by input frame depth `depth`, if any.
    /// Opens the output construct for a block, loop, if, try or try_table.
    fn open_construct(&mut self, op: &Operator<'_>, remap: &mut Remap) -> Result<u32, Error> {
        let ins = match op {
            Operator::Block { blockty } => Instruction::Block(remap.block_type(*blockty)?),
            Operator::Loop { blockty } => Instruction::Loop(remap.block_type(*blockty)?),
            Operator::If { blockty } => Instruction::If(remap.block_type(*blockty)?),
            Operator::Try { blockty } => Instruction::Try(remap.block_type(*blockty)?),
            Operator::TryTable { try_table } => {
                let mut catches = Vec::with_capacity(try_table.catches.len());
                for c in &try_table.catches {
                    let mut c = *c;
                    // Catch labels are relative to the try_table's parent.
                    match &mut c {
                        wasmparser::Catch::One { label, .. }
                        | wasmparser::Catch::OneRef { label, .. }
                        | wasmparser::Catch::All { label }
                        | wasmparser::Catch::AllRef { label } => *label = self.map_depth(*label),
                    }
                    catches.push(remap.catch(c)?);
                }
                let bt = remap.block_type(try_table.ty)?;
                Instruction::TryTable(bt, Cow::Owned(catches))
            }
            _ => unreachable!("open_construct is only called on construct operators"),
        };
        Ok(self.open(ins))
    }

    fn pop_body_for(&mut self, depth: usize) {
        if self.bodies.last().is_some_and(|b| b.frame_depth == depth) {
            self.bodies.pop();
        }
    }

    fn rewind_prologue(&mut self, p: &FunctionPlan, frame_size: u64) {
        if frame_size == 0 {
            // Nothing saved (and no owner id): nothing to read back.
            return;
        }
        self.rewinding_test();
        self.open(Instruction::If(BlockType::Empty));
        if let (Some(tail), true) = (&self.cx.tail, p.tail_through) {
            // The frame on top may belong to a function this one tail-called.
            let id = tail.ids[&p.func_index];
            let trampoline = tail.trampolines[&self.results_key];
            self.load_header(0);
            self.ptr_const(4);
            self.ins(if self.cx.memory64 {
                Instruction::I64Sub
            } else {
                Instruction::I32Sub
            });
            self.load(ValType::I32, 0);
            // The index local is free until the frame is read (and stays 0
            // in a function that records no index).
            let owner = if p.records_point_index() {
                p.index_local
            } else {
                self.temps(&[ValType::I32])[0]
            };
            self.ins(Instruction::LocalTee(owner));
            self.ins(Instruction::I32Const(id as i32));
            self.ins(Instruction::I32Ne);
            self.open(Instruction::If(BlockType::Empty));
            self.ins(Instruction::LocalGet(owner));
            self.ins(Instruction::ReturnCall(trampoline));
            self.close();
        }
        // cur -= frame size; ptr = cur
        if frame_size > 0 {
            self.ptr_const(frame_size);
            self.ins(Instruction::Call(self.cx.frame_pop));
            self.ins(Instruction::LocalSet(p.ptr_local));
        }
        let mut offset = 0u64;
        for &l in &p.saved {
            let ty = p.local_types[l as usize];
            self.ins(Instruction::LocalGet(p.ptr_local));
            if let ValType::Ref(_) = ty {
                let non_null = p.non_null_params.contains(&l);
                self.restore_ref(l, ty, offset, non_null);
            } else {
                self.load(ty, offset);
                self.ins(Instruction::LocalSet(l));
            }
            offset += value_size(ty) as u64;
        }
        if p.records_point_index() {
            self.ins(Instruction::LocalGet(p.ptr_local));
            self.load(ValType::I32, offset);
            self.ins(Instruction::LocalSet(p.index_local));
        }
        self.close();
    }

    /// With the frame pointer on the stack: reads the slot index at `offset`,
    /// takes the reference out of its table into local `l`, frees the slot.
    fn restore_ref(&mut self, l: u32, ty: ValType, offset: u64, non_null: bool) {
        let t = self.cx.ref_tables[&ty];
        let slot = self.temps(&[ValType::I32])[0];
        self.load(ValType::I32, offset);
        self.ins(Instruction::LocalTee(slot));
        self.ins(Instruction::TableGet(t.table));
        if non_null {
            self.ins(Instruction::RefAsNonNull);
        }
        self.ins(Instruction::LocalSet(l));
        self.ins(Instruction::LocalGet(slot));
        self.zero(ty).expect("nullable reference");
        self.ins(Instruction::TableSet(t.table));
        self.ins(Instruction::GlobalGet(t.live_global));
        self.ins(Instruction::I32Const(1));
        self.ins(Instruction::I32Sub);
        self.ins(Instruction::GlobalSet(t.live_global));
        self.ins(Instruction::GlobalGet(t.live_global));
        self.ins(Instruction::I32Eqz);
        self.open(Instruction::If(BlockType::Empty));
        self.ins(Instruction::I32Const(0));
        self.ins(Instruction::GlobalSet(t.next_global));
        self.close();
    }

    /// Puts local `l` into a fresh slot of its table (growing it if needed)
    /// and writes the slot index into the frame at `offset`.
    fn save_ref(&mut self, p: &FunctionPlan, l: u32, ty: ValType, offset: u64) {
        let t = self.cx.ref_tables[&ty];
        let slot = self.temps(&[ValType::I32])[0];
        self.ins(Instruction::GlobalGet(t.next_global));
        self.ins(Instruction::LocalTee(slot));
        self.ins(Instruction::TableSize(t.table));
        self.ins(Instruction::I32GeU);
        self.open(Instruction::If(BlockType::Empty));
        self.zero(ty).expect("nullable reference");
        self.ins(Instruction::TableSize(t.table));
        self.ins(Instruction::I32Const(16));
        self.ins(Instruction::I32Add);
        self.ins(Instruction::TableGrow(t.table));
        self.ins(Instruction::I32Const(-1));
        self.ins(Instruction::I32Eq);
        self.open(Instruction::If(BlockType::Empty));
        self.ins(Instruction::Unreachable);
        self.close();
        self.close();
        self.ins(Instruction::LocalGet(slot));
        self.ins(Instruction::LocalGet(l));
        self.ins(Instruction::TableSet(t.table));
        self.ins(Instruction::LocalGet(p.ptr_local));
        self.ins(Instruction::LocalGet(slot));
        self.store(ValType::I32, offset);
        self.ins(Instruction::LocalGet(slot));
        self.ins(Instruction::I32Const(1));
        self.ins(Instruction::I32Add);
        self.ins(Instruction::GlobalSet(t.next_global));
        self.ins(Instruction::GlobalGet(t.live_global));
        self.ins(Instruction::I32Const(1));
        self.ins(Instruction::I32Add);
        self.ins(Instruction::GlobalSet(t.live_global));
    }

    /// Writes the frame for a group of points whose live locals are
    /// `written` (a subsequence of the frame layout `p.saved`), if it fits.
    /// Leaves the frame pointer in `p.ptr_local`.
    fn save_frame(&mut self, p: &FunctionPlan, frame_size: u64, written: &[u32]) {
        // ptr = cur, cur += size. If the frame does not fit (cur + size >
        // end), nothing is written, but cur still advances: the stop/start
        // functions then trap on cur > end as the ABI says, and a host that
        // looks first learns how large the buffer had to be (cur - start).
        if frame_size == 0 {
            return;
        }
        self.ptr_const(frame_size);
        self.ins(Instruction::Call(self.cx.frame_push));
        self.ins(Instruction::LocalTee(p.ptr_local));
        self.ptr_const(u64::MAX);
        self.ins(if self.cx.memory64 {
            Instruction::I64Ne
        } else {
            Instruction::I32Ne
        });
        self.open(Instruction::If(BlockType::Empty));
        let mut offset = 0u64;
        let mut written = written.iter().peekable();
        for &l in &p.saved {
            let ty = p.local_types[l as usize];
            if written.next_if_eq(&&l).is_some() {
                if let ValType::Ref(_) = ty {
                    self.save_ref(p, l, ty, offset);
                } else {
                    self.ins(Instruction::LocalGet(p.ptr_local));
                    self.ins(Instruction::LocalGet(l));
                    self.store(ty, offset);
                }
            }
            offset += value_size(ty) as u64;
        }
        debug_assert!(written.next().is_none(), "written follows the frame layout");
        if p.records_point_index() {
            self.ins(Instruction::LocalGet(p.ptr_local));
            self.ins(Instruction::LocalGet(p.index_local));
            self.store(ValType::I32, offset);
        }
        if let Some(tail) = &self.cx.tail {
            let id = tail.ids[&p.func_index];
            self.ins(Instruction::LocalGet(p.ptr_local));
            self.ins(Instruction::I32Const(id as i32));
            self.store(ValType::I32, offset + u64::from(p.point_index_bytes()));
        }
        self.close();
    }

    /// After the frame is written: return placeholders.
    fn unwind_tail(&mut self, results: &[ValType]) -> Result<(), Error> {
        // `cur` has moved past the frame already (`frame_push`).
        for &r in results {
            self.zero(r)?;
        }
        Ok(())
    }
}

/// The two generated functions that move `cur` by a frame, shared by every
/// instrumented function (they run only while unwinding or rewinding):
/// `frame_pop(size)`: `cur -= size`, returns the new `cur`;
/// `frame_push(size)`: `cur += size`, returns the old `cur`, or all ones
/// (never a frame's address) when the frame does not fit below `end`.
/// Both have type `[ptr] -> [ptr]`.
pub fn frame_functions(cx: &EmitContext) -> [wasm_encoder::Function; 2] {
    let end_field = asyncify_abi::header::end_offset(cx.memory64);
    let (ptr, align) = if cx.memory64 {
        (wasm_encoder::ValType::I64, 3)
    } else {
        (wasm_encoder::ValType::I32, 2)
    };
    let m = |offset: u64| MemArg {
        offset,
        align,
        target: MemArgTarget::Memory(cx.memory),
        ordering: None,
    };
    let (load, store, add, sub, le_u, all_ones) = if cx.memory64 {
        (
            Instruction::I64Load(m(0)),
            Instruction::I64Store(m(0)),
            Instruction::I64Add,
            Instruction::I64Sub,
            Instruction::I64LeU,
            Instruction::I64Const(-1),
        )
    } else {
        (
            Instruction::I32Load(m(0)),
            Instruction::I32Store(m(0)),
            Instruction::I32Add,
            Instruction::I32Sub,
            Instruction::I32LeU,
            Instruction::I32Const(-1),
        )
    };
    let load_end = if cx.memory64 {
        Instruction::I64Load(m(end_field))
    } else {
        Instruction::I32Load(m(end_field))
    };
    let data = Instruction::GlobalGet(cx.data_global);

    // Local 0: size; local 1: the new cur.
    let mut pop = wasm_encoder::Function::new([(1, ptr)]);
    debug_assert_eq!(
        asyncify_abi::header::CUR_OFFSET,
        0,
        "`cur` is loaded at offset 0"
    );
    for i in [
        data.clone(),
        data.clone(),
        load.clone(),
        Instruction::LocalGet(0),
        sub,
        Instruction::LocalTee(1),
        store.clone(),
        Instruction::LocalGet(1),
        Instruction::End,
    ] {
        pop.instruction(&i);
    }

    // Local 0: size; local 1: the old cur; local 2: the new cur.
    let mut push = wasm_encoder::Function::new([(2, ptr)]);
    for i in [
        data.clone(),
        data.clone(),
        load,
        Instruction::LocalTee(1),
        Instruction::LocalGet(0),
        add,
        Instruction::LocalTee(2),
        store,
        Instruction::LocalGet(1),
        all_ones,
        Instruction::LocalGet(2),
        data,
        load_end,
        le_u,
        Instruction::Select,
        Instruction::End,
    ] {
        push.instruction(&i);
    }
    [pop, push]
}

/// The placeholder value of type `ty` (zero or null), or `None` for a
/// non-nullable reference, which has none.
pub fn zero_instruction(ty: ValType, remap: &Remap) -> Option<Instruction<'static>> {
    Some(match ty {
        ValType::I32 => Instruction::I32Const(0),
        ValType::I64 => Instruction::I64Const(0),
        ValType::F32 => Instruction::F32Const(0.0.into()),
        ValType::F64 => Instruction::F64Const(0.0.into()),
        ValType::V128 => Instruction::V128Const(0),
        ValType::Ref(r) if r.is_nullable() => {
            Instruction::RefNull(remap.clone().heap_type(r.heap_type()).ok()?)
        }
        ValType::Ref(_) => return None,
    })
}

/// A function a trampoline can send a rewind to.
#[derive(Debug, Clone)]
pub struct TrampolineTarget {
    /// Its frame id.
    pub id: u32,
    /// Its output function index.
    pub func: u32,
    /// Its parameter types (placeholders are passed).
    pub params: Vec<ValType>,
}

/// The trampoline for functions returning `results`: takes a frame id and
/// tail-calls the function it names, with placeholder arguments.
pub fn trampoline(
    targets: &[TrampolineTarget],
    id_count: u32,
    remap: &Remap,
) -> Result<wasm_encoder::Function, Error> {
    let mut f = wasm_encoder::Function::new([]);
    let m = targets.len() as u32;
    f.instruction(&Instruction::Block(BlockType::Empty));
    for _ in 0..m {
        f.instruction(&Instruction::Block(BlockType::Empty));
    }
    let mut table = vec![m; id_count as usize];
    for (j, t) in targets.iter().enumerate() {
        table[t.id as usize] = j as u32;
    }
    f.instruction(&Instruction::LocalGet(0));
    f.instruction(&Instruction::BrTable(Cow::Owned(table), m));
    for TrampolineTarget { func, params, .. } in targets {
        f.instruction(&Instruction::End);
        for &p in params {
            let zero = zero_instruction(p, remap).ok_or_else(|| Error::Unsupported {
                function: format!("func {func}"),
                instruction: "return_call".into(),
                detail: format!("a function that may be reached by a suspending tail call takes a non-nullable reference ({p}), which a rewind cannot supply"),
            })?;
            f.instruction(&zero);
        }
        f.instruction(&Instruction::ReturnCall(*func));
    }
    f.instruction(&Instruction::End);
    f.instruction(&Instruction::Unreachable);
    f.instruction(&Instruction::End);
    Ok(f)
}
