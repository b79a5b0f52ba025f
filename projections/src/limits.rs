//! Every limit veche enforces, in one place, units last in each name.
//!
//! The server, the verifier and third-party clients read the same numbers: a command that the
//! server accepts must also pass `veche verify`, so limits that shape acceptance live in the pure
//! crate rather than in server configuration.

/// Largest log entry, header included: C2SP tlog-tiles entry bundles prefix entries with a
/// 16-bit length, so nothing larger can be served.
pub const ENTRY_BYTES_MAX: usize = 65_535;
/// Largest signed payload: whatever is left of an entry after its fixed 146-byte header
/// (`protocol::ENTRY_HEADER_BYTES`, which holds the two together at compile time).
pub const PAYLOAD_BYTES_MAX: usize = ENTRY_BYTES_MAX - 146;
/// Largest HTTP request body. An envelope carries the payload as a JSON string, where escaping can
/// grow it, so this is larger than the payload limit; the payload limit is checked after decoding.
pub const REQUEST_BODY_BYTES_MAX: usize = 256 * 1024;

/// How far behind the server's clock a command's `issued_at` may be before it is refused as stale.
pub const COMMAND_AGE_MS_MAX: i64 = 5 * 60 * 1000;
/// How far ahead of the server's clock a command's `issued_at` may be (client clock skew).
pub const COMMAND_FUTURE_MS_MAX: i64 = 60 * 1000;
/// How far back veche's client moves an anonymous ballot's `issued_at`, uniformly at random, so
/// a device clock's offset from the server does not pair the ballot with its request. Well
/// inside `COMMAND_AGE_MS_MAX`, so a ballot from a device whose clock is a few minutes behind
/// stays fresh.
pub const ANONYMOUS_BALLOT_ISSUED_AT_BLUR_MS_MAX: i64 = 60 * 1000;
/// Exact length of a command nonce, in hexadecimal characters (16 random bytes).
pub const NONCE_HEX_CHARS: usize = 32;
/// A registrar's resident tag: 64 lowercase hexadecimal characters (an HMAC-SHA-256, say).
pub const RESIDENT_TAG_HEX_CHARS: usize = 64;
/// Fewest bytes of a registrar's secret `veche resident-tag` accepts: a shorter key would let
/// anyone who guesses it test identities against the tags in the log.
pub const REGISTRAR_SECRET_BYTES_MIN: usize = 32;
/// Most appended commands a node remembers the position of, by (author, nonce), so that a client
/// re-sending the exact envelope of an appended command gets its receipt again. Past this, the
/// oldest are forgotten and their retries are refused as `replayed-nonce`, as before.
pub const RECENT_COMMAND_POSITIONS_MAX: usize = 262_144;

/// Options a poll may offer, inclusive bounds.
pub const POLL_OPTIONS_MIN: usize = 2;
pub const POLL_OPTIONS_MAX: usize = 64;
pub const POLL_TITLE_CHARS_MAX: usize = 200;
pub const POLL_DESCRIPTION_CHARS_MAX: usize = 4_000;
pub const POLL_OPTION_CHARS_MAX: usize = 200;
/// Corrections one poll may take: each is a public new version, and a poll corrected over and
/// over is one its voters can no longer follow.
pub const POLL_CORRECTIONS_MAX: usize = 8;
/// Longest time a poll may stay open.
pub const POLL_DURATION_MS_MAX: i64 = 366 * 24 * 60 * 60 * 1000;

/// Department names carried by role grants.
pub const DEPARTMENT_CHARS_MAX: usize = 100;
/// Most admin keys a genesis names.
pub const ADMIN_KEYS_MAX: usize = 16;
/// Most recovery keys a genesis names (a quorum of custodians, not a crowd).
pub const RECOVERY_KEYS_MAX: usize = 16;
/// Recovery keys a new data directory creates for its genesis, and how many of them together
/// replace an admin key: any two of three custodians, so one lost or one rogue key decides nothing.
pub const RECOVERY_KEYS_CREATED: usize = 3;
pub const RECOVERY_THRESHOLD_CREATED: u32 = 2;

/// Entries one page of the raw log may hold.
pub const LOG_PAGE_ENTRIES_MAX: usize = 1_000;
/// Complaint rows an open-data export renders into one chunk of its streamed body.
pub const OPEN_DATA_CHUNK_ROWS: usize = 1_000;
/// Items one page of any other list may hold.
pub const LIST_PAGE_ITEMS_MAX: usize = 100;
/// The largest age, in hours, a complaint listing filters by (`older_than_hours`,
/// `newer_than_hours`): ten years, longer than any complaint stays in a queue.
pub const COMPLAINT_AGE_FILTER_HOURS_MAX: u32 = 10 * 366 * 24;
/// Log entries one page of `/v1/log/actions`, or of `/v1/log/entries` filtered by signer or
/// action, reads to find what it lists: the lists are filtered from the log as it stands, never
/// from an index, so this bounds the work of one request (a page that reaches it ends early, and
/// its cursor continues the scan).
pub const ACTION_SCAN_ENTRIES_MAX: usize = 10_000;
/// Log positions one page of `/v1/content` covers: each may carry a proposal body and ten
/// attachment URLs, so a page stays a few megabytes.
pub const CONTENT_PAGE_POSITIONS_MAX: usize = 256;
/// Entries `veche import` appends per transaction: large enough that the fsync per batch is
/// amortised, small enough that a batch and its content stay a few megabytes.
pub const IMPORT_BATCH_ENTRIES_MAX: usize = 4_096;

/// Commands the single writer takes into one group commit.
pub const WRITER_BATCH_COMMANDS_MAX: usize = 2_048;
/// Commands that may wait for the writer before new ones are refused as overload.
pub const WRITER_QUEUE_COMMANDS_MAX: usize = 65_536;
/// Envelopes that may wait for a signature-check thread before new ones are refused as overload.
pub const SIGNATURE_QUEUE_ENVELOPES_MAX: usize = 16_384;

/// District names, in attestations, complaints, proposals and poll audiences.
pub const DISTRICT_CHARS_MAX: usize = 100;
/// Districts one poll audience may list.
pub const AUDIENCE_DISTRICTS_MAX: usize = 200;
/// Category identifiers: lowercase letters, digits and hyphens.
pub const CATEGORY_ID_CHARS_MAX: usize = 64;
pub const CATEGORY_NAME_CHARS_MAX: usize = 200;
/// Longest SLA, confirmation window and proposal lifetime a category may set.
pub const CATEGORY_DAYS_MAX: u32 = 366;
/// Highest support threshold a category may set.
pub const SUPPORT_THRESHOLD_MAX: u64 = 10_000_000;
pub const COMPLAINT_DESCRIPTION_CHARS_MAX: usize = 4_000;
pub const ADDRESS_CHARS_MAX: usize = 300;
/// Attachments one complaint action may carry.
pub const ATTACHMENTS_MAX: usize = 10;
pub const URL_CHARS_MAX: usize = 2_000;
/// Decimals of a complaint's public coordinates (0.001 degree, about 110 m of latitude).
pub const COORDINATE_DECIMALS_MAX: i32 = 3;
/// Answers, reasons, questions and supplements.
pub const NOTE_CHARS_MAX: usize = 4_000;
pub const PROPOSAL_TITLE_CHARS_MAX: usize = 200;
pub const PROPOSAL_BODY_CHARS_MAX: usize = 10_000;
/// The window over which "trending" counts new supports.
pub const TRENDING_WINDOW_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Signed commands one key may send per minute, across all nodes when Redis is configured.
pub const COMMANDS_PER_KEY_PER_MINUTE_MAX: u64 = 60;
/// Requests to write endpoints one client address may send per minute (0 turns the limit off).
pub const COMMANDS_PER_ADDRESS_PER_MINUTE_MAX: u64 = 6_000;
/// Complaints one resident may file per day: Our City's own limit is 20 messages a day. Counted
/// per resident tag for attested keys (across a resident's old and new keys), per key otherwise.
pub const COMPLAINTS_PER_RESIDENT_PER_DAY_MAX: u64 = 20;
/// Keys one client address may register per hour (0 turns the limit off, as the per-address
/// command limit does): free registration must not mint thousands of keys a minute.
pub const REGISTRATIONS_PER_ADDRESS_PER_HOUR_MAX: u64 = 100;
/// How long Redis may take to answer before a node carries on without it.
pub const REDIS_RESPONSE_MS_MAX: u64 = 250;

/// How long a node waits to connect to PostgreSQL before answering 503.
pub const STORE_CONNECT_MS_MAX: u64 = 2_000;
/// How long a request waits for the writer's durable answer before it gets a 503 (the command
/// may still land; sending the same envelope again is then refused as a replay, never doubled).
pub const WRITER_REPLY_MS_MAX: u64 = 10_000;
/// How long a stopping node waits for the writer to attest its state: the writer encodes the
/// whole ledger twice (the digest, and the decision re-checking it), which for millions of
/// entries takes seconds, not a request's milliseconds.
pub const STATE_ATTESTATION_MS_MAX: u64 = 120_000;

/// Entries between two periodic snapshots, by default (`veche serve
/// --snapshot-interval-entries`). A crash costs a replay of at most about twice this many
/// entries (a fold still running when it struck leaves the snapshot before), at start-up's
/// rate of about 90,000 entries/s on two cores; each snapshot costs one fold of this many
/// entries without signatures and one encoding of the state, in the background.
pub const SNAPSHOT_INTERVAL_ENTRIES_DEFAULT: u64 = 250_000;
/// How much of the state's encoding the state digest holds before handing it to SHA-256.
pub const STATE_DIGEST_BLOCK_BYTES: usize = 1 << 16;

/// Entries a replay (start-up, audit, `veche verify`) reads and checks at a time: big enough to
/// keep every core busy with batch verification, small enough to bound memory on any log size.
pub const REPLAY_PAGE_ENTRIES: usize = 16_384;
/// Below this many entries, checking on one thread beats starting others.
pub const REPLAY_PARALLEL_CHECK_ENTRIES_MIN: usize = 2_048;
/// Times `veche verify` reads the proposal standings again when the log grows while it reads them.
pub const PROPOSAL_READ_ATTEMPTS_MAX: u32 = 5;

// Timings and table sizes of the server (the HTTP layer, the writer, the rate limiter).

/// How often the server looks for system events that have come due.
pub const SYSTEM_EVENT_INTERVAL_MS: u64 = 200;
/// How often an idle writer looks for entries other nodes appended.
pub const WRITER_FOLLOW_INTERVAL_MS: u64 = 100;
/// Issuer keys one node holds: one per district it issues for, and one for other audiences.
pub const ISSUER_KEYS_MAX: usize = 1_024;
/// How often a co-issuer reads the entries the node appended since it last looked.
pub const CO_ISSUER_FOLLOW_INTERVAL_MS: u64 = 1_000;
/// How many times a node with other nodes follows the shared log again, one follow interval
/// apart, to find the original of an envelope sent again (another node may have taken it).
pub const RETRY_FOLLOW_ATTEMPTS_MAX: u64 = 3;
/// How often an idle live stream sends a comment so proxies keep it open.
pub const LIVE_KEEP_ALIVE_INTERVAL_MS: u64 = 15_000;
/// Live-tally streams one client address may hold open at once.
pub const LIVE_STREAMS_PER_ADDRESS_MAX: usize = 64;
/// Live-tally streams a node serves at once. Each holds a socket, so this stays well under the
/// usual soft limit of 1,024 open files: health checks, writes and the store keep the rest.
pub const LIVE_STREAMS_MAX: usize = 512;
/// How long a node waits before subscribing to Redis again after losing it.
pub const REDIS_RECONNECT_INTERVAL_MS: u64 = 1_000;
/// Open311's default window when a request names no dates.
pub const OPEN311_REQUESTS_WINDOW_DAYS_DEFAULT: i64 = 90;
/// Open311's default (and here the maximum) number of requests one answer holds.
pub const OPEN311_REQUESTS_PAGE_ITEMS_MAX: usize = 1_000;
/// Subjects (keys or addresses) one rate limiter tracks at once. When full, subjects back at
/// their full allowance are forgotten; if that frees nothing, new subjects wait, and the ones
/// already tracked keep their counts.
pub const RATE_LIMITED_SUBJECTS_MAX: usize = 100_000;
/// How long a stopping HTTP server lets requests in flight finish.
/// How long readiness reports the store failing after it refused an append (with none taken
/// since): long enough for a load balancer to take the node out, short enough that the next
/// write soon tells whether the store is back.
pub const READINESS_WRITE_FAILURE_HOLD_MS: i64 = 5_000;
/// Start-up attempts while the log store is unavailable (a dropped database connection), and
/// the backoff between them, doubling from the first to the last: about 30 s in all.
pub const STARTUP_ATTEMPTS_MAX: u32 = 8;
pub const STARTUP_RETRY_DELAY_MS_MIN: u64 = 250;
pub const STARTUP_RETRY_DELAY_MS_MAX: u64 = 8_000;
pub const HTTP_SHUTDOWN_TIMEOUT_SECONDS: u64 = 5;
/// Leaves whose low Merkle nodes (heights 0 to 7) a node keeps in memory: sixteen full tiles,
/// several writer batches' worth, so a receipt's proof never touches the store.
pub const TREE_RECENT_LEAVES_MAX: u64 = 4_096;
/// Recomputed hash tiles a replay (start-up, snapshot audit) holds before it stores them: about
/// 8 MiB of level-0 tiles. Held to the end, a 10,000,000-entry log's tiles took 320 MiB.
pub const REPLAY_TILES_PENDING_MAX: usize = 1_024;
/// Signature lines a note may carry. The specification requires accepting at least 16; the Go
/// reference accepts 100, which leaves room for many witnesses while bounding the work an
/// attacker can make a verifier do.
pub const NOTE_SIGNATURES_MAX: usize = 100;
/// An anonymous poll's issuer keys are RSA keys of this many modulus bits: RFC 9474's floor, as
/// every ballot carries one signature of this length per issuer.
pub const ISSUER_KEY_BITS: usize = 2_048;
/// Characters of free text (a description, a title) one cell of the CLI's tables shows before
/// cutting it: a queue row stays on one line of a terminal.
pub const CLI_TABLE_CELL_CHARACTERS_MAX: usize = 48;
