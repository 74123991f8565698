//! Which indirect calls may suspend.
//!
//! Binaryen assumes that every indirect call may reach a function that
//! suspends, so every function making one is instrumented, and so are all
//! its callers. In a module that no function reference can enter from
//! outside, that is far too cautious: an indirect call (`call_indirect`,
//! `call_ref` and their tail forms) can then only reach a function the
//! module itself references (in an element segment, a global's initializer
//! or a `ref.func`), and only one whose type matches the call's type (the
//! engine checks it). So a call of type `T` may suspend exactly when some
//! referenced function of type `T`, or of a subtype of `T`, changes the state.
//!
//! A module is closed to references when neither the host nor another module
//! can hand it a function reference: no table that can hold one is imported
//! or exported, no imported global, no mutable exported global, no import's
//! result, no export's parameter and no imported or exported tag's payload
//! can carry one. A GC struct or array field that holds function references
//! makes every reference type suspect (an `externref` can be converted to
//! `anyref` and cast to such a struct). Modules that fail the test keep
//! Binaryen's rule.

use std::collections::{HashMap, HashSet};

use wasmparser::types::{CoreTypeId, TypesRef};
use wasmparser::{
    AbstractHeapType, CompositeInnerType, ExternalKind, HeapType, StorageType, UnpackedIndex,
    ValType,
};

use crate::read::ModuleInfo;

/// Whether no function reference can enter the module from outside it.
pub fn closed_to_references(info: &ModuleInfo<'_>) -> bool {
    let types = info.types.as_ref();
    let fields_hold_funcs = gc_fields_hold_funcs(types, info.num_types);
    let holds = |t: ValType| holds_func(types, t, fields_hold_funcs);
    let tag_holds = |tag: u32| {
        let id = types.tag_at(tag);
        types[id].unwrap_func().params().iter().any(|&t| holds(t))
    };
    let table_holds = |table: u32| holds(ValType::Ref(types.table_at(table).element_type));
    let num_imported_funcs = info.func_imports.len() as u32;
    if (0..num_imported_funcs).any(|f| info.func_type(f).results().iter().any(|&t| holds(t))) {
        return false;
    }
    if (0..info.num_imported_globals).any(|g| holds(types.global_at(g).content_type)) {
        return false;
    }
    if (0..info.num_imported_tables).any(table_holds) || (0..info.num_imported_tags).any(tag_holds)
    {
        return false;
    }
    !info.exports.iter().any(|&(_, kind, index)| match kind {
        ExternalKind::Func | ExternalKind::FuncExact => {
            info.func_type(index).params().iter().any(|&t| holds(t))
        }
        ExternalKind::Table => table_holds(index),
        ExternalKind::Global => {
            let global = types.global_at(index);
            global.mutable && holds(global.content_type)
        }
        ExternalKind::Tag => tag_holds(index),
        ExternalKind::Memory => false,
    })
}

/// Whether a struct or array type of the module has a field that can hold a
/// function reference (or the module has continuation types).
fn gc_fields_hold_funcs(types: TypesRef<'_>, num_types: u32) -> bool {
    (0..num_types).any(|i| {
        let id = types.core_type_at_in_module(i);
        let field_holds = |s: &StorageType| match s {
            StorageType::Val(t) => holds_func(types, *t, false),
            StorageType::I8 | StorageType::I16 => false,
        };
        match &types[id].composite_type.inner {
            CompositeInnerType::Func(_) => false,
            CompositeInnerType::Array(a) => field_holds(&a.0.element_type),
            CompositeInnerType::Struct(s) => s.fields.iter().any(|f| field_holds(&f.element_type)),
            CompositeInnerType::Cont(_) => true,
        }
    })
}

/// Whether a value of type `t` can be (or, through GC fields, contain) a
/// function reference. `fields_hold_funcs`: some struct or array field can.
fn holds_func(types: TypesRef<'_>, t: ValType, fields_hold_funcs: bool) -> bool {
    let ValType::Ref(r) = t else { return false };
    match r.heap_type() {
        HeapType::Abstract { ty, .. } => match ty {
            AbstractHeapType::Func
            | AbstractHeapType::NoFunc
            | AbstractHeapType::Cont
            | AbstractHeapType::NoCont => true,
            _ => fields_hold_funcs,
        },
        HeapType::Concrete(index) | HeapType::Exact(index) => {
            let id = match index {
                UnpackedIndex::Module(i) => types.core_type_at_in_module(i),
                UnpackedIndex::Id(id) => id,
                UnpackedIndex::RecGroup(_) => return true,
            };
            match &types[id].composite_type.inner {
                CompositeInnerType::Func(_) | CompositeInnerType::Cont(_) => true,
                CompositeInnerType::Array(_) | CompositeInnerType::Struct(_) => fields_hold_funcs,
            }
        }
    }
}

/// The call types (canonical type ids) that may reach a function changing
/// the state, grown as the analysis finds such functions.
pub struct SuspendingTypes {
    marked: HashSet<CoreTypeId>,
    /// Per call type: the functions making an indirect call of that type.
    callers: HashMap<CoreTypeId, Vec<u32>>,
}

impl SuspendingTypes {
    /// No type marked yet; indexes the indirect calls of every defined
    /// function for which `eligible` holds.
    pub fn new(info: &ModuleInfo<'_>, eligible: impl Fn(u32) -> bool) -> Self {
        let types = info.types.as_ref();
        let num_imports = info.func_imports.len() as u32;
        let mut callers: HashMap<CoreTypeId, Vec<u32>> = HashMap::new();
        for (d, calls) in info.calls.iter().enumerate() {
            let f = num_imports + d as u32;
            if !eligible(f) {
                continue;
            }
            for &ty in &calls.indirect_types {
                let list = callers.entry(types.core_type_at_in_module(ty)).or_default();
                if list.last() != Some(&f) {
                    list.push(f);
                }
            }
        }
        SuspendingTypes {
            marked: HashSet::new(),
            callers,
        }
    }

    /// Notes that function `f` changes the state. If the module references
    /// it, every call type it can be called through (its own type and its
    /// supertypes) may now suspend: returns the functions making such calls
    /// that were not affected before.
    pub fn reach(&mut self, info: &ModuleInfo<'_>, f: u32) -> Vec<u32> {
        let mut newly = Vec::new();
        if !info.referenced_funcs.contains(&f) {
            return newly;
        }
        let types = info.types.as_ref();
        let mut id = Some(types.core_function_at(f));
        while let Some(ty) = id {
            if !self.marked.insert(ty) {
                break;
            }
            newly.extend(self.callers.get(&ty).into_iter().flatten().copied());
            id = types.supertype_of(ty);
        }
        newly
    }

    /// Per module type index: whether an indirect call of that type may suspend.
    pub fn per_type_index(&self, info: &ModuleInfo<'_>) -> Vec<bool> {
        let types = info.types.as_ref();
        (0..info.num_types)
            .map(|i| self.marked.contains(&types.core_type_at_in_module(i)))
            .collect()
    }
}
