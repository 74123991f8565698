//! Finding Binaryen's `wasm-opt`, running it (or any tool) with a timeout
//! while measuring wall time and peak RSS, and caching its outputs.
//!
//! Two builds are looked for: `wasm-opt` on `PATH` (Debian's native
//! binaryen 108) and `scripts/js-interop/node_modules/.bin/wasm-opt`
//! (npm's binaryen 132, runs in Node; installed with `npm ci` there when Node
//! is present and it is missing). Outputs are cached in `target/bench-cache/`
//! under a key made of the input's SHA-256, the tool's version and the flags,
//! so a rerun of a benchmark skips a run that took minutes: the output
//! (`KEY.wasm`) and a log of every run (`KEY.txt`, [`RunRecord`] lines), which
//! benches that take medians over several runs top up ([`cached_runs`],
//! [`append_run`]). This is the benches' one Binaryen cache.
//!
//! ```no_run
//! use asyncify_benches::binaryen;
//! use std::time::Duration;
//!
//! let input = std::fs::read("module.wasm")?;
//! for tool in binaryen::find_wasm_opt() {
//!     let flags = ["--all-features", "-O", "--asyncify"];
//!     let out = binaryen::cached_wasm_opt(&tool, &input, &flags, Duration::from_secs(600))?;
//!     println!("{}: {:?}", tool.label, out.map(|o| o.wasm.len()));
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One usable `wasm-opt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmOpt {
    /// The executable to run.
    pub path: PathBuf,
    /// The version number it reports (`"108"`, `"132"`).
    pub version: String,
    /// A short name for tables: `"Binaryen 108 (Debian)"`, `"Binaryen 132 (npm)"`.
    pub label: String,
}

/// The workspace root (the parent of the `benches/` crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The directory cached tool outputs go to: `target/bench-cache/` in the
/// workspace (created on first use).
pub fn cache_dir() -> PathBuf {
    workspace_root().join("target").join("bench-cache")
}

/// Every `wasm-opt` available, native first: `wasm-opt` on `PATH`, then the
/// npm build in `scripts/js-interop` (running `npm ci` there first when Node
/// and npm exist but the package is not installed). A tool that does not
/// answer `--version` is left out; problems go to stderr, never an error.
pub fn find_wasm_opt() -> Vec<WasmOpt> {
    let mut tools = Vec::new();
    if let Some(tool) = probe(Path::new("wasm-opt"), "native") {
        tools.push(tool);
    }
    let interop = workspace_root().join("scripts").join("js-interop");
    let npm_wasm_opt = interop.join("node_modules").join(".bin").join("wasm-opt");
    if !npm_wasm_opt.exists() && answers(Command::new("node").arg("--version")) {
        eprintln!(
            "binaryen: installing npm's binaryen with `npm ci` in {}",
            interop.display()
        );
        let installed = Command::new("npm")
            .arg("ci")
            .current_dir(&interop)
            .stdout(Stdio::null())
            .status();
        if !matches!(installed, Ok(status) if status.success()) {
            eprintln!("binaryen: `npm ci` failed; only the native wasm-opt is used");
        }
    }
    if npm_wasm_opt.exists() {
        if let Some(tool) = probe(&npm_wasm_opt, "npm") {
            tools.push(tool);
        }
    }
    tools
}

/// Runs `path --version` and builds a [`WasmOpt`] from the answer; the label
/// says "Debian" for a native build found in `/usr/bin`.
fn probe(path: &Path, origin: &str) -> Option<WasmOpt> {
    let output = Command::new(path).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // "wasm-opt version 108" or "wasm-opt version 132 (version_132)".
    let version = text
        .split("version")
        .nth(1)?
        .split_whitespace()
        .next()?
        .to_string();
    let origin = if origin == "native" && which(path).is_some_and(|p| p.starts_with("/usr/bin")) {
        "Debian"
    } else {
        origin
    };
    Some(WasmOpt {
        path: path.to_path_buf(),
        label: format!("Binaryen {version} ({origin})"),
        version,
    })
}

/// Where a bare program name resolves on `PATH`.
fn which(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether a command runs and exits successfully (output discarded).
fn answers(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// How a child process ended, with what it cost.
#[derive(Debug, Clone)]
pub struct MeasuredRun {
    /// Its exit status; `None` when it was killed for running past the timeout.
    pub status: Option<ExitStatus>,
    /// Wall time from spawn to exit (or to the kill).
    pub wall: Duration,
    /// Peak resident set size of the process, in bytes (from `wait4`).
    pub peak_rss_bytes: u64,
    /// Its standard error, for messages.
    pub stderr: String,
}

impl MeasuredRun {
    /// Whether it exited with status 0 in time.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// Whether it was killed at the timeout.
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }
}

/// Lowers this process's peak-RSS mark to its current RSS, after giving
/// free heap back. The kernel carries the parent's mark into a child it
/// spawns (the child starts on the parent's memory until `exec`), so
/// without this a small tool measured after a large module would report
/// this process's peak, not its own.
pub fn reset_peak_rss_mark() {
    // SAFETY: malloc_trim only returns free heap memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    // "5" resets the peak RSS to the current RSS (Linux 4.0 and later).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs `command` (stdout discarded, stderr captured) and kills it after
/// `timeout`. The peak RSS is the child's own (`wait4`'s `ru_maxrss`), so
/// wrap nothing around the tool you mean to measure: `node` running npm's
/// `wasm-opt` counts, since the `.bin` script execs it in the same process.
pub fn run_measured(command: &mut Command, timeout: Duration) -> Result<MeasuredRun> {
    reset_peak_rss_mark();
    let stderr_file = tempfile_path("stderr");
    let stderr_sink = std::fs::File::create(&stderr_file)
        .with_context(|| format!("creating {}", stderr_file.display()))?;
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_sink)
        .spawn()
        .with_context(|| format!("starting {command:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut killed = false;
    let (raw_status, peak_rss_bytes) = loop {
        let mut raw_status = 0;
        // SAFETY: an all-zero `rusage` is a valid value for wait4 to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our own unreaped child; both pointers are valid for writes.
        let reaped = unsafe { libc::wait4(pid, &mut raw_status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            // ru_maxrss is in kilobytes on Linux.
            break (raw_status, usage.ru_maxrss.max(0) as u64 * 1024);
        }
        if reaped < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                bail!("waiting for {command:?}: {error}");
            }
        }
        if !killed && started.elapsed() > timeout {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(
            if started.elapsed() < Duration::from_secs(1) {
                2
            } else {
                20
            },
        ));
    };
    let wall = started.elapsed();
    let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
    let _ = std::fs::remove_file(&stderr_file);
    use std::os::unix::process::ExitStatusExt;
    Ok(MeasuredRun {
        status: (!killed).then(|| ExitStatus::from_raw(raw_status)),
        wall,
        peak_rss_bytes,
        stderr,
    })
}

/// A fresh file name in the cache directory for temporary output.
fn tempfile_path(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = cache_dir();
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!(
        "tmp-{}-{}.{what}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A `wasm-opt` output, fresh or from the cache.
#[derive(Debug, Clone)]
pub struct WasmOptOutput {
    /// The output module.
    pub wasm: Vec<u8>,
    /// The run that produced it: wall time and peak RSS as measured then.
    pub run: CachedRun,
    /// Whether it came from the cache (no tool was run now).
    pub from_cache: bool,
}

/// What a cached run cost when it was made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CachedRun {
    /// Wall time.
    pub wall: Duration,
    /// Peak RSS in bytes.
    pub peak_rss_bytes: u64,
}

/// Why a `wasm-opt` run gave no output (also cached, so a run that timed
/// out is not retried with the same or a shorter timeout).
#[derive(Debug, Clone, PartialEq)]
pub enum WasmOptFailure {
    /// Killed after running this long.
    TimedOut(Duration),
    /// Exited with an error; the last lines of its stderr.
    Failed(String),
}

impl std::fmt::Display for WasmOptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WasmOptFailure::TimedOut(after) => {
                write!(f, "did not finish within {} s", after.as_secs())
            }
            WasmOptFailure::Failed(message) => write!(f, "failed: {message}"),
        }
    }
}

/// Runs `tool` on `input` with `flags` (e.g. `["--all-features", "-O",
/// "--asyncify"]`; input and `-o` are added) unless the cache already holds
/// the result for the same input bytes, tool version and flags. Returns
/// `Ok(Err(..))` when the tool failed or timed out (that outcome is cached
/// too; a timeout is retried only with a longer `timeout`), and `Err` for
/// problems of our own (files, spawning).
pub fn cached_wasm_opt(
    tool: &WasmOpt,
    input: &[u8],
    flags: &[&str],
    timeout: Duration,
) -> Result<std::result::Result<WasmOptOutput, WasmOptFailure>> {
    let dir = cache_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = cache_key(input, &tool.version, flags);
    let output_path = dir.join(format!("{key}.wasm"));
    let record_path = dir.join(format!("{key}.txt"));

    match lookup_cached_wasm_opt(tool, input, flags) {
        Some(Err(WasmOptFailure::TimedOut(after))) if after < timeout => {}
        Some(outcome) => return Ok(outcome),
        None => {}
    }

    let input_path = tempfile_path("in.wasm");
    std::fs::write(&input_path, input)
        .with_context(|| format!("writing {}", input_path.display()))?;
    let partial_path = tempfile_path("out.wasm");
    eprintln!(
        "binaryen: running {} {} on {} bytes (timeout {} s; cached in {})",
        tool.label,
        flags.join(" "),
        input.len(),
        timeout.as_secs(),
        dir.display()
    );
    let run = run_measured(
        Command::new(&tool.path)
            .args(flags)
            .arg(&input_path)
            .arg("-o")
            .arg(&partial_path),
        timeout,
    );
    let _ = std::fs::remove_file(&input_path);
    let run = run?;
    let outcome = if run.timed_out() {
        Err(WasmOptFailure::TimedOut(run.wall))
    } else if !run.succeeded() {
        let tail: Vec<&str> = run.stderr.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(WasmOptFailure::Failed(format!(
            "{} ({})",
            tail.join(" / "),
            run.status.map(|s| s.to_string()).unwrap_or_default()
        )))
    } else {
        std::fs::rename(&partial_path, &output_path)
            .with_context(|| format!("moving the output to {}", output_path.display()))?;
        let cached = CachedRun {
            wall: run.wall,
            peak_rss_bytes: run.peak_rss_bytes,
        };
        let wasm = std::fs::read(&output_path)
            .with_context(|| format!("reading {}", output_path.display()))?;
        Ok(WasmOptOutput {
            wasm,
            run: cached,
            from_cache: false,
        })
    };
    let _ = std::fs::remove_file(&partial_path);
    let result = match &outcome {
        Ok(output) => RunResult::Succeeded {
            wall: output.run.wall,
            peak_rss: output.run.peak_rss_bytes,
            output_bytes: output.wasm.len() as u64,
        },
        Err(WasmOptFailure::TimedOut(after)) => RunResult::TimedOut(*after),
        Err(WasmOptFailure::Failed(message)) => RunResult::Failed(message.clone()),
    };
    append_run_to(&record_path, &RunRecord::now(result))?;
    Ok(outcome)
}

/// What the cache holds for `tool` run on `input` with `flags`, without
/// running anything: the output, the failure or timeout recorded (a record
/// may say how long a background run was given: "did not finish in N min"),
/// or `None` when there is no usable record.
pub fn lookup_cached_wasm_opt(
    tool: &WasmOpt,
    input: &[u8],
    flags: &[&str],
) -> Option<std::result::Result<WasmOptOutput, WasmOptFailure>> {
    let dir = cache_dir();
    let key = cache_key(input, &tool.version, flags);
    let record = std::fs::read_to_string(dir.join(format!("{key}.txt"))).ok()?;
    match parse_record(&record)? {
        Record::Ok(run) => {
            let wasm = std::fs::read(dir.join(format!("{key}.wasm"))).ok()?;
            Some(Ok(WasmOptOutput {
                wasm,
                run,
                from_cache: true,
            }))
        }
        Record::Failed(message) => Some(Err(WasmOptFailure::Failed(message))),
        Record::TimedOut(after) => Some(Err(WasmOptFailure::TimedOut(after))),
    }
}

/// How a run that hit its time limit is described in a table: "did not
/// finish within 2400 s", then when it was recorded and the notes of its run
/// log (`# ...` lines, which say how a run made by hand was measured), from
/// the longest time limit recorded for `tool` with `flags` on the input whose
/// [`sha256_hex`] is `input_sha256`. `None` when no such run is recorded.
pub fn describe_time_limit(tool: &WasmOpt, input_sha256: &str, flags: &[&str]) -> Option<String> {
    let text = std::fs::read_to_string(run_log_path(tool, input_sha256, flags)).ok()?;
    time_limit_text(&text)
}

/// [`describe_time_limit`] for the text of a run log.
fn time_limit_text(text: &str) -> Option<String> {
    let (at, after) = text
        .lines()
        .filter_map(RunRecord::from_line)
        .filter_map(|record| match record.result {
            RunResult::TimedOut(after) => Some((record.measured_at, after)),
            _ => None,
        })
        .max_by_key(|(_, after)| *after)?;
    let mut details = Vec::new();
    if at > 0 {
        let when = std::time::UNIX_EPOCH + Duration::from_secs(at);
        details.push(format!("recorded {}", crate::sections::utc_timestamp(when)));
    }
    details.extend(
        text.lines()
            .filter_map(|line| line.strip_prefix('#'))
            .map(|note| note.trim().to_string())
            .filter(|note| !note.is_empty()),
    );
    let mut out = format!("did not finish within {} s", after.as_secs());
    if !details.is_empty() {
        out.push_str(&format!(" ({})", details.join("; ")));
    }
    Some(out)
}

/// Records by hand that `tool` with `flags`, run on the input whose
/// [`sha256_hex`] is `input_sha256`, did not finish within `limit`, with a
/// note saying when and how that was measured (kept as a `# ` line of the
/// run log and shown by [`describe_time_limit`]). The benches then treat the
/// run as they treat one of their own that hit the limit: not retried with
/// the same or a shorter limit.
pub fn record_time_limit(
    tool: &WasmOpt,
    input_sha256: &str,
    flags: &[&str],
    limit: Duration,
    note: &str,
) -> Result<()> {
    let path = run_log_path(tool, input_sha256, flags);
    append_run_to(&path, &RunRecord::now(RunResult::TimedOut(limit)))?;
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "# {}", note.replace('\n', " "))
        .with_context(|| format!("writing {}", path.display()))
}

/// The cache key: input hash, tool version and flags, safe as a file name.
fn cache_key(input: &[u8], version: &str, flags: &[&str]) -> String {
    cache_key_of_hash(&sha256_hex(input), version, flags)
}

/// [`cache_key`] for an input known by its [`sha256_hex`].
fn cache_key_of_hash(input_sha256: &str, version: &str, flags: &[&str]) -> String {
    let flags_hash = sha256_hex(flags.join("\u{1f}").as_bytes());
    let version: String = version
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    format!(
        "{}-wasm-opt{version}-{}",
        input_sha256.get(..32).unwrap_or(input_sha256),
        &flags_hash[..12]
    )
}

/// What a run log says for [`cached_wasm_opt`]: a refusal or a timeout if
/// one was recorded (the longest timeout), else the last successful run.
enum Record {
    Ok(CachedRun),
    TimedOut(Duration),
    Failed(String),
}

fn parse_record(text: &str) -> Option<Record> {
    let records: Vec<RunRecord> = text.lines().filter_map(RunRecord::from_line).collect();
    let mut timed_out: Option<Duration> = None;
    let mut succeeded = None;
    for record in &records {
        match &record.result {
            RunResult::Failed(message) => return Some(Record::Failed(message.clone())),
            RunResult::TimedOut(after) => {
                timed_out = Some(timed_out.map_or(*after, |longest| longest.max(*after)));
            }
            RunResult::Succeeded { wall, peak_rss, .. } => {
                succeeded = Some(CachedRun {
                    wall: *wall,
                    peak_rss_bytes: *peak_rss,
                });
            }
        }
    }
    match (succeeded, timed_out) {
        (Some(run), _) => Some(Record::Ok(run)),
        (None, Some(after)) => Some(Record::TimedOut(after)),
        (None, None) => None,
    }
}

/// One run of a tool, as the Binaryen cache records it: every run of
/// [`cached_wasm_opt`] and of the benches that take medians over several runs
/// (`transform_table`) goes to one log a key ([`cached_runs`], [`append_run`]),
/// a line a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// When it ran (Unix seconds).
    pub measured_at: u64,
    /// What it did.
    pub result: RunResult,
}

/// What one recorded run did.
#[derive(Debug, Clone, PartialEq)]
pub enum RunResult {
    /// It wrote its output.
    Succeeded {
        /// Wall time.
        wall: Duration,
        /// Peak RSS in bytes.
        peak_rss: u64,
        /// Size of the output.
        output_bytes: u64,
    },
    /// It exited with an error (a one-line message).
    Failed(String),
    /// It was killed after running this long.
    TimedOut(Duration),
}

impl RunRecord {
    /// A record of a run that ended now.
    pub fn now(result: RunResult) -> RunRecord {
        let measured_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        RunRecord {
            measured_at,
            result,
        }
    }

    /// Its line in a run log.
    pub fn to_line(&self) -> String {
        let at = self.measured_at;
        match &self.result {
            RunResult::Succeeded {
                wall,
                peak_rss,
                output_bytes,
            } => {
                format!("ok {at} {} {peak_rss} {output_bytes}", wall.as_secs_f64())
            }
            RunResult::Failed(message) => format!("failed {at} {}", message.replace('\n', " ")),
            RunResult::TimedOut(after) => format!("timeout {at} {}", after.as_secs_f64()),
        }
    }

    /// The record a line of a run log holds, if it is one. A line of the
    /// older one-record format (`ok WALL PEAK`, `timeout SECONDS`,
    /// `failed MESSAGE`, no time of measurement) reads as measured at 0.
    pub fn from_line(line: &str) -> Option<RunRecord> {
        RunRecord::from_dated_line(line).or_else(|| RunRecord::from_undated_line(line))
    }

    fn from_undated_line(line: &str) -> Option<RunRecord> {
        let (kind, rest) = line.split_once(' ')?;
        let result = match kind {
            "ok" => {
                let mut numbers = rest.split_whitespace();
                RunResult::Succeeded {
                    wall: Duration::from_secs_f64(numbers.next()?.parse().ok()?),
                    peak_rss: numbers.next()?.parse().ok()?,
                    output_bytes: 0,
                }
            }
            "timeout" => RunResult::TimedOut(Duration::from_secs_f64(rest.parse().ok()?)),
            "failed" => RunResult::Failed(rest.to_string()),
            _ => return None,
        };
        Some(RunRecord {
            measured_at: 0,
            result,
        })
    }

    fn from_dated_line(line: &str) -> Option<RunRecord> {
        let mut fields = line.splitn(3, ' ');
        let kind = fields.next()?;
        let measured_at = fields.next()?.parse().ok()?;
        let rest = fields.next()?;
        let result = match kind {
            "ok" => {
                let mut numbers = rest.split_whitespace();
                RunResult::Succeeded {
                    wall: Duration::from_secs_f64(numbers.next()?.parse().ok()?),
                    peak_rss: numbers.next()?.parse().ok()?,
                    output_bytes: numbers.next()?.parse().ok()?,
                }
            }
            "failed" => RunResult::Failed(rest.to_string()),
            "timeout" => RunResult::TimedOut(Duration::from_secs_f64(rest.parse().ok()?)),
            _ => return None,
        };
        Some(RunRecord {
            measured_at,
            result,
        })
    }
}

/// The run log of `tool` with `flags` on the input whose [`sha256_hex`] is
/// `input_sha256` (the file [`cached_wasm_opt`] reads and writes too).
fn run_log_path(tool: &WasmOpt, input_sha256: &str, flags: &[&str]) -> PathBuf {
    let key = cache_key_of_hash(input_sha256, &tool.version, flags);
    cache_dir().join(format!("{key}.txt"))
}

/// Every recorded run of `tool` with `flags` on the input whose
/// [`sha256_hex`] is `input_sha256`, oldest first.
pub fn cached_runs(tool: &WasmOpt, input_sha256: &str, flags: &[&str]) -> Vec<RunRecord> {
    std::fs::read_to_string(run_log_path(tool, input_sha256, flags))
        .map(|text| text.lines().filter_map(RunRecord::from_line).collect())
        .unwrap_or_default()
}

/// Adds `record` to the run log of `tool` with `flags` on the input whose
/// [`sha256_hex`] is `input_sha256`.
pub fn append_run(
    tool: &WasmOpt,
    input_sha256: &str,
    flags: &[&str],
    record: &RunRecord,
) -> Result<()> {
    append_run_to(&run_log_path(tool, input_sha256, flags), record)
}

fn append_run_to(path: &Path, record: &RunRecord) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{}", record.to_line()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_differ_by_input_version_and_flags() {
        let a = cache_key(b"x", "108", &["-O", "--asyncify"]);
        assert_ne!(a, cache_key(b"y", "108", &["-O", "--asyncify"]));
        assert_ne!(a, cache_key(b"x", "132", &["-O", "--asyncify"]));
        assert_ne!(a, cache_key(b"x", "108", &["--asyncify"]));
        assert_eq!(a, cache_key(b"x", "108", &["-O", "--asyncify"]));
    }

    #[test]
    fn run_records_round_trip() {
        for result in [
            RunResult::Succeeded {
                wall: Duration::from_secs_f64(6.5),
                peak_rss: 255_000_000,
                output_bytes: 2_285_832,
            },
            RunResult::Failed("module is already instrumented".to_string()),
            RunResult::TimedOut(Duration::from_secs(1800)),
        ] {
            let record = RunRecord {
                measured_at: 1_795_000_000,
                result,
            };
            assert_eq!(RunRecord::from_line(&record.to_line()), Some(record));
        }
        assert_eq!(RunRecord::from_line("garbage"), None);
    }

    #[test]
    fn a_run_log_reads_as_one_outcome() {
        assert!(matches!(
            parse_record("ok 1 1.5 1024 10\nok 2 2.5 2048 10\n"),
            Some(Record::Ok(CachedRun {
                peak_rss_bytes: 2048,
                ..
            }))
        ));
        assert!(matches!(
            parse_record("timeout 1 60\ntimeout 2 1800\n"),
            Some(Record::TimedOut(after)) if after.as_secs() == 1800
        ));
        assert!(matches!(parse_record("failed 1 boom\n"), Some(Record::Failed(m)) if m == "boom"));
        assert!(parse_record("").is_none());
        // The older one-line records still read.
        assert!(matches!(
            parse_record("ok 1.5 1024\n"),
            Some(Record::Ok(CachedRun {
                peak_rss_bytes: 1024,
                ..
            }))
        ));
        assert!(matches!(
            parse_record("timeout 1800\n"),
            Some(Record::TimedOut(after)) if after.as_secs() == 1800
        ));
    }

    #[test]
    fn a_time_limit_reads_with_its_notes() {
        let log = "timeout 2400\ntimeout 1796191786 2400\n# did not finish in 40 min (by hand)\n";
        assert_eq!(
            time_limit_text(log).as_deref(),
            Some("did not finish within 2400 s (recorded 2026-12-02 06:09 UTC; did not finish in 40 min (by hand))")
        );
        assert_eq!(time_limit_text("ok 1 1.5 1024 10\n"), None);
        assert_eq!(
            time_limit_text("timeout 0 60\n").as_deref(),
            Some("did not finish within 60 s")
        );
    }

    #[test]
    fn measures_a_child() {
        let run = run_measured(&mut Command::new("true"), Duration::from_secs(10)).unwrap();
        assert!(run.succeeded());
        let run = run_measured(Command::new("sleep").arg("5"), Duration::from_millis(100)).unwrap();
        assert!(run.timed_out());
    }
}
