//! Why a command may not be appended: one variant per stable, documented problem type.

/// Why a command may not be appended. Each variant is a stable, documented problem type.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum Refusal {
    #[error("the command was issued too long ago; sign a fresh one")]
    StaleCommand,
    #[error("the command's issue time is too far in the future")]
    FutureCommand,
    #[error("this author already used this nonce")]
    ReplayedNonce,
    #[error("the key is weak (small order) and can never be registered")]
    WeakKey,
    #[error("the key is already registered")]
    KeyAlreadyRegistered,
    #[error("the key is not registered")]
    KeyNotRegistered,
    #[error("only an admin key may do this")]
    NotAdmin,
    #[error("only an official may do this")]
    NotOfficial,
    #[error("only the server signs system events")]
    SystemOnly,
    #[error("the signer of the entry is not the author of the command")]
    SignerIsNotAuthor,
    #[error("invalid role change: {0}")]
    InvalidRoleChange(String),
    #[error("the key does not hold that role")]
    RoleNotHeld,
    #[error("the key already holds that role")]
    RoleAlreadyHeld,
    #[error("invalid poll: {0}")]
    InvalidPoll(String),
    #[error("no poll has that identifier")]
    UnknownPoll,
    #[error("the poll is not open yet")]
    PollNotOpenYet,
    #[error("the poll is closed")]
    PollClosed,
    #[error("the key is not eligible to vote in this poll")]
    NotEligible,
    #[error("the ballot chooses an option the poll does not have")]
    UnknownOption,
    #[error("the ballot chooses more options than the poll allows")]
    TooManyChoices,
    #[error("the ballot chooses the same option twice")]
    DuplicateChoice,
    #[error("the ballot chooses nothing")]
    EmptyBallot,
    #[error("a ballot was already cast and this poll does not allow changing it")]
    BallotAlreadyCast,
    #[error("genesis must be the first entry and only the first")]
    MisplacedGenesis,
    #[error("the log has no genesis entry")]
    MissingGenesis,
    #[error("the poll is already closed")]
    PollAlreadyClosed,
    #[error("the poll's closing time has not come")]
    PollNotDue,
    #[error("the close event's final tally differs from the recount")]
    FinalTallyMismatch,
    #[error("the close event's checkpoint is not the Merkle tree of the log before it")]
    CheckpointMismatch,
    #[error("only a moderator may do this")]
    NotModerator,
    #[error("only a registrar may do this")]
    NotRegistrar,
    #[error("only a key holding the gateway role may file a complaint through a gateway")]
    NotGateway,
    #[error("only an official of the responsible department may do this")]
    NotResponsibleDepartment,
    #[error("only the author may do this")]
    NotAuthor,
    #[error("the catalogue has no such category")]
    UnknownCategory,
    #[error("invalid category: {0}")]
    InvalidCategory(String),
    #[error("invalid attestation: {0}")]
    InvalidAttestation(String),
    #[error("invalid complaint: {0}")]
    InvalidComplaint(String),
    #[error("no complaint has that identifier")]
    UnknownComplaint,
    #[error("{action} is not allowed while the item is {status}")]
    TransitionNotAllowed {
        action: &'static str,
        status: &'static str,
    },
    #[error("the window to confirm or dispute this resolution has closed")]
    ConfirmationWindowClosed,
    #[error("invalid proposal: {0}")]
    InvalidProposal(String),
    #[error("no proposal has that identifier")]
    UnknownProposal,
    #[error("this key already supports the proposal")]
    AlreadySupported,
    #[error("this key does not support the proposal")]
    NotSupported,
    #[error("the proposal reached its threshold; supports can no longer be withdrawn")]
    ThresholdReached,
    #[error("the system event is not due")]
    EventNotDue,
    #[error("no entry at that position commits to content")]
    UnknownContent,
    #[error("that entry's content is already erased")]
    ContentAlreadyErased,
    #[error("invalid admin change: {0}")]
    InvalidAdminChange(String),
    #[error("only a recovery key named at genesis may do this")]
    NotRecoveryKey,
    #[error("this recovery key already approved this replacement")]
    RecoveryAlreadyApproved,
    #[error("separation of duties: {0}")]
    SeparationOfDuties(String),
    #[error("the state attestation does not name the size and digest the log folds to")]
    StateDigestMismatch,
    #[error("the key was revoked and can do nothing more")]
    KeyRevoked,
    #[error("another active key is attested for this resident; revoke it first")]
    ResidentAlreadyAttested,
    #[error("only a key attested as a verified resident may support proposals in this category")]
    NotAttestedResident,
    #[error("the poll is not anonymous: it has no credentials to issue and takes ballots signed by citizens' own keys")]
    PollNotAnonymous,
    #[error(
        "the poll is anonymous: its ballots are signed by per-poll keys and carry credentials"
    )]
    PollIsAnonymous,
    #[error("this resident already requested credentials for this poll")]
    CredentialsAlreadyRequested,
    #[error("invalid blinded message: {0}")]
    InvalidBlindedMessage(String),
    #[error("invalid credential: {0}")]
    InvalidCredential(String),
    #[error("the ballot lacks a credential the poll requires: {0}")]
    MissingCredential(String),
    #[error("as many ballot keys are counted under this issuer key as credentials were requested: a further one was never issued on the log")]
    CredentialsExhausted,
    #[error("the correction names a version of the poll that is not its current one; read the poll again")]
    StalePollVersion,
}

impl Refusal {
    /// One of each refusal, for documentation checks and coverage tests, in the order
    /// `example_after` chains them.
    pub fn examples() -> Vec<Refusal> {
        let mut all = vec![Refusal::StaleCommand];
        while let Some(next) = all.last().and_then(Refusal::example_after) {
            assert!(
                !all.contains(&next),
                "the example chain returns to {next:?}"
            );
            all.push(next);
        }
        all
    }

    // long-function: one arm per refusal, the exhaustive chain that makes a new one take a place.
    /// The example listed after this refusal's. The match is exhaustive, so a new variant does
    /// not compile until it is given a place in the chain (whose length the coverage tests
    /// check).
    fn example_after(&self) -> Option<Refusal> {
        match self {
            Refusal::StaleCommand => Some(Refusal::FutureCommand),
            Refusal::FutureCommand => Some(Refusal::ReplayedNonce),
            Refusal::ReplayedNonce => Some(Refusal::WeakKey),
            Refusal::WeakKey => Some(Refusal::KeyAlreadyRegistered),
            Refusal::KeyAlreadyRegistered => Some(Refusal::KeyNotRegistered),
            Refusal::KeyNotRegistered => Some(Refusal::NotAdmin),
            Refusal::NotAdmin => Some(Refusal::NotOfficial),
            Refusal::NotOfficial => Some(Refusal::SystemOnly),
            Refusal::SystemOnly => Some(Refusal::SignerIsNotAuthor),
            Refusal::SignerIsNotAuthor => Some(Refusal::InvalidRoleChange(String::new())),
            Refusal::InvalidRoleChange(_) => Some(Refusal::RoleNotHeld),
            Refusal::RoleNotHeld => Some(Refusal::RoleAlreadyHeld),
            Refusal::RoleAlreadyHeld => Some(Refusal::InvalidPoll(String::new())),
            Refusal::InvalidPoll(_) => Some(Refusal::UnknownPoll),
            Refusal::UnknownPoll => Some(Refusal::PollNotOpenYet),
            Refusal::PollNotOpenYet => Some(Refusal::PollClosed),
            Refusal::PollClosed => Some(Refusal::NotEligible),
            Refusal::NotEligible => Some(Refusal::UnknownOption),
            Refusal::UnknownOption => Some(Refusal::TooManyChoices),
            Refusal::TooManyChoices => Some(Refusal::DuplicateChoice),
            Refusal::DuplicateChoice => Some(Refusal::EmptyBallot),
            Refusal::EmptyBallot => Some(Refusal::BallotAlreadyCast),
            Refusal::BallotAlreadyCast => Some(Refusal::MisplacedGenesis),
            Refusal::MisplacedGenesis => Some(Refusal::MissingGenesis),
            Refusal::MissingGenesis => Some(Refusal::PollAlreadyClosed),
            Refusal::PollAlreadyClosed => Some(Refusal::PollNotDue),
            Refusal::PollNotDue => Some(Refusal::FinalTallyMismatch),
            Refusal::FinalTallyMismatch => Some(Refusal::CheckpointMismatch),
            Refusal::CheckpointMismatch => Some(Refusal::NotModerator),
            Refusal::NotModerator => Some(Refusal::NotRegistrar),
            Refusal::NotRegistrar => Some(Refusal::NotGateway),
            Refusal::NotGateway => Some(Refusal::NotResponsibleDepartment),
            Refusal::NotResponsibleDepartment => Some(Refusal::NotAuthor),
            Refusal::NotAuthor => Some(Refusal::UnknownCategory),
            Refusal::UnknownCategory => Some(Refusal::InvalidCategory(String::new())),
            Refusal::InvalidCategory(_) => Some(Refusal::InvalidAttestation(String::new())),
            Refusal::InvalidAttestation(_) => Some(Refusal::InvalidComplaint(String::new())),
            Refusal::InvalidComplaint(_) => Some(Refusal::UnknownComplaint),
            Refusal::UnknownComplaint => Some(Refusal::TransitionNotAllowed {
                action: "start_work",
                status: "filed",
            }),
            Refusal::TransitionNotAllowed { .. } => Some(Refusal::ConfirmationWindowClosed),
            Refusal::ConfirmationWindowClosed => Some(Refusal::InvalidProposal(String::new())),
            Refusal::InvalidProposal(_) => Some(Refusal::UnknownProposal),
            Refusal::UnknownProposal => Some(Refusal::AlreadySupported),
            Refusal::AlreadySupported => Some(Refusal::NotSupported),
            Refusal::NotSupported => Some(Refusal::ThresholdReached),
            Refusal::ThresholdReached => Some(Refusal::EventNotDue),
            Refusal::EventNotDue => Some(Refusal::InvalidAdminChange(String::new())),
            Refusal::InvalidAdminChange(_) => Some(Refusal::NotRecoveryKey),
            Refusal::NotRecoveryKey => Some(Refusal::RecoveryAlreadyApproved),
            Refusal::RecoveryAlreadyApproved => Some(Refusal::SeparationOfDuties(String::new())),
            Refusal::SeparationOfDuties(_) => Some(Refusal::StateDigestMismatch),
            Refusal::StateDigestMismatch => Some(Refusal::KeyRevoked),
            Refusal::KeyRevoked => Some(Refusal::ResidentAlreadyAttested),
            Refusal::ResidentAlreadyAttested => Some(Refusal::NotAttestedResident),
            Refusal::NotAttestedResident => Some(Refusal::UnknownContent),
            Refusal::UnknownContent => Some(Refusal::ContentAlreadyErased),
            Refusal::ContentAlreadyErased => Some(Refusal::PollNotAnonymous),
            Refusal::PollNotAnonymous => Some(Refusal::PollIsAnonymous),
            Refusal::PollIsAnonymous => Some(Refusal::CredentialsAlreadyRequested),
            Refusal::CredentialsAlreadyRequested => {
                Some(Refusal::InvalidBlindedMessage(String::new()))
            }
            Refusal::InvalidBlindedMessage(_) => Some(Refusal::InvalidCredential(String::new())),
            Refusal::InvalidCredential(_) => Some(Refusal::MissingCredential(String::new())),
            Refusal::MissingCredential(_) => Some(Refusal::CredentialsExhausted),
            Refusal::CredentialsExhausted => Some(Refusal::StalePollVersion),
            Refusal::StalePollVersion => None,
        }
    }

    /// The stable identifier used in problem types and documentation.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::StaleCommand => "stale-command",
            Refusal::FutureCommand => "future-command",
            Refusal::ReplayedNonce => "replayed-nonce",
            Refusal::WeakKey => "weak-key",
            Refusal::KeyAlreadyRegistered => "key-already-registered",
            Refusal::KeyNotRegistered => "key-not-registered",
            Refusal::NotAdmin => "not-admin",
            Refusal::NotOfficial => "not-official",
            Refusal::SystemOnly => "system-only",
            Refusal::SignerIsNotAuthor => "signer-is-not-author",
            Refusal::InvalidRoleChange(_) => "invalid-role-change",
            Refusal::RoleNotHeld => "role-not-held",
            Refusal::RoleAlreadyHeld => "role-already-held",
            Refusal::InvalidPoll(_) => "invalid-poll",
            Refusal::UnknownPoll => "unknown-poll",
            Refusal::PollNotOpenYet => "poll-not-open-yet",
            Refusal::PollClosed => "poll-closed",
            Refusal::NotEligible => "not-eligible",
            Refusal::UnknownOption => "unknown-option",
            Refusal::TooManyChoices => "too-many-choices",
            Refusal::DuplicateChoice => "duplicate-choice",
            Refusal::EmptyBallot => "empty-ballot",
            Refusal::BallotAlreadyCast => "ballot-already-cast",
            Refusal::MisplacedGenesis => "misplaced-genesis",
            Refusal::MissingGenesis => "missing-genesis",
            Refusal::PollAlreadyClosed => "poll-already-closed",
            Refusal::PollNotDue => "poll-not-due",
            Refusal::FinalTallyMismatch => "final-tally-mismatch",
            Refusal::CheckpointMismatch => "checkpoint-mismatch",
            Refusal::NotModerator => "not-moderator",
            Refusal::NotRegistrar => "not-registrar",
            Refusal::NotGateway => "not-gateway",
            Refusal::NotResponsibleDepartment => "not-responsible-department",
            Refusal::NotAuthor => "not-author",
            Refusal::UnknownCategory => "unknown-category",
            Refusal::InvalidCategory(_) => "invalid-category",
            Refusal::InvalidAttestation(_) => "invalid-attestation",
            Refusal::InvalidComplaint(_) => "invalid-complaint",
            Refusal::UnknownComplaint => "unknown-complaint",
            Refusal::TransitionNotAllowed { .. } => "transition-not-allowed",
            Refusal::ConfirmationWindowClosed => "confirmation-window-closed",
            Refusal::InvalidProposal(_) => "invalid-proposal",
            Refusal::UnknownProposal => "unknown-proposal",
            Refusal::AlreadySupported => "already-supported",
            Refusal::NotSupported => "not-supported",
            Refusal::ThresholdReached => "threshold-reached",
            Refusal::EventNotDue => "event-not-due",
            Refusal::UnknownContent => "unknown-content",
            Refusal::ContentAlreadyErased => "content-already-erased",
            Refusal::InvalidAdminChange(_) => "invalid-admin-change",
            Refusal::NotRecoveryKey => "not-recovery-key",
            Refusal::RecoveryAlreadyApproved => "recovery-already-approved",
            Refusal::SeparationOfDuties(_) => "separation-of-duties",
            Refusal::StateDigestMismatch => "state-digest-mismatch",
            Refusal::KeyRevoked => "key-revoked",
            Refusal::ResidentAlreadyAttested => "resident-already-attested",
            Refusal::NotAttestedResident => "not-attested-resident",
            Refusal::PollNotAnonymous => "poll-not-anonymous",
            Refusal::PollIsAnonymous => "poll-is-anonymous",
            Refusal::CredentialsAlreadyRequested => "credentials-already-requested",
            Refusal::InvalidBlindedMessage(_) => "invalid-blinded-message",
            Refusal::InvalidCredential(_) => "invalid-credential",
            Refusal::MissingCredential(_) => "missing-credential",
            Refusal::CredentialsExhausted => "credentials-exhausted",
            Refusal::StalePollVersion => "stale-poll-version",
        }
    }
}
