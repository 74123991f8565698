//! What `cargo bench-report` and its section binaries share: the command-line
//! conventions, where the real-world corpus is, and how figures are written.
//!
//! Every section binary runs as `target/release/<bin> --markdown [--quick]`
//! and prints one markdown section on stdout (progress goes to stderr). The
//! report tells sections where the shared corpus is through the
//! [`SHARED_CORPUS_ENV`] environment variable; binaries that take a
//! `--shared-corpus DIR` flag prefer the flag.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::binaryen::workspace_root;

/// Environment variable through which the report passes the shared corpus
/// directory to every section.
pub const SHARED_CORPUS_ENV: &str = "ASYNCIFY_SHARED_CORPUS";

/// The shared corpus directory: `explicit` (from `--shared-corpus`), else
/// [`SHARED_CORPUS_ENV`], else `../shared/corpus` next to the workspace.
pub fn shared_corpus_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    match std::env::var_os(SHARED_CORPUS_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let dir = workspace_root().join("..").join("shared").join("corpus");
            std::fs::canonicalize(&dir).unwrap_or(dir)
        }
    }
}

/// The directory holding the running binary (`target/release` for a
/// section started by the report), where its sibling binaries are.
pub fn binaries_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| workspace_root().join("target").join("release"))
}

/// A path as tables show it: relative to the workspace root when inside it.
pub fn display_path(path: &Path) -> String {
    let root = workspace_root();
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The Binaryen builds found, for a table: "Binaryen 108 (Debian):
/// `wasm-opt`; Binaryen 132 (npm): `scripts/js-interop/...`".
pub fn describe_tools(tools: &[crate::binaryen::WasmOpt]) -> String {
    tools
        .iter()
        .map(|tool| format!("{}: `{}`", tool.label, display_path(&tool.path)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The median of some samples (the mean of the middle two for an even
/// count); `None` when there are none.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    })
}

/// A duration with three significant figures in a fitting unit:
/// `"840 µs"`, `"67.4 ms"`, `"6.41 s"`, `"401 s"`.
pub fn duration(d: Duration) -> String {
    let seconds = d.as_secs_f64();
    if seconds < 1e-3 {
        format!("{} µs", significant(seconds * 1e6))
    } else if seconds < 1.0 {
        format!("{} ms", significant(seconds * 1e3))
    } else {
        format!("{} s", significant(seconds))
    }
}

/// A memory figure in decimal units with about two significant figures:
/// `"17 MB"`, `"255 MB"`, `"5.8 GB"`.
pub fn memory(bytes: u64) -> String {
    let bytes = bytes as f64;
    if bytes >= 1e9 {
        format!("{} GB", significant(bytes / 1e9))
    } else if bytes >= 1e6 {
        format!("{:.0} MB", bytes / 1e6)
    } else {
        format!("{:.0} KB", bytes / 1e3)
    }
}

/// An exact count with thousands separators: `1,049,906`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    // The leading group has 1 to 3 digits, every later one exactly 3.
    let leading = match digits.len() % 3 {
        0 => 3.min(digits.len()),
        partial => partial,
    };
    let (first, rest) = digits.split_at(leading);
    let mut out = first.to_string();
    for group in rest.as_bytes().chunks(3) {
        out.push(',');
        out.push_str(&String::from_utf8_lossy(group));
    }
    out
}

/// A ratio such as `"0.99x"` or `"96x"` (two decimals below 10, none above).
pub fn ratio(value: f64) -> String {
    if !value.is_finite() {
        "-".to_string()
    } else if value < 10.0 {
        format!("{value:.2}x")
    } else {
        format!("{value:.0}x")
    }
}

/// Three significant figures, no exponent.
fn significant(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A time as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_timestamp(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (year, month, day) = civil_date(seconds / 86_400);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01
/// (Howard Hinnant's days-to-civil algorithm).
fn civil_date(days_since_epoch: u64) -> (u64, u64, u64) {
    let z = days_since_epoch + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The machine's load averages over 1, 5 and 15 minutes, as
/// `/proc/loadavg` writes them (`"0.15 1.13 1.67"`).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// The first line of a tool's message, shortened for a table cell, with
/// `|` escaped so it cannot break the table.
pub fn first_line(message: &str) -> String {
    const LIMIT: usize = 140;
    let line = message
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("(no message)");
    let mut short: String = line.chars().take(LIMIT).collect();
    if line.chars().count() > LIMIT {
        short.push('…');
    }
    short.replace('|', "\\|")
}

/// CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`):
/// unlike wall time it leaves out the moments the (shared, busy) machine runs
/// something else, and wasmtime's async fibers switch stacks on this same
/// thread, so both sides of a comparison are measured alike. The benches' one
/// CPU clock; if the clock is missing (not expected on Linux) it falls back to
/// wall time since the first call.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through a valid pointer.
    let failed = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0;
    if failed {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        return START.get_or_init(std::time::Instant::now).elapsed();
    }
    Duration::from_secs(now.tv_sec.max(0) as u64) + Duration::from_nanos(now.tv_nsec.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn figures() {
        assert_eq!(thousands(1_049_906), "1,049,906");
        assert_eq!(thousands(317), "317");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(duration(Duration::from_micros(67_400)), "67.4 ms");
        assert_eq!(duration(Duration::from_secs_f64(6.414)), "6.41 s");
        assert_eq!(duration(Duration::from_secs(401)), "401 s");
        assert_eq!(memory(5_800_000_000), "5.80 GB");
        assert_eq!(memory(255_000_000), "255 MB");
        assert_eq!(ratio(0.9912), "0.99x");
        assert_eq!(ratio(96.4), "96x");
    }

    #[test]
    fn dates() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01 00:00 UTC");
        let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_661);
        assert_eq!(utc_timestamp(leap_day), "2000-02-29 01:01 UTC");
    }

    #[test]
    fn messages_fit_a_cell() {
        assert_eq!(first_line("\n  error: a | b\nmore"), "error: a \\| b");
    }
}
