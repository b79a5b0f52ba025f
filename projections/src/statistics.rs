//! Complaint statistics: counts, rates, resolution times and SLA shares, overall and by district,
//! category, department and month of filing.
//!
//! Definitions (also in `docs/STATISTICS.md`):
//! - `filed`: every complaint; `filed_through_gateway`: those of them a gateway filed for a
//!   resident without a key (Open311 `POST requests`), counted apart and also in `filed`;
//!   `accepted` ("recognised"): ever accepted by a moderator;
//! - `resolved`: a resolution stands now — confirmed, closed unconfirmed, or awaiting the author;
//!   it therefore *includes unconfirmed* resolutions, and every rate built on it says so;
//! - `confirmed`: the author confirmed the fix; `disputed`: disputed at least once;
//!   `reopened`: disputes in all; `sla_breached`: the deadline passed before a resolution;
//! - time to resolution: filing to the standing resolution, in hours; median and 90th percentile
//!   by nearest rank; `resolved_within_sla`: resolutions at or before the deadline.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::complaints::{Complaint, ComplaintStatus};
use crate::ledger::Ledger;

const HOUR_MS: f64 = 3_600_000.0;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ComplaintStatistics {
    pub filed: u64,
    /// Of `filed`, those a gateway filed on a resident's behalf (`through_gateway`).
    pub filed_through_gateway: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub merged: u64,
    /// Filed or waiting for the author's details: not yet triaged.
    pub awaiting_triage: u64,
    /// Accepted or in progress: a department owes work.
    pub awaiting_department: u64,
    pub resolved: u64,
    pub awaiting_confirmation: u64,
    pub confirmed: u64,
    pub closed_unconfirmed: u64,
    pub cannot_resolve: u64,
    pub disputed: u64,
    pub reopened: u64,
    pub sla_breached: u64,
    pub resolved_within_sla: u64,
    /// accepted / filed.
    pub accepted_per_filed: Option<f64>,
    /// resolved / accepted, counting resolutions the author has not confirmed.
    pub resolved_per_accepted_including_unconfirmed: Option<f64>,
    /// confirmed / accepted: only fixes the author confirmed.
    pub confirmed_per_accepted: Option<f64>,
    /// resolved_within_sla / resolved.
    pub resolved_within_sla_share: Option<f64>,
    pub resolution_hours_median: Option<f64>,
    pub resolution_hours_p90: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatisticsReport {
    pub overall: ComplaintStatistics,
    pub by_district: BTreeMap<String, ComplaintStatistics>,
    pub by_category: BTreeMap<String, ComplaintStatistics>,
    pub by_department: BTreeMap<String, ComplaintStatistics>,
    /// By UTC month of filing, `YYYY-MM`.
    pub by_month: BTreeMap<String, ComplaintStatistics>,
}

/// The department a complaint counts under before it is routed.
pub const UNROUTED: &str = "unrouted";

/// Accumulates one group's counts and resolution times.
#[derive(Default)]
struct Tally {
    statistics: ComplaintStatistics,
    resolution_ms: Vec<i64>,
}

impl Tally {
    fn add(&mut self, complaint: &Complaint) {
        let counts = &mut self.statistics;
        counts.filed += 1;
        if complaint.filing.through_gateway {
            counts.filed_through_gateway += 1;
        }
        if complaint.accepted_at.is_some() {
            counts.accepted += 1;
        }
        match complaint.status {
            ComplaintStatus::Filed | ComplaintStatus::NeedsInfo => counts.awaiting_triage += 1,
            ComplaintStatus::Accepted | ComplaintStatus::InProgress => {
                counts.awaiting_department += 1
            }
            ComplaintStatus::Resolved => counts.awaiting_confirmation += 1,
            ComplaintStatus::Confirmed => counts.confirmed += 1,
            ComplaintStatus::ClosedUnconfirmed => counts.closed_unconfirmed += 1,
            ComplaintStatus::CannotResolve => counts.cannot_resolve += 1,
            ComplaintStatus::Rejected => counts.rejected += 1,
            ComplaintStatus::Merged => counts.merged += 1,
        }
        if complaint.disputes > 0 {
            counts.disputed += 1;
        }
        counts.reopened += u64::from(complaint.disputes);
        if complaint.sla_breached {
            counts.sla_breached += 1;
        }
        if complaint.status.is_resolved() {
            counts.resolved += 1;
            if let Some(resolved_at) = complaint.resolved_at {
                self.resolution_ms
                    .push(resolved_at.0 - complaint.filed_at.0);
                if complaint
                    .deadline
                    .is_some_and(|deadline| resolved_at <= deadline)
                {
                    counts.resolved_within_sla += 1;
                }
            }
        }
    }

    fn finish(mut self) -> ComplaintStatistics {
        let mut counts = self.statistics;
        counts.accepted_per_filed = ratio(counts.accepted, counts.filed);
        counts.resolved_per_accepted_including_unconfirmed =
            ratio(counts.resolved, counts.accepted);
        counts.confirmed_per_accepted = ratio(counts.confirmed, counts.accepted);
        counts.resolved_within_sla_share = ratio(counts.resolved_within_sla, counts.resolved);
        self.resolution_ms.sort_unstable();
        counts.resolution_hours_median = nearest_rank(&self.resolution_ms, 50);
        counts.resolution_hours_p90 = nearest_rank(&self.resolution_ms, 90);
        counts
    }
}

pub fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The nearest-rank percentile of sorted durations, in hours.
pub fn nearest_rank(sorted_ms: &[i64], percent: usize) -> Option<f64> {
    if sorted_ms.is_empty() {
        return None;
    }
    let rank = (percent * sorted_ms.len()).div_ceil(100).max(1);
    Some(sorted_ms[rank - 1] as f64 / HOUR_MS)
}

/// Every statistic of every group, recomputed from the ledger.
pub fn complaint_statistics(ledger: &Ledger) -> StatisticsReport {
    let mut overall = Tally::default();
    let mut by_district: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_category: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_department: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_month: BTreeMap<String, Tally> = BTreeMap::new();
    for complaint in ledger.complaints.values() {
        overall.add(complaint);
        by_district
            .entry(complaint.filing.location.district.clone())
            .or_default()
            .add(complaint);
        by_category
            .entry(complaint.filing.category.clone())
            .or_default()
            .add(complaint);
        let department = complaint
            .department
            .clone()
            .unwrap_or_else(|| UNROUTED.to_string());
        by_department.entry(department).or_default().add(complaint);
        by_month
            .entry(complaint.filed_at.month())
            .or_default()
            .add(complaint);
    }
    let finish = |groups: BTreeMap<String, Tally>| {
        groups
            .into_iter()
            .map(|(key, tally)| (key, tally.finish()))
            .collect()
    };
    StatisticsReport {
        overall: overall.finish(),
        by_district: finish(by_district),
        by_category: finish(by_category),
        by_department: finish(by_department),
        by_month: finish(by_month),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let hours: Vec<i64> = (1..=10).map(|hour| hour * 3_600_000).collect();
        assert_eq!(nearest_rank(&hours, 50), Some(5.0));
        assert_eq!(nearest_rank(&hours, 90), Some(9.0));
        assert_eq!(nearest_rank(&hours[..1], 90), Some(1.0));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    #[test]
    fn a_rate_over_nothing_is_absent_not_zero() {
        assert_eq!(ratio(0, 0), None);
        assert_eq!(ratio(1, 4), Some(0.25));
    }
}
