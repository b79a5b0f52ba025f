//! Read endpoints: polls, tallies, ballots, keys, the raw log, health and readiness.
//!
//! Every read comes from the published ledger (durable events only) or from the store.

use actix_web::{get, web, HttpResponse};
use projections::command::{Audience, ChoiceKind, Role, TallyVisibility};
use projections::ledger::keys::HeldRole;
use projections::ledger::PollStatus;
use projections::protocol::Entry;
use projections::{Ledger, Poll, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::off_worker;
use crate::http::page::{Listed, Listing, Page};
use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::{Answer, Reply};
use crate::node::{Node, SnapshotStanding};

#[derive(Serialize, ToSchema)]
pub struct PollView {
    /// The poll's identifier: the log position of its `open_poll` entry.
    pub id: u64,
    /// The official who opened it.
    pub author: String,
    pub title: String,
    pub description: String,
    pub options: Vec<String>,
    #[schema(value_type = String, example = "single_choice")]
    pub choice_kind: ChoiceKind,
    pub max_choices: u32,
    /// Who may vote, as the `open_poll` payload put it.
    pub audience: AudienceView,
    #[schema(value_type = String, format = DateTime)]
    pub opens_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub closes_at: Timestamp,
    pub vote_changes_allowed: bool,
    #[schema(value_type = String, example = "public")]
    pub tally_visibility: TallyVisibility,
    /// `scheduled`, `open`, `closing` (past `closes_at`, close event pending) or `closed`.
    #[schema(value_type = String, example = "open")]
    pub status: PollStatus,
    /// Log position of the close event, once closed.
    pub closed_at_position: Option<u64>,
    /// For an anonymous poll: its issuer keys with the credentials issued and the ballot keys
    /// counted under each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<crate::http::credentials::AnonymityView>,
    /// The current version of the definition above: 1 until a correction.
    pub version: u32,
    /// Every version, oldest first, the last being the current one: a correction is public.
    pub versions: Vec<crate::http::versions::PollVersionView>,
}

pub type PollPage = Page<PollView>;

impl Listed for PollView {
    const LISTING: Listing = Listing::new("PollPage", "polls", "next_after");
}

impl PollView {
    fn of(poll: &Poll, now: Timestamp) -> PollView {
        let definition = &poll.definition;
        PollView {
            id: poll.id,
            author: poll.author.to_hex(),
            title: definition.title.clone(),
            description: definition.description.clone(),
            options: definition.options.clone(),
            choice_kind: definition.choice_kind,
            max_choices: definition.max_choices,
            audience: AudienceView::of(&definition.audience),
            opens_at: definition.opens_at,
            closes_at: definition.closes_at,
            vote_changes_allowed: definition.vote_changes_allowed,
            tally_visibility: definition.tally_visibility,
            status: poll.status(now),
            closed_at_position: poll.closed.as_ref().map(|closed| closed.position),
            anonymous: crate::http::credentials::AnonymityView::of(poll),
            version: poll.version(),
            versions: crate::http::versions::PollVersionView::all_of(poll),
        }
    }
}

/// Who may vote in a poll: the same shape as the `audience` of an `open_poll` payload.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AudienceView {
    /// Every key registered before its ballot.
    Everyone,
    /// Keys a registrar has attested as verified residents.
    Verified,
    /// Verified residents of one of these districts.
    Districts { districts: Vec<String> },
}

impl AudienceView {
    fn of(audience: &Audience) -> AudienceView {
        match audience {
            Audience::Everyone => AudienceView::Everyone,
            Audience::Verified => AudienceView::Verified,
            Audience::Districts { districts } => AudienceView::Districts {
                districts: districts.clone(),
            },
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Return items after this identifier (exclusive), 0 to 2^64 − 1.
    #[param(format = "uint64", minimum = 0)]
    pub after: Option<u64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

pub(crate) fn page_size(
    limit: Option<usize>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match limit.unwrap_or(default) {
        0 => Err(ApiError::MalformedRequest(
            "limit must be at least 1".into(),
        )),
        size if size > max => Err(ApiError::MalformedRequest(format!(
            "limit must be at most {max}"
        ))),
        size => Ok(size),
    }
}

/// List polls, oldest first, by cursor.
#[utoipa::path(tag = "polls", params(PageQuery),
    responses((status = 200, body = PollPage), ProblemStatus<400>, ProblemStatus<503>))]
#[get("/v1/polls")]
pub async fn list_polls(node: web::Data<Node>, query: web::Query<PageQuery>) -> Reply<PollPage> {
    let size = page_size(query.limit, 20, projections::limits::LIST_PAGE_ITEMS_MAX)?;
    let now = node.clock().now();
    let ledger = node.proven_ledger()?;
    let start = query.after.map_or(0, |after| after.saturating_add(1));
    let polls = ledger
        .polls
        .range(start..)
        .map(|(_, poll)| PollView::of(poll, now));
    Ok(web::Json(Page::first(polls, size, |poll| poll.id)))
}

fn find_poll(ledger: &Ledger, poll: u64) -> Result<&Poll, ApiError> {
    ledger
        .polls
        .get(&poll)
        .ok_or_else(|| ApiError::NotFound(format!("poll {poll}")))
}

/// One poll's definition and status.
#[utoipa::path(tag = "polls",
    params(("poll" = u64, Path, description = "Poll identifier")),
    responses((status = 200, body = PollView), ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/polls/{poll}")]
pub async fn get_poll(node: web::Data<Node>, poll: web::Path<u64>) -> Reply<PollView> {
    let now = node.clock().now();
    let ledger = node.proven_ledger()?;
    Ok(web::Json(PollView::of(find_poll(&ledger, *poll)?, now)))
}

#[derive(Serialize, ToSchema, PartialEq)]
pub struct TallyView {
    pub poll: u64,
    #[schema(value_type = String, example = "open")]
    pub status: PollStatus,
    /// Counted choices per option, in option order.
    pub counts: Vec<u64>,
    /// Citizens with a counted ballot.
    pub turnout: u64,
    /// Ballots replaced by a later ballot of the same citizen.
    pub superseded_ballots: u64,
    /// Ballots voided by a correction that changed the options; their voters vote again.
    pub voided_ballots: u64,
    /// Options with the most counted choices (several on a tie; none before any ballot).
    pub leading_options: Vec<u32>,
    /// True once the server-signed close event is in the log: the result is final.
    pub is_final: bool,
    /// The number of log entries this tally is computed from.
    pub log_size: u64,
    /// An anonymous poll's credential requests in the log, per issuer key (district) in the
    /// definition's order; `null` for other polls.
    pub credentials_issued: Option<Vec<u64>>,
    /// An anonymous poll's distinct ballot keys counted per issuer key: never more than
    /// `credentials_issued`; `null` for other polls.
    pub ballot_keys_counted: Option<Vec<u64>>,
}

/// A poll's tally: live while open (unless sealed), final once closed.
#[utoipa::path(tag = "polls",
    params(("poll" = u64, Path, description = "Poll identifier")),
    responses((status = 200, body = TallyView),
        ProblemStatus<403>, ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/polls/{poll}/tally")]
pub async fn get_tally(node: web::Data<Node>, poll: web::Path<u64>) -> Reply<TallyView> {
    Ok(web::Json(tally_view(
        &*node.proven_ledger()?,
        *poll,
        node.clock().now(),
    )?))
}

/// A poll's tally as published at this moment; refused while a sealed poll is open.
pub(crate) fn tally_view(
    ledger: &Ledger,
    poll: u64,
    now: Timestamp,
) -> Result<TallyView, ApiError> {
    let poll = find_poll(ledger, poll)?;
    if poll.closed.is_none() && poll.definition.tally_visibility == TallyVisibility::Sealed {
        return Err(ApiError::TallySealed);
    }
    Ok(TallyView {
        poll: poll.id,
        status: poll.status(now),
        counts: poll.tally.counts.clone(),
        turnout: poll.tally.turnout,
        superseded_ballots: poll.tally.superseded_ballots,
        voided_ballots: poll.tally.voided_ballots,
        leading_options: poll.leading_options(),
        is_final: poll.closed.is_some(),
        log_size: ledger.size,
        credentials_issued: poll
            .credentials
            .as_ref()
            .map(|counts| counts.issued.clone()),
        ballot_keys_counted: poll
            .credentials
            .as_ref()
            .map(|counts| counts.counted.clone()),
    })
}

#[derive(Serialize, ToSchema)]
pub struct BallotView {
    pub poll: u64,
    pub voter: String,
    /// The counted choices (after any change), as option indices in ascending order; the
    /// order the voter listed them in is in the signed command.
    pub choices: Vec<u32>,
}

/// A voter's counted ballot. Ballots are public under the voter's pseudonymous key.
#[utoipa::path(tag = "polls",
    params(("poll" = u64, Path, description = "Poll identifier"), ("voter" = String, Path, description = "Voter's public key, hex")),
    responses((status = 200, body = BallotView),
        ProblemStatus<403>, ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/polls/{poll}/ballots/{voter}")]
pub async fn get_ballot(
    node: web::Data<Node>,
    path: web::Path<(u64, String)>,
) -> Reply<BallotView> {
    let (poll, voter) = path.into_inner();
    let voter = crate::http::parse_key(&voter)?;
    let ledger = node.proven_ledger()?;
    let poll = find_poll(&ledger, poll)?;
    if poll.closed.is_none() && poll.definition.tally_visibility == TallyVisibility::Sealed {
        return Err(ApiError::TallySealed);
    }
    let choices = ledger
        .ballot(poll, voter)
        .ok_or_else(|| ApiError::NotFound(format!("ballot of {voter} in poll {}", poll.id)))?;
    Ok(web::Json(BallotView {
        poll: poll.id,
        voter: voter.to_hex(),
        choices: choices.iter().collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RoleView {
    /// `official`, `moderator` or `registrar` (and, in `/v1/roles`, `admin`).
    pub role: String,
    pub department: Option<String>,
    /// Log position of the entry the role is held since: its `grant_role` (for an admin key, the
    /// genesis, the hand-over or the recovery approval that made it one).
    pub granted_at_position: u64,
    /// Server time of that entry.
    #[schema(value_type = String, format = DateTime)]
    pub granted_at: Timestamp,
}

impl RoleView {
    pub(crate) fn of(role: Role, held: &HeldRole) -> RoleView {
        RoleView {
            role: role_name(role).into(),
            department: held.department.clone(),
            granted_at_position: held.granted.position,
            granted_at: held.granted.server_time,
        }
    }
}

/// A role as the `grant_role` payload names it.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Official => "official",
        Role::Moderator => "moderator",
        Role::Registrar => "registrar",
        Role::Gateway => "gateway",
    }
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub key: String,
    pub registered_at_position: u64,
    #[schema(value_type = String, format = DateTime)]
    pub registered_at: Timestamp,
    pub roles: Vec<RoleView>,
    /// Whether the key is one of the genesis admin keys.
    pub is_admin: bool,
    /// The district a registrar attested, if any.
    pub district: Option<String>,
    /// Whether a registrar attested the holder as a verified resident.
    pub verified: bool,
    /// The registrar's opaque tag for the resident the key was attested for, if any.
    pub resident_tag: Option<String>,
    /// Whether the key was revoked: it can do nothing more.
    pub revoked: bool,
}

/// A registered key and the roles it holds.
#[utoipa::path(tag = "keys",
    params(("key" = String, Path, description = "Public key, hex")),
    responses((status = 200, body = KeyView), ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/keys/{key}")]
pub async fn get_key(node: web::Data<Node>, key: web::Path<String>) -> Reply<KeyView> {
    let key = crate::http::parse_key(&key)?;
    let ledger = node.proven_ledger()?;
    let record = ledger
        .keys
        .get(&key)
        .ok_or_else(|| ApiError::NotFound(format!("key {key}")))?;
    let roles = ledger
        .keys
        .roles_of(key)
        .iter()
        .map(|(role, held)| RoleView::of(*role, held))
        .collect();
    Ok(web::Json(KeyView {
        key: key.to_hex(),
        registered_at_position: record.registered_at_position,
        registered_at: record.registered_at,
        roles,
        is_admin: ledger.is_admin(key),
        district: record.district().map(str::to_string),
        verified: record.verified(),
        resident_tag: record.resident_tag().map(str::to_string),
        revoked: record.revoked(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct LogHead {
    /// Number of entries in the log.
    pub size: u64,
    /// Hash of the last entry, hex.
    pub head_hash: String,
    pub log_origin: String,
    /// The server's Ed25519 public key, hex: it signs system events and checkpoints.
    pub server_key: String,
    /// The same key as a C2SP signed-note verifier key, for `veche verify --log-key` and
    /// third-party tlog tools. Check it against a copy published through another channel.
    pub verifier_key: String,
    pub admin_keys: Vec<String>,
}

/// The log's size, head hash and identity.
#[utoipa::path(tag = "log", responses((status = 200, body = LogHead), ProblemStatus<503>))]
#[get("/v1/log")]
pub async fn log_head(node: web::Data<Node>) -> Reply<LogHead> {
    let ledger = node.ledger();
    // A node serves only once its log holds the genesis entry, which names the identity.
    let identity = ledger
        .identity()
        .ok_or_else(|| ApiError::Faulted("the published ledger has no genesis entry".into()))?;
    Ok(web::Json(LogHead {
        size: ledger.size,
        head_hash: hex::encode(ledger.head_hash),
        log_origin: identity.log_origin.clone(),
        server_key: identity.server_key.to_hex(),
        verifier_key: projections::checkpoint::verifier_key(
            &identity.log_origin,
            &identity.server_key,
        ),
        admin_keys: identity.admin_keys.iter().map(|key| key.to_hex()).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct LogEntryView {
    pub position: u64,
    /// The entry bytes exactly as stored and hashed, hex.
    pub entry: String,
    /// SHA-256 of the entry bytes, hex.
    pub entry_hash: String,
    /// `command` or `system`.
    pub kind: String,
    #[schema(value_type = String, format = DateTime)]
    pub server_time: Timestamp,
    pub signer: String,
    /// The signed payload as text, for reading; verify against `entry`.
    pub payload: String,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// First position to return (default 0), 0 to 2^64 − 1.
    #[param(format = "uint64", minimum = 0)]
    pub from: Option<u64>,
    /// Entries per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Only entries signed by this key (64 lowercase hexadecimal characters): a citizen's
    /// commands, or the server's system events under its key.
    pub signer: Option<String>,
    /// Only entries of this action, e.g. `cast_ballot`.
    pub action: Option<String>,
}

/// The filters of a log page: which signer and which action, if any.
struct EntryFilter {
    signer: Option<projections::PublicKey>,
    action: Option<&'static str>,
}

impl EntryFilter {
    fn of(query: &LogQuery) -> Result<EntryFilter, ApiError> {
        let signer = query
            .signer
            .as_deref()
            .map(crate::http::parse_key)
            .transpose()?;
        let action = match query.action.as_deref() {
            None => None,
            Some(text) => Some(
                projections::Action::NAMES
                    .into_iter()
                    .find(|name| *name == text)
                    .ok_or_else(|| {
                        ApiError::MalformedRequest(format!("unknown action {text:?}"))
                    })?,
            ),
        };
        Ok(EntryFilter { signer, action })
    }

    fn filters(&self) -> bool {
        self.signer.is_some() || self.action.is_some()
    }

    fn keeps(&self, entry: &Entry) -> bool {
        /// The one member a filter reads from a payload: the rest is the entry's to check.
        #[derive(Deserialize)]
        struct Named<'a> {
            action: &'a str,
        }
        self.signer.is_none_or(|signer| entry.signer == signer)
            && self.action.is_none_or(|wanted| {
                serde_json::from_slice::<Named>(&entry.payload)
                    .is_ok_and(|named| named.action == wanted)
            })
    }
}

/// A log page as read: its entries, stored and decoded, and where the next page reads from.
type LogPageRead = (Vec<(crate::store::StoredEntry, Entry)>, Option<u64>);

/// Reads the page of the log from `from`: `size` entries, or with a filter the first `size`
/// that match within `ACTION_SCAN_ENTRIES_MAX` entries read, so no request reads more than that
/// however rare the matches are.
fn read_log_page(
    store: &dyn crate::store::EventStore,
    from: u64,
    published: u64,
    size: usize,
    filter: &EntryFilter,
) -> Result<LogPageRead, ApiError> {
    let budget = if filter.filters() {
        projections::limits::ACTION_SCAN_ENTRIES_MAX
    } else {
        size
    };
    let stretch = crate::http::page::Stretch {
        from,
        end: published,
        budget,
    };
    crate::http::page::scan_log(store, stretch, size, |stored| {
        let entry = Entry::decode(&stored.bytes).map_err(|error| {
            ApiError::StoreUnavailable(format!("stored entry {}: {error}", stored.position))
        })?;
        Ok(filter.keeps(&entry).then_some((stored, entry)))
    })
}

pub type LogPage = Page<LogEntryView>;

impl Listed for LogEntryView {
    const LISTING: Listing = Listing::new("LogPage", "entries", "next_from");
}

/// The raw log, paged by position. With `signer` or `action`, only the entries that match,
/// found within at most 10,000 entries read per page: a page may hold fewer than `limit`, or
/// none, and `next_from` says where the reading goes on.
#[utoipa::path(tag = "log", params(LogQuery),
    responses((status = 200, body = LogPage), ProblemStatus<400>, ProblemStatus<503>))]
#[get("/v1/log/entries")]
pub async fn log_entries(node: web::Data<Node>, query: web::Query<LogQuery>) -> Reply<LogPage> {
    let size = page_size(query.limit, 100, projections::limits::LOG_PAGE_ENTRIES_MAX)?;
    let from = query.from.unwrap_or(0);
    let filter = EntryFilter::of(&query)?;
    // Never serve past the published size: the reader sees exactly what the ledger has folded.
    let published = node.ledger().size;
    let node = node.clone();
    let (found, next) =
        off_worker(move || read_log_page(node.store(), from, published, size, &filter)).await?;
    let entries = found
        .into_iter()
        .map(|(stored, entry)| LogEntryView {
            position: stored.position,
            entry: hex::encode(&stored.bytes),
            entry_hash: hex::encode(stored.hash),
            kind: match entry.kind {
                projections::EntryKind::Command => "command".into(),
                projections::EntryKind::System => "system".into(),
            },
            server_time: entry.server_time,
            signer: entry.signer.to_hex(),
            payload: String::from_utf8_lossy(&entry.payload).into_owned(),
        })
        .collect();
    Ok(web::Json(Page {
        items: entries,
        next,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` with a reason.
    pub status: String,
    pub log_size: u64,
    pub store: String,
    /// How far the served state is proven to be the fold of the log: `verified`, `auditing` (the
    /// node started from a checked snapshot and is folding the log again to confirm it) or
    /// `refuted` (the snapshot differs from the log; writes are refused until a restart).
    pub state: String,
}

fn state_name(node: &Node) -> String {
    match node.snapshot_standing() {
        SnapshotStanding::Verified => "verified",
        SnapshotStanding::Auditing => "auditing",
        SnapshotStanding::Refuted => "refuted",
    }
    .into()
}

/// Liveness: the process is up and serving.
#[utoipa::path(tag = "operations", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz(node: web::Data<Node>) -> web::Json<Health> {
    web::Json(Health {
        status: "ok".into(),
        log_size: node.ledger().size,
        store: node.store().backend_name().into(),
        state: state_name(&node),
    })
}

/// Readiness: the log store answers and the served state is not refuted by the log.
#[utoipa::path(tag = "operations",
    responses((status = 200, body = Health), ProblemStatus<503>))]
#[get("/readyz")]
pub async fn readyz(node: web::Data<Node>) -> Answer {
    if node.snapshot_standing() == SnapshotStanding::Refuted {
        return Err(ApiError::StoreUnavailable(
            "this node started from a snapshot that does not match the log; restart it".into(),
        ));
    }
    if let Some(fault) = node.fault() {
        return Err(ApiError::Faulted(fault));
    }
    if node.store_writes_failing() {
        return Err(ApiError::StoreUnavailable(
            "the log store refused this node's last append; writes here fail".into(),
        ));
    }
    let probe = node.clone();
    let stored = off_worker(move || probe.store().size()).await?;
    Ok(HttpResponse::Ok().json(Health {
        status: "ok".into(),
        log_size: stored,
        store: node.store().backend_name().into(),
        state: state_name(&node),
    }))
}

/// The whole log as one download: first the signed checkpoint at the exported size, then every
/// entry in order, each record a 2-byte big-endian length followed by its bytes (the C2SP
/// entry-bundle encoding). Streamed page by page; `veche verify --export` reads it offline.
#[utoipa::path(tag = "log",
    responses((status = 200, description = "Length-prefixed entries", content_type = "application/octet-stream", body = Vec<u8>)))]
#[get("/v1/log/export")]
pub async fn export_log(node: web::Data<Node>) -> HttpResponse {
    let (size, checkpoint) = {
        let tree = node.tree();
        (tree.size(), tree.checkpoint().to_owned())
    };
    let mut header = Vec::with_capacity(checkpoint.len() + 2);
    header.extend_from_slice(&(checkpoint.len() as u16).to_be_bytes());
    header.extend_from_slice(checkpoint.as_bytes());
    let header = futures_util::stream::once(async move {
        Ok::<_, actix_web::Error>(actix_web::web::Bytes::from(header))
    });
    let pages = futures_util::stream::unfold(0u64, move |from| {
        let node = node.clone();
        async move {
            if from >= size {
                return None;
            }
            let limit = usize::try_from(size - from)
                .unwrap_or(usize::MAX)
                .min(projections::limits::LOG_PAGE_ENTRIES_MAX);
            let page = web::block(move || node.store().read(from, limit)).await;
            let chunk = match page {
                Ok(Ok(entries)) if !entries.is_empty() => entries,
                Ok(Ok(_)) => return None,
                Ok(Err(error)) => {
                    tracing::error!(%error, from, "export stopped: the store failed");
                    return Some((
                        Err(actix_web::error::ErrorServiceUnavailable(error.to_string())),
                        size,
                    ));
                }
                Err(error) => {
                    tracing::error!(%error, from, "export stopped: the blocking pool failed");
                    return Some((
                        Err(actix_web::error::ErrorServiceUnavailable(error.to_string())),
                        size,
                    ));
                }
            };
            let next = from + chunk.len() as u64;
            let mut bytes = Vec::new();
            for entry in &chunk {
                bytes.extend_from_slice(&(entry.bytes.len() as u16).to_be_bytes());
                bytes.extend_from_slice(&entry.bytes);
            }
            Some((
                Ok::<_, actix_web::Error>(actix_web::web::Bytes::from(bytes)),
                next,
            ))
        }
    });
    HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("X-Veche-Log-Size", size.to_string()))
        .streaming(futures_util::StreamExt::chain(header, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_is_named_as_its_payload_names_it() {
        for role in [Role::Official, Role::Moderator, Role::Registrar] {
            assert_eq!(
                serde_json::to_value(role).ok(),
                Some(serde_json::Value::from(role_name(role))),
            );
        }
    }
}
