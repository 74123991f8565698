//! The targets of issue 17, in one place: what each section judges, the
//! words its verdict line uses, and for a target not met the reason the
//! measurements so far give and what would be needed.
//!
//! A section prints one line per target it measures with [`Target::line`];
//! `cargo bench-report` gathers them into the report's header, in the order
//! of [`ISSUE_17`], and prints "not measured in this run" for a target whose
//! section did not run. A line starts with `- ` and the target's
//! [`Target::goal`], which is how the report finds it ([`Target::find`]).
//!
//! The reasons are fixed sentences written from the measurements in
//! `benches/earlier-measurements.md` (chiefly "2026-12-02: what makes
//! Cranelift slow on the output") and the sections themselves; the figures
//! in a line (the ratio and what it compares) are always from the run that
//! prints it.

/// One target of the issue's table.
#[derive(Debug)]
pub struct Target {
    /// The section binary that measures it.
    pub section: &'static str,
    /// What is promised, as the line opens: "Whole-module compile at most
    /// 1.3x the original's".
    pub goal: &'static str,
    /// Why it is not met, from the measurements so far.
    pub why: &'static str,
    /// What would be needed to meet it.
    pub needed: &'static str,
}

/// A target's outcome in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Met by the figures of this run.
    Met,
    /// Not met by the figures of this run.
    NotMet,
    /// This run has no figure for it (a quick run, a missing module or tool).
    NotMeasured,
}

impl Verdict {
    /// `Met` when `met` holds, else `NotMet`.
    pub fn from_met(met: bool) -> Verdict {
        if met {
            Verdict::Met
        } else {
            Verdict::NotMet
        }
    }
}

impl Target {
    /// The verdict line: `- GOAL: **met** (FIGURES).`, with the reason and
    /// what would be needed after a target not met.
    pub fn line(&self, verdict: Verdict, figures: &str) -> String {
        let figures = figures.trim_end_matches('.');
        match verdict {
            Verdict::Met => format!("- {}: **met** ({figures}).", self.goal),
            Verdict::NotMet => format!(
                "- {}: **not met** ({figures}). Why: {} Needed: {}",
                self.goal, self.why, self.needed
            ),
            Verdict::NotMeasured => {
                format!("- {}: not measured ({figures}).", self.goal)
            }
        }
    }

    /// This target's line among a section's markdown, if it printed one.
    pub fn find<'a>(&self, markdown: &'a str) -> Option<&'a str> {
        let opening = format!("- {}: ", self.goal);
        markdown
            .lines()
            .map(str::trim_end)
            .find(|line| line.starts_with(&opening))
    }
}

/// The reason shared by the two compile-time targets.
const COMPILE_WHY: &str = "every resume-dispatch edge and unwind join the instrumentation adds \
gives a block of the normal code a second predecessor, and Cranelift's SSA construction then puts \
a block parameter there for every local live further on, which translation and register \
allocation pay for (history, \"what makes Cranelift slow on the output\": in yosys 26431 \
register allocation goes from 0.58 s to 43.6 s; taking the dispatches out gives 41x -> 14x its \
original, taking out dispatches and unwind edges 1.8x; the rewind prologue, the unwind group \
budget and folding dispatches into `switch`es are not the lever).";

/// What would make the compile-time targets, shared by both.
const COMPILE_NEEDED: &str = "fewer points (a whole-program analysis proving that a call site \
never sees a state change needs neither a dispatch entry nor an unwind edge there), unwind joins \
without block parameters (a per-group out-of-line function that takes the live locals as \
arguments and writes the frame), and for the dispatches that remain a shape that does not add \
predecessors to the normal code (a separate resume copy of the largest functions, paid in size); \
each measurable with `compile_shapes ORIGINAL F... --also NAME=FILE` and `compile_whole ORIGINAL \
FILE`.";

/// Whole-module Cranelift compile time of the output against the original.
pub const COMPILE_WHOLE: Target = Target {
    section: "compile_whole",
    goal: "Whole-module compile (wasmtime/Cranelift) at most 1.3x the original's, every module",
    why: COMPILE_WHY,
    needed: COMPILE_NEEDED,
};

/// The worst single function's compile time against its original.
pub const COMPILE_FUNCTION: Target = Target {
    section: "compile_whole",
    goal: "Every function's compile at most 2x its original's",
    why: COMPILE_WHY,
    needed: COMPILE_NEEDED,
};

/// Execution time of code that does not suspend, geometric mean.
pub const SPEED_GEOMEAN: Target = Target {
    section: "speed",
    goal: "Code that does not suspend at most 1.05x the original, geometric mean over the \
compute set and yosys",
    why: "with default options every import and indirect call may suspend, so each such call is \
followed by a state check and the function keeps the locals a rewind needs on its normal path; \
the benchmarks whose hot loops make such calls pay most (the slowest is named with the figures; \
the per-benchmark ratios are in the table above). No profile of where the time goes per \
benchmark has been recorded yet.",
    needed: "skipping the check and the spills at call sites that cannot see a state change (a \
whole-program analysis deciding per call what `asyncify-ignore-indirect` decides by hand; calls \
to functions that never suspend need no check), and no state check after calls that cannot \
return while unwinding; then a profile of the benchmarks still above 1.05x.",
};

/// Never slower than Binaryen's `-O --asyncify` output on any benchmark.
pub const SPEED_BINARYEN: Target = Target {
    section: "speed",
    goal: "Code that does not suspend never slower than Binaryen `-O --asyncify` on any \
benchmark",
    why: "Binaryen's `-O` runs its general-purpose optimizer over the code it instruments and \
ours runs none; on the benchmarks named above the checks and spills our output keeps on the \
normal path cost more than what Binaryen's heavier instrumentation costs there. Which checks and \
spills those are has not been profiled yet.",
    needed: "the same removal of checks and spills at call sites that cannot see a state change \
as for the geometric mean, measured per benchmark against Binaryen's output (`speed --only \
NAME --ours-compute FILE`).",
};

/// Suspend + resume at depth 10 against wasmtime fibers.
pub const SUSPEND_DEPTH_10: Target = Target {
    section: "suspend_cost",
    goal: "Suspend + resume at depth 10, 10 live locals per frame, at most 1.3x wasmtime fibers",
    why: "every frame is written to linear memory on the unwind (one store per live local and \
the resume point) and read back on the rewind, through the whole chain of calls twice, while a \
fiber switch costs the same at any depth; the saved bytes and the ratios at depths 1, 10 and 100 \
above grow together.",
    needed: "less work per frame: fewer and wider stores (locals packed per frame), fewer calls \
into the runtime functions, a rewind that reloads only what is live, and less host work per \
suspension in the linker (the copy of the saved stack, the future bookkeeping).",
};

/// Suspend + resume at depth 100 against wasmtime fibers.
pub const SUSPEND_DEPTH_100: Target = Target {
    section: "suspend_cost",
    goal: "Suspend + resume at depth 100, 10 live locals per frame, at most 2x wasmtime fibers",
    why: SUSPEND_DEPTH_10.why,
    needed: SUSPEND_DEPTH_10.needed,
};

/// Instrumenting yosys against a validation of the same bytes.
pub const YOSYS_INSTRUMENT: Target = Target {
    section: "transform_table",
    goal: "yosys instrumented in at most 6x a wasmparser validation of the same bytes, peak RSS \
at most 300 MB",
    why: "the transform validates its input while reading it and its output before returning \
it (two full wasmparser validations, the output a third larger than the input: over 2x of the \
6x budget), and reading, the whole-program analysis, assembling and both validations run on one \
thread; only planning and rewriting the bodies run on all cores, and the plans and rewritten \
bodies of the whole module are all held until the output is assembled (the wall and CPU ratios \
and the peak RSS above).",
    needed: "validating function bodies in parallel (wasmparser validates each body on its \
own once the module's header is read) or trusting the output's structure instead of validating \
it again, streaming (emit each body as soon as it is rewritten and drop its plan, keep no \
whole-module intermediate form), and the analysis and assembly in parallel; then a profile of \
what remains.",
};

/// Output size against Binaryen's `-O --asyncify`.
pub const OUTPUT_SIZE: Target = Target {
    section: "transform_table",
    goal: "Output at most 0.70x the size of `wasm-opt -O --asyncify` on QuickJS and sqlite3, \
default options, every Binaryen build found",
    why: "the dispatch tables and the frame-writing and frame-reading code are the remaining \
overhead over the original (the size table above), and our output runs no general-purpose \
optimizer over the code it keeps.",
    needed: "fewer points (the call-site analysis of the speed targets removes their dispatch \
entries and frame code), smaller dispatches and frames per point, and a function-by-function \
comparison with Binaryen's `-O` output to find what it does better on the functions where it \
is smaller.",
};

/// Memory per suspended call with the linker's default settings.
pub const SCALE_PER_CALL: Target = Target {
    section: "scale",
    goal: "Default settings (no pooling allocator, default buffer placement), 10,000 instances: \
at most 1 KiB per suspended call",
    why: "by default the linker grows its buffer at the end of the instance's memory the first \
time a call suspends, so every instance that suspends makes one more 4 KiB page resident for a \
saved stack of tens of bytes; with the buffer in a page already resident (the tuned \
configuration) the same call costs a few hundred bytes (the two configurations above).",
    needed: "a default placement in memory that is already resident: the saved stack already \
moves to host memory between the unwind and the rewind, so the area only holds one unwind at a \
time and fits in little space, for example the bytes below the data at 1024 that LLVM-built \
modules leave alone (what `fixed_buffer(16, 1008)` does by hand; the transform or the linker \
would have to prove from the module's layout that they are free) or the top of its shadow \
stack.",
};

/// An instance with its suspended call against the same instance with a fiber.
pub const SCALE_INSTANCE: Target = Target {
    section: "scale",
    goal: "Default settings, 10,000 instances: an instance with its suspended call at most 0.6x \
the same instance with a fiber",
    why: "the instance alone, as wasmtime makes it (store, instance, one resident memory page), \
already costs more than 0.6x of the instance with a fiber, because the fiber of this shallow call \
touches a single 4 KiB stack page: the floor printed with the figures, which no change to the \
linker can go below. On top of it the linker adds its per-instance state (the difference of the \
two sides' per-instance figures) and, with the default buffer placement, a fresh page per \
suspended call.",
    needed: "the per-call fix of the previous target and less per-instance state in the linker \
(shared host functions, no per-instance copies of the asyncify runtime's bookkeeping) bring the \
ratio down to the floor; below it, a smaller wasmtime instance (several instances per store, \
memory pages made resident lazily) or a workload whose fibers touch more stack than one page. \
On this benchmark the target cannot be met by the transform and the linker alone.",
};

/// The targets of issue 17, in the order of its table.
pub const ISSUE_17: [&Target; 10] = [
    &COMPILE_WHOLE,
    &COMPILE_FUNCTION,
    &SPEED_GEOMEAN,
    &SPEED_BINARYEN,
    &SUSPEND_DEPTH_10,
    &SUSPEND_DEPTH_100,
    &YOSYS_INSTRUMENT,
    &OUTPUT_SIZE,
    &SCALE_PER_CALL,
    &SCALE_INSTANCE,
];

/// How a section opens a line for a target of the older notes
/// (`../shared/notes/anchors-and-targets.md`) that it still prints beside
/// the issue's.
pub const OLDER: &str = "Older target (`anchors-and-targets.md`)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_by_their_goal() {
        let line = COMPILE_WHOLE.line(Verdict::NotMet, "yosys.wasm 3.59x.");
        assert!(line.starts_with("- Whole-module compile"));
        assert!(line.contains("**not met** (yosys.wasm 3.59x). Why: "));
        assert!(line.contains(" Needed: "));
        let markdown = format!("intro\n\n{line}\n- other\n");
        assert_eq!(COMPILE_WHOLE.find(&markdown), Some(line.as_str()));
        assert_eq!(COMPILE_FUNCTION.find(&markdown), None);
        let met = SUSPEND_DEPTH_10.line(Verdict::Met, "1.20x");
        assert!(met.ends_with("**met** (1.20x)."));
        assert!(!met.contains("Why"));
    }

    #[test]
    fn goals_are_distinct() {
        for (i, a) in ISSUE_17.iter().enumerate() {
            for b in &ISSUE_17[i + 1..] {
                assert!(!a.goal.starts_with(b.goal) && !b.goal.starts_with(a.goal));
            }
        }
    }
}
