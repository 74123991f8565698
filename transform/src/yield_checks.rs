//! Yield checks: budget checks that let a CPU-bound guest give its thread back.
//!
//! With [`Options::yield_checks`](crate::Options::yield_checks) the input is
//! first rewritten so that every loop header, and the entry of every function
//! that can take part in a recursion, charges an approximate instruction cost
//! to a budget global and, when the budget goes below zero, calls the import
//! [`YIELD_IMPORT`] (`asyncify.yield`). That import may suspend like any
//! other, so the rest of the transform instruments the new call sites and the
//! host can unwind there, run other work, and rewind: time-slicing without a
//! native stack per call.
//!
//! The contract with the host, which any asyncify runtime can serve:
//! - `(import "asyncify" "yield" (func (result i32)))`: called when the budget
//!   is spent. It may suspend (start an unwind) and, when it returns for real
//!   (directly or on the rewind), its result is the new budget. Returning
//!   `i32::MAX` turns checks practically off; trapping ends the call (a deadline).
//! - `(export "asyncify_budget" (global (mut i32)))`: the budget, which the
//!   host may set at any time (for example right after instantiation). Its
//!   initial value is [`DEFAULT_BUDGET`].
//!
//! Where the checks go: every `loop` can run without bound, so each loop body
//! starts with a check charged with the number of instructions of the body
//! outside its inner loops (which charge their own). Unbounded recursion
//! needs a cycle in the call graph, so a function gets an entry check when it
//! can reach itself: through direct calls, through indirect calls and
//! `call_ref` (to any function that escapes into a table, a reference or an
//! export), and through imports (a host may call back into any export). A
//! function entry is charged with the instructions outside its loops.
//! Functions left out of instrumentation by the remove list or the only list
//! get no checks, since a suspension there could not be resumed.

use std::borrow::Cow;

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    CodeSection, ExportKind, ExportSection, GlobalSection, GlobalType, ImportSection, Instruction,
    Module, SectionId, TypeSection, ValType,
};
use wasmparser::{ExternalKind, FunctionBody, Operator};

use crate::emit::section_rank;
use crate::read::ModuleInfo;
use crate::{glob_match, Error, Options};

pub use asyncify_abi::yield_checks::{BUDGET_EXPORT, DEFAULT_BUDGET};

/// The import a budget check calls when the budget is spent: module and name.
pub const YIELD_IMPORT: (&str, &str) = (
    asyncify_abi::yield_checks::IMPORT_MODULE,
    asyncify_abi::yield_checks::IMPORT_NAME,
);

/// Adds the yield checks to `bytes` (a valid binary module). A module without
/// function bodies is returned unchanged.
pub(crate) fn add<'a>(bytes: &'a [u8], options: &Options) -> Result<Cow<'a, [u8]>, Error> {
    let info = crate::read::read(bytes)?;
    if info.bodies.is_empty() {
        return Ok(Cow::Borrowed(bytes));
    }
    refuse_collisions(&info)?;
    let num_imports = info.func_imports.len() as u32;
    let entry_checks = recursive_functions(&info);
    let checked = (0..info.bodies.len() as u32)
        .map(|k| may_be_instrumented(info.names.get(&(num_imports + k)).copied(), options))
        .collect();
    let mut adder = CheckAdder {
        num_func_imports: num_imports,
        yield_type: info.num_types,
        budget_global: info.num_globals,
        yield_func: num_imports,
        entry_checks,
        checked,
        next_body: 0,
        added: Added::default(),
    };
    let mut module = Module::new();
    adder.parse_core_module(&mut module, wasmparser::Parser::new(0), bytes)?;
    Ok(Cow::Owned(module.finish()))
}

/// The options the rest of the transform runs with after [`add`]: the yield
/// import may suspend whatever the import options say.
pub(crate) fn options_with_yield_import(options: &Options) -> Options {
    let mut options = options.clone();
    let yield_import = format!("{}.{}", YIELD_IMPORT.0, YIELD_IMPORT.1);
    if options.ignore_imports {
        options.ignore_imports = false;
        options.imports = vec![yield_import];
    } else if !options.imports.is_empty() {
        options.imports.push(yield_import);
    }
    options
}

/// Refuses a module that already has the yield import or the budget export
/// (yield checks added twice would share and confuse one budget).
fn refuse_collisions(info: &ModuleInfo<'_>) -> Result<(), Error> {
    let (module, name) = YIELD_IMPORT;
    if info
        .func_imports
        .iter()
        .any(|i| i.module == module && i.name == name)
    {
        return Err(Error::Options(format!(
            "yield checks: the module already imports `{module}.{name}`, so it already has \
             yield checks (or uses the name for something else); add them to the original module"
        )));
    }
    if info.exports.iter().any(|(n, _, _)| *n == BUDGET_EXPORT) {
        return Err(Error::Options(format!(
            "yield checks: the module already exports `{BUDGET_EXPORT}`, so it already has \
             yield checks (or uses the name for something else); add them to the original module"
        )));
    }
    Ok(())
}

/// Whether a function named `name` can be instrumented under the list options.
fn may_be_instrumented(name: Option<&str>, options: &Options) -> bool {
    let listed = |list: &[String]| name.is_some_and(|n| list.iter().any(|p| glob_match(p, n)));
    match &options.only_list {
        Some(only) => listed(only),
        None => !listed(&options.remove_list),
    }
}

/// Per defined function: whether it can reach itself through calls, so that
/// its entry needs a check. Imports, indirect calls and `call_ref` lead to a
/// node standing for "any function that escapes" (referenced or exported).
fn recursive_functions(info: &ModuleInfo<'_>) -> Vec<bool> {
    let num_imports = info.func_imports.len();
    let n = info.num_funcs() as usize;
    let any = n;
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n + 1];
    for (k, calls) in info.calls.iter().enumerate() {
        let from = num_imports + k;
        let mut to_any = calls.indirect;
        for &callee in &calls.callees {
            if (callee as usize) < num_imports {
                to_any = true;
            } else {
                edges[from].push(callee as usize);
            }
        }
        if to_any {
            edges[from].push(any);
        }
    }
    let exported = info
        .exports
        .iter()
        .filter(|(_, kind, _)| *kind == ExternalKind::Func)
        .map(|(_, _, index)| *index);
    for f in info.referenced_funcs.iter().copied().chain(exported) {
        if f as usize >= num_imports && (f as usize) < n {
            edges[any].push(f as usize);
        }
    }
    let component = strongly_connected_components(&edges);
    let mut size = vec![0usize; n + 1];
    for &c in &component {
        size[c] += 1;
    }
    (num_imports..n)
        .map(|f| size[component[f]] > 1 || edges[f].contains(&f))
        .collect()
}

/// Tarjan's algorithm without recursion (call graphs of hostile modules can
/// be deep): the component number of every node.
fn strongly_connected_components(edges: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut component = vec![UNSEEN; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut next_component = 0;
    // (node, next edge to look at)
    let mut work: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        work.push((root, 0));
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if *edge == 0 && index[v] == UNSEEN {
                index[v] = next_index;
                low[v] = next_index;
                next_index += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*edge) {
                *edge += 1;
                if index[w] == UNSEEN {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component[w] = next_component;
                    if w == v {
                        break;
                    }
                }
                next_component += 1;
            }
        }
    }
    component
}

/// Sections the adder had to create because the input has none.
#[derive(Default)]
struct Added {
    imports: bool,
    globals: bool,
    exports: bool,
}

/// The re-encoder that adds the import, the global, its export and the checks.
struct CheckAdder {
    num_func_imports: u32,
    /// Type index of `(func (result i32))`, appended to the type section.
    yield_type: u32,
    /// Global index of the budget, appended after the defined globals.
    budget_global: u32,
    /// Function index of the yield import, appended after the imports.
    yield_func: u32,
    /// Per defined function: it needs an entry check.
    entry_checks: Vec<bool>,
    /// Per defined function: it may get checks at all.
    checked: Vec<bool>,
    next_body: usize,
    added: Added,
}

impl CheckAdder {
    fn add_yield_import(&mut self, imports: &mut ImportSection) {
        let (module, name) = YIELD_IMPORT;
        imports.import(
            module,
            name,
            wasm_encoder::EntityType::Function(self.yield_type),
        );
        self.added.imports = true;
    }

    fn add_budget_global(&mut self, globals: &mut GlobalSection) {
        let ty = GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        };
        globals.global(ty, &wasm_encoder::ConstExpr::i32_const(DEFAULT_BUDGET));
        self.added.globals = true;
    }

    fn add_budget_export(&mut self, exports: &mut ExportSection) {
        exports.export(BUDGET_EXPORT, ExportKind::Global, self.budget_global);
        self.added.exports = true;
    }

    /// The check: charge `cost`, and when the budget goes below zero call
    /// the yield import and store the budget it returns.
    fn check(&self, f: &mut wasm_encoder::Function, cost: u32) {
        let cost = cost.clamp(1, i32::MAX as u32) as i32;
        f.instruction(&Instruction::GlobalGet(self.budget_global));
        f.instruction(&Instruction::I32Const(cost));
        f.instruction(&Instruction::I32Sub);
        f.instruction(&Instruction::GlobalSet(self.budget_global));
        f.instruction(&Instruction::GlobalGet(self.budget_global));
        f.instruction(&Instruction::I32Const(0));
        f.instruction(&Instruction::I32LtS);
        f.instruction(&Instruction::If(wasm_encoder::BlockType::Empty));
        f.instruction(&Instruction::Call(self.yield_func));
        f.instruction(&Instruction::GlobalSet(self.budget_global));
        f.instruction(&Instruction::End);
    }
}

/// The costs of one body: instructions outside any loop, and per loop (in
/// the order the loops start) the instructions of its body outside inner loops.
fn body_costs(body: &FunctionBody<'_>) -> Result<(u32, Vec<u32>), wasmparser::BinaryReaderError> {
    let mut outside = 0u32;
    let mut loops = Vec::new();
    // Per open block: the loop it is (an index into `loops`), if it is one.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        let op = reader.read()?;
        match open.iter().rev().find_map(|o| *o) {
            Some(l) => loops[l] = u32::saturating_add(loops[l], 1),
            None => outside = outside.saturating_add(1),
        }
        match op {
            Operator::Loop { .. } => {
                open.push(Some(loops.len()));
                loops.push(0);
            }
            Operator::Block { .. }
            | Operator::If { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. } => open.push(None),
            Operator::End => {
                open.pop();
            }
            _ => {}
        }
    }
    Ok((outside, loops))
}

impl Reencode for CheckAdder {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error> {
        Ok(if func >= self.num_func_imports {
            func + 1
        } else {
            func
        })
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error> {
        reencode::utils::parse_type_section(self, types, section)?;
        types.ty().function([], [ValType::I32]);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_yield_import(imports);
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), reencode::Error> {
        reencode::utils::parse_global_section(self, globals, section)?;
        self.add_budget_global(globals);
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), reencode::Error> {
        reencode::utils::parse_export_section(self, exports, section)?;
        self.add_budget_export(exports);
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error> {
        // Sections the input lacks are created just before the first section
        // that must follow them (or at the end). The type section always
        // exists in a module with function bodies.
        let comes_after =
            |section: SectionId| before.is_none_or(|b| section_rank(b) > section_rank(section));
        if !self.added.imports && comes_after(SectionId::Import) {
            let mut imports = ImportSection::new();
            self.add_yield_import(&mut imports);
            module.section(&imports);
        }
        if !self.added.globals && comes_after(SectionId::Global) {
            let mut globals = GlobalSection::new();
            self.add_budget_global(&mut globals);
            module.section(&globals);
        }
        if !self.added.exports && comes_after(SectionId::Export) {
            let mut exports = ExportSection::new();
            self.add_budget_export(&mut exports);
            module.section(&exports);
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        body: FunctionBody<'_>,
    ) -> Result<(), reencode::Error> {
        let k = self.next_body;
        self.next_body += 1;
        let mut f = self.new_function_with_parsed_locals(&body)?;
        let checked = self.checked.get(k).copied().unwrap_or(false);
        let (outside, loop_costs) = body_costs(&body)?;
        if checked && self.entry_checks.get(k).copied().unwrap_or(false) {
            self.check(&mut f, outside);
        }
        let mut loops = loop_costs.into_iter();
        let mut reader = body.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            let is_loop = matches!(op, Operator::Loop { .. });
            f.instruction(&self.instruction(op)?);
            if is_loop {
                let cost = loops.next().unwrap_or(1);
                if checked {
                    self.check(&mut f, cost);
                }
            }
        }
        code.function(&f);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_checks(wat: &str, options: &Options) -> String {
        let bytes = wat::parse_str(wat).unwrap();
        let out = add(&bytes, options).unwrap();
        wasmparser::Validator::new().validate_all(&out).unwrap();
        wasmprinter::print_bytes(&out).unwrap()
    }

    #[test]
    fn loops_are_charged_their_body_and_recursion_its_entry() {
        let text = with_checks(
            r#"(module
                (func $leaf (result i32) i32.const 1)
                (func $spin (param i32)
                    (loop $l (br_if $l (local.get 0))))
                (func $rec (param i32) (result i32)
                    (if (result i32) (local.get 0)
                        (then (call $rec (i32.sub (local.get 0) (i32.const 1))))
                        (else (i32.const 0)))))"#,
            &Options::default(),
        );
        assert!(
            text.contains(r#"(import "asyncify" "yield" (func "#),
            "{text}"
        );
        assert!(
            text.contains(r#"(export "asyncify_budget" (global "#),
            "{text}"
        );
        // $leaf neither loops nor recurses: no check.
        let leaf = text.split("(func $leaf").nth(1).unwrap();
        let leaf = leaf.split("(func ").next().unwrap();
        assert!(!leaf.contains("call 0"), "{leaf}");
        // Two checks: one in $spin's loop (3 instructions), one at $rec's entry.
        assert_eq!(text.matches("call 0").count(), 2, "{text}");
        assert!(
            text.contains("loop $l\n      global.get 0\n      i32.const 3"),
            "{text}"
        );
        // Calls to the shifted functions are renumbered.
        assert!(text.contains("call $rec"), "{text}");
    }

    #[test]
    fn mutual_recursion_through_a_table_gets_entry_checks() {
        let text = with_checks(
            r#"(module
                (type $t (func))
                (table 1 funcref)
                (elem (i32.const 0) $a)
                (func $a (call $b))
                (func $b (call_indirect (type $t) (i32.const 0))))"#,
            &Options::default(),
        );
        assert_eq!(text.matches("call 0").count(), 2, "{text}");
    }

    #[test]
    fn listed_out_functions_get_no_checks() {
        let options = Options {
            remove_list: vec!["spin".into()],
            ..Options::default()
        };
        let text = with_checks(r#"(module (func $spin (loop $l (br $l))))"#, &options);
        assert_eq!(text.matches("call 0").count(), 0, "{text}");
    }

    #[test]
    fn sections_the_input_lacks_are_created() {
        // No import, global or export section at all.
        let text = with_checks(r#"(module (func (loop)))"#, &Options::default());
        assert!(
            text.contains("(global (;0;) (mut i32) i32.const 1000000)"),
            "{text}"
        );
    }

    #[test]
    fn a_second_application_is_refused() {
        let bytes = wat::parse_str("(module (func (loop)))").unwrap();
        let once = add(&bytes, &Options::default()).unwrap().into_owned();
        let err = add(&once, &Options::default()).unwrap_err();
        assert!(
            err.to_string().contains("already imports `asyncify.yield`"),
            "{err}"
        );
    }

    #[test]
    fn deep_call_chains_do_not_recurse() {
        let mut wat = String::from("(module");
        for i in 0..50_000 {
            wat.push_str(&format!("(func $f{i} call $f{})", i + 1));
        }
        wat.push_str("(func $f50000 call $f0))");
        let bytes = wat::parse_str(&wat).unwrap();
        let info = crate::read::read(&bytes).unwrap();
        assert!(recursive_functions(&info).iter().all(|&r| r));
    }
}
