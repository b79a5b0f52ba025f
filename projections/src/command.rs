//! The command vocabulary: what a signed payload says, parsed from its exact bytes.
//!
//! A payload is a JSON object `{"action", "author", "nonce", "issued_at", "body"}`. The same shape
//! carries the server's own system events, told apart by the entry kind and the signer.

use serde::{Deserialize, Serialize};

use crate::credential::{BlindedMessage, Credential, IssuerKey};
use crate::limits;
use crate::protocol::{Commitment, PublicKey};
use crate::time::Timestamp;

/// A parsed payload. The exact bytes stay in the entry; this is only their meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub author: PublicKey,
    pub nonce: String,
    pub issued_at: Timestamp,
    pub action: Action,
}

/// What a command asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", content = "body", rename_all = "snake_case")]
pub enum Action {
    /// The author registers their own key: self-signed, which proves they hold the secret half.
    RegisterKey(RegisterKey),
    /// The admin grants a role to a registered key.
    GrantRole(RoleChange),
    /// The admin revokes a role.
    RevokeRole(RoleChange),
    /// An admin key hands its office to a new key, and stops being an admin.
    HandOverAdmin(AdminHandOver),
    /// A recovery key named at genesis approves replacing an admin key; the approval that reaches
    /// the genesis threshold makes the replacement.
    ApproveRecovery(RecoveryApproval),
    /// An official opens a poll.
    OpenPoll(PollDefinition),
    /// The poll's author publishes a new version of its definition while it runs: the earlier
    /// versions stay public, and ballots follow the rule in `ledger::polls::corrections`.
    CorrectPoll(PollCorrection),
    /// A citizen casts (or, where allowed, replaces) a ballot.
    CastBallot(CastBallot),
    /// An eligible citizen asks an anonymous poll's issuers to blind-sign their credential
    /// messages: once per resident per poll, naming the citizen's key.
    RequestCredentials(CredentialRequest),
    /// A ballot in an anonymous poll, signed by a per-poll ballot key that the issuers'
    /// credentials cover, naming nothing of the citizen's own key.
    CastAnonymousBallot(AnonymousBallot),
    /// System: the first entry, naming the server key and the admin keys.
    Genesis(Genesis),
    /// System: a poll's close, carrying its final tally.
    ClosePoll(ClosePoll),
    /// A registrar attests a key's district and verified status (no personal data).
    AttestResident(Attestation),
    /// A key holder revokes their own key, or a registrar revokes it for them (a lost phone):
    /// the key can do nothing more and its attestation ends.
    RevokeKey(KeyRevocation),
    /// The admin adds a category to the catalogue, or publishes a new version of one.
    DefineCategory(CategoryDefinition),
    /// A citizen files an "Our City" complaint.
    FileComplaint(ComplaintFiling),
    /// A moderator accepts (and routes), rejects, or asks for details.
    TriageComplaint(Triage),
    /// A moderator merges a complaint into another one about the same problem.
    MergeComplaint(Merge),
    /// The author adds the details a moderator asked for.
    SupplementComplaint(Supplement),
    /// An official of the responsible department starts work.
    StartWork(ComplaintReference),
    /// An official of the responsible department reports the problem fixed.
    ResolveComplaint(Resolution),
    /// An official of the responsible department reports it cannot be fixed.
    CannotResolve(CannotResolve),
    /// The author confirms the fix.
    ConfirmResolution(ComplaintReference),
    /// The author disputes the fix: the complaint reopens.
    DisputeResolution(Dispute),
    /// System: the deadline passed before a resolution.
    BreachSla(ComplaintReference),
    /// System: the confirmation window ended in silence.
    CloseUnconfirmed(ComplaintReference),
    /// A citizen submits a proposal.
    SubmitProposal(ProposalSubmission),
    /// A moderator publishes or rejects a submitted proposal.
    ModerateProposal(ProposalModeration),
    /// A citizen supports a published proposal.
    SupportProposal(ProposalReference),
    /// A citizen withdraws their support before the threshold is reached.
    WithdrawSupport(ProposalReference),
    /// An official of the category's department answers a proposal under review.
    AnswerProposal(ProposalAnswer),
    /// The author withdraws their proposal before review.
    WithdrawProposal(ProposalReference),
    /// System: a published proposal's lifetime ended below the threshold.
    ExpireProposal(ProposalReference),
    /// System: the digest of the ledger at one size. Either every entry before this one folds
    /// to it (written just before a stopping node's snapshot), or it is the state at the latest
    /// `mark_state` (written once a background snapshot of that state is made), so the log
    /// itself proves every snapshot.
    AttestState(StateAttestation),
    /// System: the state every entry before this one folds to will be attested later, by an
    /// `attest_state` naming this entry's position; every replay keeps that state's digest.
    MarkState(StateMark),
    /// The author erases the content one of their entries commits to.
    EraseContent(ContentReference),
    /// A moderator redacts the content of any entry, with a public reason.
    RedactContent(Redaction),
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::RegisterKey(_) => "register_key",
            Action::GrantRole(_) => "grant_role",
            Action::RevokeRole(_) => "revoke_role",
            Action::HandOverAdmin(_) => "hand_over_admin",
            Action::ApproveRecovery(_) => "approve_recovery",
            Action::OpenPoll(_) => "open_poll",
            Action::CorrectPoll(_) => "correct_poll",
            Action::CastBallot(_) => "cast_ballot",
            Action::RequestCredentials(_) => "request_credentials",
            Action::CastAnonymousBallot(_) => "cast_anonymous_ballot",
            Action::Genesis(_) => "genesis",
            Action::ClosePoll(_) => "close_poll",
            Action::AttestResident(_) => "attest_resident",
            Action::RevokeKey(_) => "revoke_key",
            Action::DefineCategory(_) => "define_category",
            Action::FileComplaint(_) => "file_complaint",
            Action::TriageComplaint(_) => "triage_complaint",
            Action::MergeComplaint(_) => "merge_complaint",
            Action::SupplementComplaint(_) => "supplement_complaint",
            Action::StartWork(_) => "start_work",
            Action::ResolveComplaint(_) => "resolve_complaint",
            Action::CannotResolve(_) => "cannot_resolve",
            Action::ConfirmResolution(_) => "confirm_resolution",
            Action::DisputeResolution(_) => "dispute_resolution",
            Action::BreachSla(_) => "breach_sla",
            Action::CloseUnconfirmed(_) => "close_unconfirmed",
            Action::SubmitProposal(_) => "submit_proposal",
            Action::ModerateProposal(_) => "moderate_proposal",
            Action::SupportProposal(_) => "support_proposal",
            Action::WithdrawSupport(_) => "withdraw_support",
            Action::AnswerProposal(_) => "answer_proposal",
            Action::WithdrawProposal(_) => "withdraw_proposal",
            Action::ExpireProposal(_) => "expire_proposal",
            Action::AttestState(_) => "attest_state",
            Action::MarkState(_) => "mark_state",
            Action::EraseContent(_) => "erase_content",
            Action::RedactContent(_) => "redact_content",
        }
    }

    /// Every action name, in the order of the protocol document.
    pub const NAMES: [&'static str; 37] = [
        "register_key",
        "grant_role",
        "revoke_role",
        "hand_over_admin",
        "approve_recovery",
        "open_poll",
        "correct_poll",
        "cast_ballot",
        "request_credentials",
        "cast_anonymous_ballot",
        "genesis",
        "close_poll",
        "attest_resident",
        "revoke_key",
        "define_category",
        "file_complaint",
        "triage_complaint",
        "merge_complaint",
        "supplement_complaint",
        "start_work",
        "resolve_complaint",
        "cannot_resolve",
        "confirm_resolution",
        "dispute_resolution",
        "breach_sla",
        "close_unconfirmed",
        "submit_proposal",
        "moderate_proposal",
        "support_proposal",
        "withdraw_support",
        "answer_proposal",
        "withdraw_proposal",
        "expire_proposal",
        "attest_state",
        "mark_state",
        "erase_content",
        "redact_content",
    ];

    /// The complaint a lifecycle action (not the filing) is about.
    pub fn complaint(&self) -> Option<u64> {
        match self {
            Action::TriageComplaint(Triage { complaint, .. })
            | Action::MergeComplaint(Merge { complaint, .. })
            | Action::SupplementComplaint(Supplement { complaint, .. })
            | Action::StartWork(ComplaintReference { complaint })
            | Action::ResolveComplaint(Resolution { complaint, .. })
            | Action::CannotResolve(CannotResolve { complaint, .. })
            | Action::ConfirmResolution(ComplaintReference { complaint })
            | Action::DisputeResolution(Dispute { complaint, .. })
            | Action::BreachSla(ComplaintReference { complaint })
            | Action::CloseUnconfirmed(ComplaintReference { complaint }) => Some(*complaint),
            _ => None,
        }
    }

    /// The proposal a lifecycle action (not the submission) is about.
    pub fn proposal(&self) -> Option<u64> {
        match self {
            Action::ModerateProposal(ProposalModeration { proposal, .. })
            | Action::SupportProposal(ProposalReference { proposal })
            | Action::WithdrawSupport(ProposalReference { proposal })
            | Action::AnswerProposal(ProposalAnswer { proposal, .. })
            | Action::WithdrawProposal(ProposalReference { proposal })
            | Action::ExpireProposal(ProposalReference { proposal }) => Some(*proposal),
            _ => None,
        }
    }

    /// Whether only the server may sign this action.
    pub fn is_system(&self) -> bool {
        matches!(
            self,
            Action::Genesis(_)
                | Action::ClosePoll(_)
                | Action::BreachSla(_)
                | Action::CloseUnconfirmed(_)
                | Action::ExpireProposal(_)
                | Action::AttestState(_)
                | Action::MarkState(_)
        )
    }
}

/// Reads an action name back as the `'static` name `Action::name` gives (timelines in snapshots).
pub fn deserialize_action_name<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<std::borrow::Cow<'static, str>, D::Error> {
    let text = String::deserialize(deserializer)?;
    Action::NAMES
        .iter()
        .find(|name| **name == text)
        .map(|name| std::borrow::Cow::Borrowed(*name))
        .ok_or_else(|| serde::de::Error::custom(format!("no action is named {text:?}")))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RegisterKey {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Official,
    Moderator,
    Registrar,
    /// A call centre or another reporting service that files complaints on behalf of residents
    /// who hold no key (Open311's `POST requests`): its filings say `through_gateway`.
    Gateway,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub subject: PublicKey,
    pub role: Role,
    /// The department an official answers for; required for officials, absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceKind {
    SingleChoice,
    MultipleChoice,
}

/// Who may vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Audience {
    /// Every key registered before its ballot.
    Everyone,
    /// Keys a registrar has attested as verified residents.
    Verified,
    /// Keys a registrar has attested as verified residents of one of these districts.
    Districts { districts: Vec<String> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TallyVisibility {
    /// Running counts are published while the poll is open.
    Public,
    /// Running counts are withheld by the API until the close event.
    Sealed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollDefinition {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub options: Vec<String>,
    pub choice_kind: ChoiceKind,
    /// Most options one ballot may choose: 1 for single choice.
    pub max_choices: u32,
    pub audience: Audience,
    pub opens_at: Timestamp,
    pub closes_at: Timestamp,
    /// Whether a citizen may cast a new ballot that replaces their earlier one before close.
    pub vote_changes_allowed: bool,
    pub tally_visibility: TallyVisibility,
    /// Present for an anonymous poll: ballots are signed by per-poll keys that these issuers'
    /// credentials cover, not by the citizens' own keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<Anonymity>,
}

/// Who issues an anonymous poll's credentials (RFC 9474 blind signatures).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anonymity {
    /// The node's issuer keys, held for the registrar role: one for the whole audience, or, for
    /// a district audience, one per district in the audience's order, so that each ballot's
    /// credential says which district's residents it counts among and nothing more.
    pub issuer_keys: Vec<IssuerKey>,
    /// An independent co-issuer's key (an observers' organisation): when present, every ballot
    /// also carries its credential, so stuffing takes both issuers colluding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co_issuer_key: Option<IssuerKey>,
}

/// A new version of a running poll's definition. `replaces` names the version it corrects, which
/// must be the current one (the opening is version 1, each correction the next), so an official
/// who did not see an earlier correction is refused rather than silently undoing it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollCorrection {
    /// The poll's identifier: the log position of its `open_poll` entry.
    pub poll: u64,
    /// The version this one replaces: the poll's current version.
    pub replaces: u32,
    /// The whole new definition. Only the title, the description, the options, `max_choices`
    /// and `closes_at` may differ from the current one.
    pub definition: PollDefinition,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CastBallot {
    /// The poll's identifier: the log position of its `open_poll` entry.
    pub poll: u64,
    /// Indices into the poll's options, counted from zero.
    pub choices: Vec<u32>,
    /// The version of the poll's definition the voter chose from (see `correct_poll`): when
    /// given and not the current one, the ballot is refused as `stale-poll-version`, so a
    /// correction landing first cannot turn its indices into other options. Optional, so that
    /// ballots signed before corrections existed read back unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// A citizen's request for an anonymous poll's credentials: blinded credential messages, which
/// the issuers sign without learning the ballot key inside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRequest {
    pub poll: u64,
    /// For the node's issuer key of the author's district (the poll's only key otherwise).
    pub blinded_message: BlindedMessage,
    /// For the co-issuer's key: present exactly when the poll names a co-issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co_issuer_blinded_message: Option<BlindedMessage>,
}

/// A ballot in an anonymous poll. Its author is the per-poll ballot key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnonymousBallot {
    pub poll: u64,
    /// Indices into the poll's options, counted from zero.
    pub choices: Vec<u32>,
    /// The district whose issuer key the credential is under: present exactly when the poll's
    /// audience is a list of districts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// The node issuer's credential over this ballot key in this poll.
    pub credential: Credential,
    /// The co-issuer's credential: present exactly when the poll names a co-issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co_issuer_credential: Option<Credential>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub log_origin: String,
    pub admin_keys: Vec<PublicKey>,
    /// The keys that, enough of them together, replace a lost or leaked admin key. Fixed at
    /// genesis: nothing in the log can change who may recover it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoveryQuorum>,
}

/// `threshold` of `keys` must approve the same replacement of an admin key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryQuorum {
    pub keys: Vec<PublicKey>,
    pub threshold: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminHandOver {
    /// The key that becomes an admin in the author's place.
    pub successor: PublicKey,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryApproval {
    /// The admin key to strip of its office (lost or leaked).
    pub revoked: PublicKey,
    /// The key that becomes an admin in its place.
    pub successor: PublicKey,
}

/// The numbers of one poll at one moment: the shape of both the live and the final tally.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Tally {
    /// Counted choices per option, in option order.
    pub counts: Vec<u64>,
    /// Citizens with a counted ballot.
    pub turnout: u64,
    /// Ballots replaced by a later ballot of the same citizen (publicly counted, not in `counts`).
    pub superseded_ballots: u64,
    /// Ballots voided by a correction that changed the options (publicly counted, not in
    /// `counts`): their voters vote again. Absent while zero, so the close events of logs
    /// written before corrections existed read back unchanged.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub voided_ballots: u64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosePoll {
    pub poll: u64,
    pub final_tally: Tally,
    /// The Merkle tree over every entry before this one: the server publishes its signed
    /// checkpoint, so a tally can be checked against a log state anyone can pin.
    pub checkpoint: CheckpointReference,
}

/// What the server attests of the ledger at one size: the SHA-256 of its canonical snapshot
/// encoding (`ledger::snapshot::encode`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateAttestation {
    /// The entries folded: the attestation's own position, or that of the latest
    /// `mark_state`, not yet attested.
    pub size: u64,
    /// The digest, hex.
    pub ledger_sha256: String,
}

/// Where the server will attest the state later: the mark's own position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateMark {
    /// The entries folded: the mark's own position.
    pub size: u64,
}

/// A tree size and its Merkle root: what a signed checkpoint of this log commits to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointReference {
    pub size: u64,
    /// The RFC 6962 root of the first `size` entries, hex (the checkpoint note shows it in base64).
    pub root: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    pub subject: PublicKey,
    /// The district the registrar found the resident lives in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// Whether the registrar verified the key holder as an eligible resident.
    pub verified: bool,
    /// The registrar's opaque tag for the resident (64 lowercase hex characters, e.g. an
    /// HMAC-SHA-256 of their identity under a secret that never enters the log): the same
    /// resident always gets the same tag, so the log shows one active key per resident without
    /// saying who they are. Required when `verified` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_tag: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRevocation {
    /// The key to revoke: the author's own, or, signed by a registrar, a resident's lost key.
    pub subject: PublicKey,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryDefinition {
    /// Stable identifier, lowercase letters, digits and hyphens, e.g. `street-lighting`.
    pub id: String,
    pub name: String,
    /// The department complaints in this category are routed to, and whose officials answer
    /// proposals in it.
    pub department: String,
    /// Working days (Monday to Friday) a department has to resolve an accepted complaint.
    pub sla_working_days: u32,
    /// Days the author has to confirm or dispute a resolution.
    pub confirmation_window_days: u32,
    /// Supports that move a published proposal to review.
    pub support_threshold: u64,
    /// Days a published proposal stays open for supports.
    pub proposal_lifetime_days: u32,
    /// Whether only keys attested as verified residents support proposals in this category,
    /// one support per resident tag (whichever of the resident's keys gave it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub supports_from_residents_only: bool,
}

/// Degrees of latitude or longitude. Compared by bits so that commands stay `Eq`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Degrees(pub f64);

impl PartialEq for Degrees {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Degrees {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub latitude: Degrees,
    pub longitude: Degrees,
    /// The street address, committed: it locates a home more exactly than the public grid.
    pub address: Commitment,
    pub district: String,
}

/// A photo or document, by content hash: the log never holds the bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// SHA-256 of the file's bytes, 64 lowercase hexadecimal characters.
    pub sha256: String,
    /// Where the file is, committed: a URL can name a person or carry one's data.
    pub url: Commitment,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintFiling {
    pub category: String,
    /// The citizen's own words, committed (erasable content beside the log).
    pub description: Commitment,
    pub location: Location,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// The signer is a gateway filing for a resident who holds no key. Only a key holding the
    /// gateway role may say so; absent (false) in every other filing, whose bytes stay as they
    /// were.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub through_gateway: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintReference {
    /// The complaint's identifier: the log position of its `file_complaint` entry.
    pub complaint: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case", deny_unknown_fields)]
pub enum RejectionReason {
    /// Spam; the moderator may redact the complaint's filed content in the same step, so that
    /// taking spam down is one public act rather than two.
    Spam {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redact_content: bool,
    },
    DuplicateOf {
        complaint: u64,
    },
    OutOfScope,
    InsufficientInfo,
}

impl RejectionReason {
    /// The reason's name on the wire (its `reason` tag), as the complaint's timeline notes it.
    pub fn name(&self) -> &'static str {
        match self {
            RejectionReason::Spam { .. } => "spam",
            RejectionReason::DuplicateOf { .. } => "duplicate_of",
            RejectionReason::OutOfScope => "out_of_scope",
            RejectionReason::InsufficientInfo => "insufficient_info",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case", deny_unknown_fields)]
pub enum TriageDecision {
    /// Accept and route to the category's department; the deadline follows from its SLA.
    Accept,
    Reject {
        rejection: RejectionReason,
    },
    NeedsInfo {
        question: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triage {
    pub complaint: u64,
    pub decision: TriageDecision,
}

impl Triage {
    /// Does this triage reject the complaint as spam and redact its filed content with it?
    pub fn redacts_content(&self) -> bool {
        matches!(
            self.decision,
            TriageDecision::Reject {
                rejection: RejectionReason::Spam {
                    redact_content: true
                }
            }
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    /// The complaint that stops here.
    pub complaint: u64,
    /// The complaint that carries on, with the merged one in its lineage.
    pub into: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Supplement {
    pub complaint: u64,
    /// The details the author adds, committed.
    pub text: Commitment,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    pub complaint: u64,
    pub answer: String,
    /// Photos of the fix, by content hash.
    #[serde(default)]
    pub evidence: Vec<Attachment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannotResolve {
    pub complaint: u64,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dispute {
    pub complaint: u64,
    /// The author's reason, committed.
    pub reason: Commitment,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalSubmission {
    /// The title and body are the author's own words, committed.
    pub title: Commitment,
    pub body: Commitment,
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalReference {
    /// The proposal's identifier: the log position of its `submit_proposal` entry.
    pub proposal: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModerationDecision {
    Publish,
    Reject { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalModeration {
    pub proposal: u64,
    pub decision: ModerationDecision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalOutcome {
    Accepted,
    Declined,
    Implemented,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposalAnswer {
    pub proposal: u64,
    pub outcome: ProposalOutcome,
    pub answer: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentReference {
    /// The position of the entry whose committed content is erased.
    pub entry: u64,
}

/// Why a moderator redacts content: a public code, never free text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedactionReason {
    ThirdPartyPersonalData,
    IllegalContent,
    Spam,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// The position of the entry whose committed content is redacted.
    pub entry: u64,
    pub reason: RedactionReason,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ParseError {
    #[error(
        "payload is {length_bytes} bytes; at most {} are allowed",
        limits::PAYLOAD_BYTES_MAX
    )]
    TooLarge { length_bytes: usize },
    #[error("payload is not a valid command: {0}")]
    Malformed(String),
    #[error("action {0:?} is not known")]
    UnknownAction(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand<'payload> {
    action: String,
    author: PublicKey,
    nonce: String,
    issued_at: Timestamp,
    /// Kept as raw text: going through `serde_json::Value` would silently keep the last of two
    /// duplicate fields, where the typed body refuses duplicates.
    #[serde(borrow)]
    body: &'payload serde_json::value::RawValue,
}

impl Command {
    /// Parses a payload's exact bytes. Unknown fields anywhere are refused, so two readers can
    /// never disagree about what a signed command says.
    pub fn parse(payload: &[u8]) -> Result<Command, ParseError> {
        if payload.len() > limits::PAYLOAD_BYTES_MAX {
            return Err(ParseError::TooLarge {
                length_bytes: payload.len(),
            });
        }
        let raw: RawCommand = serde_json::from_slice(payload)
            .map_err(|error| ParseError::Malformed(error.to_string()))?;
        if raw.nonce.len() != limits::NONCE_HEX_CHARS
            || !raw
                .nonce
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ParseError::Malformed(format!(
                "nonce must be {} lowercase hexadecimal characters",
                limits::NONCE_HEX_CHARS
            )));
        }
        if !Action::NAMES.contains(&raw.action.as_str()) {
            return Err(ParseError::UnknownAction(raw.action));
        }
        // The action name is one of the known names, so it needs no escaping.
        let tagged = format!(
            "{{\"action\":\"{}\",\"body\":{}}}",
            raw.action,
            raw.body.get()
        );
        let action: Action = serde_json::from_str(&tagged)
            .map_err(|error| ParseError::Malformed(format!("body: {error}")))?;
        Ok(Command {
            author: raw.author,
            nonce: raw.nonce,
            issued_at: raw.issued_at,
            action,
        })
    }

    /// The canonical payload bytes veche's own clients sign. Any other byte-exact JSON with the
    /// same meaning is equally valid: the server keeps whatever bytes were signed.
    pub fn to_payload(&self) -> Vec<u8> {
        let payload = Payload {
            action: self.action.name(),
            author: self.author,
            nonce: &self.nonce,
            issued_at: self.issued_at,
            body: self.action.body(),
        };
        match serde_json::to_vec(&payload) {
            Ok(bytes) => bytes,
            // Strings, a key, a time and a JSON value: nothing here can fail to serialise.
            Err(error) => unreachable!("a command payload failed to serialise: {error}"),
        }
    }
}

/// The payload's members in the canonical order; serde writes them in declaration order.
#[derive(Serialize)]
struct Payload<'command> {
    action: &'static str,
    author: PublicKey,
    nonce: &'command str,
    issued_at: Timestamp,
    /// Through `serde_json::Value`, as the payload has always been built: its members are written
    /// in the order `Value` keeps, which is what existing signed payloads and tests pin.
    body: serde_json::Value,
}

impl Action {
    /// The action's body as JSON: the `content` half of its adjacently tagged form.
    fn body(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => match tagged.remove("body") {
                Some(body) => body,
                None => unreachable!("action {} serialised without a body", self.name()),
            },
            Ok(other) => unreachable!("action {} serialised as {other}", self.name()),
            Err(error) => unreachable!("action {} failed to serialise: {error}", self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_reason_is_named_as_its_wire_tag() {
        for reason in [
            RejectionReason::Spam {
                redact_content: false,
            },
            RejectionReason::Spam {
                redact_content: true,
            },
            RejectionReason::DuplicateOf { complaint: 7 },
            RejectionReason::OutOfScope,
            RejectionReason::InsufficientInfo,
        ] {
            let wire = serde_json::to_value(&reason).unwrap();
            assert_eq!(wire["reason"], reason.name(), "{reason:?}");
        }
    }

    #[test]
    fn a_spam_rejection_redacts_only_when_it_says_so_and_keeps_its_old_bytes_otherwise() {
        let plain: RejectionReason = serde_json::from_str(r#"{"reason":"spam"}"#).unwrap();
        let keeps = RejectionReason::Spam {
            redact_content: false,
        };
        assert_eq!(plain, keeps);
        assert_eq!(
            serde_json::to_string(&keeps).unwrap(),
            r#"{"reason":"spam"}"#
        );
        let redacting = r#"{"reason":"spam","redact_content":true}"#;
        let parsed: RejectionReason = serde_json::from_str(redacting).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), redacting);
        let triage = |rejection| Triage {
            complaint: 4,
            decision: TriageDecision::Reject { rejection },
        };
        assert!(triage(parsed).redacts_content());
        assert!(!triage(keeps).redacts_content());
        assert!(!triage(RejectionReason::OutOfScope).redacts_content());
    }

    fn key() -> PublicKey {
        PublicKey([3; 32])
    }

    fn ballot() -> Command {
        Command {
            author: key(),
            nonce: "00112233445566778899aabbccddeeff".into(),
            issued_at: Timestamp(1_795_000_000_000),
            action: Action::CastBallot(CastBallot {
                version: None,
                poll: 4,
                choices: vec![1],
            }),
        }
    }

    #[test]
    fn a_payload_parses_back_to_its_command() {
        let command = ballot();
        assert_eq!(Command::parse(&command.to_payload()), Ok(command));
    }

    #[test]
    fn register_key_has_an_empty_body() {
        let command = Command {
            action: Action::RegisterKey(RegisterKey {}),
            ..ballot()
        };
        let payload = String::from_utf8(command.to_payload()).unwrap();
        assert!(payload.ends_with(r#""body":{}}"#), "{payload}");
        assert_eq!(Command::parse(payload.as_bytes()), Ok(command));
    }

    /// `payload` does not read as a command: its shape is wrong.
    fn assert_malformed(payload: &str) {
        let parsed = Command::parse(payload.as_bytes());
        assert!(
            matches!(parsed, Err(ParseError::Malformed(_))),
            "{payload}: {parsed:?}"
        );
    }

    #[test]
    fn unknown_fields_and_actions_are_refused() {
        let payload = String::from_utf8(ballot().to_payload()).unwrap();
        assert_malformed(&payload.replacen("\"choices\"", "\"extra\":1,\"choices\"", 1));
        assert_malformed(&payload.replacen("{", "{\"x\":1,", 1));
        let unknown = payload.replacen("cast_ballot", "stuff_ballot_box", 1);
        assert_eq!(
            Command::parse(unknown.as_bytes()),
            Err(ParseError::UnknownAction("stuff_ballot_box".into()))
        );
    }

    #[test]
    fn a_duplicate_field_in_the_body_is_refused_rather_than_read_two_ways() {
        let payload = String::from_utf8(ballot().to_payload()).unwrap();
        let twice = payload.replacen("\"choices\":[1]", "\"choices\":[0],\"choices\":[1]", 1);
        assert_ne!(twice, payload);
        assert_malformed(&twice);
    }

    #[test]
    fn a_signed_latitude_is_read_as_exactly_the_number_its_digits_name() {
        // serde_json's default reader took these digits for 55.7925, one unit in the last place
        // away: the API then served a location the citizen never signed.
        let latitude = 55.70 + 925.0 / 10_000.0;
        assert_eq!(latitude.to_string(), "55.792500000000004");
        let command = Command {
            action: Action::FileComplaint(ComplaintFiling {
                category: "potholes".into(),
                description: crate::content::Commitment([1; 32]),
                location: Location {
                    latitude: Degrees(latitude),
                    longitude: Degrees(37.55 + 641.0 / 10_000.0),
                    address: crate::content::Commitment([2; 32]),
                    district: "Arbat".into(),
                },
                attachments: vec![],
                through_gateway: false,
            }),
            ..ballot()
        };
        let payload = command.to_payload();
        assert!(String::from_utf8_lossy(&payload).contains("55.792500000000004"));
        assert_eq!(Command::parse(&payload), Ok(command));
    }

    #[test]
    fn a_coordinate_reads_as_the_nearest_number_and_writes_back_to_the_same_number() {
        // Found by the `envelope` fuzz target: without serde_json's `float_roundtrip` feature
        // these read one unit in the last place off, so veche and a correctly rounding reader
        // (a browser, Python) disagreed about a signed location, and the number veche wrote
        // back read as yet another one.
        for text in [
            "43.368777184031444",
            "2.2222222222222198e46",
            "-56.908638419844124",
        ] {
            let expected: f64 = text.parse().unwrap();
            let payload = String::from_utf8(ballot().to_payload())
                .unwrap()
                .replacen(
                    "\"action\":\"cast_ballot\"",
                    "\"action\":\"file_complaint\"",
                    1,
                )
                .replacen(
                    "{\"choices\":[1],\"poll\":4}",
                    &format!(
                        "{{\"category\":\"roads\",\"description\":\"{commitment}\",\"location\":\
                         {{\"latitude\":{text},\"longitude\":0,\"address\":\"{commitment}\",\"district\":\"d\"}}}}",
                        commitment = "ab".repeat(32)
                    ),
                    1,
                );
            let command = Command::parse(payload.as_bytes());
            let Ok(Command {
                action: Action::FileComplaint(filing),
                ..
            }) = &command
            else {
                panic!("{payload} did not parse as a complaint: {command:?}");
            };
            assert_eq!(filing.location.latitude, Degrees(expected), "{text}");
            let written = command.as_ref().map(Command::to_payload).unwrap();
            assert_eq!(Command::parse(&written), command);
        }
    }

    #[test]
    fn nonces_must_be_sixteen_bytes_of_lowercase_hex() {
        let payload = String::from_utf8(ballot().to_payload()).unwrap();
        assert_malformed(&payload.replacen("00112233445566778899aabbccddeeff", "0011", 1));
    }
}
