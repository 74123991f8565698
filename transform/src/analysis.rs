//! Analysis: which functions may change the asyncify state, and why.
//!
//! A function is instrumented when it can reach a suspending import (directly
//! or through calls), or makes an indirect call that may suspend, subject to
//! the add, remove and only lists. An indirect call may suspend unless
//! indirect calls are ignored or the module is closed to function references
//! and no function the call can reach changes the state (see [`crate::indirect`]). Functions that call the guest-imported
//! runtime (`asyncify.start_unwind` and friends) are the module's own async
//! runtime: they change the state but are never instrumented themselves.

use crate::indirect::{self, SuspendingTypes};
use crate::options::Options;
use crate::read::ModuleInfo;
use crate::{Error, Reason};

/// The result of the analysis.
pub struct Analysis {
    /// Per function (imports included): can a call to it change the state?
    pub changes_state: Vec<bool>,
    /// Per function: why it is instrumented, or `None` if it is not.
    pub instrumented: Vec<Option<Reason>>,
    /// Per function: every indirect call in it is a suspension point.
    pub indirect_suspends: Vec<bool>,
    /// Per module type index: an indirect call of that type, in an
    /// instrumented function, is a suspension point.
    pub indirect_type_suspends: Vec<bool>,
    /// Per function: it calls a state-changing runtime import (never instrumented).
    pub runtime: Vec<bool>,
    /// Warnings (patterns that matched nothing).
    pub warnings: Vec<String>,
}

impl Analysis {
    /// Whether an indirect call of type `type_index` in function `func` is a
    /// suspension point (when `func` is instrumented).
    pub fn indirect_call_suspends(&self, func: u32, type_index: u32) -> bool {
        self.indirect_suspends[func as usize]
            || self
                .indirect_type_suspends
                .get(type_index as usize)
                .copied()
                .unwrap_or(false)
    }
}

/// Compiled function-name lists.
struct NameList<'o> {
    what: &'static str,
    patterns: &'o [String],
    used: Vec<bool>,
}

impl<'o> NameList<'o> {
    fn new(what: &'static str, patterns: &'o [String]) -> Self {
        NameList {
            what,
            patterns,
            used: vec![false; patterns.len()],
        }
    }

    fn matches(&mut self, name: Option<&str>) -> bool {
        let Some(name) = name else { return false };
        let mut hit = false;
        for (i, p) in self.patterns.iter().enumerate() {
            if crate::glob_match(p, name) {
                self.used[i] = true;
                hit = true;
            }
        }
        hit
    }

    fn unused_warnings(&self, warnings: &mut Vec<String>) {
        for (p, used) in self.patterns.iter().zip(&self.used) {
            if !used {
                warnings.push(format!("the {} entry `{p}` matches no function", self.what));
            }
        }
    }
}

/// Runs the analysis.
pub fn analyse(info: &ModuleInfo<'_>, options: &Options) -> Result<Analysis, Error> {
    let n = info.num_funcs() as usize;
    let num_imports = info.func_imports.len();
    let mut warnings = Vec::new();

    // Imports that may suspend.
    let mut import_patterns = NameList::new("imports list", &options.imports);
    let mut changes_state = vec![false; n];
    let mut leaf_reason: Vec<Option<Reason>> = vec![None; n];
    for (i, import) in info.func_imports.iter().enumerate() {
        let suspends = match import.runtime {
            // get_state only reads the state.
            Some(r) => r.sets_state().is_some(),
            None if options.ignore_imports => false,
            None if options.imports.is_empty() => true,
            None => import_patterns.matches(Some(&format!("{}.{}", import.module, import.name))),
        };
        changes_state[i] = suspends;
        if suspends && import.runtime.is_none() {
            leaf_reason[i] = Some(Reason::CallsImport {
                module: import.module.to_string(),
                name: import.name.to_string(),
            });
        }
    }
    if !options.ignore_imports {
        import_patterns.unused_warnings(&mut warnings);
    }

    let name = |f: u32| info.names.get(&f).copied();
    let mut add = NameList::new("add list", &options.add_list);
    let mut remove = NameList::new("remove list", &options.remove_list);
    let empty = Vec::new();
    let mut only = NameList::new("only list", options.only_list.as_ref().unwrap_or(&empty));
    let mut in_add = vec![false; n];
    let mut in_remove = vec![false; n];
    let mut in_only = vec![false; n];
    for f in num_imports..n {
        in_add[f] = add.matches(name(f as u32));
        in_remove[f] = remove.matches(name(f as u32));
        in_only[f] = only.matches(name(f as u32));
    }
    add.unused_warnings(&mut warnings);
    remove.unused_warnings(&mut warnings);
    only.unused_warnings(&mut warnings);

    // Runtime functions: they call asyncify.start_unwind & co. directly.
    let mut runtime = vec![false; n];
    for (d, calls) in info.calls.iter().enumerate() {
        let f = num_imports + d;
        if calls.callees.iter().any(|&c| {
            (c as usize) < num_imports
                && changes_state[c as usize]
                && info.func_imports[c as usize].runtime.is_some()
        }) {
            runtime[f] = true;
            changes_state[f] = !in_remove[f];
            let callee = calls
                .callees
                .iter()
                .find(|&&c| {
                    (c as usize) < num_imports && info.func_imports[c as usize].runtime.is_some()
                })
                .copied()
                .unwrap_or(0);
            let imp = &info.func_imports[callee as usize];
            leaf_reason[f] = Some(Reason::CallsRuntime(format!("{}.{}", imp.module, imp.name)));
        }
    }

    let mut instrumented: Vec<Option<Reason>> = vec![None; n];
    // Narrowing by type needs a closed module, and is not used with an only
    // list (which names exactly the functions that may suspend).
    let by_type = !options.ignore_indirect
        && options.only_list.is_none()
        && indirect::closed_to_references(info);
    let mut indirect_suspends = vec![false; n];
    for d in 0..info.bodies.len() {
        let f = num_imports + d;
        indirect_suspends[f] = (!options.ignore_indirect && !by_type) || in_add[f] || in_only[f];
    }

    if options.only_list.is_some() {
        for f in num_imports..n {
            if in_only[f] {
                instrumented[f] = Some(Reason::OnlyList);
                changes_state[f] = true;
            }
        }
        return Ok(Analysis {
            changes_state,
            instrumented,
            indirect_suspends,
            indirect_type_suspends: Vec::new(),
            runtime,
            warnings,
        });
    }

    // Reverse call graph for propagation.
    let mut callers: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (d, calls) in info.calls.iter().enumerate() {
        let f = (num_imports + d) as u32;
        for &c in &calls.callees {
            callers[c as usize].push(f);
        }
    }

    let mut work: Vec<u32> = Vec::new();
    // Seeds.
    work.extend((0..n as u32).filter(|&f| changes_state[f as usize]));
    for d in 0..info.bodies.len() {
        let f = num_imports + d;
        if runtime[f] || in_remove[f] {
            continue;
        }
        if info.calls[d].indirect && !options.ignore_indirect && !by_type {
            changes_state[f] = true;
            instrumented[f] = Some(Reason::IndirectCall);
            work.push(f as u32);
        }
    }
    for f in num_imports..n {
        if in_add[f] && !runtime[f] && instrumented[f].is_none() {
            instrumented[f] = Some(Reason::AddList);
            if options.propagate_add_list && !changes_state[f] {
                changes_state[f] = true;
                work.push(f as u32);
            }
        }
    }
    // With narrowing by type: an indirect call may reach the referenced
    // functions that change the state (and add-list functions, which are
    // instrumented whether or not that propagates to their callers).
    let mut suspending_types =
        SuspendingTypes::new(info, |f| !in_remove[f as usize] && !runtime[f as usize]);
    let mut reach = |f: u32,
                     changes_state: &mut Vec<bool>,
                     instrumented: &mut Vec<Option<Reason>>,
                     work: &mut Vec<u32>| {
        if !by_type {
            return;
        }
        for g in suspending_types.reach(info, f) {
            let g_index = g as usize;
            if instrumented[g_index].is_none() {
                instrumented[g_index] = Some(Reason::IndirectCall);
            }
            if !changes_state[g_index] {
                changes_state[g_index] = true;
                work.push(g);
            }
        }
    };
    for f in num_imports..n {
        if in_add[f] && !changes_state[f] {
            reach(f as u32, &mut changes_state, &mut instrumented, &mut work);
        }
    }
    // Propagate to callers.
    while let Some(callee) = work.pop() {
        reach(callee, &mut changes_state, &mut instrumented, &mut work);
        for &caller in &callers[callee as usize] {
            let c = caller as usize;
            if in_remove[c] || runtime[c] {
                continue;
            }
            if instrumented[c].is_none() {
                instrumented[c] = Some(match &leaf_reason[callee as usize] {
                    Some(r @ Reason::CallsImport { .. }) => r.clone(),
                    _ => Reason::Calls(callee),
                });
            }
            if !changes_state[c] {
                changes_state[c] = true;
                work.push(caller);
            }
        }
    }
    // Add-list functions are instrumented; whether they make callers
    // instrumented was decided above (propagate-add-list).
    let indirect_type_suspends = if by_type {
        suspending_types.per_type_index(info)
    } else {
        Vec::new()
    };
    Ok(Analysis {
        changes_state,
        instrumented,
        indirect_suspends,
        indirect_type_suspends,
        runtime,
        warnings,
    })
}
