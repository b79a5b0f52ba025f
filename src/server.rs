//! Running a node behind the HTTP API: the data directory, the listener and the poll closer.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use projections::command::RecoveryQuorum;
use projections::limits;
use projections::protocol::public_key_of;

use crate::clock::Clock;
use crate::keys::{read_key_file, read_or_create_key_file, Entropy, KeyFileError};
use crate::node::{Node, NodeConfig, StartError};
use crate::store::{EventStore, SqliteStore, StoreError};

pub const SERVER_KEY_FILE: &str = "server.key";
pub use crate::issuer::ISSUER_KEY_FILE;
pub const ADMIN_KEY_FILE: &str = "admin.key";
pub const LOG_FILE: &str = "log.sqlite";

/// The file of recovery key `number` (1, 2, …).
pub fn recovery_key_file(number: usize) -> String {
    format!("recovery-{number}.key")
}

/// Creates the recovery keys of a new data directory, one file each.
fn create_recovery_keys(path: &Path, entropy: &dyn Entropy) -> Result<Vec<SigningKey>, ServeError> {
    let mut keys = Vec::new();
    for number in 1..=limits::RECOVERY_KEYS_CREATED {
        let file = path.join(recovery_key_file(number));
        let (key, _) = read_or_create_key_file(&file, entropy)?;
        tracing::info!(
            key = %public_key_of(&key),
            file = %file.display(),
            "created a recovery key; give each recovery key to a different custodian and delete it here"
        );
        keys.push(key);
    }
    Ok(keys)
}

/// The recovery keys of the directory, all or none: they matter only until genesis, and part of
/// a quorum would name a threshold its keys cannot meet. Once custodians have taken some away
/// the log has its genesis, and none are needed.
fn read_recovery_keys(path: &Path) -> Result<Vec<SigningKey>, ServeError> {
    let files: Vec<PathBuf> = (1..=limits::RECOVERY_KEYS_CREATED)
        .map(|number| path.join(recovery_key_file(number)))
        .collect();
    if !files.iter().all(|file| file.exists()) {
        return Ok(Vec::new());
    }
    Ok(files
        .iter()
        .map(|file| read_key_file(file))
        .collect::<Result<_, _>>()?)
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot create data directory {path}: {source}")]
    DataDirectory {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("cannot use redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Issuer(#[from] crate::issuer::IssuerError),
    #[error(transparent)]
    Gateway(#[from] crate::gateway::GatewayError),
}

/// The keys and store of a data directory, created on first use.
pub struct DataDirectory {
    pub path: PathBuf,
    pub server_key: SigningKey,
    pub admin_key: SigningKey,
    /// The recovery keys created with the directory (`recovery-N.key`), which a new log's genesis
    /// names as its recovery quorum; empty for a directory made before they existed, or once
    /// their custodians have taken them away, as they should.
    pub recovery_keys: Vec<SigningKey>,
}

impl DataDirectory {
    /// Opens `path`, creating it with a fresh server key and admin key if needed.
    pub fn open_or_init(path: &Path, entropy: &dyn Entropy) -> Result<DataDirectory, ServeError> {
        std::fs::create_dir_all(path).map_err(|source| ServeError::DataDirectory {
            path: path.display().to_string(),
            source,
        })?;
        let (server_key, created) = read_or_create_key_file(&path.join(SERVER_KEY_FILE), entropy)?;
        if created {
            tracing::info!(key = %public_key_of(&server_key), "created the server key");
        }
        let (admin_key, created) = read_or_create_key_file(&path.join(ADMIN_KEY_FILE), entropy)?;
        if created {
            tracing::info!(
                key = %public_key_of(&admin_key),
                file = %path.join(ADMIN_KEY_FILE).display(),
                "created the admin key; move it off the server once roles are granted"
            );
        }
        let recovery_keys = if created {
            create_recovery_keys(path, entropy)?
        } else {
            read_recovery_keys(path)?
        };
        Ok(DataDirectory {
            path: path.to_path_buf(),
            server_key,
            admin_key,
            recovery_keys,
        })
    }

    /// Opens an existing directory without creating anything.
    pub fn open_existing(path: &Path) -> Result<DataDirectory, ServeError> {
        Ok(DataDirectory {
            path: path.to_path_buf(),
            server_key: read_key_file(&path.join(SERVER_KEY_FILE))?,
            admin_key: read_key_file(&path.join(ADMIN_KEY_FILE))?,
            recovery_keys: read_recovery_keys(path)?,
        })
    }

    /// The quorum a new log's genesis names: the directory's recovery keys, any
    /// `RECOVERY_THRESHOLD_CREATED` of them together.
    pub fn recovery_quorum(&self) -> Option<RecoveryQuorum> {
        (!self.recovery_keys.is_empty()).then(|| RecoveryQuorum {
            keys: self.recovery_keys.iter().map(public_key_of).collect(),
            threshold: limits::RECOVERY_THRESHOLD_CREATED,
        })
    }

    pub fn open_store(&self) -> Result<Arc<dyn EventStore>, ServeError> {
        Ok(Arc::new(SqliteStore::open(&self.path.join(LOG_FILE))?))
    }

    pub fn start_node(
        &self,
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        log_origin: &str,
    ) -> Result<Node, ServeError> {
        let interval = projections::limits::SNAPSHOT_INTERVAL_ENTRIES_DEFAULT;
        self.start_node_with(store, clock, log_origin, interval)
    }

    /// `start_node`, with periodic snapshots every `snapshot_interval_entries` (0: none).
    pub fn start_node_with(
        &self,
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        log_origin: &str,
        snapshot_interval_entries: u64,
    ) -> Result<Node, ServeError> {
        let node = Node::start(NodeConfig {
            store,
            clock,
            server_key: self.server_key.clone(),
            admin_keys: vec![public_key_of(&self.admin_key)],
            recovery: self.recovery_quorum(),
            log_origin: log_origin.to_string(),
            snapshot: Some(self.path.join(crate::snapshot::SNAPSHOT_FILE)),
            snapshot_interval_entries,
        })?;
        node.hold_issuers(crate::issuer::IssuerRing::open(&self.path)?);
        node.hold_gateways(crate::gateway::GatewayRing::open(&self.path)?);
        Ok(node)
    }
}

/// Everything a node needs to serve: where its data lives, what it logs to, its clock and its
/// listener. `main` and the integration tests build the same application from one of these.
pub struct Settings<'a> {
    pub data_directory: &'a Path,
    /// Where new server and admin keys come from, on a first start.
    pub entropy: &'a dyn Entropy,
    /// The log store; `None` is the data directory's own SQLite file.
    pub store: Option<Arc<dyn EventStore>>,
    pub clock: Arc<dyn Clock>,
    pub log_origin: &'a str,
    pub listener: TcpListener,
    /// Redis, to share rate limits and announcements with other nodes.
    pub redis_url: Option<&'a str>,
    /// Write requests one client address may send per minute; 0 turns the limit off.
    pub commands_per_address_per_minute: u64,
    /// Keys one client address may register per hour; 0 turns the limit off.
    pub registrations_per_address_per_hour: u64,
    /// Entries between two periodic snapshots; 0 makes them only when the node stops.
    pub snapshot_interval_entries: u64,
}

/// A serving node with its data directory's keys.
pub struct Application {
    pub data: DataDirectory,
    pub running: RunningServer,
}

impl Application {
    /// Opens (or creates) the data directory, starts the node, attaches Redis when asked and
    /// binds the API. Call inside the async runtime; await or spawn `running.server`.
    pub fn build(settings: Settings<'_>) -> Result<Application, ServeError> {
        raise_open_file_limit();
        let data = DataDirectory::open_or_init(settings.data_directory, settings.entropy)?;
        let store = match settings.store {
            Some(store) => store,
            None => data.open_store()?,
        };
        let node = Arc::new(data.start_node_with(
            store,
            settings.clock,
            settings.log_origin,
            settings.snapshot_interval_entries,
        )?);
        node.rate_limits.per_address_per_minute.store(
            settings.commands_per_address_per_minute,
            std::sync::atomic::Ordering::Relaxed,
        );
        node.rate_limits.registrations_per_address_per_hour.store(
            settings.registrations_per_address_per_hour,
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Some(url) = settings.redis_url {
            attach_redis(&node, url)?;
        }
        let running = run(node, settings.listener)?;
        Ok(Application { data, running })
    }
}

/// Raises the soft limit on open files to the hard one: every connection and live stream holds
/// a file, and the usual soft limit of 1,024 is below what the stream caps leave room for.
/// A limit that cannot be raised is logged, not fatal: the caps still hold.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "the open-file limit could not be raised"),
    }
}

/// A running HTTP server and its node.
pub struct RunningServer {
    pub address: std::net::SocketAddr,
    pub server: crate::http::RunningHttpServer,
    pub node: Arc<Node>,
}

/// Binds the API to `listener` and starts the poll closer. The returned server future must be
/// awaited or spawned.
pub fn run(node: Arc<Node>, listener: TcpListener) -> Result<RunningServer, ServeError> {
    let address = listener.local_addr()?;
    let server = crate::http::bind(node.clone(), listener)?;
    spawn_poll_closer(node.clone());
    Ok(RunningServer {
        address,
        server,
        node,
    })
}

/// Appends system events (poll closes, SLA breaches, silent closes, expiries) as they come due,
/// for as long as the node lives.
fn spawn_poll_closer(node: Arc<Node>) {
    let weak = Arc::downgrade(&node);
    drop(node);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(
            projections::limits::SYSTEM_EVENT_INTERVAL_MS,
        ));
        loop {
            interval.tick().await;
            let Some(node) = weak.upgrade() else { break };
            node.start_periodic_snapshot_if_due();
            match node.append_due_system_events().await {
                Ok(events) => {
                    for event in events {
                        tracing::info!(
                            action = event.action,
                            position = event.appended.position,
                            "appended a due system event"
                        );
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "appending due system events failed; will retry")
                }
            }
        }
    });
}

/// Connects the node to Redis (lazily: a Redis that is down only delays fan-out), shares its
/// rate limits there, announces every published size and follows other nodes' announcements.
/// Call inside the async runtime.
pub fn attach_redis(node: &Arc<Node>, url: &str) -> Result<(), redis::RedisError> {
    let coordination = Arc::new(crate::coordination::Coordination::connect(url)?);
    if node.rate_limits.redis.set(coordination.clone()).is_err() {
        tracing::warn!("redis was already attached to this node");
        return Ok(());
    }
    let weak = Arc::downgrade(node);
    coordination.spawn_listener(move |size| {
        if let Some(node) = weak.upgrade() {
            if size > node.ledger().size {
                node.follow_now();
            }
        }
    });
    let mut sizes = node.observers().published_size.subscribe();
    let announcer = coordination.clone();
    tokio::spawn(async move {
        while sizes.changed().await.is_ok() {
            let size = *sizes.borrow_and_update();
            announcer.announce(size).await;
        }
    });
    tracing::info!("coordinating with other nodes through redis");
    Ok(())
}
