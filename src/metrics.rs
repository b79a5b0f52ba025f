//! Operational counters, exposed in the Prometheus text format at `/metrics`, and the signal that
//! tells live subscribers the published log has grown.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Shared by the writer (which counts and signals) and the HTTP layer (which reads).
pub struct Observers {
    /// The published log size; SSE streams wake when it changes.
    pub published_size: tokio::sync::watch::Sender<u64>,
    pub entries_appended: AtomicU64,
    pub batches_committed: AtomicU64,
    pub batch_failures: AtomicU64,
    pub commands_refused: AtomicU64,
    pub append_microseconds: AtomicU64,
    pub signature_checks: AtomicU64,
    pub signature_check_microseconds: AtomicU64,
    pub entries_followed: AtomicU64,
    pub live_subscribers: AtomicU64,
    /// Batch sizes, counted into buckets of at most 1, 2, 4, … 2048 entries.
    pub batch_size_buckets: [AtomicU64; 12],
    /// The first state the code holds impossible (a poisoned lock, a view that cannot be
    /// written): once set, readiness fails and writes are refused until the node restarts.
    fault: std::sync::OnceLock<String>,
    /// Server-clock milliseconds of the last append the store refused and of the last it took
    /// (`i64::MIN` before any): readiness reports the store failing while the refusal is the
    /// newer and recent.
    last_write_refused_ms: AtomicI64,
    last_write_taken_ms: AtomicI64,
}

impl Observers {
    pub fn new(published_size: u64) -> Observers {
        Observers {
            published_size: tokio::sync::watch::Sender::new(published_size),
            entries_appended: AtomicU64::new(0),
            batches_committed: AtomicU64::new(0),
            batch_failures: AtomicU64::new(0),
            commands_refused: AtomicU64::new(0),
            append_microseconds: AtomicU64::new(0),
            signature_checks: AtomicU64::new(0),
            signature_check_microseconds: AtomicU64::new(0),
            entries_followed: AtomicU64::new(0),
            live_subscribers: AtomicU64::new(0),
            batch_size_buckets: Default::default(),
            fault: std::sync::OnceLock::new(),
            last_write_refused_ms: AtomicI64::new(i64::MIN),
            last_write_taken_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// Records the outcome of one append to the store, at server time `now_ms`.
    pub fn record_store_write(&self, taken: bool, now_ms: i64) {
        let slot = if taken {
            &self.last_write_taken_ms
        } else {
            &self.last_write_refused_ms
        };
        slot.fetch_max(now_ms, Ordering::Relaxed);
    }

    /// Whether the store refused the last append within `hold_ms` before `now_ms`, with none
    /// taken since. The hold ends on its own so that a load balancer sends traffic again and the
    /// next write tells whether the store is back.
    pub fn store_writes_failing(&self, now_ms: i64, hold_ms: i64) -> bool {
        let refused = self.last_write_refused_ms.load(Ordering::Relaxed);
        let taken = self.last_write_taken_ms.load(Ordering::Relaxed);
        refused > taken && now_ms.saturating_sub(refused) < hold_ms
    }

    /// Records an impossible state. Logged once, at the first occurrence; every later one only
    /// confirms that the node is out of service.
    pub fn record_fault(&self, what: &str) {
        if self.fault.set(what.to_string()).is_ok() {
            tracing::error!(
                fault = what,
                "an impossible state: this node is no longer ready and refuses writes"
            );
        }
    }

    /// The first impossible state met, if any.
    pub fn fault(&self) -> Option<&str> {
        self.fault.get().map(String::as_str)
    }

    pub fn count(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    pub fn record_batch(&self, entries: usize, append_microseconds: u64) {
        Self::count(&self.batches_committed, 1);
        Self::count(&self.entries_appended, entries as u64);
        Self::count(&self.append_microseconds, append_microseconds);
        let bucket = (usize::BITS - entries.saturating_sub(1).leading_zeros()) as usize;
        Self::count(&self.batch_size_buckets[bucket.min(11)], 1);
    }

    /// The Prometheus text exposition, given the published and stored sizes for the lag gauge.
    pub fn render(&self, published_size: u64, stored_size: Option<u64>) -> String {
        let mut text = String::new();
        let counters = self.counters();
        for (name, help, value) in counters {
            let value = value.load(Ordering::Relaxed);
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "veche_live_subscribers",
            "Open Server-Sent Events streams.",
            self.live_subscribers.load(Ordering::Relaxed),
        );
        gauge(
            "veche_log_size",
            "Entries in the published log.",
            published_size,
        );
        if let Some(stored) = stored_size {
            gauge(
                "veche_projection_lag_entries",
                "Stored entries not yet folded into this node's projections.",
                stored.saturating_sub(published_size),
            );
        }
        self.render_batch_histogram(&mut text);
        render_process(&mut text);
        text
    }

    /// Every counter, as name, help text and value.
    fn counters(&self) -> [(&'static str, &'static str, &AtomicU64); 8] {
        [
            (
                "veche_entries_appended_total",
                "Entries this node appended to the log.",
                &self.entries_appended,
            ),
            (
                "veche_batches_committed_total",
                "Group commits (one transaction each).",
                &self.batches_committed,
            ),
            (
                "veche_batch_failures_total",
                "Group commits the store refused.",
                &self.batch_failures,
            ),
            (
                "veche_commands_refused_total",
                "Signed commands refused by the rules.",
                &self.commands_refused,
            ),
            (
                "veche_append_microseconds_total",
                "Time spent in store appends.",
                &self.append_microseconds,
            ),
            (
                "veche_signature_checks_total",
                "Command signatures checked.",
                &self.signature_checks,
            ),
            (
                "veche_signature_check_microseconds_total",
                "Time spent checking command signatures.",
                &self.signature_check_microseconds,
            ),
            (
                "veche_entries_followed_total",
                "Entries folded in from other nodes.",
                &self.entries_followed,
            ),
        ]
    }

    fn render_batch_histogram(&self, text: &mut String) {
        let _ = writeln!(text, "# HELP veche_batch_entries Entries per group commit.\n# TYPE veche_batch_entries histogram");
        let mut cumulative = 0;
        for (bucket, count) in self.batch_size_buckets.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                text,
                "veche_batch_entries_bucket{{le=\"{}\"}} {cumulative}",
                1u64 << bucket
            );
        }
        let _ = writeln!(
            text,
            "veche_batch_entries_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            text,
            "veche_batch_entries_sum {}",
            self.entries_appended.load(Ordering::Relaxed)
        );
        let _ = writeln!(text, "veche_batch_entries_count {cumulative}");
    }
}

/// The process collector's standard series: CPU seconds (user and system) and resident memory,
/// and the peak resident memory, so a load test can divide the server's own CPU by the commands
/// it acknowledged. Where /proc cannot be read, a comment line says why instead.
#[cfg(target_os = "linux")]
fn render_process(text: &mut String) {
    let figures = match process_figures() {
        Ok(figures) => figures,
        Err(error) => {
            let _ = writeln!(text, "# process metrics unavailable: {error}");
            return;
        }
    };
    let series = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            Some(figures.cpu_seconds),
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            Some(figures.resident_bytes as f64),
        ),
        (
            "veche_process_resident_memory_peak_bytes",
            "gauge",
            "The largest resident memory size so far, in bytes.",
            figures.peak_bytes.map(|bytes| bytes as f64),
        ),
    ];
    for (name, kind, help, value) in series {
        if let Some(value) = value {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
    }
    render_cpu_split(text, &figures);
}

/// The process's CPU split into user and kernel time, and by thread group, so a profile of
/// where a command's CPU goes can be read off two scrapes: what the signature threads, the
/// writer and the HTTP workers each spent, and how much of it the kernel spent for them.
#[cfg(target_os = "linux")]
fn render_cpu_split(text: &mut String, figures: &ProcessFigures) {
    let _ = writeln!(
        text,
        "# HELP veche_process_cpu_mode_seconds_total CPU time spent in seconds, by mode.\n\
         # TYPE veche_process_cpu_mode_seconds_total counter\n\
         veche_process_cpu_mode_seconds_total{{mode=\"user\"}} {}\n\
         veche_process_cpu_mode_seconds_total{{mode=\"system\"}} {}",
        figures.user_seconds, figures.system_seconds
    );
    let _ = writeln!(
        text,
        "# HELP veche_thread_cpu_seconds_total CPU time of living threads in seconds, by thread \
         group and mode.\n# TYPE veche_thread_cpu_seconds_total counter"
    );
    for ((group, mode), seconds) in &figures.by_thread_group {
        let _ = writeln!(
            text,
            "veche_thread_cpu_seconds_total{{group=\"{group}\",mode=\"{mode}\"}} {seconds}"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn render_process(text: &mut String) {
    let _ = writeln!(
        text,
        "# process metrics unavailable: /proc exists on Linux only"
    );
}

#[cfg(target_os = "linux")]
struct ProcessFigures {
    cpu_seconds: f64,
    user_seconds: f64,
    system_seconds: f64,
    /// CPU seconds of the living threads by (group, mode), in a stable order.
    by_thread_group: std::collections::BTreeMap<(&'static str, &'static str), f64>,
    resident_bytes: u64,
    /// `VmHWM`, absent from kernels that do not report it.
    peak_bytes: Option<u64>,
}

/// This process's CPU time and memory, from /proc/self.
#[cfg(target_os = "linux")]
fn process_figures() -> procfs::ProcResult<ProcessFigures> {
    let myself = procfs::process::Process::myself()?;
    let stat = myself.stat()?;
    let ticks = procfs::ticks_per_second() as f64;
    Ok(ProcessFigures {
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        user_seconds: stat.utime as f64 / ticks,
        system_seconds: stat.stime as f64 / ticks,
        by_thread_group: thread_groups(&myself, ticks),
        resident_bytes: stat.rss.saturating_mul(procfs::page_size()),
        peak_bytes: myself
            .status()?
            .vmhwm
            .map(|kibibytes| kibibytes.saturating_mul(1024)),
    })
}

/// Sums each living thread's CPU by the group its name puts it in. A thread that ends between
/// the listing and its read is skipped: its time is in the process's totals still.
#[cfg(target_os = "linux")]
fn thread_groups(
    myself: &procfs::process::Process,
    ticks: f64,
) -> std::collections::BTreeMap<(&'static str, &'static str), f64> {
    let mut groups = std::collections::BTreeMap::new();
    let Ok(tasks) = myself.tasks() else {
        return groups;
    };
    for stat in tasks.flatten().filter_map(|task| task.stat().ok()) {
        let group = thread_group(&stat.comm);
        *groups.entry((group, "user")).or_insert(0.0) += stat.utime as f64 / ticks;
        *groups.entry((group, "system")).or_insert(0.0) += stat.stime as f64 / ticks;
    }
    groups
}

/// The group a thread's name (at most 15 bytes, as the kernel keeps it) puts it in: the node
/// names its own threads `veche-…`; the others are the web server's and the async runtime's,
/// which serve HTTP.
fn thread_group(name: &str) -> &'static str {
    if name.starts_with("veche-signature") {
        "signatures"
    } else if name.starts_with("veche-writer") {
        "writer"
    } else if name.starts_with("veche-") {
        "other"
    } else {
        "http"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the series `name` in a text exposition.
    fn value_of(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|value| value.parse().ok())
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_exposition_carries_the_process_cpu_time_and_memory_under_their_standard_names() {
        let observers = Observers::new(0);
        let before = value_of(&observers.render(0, None), "process_cpu_seconds_total").unwrap();
        // Burn CPU until the counter (in clock ticks) moves; seconds of it would be a fault.
        let started = std::time::Instant::now();
        let spinning = "veche_thread_cpu_seconds_total{group=\"http\",mode=\"user\"}";
        let (mut spin, mut after, mut text) = (0u64, before, String::new());
        // This thread's own ticks may lag the process's by one: spin until both have moved.
        while (after <= before || value_of(&text, spinning).unwrap_or(0.0) == 0.0)
            && started.elapsed() < std::time::Duration::from_secs(10)
        {
            for _ in 0..1_000_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
            text = observers.render(0, None);
            after = value_of(&text, "process_cpu_seconds_total").unwrap();
        }
        assert!(after > before, "{before} then {after}");
        let resident = value_of(&text, "process_resident_memory_bytes").unwrap();
        let peak = value_of(&text, "veche_process_resident_memory_peak_bytes").unwrap();
        assert!(
            resident > 1_000_000.0 && peak >= resident,
            "{resident} {peak}"
        );
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter"),
            "{text}"
        );
        let user = value_of(&text, "veche_process_cpu_mode_seconds_total{mode=\"user\"}").unwrap();
        let system = value_of(
            &text,
            "veche_process_cpu_mode_seconds_total{mode=\"system\"}",
        )
        .unwrap();
        assert!(
            (user + system - after).abs() < 1e-6,
            "{user} + {system} ≠ {after}"
        );
        // The test's thread bears no name of the node's, so it counts with the web server's.
        let spun = value_of(&text, spinning).unwrap();
        assert!(spun > 0.0, "this test's own thread spun: {text}");
    }

    #[test]
    fn threads_are_grouped_by_the_names_the_node_gives_them() {
        assert_eq!(thread_group("veche-signature"), "signatures");
        assert_eq!(thread_group("veche-writer"), "writer");
        assert_eq!(thread_group("veche-snapshot"), "other");
        assert_eq!(thread_group("tokio-runtime-w"), "http");
    }
}
