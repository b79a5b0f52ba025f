//! Counting in a fold: a count of events in a log cannot pass `u64::MAX`, and a count only falls
//! by what was counted before, so either failing is a fold bug, stated as such.

/// One more.
pub(crate) fn increment(count: u64, what: &str) -> u64 {
    match count.checked_add(1) {
        Some(next) => next,
        None => unreachable!("{what} overflowed u64"),
    }
}

/// One less, of something counted before.
pub(crate) fn decrement(count: u64, what: &str) -> u64 {
    match count.checked_sub(1) {
        Some(next) => next,
        None => unreachable!("{what} fell below zero: it was never counted"),
    }
}

/// `amount` more.
pub(crate) fn add(count: u64, amount: u64, what: &str) -> u64 {
    match count.checked_add(amount) {
        Some(next) => next,
        None => unreachable!("{what} overflowed u64"),
    }
}
