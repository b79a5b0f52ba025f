//! Progress bars for long work (verifying a log, exporting, importing): drawn on standard error
//! only when it is a terminal, so scripts, pipes and logs see nothing of them.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over a known number of units (entries, bytes), or a counter while the total is not
/// known, hidden off a terminal. Finishing or dropping it clears it, so the result printed after
/// it stands alone.
pub struct Progress {
    bar: ProgressBar,
    what: String,
}

impl Progress {
    /// A bar for `total` units of `what` (e.g. "entries"), or a counter when the total is not
    /// known (a stream, an export whose length is not known yet); shown when stderr is a
    /// terminal.
    pub fn new(total: Option<u64>, what: &str) -> Progress {
        Progress::drawn(total, what, std::io::stderr().is_terminal())
    }

    /// A bar (with a total) or a counter, drawn on stderr when `shown`, else kept silently (it
    /// still counts).
    pub fn drawn(total: Option<u64>, what: &str, shown: bool) -> Progress {
        let target = if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let progress = Progress {
            bar: ProgressBar::with_draw_target(total, target),
            what: what.to_string(),
        };
        progress.style();
        progress
    }

    /// A bar's look with a total, a counter's without.
    fn style(&self) {
        let what = &self.what;
        let template = match self.bar.length() {
            Some(_) => format!(
                "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {what} \
                 ({{per_sec}}, {{eta}} left)"
            ),
            None => format!("{{spinner}} [{{elapsed_precise}}] {{human_pos}} {what} ({{per_sec}})"),
        };
        // The template is fixed text: it parses, and a failure would only lose the style.
        if let Ok(style) = ProgressStyle::with_template(&template) {
            self.bar.set_style(style);
        }
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
        let progress = Progress::drawn(Some(10), "entries", false);
        progress.advance(3);
        progress.advance(4);
        assert_eq!(progress.bar.position(), 7);
        assert!(progress.bar.is_hidden());
        progress.finish();
    }

    #[test]
    fn a_counter_without_a_total_counts_too() {
        let counter = Progress::drawn(None, "bytes", false);
        counter.advance(5);
        assert_eq!((counter.bar.position(), counter.bar.length()), (5, None));
    }
}
