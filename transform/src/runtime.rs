//! Runtime functions: the bodies of every function the output appends after
//! the input's, in [`Layout`] order (the five runtime functions, `frame_pop`
//! and `frame_push`, the wrappers of imports, the tail-call trampolines and
//! the trap for host exceptions), and the frame ids that tail calls share
//! with the rewrite.

use asyncify_abi::{header, RuntimeFunction, State};
use wasm_encoder::{BlockType, Function, Instruction, MemArg, MemArgTarget};

use crate::layout::{frame_owners, wrapped_or_self, Layout, Plans};
use crate::plan::is_non_null_ref;
use crate::read::ModuleInfo;
use crate::rewrite::{
    emit_function, frame_functions, trampoline, EmitContext, Mode, TailCalls, TrampolineTarget,
};
use crate::Error;

/// The name (in the name section) of the function that traps when a
/// suspension happens inside a legacy `catch_all` handler that rethrows and
/// holds an exception of a tag the module cannot name (thrown by the host):
/// wasm backtraces show it.
pub const FOREIGN_EXCEPTION_TRAP_NAME: &str = "asyncify: cannot suspend inside a catch_all \
     handler that rethrows a host exception (its tag is not the module's, so a rewind \
     could not throw it again)";

/// The bodies of the functions the output appends, in index order (see
/// [`Layout::added_function_types`]).
pub fn added_functions(
    info: &ModuleInfo<'_>,
    layout: &Layout,
    plans: &Plans,
    cx: &EmitContext,
) -> Result<Vec<Function>, Error> {
    let trampolines = trampolines(info, layout, plans, cx)?;
    let mut functions = runtime_bodies(cx);
    if layout.frame.is_some() {
        functions.extend(frame_functions(cx));
    }
    for ((plan, body), &import) in plans.wrappers.iter().zip(&plans.wrapped) {
        let ty = info.func_imports[import as usize].ty;
        let results = info.module_val_types(info.func_type(import).results());
        let body = wasmparser::FunctionBody::new(wasmparser::BinaryReader::new(body, 0));
        let label = format!("the wrapper of {}", info.func_label(import));
        functions.push(emit_function(
            cx,
            &body,
            &results,
            ty,
            Mode::Instrument(plan),
            label,
        )?);
    }
    functions.extend(trampolines);
    if layout.foreign_exception_trap.is_some() {
        let mut f = Function::new([]);
        f.instruction(&Instruction::Unreachable);
        f.instruction(&Instruction::End);
        functions.push(f);
    }
    Ok(functions)
}

/// Frame owner ids for every instrumented function and wrapper, the
/// trampolines and the wrappers tail calls go to, when some tail call may
/// suspend. Refuses a function a suspending tail call may reach that takes a
/// non-nullable reference (a trampoline has no value to pass it).
pub fn tail_calls(
    info: &ModuleInfo<'_>,
    layout: &Layout,
    plans: &Plans,
) -> Result<Option<TailCalls>, Error> {
    let Some(reached) = &layout.tail_reached else {
        return Ok(None);
    };
    let mut tail = TailCalls::default();
    for plan in frame_owners(plans) {
        let f = plan.func_index;
        let id = tail.ids.len() as u32;
        tail.ids.insert(f, id);
        if !reached.contains(&f) {
            // Every frame names its owner, but a rewind only goes through
            // a trampoline to a function that a tail call may reach.
            continue;
        }
        let ty = info.func_type(wrapped_or_self(plans, info, f));
        let params = info.module_val_types(ty.params());
        if let Some(&p) = params.iter().find(|&&p| is_non_null_ref(p)) {
            let function = match f.checked_sub(info.num_funcs()) {
                Some(j) => format!(
                    "the wrapper of {}",
                    info.func_label(plans.wrapped[j as usize])
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
    }
    for (&import, &index) in plans.wrapped.iter().zip(&layout.wrappers) {
        tail.wrappers.insert(import, index);
    }
    for t in &layout.trampolines {
        tail.trampolines.insert(t.results.clone(), t.index);
    }
    Ok(Some(tail))
}

/// The trampolines' bodies, in [`Layout::trampolines`] order: each calls the
/// reachable frame owners that return its results.
fn trampolines(
    info: &ModuleInfo<'_>,
    layout: &Layout,
    plans: &Plans,
    cx: &EmitContext,
) -> Result<Vec<Function>, Error> {
    let (Some(reached), Some(tail)) = (&layout.tail_reached, &cx.tail) else {
        return Ok(Vec::new());
    };
    let owners: Vec<(TrampolineTarget, Vec<wasmparser::ValType>)> = frame_owners(plans)
        .filter(|p| reached.contains(&p.func_index))
        .map(|p| {
            let f = p.func_index;
            let ty = info.func_type(wrapped_or_self(plans, info, f));
            let func = match f.checked_sub(info.num_funcs()) {
                Some(j) => layout.wrappers[j as usize],
                None => cx.remap.func(f),
            };
            let target = TrampolineTarget {
                id: tail.ids[&f],
                func,
                params: info.module_val_types(ty.params()),
            };
            (target, info.module_val_types(ty.results()))
        })
        .collect();
    layout
        .trampolines
        .iter()
        .map(|t| {
            let targets: Vec<TrampolineTarget> = owners
                .iter()
                .filter(|(_, results)| *results == t.results)
                .map(|(target, _)| target.clone())
                .collect();
            trampoline(&targets, tail.ids.len() as u32, &cx.remap)
        })
        .collect()
}

/// The bodies of the runtime functions, in [`RuntimeFunction::ALL`] order.
fn runtime_bodies(cx: &EmitContext) -> Vec<Function> {
    let end_field = header::end_offset(cx.memory64);
    let load = |offset: u64| {
        let m = MemArg {
            offset,
            align: if cx.memory64 { 3 } else { 2 },
            target: MemArgTarget::Memory(cx.memory),
            ordering: None,
        };
        if cx.memory64 {
            Instruction::I64Load(m)
        } else {
            Instruction::I32Load(m)
        }
    };
    // Traps when cur > end.
    let check = |f: &mut Function| {
        f.instruction(&Instruction::GlobalGet(cx.data_global));
        f.instruction(&load(header::CUR_OFFSET));
        f.instruction(&Instruction::GlobalGet(cx.data_global));
        f.instruction(&load(end_field));
        f.instruction(&if cx.memory64 {
            Instruction::I64GtU
        } else {
            Instruction::I32GtU
        });
        f.instruction(&Instruction::If(BlockType::Empty));
        f.instruction(&Instruction::Unreachable);
        f.instruction(&Instruction::End);
    };
    let set_state = |f: &mut Function, s: State| {
        f.instruction(&Instruction::I32Const(s.value()));
        f.instruction(&Instruction::GlobalSet(cx.state_global));
    };
    RuntimeFunction::ALL
        .into_iter()
        .map(|runtime| {
            let mut f = Function::new([]);
            match runtime.sets_state() {
                Some(state) => {
                    set_state(&mut f, state);
                    if runtime.takes_pointer() {
                        f.instruction(&Instruction::LocalGet(0));
                        f.instruction(&Instruction::GlobalSet(cx.data_global));
                    }
                    check(&mut f);
                }
                None => {
                    f.instruction(&Instruction::GlobalGet(cx.state_global));
                }
            }
            f.instruction(&Instruction::End);
            f
        })
        .collect()
}
