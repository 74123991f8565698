//! A single updating progress line on standard error, for long transforms.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use asyncify_transform::Progress;

/// Smaller modules finish too fast for a progress line to help.
const MIN_FUNCTIONS: usize = 2000;
/// Redraw at most this often; the first draw also waits this long, so fast
/// runs print nothing.
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);

/// `instrumenting: done/total functions`, redrawn in place with `\r`, shown
/// only when standard error is a terminal and the module is large.
pub struct ProgressLine {
    enabled: bool,
    next_draw: Instant,
    /// Width of the line on screen, 0 when nothing is shown.
    width: usize,
}

impl ProgressLine {
    /// A progress line that has not drawn anything yet.
    pub fn new() -> Self {
        ProgressLine {
            enabled: std::io::stderr().is_terminal(),
            next_draw: Instant::now() + REDRAW_INTERVAL,
            width: 0,
        }
    }

    /// Records progress, redrawing the line if it is due.
    pub fn update(&mut self, progress: Progress) {
        if !self.enabled || progress.total < MIN_FUNCTIONS {
            return;
        }
        let now = Instant::now();
        if now < self.next_draw {
            return;
        }
        self.next_draw = now + REDRAW_INTERVAL;
        let line = format!(
            "instrumenting: {}/{} functions",
            progress.done, progress.total
        );
        // Pad over any longer previous line.
        eprint!("\r{line:<width$}", width = self.width);
        self.width = self.width.max(line.len());
    }

    /// Erases the line, if shown, so that later messages start on a clean line.
    pub fn finish(&mut self) {
        if self.width > 0 {
            eprint!("\r{:width$}\r", "", width = self.width);
            self.width = 0;
        }
    }
}
