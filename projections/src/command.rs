//! The command vocabulary: what a signed payload says, parsed from its exact bytes.
//!
//! A payload is a JSON object `{"action", "author", "nonce", "issued_at", "body"}`. The same shape
//! carries the server's own system events, told apart by the entry kind and the signer.

use serde::{Deserialize, Serialize};

use crate::limits;
use crate::protocol::PublicKey;
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
    /// An official opens a poll.
    OpenPoll(PollDefinition),
    /// A citizen casts (or, where allowed, replaces) a ballot.
    CastBallot(CastBallot),
    /// System: the first entry, naming the server key and the admin keys.
    Genesis(Genesis),
    /// System: a poll's close, carrying its final tally.
    ClosePoll(ClosePoll),
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::RegisterKey(_) => "register_key",
            Action::GrantRole(_) => "grant_role",
            Action::RevokeRole(_) => "revoke_role",
            Action::OpenPoll(_) => "open_poll",
            Action::CastBallot(_) => "cast_ballot",
            Action::Genesis(_) => "genesis",
            Action::ClosePoll(_) => "close_poll",
        }
    }

    /// Whether only the server may sign this action.
    pub fn is_system(&self) -> bool {
        matches!(self, Action::Genesis(_) | Action::ClosePoll(_))
    }
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

/// Who may vote. Districts and registrar-verified audiences arrive with the registrar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Audience {
    /// Every key registered before its ballot.
    Everyone,
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CastBallot {
    /// The poll's identifier: the log position of its `open_poll` entry.
    pub poll: u64,
    /// Indices into the poll's options, counted from zero.
    pub choices: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub log_origin: String,
    pub admin_keys: Vec<PublicKey>,
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosePoll {
    pub poll: u64,
    pub final_tally: Tally,
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
struct RawCommand {
    action: String,
    author: PublicKey,
    nonce: String,
    issued_at: Timestamp,
    body: serde_json::Value,
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
        let known = [
            "register_key",
            "grant_role",
            "revoke_role",
            "open_poll",
            "cast_ballot",
            "genesis",
            "close_poll",
        ];
        if !known.contains(&raw.action.as_str()) {
            return Err(ParseError::UnknownAction(raw.action));
        }
        let tagged = serde_json::json!({ "action": raw.action, "body": raw.body });
        let action: Action = serde_json::from_value(tagged)
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
        let tagged = serde_json::to_value(&self.action).unwrap_or(serde_json::Value::Null);
        let body = tagged.get("body").cloned().unwrap_or(serde_json::json!({}));
        let text = format!(
            "{{\"action\":{},\"author\":\"{}\",\"nonce\":\"{}\",\"issued_at\":\"{}\",\"body\":{}}}",
            serde_json::Value::String(self.action.name().to_string()),
            self.author,
            self.nonce,
            self.issued_at,
            body
        );
        text.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PublicKey {
        PublicKey([3; 32])
    }

    fn ballot() -> Command {
        Command {
            author: key(),
            nonce: "00112233445566778899aabbccddeeff".into(),
            issued_at: Timestamp(1_795_000_000_000),
            action: Action::CastBallot(CastBallot {
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
        let payload = String::from_utf8(command.to_payload()).unwrap_or_default();
        assert!(payload.ends_with(r#""body":{}}"#), "{payload}");
        assert_eq!(Command::parse(payload.as_bytes()), Ok(command));
    }

    #[test]
    fn unknown_fields_and_actions_are_refused() {
        let payload = String::from_utf8(ballot().to_payload()).unwrap_or_default();
        let extra_field = payload.replacen("\"choices\"", "\"extra\":1,\"choices\"", 1);
        assert!(matches!(
            Command::parse(extra_field.as_bytes()),
            Err(ParseError::Malformed(_))
        ));
        let extra_top = payload.replacen("{", "{\"x\":1,", 1);
        assert!(matches!(
            Command::parse(extra_top.as_bytes()),
            Err(ParseError::Malformed(_))
        ));
        let unknown = payload.replacen("cast_ballot", "stuff_ballot_box", 1);
        assert_eq!(
            Command::parse(unknown.as_bytes()),
            Err(ParseError::UnknownAction("stuff_ballot_box".into()))
        );
    }

    #[test]
    fn nonces_must_be_sixteen_bytes_of_lowercase_hex() {
        let payload = String::from_utf8(ballot().to_payload()).unwrap_or_default();
        let short = payload.replacen("00112233445566778899aabbccddeeff", "0011", 1);
        assert!(matches!(
            Command::parse(short.as_bytes()),
            Err(ParseError::Malformed(_))
        ));
    }
}
