//! From bytes to a test case: a wasm-smith module shaped for the driver, the
//! export calls to make, and a suspension pattern.
//!
//! The shape:
//! - function imports only, taken from a fixed pool of numeric signatures
//!   (`env.f0` ... `host.f11`, see [`IMPORT_POOL`]), so the driver serves them
//!   and option sets can name them;
//! - injected calls (in seven cases of eight): wasm-smith rarely emits a
//!   `call`, so after some operators a call to an added import goes in,
//!   `inject.<type>` replacing the value on top of the stack or `inject.tick`
//!   (see `asyncify_inject`, shared with the fuzz target): suspension points everywhere, with values
//!   live on the operand stack and in locals;
//! - every function, global, table and memory exported under a predictable
//!   name (`f3`, `g0`, `t0`, `mem0`), so the driver calls the functions and
//!   compares the globals and memories; in half the cases ("closed") no
//!   table, reference-typed global or function taking a reference is
//!   exported, so that the transform narrows indirect calls by type;
//! - one guest memory (32-bit, at least one page, bounded maximum), and
//!   optionally a separate buffer memory (see [`BUFFER_PAGES`]);
//! - wasm-smith's `ensure_termination`: a `fuel` global that traps loops and
//!   recursion once spent, reset by an added `refuel` function before each
//!   export call (the driver's wasmtime fuel is the backstop);
//! - features drawn per case ("swarm testing"): SIMD, relaxed SIMD, reference
//!   types (tables, `call_indirect` targets, `ref.func`), bulk memory,
//!   multi-value, floats, and whether wasm-smith avoids traps (which also
//!   rules out `call_indirect`). Tail calls, exceptions (`try_table`) and GC
//!   (with typed function references and `call_ref`) only for the
//!   `beyond_binaryen` cases. Never: legacy exceptions (wasmtime does not run
//!   them; `tests/tests/legacy_exceptions.rs` adds them to modules from
//!   [`generate_for_v8`] and runs those under Node), threads, memory64, wide
//!   arithmetic.

use std::collections::{BTreeSet, HashSet};
use std::convert::Infallible;

use arbitrary::Unstructured;
use asyncify_inject::{self as inject, splitmix, InjectSet, Injections};
use asyncify_tests::{Val, V128};

use crate::shapes::{self, Flavor, Kinds};
use wasm_encoder::reencode::{self, Error as ReencodeError, Reencode};
use wasm_encoder::{
    CodeSection, ConstExpr, ElementSection, Elements, ExportKind, ExportSection, Function,
    FunctionSection, ImportSection, MemorySection, MemoryType, RefType, SectionId, TableSection,
    TableType, TypeSection,
};
use wasmparser::{CompositeInnerType, ElementItems, Operator, Parser, Payload, TypeRef, ValType};

/// The imports a module may take (each with probability 1/2, as wasm-smith
/// picks them). Numeric signatures only, some multi-value, one with `v128`.
pub const IMPORT_POOL: &str = r#"(module
  (import "env" "f0" (func))
  (import "env" "f1" (func (param i32)))
  (import "env" "f2" (func (result i32)))
  (import "env" "f3" (func (param i32) (result i32)))
  (import "env" "f4" (func (param i64 i32) (result i64)))
  (import "env" "f5" (func (param f32) (result f64)))
  (import "env" "f6" (func (param f64 f64) (result f32)))
  (import "env" "f7" (func (param i32 i32) (result i32 i64)))
  (import "host" "f8" (func (result f64 i32 i32)))
  (import "host" "f9" (func (param v128) (result v128)))
  (import "host" "f10" (func (param i32 f32) (result i32)))
  (import "host" "f11" (func (param i64))))"#;

/// Pages of the buffer memory: 1 MiB, far more than the frames a module
/// whose calls and loops are bounded by [`FUEL`] can save.
pub const BUFFER_PAGES: u64 = 16;

/// wasm-smith's termination fuel for each export call (`refuel` resets it):
/// each function entry and loop iteration costs one. It bounds the work of
/// a call and the recursion depth, and both must stay well within the
/// driver's limits for the instrumented module too:
/// - wasmtime's stack (512 KiB): wasm-smith's frames can take over 1 kB
///   (v128 spills) and instrumented ones more; at 400, a recursion that
///   spends the fuel in the original overflowed the stack when instrumented;
/// - the driver's wasmtime fuel (500 M per run): under `Always`, every
///   import call unwinds and rewinds the whole stack, so the cost grows with
///   calls times depth, both proportional to this; at 100, about one case in
///   4000 ran out.
pub const FUEL: u32 = 50;

/// How many types wasm-smith may add beyond the import pool's.
const OWN_TYPES: usize = 16;

/// A generated case.
pub struct Case {
    /// The module (binary).
    pub wasm: Vec<u8>,
    /// Export calls, made in order in one instance.
    pub calls: Vec<(String, Vec<Val>)>,
    /// The suspension pattern for the third schedule.
    pub pattern: Vec<bool>,
    /// The features drawn for this case, for the report.
    pub features: String,
    /// What typed-reference content wasm-smith's own code has (before the
    /// spliced shapes).
    #[allow(dead_code)] // Read by the property test, not by the legacy-exceptions test.
    pub smith_content: TypedContent,
}

/// Builds a case from `bytes`. With `buffer_memory`, the module gets an extra
/// memory 0 exported as `memory`, which no guest instruction touches (every
/// guest memory index is shifted up by one): the driver's buffer lives
/// there, so the guest can neither clobber saved frames nor see them.
///
/// With `beyond_binaryen`, wasm-smith may also emit tail calls, exception
/// handling (`try_table`, `throw`, `throw_ref`, tags) and GC (typed function
/// references, `call_ref`, structs, arrays, casts), each drawn per case: what
/// Binaryen's asyncify refuses or mis-handles.
pub fn generate(bytes: &[u8], buffer_memory: bool, beyond_binaryen: bool) -> Result<Case, String> {
    build(bytes, buffer_memory, beyond_binaryen, false)
}

/// Like [`generate`] without the buffer memory, for Node 20 (V8 11.3), where
/// `tests/tests/legacy_exceptions.rs` runs the modules after adding legacy
/// exception handling to them: V8 11.3 has no multi-memory (the buffer goes
/// into the guest's memory 0) and no extended constant expressions, and
/// cannot pass `v128` values to or from JavaScript, so SIMD is off too.
#[allow(dead_code)] // Used by the legacy-exceptions test, not by this one.
pub fn generate_for_v8(bytes: &[u8]) -> Result<Case, String> {
    build(bytes, false, false, true)
}

/// [`generate`], or with `for_v8` [`generate_for_v8`]: the same bytes draw
/// the same choices either way.
fn build(
    bytes: &[u8],
    buffer_memory: bool,
    beyond_binaryen: bool,
    for_v8: bool,
) -> Result<Case, String> {
    let mut u = Unstructured::new(bytes);
    let (mut config, mut features) = smith_config(&mut u, for_v8).map_err(|e| e.to_string())?;
    if beyond_binaryen {
        let extra: u8 = u.arbitrary().map_err(|e| e.to_string())?;
        config.tail_call_enabled = extra & 1 == 0;
        config.exceptions_enabled = extra & 2 == 0 || extra & 1 != 0;
        config.max_tags = 4;
        // GC brings typed function references (`call_ref`, typed locals and
        // tables), structs, arrays and casts.
        config.gc_enabled = extra & 4 != 0;
        if config.gc_enabled {
            config.reference_types_enabled = true;
        }
        for (on, name) in [
            (config.tail_call_enabled, " tail-calls"),
            (config.exceptions_enabled, " exceptions"),
            (config.gc_enabled, " gc"),
        ] {
            if on {
                features += name;
            }
        }
    }
    // One case in eight is wasm-smith's code alone; the others get a call
    // injected after one operator in `one_in` (3 to 16).
    let seed: u64 = u.arbitrary().map_err(|e| e.to_string())?;
    let one_in = match u.int_in_range(0..=15u64).map_err(|e| e.to_string())? {
        0 | 1 => 0,
        n => n + 1,
    };
    let mut module =
        wasm_smith::Module::new(config, &mut u).map_err(|e| format!("wasm-smith: {e}"))?;
    let fuel = module
        .ensure_termination(FUEL)
        .map_err(|e| format!("ensure_termination: {e}"))?;
    let smith = module.to_bytes();
    let options = inject::PlanOptions {
        seed,
        one_in,
        fuel_global: Some(fuel),
    };
    let injections = inject::plan(&smith, &InjectSet::all(), &options)?;
    if one_in > 0 {
        features += &format!(" injected-calls(1/{one_in})");
    }
    // Half the cases keep every function reference inside the module (no
    // table, no reference-typed global and no function taking a reference is
    // exported), so the transform narrows indirect calls by type there.
    let closed = splitmix(seed ^ 0x636c_6f73_6564) & 1 == 0;
    if closed {
        features += " closed";
    }
    let mut wasm = finish(&smith, buffer_memory, closed, fuel, injections)?;
    let smith_content = typed_content(&wasm);
    let shape = Shape::of(&wasm)?;
    let mut calls = draw_calls(&mut u, &shape).map_err(|e| e.to_string())?;
    if beyond_binaryen {
        // Hand-shaped code beside wasm-smith's (see `shapes`), drawn from the
        // injection seed so that the bytes wasm-smith reads stay the same.
        let shapes_seed = splitmix(seed ^ 0x5348_4150_4553);
        let kinds = Kinds::from_env(Kinds { eh: true, gc: true });
        let spliced = shapes::splice(&wasm, shapes_seed, Flavor::TryTable, kinds)?;
        wasm = spliced.wasm;
        features += " ";
        features += &spliced.description;
        calls = with_entry_calls(calls, &spliced.entries, shapes_seed);
    }
    let mut pattern: Vec<bool> = (0..u.int_in_range(1..=6).unwrap_or(1))
        .map(|_| u.arbitrary().unwrap_or(true))
        .collect();
    if !pattern.contains(&true) {
        pattern.push(true);
    }
    Ok(Case {
        wasm,
        calls,
        pattern,
        features,
        smith_content,
    })
}

/// The wasm-smith configuration, with the features drawn from `u` (with
/// `for_v8`, never SIMD or extended constant expressions).
fn smith_config(
    u: &mut Unstructured,
    for_v8: bool,
) -> arbitrary::Result<(wasm_smith::Config, String)> {
    let bits: u16 = u.arbitrary()?;
    let on = |bit: u16| bits & (1 << bit) != 0;
    let simd = on(0) && !for_v8;
    let relaxed_simd = simd && on(1);
    let reference_types = on(2);
    let disallow_traps = on(3);
    let bulk_memory = !(on(4) && on(5));
    let multi_value = !(on(6) && on(7) && on(8));
    let floats = !(on(9) && on(10));
    let max_instructions = [30, 60, 60, 120, 200][usize::from(bits >> 11) % 5];
    let config = wasm_smith::Config {
        available_imports: Some(wat::parse_str(IMPORT_POOL).expect("the import pool parses")),
        min_funcs: 1,
        max_funcs: 14,
        max_instructions,
        // The import pool's 12 types come first (wasm-smith copies them in),
        // so room beyond them for wasm-smith's own: function types with
        // reference-typed parameters and results, and with GC, struct and
        // array types.
        max_types: 12 + OWN_TYPES,
        max_globals: 6,
        max_exports: 0,
        max_data_segments: 3,
        max_element_segments: 3,
        max_elements: 12,
        max_tables: 2,
        max_table_elements: 64,
        table_max_size_required: true,
        min_memories: 1,
        max_memories: 1,
        max_memory32_bytes: 2 * 65536,
        memory_max_size_required: true,
        memory64_enabled: false,
        simd_enabled: simd,
        relaxed_simd_enabled: relaxed_simd,
        reference_types_enabled: reference_types,
        bulk_memory_enabled: bulk_memory,
        multi_value_enabled: multi_value,
        allow_floats: floats,
        disallow_traps,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        extended_const_enabled: !for_v8,
        exceptions_enabled: false,
        gc_enabled: false,
        tail_call_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
        custom_descriptors_enabled: false,
        compact_imports_enabled: false,
        generate_custom_sections: false,
        allow_invalid_funcs: false,
        ..wasm_smith::Config::default()
    };
    let mut features: Vec<&str> = Vec::new();
    for (on, name) in [
        (simd, "simd"),
        (relaxed_simd, "relaxed-simd"),
        (reference_types, "reference-types"),
        (bulk_memory, "bulk-memory"),
        (multi_value, "multi-value"),
        (floats, "floats"),
        (disallow_traps, "no-traps"),
    ] {
        if on {
            features.push(name);
        }
    }
    Ok((
        config,
        format!(
            "{} max-instructions({max_instructions})",
            features.join(" ")
        ),
    ))
}

/// Where each section goes in a module, for inserting missing ones.
pub fn section_rank(id: SectionId) -> u8 {
    match id {
        SectionId::Custom => 0,
        SectionId::Type => 1,
        SectionId::Import => 2,
        SectionId::Function => 3,
        SectionId::Table => 4,
        SectionId::Memory => 5,
        SectionId::Tag => 6,
        SectionId::Global => 7,
        SectionId::Export => 8,
        SectionId::Start => 9,
        SectionId::Element => 10,
        SectionId::DataCount => 11,
        SectionId::Code => 12,
        SectionId::Data => 13,
    }
}

/// Re-encodes wasm-smith's output into the module under test: adds the
/// injected imports and calls, the buffer memory (shifting guest memory
/// indices), a `refuel` function, gives guest memories at least one page,
/// and exports everything under predictable names.
struct Finish {
    buffer_memory: bool,
    /// wasm-smith's function imports, types and tables.
    imports: u32,
    types: u32,
    tables: u32,
    fuel_global: u32,
    /// The injected imports (all of them: `indirect` goes in the added table).
    set: InjectSet,
    injections: Injections,
    /// The defined function being re-encoded.
    body: usize,
    exports: Vec<(String, ExportKind, u32)>,
    added: Vec<SectionId>,
}

impl Finish {
    /// The type of injected import `k` (that of `inject.tick` is also
    /// `refuel`'s).
    fn injected_type(&self, k: usize) -> u32 {
        self.types + k as u32
    }

    /// The table holding `inject.indirect`, after wasm-smith's.
    fn table(&self) -> u32 {
        self.tables
    }

    fn add_imports(&self, section: &mut ImportSection) {
        inject::add_imports(section, &self.set, self.injected_type(0));
    }

    fn add_table(&self, section: &mut TableSection) {
        section.table(TableType {
            element_type: RefType::FUNCREF,
            table64: false,
            minimum: 1,
            maximum: Some(1),
            shared: false,
        });
    }

    fn add_elements(&self, section: &mut ElementSection) {
        let indirect = self.set.position(InjectSet::INDIRECT).unwrap_or(0) as u32;
        let indirect = [self.imports + indirect];
        section.active(
            Some(self.table()),
            &ConstExpr::i32_const(0),
            Elements::Functions(indirect[..].into()),
        );
    }

    fn refuel(&self) -> Function {
        let mut f = Function::new([]);
        f.instructions()
            .i32_const(FUEL as i32)
            .global_set(self.fuel_global)
            .end();
        f
    }
}

impl Reencode for Finish {
    type Error = Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError<Infallible>> {
        Ok(if func < self.imports {
            func
        } else {
            func + self.set.len() as u32
        })
    }

    fn memory_index(&mut self, memory: u32) -> Result<u32, ReencodeError<Infallible>> {
        Ok(memory + u32::from(self.buffer_memory))
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        reencode::utils::parse_type_section(self, types, section)?;
        inject::add_types(types, &self.set);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports);
        self.added.push(SectionId::Import);
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        reencode::utils::parse_function_section(self, functions, section)?;
        functions.function(self.injected_type(self.set.position(InjectSet::TICK).unwrap_or(0)));
        Ok(())
    }

    fn parse_table_section(
        &mut self,
        tables: &mut TableSection,
        section: wasmparser::TableSectionReader<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        reencode::utils::parse_table_section(self, tables, section)?;
        self.add_table(tables);
        self.added.push(SectionId::Table);
        Ok(())
    }

    fn parse_element_section(
        &mut self,
        elements: &mut ElementSection,
        section: wasmparser::ElementSectionReader<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        reencode::utils::parse_element_section(self, elements, section)?;
        self.add_elements(elements);
        self.added.push(SectionId::Element);
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        reencode::utils::parse_code_section(self, code, section)?;
        code.function(&self.refuel());
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        let points = self.injections.get(self.body).cloned().unwrap_or_default();
        self.body += 1;
        let (set, first_import) = (self.set.clone(), self.imports);
        let indirect = Some((
            self.table(),
            self.injected_type(set.position(InjectSet::INDIRECT).unwrap_or(0)),
        ));
        let f = inject::inject_calls(self, &func, &points, |f, k| {
            inject::emit_call(f, &set, k, first_import, indirect)
        })?;
        code.function(&f);
        Ok(())
    }

    fn parse_memory_section(
        &mut self,
        memories: &mut MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        if self.buffer_memory {
            memories.memory(MemoryType {
                minimum: BUFFER_PAGES,
                maximum: Some(BUFFER_PAGES),
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
        }
        for memory in section {
            let mut ty = self.memory_type(memory?)?;
            ty.minimum = ty.minimum.max(1);
            ty.maximum = ty.maximum.map(|m| m.max(ty.minimum));
            memories.memory(ty);
        }
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        _section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), ReencodeError<Infallible>> {
        // wasm-smith was told to export nothing; replace whatever it did.
        for (name, kind, index) in &self.exports {
            exports.export(name, *kind, *index);
        }
        self.added.push(SectionId::Export);
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), ReencodeError<Infallible>> {
        // Sections wasm-smith left out that the module needs now.
        let past = |id: SectionId| before.is_none_or(|b| section_rank(b) > section_rank(id));
        if past(SectionId::Import) && !self.added.contains(&SectionId::Import) {
            let mut imports = ImportSection::new();
            self.add_imports(&mut imports);
            module.section(&imports);
            self.added.push(SectionId::Import);
        }
        if past(SectionId::Table) && !self.added.contains(&SectionId::Table) {
            let mut tables = TableSection::new();
            self.add_table(&mut tables);
            module.section(&tables);
            self.added.push(SectionId::Table);
        }
        if past(SectionId::Export) && !self.added.contains(&SectionId::Export) {
            let mut exports = ExportSection::new();
            for (name, kind, index) in &self.exports {
                exports.export(name, *kind, *index);
            }
            module.section(&exports);
            self.added.push(SectionId::Export);
        }
        if past(SectionId::Element) && !self.added.contains(&SectionId::Element) {
            let mut elements = ElementSection::new();
            self.add_elements(&mut elements);
            module.section(&elements);
            self.added.push(SectionId::Element);
        }
        Ok(())
    }
}

/// How many of each kind of entity wasm-smith's module has.
#[derive(Default)]
struct Counts {
    types: u32,
    imported_funcs: u32,
    defined_funcs: u32,
    tables: u32,
    memories: u32,
    globals: u32,
    /// Per global: it has a reference type.
    reference_globals: Vec<bool>,
    /// Per defined function: it takes a reference parameter.
    reference_params: Vec<bool>,
}

fn counts(wasm: &[u8]) -> Result<Counts, String> {
    let mut c = Counts::default();
    let mut takes_reference: Vec<bool> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            Payload::TypeSection(s) => {
                for group in s {
                    for ty in group.map_err(|e| e.to_string())?.into_types() {
                        c.types += 1;
                        takes_reference.push(match &ty.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                f.params().iter().any(ValType::is_reference_type)
                            }
                            _ => false,
                        });
                    }
                }
            }
            Payload::ImportSection(s) => {
                for import in s.into_imports() {
                    match import.map_err(|e| e.to_string())?.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => c.imported_funcs += 1,
                        TypeRef::Table(_) => c.tables += 1,
                        TypeRef::Memory(_) => c.memories += 1,
                        TypeRef::Global(g) => {
                            c.globals += 1;
                            c.reference_globals.push(g.content_type.is_reference_type());
                        }
                        TypeRef::Tag(_) => {}
                    }
                }
            }
            Payload::FunctionSection(s) => {
                for ty in s {
                    let ty = ty.map_err(|e| e.to_string())?;
                    c.defined_funcs += 1;
                    let takes = takes_reference.get(ty as usize).copied().unwrap_or(true);
                    c.reference_params.push(takes);
                }
            }
            Payload::TableSection(s) => c.tables += s.count(),
            Payload::MemorySection(s) => c.memories += s.count(),
            Payload::GlobalSection(s) => {
                for g in s {
                    let g = g.map_err(|e| e.to_string())?;
                    c.globals += 1;
                    c.reference_globals
                        .push(g.ty.content_type.is_reference_type());
                }
            }
            _ => {}
        }
    }
    Ok(c)
}

/// Turns wasm-smith's module into the module under test (see [`Finish`]).
/// With `closed`, tables, reference-typed globals and functions taking a
/// reference are not exported.
fn finish(
    smith: &[u8],
    buffer_memory: bool,
    closed: bool,
    fuel_global: u32,
    injections: Injections,
) -> Result<Vec<u8>, String> {
    let c = counts(smith)?;
    if c.memories == 0 {
        return Err("wasm-smith made no memory".into());
    }
    if c.defined_funcs == 0 || c.types == 0 {
        return Err("wasm-smith made no function".into());
    }
    let shift = u32::from(buffer_memory);
    let set = InjectSet::all();
    let funcs = c.imported_funcs + set.len() as u32 + c.defined_funcs + 1;
    let mut exports = Vec::new();
    if buffer_memory {
        exports.push(("memory".to_string(), ExportKind::Memory, 0));
    }
    for i in 0..c.memories {
        exports.push((format!("mem{i}"), ExportKind::Memory, i + shift));
    }
    let first_defined = c.imported_funcs + set.len() as u32;
    for i in 0..funcs - 1 {
        let defined = i.checked_sub(first_defined).map(|d| d as usize);
        if closed && defined.is_some_and(|d| c.reference_params[d]) {
            continue;
        }
        exports.push((format!("f{i}"), ExportKind::Func, i));
    }
    exports.push(("refuel".to_string(), ExportKind::Func, funcs - 1));
    for i in 0..c.globals {
        if closed && c.reference_globals[i as usize] {
            continue;
        }
        let name = if i == fuel_global {
            "fuel".to_string()
        } else {
            format!("g{i}")
        };
        exports.push((name, ExportKind::Global, i));
    }
    if !closed {
        for i in 0..=c.tables {
            exports.push((format!("t{i}"), ExportKind::Table, i));
        }
    }
    let mut reencoder = Finish {
        buffer_memory,
        imports: c.imported_funcs,
        types: c.types,
        tables: c.tables,
        fuel_global,
        set,
        injections,
        body: 0,
        exports,
        added: Vec::new(),
    };
    let mut module = wasm_encoder::Module::new();
    reencoder
        .parse_core_module(&mut module, Parser::new(0), smith)
        .map_err(|e| format!("re-encoding: {e}"))?;
    let wasm = module.finish();
    asyncify_tests::interface::validate(&wasm)?;
    Ok(wasm)
}

/// What the finished module offers the driver.
struct Shape {
    /// Function imports as `module.name`, in order.
    imports: Vec<String>,
    /// Exported defined functions and their parameter types (not `refuel`).
    callable: Vec<(String, Vec<ValType>)>,
    /// Per type index, whether it is a function type (else struct or array).
    func_types: Vec<bool>,
}

impl Shape {
    fn of(wasm: &[u8]) -> Result<Shape, String> {
        let mut types: Vec<Vec<ValType>> = Vec::new();
        let mut imports = Vec::new();
        let mut callable = Vec::new();
        let mut func_types = Vec::new();
        let mut exported = HashSet::new();
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(|e| e.to_string())? {
                Payload::ExportSection(s) => {
                    for e in s {
                        exported.insert(e.map_err(|e| e.to_string())?.name.to_string());
                    }
                }
                Payload::TypeSection(s) => {
                    // Struct and array types (GC) take a type index too.
                    for group in s {
                        for ty in group.map_err(|e| e.to_string())?.into_types() {
                            func_types.push(matches!(
                                ty.composite_type.inner,
                                CompositeInnerType::Func(_)
                            ));
                            types.push(match &ty.composite_type.inner {
                                CompositeInnerType::Func(f) => f.params().to_vec(),
                                _ => Vec::new(),
                            });
                        }
                    }
                }
                Payload::ImportSection(s) => {
                    for import in s.into_imports() {
                        let import = import.map_err(|e| e.to_string())?;
                        if let TypeRef::Func(_) = import.ty {
                            imports.push(format!("{}.{}", import.module, import.name));
                        }
                    }
                }
                Payload::FunctionSection(s) => {
                    let defined = s.count() as usize;
                    for (i, ty) in s.into_iter().enumerate().take(defined - 1) {
                        let params = &types[ty.map_err(|e| e.to_string())? as usize];
                        if params.iter().all(|p| arg_type_ok(*p)) {
                            callable.push((format!("f{}", imports.len() + i), params.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        // With `closed`, some functions are not exported (see `finish`).
        callable.retain(|(name, _)| exported.contains(name));
        Ok(Shape {
            imports,
            callable,
            func_types,
        })
    }
}

/// `calls` with calls of the spliced `entries` (each once or twice, with a
/// small `i32`) inserted between them, drawn from `seed`.
pub fn with_entry_calls(
    mut calls: Vec<(String, Vec<Val>)>,
    entries: &[String],
    seed: u64,
) -> Vec<(String, Vec<Val>)> {
    let mut rng = splitmix(seed ^ 0x0063_616c_6c73);
    for entry in entries {
        for _ in 0..1 + rng % 2 {
            rng = splitmix(rng);
            // Between a `refuel` + call pair, never inside one.
            let at = 2 * ((rng >> 8) as usize % (calls.len() / 2 + 1));
            rng = splitmix(rng);
            let arg = Val::I32((rng % 13) as i32);
            calls.insert(at.min(calls.len()), (entry.clone(), vec![arg]));
        }
    }
    calls
}

/// Whether the driver can pass an argument of type `ty` (numbers, and null
/// for nullable references).
fn arg_type_ok(ty: ValType) -> bool {
    match ty {
        ValType::Ref(r) => r.is_nullable(),
        _ => true,
    }
}

/// One to six calls of exported functions, with arguments from `u`, each
/// after a call of `refuel` so that it starts with full termination fuel.
fn draw_calls(u: &mut Unstructured, shape: &Shape) -> arbitrary::Result<Vec<(String, Vec<Val>)>> {
    if shape.callable.is_empty() {
        return Ok(Vec::new());
    }
    let n = u.int_in_range(1..=6)?;
    let mut calls = Vec::new();
    for _ in 0..n {
        let (name, params) = u.choose(&shape.callable)?;
        let args = params
            .iter()
            .map(|p| arg(u, *p, &shape.func_types))
            .collect::<arbitrary::Result<Vec<Val>>>()?;
        calls.push(("refuel".to_string(), Vec::new()));
        calls.push((name.clone(), args));
    }
    Ok(calls)
}

/// An argument of type `ty`: a number drawn from `u`, or the null of a
/// (nullable) reference type's hierarchy (`func_types` says which concrete
/// types are function types).
fn arg(u: &mut Unstructured, ty: ValType, func_types: &[bool]) -> arbitrary::Result<Val> {
    // Small integers most of the time: modules use them as counts and indices.
    let small = u.ratio(3, 4)?;
    Ok(match ty {
        ValType::I32 if small => Val::I32(u.int_in_range(0..=20)?),
        ValType::I32 => Val::I32(u.arbitrary()?),
        ValType::I64 if small => Val::I64(u.int_in_range(0..=20)?),
        ValType::I64 => Val::I64(u.arbitrary()?),
        ValType::F32 => Val::F32(u.arbitrary()?),
        ValType::F64 => Val::F64(u.arbitrary()?),
        ValType::V128 => Val::V128(V128::from(u.arbitrary::<u128>()?)),
        ValType::Ref(r) => null_of(r, func_types),
    })
}

/// The null of `r`'s hierarchy, as the driver passes it.
fn null_of(r: wasmparser::RefType, func_types: &[bool]) -> Val {
    use wasmparser::{AbstractHeapType as A, HeapType as H};
    match r.heap_type() {
        H::Abstract {
            ty: A::Func | A::NoFunc,
            ..
        } => Val::FuncRef(None),
        H::Abstract {
            ty: A::Extern | A::NoExtern,
            ..
        } => Val::ExternRef(None),
        H::Abstract {
            ty: A::Exn | A::NoExn,
            ..
        } => Val::ExnRef(None),
        H::Abstract {
            ty: A::Cont | A::NoCont,
            ..
        } => Val::ContRef(None),
        H::Abstract { .. } => Val::AnyRef(None),
        H::Concrete(i) | H::Exact(i) => match i.as_module_index() {
            Some(i) if func_types.get(i as usize) == Some(&true) => Val::FuncRef(None),
            _ => Val::AnyRef(None),
        },
    }
}

/// The function imports of `wasm`, as `module.name`, in order.
pub fn function_imports(wasm: &[u8]) -> Result<Vec<String>, String> {
    Shape::of(wasm).map(|s| s.imports)
}

/// The function imports that may be running under an indirect call: every
/// import reachable by direct calls from a function that can be called
/// indirectly (one placed in an element segment or named by `ref.func`).
/// With `ignore_indirect` these must not suspend; every other import is only
/// ever reached through direct calls, each a suspension point.
pub fn imports_under_indirect_calls(wasm: &[u8]) -> Result<HashSet<String>, String> {
    let err = |e: wasmparser::BinaryReaderError| e.to_string();
    let mut import_names = Vec::new();
    let mut targets: BTreeSet<u32> = BTreeSet::new();
    let mut callees: Vec<Vec<u32>> = Vec::new();
    let ref_funcs = |expr: &wasmparser::ConstExpr, targets: &mut BTreeSet<u32>| {
        let mut ops = expr.get_operators_reader();
        while !ops.eof() {
            if let Ok(Operator::RefFunc { function_index }) = ops.read() {
                targets.insert(function_index);
            }
        }
    };
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(err)? {
            Payload::ImportSection(s) => {
                for import in s.into_imports() {
                    let import = import.map_err(err)?;
                    if let TypeRef::Func(_) = import.ty {
                        import_names.push(format!("{}.{}", import.module, import.name));
                    }
                }
            }
            Payload::GlobalSection(s) => {
                for g in s {
                    ref_funcs(&g.map_err(err)?.init_expr, &mut targets);
                }
            }
            Payload::ElementSection(s) => {
                for e in s {
                    match e.map_err(err)?.items {
                        ElementItems::Functions(f) => {
                            for i in f {
                                targets.insert(i.map_err(err)?);
                            }
                        }
                        ElementItems::Expressions(_, exprs) => {
                            for expr in exprs {
                                ref_funcs(&expr.map_err(err)?, &mut targets);
                            }
                        }
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut calls = Vec::new();
                let mut ops = body.get_operators_reader().map_err(err)?;
                while !ops.eof() {
                    match ops.read().map_err(err)? {
                        Operator::Call { function_index } => calls.push(function_index),
                        Operator::RefFunc { function_index } => {
                            targets.insert(function_index);
                        }
                        _ => {}
                    }
                }
                callees.push(calls);
            }
            _ => {}
        }
    }
    let imported = import_names.len() as u32;
    let mut seen: BTreeSet<u32> = BTreeSet::new();
    let mut work: Vec<u32> = targets.into_iter().collect();
    while let Some(f) = work.pop() {
        if !seen.insert(f) {
            continue;
        }
        if let Some(calls) = f
            .checked_sub(imported)
            .and_then(|d| callees.get(d as usize))
        {
            work.extend(calls.iter().copied());
        }
    }
    Ok(seen
        .into_iter()
        .filter(|&f| f < imported)
        .map(|f| import_names[f as usize].clone())
        .collect())
}

/// A skip reason without the function, local and instruction it names, so
/// that equal reasons count together.
pub fn skip_kind(why: &str) -> String {
    let reason = why.split(" (instruction").next().unwrap_or(why);
    let reason = reason.rsplit_once(": ").map_or(reason, |(_, r)| r);
    reason
        .split(' ')
        .map(|w| {
            if w.chars().any(|c| c.is_ascii_digit()) {
                "_"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What typed-reference content a module has, for the statistics of the
/// property tests (and their check that the generator makes it).
#[derive(Debug, Default, Clone, Copy)]
pub struct TypedContent {
    /// `call_ref` or `return_call_ref`.
    pub call_ref: bool,
    /// A GC instruction: struct, array, i31, cast or conversion.
    pub gc: bool,
    /// A struct or array instruction.
    pub struct_array: bool,
    /// A defined function with a reference-typed parameter or result.
    pub ref_signature: bool,
}

/// Scans `wasm` for [`TypedContent`] (an unreadable module has none).
pub fn typed_content(wasm: &[u8]) -> TypedContent {
    let mut out = TypedContent::default();
    let mut signatures: Vec<bool> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        match &payload {
            Ok(Payload::TypeSection(s)) => {
                for group in s.clone().into_iter().flatten() {
                    for ty in group.into_types() {
                        signatures.push(match &ty.composite_type.inner {
                            CompositeInnerType::Func(f) => f
                                .params()
                                .iter()
                                .chain(f.results())
                                .any(|t| t.is_reference_type()),
                            _ => false,
                        });
                    }
                }
            }
            Ok(Payload::FunctionSection(s)) => {
                for ty in s.clone().into_iter().flatten() {
                    if signatures.get(ty as usize) == Some(&true) {
                        out.ref_signature = true;
                    }
                }
            }
            _ => {}
        }
        let Ok(Payload::CodeSectionEntry(body)) = payload else {
            continue;
        };
        let Ok(ops) = body.get_operators_reader() else {
            continue;
        };
        for op in ops.into_iter().flatten() {
            use Operator::*;
            if matches!(
                op,
                StructNew { .. }
                    | StructNewDefault { .. }
                    | StructGet { .. }
                    | StructGetS { .. }
                    | StructGetU { .. }
                    | StructSet { .. }
                    | ArrayNew { .. }
                    | ArrayNewDefault { .. }
                    | ArrayNewFixed { .. }
                    | ArrayNewData { .. }
                    | ArrayNewElem { .. }
                    | ArrayGet { .. }
                    | ArrayGetS { .. }
                    | ArrayGetU { .. }
                    | ArraySet { .. }
                    | ArrayLen
                    | ArrayFill { .. }
                    | ArrayCopy { .. }
                    | ArrayInitData { .. }
                    | ArrayInitElem { .. }
            ) {
                out.struct_array = true;
            }
            match op {
                CallRef { .. } | ReturnCallRef { .. } => out.call_ref = true,
                StructNew { .. }
                | StructNewDefault { .. }
                | StructGet { .. }
                | StructGetS { .. }
                | StructGetU { .. }
                | StructSet { .. }
                | ArrayNew { .. }
                | ArrayNewDefault { .. }
                | ArrayNewFixed { .. }
                | ArrayNewData { .. }
                | ArrayNewElem { .. }
                | ArrayGet { .. }
                | ArrayGetS { .. }
                | ArrayGetU { .. }
                | ArraySet { .. }
                | ArrayLen
                | ArrayFill { .. }
                | ArrayCopy { .. }
                | ArrayInitData { .. }
                | ArrayInitElem { .. }
                | RefI31
                | I31GetS
                | I31GetU
                | RefTestNonNull { .. }
                | RefTestNullable { .. }
                | RefCastNonNull { .. }
                | RefCastNullable { .. }
                | BrOnCast { .. }
                | BrOnCastFail { .. }
                | AnyConvertExtern
                | ExternConvertAny
                | RefEq => out.gc = true,
                _ => {}
            }
        }
    }
    out
}
