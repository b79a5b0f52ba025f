//! Cross-node coordination: Redis for live fan-out of new positions, early replay refusal and
//! shared rate limits, with an in-process fallback.
//!
//! Invariant: Redis is never the source of truth. Every call here fails open: when Redis does not
//! answer within `REDIS_RESPONSE_MS_MAX`, a command is decided by the log alone (which still
//! refuses replays), rate limits fall back to this node's own counters, and live updates fall
//! back to the writer's periodic following of the log.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::StateStore;
use governor::{Quota, RateLimiter};
use projections::limits;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use crate::clock::Clock;

/// The channel on which nodes announce the log size after each commit.
pub const LOG_CHANNEL: &str = "veche:log";

/// Whether a bucket may take one more request.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Limited { retry_after_seconds: u64 },
}

/// The rate limits veche enforces: each has its own allowance and its own subjects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// Write requests of one client address per minute (configurable, 0 turns it off).
    AddressPerMinute,
    /// Signed commands of one key per minute.
    KeyPerMinute,
    /// Complaints one resident (their tag, or else their key) may file per day.
    ComplaintsPerResidentPerDay,
    /// Keys one client address may register per hour (configurable, 0 turns it off).
    RegistrationsPerAddressPerHour,
}

impl RateLimit {
    /// The name that starts this limit's shared Redis buckets.
    fn bucket_prefix(self) -> &'static str {
        match self {
            RateLimit::AddressPerMinute => "address",
            RateLimit::KeyPerMinute => "key",
            RateLimit::ComplaintsPerResidentPerDay => "complaints",
            RateLimit::RegistrationsPerAddressPerHour => "registrations",
        }
    }

    fn window_seconds(self) -> u64 {
        match self {
            RateLimit::AddressPerMinute | RateLimit::KeyPerMinute => 60,
            RateLimit::ComplaintsPerResidentPerDay => 24 * 60 * 60,
            RateLimit::RegistrationsPerAddressPerHour => 60 * 60,
        }
    }
}

/// veche's clock as the limiter's: tests that move the manual clock move the limits with it.
struct LimiterClock(Arc<dyn Clock>);

impl governor::clock::Clock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.0.now().milliseconds()).unwrap_or(0))
    }
}

/// The limiter's table of subjects, shared so that the limiter can tell a tracked subject from
/// a new one when the table is full.
#[derive(Clone, Default)]
struct SubjectTable(Arc<DashMapStateStore<String>>);

impl StateStore for SubjectTable {
    type Key = String;

    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<String> for SubjectTable {
    fn retain_recent(&self, drop_below: Nanos) {
        self.0.retain_recent(drop_below);
    }

    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0);
    }

    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&*self.0)
    }

    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&*self.0)
    }
}

/// One allowance per subject (GCRA, from `governor`), kept in this process. Used without Redis
/// or when it does not answer.
///
/// Memory is bounded by `RATE_LIMITED_SUBJECTS_MAX`: when the table is full, subjects back at
/// their full allowance are forgotten (forgetting them changes nothing); if none is, a new
/// subject waits until one is, and every tracked subject keeps its count. A flood of fresh keys
/// therefore never resets an established key's limit.
pub struct LocalLimiter {
    limiter: RateLimiter<String, SubjectTable, LimiterClock, NoOpMiddleware<Duration>>,
    subjects: SubjectTable,
    clock: Arc<dyn Clock>,
    subjects_max: usize,
}

impl LocalLimiter {
    /// Allows `allowance` requests per subject per `window_seconds`, in a burst or spread out.
    pub fn new(
        allowance: u32,
        window_seconds: u64,
        clock: Arc<dyn Clock>,
        subjects_max: usize,
    ) -> LocalLimiter {
        let allowance = NonZeroU32::new(allowance).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs(window_seconds) / allowance.get();
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(allowance))
            .allow_burst(allowance);
        let subjects = SubjectTable::default();
        LocalLimiter {
            limiter: RateLimiter::new(quota, subjects.clone(), LimiterClock(clock.clone())),
            subjects,
            clock,
            subjects_max,
        }
    }

    /// Counts one request of `subject`.
    pub fn admit(&self, subject: &str) -> Admission {
        if self.limiter.len() >= self.subjects_max && !self.subjects.0.contains_key(subject) {
            self.limiter.retain_recent();
            if self.limiter.len() >= self.subjects_max {
                return Admission::Limited {
                    retry_after_seconds: 1,
                };
            }
        }
        match self.limiter.check_key(&subject.to_string()) {
            Ok(()) => Admission::Allowed,
            Err(not_until) => {
                let now = LimiterClock(self.clock.clone()).now_instant();
                let wait = not_until.wait_time_from(now);
                Admission::Limited {
                    retry_after_seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
                }
            }
        }
    }

    /// Subjects tracked now.
    pub fn tracked_subjects(&self) -> usize {
        self.limiter.len()
    }
}

impl LimiterClock {
    fn now_instant(&self) -> Duration {
        governor::clock::Clock::now(self)
    }
}

pub struct Coordination {
    client: redis::Client,
    connection: ConnectionManager,
}

impl Coordination {
    /// Prepares a lazy connection: nothing is contacted until first use, so a node starts even
    /// while Redis is down. Must be called inside the async runtime.
    pub fn connect(url: &str) -> Result<Coordination, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let timeout = Duration::from_millis(limits::REDIS_RESPONSE_MS_MAX);
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Coordination { client, connection })
    }

    async fn bounded<T>(
        &self,
        future: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        let timeout = Duration::from_millis(limits::REDIS_RESPONSE_MS_MAX);
        match tokio::time::timeout(timeout, future).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                tracing::debug!(%error, "redis did not answer; carrying on without it");
                None
            }
            Err(_) => {
                tracing::debug!("redis timed out; carrying on without it");
                None
            }
        }
    }

    /// Records a command nonce; `Some(false)` when another node saw it first (a replay), `None`
    /// when Redis could not tell.
    pub async fn claim_nonce(&self, author: &str, nonce: &str) -> Option<bool> {
        let mut connection = self.connection.clone();
        let key = format!("veche:nonce:{author}:{nonce}");
        let ttl_ms = (limits::COMMAND_AGE_MS_MAX + limits::COMMAND_FUTURE_MS_MAX) as u64;
        let options = redis::SetOptions::default()
            .conditional_set(redis::ExistenceCheck::NX)
            .with_expiration(redis::SetExpiry::PX(ttl_ms));
        let set: Option<Option<String>> =
            self.bounded(connection.set_options(&key, 1, options)).await;
        set.map(|reply| reply.is_some())
    }

    /// Forgets a nonce whose command was not appended for a reason that was not the command's
    /// fault (overload, store unavailable), so the client may send the same envelope again.
    pub async fn release_nonce(&self, author: &str, nonce: &str) {
        let mut connection = self.connection.clone();
        let key = format!("veche:nonce:{author}:{nonce}");
        let _: Option<u64> = self.bounded(connection.del(&key)).await;
    }

    /// Counts one request in a shared fixed window; `None` when Redis could not tell.
    async fn admit(&self, key: &str, limit: u64, window_seconds: u64) -> Option<Admission> {
        let mut connection = self.connection.clone();
        let key = format!("veche:rate:{key}");
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .incr(&key, 1u64)
            .expire(&key, window_seconds as i64)
            .ignore();
        let (count,): (u64,) = self.bounded(pipeline.query_async(&mut connection)).await?;
        Some(if count > limit {
            Admission::Limited {
                retry_after_seconds: window_seconds,
            }
        } else {
            Admission::Allowed
        })
    }

    /// Announces the published log size to the other nodes.
    pub async fn announce(&self, size: u64) {
        let mut connection = self.connection.clone();
        let _: Option<u64> = self.bounded(connection.publish(LOG_CHANNEL, size)).await;
    }

    /// Subscribes to other nodes' announcements and calls `on_size` for each, reconnecting
    /// after Redis comes back. Runs until the returned task is dropped with the runtime.
    pub fn spawn_listener(&self, on_size: impl Fn(u64) + Send + 'static) {
        let client = self.client.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => {
                        if pubsub.subscribe(LOG_CHANNEL).await.is_ok() {
                            tracing::info!("listening for other nodes' appends on redis");
                            let mut messages = pubsub.on_message();
                            while let Some(message) = messages.next().await {
                                if let Ok(size) = message.get_payload::<u64>() {
                                    on_size(size);
                                }
                            }
                        }
                        tracing::warn!(
                            "lost the redis subscription; following the log until it returns"
                        );
                    }
                    Err(error) => {
                        tracing::debug!(%error, "redis unavailable for live fan-out; will retry")
                    }
                }
                tokio::time::sleep(Duration::from_millis(limits::REDIS_RECONNECT_INTERVAL_MS))
                    .await;
            }
        });
    }
}

/// Rate limits: shared through Redis when configured and answering, else per node.
pub struct RateLimits {
    /// Set once at start when `--redis` is given.
    pub redis: std::sync::OnceLock<Arc<Coordination>>,
    /// Write requests one client address may send per minute; 0 turns the limit off (for a
    /// node behind a proxy that hides client addresses, or for a load test from one machine).
    /// Read once, by the first write request: set it before serving.
    pub per_address_per_minute: std::sync::atomic::AtomicU64,
    per_address: std::sync::OnceLock<Option<LocalLimiter>>,
    /// Keys one client address may register per hour; 0 turns the limit off. Read once, like
    /// `per_address_per_minute`.
    pub registrations_per_address_per_hour: std::sync::atomic::AtomicU64,
    registrations_per_address: std::sync::OnceLock<Option<LocalLimiter>>,
    per_key: LocalLimiter,
    complaints_per_resident: LocalLimiter,
    clock: Arc<dyn Clock>,
}

impl RateLimits {
    /// Limits timed by `clock`, with the default per-address allowance.
    pub fn new(clock: Arc<dyn Clock>) -> RateLimits {
        let per_day = RateLimit::ComplaintsPerResidentPerDay.window_seconds();
        RateLimits {
            redis: std::sync::OnceLock::new(),
            per_address_per_minute: std::sync::atomic::AtomicU64::new(
                limits::COMMANDS_PER_ADDRESS_PER_MINUTE_MAX,
            ),
            per_address: std::sync::OnceLock::new(),
            registrations_per_address_per_hour: std::sync::atomic::AtomicU64::new(
                limits::REGISTRATIONS_PER_ADDRESS_PER_HOUR_MAX,
            ),
            registrations_per_address: std::sync::OnceLock::new(),
            per_key: local_limiter(limits::COMMANDS_PER_KEY_PER_MINUTE_MAX, 60, &clock),
            complaints_per_resident: local_limiter(
                limits::COMPLAINTS_PER_RESIDENT_PER_DAY_MAX,
                per_day,
                &clock,
            ),
            clock,
        }
    }

    /// The allowance of `limit` per window; 0 when it is off.
    fn allowance(&self, limit: RateLimit) -> u64 {
        match limit {
            RateLimit::AddressPerMinute => self
                .per_address_per_minute
                .load(std::sync::atomic::Ordering::Relaxed),
            RateLimit::KeyPerMinute => limits::COMMANDS_PER_KEY_PER_MINUTE_MAX,
            RateLimit::ComplaintsPerResidentPerDay => limits::COMPLAINTS_PER_RESIDENT_PER_DAY_MAX,
            RateLimit::RegistrationsPerAddressPerHour => self
                .registrations_per_address_per_hour
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn local(&self, limit: RateLimit) -> Option<&LocalLimiter> {
        match limit {
            RateLimit::AddressPerMinute => self
                .per_address
                .get_or_init(|| {
                    let allowance = self.allowance(limit);
                    (allowance > 0).then(|| local_limiter(allowance, 60, &self.clock))
                })
                .as_ref(),
            RateLimit::KeyPerMinute => Some(&self.per_key),
            RateLimit::ComplaintsPerResidentPerDay => Some(&self.complaints_per_resident),
            RateLimit::RegistrationsPerAddressPerHour => self
                .registrations_per_address
                .get_or_init(|| {
                    let allowance = self.allowance(limit);
                    let window_seconds = limit.window_seconds();
                    (allowance > 0).then(|| local_limiter(allowance, window_seconds, &self.clock))
                })
                .as_ref(),
        }
    }

    /// Counts one request of `subject` (a key or an address) against `limit`.
    pub async fn admit(&self, limit: RateLimit, subject: &str) -> Admission {
        let allowance = self.allowance(limit);
        if allowance == 0 {
            return Admission::Allowed;
        }
        if let Some(redis) = self.redis.get() {
            // Redis keeps fixed windows: the window's index is part of the bucket's name.
            let window_seconds = limit.window_seconds();
            let window = self
                .clock
                .now()
                .milliseconds()
                .div_euclid(window_seconds as i64 * 1_000);
            let bucket = format!("{}:{subject}:{window}", limit.bucket_prefix());
            if let Some(admission) = redis.admit(&bucket, allowance, window_seconds).await {
                return admission;
            }
        }
        match self.local(limit) {
            Some(local) => local.admit(subject),
            None => Admission::Allowed,
        }
    }
}

fn local_limiter(allowance: u64, window_seconds: u64, clock: &Arc<dyn Clock>) -> LocalLimiter {
    LocalLimiter::new(
        u32::try_from(allowance).unwrap_or(u32::MAX),
        window_seconds,
        clock.clone(),
        limits::RATE_LIMITED_SUBJECTS_MAX,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use projections::Timestamp;

    #[test]
    fn a_flood_of_fresh_keys_does_not_reset_an_established_keys_limit() {
        let clock = Arc::new(ManualClock::starting_at(Timestamp(1_795_428_000_000)));
        let limiter = LocalLimiter::new(3, 60, clock.clone(), 100);
        for _ in 0..3 {
            assert_eq!(limiter.admit("established"), Admission::Allowed);
        }
        assert!(matches!(
            limiter.admit("established"),
            Admission::Limited { .. }
        ));
        for index in 0..10_000 {
            let _ = limiter.admit(&format!("fresh-{index}"));
        }
        assert!(limiter.tracked_subjects() <= 100, "memory stays bounded");
        assert!(
            matches!(limiter.admit("established"), Admission::Limited { .. }),
            "the flood did not give the established key a new allowance"
        );
        clock.advance_milliseconds(60_000);
        assert_eq!(limiter.admit("established"), Admission::Allowed);
    }

    #[test]
    fn a_limited_subject_is_told_when_its_next_request_fits() {
        let clock = Arc::new(ManualClock::starting_at(Timestamp(1_795_428_000_000)));
        let limiter = LocalLimiter::new(20, 24 * 60 * 60, clock.clone(), 100);
        for _ in 0..20 {
            assert_eq!(limiter.admit("author"), Admission::Allowed);
        }
        assert_eq!(
            limiter.admit("author"),
            Admission::Limited {
                retry_after_seconds: 24 * 60 * 60 / 20
            }
        );
    }
}
