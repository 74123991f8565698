//! Layout: the output's index spaces, decided once after planning.
//!
//! The transform only appends to the input's index spaces, except that the
//! input's imports of `asyncify.*` go (their calls go to the generated runtime
//! functions). In order:
//!
//! - functions: the kept imports, the defined functions, the five runtime
//!   functions in [`RuntimeFunction::ALL`] order, then `frame_pop` and
//!   `frame_push` (when any function is instrumented), the wrappers of
//!   imports, the tail-call trampolines, and the function that traps on a
//!   host exception in a rethrowing `catch_all`;
//! - types: the input's, then the runtime signatures, `[] -> R` for the
//!   multi-value results of instrumented functions, the frame functions'
//!   `[ptr] -> [ptr]`, one `[i32] -> R` per trampoline, then `[] -> R` for
//!   multi-value results of wrapped imports;
//! - globals: the state and data globals (imported after the input's imported
//!   globals, or defined after the input's globals), then two slot globals per
//!   reference table;
//! - tables: the input's, then one per saved reference type;
//! - tags: the input's, then the tag that re-enters `catch_all` handlers;
//! - memories: the input's, then the secondary memory.
//!
//! Every later phase reads indices from [`Layout`]; none computes them.

use std::collections::{HashMap, HashSet};

use asyncify_abi::{AbiType, RuntimeFunction, Signature};
use wasmparser::ValType;

use crate::plan::{wrapper_plan, FunctionPlan, PlanContext};
use crate::read::ModuleInfo;
use crate::rewrite::{val_type, RefTable, Remap};
use crate::Options;

/// A function type the output appends: (params, results).
pub type AppendedType = (Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>);

/// Every function plan of a module: the defined functions' and the wrappers'.
pub struct Plans {
    /// Per defined function: its plan, when it is instrumented.
    pub functions: Vec<Option<FunctionPlan>>,
    /// The imports that get a wrapper (see [`wrapper_plan`]), increasing.
    pub wrapped: Vec<u32>,
    /// Those that a wrapper replaces wherever they are referenced.
    pub ref_wrapped: Vec<u32>,
    /// Per wrapped import: the wrapper's plan and its input body.
    pub wrappers: Vec<(FunctionPlan, Vec<u8>)>,
}

impl Plans {
    /// The wrappers (see [`wrapper_plan`]) that `functions` need: of the
    /// imports that a `try` tail-calls, and, when an indirect tail call may
    /// suspend, of every import that may suspend and may be called indirectly
    /// (the wrapper then replaces it wherever it is referenced).
    pub fn new(plan_cx: &PlanContext<'_, '_>, functions: Vec<Option<FunctionPlan>>) -> Plans {
        let info = plan_cx.info;
        let ref_wrapped: Vec<u32> = if functions.iter().flatten().any(|p| p.indirect_tail) {
            plan_cx.suspending_imports_in_tables()
        } else {
            Vec::new()
        };
        let mut wrapped: Vec<u32> = functions
            .iter()
            .flatten()
            .flat_map(|p| p.tail_to_wrapper.iter().map(|&(_, import)| import))
            .chain(ref_wrapped.iter().copied())
            .collect();
        wrapped.sort_unstable();
        wrapped.dedup();
        let wrappers = wrapped
            .iter()
            .enumerate()
            .map(|(j, &import)| {
                wrapper_plan(info, import, info.num_funcs() + j as u32, plan_cx.ptr_type)
            })
            .collect();
        Plans {
            functions,
            wrapped,
            ref_wrapped,
            wrappers,
        }
    }

    /// The plans of the instrumented defined functions.
    pub fn instrumented(&self) -> impl Iterator<Item = &FunctionPlan> {
        self.functions.iter().flatten()
    }
}

/// The generated `frame_pop` and `frame_push` functions and their type.
#[derive(Debug, Clone, Copy)]
pub struct FrameFunctions {
    pub pop: u32,
    pub push: u32,
    /// `[ptr] -> [ptr]`.
    pub ty: u32,
}

/// A trampoline for tail calls that may suspend (see [`crate::rewrite::TailCalls`]).
#[derive(Debug, Clone)]
pub struct Trampoline {
    /// The result types of the functions it serves.
    pub results: Vec<ValType>,
    pub index: u32,
    /// `[i32] -> results`.
    pub ty: u32,
}

/// The output's index spaces (see the module documentation).
pub struct Layout {
    /// Input function and global indices to output ones.
    pub remap: Remap,
    /// The state and data globals.
    pub state_global: u32,
    pub data_global: u32,
    /// Output index of the first runtime function.
    pub runtime_base: u32,
    /// Output index of the first appended type (the input's type count).
    pub first_extra_type: u32,
    /// The appended types, in order.
    pub types: Vec<AppendedType>,
    /// Output type index of `[] -> R` for multi-value function results, by
    /// input type index.
    pub multi_result_types: HashMap<u32, u32>,
    /// Present when any function is instrumented.
    pub frame: Option<FrameFunctions>,
    /// Output index of the wrapper of each of [`Plans::wrapped`], in order.
    pub wrappers: Vec<u32>,
    /// Set when some tail call may suspend: the functions (input indices;
    /// past the input's, the wrappers in order) a rewind may have to reach
    /// through a trampoline.
    pub tail_reached: Option<HashSet<u32>>,
    /// One per result type list that a function whose tail calls may suspend
    /// returns.
    pub trampolines: Vec<Trampoline>,
    /// The function that traps on a host exception in a rethrowing
    /// `catch_all` (see [`crate::plan::Recorder`]), when some handler needs it.
    pub foreign_exception_trap: Option<u32>,
    /// Where saved references of each (nullable) type are kept.
    pub ref_tables: HashMap<ValType, RefTable>,
    /// The tag that re-enters legacy `catch_all` handlers, when some handler
    /// without a recorder holds a point.
    pub reenter_tag: Option<u32>,
    /// Output type index of `[] -> []`, shared by the trap function and the tag.
    pub empty_type: u32,
}

impl Layout {
    /// Lays out the output of `info` instrumented with `plans`.
    pub fn new(
        info: &ModuleInfo<'_>,
        options: &Options,
        analysis: &crate::analysis::Analysis,
        plans: &Plans,
        memory64: bool,
    ) -> Layout {
        let kept_imports = info
            .func_imports
            .iter()
            .filter(|i| i.runtime.is_none())
            .count() as u32;
        let runtime_base = kept_imports + info.bodies.len() as u32;
        let remap = Remap {
            funcs: function_map(info, runtime_base),
            imported_globals: info.num_imported_globals,
            global_shift: if options.import_globals { 2 } else { 0 },
        };
        let (state_global, data_global) = if options.import_globals {
            (info.num_imported_globals, info.num_imported_globals + 1)
        } else {
            (info.num_globals, info.num_globals + 1)
        };
        let mut types = TypeSpace {
            first: info.num_types,
            appended: Vec::new(),
        };
        let encode = |ts: &[AbiType]| -> Vec<wasm_encoder::ValType> {
            ts.iter().map(|&t| abi_val_type(t, memory64)).collect()
        };
        for s in runtime_signatures() {
            types.push(encode(s.params), encode(s.results));
        }
        let empty_type = types.first
            + runtime_signature_position(Signature {
                params: &[],
                results: &[],
            });
        let mut multi_result_types = HashMap::new();
        for d in 0..info.bodies.len() {
            let f = info.func_imports.len() + d;
            if analysis.instrumented[f].is_some() {
                types.add_multi_result(info, f as u32, info.funcs[d].ty, &mut multi_result_types);
            }
        }

        let mut next_function = runtime_base + RuntimeFunction::ALL.len() as u32;
        let mut take_function = || {
            next_function += 1;
            next_function - 1
        };
        let frame = plans.instrumented().next().is_some().then(|| {
            let ptr = abi_val_type(AbiType::Pointer, memory64);
            FrameFunctions {
                ty: types.push(vec![ptr], vec![ptr]),
                pop: take_function(),
                push: take_function(),
            }
        });
        let wrappers: Vec<u32> = plans.wrapped.iter().map(|_| take_function()).collect();
        let tail = plans.instrumented().any(|p| p.tail_through);
        let tail_reached = tail.then(|| tail_reached(info, plans));
        let trampolines = match &tail_reached {
            Some(reached) => trampoline_results(info, plans, reached)
                .into_iter()
                .map(|results| Trampoline {
                    ty: types.push(
                        vec![wasm_encoder::ValType::I32],
                        results.iter().map(|&t| val_type(t)).collect(),
                    ),
                    index: take_function(),
                    results,
                })
                .collect(),
            None => Vec::new(),
        };
        for &import in &plans.wrapped {
            let ty = info.func_imports[import as usize].ty;
            types.add_multi_result(info, import, ty, &mut multi_result_types);
        }
        let foreign_exception_trap = plans
            .instrumented()
            .any(|p| !p.foreign_checks.is_empty())
            .then(&mut take_function);

        Layout {
            remap,
            state_global,
            data_global,
            runtime_base,
            first_extra_type: types.first,
            types: types.appended,
            multi_result_types,
            frame,
            wrappers,
            tail_reached,
            trampolines,
            foreign_exception_trap,
            ref_tables: ref_tables(info, plans),
            reenter_tag: reenter_tag(info, plans),
            empty_type,
        }
    }

    /// Output index of runtime function `r`.
    pub fn runtime_function(&self, r: RuntimeFunction) -> u32 {
        self.runtime_base + runtime_position(r)
    }

    /// Output type index of the runtime function `r`.
    pub fn runtime_type(&self, r: RuntimeFunction) -> u32 {
        self.first_extra_type + runtime_signature_position(r.signature())
    }

    /// The type index of every function the output appends after the input's
    /// (the runtime functions first), in index order.
    pub fn added_function_types(&self, plans: &Plans, info: &ModuleInfo<'_>) -> Vec<u32> {
        let runtime = RuntimeFunction::ALL.map(|r| self.runtime_type(r));
        let frame = self.frame.iter().flat_map(|f| [f.ty, f.ty]);
        let wrappers = plans
            .wrapped
            .iter()
            .map(|&import| info.func_imports[import as usize].ty);
        let trampolines = self.trampolines.iter().map(|t| t.ty);
        let trap = self.foreign_exception_trap.map(|_| self.empty_type);
        runtime
            .into_iter()
            .chain(frame)
            .chain(wrappers)
            .chain(trampolines)
            .chain(trap)
            .collect()
    }

    /// Element types of the added reference tables, in table order.
    pub fn ref_table_types(&self) -> Vec<wasm_encoder::RefType> {
        let mut tables: Vec<(u32, ValType)> =
            self.ref_tables.iter().map(|(t, r)| (r.table, *t)).collect();
        tables.sort_by_key(|(i, _)| *i);
        tables
            .into_iter()
            .map(|(_, t)| match val_type(t) {
                wasm_encoder::ValType::Ref(r) => r,
                other => unreachable!("reference table of non-reference type {other:?}"),
            })
            .collect()
    }
}

/// The appended part of the type index space, as it is laid out.
struct TypeSpace {
    first: u32,
    appended: Vec<AppendedType>,
}

impl TypeSpace {
    /// Appends a type and returns its index.
    fn push(
        &mut self,
        params: Vec<wasm_encoder::ValType>,
        results: Vec<wasm_encoder::ValType>,
    ) -> u32 {
        self.appended.push((params, results));
        self.first + self.appended.len() as u32 - 1
    }

    /// Appends `[] -> R` for function `f` (of input type `ty`) when its
    /// results `R` are several and the type has none yet.
    fn add_multi_result(
        &mut self,
        info: &ModuleInfo<'_>,
        f: u32,
        ty: u32,
        multi_result_types: &mut HashMap<u32, u32>,
    ) {
        let results = info.module_val_types(info.func_type(f).results());
        if results.len() > 1 && !multi_result_types.contains_key(&ty) {
            let index = self.push(vec![], results.iter().map(|&t| val_type(t)).collect());
            multi_result_types.insert(ty, index);
        }
    }
}

/// The distinct signatures of the runtime functions, in the order of their
/// first use in [`RuntimeFunction::ALL`]: the first types the output appends
/// (`[ptr] -> []`, `[] -> []`, `[] -> [i32]`).
fn runtime_signatures() -> Vec<Signature> {
    let mut signatures: Vec<Signature> = Vec::new();
    for f in RuntimeFunction::ALL {
        if !signatures.contains(&f.signature()) {
            signatures.push(f.signature());
        }
    }
    signatures
}

/// The position of `signature` among [`runtime_signatures`].
fn runtime_signature_position(signature: Signature) -> u32 {
    runtime_signatures()
        .iter()
        .position(|s| *s == signature)
        .map_or(0, |p| p as u32)
}

/// The position of runtime function `r` among the generated runtime
/// functions, which the output places in [`RuntimeFunction::ALL`] order.
fn runtime_position(r: RuntimeFunction) -> u32 {
    RuntimeFunction::ALL
        .iter()
        .position(|&f| f == r)
        .map_or(0, |p| p as u32)
}

/// The encoder's type for an ABI type, with pointers `i32` or `i64`.
pub fn abi_val_type(t: AbiType, memory64: bool) -> wasm_encoder::ValType {
    match t {
        AbiType::Pointer if memory64 => wasm_encoder::ValType::I64,
        AbiType::Pointer | AbiType::I32 => wasm_encoder::ValType::I32,
    }
}

/// Per input function, its output index: imports of `asyncify.*` go (their
/// calls go to the generated runtime functions, placed from `runtime_base`
/// in [`RuntimeFunction::ALL`] order), so the functions after them move down.
fn function_map(info: &ModuleInfo<'_>, runtime_base: u32) -> Vec<u32> {
    let mut funcs = Vec::with_capacity(info.num_funcs() as usize);
    let mut removed = 0;
    for f in 0..info.num_funcs() {
        match info.func_imports.get(f as usize).and_then(|i| i.runtime) {
            Some(r) => {
                removed += 1;
                funcs.push(runtime_base + runtime_position(r));
            }
            None => funcs.push(f - removed),
        }
    }
    funcs
}

/// The functions (input indices; past the input's, the wrappers of
/// `plans.wrapped` in order) that a tail call that may suspend can reach, so
/// that a rewind may find their frame on top when it enters the function that
/// made the call: the targets of direct tail calls, the wrappers that tail
/// calls inside a `try` go to, and when an indirect tail call may suspend,
/// every instrumented function that may be in a table or a reference (with
/// the wrappers that replace imports there).
fn tail_reached(info: &ModuleInfo<'_>, plans: &Plans) -> HashSet<u32> {
    let wrapper_of = |import: u32| {
        let j = plans
            .wrapped
            .binary_search(&import)
            .expect("a wrapped import");
        info.num_funcs() + j as u32
    };
    let mut reached = HashSet::new();
    for plan in plans.instrumented() {
        reached.extend(plan.tail_targets.iter().copied());
        reached.extend(
            plan.tail_to_wrapper
                .iter()
                .map(|&(_, import)| wrapper_of(import)),
        );
    }
    if plans.instrumented().any(|p| p.indirect_tail) {
        let imports = info.func_imports.len() as u32;
        reached.extend(info.referenced_funcs.iter().copied().filter(|&f| {
            f >= imports
                && plans
                    .functions
                    .get((f - imports) as usize)
                    .is_some_and(Option::is_some)
        }));
        reached.extend(plans.ref_wrapped.iter().map(|&import| wrapper_of(import)));
    }
    reached
}

/// The input function whose type function `f` has: `f` itself, or for a
/// wrapper's index (past the input's functions) the import it wraps.
pub fn wrapped_or_self(plans: &Plans, info: &ModuleInfo<'_>, f: u32) -> u32 {
    match f.checked_sub(info.num_funcs()) {
        Some(j) => plans.wrapped[j as usize],
        None => f,
    }
}

/// The frame owners (instrumented functions, then wrappers), by input index
/// (a wrapper's is past the input's functions).
pub fn frame_owners(plans: &Plans) -> impl Iterator<Item = &FunctionPlan> {
    plans
        .instrumented()
        .chain(plans.wrappers.iter().map(|(p, _)| p))
}

/// The result types that get a trampoline, in order: those of the functions a
/// suspending tail call may reach, in frame-owner order, then those of the
/// functions whose tail calls may suspend that no reachable function returns
/// (their trampoline only traps); only the latter's results are needed.
fn trampoline_results(
    info: &ModuleInfo<'_>,
    plans: &Plans,
    reached: &HashSet<u32>,
) -> Vec<Vec<ValType>> {
    let mut by_results: Vec<Vec<ValType>> = Vec::new();
    for plan in frame_owners(plans) {
        let f = plan.func_index;
        if !reached.contains(&f) {
            continue;
        }
        let ty = info.func_type(wrapped_or_self(plans, info, f));
        let results = info.module_val_types(ty.results());
        if !by_results.contains(&results) {
            by_results.push(results);
        }
    }
    let needed: Vec<Vec<ValType>> = plans
        .instrumented()
        .filter(|p| p.tail_through)
        .map(|p| info.module_val_types(info.func_type(p.func_index).results()))
        .collect();
    for results in &needed {
        if !by_results.contains(results) {
            by_results.push(results.clone());
        }
    }
    by_results.retain(|r| needed.contains(r));
    by_results
}

/// One table per reference type that some frame saves (with its two slot
/// globals), after the input's tables and the state and data globals, in
/// the order the plans first save them.
fn ref_tables(info: &ModuleInfo<'_>, plans: &Plans) -> HashMap<ValType, RefTable> {
    let mut tables = HashMap::new();
    let mut ref_types: Vec<ValType> = Vec::new();
    for plan in plans.instrumented() {
        for t in &plan.ref_types {
            if !ref_types.contains(t) {
                ref_types.push(*t);
            }
        }
    }
    let first_extra_global = info.num_globals + 2;
    for (i, t) in ref_types.iter().enumerate() {
        let i = i as u32;
        tables.insert(
            *t,
            RefTable {
                table: info.num_tables + i,
                next_global: first_extra_global + 2 * i,
                live_global: first_extra_global + 2 * i + 1,
            },
        );
    }
    tables
}

/// A tag to re-enter legacy `catch_all` handlers (after the input's tags),
/// when some handler without a recorder holds a point.
fn reenter_tag(info: &ModuleInfo<'_>, plans: &Plans) -> Option<u32> {
    let reenters_catch_all = plans.instrumented().any(|p| {
        p.constructs
            .values()
            .flat_map(|c| &c.handlers)
            .any(|h| h.tag.is_none() && h.recorder.is_none() && !h.items.is_empty())
    });
    reenters_catch_all.then(|| info.types.as_ref().tag_count())
}
