//! Calls injected into wasm-smith's modules, for the property tests
//! (`tests/tests/properties`) and the fuzz target
//! (`fuzz/fuzz_targets/transform_smith.rs`): one generator, so that both
//! exercise the transform with the same kinds of suspension points.
//!
//! wasm-smith rarely emits a `call`. After some operators (one in
//! [`PlanOptions::one_in`], drawn from a seed) a call to an added import of
//! module [`MODULE`] goes in: where the operand on top of the stack (inside
//! the current block) is numeric, `inject.<type>` replaces it by a value the
//! host computes from it (for an `i32`, one time in three `inject.split`
//! maps it to two, which an `i32.xor` joins again); elsewhere `inject.tick`,
//! or `inject.indirect` through a table with `call_indirect`. Values below
//! the top stay on the operand stack across the call, which exercises the
//! transform's spilling of stack values.
//!
//! A re-encoder (`wasm_encoder::reencode::Reencode`) of each user adds the
//! types ([`add_types`]), the imports ([`add_imports`]) and the calls
//! ([`inject_calls`]); what else it adds (memories, exports, a name section)
//! is its own.

#![warn(missing_docs)]

use wasm_encoder::reencode::{Error as ReencodeError, Reencode};
use wasm_encoder::{EntityType, Function, ImportSection, TypeSection};
use wasmparser::{FunctionBody, Operator, Parser, ValType, ValidPayload, Validator, WasmFeatures};

/// The module the injected imports come from.
pub const MODULE: &str = "inject";

/// An import added for injected calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injected {
    /// Its name in [`MODULE`].
    pub name: &'static str,
    /// Parameter types.
    pub params: &'static [ValType],
    /// Result types.
    pub results: &'static [ValType],
}

/// Every injected import: `tick` and `indirect` take and return nothing
/// (`indirect` is only called through a table), `i32` ... `v128` map a value
/// of their type to a new one, `split` maps an `i32` to two.
pub const ALL: [Injected; 8] = [
    Injected {
        name: "tick",
        params: &[],
        results: &[],
    },
    Injected {
        name: "indirect",
        params: &[],
        results: &[],
    },
    Injected {
        name: "i32",
        params: &[ValType::I32],
        results: &[ValType::I32],
    },
    Injected {
        name: "i64",
        params: &[ValType::I64],
        results: &[ValType::I64],
    },
    Injected {
        name: "f32",
        params: &[ValType::F32],
        results: &[ValType::F32],
    },
    Injected {
        name: "f64",
        params: &[ValType::F64],
        results: &[ValType::F64],
    },
    Injected {
        name: "v128",
        params: &[ValType::V128],
        results: &[ValType::V128],
    },
    Injected {
        name: "split",
        params: &[ValType::I32],
        results: &[ValType::I32, ValType::I32],
    },
];

/// The injected imports one module gets, in import order: a subset of
/// [`ALL`], in its order. Positions in the set are what an [`Injections`]
/// plan holds and what [`inject_calls`] is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectSet {
    imports: Vec<Injected>,
}

impl InjectSet {
    /// All of [`ALL`]: the user adds a table for `indirect` ([`Self::INDIRECT`]).
    pub fn all() -> InjectSet {
        InjectSet {
            imports: ALL.to_vec(),
        }
    }

    /// No injected import (a module that gets no calls).
    pub fn none() -> InjectSet {
        InjectSet {
            imports: Vec::new(),
        }
    }

    /// Without `indirect` (no table to add) and `split`, and without `v128`
    /// unless `simd` (a module without SIMD cannot import it).
    pub fn direct_only(simd: bool) -> InjectSet {
        let keep =
            |i: &&Injected| !matches!(i.name, "indirect" | "split") && (simd || i.name != "v128");
        InjectSet {
            imports: ALL.iter().filter(keep).copied().collect(),
        }
    }

    /// Name of `indirect`.
    pub const INDIRECT: &'static str = "indirect";
    /// Name of `split`.
    pub const SPLIT: &'static str = "split";
    /// Name of `tick`.
    pub const TICK: &'static str = "tick";

    /// How many imports the set adds.
    pub fn len(&self) -> usize {
        self.imports.len()
    }

    /// Whether the set adds nothing.
    pub fn is_empty(&self) -> bool {
        self.imports.is_empty()
    }

    /// The imports, in order.
    pub fn imports(&self) -> &[Injected] {
        &self.imports
    }

    /// Position of the import named `name`, if the set has it.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.imports.iter().position(|i| i.name == name)
    }

    /// What to call where `top` is the operand on top of the current block's
    /// stack (`None` when it has none), given the random bits `choice`.
    fn choose(&self, top: Option<ValType>, choice: u64) -> usize {
        let tick = self.position(Self::TICK).unwrap_or(0);
        let by_name = |name| self.position(name);
        let mapping = |ty: ValType| {
            self.imports
                .iter()
                .position(|i| i.params == [ty] && i.results == [ty])
        };
        let picked = match top {
            Some(ValType::I32) if choice < 2 => {
                by_name(Self::SPLIT).or_else(|| mapping(ValType::I32))
            }
            Some(ty) => mapping(ty),
            None if choice < 3 => by_name(Self::INDIRECT),
            None => None,
        };
        picked.unwrap_or(tick)
    }
}

/// Where calls go: per defined function, `(operator index, position in the
/// set)` pairs, each call right after that operator.
pub type Injections = Vec<Vec<(usize, usize)>>;

/// How [`plan`] draws the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Seed of the random stream.
    pub seed: u64,
    /// One operator in `one_in` gets a call; none when 0.
    pub one_in: u64,
    /// wasm-smith's termination fuel global (`ensure_termination`), if any:
    /// its code (from a `global.get` of it to its `global.set`, and the
    /// operator before it) gets no calls, since a host value there would take
    /// away the guarantee that the module terminates.
    pub fuel_global: Option<u32>,
}

/// splitmix64: the injection decisions' random stream.
pub fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Decides the calls for `module` (wasm-smith's output, valid), following
/// the operand stack with a validator to know the type on top.
pub fn plan(module: &[u8], set: &InjectSet, options: &PlanOptions) -> Result<Injections, String> {
    let err = |e: wasmparser::BinaryReaderError| e.to_string();
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let mut plan = Vec::new();
    let mut rng = options.seed;
    let fuel = options.fuel_global;
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(err)?;
        let ValidPayload::Func(func, body) = validator.payload(&payload).map_err(err)? else {
            continue;
        };
        let mut fv = func.into_validator(Default::default());
        let mut points = Vec::new();
        for pair in body.get_locals_reader().map_err(err)? {
            let (count, ty) = pair.map_err(err)?;
            fv.define_locals(0, count, ty).map_err(err)?;
        }
        let mut reader = body.get_operators_reader().map_err(err)?;
        let mut ops = Vec::new();
        while !reader.eof() {
            ops.push(reader.read_with_offset().map_err(err)?);
        }
        let fuel_get = |op: Option<&Operator>| matches!(op, Some(Operator::GlobalGet { global_index }) if Some(*global_index) == fuel);
        let fuel_set = |op: &Operator| matches!(op, Operator::GlobalSet { global_index } if Some(*global_index) == fuel);
        let mut in_fuel_code = false;
        for (index, (op, offset)) in ops.iter().enumerate() {
            fv.op(*offset, op).map_err(err)?;
            if fuel_get(Some(op)) {
                in_fuel_code = true;
            } else if fuel_set(op) {
                in_fuel_code = false;
            }
            // Nor right before the fuel code: a bulk-memory check starts
            // with the length there (`local.get`, then `global.get`).
            let fuel_next = fuel_get(ops.get(index + 1).map(|(op, _)| op));
            rng = splitmix(rng);
            let wanted = rng.checked_rem(options.one_in) == Some(0);
            if wanted && !in_fuel_code && !fuel_next && fv.control_stack_height() > 0 {
                let height = fv.operand_stack_height() as usize;
                let frame_base = fv.get_control_frame(0).map_or(height, |f| f.height);
                let top = if height > frame_base {
                    fv.get_operand_type(0).flatten()
                } else {
                    None
                };
                points.push((index, set.choose(top, (rng >> 32) % 6)));
            }
        }
        plan.push(points);
    }
    Ok(plan)
}

/// The encoder's spelling of an injected import's (numeric) value type.
fn encoder_type(ty: ValType) -> wasm_encoder::ValType {
    match ty {
        ValType::I32 => wasm_encoder::ValType::I32,
        ValType::I64 => wasm_encoder::ValType::I64,
        ValType::F32 => wasm_encoder::ValType::F32,
        ValType::F64 => wasm_encoder::ValType::F64,
        ValType::V128 => wasm_encoder::ValType::V128,
        ValType::Ref(_) => unreachable!("only numeric types are injected (see `ALL`)"),
    }
}

/// Appends the set's function types to `types`, in order: the type of
/// import `k` is then `first + k`, where `first` is the count of types before.
pub fn add_types(types: &mut TypeSection, set: &InjectSet) {
    for injected in set.imports() {
        let params = injected.params.iter().map(|&t| encoder_type(t));
        let results = injected.results.iter().map(|&t| encoder_type(t));
        types.ty().function(params, results);
    }
}

/// Appends the set's imports to `section`, import `k` of type `first_type + k`.
pub fn add_imports(section: &mut ImportSection, set: &InjectSet, first_type: u32) {
    for (k, injected) in set.imports().iter().enumerate() {
        section.import(
            MODULE,
            injected.name,
            EntityType::Function(first_type + k as u32),
        );
    }
}

/// The instructions of a call of import `k` of `set`, the set's first import
/// being function `first_import`; `indirect` is `(table, type index)` of the
/// table slot 0 holding `inject.indirect`, for sets that have it.
pub fn emit_call(
    f: &mut Function,
    set: &InjectSet,
    k: usize,
    first_import: u32,
    indirect: Option<(u32, u32)>,
) {
    let name = set.imports().get(k).map_or(InjectSet::TICK, |i| i.name);
    let mut code = f.instructions();
    match (name, indirect) {
        (InjectSet::INDIRECT, Some((table, ty))) => {
            code.i32_const(0).call_indirect(table, ty);
        }
        (InjectSet::SPLIT, _) => {
            code.call(first_import + k as u32).i32_xor();
        }
        _ => {
            code.call(first_import + k as u32);
        }
    }
}

/// Re-encodes one function body through `reencoder`, calling `emit` with the
/// set position after each operator `points` names.
pub fn inject_calls<R: Reencode + ?Sized>(
    reencoder: &mut R,
    func: &FunctionBody<'_>,
    points: &[(usize, usize)],
    mut emit: impl FnMut(&mut Function, usize),
) -> Result<Function, ReencodeError<R::Error>> {
    let mut f = reencoder.new_function_with_parsed_locals(func)?;
    let mut next = points.iter().peekable();
    let mut reader = func.get_operators_reader()?;
    let mut index = 0;
    while !reader.eof() {
        f.instruction(&reencoder.parse_instruction(&mut reader)?);
        while let Some(&(_, k)) = next.next_if(|(at, _)| *at == index) {
            emit(&mut f, k);
        }
        index += 1;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        assert_eq!(InjectSet::all().len(), 8);
        let direct = InjectSet::direct_only(false);
        let names: Vec<&str> = direct.imports().iter().map(|i| i.name).collect();
        assert_eq!(names, ["tick", "i32", "i64", "f32", "f64"]);
        assert_eq!(InjectSet::direct_only(true).len(), 6);
    }

    #[test]
    fn choices() {
        let all = InjectSet::all();
        let direct = InjectSet::direct_only(false);
        assert_eq!(all.choose(Some(ValType::I32), 0), 7);
        assert_eq!(all.choose(Some(ValType::I32), 5), 2);
        assert_eq!(all.choose(None, 0), 1);
        assert_eq!(all.choose(None, 5), 0);
        assert_eq!(direct.choose(Some(ValType::I32), 0), 1);
        assert_eq!(direct.choose(Some(ValType::V128), 5), 0);
        assert_eq!(direct.choose(None, 0), 0);
    }

    #[test]
    fn calls_go_after_the_planned_operators() {
        // A hand-encoded module: (func (result i32) i32.const 1 i32.const 2 i32.add)
        let mut module = wasm_encoder::Module::new();
        let mut types = TypeSection::new();
        types.ty().function([], [wasm_encoder::ValType::I32]);
        module.section(&types);
        let mut funcs = wasm_encoder::FunctionSection::new();
        funcs.function(0);
        module.section(&funcs);
        let mut code = wasm_encoder::CodeSection::new();
        let mut f = Function::new([]);
        f.instructions().i32_const(1).i32_const(2).i32_add().end();
        code.function(&f);
        module.section(&code);
        let wasm = module.finish();
        let options = PlanOptions {
            seed: 7,
            one_in: 1,
            fuel_global: None,
        };
        let plan = plan(&wasm, &InjectSet::all(), &options).unwrap();
        assert_eq!(plan.len(), 1);
        // Every operator inside the function body gets a call (the last,
        // `end`, closes the body and gets none).
        assert_eq!(plan[0].len(), 3);
        let none = PlanOptions {
            one_in: 0,
            ..options
        };
        assert!(plan_is_empty(&plan_for(&wasm, &none)));
    }

    fn plan_for(wasm: &[u8], options: &PlanOptions) -> Injections {
        plan(wasm, &InjectSet::all(), options).unwrap()
    }

    fn plan_is_empty(plan: &Injections) -> bool {
        plan.iter().all(Vec::is_empty)
    }
}
