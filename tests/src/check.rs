//! [`check`]: instrument a module, run it against the original under several
//! schedules, and panic with a readable report when they disagree.

use std::sync::Arc;

use asyncify_transform::Options;
use wasmtime::Val;

use crate::compare::compare;
use crate::host::SuspendPredicate;
use crate::run::{run, BufferSpec, Outcome, RunConfig};
use crate::schedule::Schedule;
use crate::{binaryen, ImportCall};

/// What instruments the modules under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instrumenter {
    /// This project's transform (`asyncify_transform::instrument`).
    Transform,
    /// Binaryen's `wasm-opt --asyncify`, to check the driver and the tests
    /// themselves against the reference.
    Binaryen,
}

impl Instrumenter {
    /// `Binaryen` when the environment variable `ASYNCIFY_TESTS_INSTRUMENTER`
    /// is `binaryen` (to run the whole suite against the reference), else
    /// `Transform`.
    pub fn from_env() -> Self {
        match std::env::var("ASYNCIFY_TESTS_INSTRUMENTER").as_deref() {
            Ok("binaryen") => Instrumenter::Binaryen,
            _ => Instrumenter::Transform,
        }
    }

    /// Instruments `wasm` (binary).
    pub fn instrument(self, wasm: &[u8], options: &Options) -> Result<Vec<u8>, String> {
        match self {
            Instrumenter::Transform => asyncify_transform::instrument(wasm, options)
                .map(|o| o.wasm)
                .map_err(|e| e.to_string()),
            Instrumenter::Binaryen => binaryen::instrument(wasm, options),
        }
    }
}

/// Whether a pattern of the `imports` option matches `module.name`.
fn import_matches(pattern: &str, module: &str, name: &str) -> bool {
    let full = format!("{module}.{name}");
    if pattern.contains('*') {
        asyncify_transform::glob_match(pattern, &full)
    } else {
        pattern == full
    }
}

/// The imports `options` allow to suspend: none with `ignore_imports`, those
/// matching `imports` when it is set, else all (except the `asyncify` runtime
/// module, which is never a host import of an instrumented module).
pub fn may_suspend_per(options: &Options) -> SuspendPredicate {
    let yields = options.yield_checks;
    if options.ignore_imports {
        return Arc::new(move |module, name| yields && crate::host::is_yield_import(module, name));
    }
    let patterns = options.imports.clone();
    Arc::new(move |module, name| {
        if crate::host::is_yield_import(module, name) {
            return yields;
        }
        module != crate::host::RUNTIME_MODULE
            && (patterns.is_empty() || patterns.iter().any(|p| import_matches(p, module, name)))
    })
}

/// The buffer placement that fits `options`: the secondary memory at 0, the
/// memory named by `memory`, or the driver's default.
pub fn buffer_per(options: &Options) -> BufferSpec {
    if options.secondary_memory.is_some() {
        BufferSpec {
            memory: Some("asyncify_memory".into()),
            addr: Some(0),
            size: None,
        }
    } else if let Some(name) = &options.memory {
        BufferSpec::in_memory(name)
    } else {
        BufferSpec::default()
    }
}

/// A differential check, configured step by step; [`Check::run`] panics on
/// any difference. [`check`] is the common case.
pub struct Check {
    module: Vec<u8>,
    options: Options,
    calls: Vec<(String, Vec<Val>)>,
    schedules: Vec<Schedule>,
    linker_schedules: Vec<Schedule>,
    buffer: Option<BufferSpec>,
    may_suspend: Option<SuspendPredicate>,
    instrumenter: Instrumenter,
    require_unwind: bool,
    allow_unsupported: bool,
    binaryen_shortfall: Option<String>,
}

/// What a passing [`Check`] saw.
pub struct Report {
    /// The instrumented module (empty when skipped).
    pub instrumented: Vec<u8>,
    /// The original run.
    pub original: Outcome,
    /// Each instrumented run, by schedule.
    pub runs: Vec<(Schedule, Outcome)>,
    /// Each run through `asyncify-linker`, by schedule (an outcome's
    /// `unwinds` counts how often the export call was pending).
    pub linked: Vec<(Schedule, Outcome)>,
    /// Why the check was skipped (Binaryen refused a module it cannot handle).
    pub skipped: Option<String>,
}

impl Check {
    /// A check of `module` (wat text or binary); panics if the text does not parse.
    pub fn new(module: impl AsRef<[u8]>) -> Check {
        let module = match wat::parse_bytes(module.as_ref()) {
            Ok(b) => b.into_owned(),
            Err(e) => panic!("test module does not parse: {e}"),
        };
        if let Err(e) = crate::interface::validate(&module) {
            panic!("test module does not validate: {e}");
        }
        Check {
            module,
            options: Options::default(),
            calls: Vec::new(),
            schedules: Schedule::standard(),
            linker_schedules: Vec::new(),
            buffer: None,
            may_suspend: None,
            instrumenter: Instrumenter::from_env(),
            require_unwind: true,
            allow_unsupported: false,
            binaryen_shortfall: None,
        }
    }

    /// Instrument with `options` (default: `Options::default()`).
    pub fn options(mut self, options: &Options) -> Self {
        self.options = options.clone();
        self
    }

    /// Call `export` with `args` (in order, all in one instance).
    pub fn call(mut self, export: &str, args: Vec<Val>) -> Self {
        self.calls.push((export.to_string(), args));
        self
    }

    /// Several calls.
    pub fn calls(mut self, calls: &[(&str, Vec<Val>)]) -> Self {
        for (e, a) in calls {
            self.calls.push((e.to_string(), a.clone()));
        }
        self
    }

    /// The schedules to run the instrumented module under (default: [`Schedule::standard`]).
    pub fn schedules(mut self, schedules: Vec<Schedule>) -> Self {
        self.schedules = schedules;
        self
    }

    /// Also run the instrumented module through `asyncify-linker` under
    /// these schedules (async imports that are pending when the schedule
    /// says so; see [`run_linked`](crate::run_linked)). Default: none.
    pub fn through_linker(mut self, schedules: Vec<Schedule>) -> Self {
        self.linker_schedules = schedules;
        self
    }

    /// Where the buffer is (default: derived from the options).
    pub fn buffer(mut self, buffer: BufferSpec) -> Self {
        self.buffer = Some(buffer);
        self
    }

    /// Which imports may suspend (default: derived from the options).
    pub fn may_suspend(mut self, p: impl Fn(&str, &str) -> bool + Send + Sync + 'static) -> Self {
        self.may_suspend = Some(Arc::new(p));
        self
    }

    /// Use this instrumenter instead of the one from the environment.
    pub fn instrumenter(mut self, instrumenter: Instrumenter) -> Self {
        self.instrumenter = instrumenter;
        self
    }

    /// Do not fail when the `Always` schedule saw no unwind (by default that
    /// means the test does not exercise what it claims to).
    pub fn allow_no_unwind(mut self) -> Self {
        self.require_unwind = false;
        self
    }

    /// Accept a clean refusal (`Error::Unsupported`) from the transform as a
    /// skip: for features beyond Binaryen that may not be implemented yet.
    /// A wrong result still fails.
    pub fn allow_unsupported(mut self) -> Self {
        self.allow_unsupported = true;
        self
    }

    /// Binaryen is known to get this module wrong (`why`): under the
    /// Binaryen instrumenter a difference is a notice, not a failure.
    pub fn binaryen_shortfall(mut self, why: &str) -> Self {
        self.binaryen_shortfall = Some(why.to_string());
        self
    }

    /// Runs the check; panics with a report on any difference.
    pub fn run(self) -> Report {
        match self.try_run() {
            Ok(r) => r,
            Err(report) => panic!("{report}"),
        }
    }

    /// Runs the check; the report of what differed as the error.
    pub fn try_run(&self) -> Result<Report, String> {
        let calls: Vec<(&str, Vec<Val>)> = self
            .calls
            .iter()
            .map(|(e, a)| (e.as_str(), a.clone()))
            .collect();
        let skip = |why: String| {
            eprintln!("NOTICE: skipped: {why}");
            Ok(Report {
                instrumented: Vec::new(),
                original: Outcome::default(),
                runs: Vec::new(),
                linked: Vec::new(),
                skipped: Some(why),
            })
        };
        let instrumented = match self.instrumenter {
            Instrumenter::Transform => {
                match asyncify_transform::instrument(&self.module, &self.options) {
                    Ok(out) => out.wasm,
                    Err(e @ asyncify_transform::Error::Unsupported { .. })
                        if self.allow_unsupported =>
                    {
                        return skip(format!("the transform does not support this yet: {e}"));
                    }
                    Err(e) => return Err(format!("instrumenting failed: {e}")),
                }
            }
            Instrumenter::Binaryen => match binaryen::instrument(&self.module, &self.options) {
                Ok(w) => w,
                Err(e) => return skip(format!("Binaryen cannot instrument this module: {e}")),
            },
        };
        if self.instrumenter == Instrumenter::Transform {
            crate::features::check_output(&self.module, &instrumented, &self.options)?;
        }
        let buffer = self
            .buffer
            .clone()
            .unwrap_or_else(|| buffer_per(&self.options));
        let original = run(
            &self.module,
            &RunConfig::original().buffer(buffer.clone()),
            &calls,
        );
        let may_suspend = self
            .may_suspend
            .clone()
            .unwrap_or_else(|| may_suspend_per(&self.options));
        let mut failures = Vec::new();
        let mut runs = Vec::new();
        let mut linked = Vec::new();
        for schedule in &self.schedules {
            let config = RunConfig {
                may_suspend: may_suspend.clone(),
                buffer: buffer.clone(),
                ..RunConfig::instrumented(schedule.clone())
            };
            let outcome = run(&instrumented, &config, &calls);
            let diff = compare(&original, &outcome);
            if !diff.is_empty() {
                failures.push(format!("under schedule {schedule:?}:\n{diff}"));
            } else if self.require_unwind && *schedule == Schedule::Always && outcome.unwinds() == 0
            {
                failures.push(NOTHING_UNWOUND.to_string());
            }
            runs.push((schedule.clone(), outcome));
        }
        for schedule in &self.linker_schedules {
            let config = RunConfig {
                may_suspend: may_suspend.clone(),
                buffer: buffer.clone(),
                ..RunConfig::instrumented(schedule.clone())
            };
            let outcome = crate::run_linked(&instrumented, &config, &calls);
            let diff = compare(&original, &outcome);
            if !diff.is_empty() {
                failures.push(format!(
                    "through asyncify-linker under schedule {schedule:?}:\n{diff}"
                ));
            } else if self.require_unwind && *schedule == Schedule::Always && outcome.unwinds() == 0
            {
                failures.push(format!("through asyncify-linker: {NOTHING_UNWOUND}"));
            }
            linked.push((schedule.clone(), outcome));
        }
        if let (Instrumenter::Binaryen, Some(why), false) = (
            self.instrumenter,
            &self.binaryen_shortfall,
            failures.is_empty(),
        ) {
            return skip(format!("Binaryen gets this wrong, as known: {why}"));
        }
        if failures.is_empty() {
            return Ok(Report {
                instrumented,
                original,
                runs,
                linked,
                skipped: None,
            });
        }
        Err(format!(
            "instrumented module ({:?}, {:?}) differs from the original\n{}\n\
             original run: {}\n\ninstrumented module:\n{}",
            self.instrumenter,
            self.options,
            failures.join("\n"),
            summary(&original),
            print_wasm(&instrumented)
        ))
    }
}

/// Names of the functions this project's transform instruments in `module`
/// (wat or wasm) with `options`, sorted (`#index` for a function without a
/// name); `None` when another instrumenter is in use. Panics when the
/// transform refuses the module.
pub fn instrumented_names(module: impl AsRef<[u8]>, options: &Options) -> Option<Vec<String>> {
    if Instrumenter::from_env() != Instrumenter::Transform {
        return None;
    }
    let out = asyncify_transform::instrument(module.as_ref(), options)
        .unwrap_or_else(|e| panic!("instrumenting failed: {e}"));
    let mut names: Vec<String> = out
        .instrumented
        .iter()
        .map(|f| f.name.clone().unwrap_or_else(|| format!("#{}", f.index)))
        .collect();
    names.sort();
    Some(names)
}

/// The failure when a check that should suspend saw no unwind under `Always`.
const NOTHING_UNWOUND: &str = "under schedule Always nothing unwound: the test does not \
     exercise suspension (use allow_no_unwind if that is intended)";

/// A short description of a run: calls and results, number of import calls.
pub fn summary(outcome: &Outcome) -> String {
    let mut s = String::new();
    if let Some(f) = &outcome.start {
        s += &format!("instantiation: {f}; ");
    }
    for c in &outcome.calls {
        let r = match &c.result {
            Ok(v) => crate::value::list(v),
            Err(f) => f.to_string(),
        };
        s += &format!("{}{} = {r}; ", c.export, crate::value::list(&c.args));
    }
    let first: Vec<&ImportCall> = outcome.imports.iter().take(5).collect();
    s += &format!("{} import calls (first: {first:?})", outcome.imports.len());
    s
}

/// `wasm` as text (truncated to keep panics readable).
pub fn print_wasm(wasm: &[u8]) -> String {
    const LIMIT: usize = 60_000;
    match wasmprinter::print_bytes(wasm) {
        Ok(mut text) if text.len() > LIMIT => {
            let cut = (0..=LIMIT)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.truncate(cut);
            text + "\n... (truncated)"
        }
        Ok(text) => text,
        Err(e) => format!("(cannot print: {e})"),
    }
}

/// Instruments `module` (wat or wasm) with `options` and checks it against
/// the original for each call in `calls`, under [`Schedule::standard`].
/// Panics with a readable diff and the instrumented module on any difference.
pub fn check(module: impl AsRef<[u8]>, options: &Options, calls: &[(&str, Vec<Val>)]) -> Report {
    Check::new(module).options(options).calls(calls).run()
}
