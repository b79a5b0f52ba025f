//! The public record's reads: who holds which role and since when, and the moderation, admin
//! and registrar actions as a readable list.
//!
//! Role holders come from the published ledger, which keeps each role with its grant. The
//! actions are filtered from the log itself, a bounded stretch per page
//! (`ACTION_SCAN_ENTRIES_MAX`): no index to keep in step with the log, and no request that reads
//! more than that however rare the actions are.

use std::collections::BTreeMap;

use actix_web::{get, web};
use projections::command::{
    Attestation, CategoryDefinition, Merge, ModerationDecision, ProposalModeration, Redaction,
    RedactionReason, RejectionReason, Role, RoleChange, TriageDecision,
};
use projections::limits::{ACTION_SCAN_ENTRIES_MAX, LIST_PAGE_ITEMS_MAX};
use projections::protocol::Entry;
use projections::{Action, Command, EntryKind, PublicKey, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::off_worker;
use crate::http::page::{scan_log, Listed, Listing, Page, Stretch};
use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::reads::{page_size, role_name, RoleView};
use crate::http::Reply;
use crate::node::Node;
use crate::store::{EventStore, StoredEntry};

#[derive(Serialize, ToSchema)]
pub struct RoleHolderView {
    pub key: String,
    /// The roles the key holds now, `admin` first, each with the entry it is held since.
    pub roles: Vec<RoleView>,
}

pub type RoleHolderPage = Page<RoleHolderView, String>;

impl Listed for RoleHolderView {
    const LISTING: Listing = Listing::new("RoleHolderPage", "holders", "next_after");
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RoleQuery {
    /// Only holders of this role: `admin`, `official`, `moderator` or `registrar`.
    pub role: Option<String>,
    /// Only officials of this department.
    pub department: Option<String>,
    /// Return holders after this key (exclusive), 64 lowercase hexadecimal characters.
    pub after: Option<String>,
    /// Holders per page, 1 to 100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

/// Who holds which role now, by key, and since which entry: the genesis admin keys and their
/// successors, and every key the admin granted a role and has not revoked.
#[utoipa::path(tag = "keys", params(RoleQuery),
    responses((status = 200, body = RoleHolderPage), ProblemStatus<400>, ProblemStatus<503>))]
#[get("/v1/roles")]
pub async fn list_roles(
    node: web::Data<Node>,
    query: web::Query<RoleQuery>,
) -> Reply<RoleHolderPage> {
    let size = page_size(query.limit, LIST_PAGE_ITEMS_MAX, LIST_PAGE_ITEMS_MAX)?;
    let role = query.role.as_deref().map(parse_role_name).transpose()?;
    let after = query
        .after
        .as_deref()
        .map(crate::http::parse_key)
        .transpose()?;
    let ledger = node.proven_ledger()?;
    let keys = &ledger.keys;
    let mut holders: BTreeMap<PublicKey, Vec<RoleView>> = BTreeMap::new();
    for (key, grant) in keys.admins_since() {
        holders.entry(*key).or_default().push(RoleView {
            role: "admin".into(),
            department: None,
            granted_at_position: grant.position,
            granted_at: grant.server_time,
        });
    }
    for (key, roles) in keys.role_holders() {
        let views = roles.iter().map(|(role, held)| RoleView::of(*role, held));
        holders.entry(*key).or_default().extend(views);
    }
    let department = query.department.as_deref();
    let wanted = |view: &RoleView| {
        role.is_none_or(|role| view.role == role)
            && department.is_none_or(|department| view.department.as_deref() == Some(department))
    };
    let listed = holders
        .into_iter()
        .filter(|(key, _)| after.is_none_or(|after| *key > after))
        .filter(|(_, views)| views.iter().any(&wanted))
        .map(|(key, roles)| RoleHolderView {
            key: key.to_hex(),
            roles,
        });
    Ok(web::Json(Page::first(listed, size, |holder| {
        holder.key.clone()
    })))
}

/// A role filter's name: `admin` or a role's `grant_role` name.
fn parse_role_name(text: &str) -> Result<&'static str, ApiError> {
    ["admin"]
        .into_iter()
        .chain([Role::Official, Role::Moderator, Role::Registrar].map(role_name))
        .find(|name| *name == text)
        .ok_or_else(|| {
            ApiError::MalformedRequest(format!(
                "unknown role {text:?}: admin, official, moderator or registrar"
            ))
        })
}

/// Which list an action belongs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ActionKind {
    /// Complaints triaged, rejected or merged, proposals moderated, content redacted.
    Moderation,
    /// Roles granted and revoked, admin keys handed over or recovered, categories defined.
    Admin,
    /// Residents attested, and keys a registrar revoked for their holders.
    Registrar,
}

impl ActionKind {
    const ALL: [ActionKind; 3] = [
        ActionKind::Moderation,
        ActionKind::Admin,
        ActionKind::Registrar,
    ];

    fn name(self) -> &'static str {
        match self {
            ActionKind::Moderation => "moderation",
            ActionKind::Admin => "admin",
            ActionKind::Registrar => "registrar",
        }
    }
}

/// Every action the list holds, with its kind: what a filter may name.
const LISTED_ACTIONS: [(&str, ActionKind); 11] = [
    ("grant_role", ActionKind::Admin),
    ("revoke_role", ActionKind::Admin),
    ("hand_over_admin", ActionKind::Admin),
    ("approve_recovery", ActionKind::Admin),
    ("define_category", ActionKind::Admin),
    ("attest_resident", ActionKind::Registrar),
    ("revoke_key", ActionKind::Registrar),
    ("triage_complaint", ActionKind::Moderation),
    ("merge_complaint", ActionKind::Moderation),
    ("moderate_proposal", ActionKind::Moderation),
    ("redact_content", ActionKind::Moderation),
];

/// What an action is about.
#[derive(Serialize, ToSchema, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum SubjectView {
    /// A key, hex: a role's holder, an attested or revoked key, an admin key replaced.
    Key(String),
    /// A complaint's identifier.
    Complaint(u64),
    /// A proposal's identifier.
    Proposal(u64),
    /// The log position of an entry whose content is redacted.
    Entry(u64),
    /// A category's identifier.
    Category(String),
}

#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct ActionView {
    pub position: u64,
    #[schema(value_type = String, format = DateTime)]
    pub server_time: Timestamp,
    /// `moderation`, `admin` or `registrar`.
    pub kind: String,
    /// The action's name, e.g. `redact_content`.
    pub action: String,
    /// The signing key, hex.
    pub author: String,
    pub subject: SubjectView,
    #[serde(flatten)]
    pub details: ActionDetails,
}

/// What else an action says, as codes and names; free text (a proposal's rejection reason) is
/// in the entry itself (`/v1/log/entries`).
#[derive(Serialize, ToSchema, Debug, PartialEq, Default)]
pub struct ActionDetails {
    /// A triage's `accept`, `reject` or `needs_info`; a proposal moderation's `publish` or
    /// `reject`.
    pub decision: Option<String>,
    /// A reason code: a complaint rejection's (`spam`, `duplicate_of`, `out_of_scope`,
    /// `insufficient_info`) or a redaction's (`third_party_personal_data`, `illegal_content`,
    /// `spam`).
    pub reason: Option<String>,
    /// The role granted or revoked.
    pub role: Option<String>,
    /// An official's department, or the department a category routes to.
    pub department: Option<String>,
    /// The district an attestation names.
    pub district: Option<String>,
    /// The complaint a merged complaint goes into, or the one a rejected complaint duplicates.
    pub related_complaint: Option<u64>,
    /// The key that becomes an admin, hex, in a hand-over or a recovery approval.
    pub successor: Option<String>,
    /// Whether the entry redacts content: a redaction, or a spam rejection taking the
    /// complaint's content down with it.
    pub redacts_content: bool,
}

pub type ActionPage = Page<ActionView>;

impl Listed for ActionView {
    const LISTING: Listing = Listing::new("ActionPage", "actions", "next_from");
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ActionQuery {
    /// Only `moderation`, `admin` or `registrar` actions; all three when absent.
    pub kind: Option<String>,
    /// Only this action, e.g. `redact_content` (one of the kinds' actions).
    pub action: Option<String>,
    /// Only actions signed by this key, 64 lowercase hexadecimal characters.
    pub author: Option<String>,
    /// First log position to read (default 0), 0 to 2^64 − 1.
    #[param(format = "uint64", minimum = 0)]
    pub from: Option<u64>,
    /// Log position to stop before (default: the log's size), 0 to 2^64 − 1.
    #[param(format = "uint64", minimum = 0)]
    pub to: Option<u64>,
    /// Actions per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

/// What a page of the list keeps.
struct ActionFilter {
    kinds: Vec<ActionKind>,
    action: Option<&'static str>,
    author: Option<PublicKey>,
}

impl ActionFilter {
    fn of(query: &ActionQuery) -> Result<ActionFilter, ApiError> {
        let malformed = |detail: String| Err(ApiError::MalformedRequest(detail));
        let kinds = match query.kind.as_deref() {
            None => ActionKind::ALL.to_vec(),
            Some(text) => match ActionKind::ALL.into_iter().find(|kind| kind.name() == text) {
                Some(kind) => vec![kind],
                None => {
                    return malformed(format!(
                        "unknown kind {text:?}: moderation, admin or registrar"
                    ))
                }
            },
        };
        let action = match query.action.as_deref() {
            None => None,
            Some(text) => match LISTED_ACTIONS.iter().find(|(name, _)| *name == text) {
                Some((name, kind)) if kinds.contains(kind) => Some(*name),
                Some((name, kind)) => {
                    return malformed(format!("{name} is a {} action", kind.name()))
                }
                None => {
                    return malformed(format!(
                        "{text:?} is no moderation, admin or registrar action"
                    ))
                }
            },
        };
        let author = query
            .author
            .as_deref()
            .map(crate::http::parse_key)
            .transpose()?;
        Ok(ActionFilter {
            kinds,
            action,
            author,
        })
    }
}

/// The moderation, admin and registrar actions in the log, oldest first, filtered. One page
/// reads at most 10,000 entries (`ACTION_SCAN_ENTRIES_MAX`): a page can hold fewer than `limit`
/// actions, or none, and still name where the next one starts reading.
#[utoipa::path(tag = "log", params(ActionQuery),
    responses((status = 200, body = ActionPage), ProblemStatus<400>, ProblemStatus<503>))]
#[get("/v1/log/actions")]
pub async fn log_actions(
    node: web::Data<Node>,
    query: web::Query<ActionQuery>,
) -> Reply<ActionPage> {
    let size = page_size(query.limit, 20, LIST_PAGE_ITEMS_MAX)?;
    let filter = ActionFilter::of(&query)?;
    let from = query.from.unwrap_or(0);
    if query.to.is_some_and(|to| to < from) {
        return Err(ApiError::MalformedRequest(
            "to must not be below from".into(),
        ));
    }
    // Never past the published size: the list shows what the ledger has folded. Read from the
    // log alone, which the chain proves, so it is served even while the state is unproven, as
    // `/v1/log/entries` is.
    let published = node.ledger().size;
    let end = query.to.map_or(published, |to| to.min(published));
    let node = node.clone();
    let page = off_worker(move || {
        let stretch = Stretch {
            from,
            end,
            budget: ACTION_SCAN_ENTRIES_MAX,
        };
        scan(node.store(), &filter, stretch, size)
    })
    .await?;
    Ok(web::Json(page))
}

/// Reads the stretch until `size` actions pass the filter; the next page starts where this one
/// stopped reading.
fn scan(
    store: &dyn EventStore,
    filter: &ActionFilter,
    stretch: Stretch,
    size: usize,
) -> Result<ActionPage, ApiError> {
    let (items, next) = scan_log(store, stretch, size, |entry| listed(&entry, filter))?;
    Ok(Page { items, next })
}

/// The entry as the list shows it, if it is a listed action that passes the filter.
fn listed(stored: &StoredEntry, filter: &ActionFilter) -> Result<Option<ActionView>, ApiError> {
    let unreadable = |error: String| {
        ApiError::StoreUnavailable(format!("stored entry {}: {error}", stored.position))
    };
    let entry = Entry::decode(&stored.bytes).map_err(|error| unreadable(error.to_string()))?;
    // Every listed action is a client's command; the author filter needs no parsing.
    if entry.kind == EntryKind::System || filter.author.is_some_and(|author| author != entry.signer)
    {
        return Ok(None);
    }
    let command = Command::parse(&entry.payload).map_err(|error| unreadable(error.to_string()))?;
    let Some((kind, subject, details)) = describe(&command) else {
        return Ok(None);
    };
    let name = command.action.name();
    if !filter.kinds.contains(&kind) || filter.action.is_some_and(|action| action != name) {
        return Ok(None);
    }
    Ok(Some(ActionView {
        position: stored.position,
        server_time: entry.server_time,
        kind: kind.name().into(),
        action: name.into(),
        author: command.author.to_hex(),
        subject,
        details,
    }))
}

/// An action as the list shows it: its kind, what it is about, and what else it says.
type Described = (ActionKind, SubjectView, ActionDetails);

/// The list's kind, subject and details of a command's action; `None` for actions it does not
/// hold (citizens' and officials' own acts, and the server's).
fn describe(command: &Command) -> Option<Described> {
    use ActionKind::{Moderation, Registrar};
    Some(match &command.action {
        Action::GrantRole(change) | Action::RevokeRole(change) => role_change(change),
        Action::HandOverAdmin(hand_over) => admin_change(command.author, hand_over.successor),
        Action::ApproveRecovery(approval) => admin_change(approval.revoked, approval.successor),
        Action::DefineCategory(category) => category_definition(category),
        Action::AttestResident(attestation) => attestation_of(attestation),
        // A key revoked by its own holder is a citizen's act, not a registrar's.
        Action::RevokeKey(revocation) if revocation.subject != command.author => (
            Registrar,
            key_subject(revocation.subject),
            ActionDetails::default(),
        ),
        Action::TriageComplaint(triage) => {
            let details = triage_details(&triage.decision);
            (
                Moderation,
                SubjectView::Complaint(triage.complaint),
                details,
            )
        }
        Action::MergeComplaint(merge) => merge_of(merge),
        Action::ModerateProposal(moderation) => proposal_moderation(moderation),
        Action::RedactContent(redaction) => redaction_of(redaction),
        Action::RevokeKey(_)
        | Action::RegisterKey(_)
        | Action::OpenPoll(_)
        | Action::CorrectPoll(_)
        | Action::CastBallot(_)
        | Action::RequestCredentials(_)
        | Action::CastAnonymousBallot(_)
        | Action::Genesis(_)
        | Action::ClosePoll(_)
        | Action::FileComplaint(_)
        | Action::SupplementComplaint(_)
        | Action::StartWork(_)
        | Action::ResolveComplaint(_)
        | Action::CannotResolve(_)
        | Action::ConfirmResolution(_)
        | Action::DisputeResolution(_)
        | Action::BreachSla(_)
        | Action::CloseUnconfirmed(_)
        | Action::SubmitProposal(_)
        | Action::SupportProposal(_)
        | Action::WithdrawSupport(_)
        | Action::AnswerProposal(_)
        | Action::WithdrawProposal(_)
        | Action::ExpireProposal(_)
        | Action::AttestState(_)
        | Action::MarkState(_)
        | Action::EraseContent(_) => return None,
    })
}

fn key_subject(key: PublicKey) -> SubjectView {
    SubjectView::Key(key.to_hex())
}

fn role_change(change: &RoleChange) -> Described {
    let details = ActionDetails {
        role: Some(role_name(change.role).into()),
        department: change.department.clone(),
        ..ActionDetails::default()
    };
    (ActionKind::Admin, key_subject(change.subject), details)
}

/// A hand-over or a recovery approval: `replaced` is the admin key that goes.
fn admin_change(replaced: PublicKey, successor: PublicKey) -> Described {
    let details = ActionDetails {
        successor: Some(successor.to_hex()),
        ..ActionDetails::default()
    };
    (ActionKind::Admin, key_subject(replaced), details)
}

fn category_definition(category: &CategoryDefinition) -> Described {
    let details = ActionDetails {
        department: Some(category.department.clone()),
        ..ActionDetails::default()
    };
    (
        ActionKind::Admin,
        SubjectView::Category(category.id.clone()),
        details,
    )
}

fn attestation_of(attestation: &Attestation) -> Described {
    let details = ActionDetails {
        district: attestation.district.clone(),
        ..ActionDetails::default()
    };
    (
        ActionKind::Registrar,
        key_subject(attestation.subject),
        details,
    )
}

fn merge_of(merge: &Merge) -> Described {
    let details = ActionDetails {
        related_complaint: Some(merge.into),
        ..ActionDetails::default()
    };
    (
        ActionKind::Moderation,
        SubjectView::Complaint(merge.complaint),
        details,
    )
}

fn proposal_moderation(moderation: &ProposalModeration) -> Described {
    let decision = match moderation.decision {
        ModerationDecision::Publish => "publish",
        ModerationDecision::Reject { .. } => "reject",
    };
    let details = ActionDetails {
        decision: Some(decision.into()),
        ..ActionDetails::default()
    };
    (
        ActionKind::Moderation,
        SubjectView::Proposal(moderation.proposal),
        details,
    )
}

fn redaction_of(redaction: &Redaction) -> Described {
    let details = ActionDetails {
        reason: Some(redaction_reason_name(redaction.reason).into()),
        redacts_content: true,
        ..ActionDetails::default()
    };
    (
        ActionKind::Moderation,
        SubjectView::Entry(redaction.entry),
        details,
    )
}

fn triage_details(decision: &TriageDecision) -> ActionDetails {
    let (decision, rejection) = match decision {
        TriageDecision::Accept => ("accept", None),
        TriageDecision::NeedsInfo { .. } => ("needs_info", None),
        TriageDecision::Reject { rejection } => ("reject", Some(rejection)),
    };
    ActionDetails {
        decision: Some(decision.into()),
        reason: rejection.map(|rejection| rejection.name().into()),
        related_complaint: match rejection {
            Some(RejectionReason::DuplicateOf { complaint }) => Some(*complaint),
            Some(
                RejectionReason::Spam { .. }
                | RejectionReason::OutOfScope
                | RejectionReason::InsufficientInfo,
            )
            | None => None,
        },
        redacts_content: matches!(
            rejection,
            Some(RejectionReason::Spam {
                redact_content: true
            })
        ),
        ..ActionDetails::default()
    }
}

/// A redaction's reason code as its payload names it.
fn redaction_reason_name(reason: RedactionReason) -> &'static str {
    match reason {
        RedactionReason::ThirdPartyPersonalData => "third_party_personal_data",
        RedactionReason::IllegalContent => "illegal_content",
        RedactionReason::Spam => "spam",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use ed25519_dalek::SigningKey;
    use projections::command::{Genesis, RegisterKey};
    use projections::protocol::public_key_of;
    use projections::replay::seal;
    use projections::{Ledger, SignedCommand};

    const START: Timestamp = Timestamp(1_795_428_000_000);

    /// A genesis, `citizens` registrations, then the admin's grant of the moderator role to the
    /// first citizen and its revocation: the store, and the grant's position.
    fn log_with_a_grant_after(citizens: u8) -> (MemoryStore, u64) {
        let server = SigningKey::from_bytes(&[1; 32]);
        let admin = SigningKey::from_bytes(&[2; 32]);
        let citizen = |index: u8| SigningKey::from_bytes(&[index.wrapping_add(10); 32]);
        let genesis = Action::Genesis(Genesis {
            log_origin: "actions.veche.test/log".into(),
            admin_keys: vec![public_key_of(&admin)],
            recovery: None,
        });
        let change = RoleChange {
            subject: public_key_of(&citizen(0)),
            role: Role::Moderator,
            department: None,
        };
        let mut commands = vec![(server, EntryKind::System, genesis)];
        for index in 0..citizens {
            let registration = Action::RegisterKey(RegisterKey {});
            commands.push((citizen(index), EntryKind::Command, registration));
        }
        commands.push((
            admin.clone(),
            EntryKind::Command,
            Action::GrantRole(change.clone()),
        ));
        commands.push((admin, EntryKind::Command, Action::RevokeRole(change)));
        let mut ledger = Ledger::new();
        let mut entries = Vec::new();
        for (key, kind, action) in commands {
            let time = START.plus_milliseconds(ledger.size as i64);
            let command = Command {
                author: public_key_of(&key),
                nonce: format!("{:032x}", ledger.size),
                issued_at: time,
                action,
            };
            let signed = SignedCommand::sign(&key, kind, command);
            let sealed = seal(&ledger, signed, time).expect("a valid command");
            ledger.evolve(&sealed.event);
            entries.push(StoredEntry {
                position: sealed.event.position,
                bytes: sealed.bytes,
                hash: sealed.event.hash,
                content: Vec::new(),
                erases: None,
            });
        }
        let store = MemoryStore::new();
        store.append(&entries).expect("a memory store appends");
        (store, u64::from(citizens) + 1)
    }

    fn positions(page: &ActionPage) -> Vec<(u64, &str)> {
        let listed = page.items.iter();
        listed
            .map(|item| (item.position, item.action.as_str()))
            .collect()
    }

    #[test]
    fn a_page_reads_no_more_than_its_budget_and_names_where_the_next_one_reads_from() {
        let (store, granted_at) = log_with_a_grant_after(25);
        let end = granted_at + 2;
        let filter = ActionFilter {
            kinds: ActionKind::ALL.to_vec(),
            action: None,
            author: None,
        };
        let page = |from: u64, size: usize| {
            let stretch = Stretch {
                from,
                end,
                budget: 10,
            };
            scan(&store, &filter, stretch, size).expect("the store reads")
        };
        // The first ten entries hold no listed action: an empty page that reads on from 10.
        let first = page(0, 20);
        assert!(first.items.is_empty());
        assert_eq!(first.next, Some(10));
        assert_eq!(page(10, 20).next, Some(20));
        let last = page(20, 20);
        let expected = vec![(granted_at, "grant_role"), (granted_at + 1, "revoke_role")];
        assert_eq!(positions(&last), expected);
        assert_eq!(last.next, None, "the page reached the end");
        // A full page stops at its last action, and the next reads on from just after it.
        let full = page(20, 1);
        assert_eq!(positions(&full), vec![(granted_at, "grant_role")]);
        assert_eq!(full.next, Some(granted_at + 1));
        assert_eq!(
            full.items[0].subject,
            SubjectView::Key(public_key_of(&SigningKey::from_bytes(&[10; 32])).to_hex())
        );
    }

    #[test]
    fn each_redaction_reason_is_named_as_its_payload_names_it() {
        for reason in [
            RedactionReason::ThirdPartyPersonalData,
            RedactionReason::IllegalContent,
            RedactionReason::Spam,
        ] {
            assert_eq!(
                serde_json::to_value(reason).ok(),
                Some(serde_json::Value::from(redaction_reason_name(reason))),
            );
        }
    }

    #[test]
    fn every_listed_action_name_is_an_action_of_the_protocol() {
        for (name, _) in LISTED_ACTIONS {
            assert!(Action::NAMES.contains(&name), "{name}");
        }
    }
}
