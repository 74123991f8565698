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

    // Which memory holds the buffer.
    let (memory, memory64) = if options.secondary_memory.is_some() {
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
    };
    let ptr_type = if memory64 { ValType::I64 } else { ValType::I32 };
    check_runtime_imports(info, ptr_type)?;

    let analysis = analyse(info, options)?;
    let mut warnings = analysis.warnings.clone();

    // Index changes: runtime imports become the generated functions.
    let num_imports = info.func_imports.len() as u32;
    let kept_imports = info
        .func_imports
        .iter()
        .filter(|i| i.runtime.is_none())
        .count() as u32;
    let defined = info.bodies.len() as u32;
    let runtime_base = kept_imports + defined;
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

    let mut no_assert_callee = vec![false; info.num_funcs() as usize];
    for (i, imp) in info.func_imports.iter().enumerate() {
        no_assert_callee[i] = imp.runtime.is_some();
    }
    let runtime_import_referenced = info
        .func_imports
        .iter()
        .enumerate()
        .any(|(i, imp)| imp.runtime.is_some() && info.referenced_funcs.contains(&(i as u32)));
    let mut cx = EmitContext {
        remap: remap.clone(),
        state_global,
        data_global,
        memory,
        memory64,
        asserts: options.asserts,
        no_assert_callee,
        runtime_import_referenced,
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
    let shift = !remap.is_identity();

    // Plans first: the reference types they save decide the tables to add.
    let plan_one = |d: usize| -> Result<Option<FunctionPlan>, Error> {
        let f = num_imports as usize + d;
        match analysis.instrumented[f] {
            Some(_) => plan_function(&plan_cx, d).map(Some),
            None => Ok(None),
        }
    };
    let plans = parallel_map(defined as usize, &plan_one, &mut |_| {})?;
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
        cx.ref_tables.insert(
            *t,
            RefTable {
                table: info.num_tables + i,
                next_global: first_extra_global + 2 * i,
                live_global: first_extra_global + 2 * i + 1,
            },
        );
    }

    // A tag to re-enter legacy `catch_all` handlers, after the input's tags.
    let reenters_catch_all = plans.iter().flatten().any(|p| {
        p.constructs
            .values()
            .flat_map(|c| &c.handlers)
            .any(|h| h.tag.is_none() && h.recorder.is_none() && !h.items.is_empty())
    });
    if reenters_catch_all {
        cx.reenter_tag = Some(info.types.as_ref().tag_count());
    }

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
        let mut tail = TailCalls::default();
        let mut by_results: Vec<(Vec<ValType>, Vec<TrampolineTarget>)> = Vec::new();
        let owners = plans
            .iter()
            .flatten()
            .map(|p| (p, remap.func(p.func_index)))
            .chain(wrappers.iter().map(|(p, _, out)| (p, *out)));
        let reached = tail_reached(info, &plans, &wrapped, &ref_wrapped);
        for (plan, func) in owners {
            let f = plan.func_index;
            let id = tail.ids.len() as u32;
            tail.ids.insert(f, id);
            if !reached.contains(&f) {
                // Every frame names its owner, but a rewind only goes through
                // a trampoline to a function that a tail call may reach.
                continue;
            }
            let ty = info.func_type(wrapped_or_self(&wrapped, info, f));
            let results = info.module_val_types(ty.results());
            let params = info.module_val_types(ty.params());
            if let Some(&p) = params.iter().find(|&&p| is_non_null_ref(p)) {
                let function = match f.checked_sub(info.num_funcs()) {
                    Some(j) => format!("the wrapper of {}", info.func_label(wrapped[j as usize])),
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
        for (j, &import) in wrapped.iter().enumerate() {
            tail.wrappers.insert(import, wrapper_base + j as u32);
        }
        for &import in &ref_wrapped {
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
            let index =
                first_generated_function + extra_functions.len() as u32 + wrappers.len() as u32;
            tail.trampolines.insert(results.clone(), index);
            let ty = first_extra_type + extra_types.len() as u32;
            extra_types.push((
                vec![wasm_encoder::ValType::I32],
                results.iter().map(|&t| val_type(t)).collect(),
            ));
            extra_functions.push((ty, trampoline(targets, id_count, &remap)?));
        }
        cx.tail = Some(tail);
    }
    let mut wrapper_functions = Vec::with_capacity(wrappers.len());
    for ((plan, body, _), &import) in wrappers.iter().zip(&wrapped) {
        let ty = info.func_imports[import as usize].ty;
        let results = info.module_val_types(info.func_type(import).results());
        if results.len() > 1 && !cx.multi_result_types.contains_key(&ty) {
            cx.multi_result_types
                .insert(ty, first_extra_type + extra_types.len() as u32);
            extra_types.push((vec![], results.iter().map(|&t| val_type(t)).collect()));
        }
        let body = wasmparser::FunctionBody::new(wasmparser::BinaryReader::new(body, 0));
        let label = format!("the wrapper of {}", info.func_label(import));
        let f = emit_function(&cx, &body, &results, ty, Mode::Instrument(plan), label)?;
        wrapper_functions.push((ty, f));
    }
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

    let rewrite_one = |d: usize| -> Result<Body<'_>, Error> {
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
            &cx, body, &results, type_index, mode, label,
        )?))
    };
    let bodies = parallel_map(defined as usize, &rewrite_one, progress)?;

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
        ref_remap: (!cx.ref_wrappers.is_empty()).then(|| {
            let mut r = remap.clone();
            for (&import, &wrapper) in &cx.ref_wrappers {
                r.funcs[import as usize] = wrapper;
            }
            r
        }),
        declared_wrappers: {
            let mut w: Vec<u32> = cx.ref_wrappers.values().copied().collect();
            w.sort_unstable();
            w
        },
        ref_tables: {
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
        },
    };
    let wasm = assemble(info, &cx, &add, bodies, &mut warnings)?;
    let mut validator = Validator::new_with_features(crate::read::features());
    validator.validate_all(&wasm).map_err(|e| {
        // Over a limit engines enforce (the input was close to it), or a bug.
        crate::limits::explain(info, &wasm).unwrap_or_else(|| {
            Error::InvalidOutput(format!("{} at offset {:#x}", e.message(), e.offset()))
        })
    })?;

    let tail_ids = cx.tail.is_some();
    let instrumented = (0..info.num_funcs())
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
        .collect();
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
