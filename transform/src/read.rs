//! Reading: parse the input, validate it with every feature enabled, and
//! collect what the later phases need (imports, bodies, names, memories).

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use wasmparser::{
    BinaryReader, ElementItems, ExternalKind, FuncToValidate, FunctionBody, MemoryType, Name,
    NameSectionReader, Operator, OperatorsReader, Parser, Payload, TypeRef, ValidPayload,
    Validator, ValidatorResources, WasmFeatures,
};

use wasmparser::{HeapType, RefType, UnpackedIndex, ValType};

use asyncify_abi::{RuntimeFunction, RUNTIME_IMPORT_MODULE};

use crate::Error;

/// One section of the input, kept as its id and the byte range of its contents.
#[derive(Debug, Clone)]
pub struct RawSection {
    pub id: u8,
    pub range: Range<usize>,
}

/// A function import.
#[derive(Debug, Clone)]
pub struct FuncImport<'a> {
    pub module: &'a str,
    pub name: &'a str,
    /// The runtime function this is, if it is `asyncify.start_unwind` & co.
    pub runtime: Option<RuntimeFunction>,
    /// Its type index.
    pub ty: u32,
}

/// What the direct scan of one function body found.
#[derive(Debug, Default, Clone)]
pub struct CallSummary {
    /// Direct callees (`call`, `return_call`), sorted and deduplicated.
    pub callees: Vec<u32>,
    /// Whether the body makes an indirect call (`call_indirect`, `call_ref`, tail variants).
    pub indirect: bool,
    /// The type indices of those indirect calls, sorted and deduplicated.
    pub indirect_types: Vec<u32>,
    /// Functions the body takes a reference to (`ref.func`).
    pub ref_funcs: Vec<u32>,
    /// The body uses typed references (see [`ModuleInfo::typed_refs`]).
    pub typed_refs: bool,
}

/// Everything the later phases need from the input module.
pub struct ModuleInfo<'a> {
    pub bytes: &'a [u8],
    /// Sections in input order (custom sections included, id 0).
    pub sections: Vec<RawSection>,
    pub func_imports: Vec<FuncImport<'a>>,
    /// Functions that may end up in a table or a reference: listed in an
    /// element segment, or taken by `ref.func` in a body or a global.
    pub referenced_funcs: HashSet<u32>,
    pub num_imported_globals: u32,
    /// Imported tables (they come first in the table index space).
    pub num_imported_tables: u32,
    /// Imported tags (they come first in the tag index space).
    pub num_imported_tags: u32,
    pub num_globals: u32,
    pub num_types: u32,
    /// Tables, imported and defined.
    pub num_tables: u32,
    /// Memories in index order.
    pub memories: Vec<MemoryType>,
    /// Exports: name → (kind, index).
    pub exports: Vec<(&'a str, ExternalKind, u32)>,
    /// Function names from the name section.
    pub names: HashMap<u32, &'a str>,
    /// Type names from the name section.
    pub type_names: HashMap<u32, &'a str>,
    /// Bodies of defined functions, in order.
    pub bodies: Vec<FunctionBody<'a>>,
    /// Per defined function: the validator handle used to re-walk it.
    pub funcs: Vec<FuncToValidate<ValidatorResources>>,
    /// Per defined function: direct scan of calls.
    pub calls: Vec<CallSummary>,
    /// The module uses typed references (function references or GC): a
    /// concrete or non-nullable reference type, or an instruction that needs
    /// one. Without them the rewrite keeps to `funcref`/`externref`.
    pub typed_refs: bool,
    pub types: wasmparser::types::Types,
    /// Canonical type id → module type index, to turn the validator's
    /// canonical reference types back into encodable ones.
    pub type_ids: HashMap<wasmparser::types::CoreTypeId, u32>,
}

impl<'a> ModuleInfo<'a> {
    /// Total functions (imported + defined).
    pub fn num_funcs(&self) -> u32 {
        self.func_imports.len() as u32 + self.bodies.len() as u32
    }

    /// The name of function `index` for messages: `$name` or `func N`.
    pub fn func_label(&self, index: u32) -> String {
        match self.names.get(&index) {
            Some(n) => format!("${n} (func {index})"),
            None => match self.func_imports.get(index as usize) {
                Some(i) => format!("import {}.{} (func {index})", i.module, i.name),
                None => format!("func {index}"),
            },
        }
    }

    /// A value type of the module as the text format writes it: `i32`,
    /// `funcref`, `(ref $box)` (or `(ref 0)` without a type name),
    /// `(ref null any)`.
    pub fn format_val_type(&self, t: ValType) -> String {
        let ValType::Ref(r) = self.module_val_type(t) else {
            return t.to_string();
        };
        let heap = match r.heap_type() {
            HeapType::Concrete(UnpackedIndex::Module(i)) => match self.type_names.get(&i) {
                Some(name) => format!("${name}"),
                None => i.to_string(),
            },
            HeapType::Abstract { shared, ty } => {
                use wasmparser::AbstractHeapType as A;
                let name = match ty {
                    A::Func => "func",
                    A::Extern => "extern",
                    A::Any => "any",
                    A::None => "none",
                    A::NoExtern => "noextern",
                    A::NoFunc => "nofunc",
                    A::Eq => "eq",
                    A::Struct => "struct",
                    A::Array => "array",
                    A::I31 => "i31",
                    A::Exn => "exn",
                    A::NoExn => "noexn",
                    A::Cont => "cont",
                    A::NoCont => "nocont",
                };
                if shared {
                    format!("(shared {name})")
                } else {
                    name.to_string()
                }
            }
            other => format!("{other:?}"),
        };
        if r.is_nullable() {
            match heap.as_str() {
                "func" | "extern" | "any" | "eq" | "i31" | "struct" | "array" | "exn" | "none"
                | "nofunc" | "noextern" | "noexn" => format!("{heap}ref"),
                _ => format!("(ref null {heap})"),
            }
        } else {
            format!("(ref {heap})")
        }
    }

    /// `t` with concrete heap types expressed as module type indices (and
    /// exact references widened to inexact ones).
    pub fn module_val_type(&self, t: ValType) -> ValType {
        let ValType::Ref(r) = t else { return t };
        let fix = |i: UnpackedIndex| match i {
            UnpackedIndex::Id(id) => {
                UnpackedIndex::Module(self.type_ids.get(&id).copied().unwrap_or(0))
            }
            other => other,
        };
        let heap = match r.heap_type() {
            HeapType::Concrete(i) => HeapType::Concrete(fix(i)),
            // `ref.func` is typed exact (custom descriptors); locals the
            // rewrite adds use the inexact supertype, which every engine knows.
            HeapType::Exact(i) => HeapType::Concrete(fix(i)),
            h => h,
        };
        RefType::new(r.is_nullable(), heap)
            .map(ValType::Ref)
            .unwrap_or(t)
    }

    /// The type the rewrite gives an operand-stack value of type `t` that it
    /// moves into a local: [`Self::module_val_type`], and in a module that
    /// uses no typed references (see [`ModuleInfo::typed_refs`]) a reference
    /// widened to its nullable abstract type, so that `ref.func`'s
    /// `(ref $t)` becomes `funcref` and the output needs no more features
    /// than the input (engines without typed function references load it).
    pub fn stack_val_type(&self, t: ValType) -> ValType {
        match self.module_val_type(t) {
            ValType::Ref(r) if !self.typed_refs => {
                let top = match r.heap_type() {
                    HeapType::Concrete(_) | HeapType::Exact(_) => RefType::FUNCREF,
                    h => RefType::new(true, h).unwrap_or(RefType::FUNCREF),
                };
                ValType::Ref(top)
            }
            t => t,
        }
    }

    /// `module_val_type` over a list.
    pub fn module_val_types(&self, ts: &[ValType]) -> Vec<ValType> {
        ts.iter().map(|&t| self.module_val_type(t)).collect()
    }

    /// The function type of function `index`.
    pub fn func_type(&self, index: u32) -> &wasmparser::FuncType {
        let id = self.types.as_ref().core_function_at(index);
        self.types[id].unwrap_func()
    }
}

/// The feature set used for validation: everything wasmparser knows, so that
/// users never have to name features.
pub fn features() -> WasmFeatures {
    WasmFeatures::all()
}

/// Whether `bytes` has the header of a component: the magic number, then a
/// version and a layer field, layer 1 for components (0 for core modules).
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6..8] == [1, 0]
}

/// Parses and validates `bytes`, scanning every function body for calls.
pub fn read(bytes: &[u8]) -> Result<ModuleInfo<'_>, Error> {
    if is_component(bytes) {
        // The parser would go on into the component's sections.
        return Err(Error::Component);
    }
    let mut validator = Validator::new_with_features(features());
    let mut sections = Vec::new();
    let mut func_imports = Vec::new();
    let mut referenced_funcs = HashSet::new();
    let mut num_imported_globals = 0;
    let mut num_imported_tables = 0;
    let mut num_imported_tags = 0;
    let mut memories = Vec::new();
    let mut exports = Vec::new();
    let mut bodies = Vec::new();
    let mut funcs = Vec::new();
    let mut calls = Vec::new();
    let mut types = None;
    let mut allocs = wasmparser::FuncValidatorAllocations::default();
    let mut name_section: Option<(usize, Range<usize>)> = None;
    let invalid = |e: wasmparser::BinaryReaderError, function: Option<u32>| Error::InvalidInput {
        message: e.message().to_string(),
        offset: e.offset() as usize,
        function: function.map(|f| describe_function(bytes, f)),
    };
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| invalid(e, None))?;
        if let Some((id, range)) = payload.as_section() {
            sections.push(RawSection {
                id,
                range: range.start as usize..range.end as usize,
            });
        }
        match &payload {
            Payload::ImportSection(reader) => {
                for imports in reader.clone() {
                    let imports = imports.map_err(|e| invalid(e, None))?;
                    for import in imports {
                        let (_, import) = import.map_err(|e| invalid(e, None))?;
                        match import.ty {
                            TypeRef::Func(ty) | TypeRef::FuncExact(ty) => {
                                let runtime = if import.module == RUNTIME_IMPORT_MODULE {
                                    RuntimeFunction::from_import_name(import.name)
                                } else {
                                    None
                                };
                                func_imports.push(FuncImport {
                                    module: import.module,
                                    name: import.name,
                                    runtime,
                                    ty,
                                });
                            }
                            TypeRef::Global(_) => num_imported_globals += 1,
                            TypeRef::Table(_) => num_imported_tables += 1,
                            TypeRef::Tag(_) => num_imported_tags += 1,
                            TypeRef::Memory(m) => {
                                memories.push(m);
                            }
                        }
                    }
                }
            }
            Payload::ElementSection(reader) => {
                for element in reader.clone() {
                    let element = element.map_err(|e| invalid(e, None))?;
                    match element.items {
                        ElementItems::Functions(funcs) => {
                            for f in funcs {
                                referenced_funcs.insert(f.map_err(|e| invalid(e, None))?);
                            }
                        }
                        ElementItems::Expressions(_, exprs) => {
                            for expr in exprs {
                                let expr = expr.map_err(|e| invalid(e, None))?;
                                const_expr_refs(&expr, &mut referenced_funcs)
                                    .map_err(|e| invalid(e, None))?;
                            }
                        }
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for global in reader.clone() {
                    let global = global.map_err(|e| invalid(e, None))?;
                    const_expr_refs(&global.init_expr, &mut referenced_funcs)
                        .map_err(|e| invalid(e, None))?;
                }
            }
            Payload::MemorySection(reader) => {
                for m in reader.clone() {
                    memories.push(m.map_err(|e| invalid(e, None))?);
                }
            }
            Payload::ExportSection(reader) => {
                for e in reader.clone() {
                    let e = e.map_err(|e| invalid(e, None))?;
                    exports.push((e.name, e.kind, e.index));
                }
            }
            Payload::CustomSection(c) if c.name() == "name" => {
                let start = c.data_offset() as usize;
                name_section = Some((start, start..start + c.data().len()));
            }
            _ => {}
        }
        match validator.payload(&payload) {
            Ok(ValidPayload::Func(func, body)) => {
                let handle = FuncToValidate {
                    resources: func.resources.clone(),
                    index: func.index,
                    ty: func.ty,
                    features: func.features,
                };
                let mut fv = func.into_validator(std::mem::take(&mut allocs));
                let summary =
                    scan_body(&mut fv, &body).map_err(|e| invalid(e, Some(handle.index)))?;
                allocs = fv.into_allocations();
                referenced_funcs.extend(summary.ref_funcs.iter().copied());
                funcs.push(handle);
                calls.push(summary);
                bodies.push(body);
            }
            Ok(ValidPayload::End(t)) => types = Some(t),
            Ok(_) => {}
            Err(e) => return Err(invalid(e, None)),
        }
    }
    let types = types.ok_or_else(|| Error::InvalidInput {
        message: "unexpected end of module".into(),
        offset: bytes.len(),
        function: None,
    })?;
    let mut names = HashMap::new();
    let mut type_names = HashMap::new();
    if let Some((offset, range)) = name_section {
        read_names(&bytes[range.clone()], offset, &mut names);
        read_type_names(&bytes[range], offset, &mut type_names);
    }
    let type_ids = {
        let t = types.as_ref();
        (0..t.core_type_count_in_module())
            .map(|i| (t.core_type_at_in_module(i), i))
            .collect()
    };
    let typed_refs = calls.iter().any(|c| c.typed_refs) || module_uses_typed_refs(&types);
    Ok(ModuleInfo {
        typed_refs,
        type_ids,
        bytes,
        sections,
        func_imports,
        referenced_funcs,
        num_imported_globals,
        num_imported_tables,
        num_imported_tags,
        num_globals: types.as_ref().global_count(),
        num_types: types.as_ref().core_type_count_in_module(),
        num_tables: types.as_ref().table_count(),
        memories,
        exports,
        names,
        type_names,
        bodies,
        funcs,
        calls,
        types,
    })
}

/// Whether the module's types, globals or tables use typed references (or
/// any GC type).
fn module_uses_typed_refs(types: &wasmparser::types::Types) -> bool {
    let t = types.as_ref();
    let type_uses = (0..t.core_type_count_in_module()).any(|i| {
        let id = t.core_type_at_in_module(i);
        match &t[id].composite_type.inner {
            wasmparser::CompositeInnerType::Func(f) => f
                .params()
                .iter()
                .chain(f.results())
                .any(|&v| is_typed_ref(v)),
            _ => true,
        }
    });
    type_uses
        || (0..t.global_count()).any(|g| is_typed_ref(t.global_at(g).content_type))
        || (0..t.table_count()).any(|i| is_typed_ref(ValType::Ref(t.table_at(i).element_type)))
}

/// Names function `index` for an error message, reading the name section if
/// there is one (best effort: the module is already known to be invalid).
fn describe_function(bytes: &[u8], index: u32) -> String {
    let mut names = HashMap::new();
    for payload in Parser::new(0).parse_all(bytes).flatten() {
        if let Payload::CustomSection(c) = &payload {
            if c.name() == "name" {
                let start = c.data_offset() as usize;
                read_names(&bytes[start..start + c.data().len()], start, &mut names);
            }
        }
    }
    match names.get(&index) {
        Some(n) => format!("${n} (func {index})"),
        None => format!("func {index}"),
    }
}

/// Validates one body and records its calls.
fn scan_body(
    fv: &mut wasmparser::FuncValidator<ValidatorResources>,
    body: &FunctionBody<'_>,
) -> Result<CallSummary, wasmparser::BinaryReaderError> {
    let mut summary = CallSummary::default();
    // Per declaration group, not per local (a body may declare thousands).
    for group in body.get_locals_reader()? {
        summary.typed_refs |= is_typed_ref(group?.1);
    }
    let mut reader = body.get_binary_reader();
    fv.read_locals(&mut reader)?;
    let mut ops = OperatorsReader::new(reader);
    while !ops.eof() {
        let (op, offset) = ops.read_with_offset()?;
        fv.op(offset, &op)?;
        if !summary.typed_refs && uses_typed_refs(&op) {
            summary.typed_refs = true;
        }
        match op {
            Operator::Call { function_index } | Operator::ReturnCall { function_index } => {
                summary.callees.push(function_index);
            }
            Operator::CallIndirect { type_index, .. }
            | Operator::ReturnCallIndirect { type_index, .. }
            | Operator::CallRef { type_index }
            | Operator::ReturnCallRef { type_index } => {
                summary.indirect = true;
                summary.indirect_types.push(type_index);
            }
            Operator::RefFunc { function_index } => summary.ref_funcs.push(function_index),
            _ => {}
        }
    }
    ops.finish()?;
    summary.callees.sort_unstable();
    summary.callees.dedup();
    summary.indirect_types.sort_unstable();
    summary.indirect_types.dedup();
    Ok(summary)
}

/// A reference type that only typed function references or GC can write:
/// non-nullable, or with a concrete heap type.
fn is_typed_ref(t: ValType) -> bool {
    match t {
        ValType::Ref(r) => {
            !r.is_nullable() || matches!(r.heap_type(), HeapType::Concrete(_) | HeapType::Exact(_))
        }
        _ => false,
    }
}

/// Whether operator `op` needs typed references (function references, GC).
fn uses_typed_refs(op: &Operator<'_>) -> bool {
    use wasmparser::BlockType;
    match op {
        Operator::Block { blockty }
        | Operator::Loop { blockty }
        | Operator::If { blockty }
        | Operator::Try { blockty } => matches!(blockty, BlockType::Type(t) if is_typed_ref(*t)),
        Operator::TryTable { try_table } => {
            matches!(try_table.ty, BlockType::Type(t) if is_typed_ref(t))
        }
        Operator::TypedSelect { ty } => is_typed_ref(*ty),
        Operator::RefNull { hty } => matches!(hty, HeapType::Concrete(_) | HeapType::Exact(_)),
        Operator::CallRef { .. }
        | Operator::ReturnCallRef { .. }
        | Operator::RefAsNonNull
        | Operator::BrOnNull { .. }
        | Operator::BrOnNonNull { .. } => true,
        // GC instructions on abstract types (`ref.i31`, casts to abstract
        // types) stay valid on widened values; the others name struct or
        // array types, which `module_uses_typed_refs` sees.
        _ => false,
    }
}

/// Adds the functions a constant expression takes references to.
fn const_expr_refs(
    expr: &wasmparser::ConstExpr<'_>,
    refs: &mut HashSet<u32>,
) -> Result<(), wasmparser::BinaryReaderError> {
    let mut ops = expr.get_operators_reader();
    while !ops.eof() {
        if let Operator::RefFunc { function_index } = ops.read()? {
            refs.insert(function_index);
        }
    }
    Ok(())
}

fn read_type_names<'a>(data: &'a [u8], offset: usize, names: &mut HashMap<u32, &'a str>) {
    let reader = NameSectionReader::new(BinaryReader::new(data, offset as u64));
    for subsection in reader.into_iter().flatten() {
        if let Name::Type(map) = subsection {
            for naming in map.into_iter().flatten() {
                names.insert(naming.index, naming.name);
            }
        }
    }
}

fn read_names<'a>(data: &'a [u8], offset: usize, names: &mut HashMap<u32, &'a str>) {
    // A malformed name section is not fatal: it only costs names in messages.
    let reader = NameSectionReader::new(BinaryReader::new(data, offset as u64));
    for subsection in reader.into_iter().flatten() {
        if let Name::Function(map) = subsection {
            for naming in map.into_iter().flatten() {
                names.insert(naming.index, naming.name);
            }
        }
    }
}
