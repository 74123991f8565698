//! The pipeline from a read module to output bytes: checks, analysis, plans,
//! rewritten bodies, assembly and validation.

use std::collections::{HashMap, HashSet};

use wasmparser::{ExternalKind, ValType, Validator};

use crate::analysis::analyse;
use asyncify_abi::{globals, RuntimeFunction, Signature, SECONDARY_MEMORY_EXPORT};

use crate::emit::{
    abi_val_type, assemble, runtime_signature_position, runtime_signatures, Additions, Body,
};
use crate::plan::{is_non_null_ref, plan_function, wrapper_plan, FunctionPlan, PlanContext};
use crate::read::ModuleInfo;
use crate::rewrite::{
    emit_function, frame_functions, trampoline, val_type, EmitContext, Mode, RefTable, Remap,
    TailCalls, TrampolineTarget,
};
use crate::{Error, InstrumentedFunction, Options, Output, Progress};

/// Runs every phase after reading.
pub fn run(
    info: &ModuleInfo<'_>,
    options: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Output, Error> {
    check_input(info, options)?;
    let (memory, memory64) = buffer_memory(info, options)?;
    let ptr_type = if memory64 { ValType::I64 } else { ValType::I32 };
    check_runtime_imports(info, ptr_type)?;

    let analysis = analyse(info, options)?;
    let mut warnings = analysis.warnings.clone();

    // Index changes: runtime imports become the generated functions.
    let kept_imports = info
        .func_imports
        .iter()
        .filter(|i| i.runtime.is_none())
        .count() as u32;
    let defined = info.bodies.len() as u32;
    let runtime_base = kept_imports + defined;
    let funcs = function_map(info, runtime_base);
    let remap = Remap {
        funcs,
        imported_globals: info.num_imported_globals,
        global_shift: if options.import_globals { 2 } else { 0 },
    };
    let (state_global, data_global) = if options.import_globals {
        (info.num_imported_globals, info.num_imported_globals + 1)
    } else {
        (info.num_globals, info.num_globals + 1)
    };

    // Types appended: the runtime signatures, then `[] -> R` for multi-value results.
    let ptr_enc = val_type(ptr_type);
    let encode = |types: &[asyncify_abi::AbiType]| -> Vec<wasm_encoder::ValType> {
        types.iter().map(|&t| abi_val_type(t, memory64)).collect()
    };
    let mut extra_types: Vec<_> = runtime_signatures()
        .into_iter()
        .map(|s| (encode(s.params), encode(s.results)))
        .collect();
    let first_generated_function = runtime_base + RuntimeFunction::ALL.len() as u32;
    let first_extra_type = info.num_types;
    let multi_result_types =
        multi_result_types(info, &analysis, first_extra_type, &mut extra_types);

    let mut cx = EmitContext {
        remap: remap.clone(),
        state_global,
        data_global,
        memory,
        memory64,
        asserts: options.asserts,
        no_assert_callee: no_assert_callees(info),
        runtime_import_referenced: runtime_import_referenced(info),
        frame_pop: first_generated_function,
        frame_push: first_generated_function + 1,
        multi_result_types,
        ref_tables: HashMap::new(),
        tail: None,
        reenter_tag: None,
        ref_wrappers: HashMap::new(),
        foreign_exception_trap: None,
    };
    let plan_cx = PlanContext {
        info,
        analysis: &analysis,
        ptr_type,
        exact_saves: options.exact_saves,
    };

    // Plans first: the reference types they save decide the tables to add.
    let plans = plan_all(&plan_cx)?;
    cx.ref_tables = ref_tables(info, &plans);

    cx.reenter_tag = reenter_tag(info, &plans);

    // Generated functions after the five runtime ones: `frame_pop` and
    // `frame_push` when any function is instrumented, then the trampolines.
    let mut extra_functions: Vec<(u32, wasm_encoder::Function)> = Vec::new();
    if plans.iter().flatten().next().is_some() {
        let ty = first_extra_type + extra_types.len() as u32;
        extra_types.push((vec![ptr_enc], vec![ptr_enc]));
        let [pop, push] = frame_functions(&cx);
        extra_functions.push((ty, pop));
        extra_functions.push((ty, push));
    }

    // Wrappers (see `wrapper_plan`), placed after `frame_push`: of the
    // imports that a `try` tail-calls, and, when an indirect tail call may
    // suspend, of every import that may suspend and may be called
    // indirectly (the wrapper then replaces it wherever it is referenced).
    let ref_wrapped: Vec<u32> = if plans.iter().flatten().any(|p| p.indirect_tail) {
        plan_cx.suspending_imports_in_tables()
    } else {
        Vec::new()
    };
    let mut wrapped: Vec<u32> = plans
        .iter()
        .flatten()
        .flat_map(|p| p.tail_to_wrapper.iter().map(|&(_, import)| import))
        .chain(ref_wrapped.iter().copied())
        .collect();
    wrapped.sort_unstable();
    wrapped.dedup();
    let wrapper_base = first_generated_function + extra_functions.len() as u32;
    // (plan, input body, output index)
    let wrappers: Vec<(FunctionPlan, Vec<u8>, u32)> = wrapped
        .iter()
        .enumerate()
        .map(|(j, &import)| {
            let (plan, body) = wrapper_plan(info, import, info.num_funcs() + j as u32, ptr_type);
            (plan, body, wrapper_base + j as u32)
        })
        .collect();

    // Tail calls that may suspend: frame ids and one trampoline per result type.
    if plans.iter().flatten().any(|p| p.tail_through) {
        let wrapping = Wrapping {
            wrapped: &wrapped,
            ref_wrapped: &ref_wrapped,
            wrappers: &wrappers,
            base: wrapper_base,
        };
        let mut generated = Generated {
            types: &mut extra_types,
            first_type: first_extra_type,
            functions: &mut extra_functions,
            first_function: first_generated_function,
        };
        cx.tail = Some(tail_calls(
            info,
            &plans,
            &wrapping,
            &mut cx,
            &mut generated,
        )?);
    }
    let wrapper_functions = emit_wrappers(
        info,
        &wrappers,
        &wrapped,
        &mut cx,
        first_extra_type,
        &mut extra_types,
    )?;
    // After `frame_pop` and `frame_push` (there are wrappers only if some
    // function is instrumented), before the trampolines.
    if !wrapper_functions.is_empty() {
        extra_functions.splice(2..2, wrapper_functions);
    }
    // Last, the function an unwind calls when a legacy `catch_all` handler
    // that rethrows holds a host exception (see `plan::Recorder`): it traps,
    // and its name says why.
    let mut function_names = Vec::new();
    if plans.iter().flatten().any(|p| !p.foreign_checks.is_empty()) {
        let index = first_generated_function + extra_functions.len() as u32;
        let mut f = wasm_encoder::Function::new([]);
        f.instruction(&wasm_encoder::Instruction::Unreachable);
        f.instruction(&wasm_encoder::Instruction::End);
        extra_functions.push((first_extra_type + empty_signature_position(), f));
        cx.foreign_exception_trap = Some(index);
        function_names.push((index, FOREIGN_EXCEPTION_TRAP_NAME.to_string()));
    }

    let bodies = rewrite_bodies(info, options, &analysis, &plans, &cx, progress)?;

    let add = Additions {
        import_globals: options.import_globals,
        export_globals: options.export_globals,
        secondary_memory: options.secondary_memory,
        extra_types,
        first_extra_type,
        extra_functions,
        function_names,
        reenter_tag_type: cx
            .reenter_tag
            .map(|_| first_extra_type + empty_signature_position()),
        ref_remap: ref_remap(&remap, &cx),
        declared_wrappers: declared_wrappers(&cx),
        ref_tables: ref_table_types(&cx),
    };
    let wasm = assemble(info, &cx, &add, bodies, &mut warnings)?;
    validate(info, &wasm)?;

    let instrumented = report(info, &analysis, &plans, cx.tail.is_some());
    Ok(Output {
        wasm,
        warnings,
        instrumented,
        function_count: info.num_funcs(),
        function_names: (0..info.num_funcs())
            .map(|f| info.names.get(&f).map(|s| s.to_string()))
            .collect(),
        input_bytes: info.bytes.len(),
    })
}

/// The position of runtime function `r` among the generated runtime
/// functions, which the output places in [`RuntimeFunction::ALL`] order.
fn runtime_position(r: RuntimeFunction) -> u32 {
    RuntimeFunction::ALL
        .iter()
        .position(|&f| f == r)
        .map_or(0, |p| p as u32)
}

/// The position of the runtime type `[] -> []` among the appended types,
/// which the added functions and tags of that type share.
fn empty_signature_position() -> u32 {
    runtime_signature_position(Signature {
        params: &[],
        results: &[],
    })
}

/// Finds the runtime of an earlier asyncify pass under minified export names:
/// an exported `start_unwind` (state := 1, data := arg, bounds check) and a
/// matching `start_rewind` (state := 2) on the same two globals.
fn binaryen_runtime_export(info: &ModuleInfo<'_>) -> Option<String> {
    use wasmparser::Operator as O;
    let num_imports = info.func_imports.len() as u32;
    let mut starts: Vec<(i32, u32, u32, &str)> = Vec::new();
    for (name, kind, index) in &info.exports {
        if *kind != ExternalKind::Func || *index < num_imports {
            continue;
        }
        let body = &info.bodies[(index - num_imports) as usize];
        let Ok(reader) = body.get_operators_reader() else {
            continue;
        };
        let ops: Vec<O<'_>> = reader.into_iter().take(6).filter_map(Result::ok).collect();
        if let [O::I32Const { value }, O::GlobalSet { global_index: g }, O::LocalGet { local_index: 0 }, O::GlobalSet { global_index: h }, O::GlobalGet { global_index: h2 }, O::I32Load { .. } | O::I64Load { .. }] =
            ops.as_slice()
        {
            if h == h2 && (*value == 1 || *value == 2) {
                starts.push((*value, *g, *h, name));
            }
        }
    }
    let unwind = starts.iter().find(|s| s.0 == 1)?;
    starts
        .iter()
        .any(|s| s.0 == 2 && s.1 == unwind.1 && s.2 == unwind.2)
        .then(|| {
            format!(
                "{} (an asyncify_start_unwind under a minified name)",
                unwind.3
            )
        })
}

/// Runs `each` over every defined function, on all cores, in batches so that
/// progress is reported as it goes and the first error (in function order) wins.
fn parallel_map<R: Send>(
    count: usize,
    each: &(dyn Fn(usize) -> Result<R, Error> + Sync),
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<R>, Error> {
    const BATCH: usize = 1024;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let mut bodies = Vec::with_capacity(count);
    let mut start = 0;
    while start < count {
        let end = (start + BATCH).min(count);
        if workers == 1 || end - start < 64 {
            for d in start..end {
                bodies.push(each(d)?);
            }
        } else {
            let per = (end - start).div_ceil(workers);
            let parts: Vec<Result<Vec<R>, Error>> = std::thread::scope(|s| {
                let handles: Vec<_> = (start..end)
                    .step_by(per)
                    .map(|lo| {
                        let hi = (lo + per).min(end);
                        s.spawn(move || (lo..hi).map(each).collect())
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            });
            for part in parts {
                bodies.extend(part?);
            }
        }
        start = end;
        progress(Progress {
            done: start,
            total: count,
        });
    }
    Ok(bodies)
}

/// The guest's imports of `asyncify.*` become the generated runtime
/// functions, so they must have the runtime's signatures: the buffer pointer
/// is `i32`, or `i64` when the buffer's memory is 64-bit.
fn check_runtime_imports(info: &ModuleInfo<'_>, ptr_type: ValType) -> Result<(), Error> {
    for (index, import) in info.func_imports.iter().enumerate() {
        let Some(r) = import.runtime else { continue };
        let abi = |types: &[asyncify_abi::AbiType]| -> Vec<ValType> {
            types
                .iter()
                .map(|t| match t {
                    asyncify_abi::AbiType::Pointer => ptr_type,
                    asyncify_abi::AbiType::I32 => ValType::I32,
                })
                .collect()
        };
        let signature = r.signature();
        let (params, results) = (abi(signature.params), abi(signature.results));
        let (params, results) = (params.as_slice(), results.as_slice());
        let ty = info.func_type(index as u32);
        if ty.params() != params || ty.results() != results {
            let show = |types: &[ValType]| {
                types
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            return Err(Error::RuntimeImportType(format!(
                "the module imports `asyncify.{}` with type [{}] -> [{}], but the runtime \
                 function has type [{}] -> [{}] (the pointer is {ptr_type} because the buffer's \
                 memory is {}-bit)",
                import.name,
                show(ty.params()),
                show(ty.results()),
                show(params),
                show(results),
                if ptr_type == ValType::I64 { 64 } else { 32 },
            )));
        }
    }
    Ok(())
}

/// The name (in the name section) of the function that traps when a
/// suspension happens inside a legacy `catch_all` handler that rethrows and
/// holds an exception of a tag the module cannot name (thrown by the host):
/// wasm backtraces show it.
pub const FOREIGN_EXCEPTION_TRAP_NAME: &str = "asyncify: cannot suspend inside a catch_all \
     handler that rethrows a host exception (its tag is not the module's, so a rewind \
     could not throw it again)";

/// The functions (input indices; past the input's, the wrappers of
/// `wrapped` in order) that a tail call that may suspend can reach, so that a
/// rewind may find their frame on top when it enters the function that made
/// the call: the targets of direct tail calls, the wrappers that tail calls
/// inside a `try` go to, and when an indirect tail call may suspend, every
/// instrumented function that may be in a table or a reference (with the
/// wrappers that replace imports there).
fn tail_reached(
    info: &ModuleInfo<'_>,
    plans: &[Option<FunctionPlan>],
    wrapped: &[u32],
    ref_wrapped: &[u32],
) -> HashSet<u32> {
    let wrapper_of = |import: u32| {
        let j = wrapped.binary_search(&import).expect("a wrapped import");
        info.num_funcs() + j as u32
    };
    let mut reached = HashSet::new();
    for plan in plans.iter().flatten() {
        reached.extend(plan.tail_targets.iter().copied());
        reached.extend(
            plan.tail_to_wrapper
                .iter()
                .map(|&(_, import)| wrapper_of(import)),
        );
    }
    if plans.iter().flatten().any(|p| p.indirect_tail) {
        let imports = info.func_imports.len() as u32;
        reached.extend(info.referenced_funcs.iter().copied().filter(|&f| {
            f >= imports
                && plans
                    .get((f - imports) as usize)
                    .is_some_and(Option::is_some)
        }));
        reached.extend(ref_wrapped.iter().map(|&import| wrapper_of(import)));
    }
    reached
}

/// The input function whose type function `f` has: `f` itself, or for a
/// wrapper's index (past the input's functions) the import it wraps.
fn wrapped_or_self(wrapped: &[u32], info: &ModuleInfo<'_>, f: u32) -> u32 {
    match f.checked_sub(info.num_funcs()) {
        Some(j) => wrapped[j as usize],
        None => f,
    }
}

/// Refuses inputs that cannot be instrumented: already instrumented (by this
/// crate or by Binaryen under minified names), relocatable object files, and
/// export names the options would add that the module already uses.
fn check_input(info: &ModuleInfo<'_>, options: &Options) -> Result<(), Error> {
    if let Some((name, _, _)) = info
        .exports
        .iter()
        .find(|(n, _, _)| RuntimeFunction::from_export_name(n).is_some())
    {
        return Err(Error::AlreadyInstrumented(name.to_string()));
    }
    if let Some(name) = binaryen_runtime_export(info) {
        return Err(Error::AlreadyInstrumented(name));
    }
    for s in info.sections.iter().filter(|s| s.id == 0) {
        let reader = wasmparser::CustomSectionReader::new(wasmparser::BinaryReader::new(
            &info.bytes[s.range.clone()],
            s.range.start as u64,
        ))?;
        if reader.name() == "linking" || reader.name().starts_with("reloc.") {
            return Err(Error::Relocatable {
                section: reader.name().to_string(),
            });
        }
    }
    let taken: Vec<&str> = [SECONDARY_MEMORY_EXPORT, globals::STATE, globals::DATA]
        .into_iter()
        .filter(|n| info.exports.iter().any(|(e, _, _)| e == n))
        .collect();
    if taken.contains(&SECONDARY_MEMORY_EXPORT) && options.secondary_memory.is_some() {
        return Err(Error::Options("the module already exports `asyncify_memory`, the name the secondary memory is exported under".into()));
    }
    if options.export_globals && taken.iter().any(|n| n.starts_with("__")) {
        return Err(Error::Options("the module already exports `__asyncify_state` or `__asyncify_data`; cannot export the globals under those names".into()));
    }

    Ok(())
}

/// The memory that holds the buffer, and whether it is 64-bit.
fn buffer_memory(info: &ModuleInfo<'_>, options: &Options) -> Result<(u32, bool), Error> {
    Ok(if options.secondary_memory.is_some() {
        (info.memories.len() as u32, false)
    } else if let Some(name) = &options.memory {
        let found = info
            .exports
            .iter()
            .find(|(n, k, _)| n == name && *k == ExternalKind::Memory);
        match found {
            Some((_, _, idx)) => (*idx, info.memories[*idx as usize].memory64),
            None => {
                let exported: Vec<&str> = info
                    .exports
                    .iter()
                    .filter(|(_, k, _)| *k == ExternalKind::Memory)
                    .map(|(n, _, _)| *n)
                    .collect();
                return Err(Error::Options(format!(
                    "no memory is exported as `{name}`; exported memories: {}",
                    if exported.is_empty() {
                        "none".to_string()
                    } else {
                        exported.join(", ")
                    }
                )));
            }
        }
    } else if info.memories.is_empty() {
        return Err(Error::Options(
            "the module has no memory to hold the asyncify buffer; use the secondary memory option to add one".into(),
        ));
    } else {
        (0, info.memories[0].memory64)
    })
}

/// The wrappers of imports (see [`wrapper_plan`]) and where they start in the
/// output's function index space.
struct Wrapping<'w> {
    /// The wrapped imports, increasing.
    wrapped: &'w [u32],
    /// Those that replace their import wherever it is referenced.
    ref_wrapped: &'w [u32],
    /// Per wrapper: its plan, its input body, its output index.
    wrappers: &'w [(FunctionPlan, Vec<u8>, u32)],
    /// Output index of the first wrapper.
    base: u32,
}

/// The types and functions the output appends, as they are added.
struct Generated<'g> {
    /// Appended types: (params, results).
    types: &'g mut Vec<(Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>)>,
    /// Type index of the first appended type.
    first_type: u32,
    /// Appended functions after the runtime ones: (type index, body).
    functions: &'g mut Vec<(u32, wasm_encoder::Function)>,
    /// Function index of the first of them.
    first_function: u32,
}

/// Frame owner ids for every instrumented function and wrapper, and one
/// trampoline per result type of the functions whose tail calls may suspend
/// (appended to `generated`).
fn tail_calls(
    info: &ModuleInfo<'_>,
    plans: &[Option<FunctionPlan>],
    wrapping: &Wrapping<'_>,
    cx: &mut EmitContext,
    generated: &mut Generated<'_>,
) -> Result<TailCalls, Error> {
    let mut tail = TailCalls::default();
    let mut by_results: Vec<(Vec<ValType>, Vec<TrampolineTarget>)> = Vec::new();
    let owners = plans
        .iter()
        .flatten()
        .map(|p| (p, cx.remap.func(p.func_index)))
        .chain(wrapping.wrappers.iter().map(|(p, _, out)| (p, *out)));
    let reached = tail_reached(info, plans, wrapping.wrapped, wrapping.ref_wrapped);
    for (plan, func) in owners {
        let f = plan.func_index;
        let id = tail.ids.len() as u32;
        tail.ids.insert(f, id);
        if !reached.contains(&f) {
            // Every frame names its owner, but a rewind only goes through
            // a trampoline to a function that a tail call may reach.
            continue;
        }
        let ty = info.func_type(wrapped_or_self(wrapping.wrapped, info, f));
        let results = info.module_val_types(ty.results());
        let params = info.module_val_types(ty.params());
        if let Some(&p) = params.iter().find(|&&p| is_non_null_ref(p)) {
            let function = match f.checked_sub(info.num_funcs()) {
                Some(j) => format!(
                    "the wrapper of {}",
                    info.func_label(wrapping.wrapped[j as usize])
                ),
                None => info.func_label(f),
            };
            return Err(Error::Unsupported {
                function,
                instruction: "return_call".into(),
                detail: format!(
                    "the function may be reached by a tail call that suspends, and it takes \
                     a non-nullable reference parameter ({}): a rewind re-enters it through \
                     a trampoline that has no such value to pass",
                    info.format_val_type(p)
                ),
            });
        }
        let target = TrampolineTarget { id, func, params };
        match by_results.iter_mut().find(|(r, _)| *r == results) {
            Some((_, targets)) => targets.push(target),
            None => by_results.push((results, vec![target])),
        }
    }
    let needed: Vec<Vec<ValType>> = plans
        .iter()
        .flatten()
        .filter(|p| p.tail_through)
        .map(|p| info.module_val_types(info.func_type(p.func_index).results()))
        .collect();
    let id_count = tail.ids.len() as u32;
    for (j, &import) in wrapping.wrapped.iter().enumerate() {
        tail.wrappers.insert(import, wrapping.base + j as u32);
    }
    for &import in wrapping.ref_wrapped {
        cx.ref_wrappers.insert(import, tail.wrappers[&import]);
    }
    for results in &needed {
        if !by_results.iter().any(|(r, _)| r == results) {
            // No reachable target returns these: the trampoline only traps.
            by_results.push((results.clone(), Vec::new()));
        }
    }
    for (results, targets) in &by_results {
        if !needed.contains(results) {
            continue;
        }
        let index = generated.first_function
            + generated.functions.len() as u32
            + wrapping.wrappers.len() as u32;
        tail.trampolines.insert(results.clone(), index);
        let ty = generated.first_type + generated.types.len() as u32;
        generated.types.push((
            vec![wasm_encoder::ValType::I32],
            results.iter().map(|&t| val_type(t)).collect(),
        ));
        generated
            .functions
            .push((ty, trampoline(targets, id_count, &cx.remap)?));
    }
    Ok(tail)
}

/// Validates the output; an engine limit the output goes over (the input was
/// close to it) is reported as such, anything else is a bug.
fn validate(info: &ModuleInfo<'_>, wasm: &[u8]) -> Result<(), Error> {
    let mut validator = Validator::new_with_features(crate::read::features());
    validator.validate_all(wasm).map_err(|e| {
        // Over a limit engines enforce (the input was close to it), or a bug.
        crate::limits::explain(info, wasm).unwrap_or_else(|| {
            Error::InvalidOutput(format!("{} at offset {:#x}", e.message(), e.offset()))
        })
    })?;
    Ok(())
}

/// What [`Output::instrumented`] reports for every instrumented function.
fn report(
    info: &ModuleInfo<'_>,
    analysis: &crate::analysis::Analysis,
    plans: &[Option<FunctionPlan>],
    tail_ids: bool,
) -> Vec<InstrumentedFunction> {
    let num_imports = info.func_imports.len() as u32;
    (0..info.num_funcs())
        .filter_map(|f| {
            let plan = (f >= num_imports)
                .then(|| plans[(f - num_imports) as usize].as_ref())
                .flatten();
            analysis.instrumented[f as usize]
                .clone()
                .map(|reason| InstrumentedFunction {
                    index: f,
                    name: info.names.get(&f).map(|s| s.to_string()),
                    reason,
                    points: plan.map_or(0, |p| p.points.len() as u32),
                    saved_locals: plan.map_or(0, |p| p.saved.len() as u32),
                    saved_per_point: plan.map_or_else(Vec::new, |p| {
                        p.unwind_groups
                            .iter()
                            .flat_map(|g| (g.first..=g.last).map(move |_| g.saved.len() as u32))
                            .collect()
                    }),
                    live_per_point: plan.map_or_else(Vec::new, |p| {
                        let refs = p
                            .saved
                            .iter()
                            .filter(|&&l| matches!(p.local_types[l as usize], ValType::Ref(_)))
                            .count();
                        p.needed_per_point()
                            .into_iter()
                            .map(|mut set| {
                                set.retain(|&l| {
                                    !matches!(p.local_types[l as usize], ValType::Ref(_))
                                });
                                set.sort_unstable();
                                set.dedup();
                                (set.len() + refs) as u32
                            })
                            .collect()
                    }),
                    frame_bytes: plan.map_or(0, |p| p.frame_bytes(tail_ids)),
                })
        })
        .collect()
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

/// One table per reference type that some frame saves (with its two slot
/// globals), after the input's tables and the state and data globals, in
/// the order the plans first save them.
fn ref_tables(info: &ModuleInfo<'_>, plans: &[Option<FunctionPlan>]) -> HashMap<ValType, RefTable> {
    let mut tables = HashMap::new();
    let mut ref_types: Vec<ValType> = Vec::new();
    for plan in plans.iter().flatten() {
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

/// Every defined function's output body: instrumented by its plan, copied
/// with indices remapped (and asserts), or, when nothing changes, the input's
/// bytes. Runs on all cores.
fn rewrite_bodies<'a>(
    info: &ModuleInfo<'a>,
    options: &Options,
    analysis: &crate::analysis::Analysis,
    plans: &[Option<FunctionPlan>],
    cx: &EmitContext,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Body<'a>>, Error> {
    let num_imports = info.func_imports.len() as u32;
    let shift = !cx.remap.is_identity();
    let rewrite_one = |d: usize| -> Result<Body<'a>, Error> {
        let f = num_imports + d as u32;
        let body = &info.bodies[d];
        let raw = || Body::Raw(&info.bytes[body.range().start as usize..body.range().end as usize]);
        let asserts = options.asserts && !analysis.runtime[f as usize];
        let plan = plans[d].as_ref();
        let refs_wrapped = !cx.ref_wrappers.is_empty()
            && info.calls[d]
                .ref_funcs
                .iter()
                .any(|f| cx.ref_wrappers.contains_key(f));
        if plan.is_none() && !shift && !asserts && !refs_wrapped {
            return Ok(raw());
        }
        let label = info.func_label(f);
        let results = info.module_val_types(info.func_type(f).results());
        let type_index = info.funcs[d].ty;
        let mode = match plan {
            Some(plan) => Mode::Instrument(plan),
            None => Mode::Copy { asserts },
        };
        Ok(Body::Encoded(emit_function(
            cx, body, &results, type_index, mode, label,
        )?))
    };
    parallel_map(info.bodies.len(), &rewrite_one, progress)
}

/// When wrappers replace imports in references: the function remapping for
/// tables, globals and element segments (calls keep `cx.remap`).
fn ref_remap(remap: &Remap, cx: &EmitContext) -> Option<Remap> {
    (!cx.ref_wrappers.is_empty()).then(|| {
        let mut r = remap.clone();
        for (&import, &wrapper) in &cx.ref_wrappers {
            r.funcs[import as usize] = wrapper;
        }
        r
    })
}

/// The wrappers that replace imports in references, increasing.
fn declared_wrappers(cx: &EmitContext) -> Vec<u32> {
    let mut w: Vec<u32> = cx.ref_wrappers.values().copied().collect();
    w.sort_unstable();
    w
}

/// Element types of the added reference tables, in table order.
fn ref_table_types(cx: &EmitContext) -> Vec<wasm_encoder::RefType> {
    let mut tables: Vec<(u32, ValType)> =
        cx.ref_tables.iter().map(|(t, r)| (r.table, *t)).collect();
    tables.sort_by_key(|(i, _)| *i);
    tables
        .into_iter()
        .map(|(_, t)| match val_type(t) {
            wasm_encoder::ValType::Ref(r) => r,
            other => unreachable!("reference table of non-reference type {other:?}"),
        })
        .collect()
}

/// A type `[] -> R` for every multi-value result type `R` of an instrumented
/// function (block types of the rewrite), appended to `extra_types`; by the
/// function's type index.
fn multi_result_types(
    info: &ModuleInfo<'_>,
    analysis: &crate::analysis::Analysis,
    first_extra_type: u32,
    extra_types: &mut Vec<(Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>)>,
) -> HashMap<u32, u32> {
    let num_imports = info.func_imports.len() as u32;
    let defined = info.bodies.len() as u32;
    let mut multi_result_types = HashMap::new();
    for d in 0..defined {
        let f = num_imports + d;
        if analysis.instrumented[f as usize].is_some() {
            let ty = info.funcs[d as usize].ty;
            let results = info.module_val_types(info.func_type(f).results());
            if results.len() > 1 && !multi_result_types.contains_key(&ty) {
                multi_result_types.insert(ty, first_extra_type + extra_types.len() as u32);
                extra_types.push((vec![], results.iter().map(|&t| val_type(t)).collect()));
            }
        }
    }
    multi_result_types
}

/// Per function: calls of it need no assert after them (the runtime imports,
/// which change the state on purpose).
fn no_assert_callees(info: &ModuleInfo<'_>) -> Vec<bool> {
    let mut no_assert_callee = vec![false; info.num_funcs() as usize];
    for (i, imp) in info.func_imports.iter().enumerate() {
        no_assert_callee[i] = imp.runtime.is_some();
    }
    no_assert_callee
}

/// Whether a runtime import may be called indirectly (it is in a table or a reference).
fn runtime_import_referenced(info: &ModuleInfo<'_>) -> bool {
    info.func_imports
        .iter()
        .enumerate()
        .any(|(i, imp)| imp.runtime.is_some() && info.referenced_funcs.contains(&(i as u32)))
}

/// A tag to re-enter legacy `catch_all` handlers (after the input's tags),
/// when some handler without a recorder holds a point.
fn reenter_tag(info: &ModuleInfo<'_>, plans: &[Option<FunctionPlan>]) -> Option<u32> {
    let reenters_catch_all = plans.iter().flatten().any(|p| {
        p.constructs
            .values()
            .flat_map(|c| &c.handlers)
            .any(|h| h.tag.is_none() && h.recorder.is_none() && !h.items.is_empty())
    });
    reenters_catch_all.then(|| info.types.as_ref().tag_count())
}

/// The bodies of the wrappers (type index, body), in `wrapped` order; a
/// multi-value result type of a wrapped import gets its `[] -> R` type.
fn emit_wrappers(
    info: &ModuleInfo<'_>,
    wrappers: &[(FunctionPlan, Vec<u8>, u32)],
    wrapped: &[u32],
    cx: &mut EmitContext,
    first_extra_type: u32,
    extra_types: &mut Vec<(Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>)>,
) -> Result<Vec<(u32, wasm_encoder::Function)>, Error> {
    let mut wrapper_functions = Vec::with_capacity(wrappers.len());
    for ((plan, body, _), &import) in wrappers.iter().zip(wrapped) {
        let ty = info.func_imports[import as usize].ty;
        let results = info.module_val_types(info.func_type(import).results());
        if results.len() > 1 && !cx.multi_result_types.contains_key(&ty) {
            cx.multi_result_types
                .insert(ty, first_extra_type + extra_types.len() as u32);
            extra_types.push((vec![], results.iter().map(|&t| val_type(t)).collect()));
        }
        let body = wasmparser::FunctionBody::new(wasmparser::BinaryReader::new(body, 0));
        let label = format!("the wrapper of {}", info.func_label(import));
        let f = emit_function(cx, &body, &results, ty, Mode::Instrument(plan), label)?;
        wrapper_functions.push((ty, f));
    }
    Ok(wrapper_functions)
}

/// The plan of every defined function that is instrumented, in parallel.
fn plan_all(plan_cx: &PlanContext<'_, '_>) -> Result<Vec<Option<FunctionPlan>>, Error> {
    let num_imports = plan_cx.info.func_imports.len();
    let analysis = plan_cx.analysis;
    let plan_one = |d: usize| -> Result<Option<FunctionPlan>, Error> {
        let f = num_imports + d;
        match analysis.instrumented[f] {
            Some(_) => plan_function(plan_cx, d).map(Some),
            None => Ok(None),
        }
    };
    parallel_map(plan_cx.info.bodies.len(), &plan_one, &mut |_| {})
}
