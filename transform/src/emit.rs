//! Assembly: the output module from the input's sections, the rewritten
//! bodies and the additions the [`Layout`](crate::layout::Layout) places
//! (types, the state globals, runtime functions and their exports, reference
//! tables, the re-entry tag, the secondary memory), through
//! [`Reencode`]: each input section is copied with the additions appended,
//! and a section the input lacks is created in its place in the binary
//! format's order ([`Reencode::intersperse_section_hook`]). Items that no
//! index change touches (globals, element and data segments, function
//! bodies, custom sections) are copied as bytes.

use std::convert::Infallible;

use wasm_encoder::reencode::{Error as ReencodeError, Reencode};
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, ElementSection, EntityType, ExportKind, ExportSection,
    Function, FunctionSection, GlobalSection, GlobalType, ImportSection, MemorySection, MemoryType,
    Module, RawSection, SectionId, TableSection, TagSection, TypeSection,
};
use wasmparser::{BinaryReader, FromReader, SectionLimited};

use asyncify_abi::{globals, RuntimeFunction};

use crate::layout::AppendedType;
use crate::read::ModuleInfo;
use crate::rewrite::{EmitContext, Remap};
use crate::Error;

/// A function body for the code section.
pub enum Body<'a> {
    /// Newly encoded.
    Encoded(Function),
    /// Copied unchanged from the input (locals and code, without the size prefix).
    Raw(&'a [u8]),
}

/// What the output adds to the input's sections, as the layout placed it.
pub struct Additions {
    pub import_globals: bool,
    pub export_globals: bool,
    /// Pages of a new memory for the buffer, exported as `asyncify_memory`.
    pub secondary_memory: Option<u64>,
    /// Types appended to the type section, in order.
    pub extra_types: Vec<AppendedType>,
    /// Element types of the tables that hold saved references, in table order.
    pub ref_tables: Vec<wasm_encoder::RefType>,
    /// The runtime functions' output indices, exported in this order.
    pub runtime_exports: Vec<(RuntimeFunction, u32)>,
    /// The functions appended after the input's, the runtime functions
    /// first: (type index, body).
    pub added_functions: Vec<(u32, Function)>,
    /// Type index of a tag to append after the input's tags (see
    /// [`EmitContext::reenter_tag`]).
    pub reenter_tag_type: Option<u32>,
    /// When imports are replaced by wrappers where they are referenced: the
    /// remapping for function references in tables, globals and element
    /// segments (calls keep `EmitContext::remap`).
    pub ref_remap: Option<Remap>,
    /// Wrappers that replace imports in references, declared in an added
    /// declarative element segment so `ref.func` may name them.
    pub declared_wrappers: Vec<u32>,
    /// Names for added functions (output index, increasing, after every
    /// input function), written into the name section (one is added if the
    /// input has none).
    pub function_names: Vec<(u32, String)>,
}

/// The position of a section in a module's required order (the tag section
/// sits between memory and global, data count before code); custom sections
/// are 0.
pub(crate) fn section_rank(id: SectionId) -> u8 {
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

/// Assembles the output module.
pub fn assemble(
    info: &ModuleInfo<'_>,
    cx: &EmitContext,
    add: &Additions,
    bodies: Vec<Body<'_>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>, Error> {
    let mut assembler = Assembler::new(info, cx, add, bodies, warnings);
    let mut module = Module::new();
    assembler.parse_core_module(&mut module, wasmparser::Parser::new(0), info.bytes)?;
    Ok(module.finish())
}

/// The [`Reencode`] that copies the input and adds what [`Additions`] lists.
struct Assembler<'a, 'b> {
    info: &'b ModuleInfo<'a>,
    add: &'b Additions,
    /// Index changes for calls, the start function, data and names.
    remap: Remap,
    /// Index changes for function references (tables, globals, elements,
    /// exports): `remap` with wrappers in place of the imports they replace.
    ref_remap: Remap,
    /// Whether any index changes (sections that hold indices are re-encoded).
    shift: bool,
    /// Whether function references change.
    refs_change: bool,
    ptr_type: wasm_encoder::ValType,
    state_global: u32,
    data_global: u32,
    /// Input function bodies, taken when the code section is written.
    bodies: Vec<Body<'a>>,
    /// Sections the input lacks that the additions need, increasing in
    /// [`section_rank`]: each is written before the first input section that
    /// must follow it, or at the end.
    missing: Vec<SectionId>,
    /// Whether a name section was written (added function names need one).
    named: bool,
    warnings: &'b mut Vec<String>,
}

impl<'a, 'b> Assembler<'a, 'b> {
    fn new(
        info: &'b ModuleInfo<'a>,
        cx: &EmitContext,
        add: &'b Additions,
        bodies: Vec<Body<'a>>,
        warnings: &'b mut Vec<String>,
    ) -> Self {
        let remap = cx.remap.clone();
        let needed = [
            (SectionId::Type, true),
            (SectionId::Import, add.import_globals),
            (SectionId::Function, true),
            (SectionId::Table, !add.ref_tables.is_empty()),
            (SectionId::Memory, add.secondary_memory.is_some()),
            (SectionId::Tag, add.reenter_tag_type.is_some()),
            (
                SectionId::Global,
                !add.import_globals || !add.ref_tables.is_empty(),
            ),
            (SectionId::Export, true),
            (SectionId::Element, !add.declared_wrappers.is_empty()),
            (SectionId::Code, true),
        ];
        let present: Vec<u8> = info.sections.iter().map(|s| s.id).collect();
        let missing = needed
            .into_iter()
            .filter(|&(id, needed)| needed && !present.contains(&(id as u8)))
            .map(|(id, _)| id)
            .collect();
        Assembler {
            info,
            add,
            shift: !remap.is_identity(),
            refs_change: add.ref_remap.is_some(),
            ref_remap: add.ref_remap.clone().unwrap_or_else(|| remap.clone()),
            remap,
            ptr_type: if cx.memory64 {
                wasm_encoder::ValType::I64
            } else {
                wasm_encoder::ValType::I32
            },
            state_global: cx.state_global,
            data_global: cx.data_global,
            bodies,
            missing,
            named: false,
            warnings,
        }
    }

    /// The state and data globals' types.
    fn state_globals(&self) -> [GlobalType; 2] {
        let global = |val_type| GlobalType {
            val_type,
            mutable: true,
            shared: false,
        };
        [global(wasm_encoder::ValType::I32), global(self.ptr_type)]
    }

    fn add_types(&self, types: &mut TypeSection) {
        for (params, results) in &self.add.extra_types {
            types
                .ty()
                .function(params.iter().copied(), results.iter().copied());
        }
    }

    fn add_imports(&self, imports: &mut ImportSection) {
        if self.add.import_globals {
            let [state, data] = self.state_globals();
            imports.import(
                globals::IMPORT_MODULE,
                globals::STATE,
                EntityType::Global(state),
            );
            imports.import(
                globals::IMPORT_MODULE,
                globals::DATA,
                EntityType::Global(data),
            );
        }
    }

    fn add_functions(&self, functions: &mut FunctionSection) {
        for (ty, _) in &self.add.added_functions {
            functions.function(*ty);
        }
    }

    fn add_tables(&self, tables: &mut TableSection) {
        for &element_type in &self.add.ref_tables {
            tables.table(wasm_encoder::TableType {
                element_type,
                table64: false,
                minimum: 0,
                maximum: None,
                shared: false,
            });
        }
    }

    fn add_memories(&self, memories: &mut MemorySection) {
        if let Some(pages) = self.add.secondary_memory {
            memories.memory(MemoryType {
                minimum: pages,
                maximum: Some(pages),
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
        }
    }

    fn add_tags(&self, tags: &mut TagSection) {
        if let Some(func_type_idx) = self.add.reenter_tag_type {
            tags.tag(wasm_encoder::TagType {
                kind: wasm_encoder::TagKind::Exception,
                func_type_idx,
            });
        }
    }

    /// The state and data globals (unless imported), then the slot
    /// allocators of the reference tables: `next` and `live` for each.
    fn add_globals(&self, section: &mut GlobalSection) {
        if !self.add.import_globals {
            let [state, data] = self.state_globals();
            section.global(state, &ConstExpr::i32_const(0));
            let zero = if self.ptr_type == wasm_encoder::ValType::I64 {
                ConstExpr::i64_const(0)
            } else {
                ConstExpr::i32_const(0)
            };
            section.global(data, &zero);
        }
        for _ in 0..2 * self.add.ref_tables.len() {
            section.global(
                GlobalType {
                    val_type: wasm_encoder::ValType::I32,
                    mutable: true,
                    shared: false,
                },
                &ConstExpr::i32_const(0),
            );
        }
    }

    fn add_exports(&self, exports: &mut ExportSection) {
        for &(f, index) in &self.add.runtime_exports {
            exports.export(f.export_name(), ExportKind::Func, index);
        }
        if self.add.export_globals {
            exports.export(globals::STATE, ExportKind::Global, self.state_global);
            exports.export(globals::DATA, ExportKind::Global, self.data_global);
        }
        if self.add.secondary_memory.is_some() {
            exports.export(
                asyncify_abi::SECONDARY_MEMORY_EXPORT,
                ExportKind::Memory,
                self.info.memories.len() as u32,
            );
        }
    }

    fn add_elements(&self, elements: &mut ElementSection) {
        if !self.add.declared_wrappers.is_empty() {
            elements.declared(wasm_encoder::Elements::Functions(
                std::borrow::Cow::Borrowed(&self.add.declared_wrappers),
            ));
        }
    }

    /// The input's bodies, then the added functions'.
    fn add_code(&mut self, code: &mut CodeSection) {
        for body in std::mem::take(&mut self.bodies) {
            match body {
                Body::Encoded(f) => code.function(&f),
                Body::Raw(bytes) => code.raw(bytes),
            };
        }
        for (_, f) in &self.add.added_functions {
            code.function(f);
        }
    }

    /// Writes a section the input lacks, with only the additions.
    fn write_missing(&mut self, module: &mut Module, id: SectionId) {
        match id {
            SectionId::Type => module.section(&with(TypeSection::new(), |s| self.add_types(s))),
            SectionId::Import => {
                module.section(&with(ImportSection::new(), |s| self.add_imports(s)))
            }
            SectionId::Function => {
                module.section(&with(FunctionSection::new(), |s| self.add_functions(s)))
            }
            SectionId::Table => module.section(&with(TableSection::new(), |s| self.add_tables(s))),
            SectionId::Memory => {
                module.section(&with(MemorySection::new(), |s| self.add_memories(s)))
            }
            SectionId::Tag => module.section(&with(TagSection::new(), |s| self.add_tags(s))),
            SectionId::Global => {
                module.section(&with(GlobalSection::new(), |s| self.add_globals(s)))
            }
            SectionId::Export => {
                module.section(&with(ExportSection::new(), |s| self.add_exports(s)))
            }
            SectionId::Element => {
                module.section(&with(ElementSection::new(), |s| self.add_elements(s)))
            }
            SectionId::Code => {
                let mut code = CodeSection::new();
                self.add_code(&mut code);
                module.section(&code)
            }
            _ => module,
        };
    }

    /// The function names to add when the input has no name section.
    fn write_added_names(&self, module: &mut Module) {
        if !self.named && !self.add.function_names.is_empty() {
            let mut names = wasm_encoder::NameSection::new();
            let mut map = wasm_encoder::NameMap::new();
            for (index, name) in &self.add.function_names {
                map.append(*index, name);
            }
            names.functions(&map);
            module.section(&names);
        }
    }
}

/// Where each item of `section` is in the input.
fn item_ranges<'s, T: FromReader<'s>>(
    section: SectionLimited<'s, T>,
) -> Result<Vec<std::ops::Range<usize>>, ReencodeError> {
    let end = section.range().end as usize;
    let mut starts = Vec::with_capacity(section.count() as usize);
    for item in section.into_iter_with_offsets() {
        starts.push(item?.0 as usize);
    }
    let ends = starts.iter().skip(1).copied().chain([end]);
    Ok(starts
        .iter()
        .zip(ends)
        .map(|(&start, end)| start..end)
        .collect())
}

/// `section` after `fill`.
fn with<S>(mut section: S, fill: impl FnOnce(&mut S)) -> S {
    fill(&mut section);
    section
}

impl<'a> Reencode for Assembler<'a, '_> {
    type Error = Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, ReencodeError> {
        Ok(self.remap.func(func))
    }

    fn global_index(&mut self, global: u32) -> Result<u32, ReencodeError> {
        Ok(self.remap.global(global))
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), ReencodeError> {
        let due = |id: SectionId| before.is_none_or(|b| section_rank(id) < section_rank(b));
        while let Some(&id) = self.missing.first().filter(|&&id| due(id)) {
            self.missing.remove(0);
            self.write_missing(module, id);
        }
        if before.is_none() {
            self.write_added_names(module);
        }
        Ok(())
    }

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        self.remap.parse_type_section(types, section)?;
        self.add_types(types);
        Ok(())
    }

    /// The input's imports but those of the runtime functions (the output
    /// defines them), then the state globals when imported.
    fn parse_import_section(
        &mut self,
        imports: &mut ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        for group in section {
            for import in group? {
                let (_, import) = import?;
                if import.module == asyncify_abi::RUNTIME_IMPORT_MODULE
                    && matches!(import.ty, wasmparser::TypeRef::Func(_))
                    && RuntimeFunction::from_import_name(import.name).is_some()
                {
                    continue;
                }
                let ty = self.remap.entity_type(import.ty)?;
                imports.import(import.module, import.name, ty);
            }
        }
        self.add_imports(imports);
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        self.remap.parse_function_section(functions, section)?;
        self.add_functions(functions);
        Ok(())
    }

    fn parse_table_section(
        &mut self,
        tables: &mut TableSection,
        section: wasmparser::TableSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        self.ref_remap.parse_table_section(tables, section)?;
        self.add_tables(tables);
        Ok(())
    }

    fn parse_memory_section(
        &mut self,
        memories: &mut MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        self.remap.parse_memory_section(memories, section)?;
        self.add_memories(memories);
        Ok(())
    }

    fn parse_tag_section(
        &mut self,
        tags: &mut TagSection,
        section: wasmparser::TagSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        self.remap.parse_tag_section(tags, section)?;
        self.add_tags(tags);
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        if self.shift || self.refs_change {
            self.ref_remap.parse_global_section(globals, section)?;
        } else {
            for range in item_ranges(section)? {
                globals.raw(&self.info.bytes[range]);
            }
        }
        self.add_globals(globals);
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        self.ref_remap.parse_export_section(exports, section)?;
        self.add_exports(exports);
        Ok(())
    }

    fn parse_element_section(
        &mut self,
        elements: &mut ElementSection,
        section: wasmparser::ElementSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        if self.shift || self.refs_change {
            self.ref_remap.parse_element_section(elements, section)?;
        } else {
            for range in item_ranges(section)? {
                elements.raw(&self.info.bytes[range]);
            }
        }
        self.add_elements(elements);
        Ok(())
    }

    fn parse_data_section(
        &mut self,
        data: &mut DataSection,
        section: wasmparser::DataSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        if self.shift {
            self.remap.parse_data_section(data, section)?;
        } else {
            for range in item_ranges(section)? {
                data.raw(&self.info.bytes[range]);
            }
        }
        Ok(())
    }

    /// The rewritten bodies (see [`Body`]) instead of the input's.
    fn parse_code_section(
        &mut self,
        code: &mut CodeSection,
        _section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        self.add_code(code);
        Ok(())
    }

    /// Copied as bytes, except debug information (the rewrite moves code
    /// offsets, so it would be wrong) and the name section when indices
    /// change or functions are added.
    fn parse_custom_section(
        &mut self,
        module: &mut Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), ReencodeError> {
        let name = section.name();
        if name.starts_with(".debug_")
            || name == "sourceMappingURL"
            || name == "external_debug_info"
        {
            self.warnings.push(format!("dropped custom section `{name}`: the rewrite changes code offsets, so its debug information would be wrong"));
            return Ok(());
        }
        if name == "name" && (self.shift || !self.add.function_names.is_empty()) {
            let names = wasmparser::NameSectionReader::new(BinaryReader::new(
                section.data(),
                section.data_offset(),
            ));
            match name_section(&mut self.remap, names, &self.add.function_names) {
                Ok(names) => {
                    self.named = true;
                    module.section(&names);
                }
                Err(_) => self
                    .warnings
                    .push("dropped a malformed name section".into()),
            }
            return Ok(());
        }
        let range = section.range();
        module.section(&RawSection {
            id: SectionId::Custom as u8,
            data: &self.info.bytes[range.start as usize..range.end as usize],
        });
        Ok(())
    }
}

/// The input's name section with indices remapped, and `extra` function
/// names (whose indices come after every input function) appended.
fn name_section(
    remap: &mut Remap,
    names: wasmparser::NameSectionReader<'_>,
    extra: &[(u32, String)],
) -> Result<wasm_encoder::NameSection, wasm_encoder::reencode::Error<std::convert::Infallible>> {
    let mut out = wasm_encoder::NameSection::new();
    let mut functions_seen = false;
    let append_extra = |map: &mut wasm_encoder::NameMap| {
        for (index, name) in extra {
            map.append(*index, name);
        }
    };
    for subsection in names {
        match subsection? {
            wasmparser::Name::Function(map) => {
                functions_seen = true;
                let mut out_map = wasm_encoder::NameMap::new();
                for naming in map {
                    let naming = naming?;
                    out_map.append(remap.function_index(naming.index)?, naming.name);
                }
                append_extra(&mut out_map);
                out.functions(&out_map);
            }
            other => {
                if !functions_seen && matches!(other, wasmparser::Name::Local(_)) {
                    // Function names come before local names.
                    functions_seen = true;
                    let mut out_map = wasm_encoder::NameMap::new();
                    append_extra(&mut out_map);
                    if !extra.is_empty() {
                        out.functions(&out_map);
                    }
                }
                remap.parse_custom_name_subsection(&mut out, other)?;
            }
        }
    }
    if !functions_seen && !extra.is_empty() {
        let mut out_map = wasm_encoder::NameMap::new();
        append_extra(&mut out_map);
        out.functions(&out_map);
    }
    Ok(out)
}
