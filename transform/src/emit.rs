//! Emitting: assemble the output module from the input's sections, the
//! rewritten bodies and the runtime (state globals, the five exports, and the
//! optional secondary memory). Sections that do not change are copied as bytes.

use wasm_encoder::reencode::Reencode;
use wasm_encoder::{
    CodeSection, ConstExpr, Encode, EntityType, ExportKind, Function, GlobalType, ImportSection,
    MemoryType, RawSection, Section,
};
use wasmparser::BinaryReader;

use asyncify_abi::{globals, RuntimeFunction};

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

/// What the emitter adds to the module.
pub struct Additions {
    pub import_globals: bool,
    pub export_globals: bool,
    /// Pages of a new memory for the buffer, exported as `asyncify_memory`.
    pub secondary_memory: Option<u64>,
    /// Type indices (output) of the runtime function types, appended to the type section:
    /// `[ptr] -> []`, `[] -> []`, `[] -> [i32]`, then the multi-value block types.
    pub extra_types: Vec<(Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>)>,
    /// Element types of the tables that hold saved references, in table order.
    pub ref_tables: Vec<wasm_encoder::RefType>,
    /// Output index of the first runtime function.
    pub runtime_base: u32,
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

/// Section order ranks (the binary format's required order).
fn rank(id: u8) -> u8 {
    match id {
        1 => 1,
        2 => 2,
        3 => 3,
        4 => 4,
        5 => 5,
        13 => 6,
        6 => 7,
        7 => 8,
        8 => 9,
        9 => 10,
        12 => 11,
        10 => 12,
        11 => 13,
        _ => 0,
    }
}

/// Appends `extra` encoded items (each already encoded, count `n_extra`) to a
/// vector section whose contents are `raw` (count followed by items).
fn splice(raw: &[u8], n_extra: u32, extra: &[u8]) -> Result<Vec<u8>, Error> {
    let mut reader = BinaryReader::new(raw, 0);
    let count = reader.read_var_u32()?;
    let rest = &raw[reader.original_position() as usize..];
    let mut out = Vec::with_capacity(raw.len() + extra.len() + 5);
    (count + n_extra).encode(&mut out);
    out.extend_from_slice(rest);
    out.extend_from_slice(extra);
    Ok(out)
}

/// Encodes a section's items without its count prefix.
fn items_only<S: Section>(section: &S) -> Vec<u8> {
    let mut bytes = Vec::new();
    section.encode(&mut bytes);
    // Skip the size and the count.
    let mut reader = BinaryReader::new(&bytes, 0);
    let _ = reader.read_var_u32();
    let _ = reader.read_var_u32();
    bytes[reader.original_position() as usize..].to_vec()
}

/// Assembles the output module.
pub fn assemble(
    info: &ModuleInfo<'_>,
    cx: &EmitContext,
    add: &Additions,
    bodies: Vec<Body<'_>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<u8>, Error> {
    let bytes = info.bytes;
    let mut out = wasm_encoder::Module::new();
    let mut remap: Remap = cx.remap.clone();
    let shift = !remap.is_identity();
    let ptr_val = if cx.memory64 {
        wasm_encoder::ValType::I64
    } else {
        wasm_encoder::ValType::I32
    };
    let runtime_base = add.runtime_base;
    let memory_count = info.memories.len() as u32;

    // What is still to be written, by section id.
    let mut pending: Vec<u8> = vec![1, 3, 7, 10];
    // Whether a name section was written (added function names need one).
    let mut named = false;
    if add.import_globals {
        pending.push(2);
    }
    if !add.import_globals || !add.ref_tables.is_empty() {
        pending.push(6);
    }
    if add.secondary_memory.is_some() {
        pending.push(5);
    }
    if !add.ref_tables.is_empty() {
        pending.push(4);
    }
    // Function references: wrappers instead of the imports they replace.
    let mut ref_remap: Remap = add.ref_remap.clone().unwrap_or_else(|| remap.clone());
    let refs_change = add.ref_remap.is_some();
    let mut declared_items = wasm_encoder::ElementSection::new();
    if !add.declared_wrappers.is_empty() {
        pending.push(9);
        declared_items.declared(wasm_encoder::Elements::Functions(
            std::borrow::Cow::Borrowed(&add.declared_wrappers),
        ));
    }
    let mut tag_items = wasm_encoder::TagSection::new();
    if let Some(func_type_index) = add.reenter_tag_type {
        pending.push(13);
        tag_items.tag(wasm_encoder::TagType {
            kind: wasm_encoder::TagKind::Exception,
            func_type_idx: func_type_index,
        });
    }
    let mut table_items = wasm_encoder::TableSection::new();
    for &element_type in &add.ref_tables {
        table_items.table(wasm_encoder::TableType {
            element_type,
            table64: false,
            minimum: 0,
            maximum: None,
            shared: false,
        });
    }
    let n_tables = add.ref_tables.len() as u32;

    let mut type_items = wasm_encoder::TypeSection::new();
    for (p, r) in &add.extra_types {
        type_items
            .ty()
            .function(p.iter().copied(), r.iter().copied());
    }
    let n_types = add.extra_types.len() as u32;

    let mut global_items = wasm_encoder::GlobalSection::new();
    let mut global_imports = ImportSection::new();
    if add.import_globals {
        global_imports.import(
            globals::IMPORT_MODULE,
            globals::STATE,
            EntityType::Global(GlobalType {
                val_type: wasm_encoder::ValType::I32,
                mutable: true,
                shared: false,
            }),
        );
        global_imports.import(
            globals::IMPORT_MODULE,
            globals::DATA,
            EntityType::Global(GlobalType {
                val_type: ptr_val,
                mutable: true,
                shared: false,
            }),
        );
    } else {
        global_items.global(
            GlobalType {
                val_type: wasm_encoder::ValType::I32,
                mutable: true,
                shared: false,
            },
            &ConstExpr::i32_const(0),
        );
        let zero = if cx.memory64 {
            ConstExpr::i64_const(0)
        } else {
            ConstExpr::i32_const(0)
        };
        global_items.global(
            GlobalType {
                val_type: ptr_val,
                mutable: true,
                shared: false,
            },
            &zero,
        );
    }

    // Slot allocators of the reference tables: `next` and `live` for each.
    for _ in 0..2 * add.ref_tables.len() {
        global_items.global(
            GlobalType {
                val_type: wasm_encoder::ValType::I32,
                mutable: true,
                shared: false,
            },
            &ConstExpr::i32_const(0),
        );
    }
    let n_global_items = global_items.len();

    let mut func_items = wasm_encoder::FunctionSection::new();
    for (ty, _) in &add.added_functions {
        func_items.function(*ty);
    }
    let n_funcs = add.added_functions.len() as u32;

    let mut memory_items = wasm_encoder::MemorySection::new();
    if let Some(pages) = add.secondary_memory {
        memory_items.memory(MemoryType {
            minimum: pages,
            maximum: Some(pages),
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
    }

    let mut export_items = wasm_encoder::ExportSection::new();
    for (i, f) in RuntimeFunction::ALL.into_iter().enumerate() {
        export_items.export(f.export_name(), ExportKind::Func, runtime_base + i as u32);
    }
    if add.export_globals {
        export_items.export(globals::STATE, ExportKind::Global, cx.state_global);
        export_items.export(globals::DATA, ExportKind::Global, cx.data_global);
    }
    if add.secondary_memory.is_some() {
        export_items.export(
            asyncify_abi::SECONDARY_MEMORY_EXPORT,
            ExportKind::Memory,
            memory_count,
        );
    }
    let n_exports = RuntimeFunction::ALL.len() as u32
        + if add.export_globals { 2 } else { 0 }
        + u32::from(add.secondary_memory.is_some());

    let mut code = CodeSection::new();
    for b in &bodies {
        match b {
            Body::Encoded(f) => {
                code.function(f);
            }
            Body::Raw(bytes) => {
                code.raw(bytes);
            }
        }
    }
    for (_, f) in &add.added_functions {
        code.function(f);
    }

    // Emits the fresh section for `id` when the input had none.
    let mut emit_fresh = |out: &mut wasm_encoder::Module, id: u8| match id {
        1 => {
            out.section(&type_items);
        }
        2 => {
            out.section(&global_imports);
        }
        3 => {
            out.section(&func_items);
        }
        4 => {
            out.section(&table_items);
        }
        5 => {
            out.section(&memory_items);
        }
        6 => {
            out.section(&global_items);
        }
        7 => {
            out.section(&export_items);
        }
        10 => {
            out.section(&code);
        }
        13 => {
            out.section(&tag_items);
        }
        9 => {
            out.section(&declared_items);
        }
        _ => {}
    };
    let flush = |out: &mut wasm_encoder::Module,
                 pending: &mut Vec<u8>,
                 upto: u8,
                 emit_fresh: &mut dyn FnMut(&mut wasm_encoder::Module, u8)| {
        let mut ids: Vec<u8> = pending
            .iter()
            .copied()
            .filter(|&id| rank(id) < upto)
            .collect();
        ids.sort_by_key(|&id| rank(id));
        for id in ids {
            emit_fresh(out, id);
            pending.retain(|&p| p != id);
        }
    };

    for section in &info.sections {
        let raw = &bytes[section.range.clone()];
        let id = section.id;
        if id != 0 {
            flush(&mut out, &mut pending, rank(id), &mut emit_fresh);
        }
        pending.retain(|&p| p != id);
        let copy = |out: &mut wasm_encoder::Module, data: &[u8]| {
            out.section(&RawSection { id, data });
        };
        match id {
            1 => copy(&mut out, &splice(raw, n_types, &items_only(&type_items))?),
            2 => {
                let mut imports = ImportSection::new();
                let reader = wasmparser::ImportSectionReader::new(BinaryReader::new(
                    raw,
                    section.range.start as u64,
                ))?;
                for group in reader {
                    for import in group? {
                        let (_, import) = import?;
                        if import.module == asyncify_abi::RUNTIME_IMPORT_MODULE
                            && matches!(import.ty, wasmparser::TypeRef::Func(_))
                            && RuntimeFunction::from_import_name(import.name).is_some()
                        {
                            continue;
                        }
                        let ty = remap.entity_type(import.ty)?;
                        imports.import(import.module, import.name, ty);
                    }
                }
                if add.import_globals {
                    imports.import(
                        globals::IMPORT_MODULE,
                        globals::STATE,
                        EntityType::Global(GlobalType {
                            val_type: wasm_encoder::ValType::I32,
                            mutable: true,
                            shared: false,
                        }),
                    );
                    imports.import(
                        globals::IMPORT_MODULE,
                        globals::DATA,
                        EntityType::Global(GlobalType {
                            val_type: ptr_val,
                            mutable: true,
                            shared: false,
                        }),
                    );
                }
                out.section(&imports);
            }
            3 => copy(&mut out, &splice(raw, n_funcs, &items_only(&func_items))?),
            13 if add.reenter_tag_type.is_some() => {
                copy(&mut out, &splice(raw, 1, &items_only(&tag_items))?)
            }
            5 if add.secondary_memory.is_some() => {
                copy(&mut out, &splice(raw, 1, &items_only(&memory_items))?)
            }
            6 => {
                let base = if shift || refs_change {
                    let mut s = wasm_encoder::GlobalSection::new();
                    let reader = wasmparser::GlobalSectionReader::new(BinaryReader::new(
                        raw,
                        section.range.start as u64,
                    ))?;
                    ref_remap.parse_global_section(&mut s, reader)?;
                    section_contents(&s)
                } else {
                    raw.to_vec()
                };
                copy(
                    &mut out,
                    &splice(&base, n_global_items, &items_only(&global_items))?,
                );
            }
            7 => {
                let mut s = wasm_encoder::ExportSection::new();
                let reader = wasmparser::ExportSectionReader::new(BinaryReader::new(
                    raw,
                    section.range.start as u64,
                ))?;
                ref_remap.parse_export_section(&mut s, reader)?;
                let base = section_contents(&s);
                copy(
                    &mut out,
                    &splice(&base, n_exports, &items_only(&export_items))?,
                );
            }
            8 if shift => {
                let mut r = BinaryReader::new(raw, 0);
                let f = r.read_var_u32()?;
                out.section(&wasm_encoder::StartSection {
                    function_index: remap.func(f),
                });
            }
            4 => {
                let base = if shift || refs_change {
                    let mut s = wasm_encoder::TableSection::new();
                    ref_remap.parse_table_section(
                        &mut s,
                        wasmparser::TableSectionReader::new(BinaryReader::new(
                            raw,
                            section.range.start as u64,
                        ))?,
                    )?;
                    section_contents(&s)
                } else {
                    raw.to_vec()
                };
                copy(
                    &mut out,
                    &splice(&base, n_tables, &items_only(&table_items))?,
                );
            }
            9 | 11 if shift || (id == 9 && refs_change) => {
                let mut data = Vec::new();
                match id {
                    9 => {
                        let mut s = wasm_encoder::ElementSection::new();
                        ref_remap.parse_element_section(
                            &mut s,
                            wasmparser::ElementSectionReader::new(BinaryReader::new(
                                raw,
                                section.range.start as u64,
                            ))?,
                        )?;
                        if !add.declared_wrappers.is_empty() {
                            s.declared(wasm_encoder::Elements::Functions(
                                std::borrow::Cow::Borrowed(&add.declared_wrappers),
                            ));
                        }
                        data = section_contents(&s);
                    }
                    11 => {
                        let mut s = wasm_encoder::DataSection::new();
                        remap.parse_data_section(
                            &mut s,
                            wasmparser::DataSectionReader::new(BinaryReader::new(
                                raw,
                                section.range.start as u64,
                            ))?,
                        )?;
                        data = section_contents(&s);
                    }
                    _ => {}
                }
                copy(&mut out, &data);
            }
            10 => {
                out.section(&code);
            }
            0 => {
                let reader = wasmparser::CustomSectionReader::new(BinaryReader::new(
                    raw,
                    section.range.start as u64,
                ))?;
                let name = reader.name();
                if name.starts_with(".debug_")
                    || name == "sourceMappingURL"
                    || name == "external_debug_info"
                {
                    warnings.push(format!("dropped custom section `{name}`: the rewrite changes code offsets, so its debug information would be wrong"));
                    continue;
                }
                if name == "name" && (shift || !add.function_names.is_empty()) {
                    let names = wasmparser::NameSectionReader::new(BinaryReader::new(
                        reader.data(),
                        reader.data_offset(),
                    ));
                    let s = match name_section(&mut remap, names, &add.function_names) {
                        Ok(n) => n,
                        Err(_) => {
                            warnings.push("dropped a malformed name section".into());
                            continue;
                        }
                    };
                    named = true;
                    out.section(&s);
                    continue;
                }
                copy(&mut out, raw);
            }
            _ => copy(&mut out, raw),
        }
    }
    flush(&mut out, &mut pending, u8::MAX, &mut emit_fresh);
    if !named && !add.function_names.is_empty() {
        let mut names = wasm_encoder::NameSection::new();
        let mut map = wasm_encoder::NameMap::new();
        for (index, name) in &add.function_names {
            map.append(*index, name);
        }
        names.functions(&map);
        out.section(&names);
    }
    Ok(out.finish())
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

/// The contents (count and items) of an encoded section, without id and size.
fn section_contents<S: Section>(s: &S) -> Vec<u8> {
    let mut bytes = Vec::new();
    s.encode(&mut bytes);
    let mut reader = BinaryReader::new(&bytes, 0);
    let _ = reader.read_var_u32();
    bytes[reader.original_position() as usize..].to_vec()
}
