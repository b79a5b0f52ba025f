//! Cross-node coordination: Redis for live fan-out of new positions, early replay refusal and
//! shared rate limits, with an in-process fallback.
//!
//! Invariant: Redis is never the source of truth. Every call here fails open: when Redis does not
//! answer within `REDIS_RESPONSE_MS_MAX`, a command is decided by the log alone (which still
//! refuses replays), rate limits fall back to this node's own counters, and live updates fall
//! back to the writer's periodic following of the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use projections::limits;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

/// The channel on which nodes announce the log size after each commit.
pub const LOG_CHANNEL: &str = "veche:log";

/// Whether a bucket may take one more request.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Limited { retry_after_seconds: u64 },
}

/// Fixed-window counters of this process, used without Redis or when it does not answer.
#[derive(Default)]
pub struct LocalLimiter {
    windows: Mutex<HashMap<String, u64>>,
}

impl LocalLimiter {
    fn admit(&self, key: &str, limit: u64, retry_after_seconds: u64) -> Admission {
        let Ok(mut windows) = self.windows.lock() else {
            return Admission::Allowed;
        };
        // Old windows are forgotten wholesale; a key's window index is part of its name.
        if windows.len() > 100_000 {
            windows.clear();
        }
        let count = windows.entry(key.to_string()).or_insert(0);
        *count += 1;
        if *count > limit {
            Admission::Limited {
                retry_after_seconds,
            }
        } else {
            Admission::Allowed
        }
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
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

/// Rate limits: shared through Redis when configured and answering, else per node.
pub struct RateLimits {
    /// Set once at start when `--redis` is given.
    pub redis: std::sync::OnceLock<std::sync::Arc<Coordination>>,
    pub local: LocalLimiter,
    /// Write requests one client address may send per minute; 0 turns the limit off (for a
    /// node behind a proxy that hides client addresses, or for a load test from one machine).
    pub per_address_per_minute: std::sync::atomic::AtomicU64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            redis: std::sync::OnceLock::new(),
            local: LocalLimiter::default(),
            per_address_per_minute: std::sync::atomic::AtomicU64::new(
                limits::COMMANDS_PER_ADDRESS_PER_MINUTE_MAX,
            ),
        }
    }
}

impl RateLimits {
    /// Counts one request against `bucket` (a name that includes its window index).
    pub async fn admit(&self, bucket: &str, limit: u64, window_seconds: u64) -> Admission {
        if limit == 0 {
            return Admission::Allowed;
        }
        if let Some(redis) = self.redis.get() {
            if let Some(admission) = redis.admit(bucket, limit, window_seconds).await {
                return admission;
            }
        }
        self.local.admit(bucket, limit, window_seconds)
    }
}
