//! `instrument` on valid modules made by wasm-smith. Checks, for the default
//! options and for an option set drawn from the input:
//! - the result is `Ok`, or `Err(Error::Unsupported { .. })` (a construct the
//!   transform refuses by design); the only other errors accepted are the
//!   documented ones this target can predict from the module and options
//!   (no memory for the buffer, export names already taken). Any other error
//!   on a valid module is a bug, and so is a panic;
//! - every `Ok` output validates with all of wasmparser's features and
//!   exports the five asyncify runtime functions.
//!
//! The modules: wasm-smith with features drawn per input ("swarm testing":
//! SIMD, relaxed SIMD, reference types, GC, exceptions, tail calls, threads,
//! memory64, several memories, bulk memory, multi-value, wide arithmetic,
//! custom page sizes, extended const, compact imports), sometimes with an
//! import pool that includes the guest-imported `asyncify.*` functions
//! (with their `i32` pointers, so only when memory64 is off).
//! Since wasm-smith rarely emits calls, in most inputs calls to added imports
//! (`inject.tick`, or `inject.<type>` replacing the numeric value on top of
//! the stack) are put after some operators, by the property tests' generator
//! (`tests/inject`, crate `asyncify-inject`): suspension points everywhere,
//! with values live on the operand stack. A name section (`f<index>`) is
//! added so that the add, remove and only lists have names to match.
//!
//! Set `ASYNCIFY_FUZZ_DUMP=DIR` when replaying an input to write the module
//! it generates to `DIR/module.wasm`.

#![no_main]

use std::convert::Infallible;

use arbitrary::Unstructured;
use asyncify_inject::{self as inject, splitmix, InjectSet, Injections};
use asyncify_transform::{instrument, Error, Options};
use libfuzzer_sys::fuzz_target;
use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{
    EntityType, ImportSection, NameMap, NameSection, SectionId, TypeSection, ValType as EncValType,
};
use wasmparser::{ExternalKind, Parser, Payload, TypeRef, Validator, WasmFeatures};

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(case) = Case::generate(&mut u) else {
        return;
    };
    if let Some(dir) = std::env::var_os("ASYNCIFY_FUZZ_DUMP") {
        let path = std::path::Path::new(&dir).join("module.wasm");
        std::fs::write(&path, &case.wasm).expect("write the dumped module");
        eprintln!("module written to {} ({})", path.display(), case.features);
    }
    case.check(&Options::default());
    let drawn = case.drawn_options();
    if drawn != Options::default() {
        case.check(&drawn);
    }
});

/// One generated module and what the checks need to know about it.
struct Case {
    wasm: Vec<u8>,
    /// The features drawn, for panic messages.
    features: String,
    /// Bits choosing the drawn option set.
    option_bits: u32,
    /// Random stream for the choices that depend on the module.
    seed: u64,
    /// Function imports as `module.name`.
    func_imports: Vec<String>,
    /// Names given to the defined functions (`f<index>`).
    defined_names: Vec<String>,
    memories: u32,
    /// Every export name, and those of exported memories.
    exports: Vec<String>,
    memory_exports: Vec<String>,
}

impl Case {
    fn generate(u: &mut Unstructured) -> arbitrary::Result<Case> {
        // Everything drawn up front, so that it does not depend on how many
        // bytes wasm-smith takes.
        let feature_bits: u32 = u.arbitrary()?;
        let option_bits: u32 = u.arbitrary()?;
        let seed: u64 = u.arbitrary()?;
        let inject_one_in = match u.int_in_range(0..=7u64)? {
            0 => 0,
            n => n * 2 + 1,
        };
        let (config, features) = smith_config(feature_bits);
        let simd = config.simd_enabled;
        let module = wasm_smith::Module::new(config, u)?;
        let smith = module.to_bytes();
        // wasm-smith's modules are valid; if one is not, that is not the
        // transform's bug.
        if Validator::new_with_features(WasmFeatures::all())
            .validate_all(&smith)
            .is_err()
        {
            return Err(arbitrary::Error::IncorrectFormat);
        }
        let wasm = finish(&smith, seed, inject_one_in, simd)
            .map_err(|_| arbitrary::Error::IncorrectFormat)?;
        let mut case = Case {
            wasm,
            features: format!("{features} inject(1/{inject_one_in})"),
            option_bits,
            seed,
            func_imports: Vec::new(),
            defined_names: Vec::new(),
            memories: 0,
            exports: Vec::new(),
            memory_exports: Vec::new(),
        };
        case.survey()
            .map_err(|_| arbitrary::Error::IncorrectFormat)?;
        Ok(case)
    }

    /// Fills in the facts about the final module.
    fn survey(&mut self) -> wasmparser::Result<()> {
        let mut defined = 0u32;
        for payload in Parser::new(0).parse_all(&self.wasm) {
            match payload? {
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import?;
                        match import.ty {
                            TypeRef::Func(_) | TypeRef::FuncExact(_) => self
                                .func_imports
                                .push(format!("{}.{}", import.module, import.name)),
                            TypeRef::Memory(_) => self.memories += 1,
                            _ => {}
                        }
                    }
                }
                Payload::FunctionSection(reader) => defined += reader.count(),
                Payload::MemorySection(reader) => self.memories += reader.count(),
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        self.exports.push(export.name.to_string());
                        if export.kind == ExternalKind::Memory {
                            self.memory_exports.push(export.name.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        let imports = self.func_imports.len() as u32;
        self.defined_names = (imports..imports + defined)
            .map(|i| format!("f{i}"))
            .collect();
        Ok(())
    }

    /// The option set drawn from `option_bits` (and `seed` for the names):
    /// - bits 0-5: `asserts`, `ignore_indirect`, `ignore_imports`,
    ///   `import_globals`, `export_globals`, `propagate_add_list`;
    /// - bit 6: a secondary memory of 1 to 3 pages;
    /// - bit 7: the buffer in an exported memory named with `memory`;
    /// - bits 8-9: no imports list / some imports / a `module.*` glob / a
    ///   name that matches nothing;
    /// - bits 10-11: no function list / an add list / a remove list / an
    ///   only list; bit 12: the add list also gets a remove list;
    /// - bit 13: list entries are globs (`f1*`) instead of names.
    fn drawn_options(&self) -> Options {
        let bits = self.option_bits;
        let on = |n: u32| bits & (1 << n) != 0;
        let mut rng = self.seed;
        let mut next = move || {
            rng = splitmix(rng);
            rng
        };
        let mut options = Options {
            asserts: on(0),
            ignore_indirect: on(1),
            ignore_imports: on(2),
            import_globals: on(3),
            export_globals: on(4),
            propagate_add_list: on(5),
            ..Options::default()
        };
        if on(6) {
            options.secondary_memory = Some(1 + next() % 3);
        }
        if on(7) && !self.memory_exports.is_empty() {
            let pick = next() as usize % self.memory_exports.len();
            options.memory = Some(self.memory_exports[pick].clone());
        }
        let mut subset = |names: &[String]| -> Vec<String> {
            names.iter().filter(|_| next() % 2 == 0).cloned().collect()
        };
        match (bits >> 8) & 0b11 {
            0 => {}
            1 => options.imports = subset(&self.func_imports),
            2 => {
                if let Some(first) = self.func_imports.first() {
                    let module = first.split('.').next().unwrap_or_default();
                    options.imports = vec![format!("{module}.*")];
                }
            }
            _ => options.imports = vec!["nowhere.nothing".into()],
        }
        let mut list = if on(13) {
            vec!["f1*".to_string()]
        } else {
            subset(&self.defined_names)
        };
        match (bits >> 10) & 0b11 {
            0 => {}
            1 => {
                options.add_list = std::mem::take(&mut list);
                if on(12) {
                    options.remove_list = subset(&self.defined_names);
                }
            }
            2 => options.remove_list = list,
            _ => options.extend_only_list(list),
        }
        options
    }

    /// The documented `Options` and `AlreadyInstrumented` errors that
    /// `options` must give on this module, if any.
    fn expected_error(&self, options: &Options) -> Option<&'static str> {
        let exports = |name: &str| self.exports.iter().any(|e| e == name);
        const RUNTIME: [&str; 5] = [
            "asyncify_start_unwind",
            "asyncify_stop_unwind",
            "asyncify_start_rewind",
            "asyncify_stop_rewind",
            "asyncify_get_state",
        ];
        if RUNTIME.iter().any(|n| exports(n)) {
            return Some("already instrumented");
        }
        if options.secondary_memory.is_some() && exports("asyncify_memory") {
            return Some("asyncify_memory taken");
        }
        if options.export_globals && (exports("__asyncify_state") || exports("__asyncify_data")) {
            return Some("globals' export names taken");
        }
        if self.memories == 0 && options.secondary_memory.is_none() {
            return Some("no memory");
        }
        None
    }

    fn check(&self, options: &Options) {
        let context = || {
            format!(
                "module: {} bytes ({}), options: {options:?}",
                self.wasm.len(),
                self.features
            )
        };
        let result = instrument(&self.wasm, options);
        match (result, self.expected_error(options)) {
            (Ok(output), None) => {
                let mut validator = Validator::new_with_features(WasmFeatures::all());
                if let Err(e) = validator.validate_all(&output.wasm) {
                    panic!("the output does not validate: {e}\n{}", context());
                }
                let exported = exported_names(&output.wasm);
                for name in [
                    "asyncify_start_unwind",
                    "asyncify_stop_unwind",
                    "asyncify_start_rewind",
                    "asyncify_stop_rewind",
                    "asyncify_get_state",
                ] {
                    assert!(
                        exported.iter().any(|e| e == name),
                        "the output does not export {name}\n{}",
                        context()
                    );
                }
            }
            (Err(Error::Unsupported { .. }), _) => {}
            (Err(Error::Options(_) | Error::AlreadyInstrumented(_)), Some(_)) => {}
            (Ok(_), Some(expected)) => {
                panic!("expected an error ({expected}), got Ok\n{}", context())
            }
            (Err(e), _) => panic!("error on a valid module: {e}\n{e:?}\n{}", context()),
        }
    }
}

fn exported_names(wasm: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Ok(Payload::ExportSection(reader)) = payload {
            names.extend(reader.into_iter().flatten().map(|e| e.name.to_string()));
        }
    }
    names
}

/// The wasm-smith configuration for `bits`, and a summary of the features.
fn smith_config(bits: u32) -> (wasm_smith::Config, String) {
    let on = |n: u32| bits & (1 << n) != 0;
    let simd = on(0);
    let reference_types = on(2);
    let gc = reference_types && on(3);
    let threads = on(6);
    let config = wasm_smith::Config {
        simd_enabled: simd,
        relaxed_simd_enabled: simd && on(1),
        reference_types_enabled: reference_types,
        gc_enabled: gc,
        exceptions_enabled: on(4),
        tail_call_enabled: on(5),
        threads_enabled: threads,
        memory64_enabled: on(7),
        bulk_memory_enabled: !on(9),
        multi_value_enabled: !on(10),
        wide_arithmetic_enabled: on(11),
        custom_page_sizes_enabled: on(12) && on(13),
        extended_const_enabled: !on(14),
        compact_imports_enabled: on(15),
        disallow_traps: on(16),
        allow_floats: !(on(17) && on(18)),
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        // Newer proposals, rarely.
        shared_everything_threads_enabled: gc && threads && on(19) && on(20),
        custom_descriptors_enabled: gc && on(21) && on(20),
        // Mostly a memory; sometimes none, sometimes several.
        min_memories: u32::from(!(on(22) && on(23))),
        max_memories: if on(8) { 3 } else { 1 },
        available_imports: on(24).then(|| import_pool(simd, !on(7))),
        export_everything: on(25),
        max_instructions: [20, 60, 120, 250][(bits >> 26) as usize & 3],
        min_funcs: 1,
        // Imported functions count towards `max_funcs` (and wasm-smith
        // gives up if they leave no room for `min_funcs`).
        max_funcs: [3, 8, 16, 30][(bits >> 28) as usize & 3] + 12,
        max_imports: 12,
        max_types: 20,
        max_globals: 8,
        max_tags: 4,
        max_exports: 16,
        max_tables: if reference_types { 3 } else { 1 },
        max_table_elements: 100,
        max_elements: 16,
        max_element_segments: 4,
        max_data_segments: 4,
        max_nesting_depth: 8,
        generate_custom_sections: false,
        allow_invalid_funcs: false,
        ..wasm_smith::Config::default()
    };
    let mut names = Vec::new();
    for (enabled, name) in [
        (config.simd_enabled, "simd"),
        (config.relaxed_simd_enabled, "relaxed-simd"),
        (config.reference_types_enabled, "reference-types"),
        (config.gc_enabled, "gc"),
        (config.exceptions_enabled, "exceptions"),
        (config.tail_call_enabled, "tail-call"),
        (config.threads_enabled, "threads"),
        (config.memory64_enabled, "memory64"),
        (config.max_memories > 1, "multi-memory"),
        (config.bulk_memory_enabled, "bulk-memory"),
        (config.multi_value_enabled, "multi-value"),
        (config.wide_arithmetic_enabled, "wide-arithmetic"),
        (config.custom_page_sizes_enabled, "custom-page-sizes"),
        (config.compact_imports_enabled, "compact-imports"),
        (
            config.shared_everything_threads_enabled,
            "shared-everything",
        ),
        (config.custom_descriptors_enabled, "custom-descriptors"),
        (config.available_imports.is_some(), "import-pool"),
    ] {
        if enabled {
            names.push(name);
        }
    }
    (config, names.join(" "))
}

/// Imports wasm-smith may pick from (when the pool is on): numeric
/// functions, a memory and, with `runtime`, the five guest-imported asyncify
/// runtime functions. Those take an `i32` pointer, which is only right when
/// the buffer is in a 32-bit memory, so the caller leaves them out when
/// memory64 is on (a mismatched signature is not a valid request, and what
/// the transform should say about one is not this target's question).
fn import_pool(simd: bool, runtime: bool) -> Vec<u8> {
    use EncValType::{F32, F64, I32, I64, V128};
    let mut funcs: Vec<(&str, &str, Vec<EncValType>, Vec<EncValType>)> = vec![
        ("env", "sleep", vec![], vec![]),
        ("env", "read", vec![I32], vec![I32]),
        ("env", "mix", vec![I64, F64], vec![F32, I32]),
        ("env", "pair", vec![I32, I32], vec![I32, I64]),
        ("host", "wait", vec![F32], vec![F64]),
    ];
    if runtime {
        funcs.extend([
            ("asyncify", "start_unwind", vec![I32], vec![]),
            ("asyncify", "stop_unwind", vec![], vec![]),
            ("asyncify", "start_rewind", vec![I32], vec![]),
            ("asyncify", "stop_rewind", vec![], vec![]),
            ("asyncify", "get_state", vec![], vec![I32]),
        ]);
    }
    if simd {
        funcs.push(("host", "lanes", vec![V128], vec![V128]));
    }
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    for (i, (module, name, params, results)) in funcs.into_iter().enumerate() {
        types.ty().function(params, results);
        imports.import(module, name, EntityType::Function(i as u32));
    }
    imports.import(
        "env",
        "memory",
        wasm_encoder::MemoryType {
            minimum: 1,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        },
    );
    let mut module = wasm_encoder::Module::new();
    module.section(&types).section(&imports);
    module.finish()
}

/// Adds the injected calls (`asyncify_inject`, the property tests'
/// generator: one operator in `one_in` gets one; none when 0) and the name
/// section to wasm-smith's module. No table is added, so the set leaves out
/// `inject.indirect` (and `split`, and `v128` without SIMD).
fn finish(smith: &[u8], seed: u64, one_in: u64, simd: bool) -> Result<Vec<u8>, String> {
    let counts = counts(smith).map_err(|e| e.to_string())?;
    let set = InjectSet::direct_only(simd);
    let options = inject::PlanOptions {
        seed,
        one_in,
        fuel_global: None,
    };
    let plan = inject::plan(smith, &set, &options)?;
    let injecting = counts.defined > 0 && plan.iter().any(|p| !p.is_empty());
    let mut finish = Finish {
        imports: counts.func_imports,
        types: counts.types,
        defined: counts.defined,
        set: if injecting { set } else { InjectSet::none() },
        plan,
        body: 0,
        imports_done: false,
    };
    let mut module = wasm_encoder::Module::new();
    finish
        .parse_core_module(&mut module, Parser::new(0), smith)
        .map_err(|e| format!("{e:?}"))?;
    Ok(module.finish())
}

#[derive(Default)]
struct Counts {
    types: u32,
    func_imports: u32,
    defined: u32,
}

fn counts(smith: &[u8]) -> wasmparser::Result<Counts> {
    let mut counts = Counts::default();
    for payload in Parser::new(0).parse_all(smith) {
        match payload? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    counts.types += group?.types().len() as u32;
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if matches!(import?.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                        counts.func_imports += 1;
                    }
                }
            }
            Payload::FunctionSection(reader) => counts.defined += reader.count(),
            _ => {}
        }
    }
    Ok(counts)
}

/// The re-encoder: the set's imports after wasm-smith's function imports
/// (defined functions move up by that many), their types after
/// wasm-smith's, the calls of `plan`, and a name section at the end.
struct Finish {
    imports: u32,
    types: u32,
    defined: u32,
    set: InjectSet,
    plan: Injections,
    body: usize,
    imports_done: bool,
}

impl Finish {
    fn add_imports(&mut self, section: &mut ImportSection) {
        inject::add_imports(section, &self.set, self.types);
        self.imports_done = true;
    }
}

impl Reencode for Finish {
    type Error = Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<Infallible>> {
        Ok(if func < self.imports {
            func
        } else {
            func + self.set.len() as u32
        })
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Infallible>> {
        reencode::utils::parse_type_section(self, types, section)?;
        inject::add_types(types, &self.set);
        Ok(())
    }

    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), reencode::Error<Infallible>> {
        reencode::utils::parse_import_section(self, imports, section)?;
        self.add_imports(imports);
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Infallible>> {
        let points = self.plan.get(self.body).cloned().unwrap_or_default();
        self.body += 1;
        let (set, first_import) = (self.set.clone(), self.imports);
        let f = inject::inject_calls(self, &func, &points, |f, k| {
            inject::emit_call(f, &set, k, first_import, None)
        })?;
        code.function(&f);
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), reencode::Error<Infallible>> {
        // No import section in wasm-smith's module: add one before the
        // first section that comes after it.
        let past_imports = before.is_none_or(|b| !matches!(b, SectionId::Type | SectionId::Import));
        if !self.set.is_empty() && !self.imports_done && past_imports {
            let mut imports = ImportSection::new();
            self.add_imports(&mut imports);
            module.section(&imports);
        }
        if before.is_none() {
            let base = self.imports + self.set.len() as u32;
            let mut map = NameMap::new();
            for i in base..base + self.defined {
                map.append(i, &format!("f{i}"));
            }
            let mut names = NameSection::new();
            names.functions(&map);
            module.section(&names);
        }
        Ok(())
    }
}
