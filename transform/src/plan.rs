//! Planning: for one instrumented function, find its suspension points, the
//! structured constructs that contain them, the operand-stack values that must
//! be moved into locals around them, and the locals to save in its frame.

use std::collections::HashMap;

use asyncify_abi::frame;

use wasmparser::{
    FuncToValidate, FuncValidatorAllocations, Operator, OperatorsReader, ValType,
    ValidatorResources,
};

use crate::analysis::Analysis;
use crate::read::ModuleInfo;
use crate::Error;

/// Something a body dispatches to when rewinding: a suspension point, or a
/// construct (block, loop, if) that contains one.
#[derive(Debug, Clone)]
pub struct Item {
    /// Operator index (within the body) where the item starts.
    pub op: usize,
    /// First and last suspension point index inside.
    pub lo: u32,
    pub hi: u32,
    /// Types of the current frame's operand stack when the item starts,
    /// inputs (call arguments, block parameters, `if` condition) last.
    pub stack: Vec<ValType>,
    /// How many of `stack` the item consumes.
    pub inputs: usize,
    /// How many of the inputs (the last ones) come from pure expressions that
    /// are emitted right before the item instead of being moved through locals.
    pub deferred: usize,
    /// Locals that hold the values below the inputs while the item runs
    /// (saved in the frame: they are live across the suspension).
    pub stranded: Vec<u32>,
    /// Result types of the item.
    pub results: Vec<ValType>,
    /// For `call_indirect`: the local (saved in the frame) that holds the
    /// table index, so a rewind calls the same function again.
    pub callee: Option<u32>,
    /// Inputs of non-nullable reference type that are not deferred, by
    /// position among the moved inputs (`stack[len - inputs..len - deferred]`),
    /// with the saved local that holds each: a rewind skips the code that
    /// computed them, and a placeholder of such a type does not exist, so the
    /// value itself is kept in the frame and passed again.
    pub kept_inputs: Vec<(usize, u32)>,
}

/// A construct (block, loop, if) that contains suspension points.
#[derive(Debug, Clone, Default)]
pub struct Construct {
    /// Items of the first body (the `then` arm for an `if`).
    pub items: Vec<Item>,
    /// Items of the `else` arm.
    pub else_items: Vec<Item>,
    /// Parameter types of the construct.
    pub params: Vec<ValType>,
    /// For an `if`: the first point index of the else arm (or one past the end).
    pub split: u32,
    /// A block or loop (or `try_table`) without parameters: when it starts
    /// its parent's body, the parent's rewind dispatch can move into it.
    pub merges_dispatch: bool,
    /// For a legacy `try`: its `catch`/`catch_all` clauses, in order.
    pub handlers: Vec<Handler>,
}

/// One `catch $tag` or `catch_all` clause of a legacy `try` that contains
/// suspension points.
///
/// A rewind re-enters a handler by throwing again at the start of the try
/// body: the tag with the payload saved from the first entry (`payload`), or
/// for `catch_all` a tag the transform adds, which no `catch $tag` clause
/// matches. The handler then dispatches to its point like any body.
#[derive(Debug, Clone, Default)]
pub struct Handler {
    /// The caught tag, or `None` for `catch_all`.
    pub tag: Option<u32>,
    /// Items of the handler's body.
    pub items: Vec<Item>,
    /// The tag's payload types (the values on the stack when the handler starts).
    pub params: Vec<ValType>,
    /// For `catch $tag` with points: saved locals that hold the payload, so a
    /// rewind throws the same values again (a later `rethrow` passes them on).
    pub payload: Vec<u32>,
    /// For a `catch_all` with points whose exception is rethrown: how the
    /// caught exception is recorded so that a rewind can throw it again.
    pub recorder: Option<Recorder>,
}

/// How a legacy `catch_all` handler that may suspend and then `rethrow`s gets
/// its exception back after a rewind.
///
/// Legacy exception handling gives no reference to the exception a
/// `catch_all` caught, so the try body is wrapped in an added `try` (the
/// recorder) with a `catch $tag` clause for every tag the module defines or
/// imports (except those the `try`'s own clauses catch first): each stores the
/// payload in saved locals and the tag's number in `which`, then rethrows the
/// same exception on to the handler. A rewind into the handler throws the
/// recorded tag with the recorded payload at the start of the try body, so the
/// handler is entered again and a later `rethrow` passes on an exception of
/// the same tag and values. An exception of a tag the module cannot name
/// (thrown by the host) leaves `which` at 0: suspending inside the handler
/// then traps at the unwind, the one case that cannot be resumed.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Saved local: 0 for an exception of an unknown tag, otherwise one more
    /// than the index in `tags` of the recorded tag.
    pub which: u32,
    /// The tags recorded.
    pub tags: Vec<RecordedTag>,
}

/// One tag a [`Recorder`] catches.
#[derive(Debug, Clone, Default)]
pub struct RecordedTag {
    pub tag: u32,
    /// The tag's payload types.
    pub params: Vec<ValType>,
    /// Saved locals that hold the payload (shared by type between tags).
    pub locals: Vec<u32>,
}

impl Handler {
    /// First and last point inside, if any.
    pub fn points(&self) -> Option<(u32, u32)> {
        Some((self.items.first()?.lo, self.items.last()?.hi))
    }
}

/// The plan for one function.
#[derive(Debug, Default)]
pub struct FunctionPlan {
    /// Items of the function body.
    pub body_items: Vec<Item>,
    /// Constructs containing points, by operator index.
    pub constructs: HashMap<usize, Construct>,
    /// Operator indices of suspension-point calls, in order (index = point id).
    pub points: Vec<usize>,
    /// Types of all locals, parameters first, then declared, then added.
    pub local_types: Vec<ValType>,
    /// Number of locals in the input (params + declared).
    pub input_locals: u32,
    /// Locals saved in the frame, ordered by the frame layout.
    pub saved: Vec<u32>,
    /// Per point: the input's locals live after it (increasing). `saved` is
    /// their union, plus the locals added for stack values and callees.
    pub point_live: Vec<Vec<u32>>,
    /// The points, in runs that share the code that saves the frame when
    /// unwinding (see [`UnwindGroup`]).
    pub unwind_groups: Vec<UnwindGroup>,
    /// Operator indices of the pure expressions moved to just before their
    /// item (increasing).
    pub deferred_ops: Vec<usize>,
    /// Local holding the point index.
    pub index_local: u32,
    /// Local holding the frame pointer while saving/restoring.
    pub ptr_local: u32,
    /// Nullable reference types among the saved locals (each is kept in a
    /// table of that type while suspended).
    pub ref_types: Vec<ValType>,
    /// Parameters of non-nullable reference type (restored with a null check).
    pub non_null_params: Vec<u32>,
    /// The function makes a tail call that may suspend: when rewinding, the
    /// frame on top may belong to a function it tail-called, not to itself.
    pub tail_through: bool,
    /// The function's index in the input.
    pub func_index: u32,
    /// Tail calls to imports that may suspend, inside a `try` or
    /// `try_table`, by operator index (increasing) with the import: they go
    /// to the import's wrapper instead (see [`wrapper_plan`]).
    pub tail_to_wrapper: Vec<(usize, u32)>,
    /// The function makes an indirect tail call that may suspend.
    pub indirect_tail: bool,
    /// Points inside legacy `catch_all` handlers with a [`Recorder`], as
    /// (first point, last point, the recorder's `which` local): an unwind at
    /// one of them traps if the handler holds an exception of unknown tag.
    pub foreign_checks: Vec<(u32, u32, u32)>,
    /// Defined functions that a direct tail call here may suspend in
    /// (increasing): a rewind into this function may find one of them on top.
    pub tail_targets: Vec<u32>,
}

impl FunctionPlan {
    /// Bytes of this function's frame: saved locals, the point index (when
    /// there is more than one point), and the frame owner's id when tail
    /// calls may suspend.
    pub fn frame_bytes(&self, with_owner_id: bool) -> u32 {
        let locals: u32 = self
            .saved
            .iter()
            .map(|&l| value_size(self.local_types[l as usize]))
            .sum();
        let owner_id = if with_owner_id {
            frame::OWNER_ID_BYTES
        } else {
            0
        };
        locals + self.point_index_bytes() + owner_id
    }

    /// Whether frames record which point the function stopped at. With one
    /// point there is nothing to choose: `index_local` stays 0.
    pub fn records_point_index(&self) -> bool {
        self.points.len() > 1
    }

    /// Per point: the locals an unwind there must write (input locals live
    /// after it, and the added locals that hold its stack values, callees
    /// and handler payloads), not counting references; may repeat a local.
    pub fn needed_per_point(&self) -> Vec<Vec<u32>> {
        /// Work left on the walk: the rest of a list of items, or a handler
        /// whose payload comes before its items.
        enum Work<'p> {
            Items(std::slice::Iter<'p, Item>),
            Handler(&'p Handler),
        }
        let mut live = self.point_live.clone();
        // Depth first with an explicit stack, in the order of the input:
        // constructs nest as deep as the input does (a million nested blocks
        // is a valid body), far deeper than the call stack allows.
        let mut stack = vec![Work::Items(self.body_items.iter())];
        while let Some(work) = stack.last_mut() {
            let item = match work {
                Work::Items(items) => match items.next() {
                    Some(item) => item,
                    None => {
                        stack.pop();
                        continue;
                    }
                },
                Work::Handler(h) => {
                    let h: &Handler = h;
                    stack.pop();
                    let adds = !h.payload.is_empty() || h.recorder.is_some();
                    if let Some((lo, hi)) = h.points().filter(|_| adds) {
                        for k in lo..=hi {
                            live[k as usize].extend(&h.payload);
                            if let Some(r) = &h.recorder {
                                live[k as usize].push(r.which);
                                for t in &r.tags {
                                    live[k as usize].extend(&t.locals);
                                }
                            }
                        }
                    }
                    stack.push(Work::Items(h.items.iter()));
                    continue;
                }
            };
            // Skipped when there is nothing to add, so that a deep nest of
            // constructs around many points costs no points x depth.
            let adds = !item.stranded.is_empty() || item.callee.is_some();
            let adds = adds || !item.kept_inputs.is_empty();
            if adds {
                for k in item.lo..=item.hi {
                    let set = &mut live[k as usize];
                    set.extend(&item.stranded);
                    set.extend(item.callee);
                    set.extend(item.kept_inputs.iter().map(|&(_, l)| l));
                }
            }
            if let Some(c) = self.constructs.get(&item.op) {
                // Pushed in reverse: the `then` items run first.
                stack.extend(c.handlers.iter().rev().map(Work::Handler));
                stack.push(Work::Items(c.else_items.iter()));
                stack.push(Work::Items(c.items.iter()));
            }
        }
        live
    }

    /// Bytes the point index takes in the frame.
    pub fn point_index_bytes(&self) -> u32 {
        if self.records_point_index() {
            frame::POINT_INDEX_BYTES
        } else {
            0
        }
    }
}

/// A run of consecutive suspension points whose unwinds share one block of
/// code that writes the frame.
///
/// The block writes only `saved`: the locals live after one of the points
/// (and the references, which are always written because a rewind takes
/// every saved reference out of its table). Slots of other locals keep
/// whatever the buffer held; the rewind loads them into locals that are dead
/// at the point, where nothing reads them.
///
/// Why not one block for the whole function: every local the block writes is
/// read on the edge from every point that branches to it, so a compiler sees
/// each of them live across each of those calls. In a large function that is
/// points x locals live values (millions in yosys's largest), which makes
/// Cranelift take minutes to compile a single function. Groups keep that
/// product under [`UNWIND_GROUP_BUDGET`] while sharing the code of nearby
/// points, whose live sets are mostly the same.
#[derive(Debug, Clone, Default)]
pub struct UnwindGroup {
    /// First and last point index of the run.
    pub first: u32,
    pub last: u32,
    /// Locals written to the frame, in frame order.
    pub saved: Vec<u32>,
}

/// Upper bound of points x written locals for one [`UnwindGroup`] (a group
/// of one point may exceed it).
pub const UNWIND_GROUP_BUDGET: usize = 4096;

/// Upper bound of the locals written by all the [`UnwindGroup`]s of one
/// function together, about 10 bytes of code each. Past it the groups give
/// way to one group for all points: a function whose points each save tens
/// of thousands of locals would otherwise go over the size engines allow for
/// one function body (7,654,321 bytes), which matters more than compile time.
/// (With `--exact-saves`, points still share only when they write the same
/// locals.)
pub const UNWIND_WRITE_BUDGET: usize = 300_000;

/// Splits the points of `plan` into [`UnwindGroup`]s, greedily in order;
/// with `exact`, only points that write the same locals share a group.
fn unwind_groups(plan: &FunctionPlan, exact: bool) -> Vec<UnwindGroup> {
    let groups = unwind_groups_within(plan, exact, UNWIND_GROUP_BUDGET);
    let written: usize = groups.iter().map(|g| g.saved.len()).sum();
    if written <= UNWIND_WRITE_BUDGET {
        return groups;
    }
    // With `exact`, still only points that write the same locals share.
    unwind_groups_within(plan, exact, usize::MAX)
}

/// [`unwind_groups`] with `budget` for points x written locals per group.
fn unwind_groups_within(plan: &FunctionPlan, exact: bool, budget: usize) -> Vec<UnwindGroup> {
    let n = plan.points.len();
    if n == 0 {
        return Vec::new();
    }
    let mut live = plan.needed_per_point();
    let refs: Vec<u32> = plan
        .saved
        .iter()
        .copied()
        .filter(|&l| matches!(plan.local_types[l as usize], ValType::Ref(_)))
        .collect();
    let locals = plan.local_types.len();
    let mut groups = Vec::new();
    let mut member = vec![false; locals];
    let mut count = 0usize;
    let mut first = 0u32;
    let close = |first: u32, last: u32, member: &mut Vec<bool>, groups: &mut Vec<UnwindGroup>| {
        for &l in &refs {
            member[l as usize] = true;
        }
        let saved = plan
            .saved
            .iter()
            .copied()
            .filter(|&l| member[l as usize])
            .collect();
        member.iter_mut().for_each(|m| *m = false);
        groups.push(UnwindGroup { first, last, saved });
    };
    if exact {
        for set in live.iter_mut() {
            set.sort_unstable();
            set.dedup();
        }
    }
    for (k, at_k) in live.iter().enumerate() {
        let new = at_k.iter().filter(|&&l| !member[l as usize]).count();
        let points = k - first as usize + 1;
        let differs = exact && *at_k != live[first as usize];
        let cost = points.saturating_mul(count + new + refs.len());
        if k > first as usize && (differs || cost > budget) {
            close(first, k as u32 - 1, &mut member, &mut groups);
            first = k as u32;
            count = 0;
        }
        for &l in at_k {
            if !member[l as usize] {
                member[l as usize] = true;
                count += 1;
            }
        }
    }
    close(first, n as u32 - 1, &mut member, &mut groups);
    groups
}

/// Whether `t` is a non-nullable reference type (which has no placeholder).
pub fn is_non_null_ref(t: ValType) -> bool {
    matches!(t, ValType::Ref(r) if !r.is_nullable())
}

/// `t`, made nullable if it is a reference type.
pub fn nullable(t: ValType) -> ValType {
    match t {
        ValType::Ref(r) => ValType::Ref(r.nullable()),
        t => t,
    }
}

struct PFrame {
    op: usize,
    kind: Kind,
    dead: bool,
    items: Vec<Item>,
    else_items: Vec<Item>,
    in_else: bool,
    lo: Option<u32>,
    hi: u32,
    split: Option<u32>,
    has_point: bool,
    stack: Vec<ValType>,
    inputs: usize,
    params: Vec<ValType>,
    results: Vec<ValType>,
    /// A `try` or `try_table`: exceptions thrown inside may be caught here.
    catches: bool,
    /// For an `if`: the pure operators computing its condition, deferred
    /// (computed again after the dispatch) if the `if` holds a point.
    cond_ops: Vec<usize>,
    /// For a legacy `try`: its handlers so far (`in_else` is set from the first).
    handlers: Vec<PHandler>,
}

/// A legacy handler while planning.
struct PHandler {
    tag: Option<u32>,
    items: Vec<Item>,
    /// A `rethrow` inside targets this handler's exception.
    rethrown: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Func,
    Block,
    Loop,
    If,
    Try,
}

/// Context shared by all plans of one module.
pub struct PlanContext<'a, 'b> {
    pub info: &'b ModuleInfo<'a>,
    pub analysis: &'b Analysis,
    pub ptr_type: ValType,
    /// See [`crate::Options::exact_saves`].
    pub exact_saves: bool,
}

impl<'a> PlanContext<'a, '_> {
    /// The imports that may suspend and may be the target of an indirect call
    /// (they are in an element segment or taken by `ref.func`), increasing.
    pub fn suspending_imports_in_tables(&self) -> Vec<u32> {
        let mut referenced: Vec<u32> = self
            .info
            .referenced_funcs
            .iter()
            .copied()
            .filter(|&f| (f as usize) < self.info.func_imports.len())
            .filter(|&f| self.direct_call_suspends(f))
            .collect();
        referenced.sort_unstable();
        referenced
    }

    /// Whether a direct call to `callee` from an instrumented function is a suspension point.
    pub fn direct_call_suspends(&self, callee: u32) -> bool {
        let c = callee as usize;
        if let Some(import) = self.info.func_imports.get(c) {
            if import.runtime.is_some() {
                return false;
            }
        }
        self.analysis.changes_state[c] || self.analysis.instrumented[c].is_some()
    }
}

/// Builds the plan of defined function `defined` (index among defined functions).
pub fn plan_function(cx: &PlanContext<'_, '_>, defined: usize) -> Result<FunctionPlan, Error> {
    let mut planner = Planner::new(cx, defined)?;
    while !planner.ops.eof() {
        let (op, offset) = planner.ops.read_with_offset()?;
        planner.operator(&op)?;
        planner.fv.op(offset, &op)?;
        planner.index += 1;
    }
    planner.finish(defined)
}

/// The walk over one function body that builds its [`FunctionPlan`]: the
/// validator gives the operand stack's types at each operator, and the open
/// constructs collect the items (points, or constructs holding points) inside.
struct Planner<'c, 'a, 'b> {
    cx: &'c PlanContext<'a, 'b>,
    fv: wasmparser::FuncValidator<ValidatorResources>,
    ops: OperatorsReader<'a>,
    plan: FunctionPlan,
    num_params: u32,
    /// The open constructs, the function's first.
    frames: Vec<PFrame>,
    /// Operator index within the body.
    index: usize,
    /// The pure expressions that computed the values on top of the stack.
    pure_run: PureRun,
    added: AddedLocals,
}

impl<'c, 'a, 'b> Planner<'c, 'a, 'b> {
    fn new(cx: &'c PlanContext<'a, 'b>, defined: usize) -> Result<Self, Error> {
        let info = cx.info;
        let func_index = info.func_imports.len() as u32 + defined as u32;
        let handle = &info.funcs[defined];
        let handle = FuncToValidate::<ValidatorResources> {
            resources: handle.resources.clone(),
            index: handle.index,
            ty: handle.ty,
            features: handle.features,
        };
        let mut fv = handle.into_validator(FuncValidatorAllocations::default());
        let body = &info.bodies[defined];
        let mut reader = body.get_binary_reader();
        fv.read_locals(&mut reader)?;
        let mut plan = FunctionPlan {
            func_index,
            ..FunctionPlan::default()
        };
        for i in 0..fv.len_locals() {
            plan.local_types
                .push(info.module_val_type(fv.get_local_type(i).expect("local in range")));
        }
        plan.input_locals = plan.local_types.len() as u32;
        let func_type = info.func_type(func_index);
        let function = PFrame::open(
            0,
            Kind::Func,
            false,
            Vec::new(),
            (Vec::new(), info.module_val_types(func_type.results())),
        );
        Ok(Planner {
            cx,
            num_params: func_type.params().len() as u32,
            added: AddedLocals {
                next: plan.local_types.len() as u32,
                ..AddedLocals::default()
            },
            fv,
            ops: OperatorsReader::new(reader),
            plan,
            frames: vec![function],
            index: 0,
            pure_run: PureRun::default(),
        })
    }

    /// Plans one operator (before the validator sees it).
    fn operator(&mut self, op: &Operator<'_>) -> Result<(), Error> {
        let top = self.frames.last().expect("function frame");
        let frame_unreachable = self
            .fv
            .get_control_frame(0)
            .map(|f| f.unreachable)
            .unwrap_or(true);
        let live = !top.dead && !frame_unreachable;
        if let Some((inputs, results)) = self.suspension_point(op, live) {
            self.add_point(op, inputs, results);
        }
        self.structure(op, live);
        match pure_inputs(op) {
            Some(inputs) if live => {
                let reads_non_null_local = matches!(op, Operator::LocalGet { local_index }
                    if *local_index >= self.num_params
                        && is_non_null_ref(self.plan.local_types[*local_index as usize]));
                self.pure_run.push(self.index, inputs, reads_non_null_local)
            }
            _ => self.pure_run.clear(),
        }
        Ok(())
    }

    /// The types on the current construct's operand stack, bottom first.
    fn snapshot(&self) -> Vec<ValType> {
        let info = self.cx.info;
        let height = self.fv.get_control_frame(0).map(|f| f.height).unwrap_or(0);
        let n = self.fv.operand_stack_height() as usize - height;
        (0..n)
            .rev()
            .map(|d| {
                info.stack_val_type(
                    self.fv
                        .get_operand_type(d)
                        .flatten()
                        .unwrap_or(ValType::I32),
                )
            })
            .collect()
    }

    /// When `op` is a suspension point: the number of its inputs on the
    /// stack and its results. Notes the tail calls that may suspend.
    fn suspension_point(&mut self, op: &Operator<'_>, live: bool) -> Option<(usize, Vec<ValType>)> {
        let (cx, info, plan) = (self.cx, self.cx.info, &mut self.plan);
        let func_index = plan.func_index;
        match op {
            Operator::Call { function_index }
                if live && cx.direct_call_suspends(*function_index) =>
            {
                let t = info.func_type(*function_index);
                Some((t.params().len(), info.module_val_types(t.results())))
            }
            Operator::CallIndirect { type_index, .. } | Operator::CallRef { type_index }
                if live && cx.analysis.indirect_call_suspends(func_index, *type_index) =>
            {
                let id = info.types.as_ref().core_type_at_in_module(*type_index);
                let t = info.types[id].unwrap_func();
                Some((t.params().len() + 1, info.module_val_types(t.results())))
            }
            // A tail call that may suspend is not a point (this function's
            // frame is gone by then), but a rewind entering this function may
            // have to go on to the callee: see `tail_through`.
            // A tail call straight to an import that may suspend becomes a
            // plain call and a return (see `rewrite`): the import writes no
            // frame, so nothing would tell a rewind where to go. Nothing is
            // lost: a host function cannot tail-call on.
            Operator::ReturnCall { function_index }
                if live
                    && cx.direct_call_suspends(*function_index)
                    && (*function_index as usize) < info.func_imports.len() =>
            {
                if self.frames.iter().any(|f| f.catches) {
                    // As a call and a return it would run inside the handlers'
                    // scope: tail-call the import's wrapper instead, an
                    // instrumented function that writes a frame.
                    plan.tail_through = true;
                    plan.tail_to_wrapper.push((self.index, *function_index));
                    None
                } else {
                    let t = info.func_type(*function_index);
                    Some((t.params().len(), info.module_val_types(t.results())))
                }
            }
            Operator::ReturnCall { function_index }
                if live && cx.direct_call_suspends(*function_index) =>
            {
                plan.tail_through = true;
                if let Err(at) = plan.tail_targets.binary_search(function_index) {
                    plan.tail_targets.insert(at, *function_index);
                }
                None
            }
            // If it may reach an import that suspends, the import is
            // replaced by its wrapper wherever it is referenced (see
            // `suspending_imports_in_tables`), so the callee writes a frame.
            Operator::ReturnCallIndirect { type_index, .. }
            | Operator::ReturnCallRef { type_index }
                if live && cx.analysis.indirect_call_suspends(func_index, *type_index) =>
            {
                plan.tail_through = true;
                plan.indirect_tail = true;
                None
            }
            _ => None,
        }
    }

    /// Records suspension point `op` (with `inputs` on the stack) as an item
    /// of the innermost construct, and as inside every open one.
    fn add_point(&mut self, op: &Operator<'_>, inputs: usize, results: Vec<ValType>) {
        let k = self.plan.points.len() as u32;
        self.plan.points.push(self.index);
        // Arguments of a direct call computed by pure expressions that
        // cannot trap are computed again after the dispatch block instead
        // of being moved through locals: on a rewind they are
        // placeholders anyway (the callee restores its own locals), so
        // reading dead locals there is harmless.
        let stack = self.snapshot();
        let deferred = if matches!(op, Operator::Call { .. } | Operator::ReturnCall { .. }) {
            self.pure_run.deferrable(&stack, inputs)
        } else {
            0
        };
        self.plan
            .deferred_ops
            .extend_from_slice(self.pure_run.ops_of_top(deferred));
        let level = self.frames.len();
        let stranded = self.added.stranded(level, &stack, inputs);
        // The table index or function reference selects the callee again
        // when rewinding: keep it in a saved local.
        let callee =
            matches!(op, Operator::CallIndirect { .. } | Operator::CallRef { .. }).then(|| {
                let ty = nullable(*stack.last().expect("callee on the stack"));
                let ordinal = stranded.len();
                self.added.local(level, ty, ordinal)
            });
        for f in self.frames.iter_mut() {
            f.has_point = true;
            f.lo.get_or_insert(k);
            f.hi = k;
        }
        // A function reference called by `call_ref` is kept in `callee`.
        let kept_inputs = self.added.kept_inputs(
            level,
            &stack[..stack.len() - usize::from(callee.is_some())],
            inputs - usize::from(callee.is_some()),
            deferred,
            stranded.len(),
        );
        let top = self.frames.last_mut().expect("frame");
        let item = Item {
            op: self.index,
            lo: k,
            hi: k,
            stack,
            inputs,
            deferred,
            stranded,
            results,
            callee,
            kept_inputs,
        };
        top.push_item(item, k);
    }

    /// Opens and closes constructs, and marks legacy handlers.
    fn structure(&mut self, op: &Operator<'_>, live: bool) {
        let info = self.cx.info;
        match op {
            Operator::Block { blockty }
            | Operator::Loop { blockty }
            | Operator::If { blockty }
            | Operator::Try { blockty } => {
                let kind = match op {
                    Operator::Block { .. } => Kind::Block,
                    Operator::Loop { .. } => Kind::Loop,
                    Operator::Try { .. } => Kind::Try,
                    _ => Kind::If,
                };
                let stack = if live { self.snapshot() } else { Vec::new() };
                let mut frame =
                    PFrame::open(self.index, kind, !live, stack, block_sig(info, *blockty));
                frame.inputs += usize::from(kind == Kind::If);
                if kind == Kind::If && live {
                    frame.cond_ops = self
                        .pure_run
                        .ops_of_top(self.pure_run.values().min(1))
                        .to_vec();
                }
                self.frames.push(frame);
            }
            Operator::TryTable { try_table } => {
                let stack = if live { self.snapshot() } else { Vec::new() };
                let mut frame = PFrame::open(
                    self.index,
                    Kind::Block,
                    !live,
                    stack,
                    block_sig(info, try_table.ty),
                );
                frame.catches = true;
                self.frames.push(frame);
            }
            // For a legacy `try`, `in_else` marks its handlers.
            Operator::Else => {
                let top = self.frames.last_mut().expect("if frame");
                top.in_else = true;
            }
            Operator::Catch { .. } | Operator::CatchAll => {
                let top = self.frames.last_mut().expect("try frame");
                top.in_else = true;
                top.handlers.push(PHandler {
                    tag: match op {
                        Operator::Catch { tag_index } => Some(*tag_index),
                        _ => None,
                    },
                    items: Vec::new(),
                    rethrown: false,
                });
            }
            Operator::Rethrow { relative_depth } => {
                let at = self.frames.len() - 1 - *relative_depth as usize;
                if let Some(h) = self.frames.get_mut(at).and_then(|f| f.handlers.last_mut()) {
                    h.rethrown = true;
                }
            }
            Operator::End | Operator::Delegate { .. } => {
                let frame = self.frames.pop().expect("frame");
                if frame.kind == Kind::Func {
                    self.plan.body_items = frame.items;
                } else if frame.has_point {
                    self.close_construct(frame);
                }
            }
            _ => {}
        }
    }

    /// A construct that holds points ends: its plan, and its item in the
    /// enclosing construct.
    fn close_construct(&mut self, frame: PFrame) {
        let info = self.cx.info;
        let level = self.frames.len();
        let lo = frame.lo.expect("point inside");
        let hi = frame.hi;
        let stranded = self.added.stranded(level, &frame.stack, frame.inputs);
        let merges_dispatch =
            matches!(frame.kind, Kind::Block | Kind::Loop) && frame.params.is_empty();
        let mut handlers = Vec::with_capacity(frame.handlers.len());
        let caught: Vec<u32> = frame.handlers.iter().filter_map(|h| h.tag).collect();
        for h in frame.handlers {
            let h = plan_handler(info, h, level, &mut self.added, &caught);
            if let (Some(r), Some((lo, hi))) = (&h.recorder, h.points()) {
                self.plan.foreign_checks.push((lo, hi, r.which));
            }
            handlers.push(h);
        }
        self.plan.constructs.insert(
            frame.op,
            Construct {
                items: frame.items,
                else_items: frame.else_items,
                params: frame.params,
                split: frame.split.unwrap_or(hi + 1),
                merges_dispatch,
                handlers,
            },
        );
        let deferred = usize::from(!frame.cond_ops.is_empty());
        self.plan.deferred_ops.extend_from_slice(&frame.cond_ops);
        let kept_inputs =
            self.added
                .kept_inputs(level, &frame.stack, frame.inputs, deferred, stranded.len());
        let parent = self.frames.last_mut().expect("parent frame");
        let item = Item {
            op: frame.op,
            lo,
            hi,
            stack: frame.stack,
            inputs: frame.inputs,
            deferred,
            stranded,
            results: frame.results,
            callee: None,
            kept_inputs,
        };
        parent.push_item(item, lo);
    }

    /// After the body: the locals to save (live after some point, and the
    /// added ones), the frame layout and the unwind groups.
    fn finish(self, defined: usize) -> Result<FunctionPlan, Error> {
        let Planner {
            cx,
            mut plan,
            added,
            num_params,
            ..
        } = self;
        let body = &cx.info.bodies[defined];
        // `if` conditions were added when their construct ended.
        plan.deferred_ops.sort_unstable();

        // Locals of the input live after some point.
        let mut saved_flags = vec![false; plan.local_types.len()];
        if !plan.points.is_empty() {
            plan.point_live =
                crate::liveness::live_after_points(body, plan.local_types.len(), &plan.points)?;
            for &l in plan.point_live.iter().flatten() {
                saved_flags[l as usize] = true;
            }
        }
        for (l, ty) in &added.types {
            plan.local_types.push(*ty);
            debug_assert_eq!(*l as usize + 1, plan.local_types.len());
            saved_flags.push(true);
        }
        plan.index_local = plan.local_types.len() as u32;
        plan.local_types.push(ValType::I32);
        plan.ptr_local = plan.local_types.len() as u32;
        plan.local_types.push(cx.ptr_type);
        let mut saved: Vec<u32> = (0..saved_flags.len() as u32)
            .filter(|&l| saved_flags[l as usize])
            .collect();
        // Reference locals are declared nullable in the output (see rewrite), and
        // saved through a table of their type.
        for (l, t) in plan.local_types.iter_mut().enumerate() {
            if (l as u32) < num_params && *t != nullable(*t) {
                plan.non_null_params.push(l as u32);
            }
            *t = nullable(*t);
        }
        for &l in &saved {
            let t = plan.local_types[l as usize];
            if matches!(t, ValType::Ref(_)) && !plan.ref_types.contains(&t) {
                plan.ref_types.push(t);
            }
        }
        // Largest first keeps every slot naturally aligned within the frame.
        saved.sort_by_key(|&l| std::cmp::Reverse(value_size(plan.local_types[l as usize])));
        plan.saved = saved;
        plan.unwind_groups = unwind_groups(&plan, cx.exact_saves);
        Ok(plan)
    }
}

impl PFrame {
    /// A construct opened at operator `op` with `stack` below its inputs and
    /// signature `(params, results)`.
    fn open(
        op: usize,
        kind: Kind,
        dead: bool,
        stack: Vec<ValType>,
        (params, results): (Vec<ValType>, Vec<ValType>),
    ) -> PFrame {
        PFrame {
            op,
            kind,
            dead,
            items: Vec::new(),
            else_items: Vec::new(),
            in_else: false,
            lo: None,
            hi: 0,
            split: None,
            has_point: false,
            stack,
            inputs: params.len(),
            params,
            results,
            catches: kind == Kind::Try,
            cond_ops: Vec::new(),
            handlers: Vec::new(),
        }
    }

    /// Adds an item starting with point `first` to the body being read: the
    /// `then` body or `else` arm of an `if` (whose `split` the first `else`
    /// item sets), a block's body, a try body or its current handler.
    fn push_item(&mut self, item: Item, first: u32) {
        if !self.in_else {
            self.items.push(item);
        } else if let Some(h) = self.handlers.last_mut() {
            h.items.push(item);
        } else {
            self.split.get_or_insert(first);
            self.else_items.push(item);
        }
    }
}

/// Finishes a legacy handler of a `try` at nesting `level` whose clauses
/// catch the tags `caught`: the payload of a `catch $tag` with points gets
/// saved locals; a `catch_all` with points whose exception is rethrown gets a
/// [`Recorder`].
fn plan_handler(
    info: &ModuleInfo<'_>,
    h: PHandler,
    level: usize,
    added: &mut AddedLocals,
    caught: &[u32],
) -> Handler {
    let mut out = Handler {
        tag: h.tag,
        items: h.items,
        ..Handler::default()
    };
    if out.items.is_empty() {
        return out;
    }
    // Keyed apart from the stranded locals (whose keys are small levels); the
    // handlers of one `try` never run at the same time, so they share.
    let key = usize::MAX - level;
    let tag_params = |tag: u32| {
        let ty = info.types.as_ref().tag_at(tag);
        info.module_val_types(info.types[ty].unwrap_func().params())
    };
    let payload_locals = |params: &[ValType], added: &mut AddedLocals| {
        let mut seen: HashMap<ValType, usize> = HashMap::new();
        params
            .iter()
            .map(|&ty| {
                let ty = nullable(ty);
                let n = seen.entry(ty).or_default();
                *n += 1;
                added.local(key, ty, *n - 1)
            })
            .collect::<Vec<u32>>()
    };
    match h.tag {
        None if h.rethrown => {
            let which = added.local(usize::MAX / 2 - level, ValType::I32, 0);
            let tags = (0..info.types.as_ref().tag_count())
                .filter(|t| !caught.contains(t))
                .map(|tag| {
                    let params = tag_params(tag);
                    let locals = payload_locals(&params, added);
                    RecordedTag {
                        tag,
                        params,
                        locals,
                    }
                })
                .collect();
            out.recorder = Some(Recorder { which, tags });
        }
        None => {}
        Some(tag) => {
            out.params = tag_params(tag);
            out.payload = payload_locals(&out.params, added);
        }
    }
    out
}

/// The plan and input body of the wrapper of import `import`: a function of
/// the import's type that calls it with its parameters, instrumented like any
/// other (one point, nothing saved but the frame owner's id). Unlike the
/// import it writes a frame, so a rewind can find its way back into the
/// import after a tail call: tail calls to the import from inside a `try` go
/// to it, and when an indirect tail call may reach the import, the wrapper
/// replaces it wherever it is referenced (tables, `ref.func`).
/// `virtual_index` stands for its input function index (past the input's).
pub fn wrapper_plan(
    info: &ModuleInfo<'_>,
    import: u32,
    virtual_index: u32,
    ptr_type: ValType,
) -> (FunctionPlan, Vec<u8>) {
    let ty = info.func_type(import);
    let params = info.module_val_types(ty.params());
    let results = info.module_val_types(ty.results());
    let n = params.len();
    let mut body = wasm_encoder::Function::new([]);
    for i in 0..n as u32 {
        body.instruction(&wasm_encoder::Instruction::LocalGet(i));
    }
    body.instruction(&wasm_encoder::Instruction::Call(import));
    body.instruction(&wasm_encoder::Instruction::End);
    let body = body.into_raw_body();
    let mut local_types: Vec<ValType> = params.iter().map(|&t| nullable(t)).collect();
    local_types.push(ValType::I32);
    local_types.push(ptr_type);
    let plan = FunctionPlan {
        body_items: vec![Item {
            op: n,
            lo: 0,
            hi: 0,
            stack: params.clone(),
            inputs: n,
            deferred: n,
            stranded: Vec::new(),
            results,
            callee: None,
            kept_inputs: Vec::new(),
        }],
        points: vec![n],
        local_types,
        input_locals: n as u32,
        point_live: vec![Vec::new()],
        unwind_groups: vec![UnwindGroup::default()],
        deferred_ops: (0..n).collect(),
        index_local: n as u32,
        ptr_local: n as u32 + 1,
        non_null_params: (0..n as u32)
            .filter(|&l| params[l as usize] != nullable(params[l as usize]))
            .collect(),
        func_index: virtual_index,
        ..FunctionPlan::default()
    };
    (plan, body)
}

/// The locals a plan adds to hold values across a suspension: the operand
/// stack below an item's inputs, and the callee of an indirect call.
///
/// Such a local is only live while its item runs. Items at the same nesting
/// level never run at the same time (they are siblings, or in disjoint
/// constructs), so locals are shared by level, type and position: a function
/// with thousands of points needs a few dozen of them, not thousands, which
/// keeps frames small and the output easy for compilers.
#[derive(Default)]
struct AddedLocals {
    next: u32,
    by_key: HashMap<(usize, ValType, usize), u32>,
    /// Every added local with its type, in index order.
    types: Vec<(u32, ValType)>,
}

impl AddedLocals {
    /// The local for the `ordinal`-th value of type `ty` of an item at `level`.
    fn local(&mut self, level: usize, ty: ValType, ordinal: usize) -> u32 {
        *self.by_key.entry((level, ty, ordinal)).or_insert_with(|| {
            let l = self.next;
            self.next += 1;
            self.types.push((l, ty));
            l
        })
    }

    /// Saved locals for the moved inputs of non-nullable reference type of
    /// an item at `level` (see [`Item::kept_inputs`]); `stranded` is how many
    /// stranded locals the item has (the callee local takes the next ordinal).
    fn kept_inputs(
        &mut self,
        level: usize,
        stack: &[ValType],
        inputs: usize,
        deferred: usize,
        stranded: usize,
    ) -> Vec<(usize, u32)> {
        let moved = &stack[stack.len() - inputs..stack.len() - deferred];
        moved
            .iter()
            .enumerate()
            .filter(|(_, &ty)| is_non_null_ref(ty))
            .map(|(j, &ty)| (j, self.local(level, nullable(ty), stranded + 1 + j)))
            .collect()
    }

    /// Locals for the values of `stack` below its last `inputs`, for an item
    /// at `level`.
    fn stranded(&mut self, level: usize, stack: &[ValType], inputs: usize) -> Vec<u32> {
        let mut seen: HashMap<ValType, usize> = HashMap::new();
        stack[..stack.len() - inputs]
            .iter()
            .map(|&ty| {
                let ordinal = seen.entry(ty).or_default();
                *ordinal += 1;
                self.local(level, ty, *ordinal - 1)
            })
            .collect()
    }
}

/// Size in bytes of a value of type `ty` in a saved frame.
pub fn value_size(ty: ValType) -> u32 {
    match ty {
        ValType::I32 | ValType::F32 => frame::I32_BYTES,
        ValType::I64 | ValType::F64 => frame::I64_BYTES,
        ValType::V128 => frame::V128_BYTES,
        // A reference is saved in a table; the frame holds its slot index.
        ValType::Ref(_) => frame::REFERENCE_SLOT_BYTES,
    }
}

/// Parameter and result types of a block type.
pub fn block_sig(
    info: &ModuleInfo<'_>,
    blockty: wasmparser::BlockType,
) -> (Vec<ValType>, Vec<ValType>) {
    match blockty {
        wasmparser::BlockType::Empty => (Vec::new(), Vec::new()),
        wasmparser::BlockType::Type(t) => (Vec::new(), vec![info.module_val_type(t)]),
        wasmparser::BlockType::FuncType(idx) => {
            let id = info.types.as_ref().core_type_at_in_module(idx);
            let f = info.types[id].unwrap_func();
            (
                info.module_val_types(f.params()),
                info.module_val_types(f.results()),
            )
        }
    }
}

/// A short name for an operator, for error messages.
pub fn op_name(op: &Operator<'_>) -> String {
    let debug = format!("{op:?}");
    let name: String = debug.chars().take_while(|c| c.is_alphanumeric()).collect();
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    // `call_indirect`, `i32_add` → `i32.add` for typed instructions.
    for prefix in [
        "i32_", "i64_", "f32_", "f64_", "v128_", "i8x16_", "i16x8_", "i32x4_", "i64x2_", "f32x4_",
        "f64x2_", "local_", "global_", "table_", "memory_", "ref_", "data_", "elem_",
    ] {
        if out.starts_with(prefix) {
            out.replace_range(prefix.len() - 1..prefix.len(), ".");
            break;
        }
    }
    match op {
        Operator::Call { function_index } => format!("call {function_index}"),
        _ => out,
    }
}

/// A run of consecutive pure operators that cannot trap, and which of them
/// compute each value they leave on top of the operand stack.
#[derive(Default)]
struct PureRun {
    /// Operator indices, in order.
    ops: Vec<usize>,
    /// Per operator: it reads a declared local of non-nullable reference
    /// type, which a rewind leaves null unless it is live (and restored).
    reads_non_null_local: Vec<bool>,
    /// Per value left on the stack (top last): where in `ops` the expression
    /// that computes it starts.
    starts: Vec<usize>,
}

impl PureRun {
    /// Adds operator `index`, which pops `inputs` values and pushes one.
    fn push(&mut self, index: usize, inputs: usize, reads_non_null_local: bool) {
        if inputs > self.starts.len() {
            // It consumes values computed before the run: start afresh.
            self.clear();
            if inputs > 0 {
                return;
            }
        }
        let start = if inputs == 0 {
            self.ops.len()
        } else {
            let first = self.starts.len() - inputs;
            let start = self.starts[first];
            self.starts.truncate(first);
            start
        };
        self.ops.push(index);
        self.reads_non_null_local.push(reads_non_null_local);
        self.starts.push(start);
    }

    fn clear(&mut self) {
        self.ops.clear();
        self.reads_non_null_local.clear();
        self.starts.clear();
    }

    /// How many of the top `inputs` values of `stack` (the operand stack's
    /// types) can be computed again after the dispatch: those the run
    /// computed, up to the first (from the top) of non-nullable reference
    /// type whose expression reads a declared non-nullable local. On a rewind
    /// such a local is null unless restored, and the argument must be a real
    /// reference: that input is moved through a saved local instead.
    fn deferrable(&self, stack: &[ValType], inputs: usize) -> usize {
        let n = self.values().min(inputs);
        for j in 0..n {
            let value = self.starts.len() - 1 - j;
            let ty = stack[stack.len() - 1 - j];
            let end = self
                .starts
                .get(value + 1)
                .copied()
                .unwrap_or(self.ops.len());
            if is_non_null_ref(ty)
                && self.reads_non_null_local[self.starts[value]..end]
                    .iter()
                    .any(|&r| r)
            {
                return j;
            }
        }
        n
    }

    /// How many values on top of the stack the run computed.
    fn values(&self) -> usize {
        self.starts.len()
    }

    /// The operators that compute the top `n` values (`n <= values()`).
    fn ops_of_top(&self, n: usize) -> &[usize] {
        if n == 0 {
            return &[];
        }
        &self.ops[self.starts[self.starts.len() - n]..]
    }
}

/// For an operator with no side effect that cannot trap and pushes exactly
/// one value: how many values it pops.
fn pure_inputs(op: &Operator<'_>) -> Option<usize> {
    use Operator::*;
    Some(match op {
        LocalGet { .. }
        | GlobalGet { .. }
        | I32Const { .. }
        | I64Const { .. }
        | F32Const { .. }
        | F64Const { .. }
        | V128Const { .. }
        | RefNull { .. }
        | RefFunc { .. } => 0,
        I32Eqz | I64Eqz | I32Clz | I32Ctz | I32Popcnt | I64Clz | I64Ctz | I64Popcnt
        | I32WrapI64 | I64ExtendI32S | I64ExtendI32U | I32Extend8S | I32Extend16S | I64Extend8S
        | I64Extend16S | I64Extend32S | F32Abs | F32Neg | F32Ceil | F32Floor | F32Trunc
        | F32Nearest | F32Sqrt | F64Abs | F64Neg | F64Ceil | F64Floor | F64Trunc | F64Nearest
        | F64Sqrt | F32ConvertI32S | F32ConvertI32U | F32ConvertI64S | F32ConvertI64U
        | F32DemoteF64 | F64ConvertI32S | F64ConvertI32U | F64ConvertI64S | F64ConvertI64U
        | F64PromoteF32 | I32ReinterpretF32 | I64ReinterpretF64 | F32ReinterpretI32
        | F64ReinterpretI64 | I32TruncSatF32S | I32TruncSatF32U | I32TruncSatF64S
        | I32TruncSatF64U | I64TruncSatF32S | I64TruncSatF32U | I64TruncSatF64S
        | I64TruncSatF64U | RefIsNull => 1,
        I32Eq | I32Ne | I32LtS | I32LtU | I32GtS | I32GtU | I32LeS | I32LeU | I32GeS | I32GeU
        | I64Eq | I64Ne | I64LtS | I64LtU | I64GtS | I64GtU | I64LeS | I64LeU | I64GeS | I64GeU
        | F32Eq | F32Ne | F32Lt | F32Gt | F32Le | F32Ge | F64Eq | F64Ne | F64Lt | F64Gt | F64Le
        | F64Ge | I32Add | I32Sub | I32Mul | I32And | I32Or | I32Xor | I32Shl | I32ShrS
        | I32ShrU | I32Rotl | I32Rotr | I64Add | I64Sub | I64Mul | I64And | I64Or | I64Xor
        | I64Shl | I64ShrS | I64ShrU | I64Rotl | I64Rotr | F32Add | F32Sub | F32Mul | F32Div
        | F32Min | F32Max | F32Copysign | F64Add | F64Sub | F64Mul | F64Div | F64Min | F64Max
        | F64Copysign => 2,
        Select | TypedSelect { .. } => 3,
        _ => return None,
    })
}
