//! Progress bars for long work (verifying a log, exporting, importing): drawn on standard error
//! only when it is a terminal, so scripts, pipes and logs see nothing of them.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over a known number of units (entries, bytes), hidden off a terminal. Finishing or
/// dropping it clears it, so the result printed after it stands alone.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `total` units of `what` (e.g. "entries"), shown when stderr is a terminal.
    pub fn new(total: u64, what: &str) -> Progress {
        Progress::drawn(total, what, std::io::stderr().is_terminal())
    }

    /// A bar drawn on stderr when `shown`, else kept silently (it still counts).
    pub fn drawn(total: u64, what: &str, shown: bool) -> Progress {
        let target = if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        // The template is fixed text: it parses, and a failure would only lose the style.
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {what} ({{per_sec}}, {{eta}} left)"
        )) {
            bar.set_style(style);
        }
        Progress { bar }
    }

    /// `units` more done.
    pub fn advance(&self, units: u64) {
        self.bar.inc(units);
    }

    /// Removes the bar from the terminal.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_bar_still_counts_what_is_done() {
        let progress = Progress::drawn(10, "entries", false);
        progress.advance(3);
        progress.advance(4);
        assert_eq!(progress.bar.position(), 7);
        assert!(progress.bar.is_hidden());
        progress.finish();
    }
}
