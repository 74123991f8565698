//! Property-based differential tests: wasm-smith modules, instrumented with
//! each option set, must behave exactly like the originals.
//!
//! Each case is a byte vector from proptest; [`generate`] turns it into a
//! module (function imports from a fixed pool, calls to them injected at
//! random points, everything exported, loops, direct and indirect calls, a
//! memory, tables, globals, multi-value, SIMD, bulk memory, termination
//! guaranteed by wasm-smith's fuel global), the export calls to make and a
//! suspension pattern. The driver runs the original once and the
//! instrumented module under the schedules `Never`, `Always` and the drawn
//! pattern, and compares results, traps, the import log, memories and
//! globals. The instrumented module also runs through `asyncify-linker`
//! under the same three schedules, with async imports that are pending when
//! the schedule says so, as an embedder would drive it.
//!
//! The option sets, one test each: default; an imports list (every other
//! import of the module, from the first); `ignore_indirect` (the driver
//! suspends only imports that no indirect call can reach, see
//! [`generate::imports_under_indirect_calls`]); `asserts` with the other
//! imports listed (so uninstrumented code exists and its assertions must stay
//! quiet); the secondary memory, with `exact_saves`; `import_globals`; yield
//! checks with half the imports listed, the budget emptied at instantiation
//! and refilled with 0 so that every check fires (and suspends when the
//! schedule says so).
//!
//! The asyncify buffer: for every set but the secondary memory, the module
//! gets an extra memory 0 exported as `memory` that no guest instruction
//! touches (guest memory indices are shifted up by one), and the driver puts
//! the buffer there (header at 0, 1 MiB). The guest can then write anywhere
//! in its own memory without clobbering a saved frame or seeing one, and the
//! transform's default choice (memory 0) is what is tested. With the
//! secondary memory the guest's own memory is memory 0 and the buffer is in
//! the transform's `asyncify_memory`.
//!
//! A clean refusal (`Error::Unsupported`, a construct the transform does not
//! handle yet) is a skip, not a pass: proptest draws another case (it counts
//! as a "reject"), and the test prints how many it skipped and why, and fails
//! if that is more than a quarter. Run with `--nocapture` to see the counts,
//! and how many cases actually suspended.
//!
//! A failure shrinks (see [`bytes`]) and is reported with the driver's diff,
//! the instrumented module and the smallest failing module as wat; proptest
//! records its seed in `properties.proptest-regressions` next to this file,
//! replayed first on every run. Found bugs also go into [`regressions`] as
//! wat.
//!
//! Cases per option set: `PROPTEST_CASES` (default [`DEFAULT_CASES`], sized
//! for about a minute for all seven on two cores in the dev profile). A hunt
//! with 10,000 cases per option set:
//!
//! ```text
//! PROPTEST_CASES=10000 cargo test -p asyncify-tests --test properties --release -- --nocapture
//! ```

mod bytes;
mod generate;
mod regressions;
mod shapes;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Instant;

use asyncify_tests::{
    print_wasm, BufferSpec, Check, Instrumenter, Options, Report, RunConfig, Schedule, Val,
};
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseError, TestCaseResult, TestRunner,
};

use crate::bytes::{bytes, Bytes};
use crate::generate::{
    function_imports, generate, imports_under_indirect_calls, skip_kind, typed_content, Case,
    BUFFER_PAGES,
};

/// Seeds of failing cases, replayed before new ones (commit this file).
const REGRESSIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/properties/properties.proptest-regressions"
);

/// Cases per option set when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = 256;

/// Skips above this share of cases fail the test: the generator would be
/// testing too little.
const MAX_SKIP_SHARE: f64 = 0.25;

/// Unusable draws (wasm-smith failed, nothing to call, the original ran out
/// of fuel) above this share of all draws fail the test, for the same reason.
const MAX_UNUSABLE_SHARE: f64 = 0.25;

/// The share of passed cases that must have unwound under `Always`, with the
/// direct driver and (separately) through the linker, for each option set:
/// a transform that stopped suspending would otherwise pass everything.
/// Measured with the default count: see `min_suspended_share`.
fn min_suspended_share(set: OptionSet) -> f64 {
    match set {
        // Half the imports may suspend, or only those under no indirect
        // call: fewer cases reach one.
        OptionSet::ImportsList | OptionSet::IgnoreIndirect | OptionSet::Asserts => 0.4,
        _ => 0.6,
    }
}

/// The option sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OptionSet {
    Default,
    ImportsList,
    IgnoreIndirect,
    Asserts,
    SecondaryMemory,
    ImportGlobals,
    /// Default options on modules that may also use tail calls, exceptions
    /// and GC (see [`generate`]).
    BeyondBinaryen,
    /// Yield checks, with the budget so low that every check fires and
    /// calls the yield import, which the schedule suspends like any other.
    YieldChecks,
}

impl OptionSet {
    const ALL: [OptionSet; 8] = [
        OptionSet::Default,
        OptionSet::ImportsList,
        OptionSet::IgnoreIndirect,
        OptionSet::Asserts,
        OptionSet::SecondaryMemory,
        OptionSet::ImportGlobals,
        OptionSet::BeyondBinaryen,
        OptionSet::YieldChecks,
    ];

    fn options(self, imports: &[String]) -> Options {
        // Every other import: wasm-smith's and the injected ones both.
        let pick = |parity: usize| -> Vec<String> {
            imports
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == parity)
                .map(|(_, name)| name.clone())
                .collect()
        };
        match self {
            OptionSet::Default | OptionSet::BeyondBinaryen => Options::default(),
            OptionSet::ImportsList => Options {
                imports: pick(0),
                ..Options::default()
            },
            OptionSet::IgnoreIndirect => Options {
                ignore_indirect: true,
                ..Options::default()
            },
            OptionSet::Asserts => Options {
                asserts: true,
                imports: pick(1),
                ..Options::default()
            },
            // Exact saves ride along: they change only which points share
            // frame-writing code.
            OptionSet::SecondaryMemory => Options {
                secondary_memory: Some(BUFFER_PAGES),
                exact_saves: true,
                ..Options::default()
            },
            OptionSet::ImportGlobals => Options {
                import_globals: true,
                ..Options::default()
            },
            // Half the imports, so that the yield import is often the only
            // way a function suspends.
            OptionSet::YieldChecks => Options {
                yield_checks: true,
                imports: pick(0),
                ..Options::default()
            },
        }
    }

    fn buffer(self) -> BufferSpec {
        let (memory, addr) = match self {
            OptionSet::SecondaryMemory => ("asyncify_memory", 0),
            _ => ("memory", 0),
        };
        BufferSpec {
            memory: Some(memory.into()),
            addr: Some(addr),
            size: Some(BUFFER_PAGES * 65536),
        }
    }
}

/// What the cases of one test came to.
#[derive(Default)]
struct Stats {
    passed: Cell<u64>,
    /// Cases where some schedule actually unwound.
    suspended: Cell<u64>,
    /// Cases that unwound under `Always` with the direct driver, and were
    /// pending under `Always` through the linker.
    always_direct: Cell<u64>,
    always_linked: Cell<u64>,
    /// Refused by the transform (`Unsupported`), by reason.
    skipped: RefCell<BTreeMap<String, u64>>,
    /// Not a usable case (wasm-smith failed, nothing to call, or the original
    /// did not terminate).
    unusable: Cell<u64>,
    /// Failing runs: the first failure, then those found while shrinking it.
    failed: Cell<u64>,
    /// Passed cases whose module uses `call_ref`/`return_call_ref`, and GC
    /// instructions (see [`generate::typed_content`]).
    with_call_ref: Cell<u64>,
    with_gc: Cell<u64>,
    /// Passed cases where wasm-smith's own code (not the spliced shapes)
    /// has struct or array instructions, and a function with a
    /// reference-typed parameter or result.
    smith_struct_array: Cell<u64>,
    smith_ref_signature: Cell<u64>,
}

fn config() -> Config {
    // `Config::default()` reads the `PROPTEST_*` environment variables.
    let mut config = Config::default();
    let set = |name: &str| std::env::var_os(name).is_some();
    if !set("PROPTEST_CASES") {
        config.cases = DEFAULT_CASES;
    }
    if !set("PROPTEST_MAX_SHRINK_ITERS") {
        config.max_shrink_iters = 4000;
    }
    if !set("PROPTEST_MAX_SHRINK_TIME") {
        config.max_shrink_time = 600_000;
    }
    if !set("PROPTEST_MAX_GLOBAL_REJECTS") {
        config.max_global_rejects = config.cases.max(1024);
    }
    config.source_file = Some(file!());
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS)));
    config
}

/// Checks `wasm` under `set`: the original once, the instrumented module
/// under `Never`, `Always` and `pattern`, each making `calls` in order. The
/// report's `skipped` says why the transform refused the module, if it did.
fn check_case(
    wasm: &[u8],
    set: OptionSet,
    calls: &[(String, Vec<Val>)],
    pattern: &[bool],
) -> Result<Report, String> {
    let options = set.options(&function_imports(wasm)?);
    let mut check = Check::new(wasm)
        .options(&options)
        .schedules(vec![
            Schedule::Never,
            Schedule::Always,
            Schedule::Pattern(pattern.to_vec()),
        ])
        .through_linker(vec![
            Schedule::Never,
            Schedule::Always,
            Schedule::Pattern(pattern.to_vec()),
        ])
        .buffer(set.buffer())
        .allow_no_unwind()
        .allow_unsupported();
    for (export, args) in calls {
        check = check.call(export, args.clone());
    }
    if set == OptionSet::IgnoreIndirect {
        let indirect = imports_under_indirect_calls(wasm)?;
        check = check.may_suspend(move |m, n| !indirect.contains(&format!("{m}.{n}")));
    }
    check
        .try_run()
        .map_err(|report| format!("option set {set:?} ({options:?})\n{report}"))
}

/// Whether the original module of `case` finishes its calls within the
/// driver's wasmtime fuel. wasm-smith's fuel global should guarantee that; if
/// it does not, the instrumented module (which takes more steps) runs out at
/// a different point, and the difference says nothing about the transform.
fn terminates(case: &Case, set: OptionSet) -> bool {
    let calls: Vec<(&str, Vec<Val>)> = case
        .calls
        .iter()
        .map(|(e, a)| (e.as_str(), a.clone()))
        .collect();
    let original = asyncify_tests::run(
        &case.wasm,
        &RunConfig::original().buffer(set.buffer()),
        &calls,
    );
    !original
        .calls
        .iter()
        .any(|c| matches!(&c.result, Err(f) if f.trap.as_deref() == Some("OutOfFuel")))
}

/// One case under one option set. Cases run while shrinking a failure are
/// not counted.
fn property(input: &Bytes, set: OptionSet, stats: &Stats) -> TestCaseResult {
    let counting = stats.failed.get() == 0;
    let count = |c: &Cell<u64>| {
        if counting {
            c.set(c.get() + 1);
        }
    };
    let case = match generate(
        &input.0,
        set != OptionSet::SecondaryMemory,
        set == OptionSet::BeyondBinaryen,
    ) {
        Ok(case) if !case.calls.is_empty() => case,
        Ok(_) => {
            count(&stats.unusable);
            return Err(TestCaseError::reject("no exported function to call"));
        }
        Err(e) => {
            count(&stats.unusable);
            return Err(TestCaseError::reject(e));
        }
    };
    match check_case(&case.wasm, set, &case.calls, &case.pattern) {
        Ok(Report {
            skipped: Some(why), ..
        }) => {
            if counting {
                *stats
                    .skipped
                    .borrow_mut()
                    .entry(skip_kind(&why))
                    .or_default() += 1;
            }
            Err(TestCaseError::reject(why))
        }
        Ok(report) => {
            count(&stats.passed);
            if report.runs.iter().any(|(_, o)| o.unwinds() > 0) {
                count(&stats.suspended);
            }
            let under_always = |runs: &[(Schedule, asyncify_tests::Outcome)]| {
                runs.iter()
                    .any(|(s, o)| *s == Schedule::Always && o.unwinds() > 0)
            };
            if under_always(&report.runs) {
                count(&stats.always_direct);
            }
            if under_always(&report.linked) {
                count(&stats.always_linked);
            }
            let content = typed_content(&case.wasm);
            if content.call_ref {
                count(&stats.with_call_ref);
            }
            if content.gc {
                count(&stats.with_gc);
            }
            if case.smith_content.struct_array {
                count(&stats.smith_struct_array);
            }
            if case.smith_content.ref_signature {
                count(&stats.smith_ref_signature);
            }
            Ok(())
        }
        Err(_) if !terminates(&case, set) => {
            count(&stats.unusable);
            Err(TestCaseError::reject(
                "the original ran out of the driver's fuel",
            ))
        }
        Err(report) => {
            stats.failed.set(stats.failed.get() + 1);
            let calls: Vec<String> = case
                .calls
                .iter()
                .map(|(e, a)| format!("{e}{a:?}"))
                .collect();
            Err(TestCaseError::fail(format!(
                "features [{}], calls {}, pattern {:?}\n{report}\n\noriginal module:\n{}",
                case.features,
                calls.join(" "),
                Schedule::Pattern(case.pattern.clone()),
                print_wasm(&case.wasm),
            )))
        }
    }
}

/// Runs the property for `set` and reports what the cases came to.
fn run(set: OptionSet) {
    let config = config();
    let mut runner = TestRunner::new(config);
    let stats = Stats::default();
    let start = Instant::now();
    let result = runner.run(&bytes(1000..=20_000), |input| property(&input, set, &stats));
    let skipped: u64 = stats.skipped.borrow().values().sum();
    let passed = stats.passed.get();
    let tried = passed + skipped;
    let share = skipped as f64 / tried.max(1) as f64;
    let unusable = stats.unusable.get();
    let drawn = tried + unusable;
    let unusable_share = unusable as f64 / drawn.max(1) as f64;
    let of_passed = |n: u64| n as f64 / passed.max(1) as f64;
    let (direct, linked) = (stats.always_direct.get(), stats.always_linked.get());
    println!(
        "{set:?}: {passed} passed ({} suspended at least once; under Always {direct} \
         ({:.1}%) with the direct driver, {linked} ({:.1}%) through the linker), {skipped} \
         skipped ({:.1}% of {tried}), {unusable} unusable ({:.1}% of {drawn} drawn), {} \
         failing runs, {:.1} s",
        stats.suspended.get(),
        100.0 * of_passed(direct),
        100.0 * of_passed(linked),
        100.0 * share,
        100.0 * unusable_share,
        stats.failed.get(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "  of the passed, wasm-smith's code: {} with a reference-typed parameter or result, \
         {} with struct/array instructions",
        stats.smith_ref_signature.get(),
        stats.smith_struct_array.get()
    );
    if set == OptionSet::BeyondBinaryen {
        println!(
            "  of the passed: {} with call_ref/return_call_ref, {} with GC instructions",
            stats.with_call_ref.get(),
            stats.with_gc.get()
        );
    }
    for (why, n) in stats.skipped.borrow().iter() {
        println!("  skipped {n}x: {why}");
    }
    if let Err(e) = result {
        panic!("{set:?}: {e}");
    }
    assert_enough(set, &stats);
}

/// Fails the test when its cases tested too little: none passed, too many
/// were skipped or unusable, or too few suspended under `Always` (with either
/// driver). Small counts (a `PROPTEST_CASES` below 20) only need one pass.
fn assert_enough(set: OptionSet, stats: &Stats) {
    let skipped: u64 = stats.skipped.borrow().values().sum();
    let passed = stats.passed.get();
    let unusable = stats.unusable.get();
    let tried = passed + skipped;
    let drawn = tried + unusable;
    assert!(passed > 0, "{set:?}: no case ran ({drawn} drawn)");
    if drawn < 20 {
        return;
    }
    let share = |n: u64, of: u64| n as f64 / of.max(1) as f64;
    // (Binaryen, as a cross-check of the harness, refuses far more.)
    assert!(
        share(skipped, tried) <= MAX_SKIP_SHARE
            || Instrumenter::from_env() != Instrumenter::Transform,
        "{set:?}: {:.1}% of cases skipped as unsupported: the generator tests too little",
        100.0 * share(skipped, tried)
    );
    assert!(
        share(unusable, drawn) <= MAX_UNUSABLE_SHARE,
        "{set:?}: {:.1}% of the drawn cases were unusable: the generator tests too little",
        100.0 * share(unusable, drawn)
    );
    // wasm-smith's own typed content, in the `beyond_binaryen` cases (GC in
    // half of them): struct/array instructions in about a third of the
    // passed cases, reference-typed signatures in a few percent (rare
    // enough elsewhere that small counts may see none).
    if set == OptionSet::BeyondBinaryen && passed >= 200 {
        assert!(
            stats.smith_ref_signature.get() > 0,
            "{set:?}: no passed case has a function with a reference-typed parameter or result"
        );
    }
    assert!(
        set != OptionSet::BeyondBinaryen || stats.smith_struct_array.get() > 0,
        "{set:?}: no passed case has wasm-smith struct or array instructions"
    );
    let min = min_suspended_share(set);
    for (how, n) in [
        ("with the direct driver", stats.always_direct.get()),
        ("through the linker", stats.always_linked.get()),
    ] {
        assert!(
            share(n, passed) >= min,
            "{set:?}: only {n} of {passed} passed cases unwound under Always {how} (at least \
             {:.0}% should): suspension is not being exercised",
            100.0 * min
        );
    }
}

#[test]
fn default_options() {
    run(OptionSet::Default);
}

#[test]
fn imports_list() {
    run(OptionSet::ImportsList);
}

#[test]
fn ignore_indirect() {
    run(OptionSet::IgnoreIndirect);
}

#[test]
fn asserts() {
    run(OptionSet::Asserts);
}

#[test]
fn secondary_memory() {
    run(OptionSet::SecondaryMemory);
}

#[test]
fn import_globals() {
    run(OptionSet::ImportGlobals);
}

#[test]
fn beyond_binaryen() {
    run(OptionSet::BeyondBinaryen);
}

#[test]
fn yield_checks() {
    run(OptionSet::YieldChecks);
}
