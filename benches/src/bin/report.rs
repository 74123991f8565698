//! Writes `BENCHMARKS.md`: builds the CLI and the benchmarks, runs every
//! section binary of this crate in turn, and puts their markdown under a
//! header that says when, where and with which versions it was measured.
//!
//! `cargo bench-report [--quick] [--only SECTIONS [--update]] [--shared-corpus DIR]
//! [--out FILE] [--no-build] [--cached-binaryen] [--binaryen-timeout SECONDS]`
//! (the alias is in `.cargo/config.toml`; `cargo bench-report --help` says
//! what each flag does).
//!
//! Each section is a child process, `target/release/<bin> --markdown
//! [--quick]`, whose stdout is one markdown section and whose stderr is
//! progress (shown live). A section that is missing or fails becomes a
//! short "failed" paragraph; the report goes on and exits non-zero at the
//! end. `benches/earlier-measurements.md` (dated history) is appended.
//! `--only A,B --update` puts the sections that ran into the existing
//! report instead ([`updated_report`]). The
//! output is written to a temporary file and renamed over `--out`, so a
//! failed run never leaves half a file behind.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use asyncify_benches::binaryen::{self, workspace_root};
use asyncify_benches::sections::{self, duration, SHARED_CORPUS_ENV};
use asyncify_benches::targets::{self, Verdict};

/// One section of the report: a binary of this crate.
struct Section {
    /// Binary name in `target/release`, also the name `--only` takes.
    bin: &'static str,
    /// Heading used when the section fails or is skipped.
    title: &'static str,
    /// Whether it runs with `--quick` (otherwise it is skipped there).
    in_quick: bool,
    /// Whether it takes `--shared-corpus DIR` (all get the environment variable).
    takes_shared_corpus: bool,
    /// The flag through which it takes the limit of one Binaryen run, if it
    /// runs Binaryen.
    binaryen_timeout_flag: Option<&'static str>,
}

/// The sections, in report order.
const SECTIONS: [Section; 6] = [
    Section {
        bin: "transform_table",
        title: "Instrumenting: time, memory, output size",
        in_quick: true,
        takes_shared_corpus: true,
        binaryen_timeout_flag: Some("--timeout"),
    },
    Section {
        bin: "speed",
        title: "Speed of code that does not suspend",
        in_quick: true,
        takes_shared_corpus: false,
        binaryen_timeout_flag: Some("--binaryen-timeout"),
    },
    Section {
        bin: "suspend_cost",
        title: "Suspend and resume against wasmtime fibers",
        in_quick: true,
        takes_shared_corpus: false,
        binaryen_timeout_flag: None,
    },
    Section {
        bin: "scale",
        title: "Scale: many suspended calls",
        in_quick: true,
        takes_shared_corpus: false,
        binaryen_timeout_flag: None,
    },
    Section {
        bin: "compile_whole",
        title: "Compiling the output: whole modules",
        in_quick: true,
        takes_shared_corpus: true,
        binaryen_timeout_flag: Some("--binaryen-timeout"),
    },
    Section {
        bin: "compile_hotspots",
        title: "Compiling the output: Cranelift time per function",
        in_quick: false,
        takes_shared_corpus: true,
        binaryen_timeout_flag: None,
    },
];

/// Lines of a failed section's stderr kept for the report.
const STDERR_TAIL_LINES: usize = 12;

/// Command-line options.
struct Args {
    quick: bool,
    only: Option<Vec<String>>,
    shared_corpus: PathBuf,
    out: PathBuf,
    build: bool,
    /// Binaryen figures only from the cache (`transform_table --cache-only`).
    cached_binaryen: bool,
    /// Binaryen runs only on modules under 5 MB (`transform_table
    /// --cache-only-large`).
    cached_binaryen_large: bool,
    /// The limit of one Binaryen run, for the sections that run it (each has
    /// its own default).
    binaryen_timeout: Option<u64>,
    /// Put the sections that ran into the existing `out` instead of writing
    /// a new report.
    update: bool,
}

fn usage() -> String {
    let names: Vec<&str> = SECTIONS.iter().map(|section| section.bin).collect();
    format!(
        "usage: cargo bench-report [--quick] [--only SECTION,...] [--update] [--out FILE] \
         [--no-build]\n\
         \x20                         [--cached-binaryen | --cached-binaryen-large] \
         [--binaryen-timeout SECONDS] \
         [--shared-corpus DIR]\n\n\
         Builds the CLI and the benches (release), runs each section binary, and writes \
         BENCHMARKS.md:\n\
         a header (machine, versions, issue 17's targets met or not with this run's ratios), \
         the sections, the history.\n\n\
         \x20 --quick              few rounds and small sizes in every section, and skips \
         compile_hotspots: a check that\n\
         \x20                      the sections work (minutes), not figures to quote\n\
         \x20 --only A,B           runs only these sections (comma-separated, no spaces); \
         without --update the file\n\
         \x20                      written holds only them (targets of the others: not \
         measured), so give --out\n\
         \x20 --update             with --only: put the sections that ran into the existing \
         --out file in place of\n\
         \x20                      theirs, keep the others, note the partial run in the \
         header and list the targets\n\
         \x20                      from the whole file (nothing is written if a section \
         fails)\n\
         \x20 --out FILE           where to write (default: BENCHMARKS.md at the workspace \
         root)\n\
         \x20 --no-build           use the binaries already in target/release\n\
         \x20 --cached-binaryen    transform_table takes Binaryen's figures from \
         target/bench-cache only (not cached:\n\
         \x20                      \"not measured\"), for a report in minutes\n\
         \x20 --cached-binaryen-large  the same for modules over 5 MB only (esbuild, yosys: \
         tens of minutes each);\n\
         \x20                      Binaryen still runs on the others when they are not \
         cached\n\
         \x20 --binaryen-timeout S limit of one Binaryen run in transform_table, speed and \
         compile_whole (defaults\n\
         \x20                      1800, 1800, 600 s). A run that hits it is cached as \"did \
         not finish within S s\"\n\
         \x20                      and tried again only with a longer limit\n\
         \x20 --shared-corpus DIR  the real-world modules (default ../shared/corpus)\n\n\
         sections: {}\n\
         examples: cargo bench-report --only suspend_cost,scale --out /tmp/B.md\n\
         \x20         cargo bench-report --only suspend_cost,scale --update",
        names.join(", ")
    )
}

fn parse_args() -> Result<Args> {
    let root = workspace_root();
    let mut args = Args {
        quick: false,
        only: None,
        shared_corpus: sections::shared_corpus_dir(None),
        out: root.join("BENCHMARKS.md"),
        build: true,
        cached_binaryen: false,
        cached_binaryen_large: false,
        binaryen_timeout: None,
        update: false,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--no-build" => args.build = false,
            "--cached-binaryen" => args.cached_binaryen = true,
            "--cached-binaryen-large" => args.cached_binaryen_large = true,
            "--update" => args.update = true,
            "--binaryen-timeout" => {
                let seconds = argv
                    .next()
                    .context("--binaryen-timeout needs a number of seconds")?;
                let seconds: u64 = seconds.parse().with_context(|| {
                    format!("--binaryen-timeout {seconds}: not a number of seconds")
                })?;
                args.binaryen_timeout = Some(seconds);
            }
            "--only" => {
                let list = argv
                    .next()
                    .context("--only needs a comma-separated list of sections")?;
                let names: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect();
                for name in &names {
                    if !SECTIONS.iter().any(|section| section.bin == name) {
                        bail!("--only: no section named `{name}`\n{}", usage());
                    }
                }
                args.only = Some(names);
            }
            "--shared-corpus" => {
                let dir = argv.next().context("--shared-corpus needs a directory")?;
                args.shared_corpus = PathBuf::from(dir);
            }
            "--out" => {
                let file = argv.next().context("--out needs a file name")?;
                args.out = PathBuf::from(file);
            }
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{}", usage()),
        }
    }
    if args.update && args.only.is_none() {
        bail!("--update needs --only: without it, every section runs and the report is new");
    }
    // Sections run from the workspace root: make a relative corpus path
    // mean the same to them as to the user.
    if args.shared_corpus.is_relative() {
        if let Ok(dir) = std::env::current_dir() {
            args.shared_corpus = dir.join(&args.shared_corpus);
        }
    }
    Ok(args)
}

/// What running one section gave.
struct SectionRun {
    markdown: String,
    elapsed: Duration,
    /// `None` when it succeeded, else a short reason.
    failure: Option<String>,
}

fn main() {
    match run() {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    }
}

/// Writes the report; `Ok(false)` when a section (or the build) failed.
fn run() -> Result<bool> {
    let args = parse_args()?;
    let started = Instant::now();
    let started_at = SystemTime::now();
    let load_at_start = sections::load_average();
    let root = workspace_root();
    let mut all_ok = true;

    let build_note = if args.build {
        progress(
            started,
            "building: cargo build --release -p asyncify-cli -p asyncify-benches",
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "-p",
                "asyncify-cli",
                "-p",
                "asyncify-benches",
            ])
            .current_dir(&root)
            .stdout(Stdio::null())
            .status()
            .context("running cargo build")?;
        if status.success() {
            None
        } else {
            all_ok = false;
            Some(format!(
                "`cargo build --release -p asyncify-cli -p asyncify-benches` failed ({status}); \
                 the sections ran from the binaries already in `target/release`."
            ))
        }
    } else {
        None
    };

    progress(started, "looking for Binaryen");
    let tools = binaryen::find_wasm_opt();

    let bin_dir = sections::binaries_dir();
    let mut body = String::new();
    let mut summary = Vec::new();
    // What each section that ran printed (its targets are read from it).
    let mut ran: Vec<(&'static str, String)> = Vec::new();
    for section in &SECTIONS {
        if let Some(only) = &args.only {
            if !only.iter().any(|name| name == section.bin) {
                continue;
            }
        }
        if args.quick && !section.in_quick {
            progress(started, &format!("{}: skipped (--quick)", section.bin));
            body.push_str(&format!(
                "## {}\n\nNot run with `--quick` (it takes minutes): \
                 `target/release/{} --markdown`.\n\n",
                section.title, section.bin
            ));
            summary.push(format!("| `{}` | - | skipped (`--quick`) |", section.bin));
            continue;
        }
        progress(started, &format!("{}: running", section.bin));
        let run = run_section(&bin_dir, section, &args);
        progress(
            started,
            &format!(
                "{}: {} in {}",
                section.bin,
                if run.failure.is_some() {
                    "failed"
                } else {
                    "done"
                },
                duration(run.elapsed)
            ),
        );
        if run.failure.is_some() {
            all_ok = false;
        }
        summary.push(format!(
            "| `{}` | {} | {} |",
            section.bin,
            duration(run.elapsed),
            match &run.failure {
                None => "ok".to_string(),
                Some(reason) => format!("failed: {}", sections::first_line(reason)),
            }
        ));
        body.push_str(run.markdown.trim_end());
        body.push_str("\n\n");
        ran.push((section.bin, run.markdown));
    }

    let history_path = root.join("benches").join("earlier-measurements.md");
    let history = std::fs::read_to_string(&history_path)
        .with_context(|| format!("reading {}", history_path.display()))?;

    let report = if args.update {
        if !all_ok {
            bail!(
                "--update: a section failed, so {} is left as it was",
                args.out.display()
            );
        }
        let old = std::fs::read_to_string(&args.out)
            .with_context(|| format!("--update: reading {}", args.out.display()))?;
        let note = format!(
            "Sections {} regenerated by `{}` on {}, in {} (load average at start: \
             {load_at_start}; commit {}); the other sections are from the run this header \
             describes.",
            ran.iter()
                .map(|(bin, _)| format!("`{bin}`"))
                .collect::<Vec<_>>()
                .join(", "),
            command_text(),
            sections::utc_timestamp(started_at),
            duration(started.elapsed()),
            git_commit()
        );
        updated_report(&old, &ran, &history, &note)
    } else {
        let header = header(
            &args,
            &tools,
            started_at,
            started.elapsed(),
            &load_at_start,
            build_note.as_deref(),
            &summary,
        ) + &targets_paragraph(&ran, false);
        format!("{header}\n{}{}", body, history.trim_end())
    };
    write_atomically(&args.out, &format!("{report}\n"))?;
    progress(
        started,
        &format!(
            "wrote {}{}",
            args.out.display(),
            if all_ok { "" } else { " (with failures)" }
        ),
    );
    Ok(all_ok)
}

/// Progress line on stderr with the elapsed time.
fn progress(started: Instant, message: &str) {
    eprintln!("[report {:>7}] {message}", duration(started.elapsed()));
}

/// Runs one section binary, its stderr forwarded live.
fn run_section(bin_dir: &Path, section: &Section, args: &Args) -> SectionRun {
    let started = Instant::now();
    let path = bin_dir.join(section.bin);
    let mut command_line = format!("target/release/{} --markdown", section.bin);
    if args.quick {
        command_line.push_str(" --quick");
    }
    if let (Some(flag), Some(seconds)) = (section.binaryen_timeout_flag, args.binaryen_timeout) {
        command_line.push_str(&format!(" {flag} {seconds}"));
    }
    let failed = |reason: String, tail: &[String], elapsed: Duration| {
        let mut markdown = format!(
            "## {}: failed ({})\n\n`{command_line}` failed after {}.",
            section.title,
            sections::first_line(&reason),
            duration(elapsed)
        );
        if !tail.is_empty() {
            markdown.push_str(" The end of its standard error:\n\n");
            for line in tail {
                markdown.push_str(&format!("    {line}\n"));
            }
        }
        markdown.push('\n');
        SectionRun {
            markdown,
            elapsed,
            failure: Some(reason),
        }
    };
    if !path.is_file() {
        return failed(
            format!("{} not found; build the benches", path.display()),
            &[],
            started.elapsed(),
        );
    }
    let mut command = Command::new(&path);
    command.arg("--markdown");
    if args.quick {
        command.arg("--quick");
    }
    if section.takes_shared_corpus {
        command.arg("--shared-corpus").arg(&args.shared_corpus);
    }
    if section.bin == "transform_table" {
        if args.cached_binaryen {
            command.arg("--cache-only");
        } else if args.cached_binaryen_large {
            command.arg("--cache-only-large");
        }
    }
    if let (Some(flag), Some(seconds)) = (section.binaryen_timeout_flag, args.binaryen_timeout) {
        command.arg(flag).arg(seconds.to_string());
    }
    let spawned = command
        .env(SHARED_CORPUS_ENV, &args.shared_corpus)
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            return failed(
                format!("could not start {}: {error}", path.display()),
                &[],
                started.elapsed(),
            )
        }
    };
    let stderr = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            let mut tail = VecDeque::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("  {line}");
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            Vec::from(tail)
        })
    });
    let mut markdown = String::new();
    let read = child
        .stdout
        .take()
        .map(|mut stdout| stdout.read_to_string(&mut markdown));
    let status = child.wait();
    let tail = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    let elapsed = started.elapsed();
    match (status, read) {
        (Ok(status), Some(Ok(_))) if status.success() => {
            if markdown.trim().is_empty() {
                failed("printed nothing".to_string(), &tail, elapsed)
            } else {
                SectionRun {
                    markdown,
                    elapsed,
                    failure: None,
                }
            }
        }
        (Ok(status), _) => {
            let last = tail
                .iter()
                .rev()
                .find(|line| !line.trim().is_empty())
                .cloned()
                .unwrap_or_else(|| status.to_string());
            failed(last, &tail, elapsed)
        }
        (Err(error), _) => failed(format!("waiting for it: {error}"), &tail, elapsed),
    }
}

/// The command this report was started with, as a user would type it.
fn command_text() -> String {
    std::iter::once("cargo bench-report".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Heading of the history part, which the report takes from
/// `benches/earlier-measurements.md`.
const HISTORY_HEADING: &str = "## Earlier measurements (history)";

/// `--update`: `old` (a report this binary wrote) with the sections that ran
/// now put in place of the ones with the same heading (new ones go before
/// the history), the history taken afresh, and in the header `note` and the
/// targets read from the whole updated body.
fn updated_report(old: &str, ran: &[(&str, String)], history: &str, note: &str) -> String {
    let (old_header, old_body) = match old.find("\n## ") {
        Some(at) => old.split_at(at + 1),
        None => (old, ""),
    };
    // The body's level-2 blocks, each from its heading to the next one.
    let mut blocks: Vec<String> = Vec::new();
    for line in old_body.lines() {
        if line.starts_with("## ") || blocks.is_empty() {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks.retain(|block| !block.starts_with(HISTORY_HEADING));
    for (_, markdown) in ran {
        let heading = markdown.lines().find(|line| line.starts_with("## "));
        let new_block = format!("{}\n\n", markdown.trim());
        match blocks
            .iter_mut()
            .find(|block| heading.is_some_and(|h| block.lines().next() == Some(h)))
        {
            Some(block) => *block = new_block,
            None => blocks.push(new_block),
        }
    }
    let body: String = blocks
        .iter()
        .map(|block| format!("{}\n\n", block.trim_end()))
        .collect();
    // The header up to its targets paragraph, which is written again.
    let header_end = ["\nIssue 17's targets", "\nThe targets ("]
        .iter()
        .filter_map(|opening| old_header.find(opening))
        .min()
        .unwrap_or(old_header.len());
    let header = format!(
        "{}\n\n{note}\n{}",
        old_header[..header_end].trim_end(),
        targets_paragraph(&[("", body.clone())], true)
    );
    format!("{header}\n{body}{}\n", history.trim_end())
}

/// The report's opening: what was run, where, with which versions.
fn header(
    args: &Args,
    tools: &[binaryen::WasmOpt],
    started_at: SystemTime,
    elapsed: Duration,
    load_at_start: &str,
    build_note: Option<&str>,
    summary: &[String],
) -> String {
    let command = command_text();
    let binaryen = if tools.is_empty() {
        "none found (install Debian's `binaryen`, or Node for npm's)".to_string()
    } else {
        sections::describe_tools(tools)
    };
    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    out.push_str(&format!(
        "Generated by `{command}` on {}, in {}; do not edit by hand (the history at the end \
         comes from `benches/earlier-measurements.md`). Each section says what it measures and \
         the command that reproduces it. The targets are those of issue 17 (the first \
         round's, from `../shared/notes/anchors-and-targets.md`, are printed after them). The \
         machine is shared with other work, so \
         absolute times are noisy: read the ratios, which compare tools measured in the same \
         run.\n\n",
        sections::utc_timestamp(started_at),
        duration(elapsed)
    ));
    if args.quick {
        out.push_str(
            "This is a `--quick` run (few rounds, small sizes): a check that every section \
             works, not figures to quote.\n\n",
        );
    }
    if let Some(note) = build_note {
        out.push_str(&format!("{note}\n\n"));
    }
    out.push_str("| | |\n|---|---|\n");
    out.push_str(&format!("| machine | {} |\n", machine()));
    out.push_str(&format!(
        "| load average at start (1, 5, 15 min) | {load_at_start} |\n"
    ));
    out.push_str(&format!(
        "| rustc | {} |\n",
        command_output("rustc", &["--version"])
    ));
    out.push_str(&format!(
        "| wasmtime | {} (from `Cargo.lock`) |\n",
        locked_version("wasmtime")
    ));
    out.push_str(&format!("| Binaryen | {binaryen} |\n"));
    out.push_str(&format!("| commit | {} |\n", git_commit()));
    out.push_str(&format!(
        "| shared corpus | `{}` |\n\n",
        args.shared_corpus.display()
    ));
    out.push_str("| section | time | result |\n|---|---:|---|\n");
    for line in summary {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Issue 17's targets in the order of its table, each with the line the
/// section that measures it printed (or why there is none), then the older
/// notes' targets the sections still print. `ran` holds what each section
/// printed in this run; `whole_file` means it holds one entry, the body of
/// an updated report, in which every section's lines are looked for.
fn targets_paragraph(ran: &[(&str, String)], whole_file: bool) -> String {
    let mut out = String::from(if whole_file {
        "\nIssue 17's targets, as the sections below measured them (each figure and ratio is \
         from the run of its section; a target not met says why and what would be needed):\n\n"
    } else {
        "\nIssue 17's targets, as the sections below measured them in this run (every figure \
         and ratio is from this run; a target not met says why and what would be needed):\n\n"
    });
    for target in targets::ISSUE_17 {
        let found = ran
            .iter()
            .filter(|(bin, _)| whole_file || *bin == target.section)
            .find_map(|(_, markdown)| target.find(markdown));
        let line = match found {
            Some(line) => format!("{line} (`{}`)", target.section),
            None if whole_file => target.line(
                Verdict::NotMeasured,
                &format!(
                    "no line for it in `{}`'s section here: it predates these targets or did \
                     not run; regenerate it",
                    target.section
                ),
            ),
            None if ran.iter().any(|(bin, _)| *bin == target.section) => target.line(
                Verdict::NotMeasured,
                &format!(
                    "`{}` ran but printed no line for it; see its section",
                    target.section
                ),
            ),
            None => target.line(
                Verdict::NotMeasured,
                &format!("`{}` not among the sections run", target.section),
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    let older: Vec<String> = ran
        .iter()
        .flat_map(|(bin, markdown)| {
            older_target_lines(markdown).map(move |line| {
                if bin.is_empty() {
                    line.to_string()
                } else {
                    format!("{line} (`{bin}`)")
                }
            })
        })
        .collect();
    if !older.is_empty() {
        out.push_str(
            "\nThe first round's targets (`../shared/notes/anchors-and-targets.md`), still \
             printed:\n\n",
        );
        for line in older {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// A section's lines for the older notes' targets.
fn older_target_lines(markdown: &str) -> impl Iterator<Item = &str> {
    let opening = format!("- {}", targets::OLDER);
    markdown
        .lines()
        .map(str::trim_end)
        .filter(move |line| line.starts_with(&opening))
}

/// CPU model, cores, memory and kernel, from `/proc`.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| {
            let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
            let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GB RAM", kilobytes as f64 / 1_048_576.0))
        })
        .unwrap_or_else(|| "unknown RAM".to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| format!("Linux {}", release.trim()))
        .unwrap_or_else(|_| std::env::consts::OS.to_string());
    format!("{model}, {cores} cores, {memory}, {kernel}")
}

/// The first line a command prints, or "unknown".
fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .next()
                .map(|line| line.trim().to_string())
        })
        .filter(|line| !line.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The version `Cargo.lock` pins for a package (the first, if several).
fn locked_version(package: &str) -> String {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap_or_default();
    let name_line = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == name_line {
            if let Some(version) = lines
                .next()
                .and_then(|line| line.trim().strip_prefix("version = "))
            {
                return version.trim_matches('"').to_string();
            }
        }
    }
    "unknown".to_string()
}

/// The commit checked out, and whether tracked files differ from it.
fn git_commit() -> String {
    let commit = command_output("git", &["rev-parse", "--short=12", "HEAD"]);
    if commit == "unknown" {
        return "unknown (not a git checkout)".to_string();
    }
    let clean = Command::new("git")
        .args(["diff", "--quiet", "HEAD", "--"])
        .current_dir(workspace_root())
        .status()
        .is_ok_and(|status| status.success());
    if clean {
        format!("`{commit}`")
    } else {
        format!("`{commit}` with uncommitted changes")
    }
}

/// Writes `contents` to a temporary file next to `path`, then renames it.
fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let temporary = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temporary, contents)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| {
        let _ = std::fs::remove_file(&temporary);
        format!("renaming {} to {}", temporary.display(), path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_replaces_only_the_sections_that_ran() {
        let old = "# Benchmarks\n\nheader\n\nThe targets (old):\n\n- old line\n\n\
                   ## One\n\nold one\n\n### Sub\n\nmore\n\n## Two\n\nold two\n\n\
                   ## Earlier measurements (history)\n\nold history\n";
        let line = targets::SCALE_PER_CALL.line(Verdict::Met, "100 B");
        let two = format!("## Two\n\nnew two\n\n{line}\n");
        let ran = [
            ("scale", two),
            ("other", "## Three\n\nnew three\n".to_string()),
        ];
        let history = "## Earlier measurements (history)\n\nnew history\n";
        let updated = updated_report(old, &ran, history, "Sections regenerated.");
        assert!(updated.starts_with("# Benchmarks\n\nheader\n\nSections regenerated.\n"));
        assert!(!updated.contains("The targets (old)"));
        assert!(updated.contains(&format!("{line} (`scale`)")));
        let one = updated
            .find("## One\n\nold one\n\n### Sub\n\nmore")
            .unwrap();
        let two = updated.find("## Two\n\nnew two").unwrap();
        let three = updated.find("## Three\n\nnew three").unwrap();
        let history = updated.find("new history").unwrap();
        assert!(one < two && two < three && three < history);
        assert!(!updated.contains("old two") && !updated.contains("old history"));
    }
}
