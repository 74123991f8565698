//! The pipeline from a read module to output bytes, as named phases (see the
//! table in the crate documentation): checks, analyse, plan, layout, runtime
//! functions, rewrite, assemble, validate and report.

use wasmparser::{ExternalKind, ValType, Validator};

use crate::analysis::{analyse, Analysis};
use asyncify_abi::{globals, RuntimeFunction, SECONDARY_MEMORY_EXPORT};

use crate::emit::{assemble, Additions, Body};
use crate::layout::{Layout, Plans};
use crate::plan::{plan_function, FunctionPlan, PlanContext};
use crate::read::ModuleInfo;
use crate::rewrite::{emit_function, EmitContext, Mode};
use crate::runtime::{added_functions, tail_calls, FOREIGN_EXCEPTION_TRAP_NAME};
use crate::{Error, InstrumentedFunction, Options, Output, Progress};

/// Runs every phase after reading.
pub fn run(
    info: &ModuleInfo<'_>,
    options: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Output, Error> {
    let buffer = checks(info, options)?;
    let analysis = analyse(info, options)?;
    let plans = plan(info, &analysis, options, buffer)?;
    let layout = Layout::new(info, options, &analysis, &plans, buffer.memory64);
    let cx = emit_context(info, options, &layout, &plans, buffer)?;
    let added = added_functions(info, &layout, &plans, &cx)?;
    let bodies = rewrite_bodies(info, options, &analysis, &plans.functions, &cx, progress)?;
    let mut warnings = analysis.warnings.clone();
    let wasm = assemble(
        info,
        &cx,
        &additions(info, options, &layout, &plans, &cx, added),
        bodies,
        &mut warnings,
    )?;
    validate(info, &wasm)?;
    Ok(Output {
        wasm,
        warnings,
        instrumented: report(info, &analysis, &plans.functions, cx.tail.is_some()),
        function_count: info.num_funcs(),
        function_names: (0..info.num_funcs())
            .map(|f| info.names.get(&f).map(|s| s.to_string()))
            .collect(),
        input_bytes: info.bytes.len(),
    })
}

/// The memory that holds the unwind buffer.
#[derive(Debug, Clone, Copy)]
struct BufferMemory {
    index: u32,
    memory64: bool,
}

/// Refuses what cannot be instrumented, chooses the buffer's memory and
/// checks the types of the `asyncify.*` imports.
fn checks(info: &ModuleInfo<'_>, options: &Options) -> Result<BufferMemory, Error> {
    check_input(info, options)?;
    let (index, memory64) = buffer_memory(info, options)?;
    let ptr_type = if memory64 { ValType::I64 } else { ValType::I32 };
    check_runtime_imports(info, ptr_type)?;
    Ok(BufferMemory { index, memory64 })
}

/// The plan of every instrumented function and of the wrappers they need.
fn plan(
    info: &ModuleInfo<'_>,
    analysis: &Analysis,
    options: &Options,
    buffer: BufferMemory,
) -> Result<Plans, Error> {
    let plan_cx = PlanContext {
        info,
        analysis,
        ptr_type: if buffer.memory64 {
            ValType::I64
        } else {
            ValType::I32
        },
        exact_saves: options.exact_saves,
    };
    let functions = plan_all(&plan_cx)?;
    Ok(Plans::new(&plan_cx, functions))
}

/// What the rewrite of every body needs, with the frame ids of tail calls.
fn emit_context(
    info: &ModuleInfo<'_>,
    options: &Options,
    layout: &Layout,
    plans: &Plans,
    buffer: BufferMemory,
) -> Result<EmitContext, Error> {
    let tail = tail_calls(info, layout, plans)?;
    // Wrappers replace imports in references only when tail calls may suspend.
    let ref_wrappers = match &tail {
        Some(tail) => plans
            .ref_wrapped
            .iter()
            .map(|import| (*import, tail.wrappers[import]))
            .collect(),
        None => Default::default(),
    };
    // Without instrumented functions nothing calls the frame functions.
    let first_generated = layout.runtime_base + RuntimeFunction::ALL.len() as u32;
    let (frame_pop, frame_push) = layout
        .frame
        .map_or((first_generated, first_generated + 1), |f| (f.pop, f.push));
    Ok(EmitContext {
        remap: layout.remap.clone(),
        state_global: layout.state_global,
        data_global: layout.data_global,
        memory: buffer.index,
        memory64: buffer.memory64,
        asserts: options.asserts,
        no_assert_callee: no_assert_callees(info),
        runtime_import_referenced: runtime_import_referenced(info),
        frame_pop,
        frame_push,
        multi_result_types: layout.multi_result_types.clone(),
        ref_tables: layout.ref_tables.clone(),
        tail,
        reenter_tag: layout.reenter_tag,
        ref_wrappers,
        foreign_exception_trap: layout.foreign_exception_trap,
    })
}

/// What assembly adds to the input's sections.
fn additions(
    info: &ModuleInfo<'_>,
    options: &Options,
    layout: &Layout,
    plans: &Plans,
    cx: &EmitContext,
    added: Vec<wasm_encoder::Function>,
) -> Additions {
    let ref_remap = (!cx.ref_wrappers.is_empty()).then(|| {
        let mut r = cx.remap.clone();
        for (&import, &wrapper) in &cx.ref_wrappers {
            r.funcs[import as usize] = wrapper;
        }
        r
    });
    let mut declared_wrappers: Vec<u32> = cx.ref_wrappers.values().copied().collect();
    declared_wrappers.sort_unstable();
    Additions {
        import_globals: options.import_globals,
        export_globals: options.export_globals,
        secondary_memory: options.secondary_memory,
        extra_types: layout.types.clone(),
        runtime_exports: RuntimeFunction::ALL
            .map(|r| (r, layout.runtime_function(r)))
            .to_vec(),
        added_functions: layout
            .added_function_types(plans, info)
            .into_iter()
            .zip(added)
            .collect(),
        function_names: layout
            .foreign_exception_trap
            .map(|f| (f, FOREIGN_EXCEPTION_TRAP_NAME.to_string()))
            .into_iter()
            .collect(),
        reenter_tag_type: layout.reenter_tag.map(|_| layout.empty_type),
        ref_remap,
        declared_wrappers,
        ref_tables: layout.ref_table_types(),
    }
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
    analysis: &Analysis,
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

/// Every defined function's output body: instrumented by its plan, copied
/// with indices remapped (and asserts), or, when nothing changes, the input's
/// bytes. Runs on all cores.
fn rewrite_bodies<'a>(
    info: &ModuleInfo<'a>,
    options: &Options,
    analysis: &Analysis,
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
