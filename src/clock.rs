//! The clock behind a trait, so tests drive deadlines and poll closes without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

use projections::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The machine's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(chrono::Utc::now().timestamp_millis())
    }
}

/// A clock that moves only when told: the in-memory twin for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    milliseconds: AtomicI64,
}

impl ManualClock {
    pub fn starting_at(moment: Timestamp) -> ManualClock {
        ManualClock {
            milliseconds: AtomicI64::new(moment.0),
        }
    }

    pub fn advance_milliseconds(&self, milliseconds: i64) {
        self.milliseconds.fetch_add(milliseconds, Ordering::SeqCst);
    }

    pub fn set(&self, moment: Timestamp) {
        self.milliseconds.store(moment.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.milliseconds.load(Ordering::SeqCst))
    }
}
