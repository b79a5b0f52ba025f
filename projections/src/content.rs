//! Erasable content: the free text and locating details a command commits to instead of carrying.
//!
//! A signed command holds, for each such field, `SHA-256("veche content v2\n" ‖ salt ‖ text)`
//! with a 16-byte random salt chosen by the client (so a short text cannot be guessed from its
//! hash). The text travels beside the signed payload in the same request and is kept in a table
//! that can delete; the log keeps only the commitment, so erasing the text leaves every entry,
//! hash and number as it was (`docs/PROTOCOL.md` §3 "Content").

use serde::{Deserialize, Serialize};

use crate::command::{Action, Attachment};
use crate::limits;
pub use crate::protocol::{Commitment, CONTENT_DOMAIN, SALT_BYTES};
use crate::text::{check_field, Lines};

/// One piece of content as a client sends it beside the envelope: the salt (32 lowercase
/// hexadecimal characters) and the text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentPiece {
    #[serde(with = "salt_hex")]
    pub salt: [u8; SALT_BYTES],
    pub text: String,
}

impl ContentPiece {
    pub fn commitment(&self) -> Commitment {
        Commitment::of(&self.salt, &self.text)
    }
}

mod salt_hex {
    use super::SALT_BYTES;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        salt: &[u8; SALT_BYTES],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(salt))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<[u8; SALT_BYTES], D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut salt = [0; SALT_BYTES];
        let lowercase = !text.bytes().any(|byte| byte.is_ascii_uppercase());
        match hex::decode_to_slice(&text, &mut salt) {
            Ok(()) if lowercase => Ok(salt),
            _ => Err(serde::de::Error::custom(
                "a salt is 32 lowercase hexadecimal characters (16 bytes)",
            )),
        }
    }
}

/// What a committed field is, for its rules and for the reader's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    ComplaintDescription,
    Address,
    AttachmentUrl,
    SupplementText,
    DisputeReason,
    ProposalTitle,
    ProposalBody,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::ComplaintDescription => "description",
            Field::Address => "address",
            Field::AttachmentUrl => "attachment url",
            Field::SupplementText => "supplement text",
            Field::DisputeReason => "dispute reason",
            Field::ProposalTitle => "title",
            Field::ProposalBody => "body",
        }
    }

    /// The rules the text obeys: the same as the field had when it was signed in the clear.
    pub fn check(self, text: &str) -> Result<(), String> {
        let note = limits::NOTE_CHARS_MAX;
        match self {
            Field::ComplaintDescription => check_field(
                "a description",
                text,
                Lines::Many,
                limits::COMPLAINT_DESCRIPTION_CHARS_MAX,
            ),
            Field::Address => {
                check_field("an address", text, Lines::One, limits::ADDRESS_CHARS_MAX)
            }
            Field::AttachmentUrl => check_url(text),
            Field::SupplementText => check_field("a supplement", text, Lines::Many, note),
            Field::DisputeReason => check_field("a reason", text, Lines::Many, note),
            Field::ProposalTitle => check_field(
                "a title",
                text,
                Lines::One,
                limits::PROPOSAL_TITLE_CHARS_MAX,
            ),
            Field::ProposalBody => {
                check_field("a body", text, Lines::Many, limits::PROPOSAL_BODY_CHARS_MAX)
            }
        }
    }
}

fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.chars().count() > limits::URL_CHARS_MAX
        || url.chars().any(char::is_whitespace)
    {
        return Err(format!(
            "an attachment's url is an http(s) URL of at most {} characters",
            limits::URL_CHARS_MAX
        ));
    }
    Ok(())
}

fn attachment_fields(attachments: &[Attachment], fields: &mut Vec<(Field, Commitment)>) {
    for attachment in attachments {
        fields.push((Field::AttachmentUrl, attachment.url));
    }
}

impl Action {
    /// The entry whose content this action erases or redacts.
    pub fn erased_entry(&self) -> Option<u64> {
        match self {
            Action::EraseContent(reference) => Some(reference.entry),
            Action::RedactContent(redaction) => Some(redaction.entry),
            Action::TriageComplaint(triage) if triage.redacts_content() => Some(triage.complaint),
            _ => None,
        }
    }

    /// Every commitment this action carries, with its field, in the order of the payload.
    pub fn committed_fields(&self) -> Vec<(Field, Commitment)> {
        let mut fields = Vec::new();
        match self {
            Action::FileComplaint(filing) => {
                fields.push((Field::ComplaintDescription, filing.description));
                fields.push((Field::Address, filing.location.address));
                attachment_fields(&filing.attachments, &mut fields);
            }
            Action::SupplementComplaint(supplement) => {
                fields.push((Field::SupplementText, supplement.text));
                attachment_fields(&supplement.attachments, &mut fields);
            }
            Action::ResolveComplaint(resolution) => {
                attachment_fields(&resolution.evidence, &mut fields);
            }
            Action::DisputeResolution(dispute) => {
                fields.push((Field::DisputeReason, dispute.reason));
            }
            Action::SubmitProposal(submission) => {
                fields.push((Field::ProposalTitle, submission.title));
                fields.push((Field::ProposalBody, submission.body));
            }
            Action::RegisterKey(_)
            | Action::GrantRole(_)
            | Action::RevokeRole(_)
            | Action::HandOverAdmin(_)
            | Action::ApproveRecovery(_)
            | Action::OpenPoll(_)
            | Action::CorrectPoll(_)
            | Action::CastBallot(_)
            | Action::RequestCredentials(_)
            | Action::CastAnonymousBallot(_)
            | Action::Genesis(_)
            | Action::ClosePoll(_)
            | Action::AttestResident(_)
            | Action::DefineCategory(_)
            | Action::TriageComplaint(_)
            | Action::MergeComplaint(_)
            | Action::StartWork(_)
            | Action::CannotResolve(_)
            | Action::ConfirmResolution(_)
            | Action::BreachSla(_)
            | Action::CloseUnconfirmed(_)
            | Action::ModerateProposal(_)
            | Action::SupportProposal(_)
            | Action::WithdrawSupport(_)
            | Action::AnswerProposal(_)
            | Action::WithdrawProposal(_)
            | Action::ExpireProposal(_)
            | Action::RevokeKey(_)
            | Action::AttestState(_)
            | Action::MarkState(_)
            | Action::EraseContent(_)
            | Action::RedactContent(_) => {}
        }
        fields
    }
}

/// Why the content sent beside a command cannot be stored with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("no content was sent for the {field} the command commits to ({commitment})")]
    Missing {
        field: &'static str,
        commitment: Commitment,
    },
    #[error("a piece of content matches none of the command's commitments ({commitment})")]
    Unmatched { commitment: Commitment },
    #[error("two fields commit to the same content ({commitment}); each needs its own salt")]
    Reused { commitment: Commitment },
    /// The text matches its commitment but breaks the field's rules.
    #[error("{0}")]
    Invalid(String),
}

/// One piece of content matched to the field that committed to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedPiece {
    pub field: Field,
    pub commitment: Commitment,
    pub piece: ContentPiece,
}

/// Matches `pieces` to `action`'s commitments: every commitment must have exactly one piece,
/// every piece a commitment, and every text its field's rules.
pub fn check(
    action: &Action,
    pieces: Vec<ContentPiece>,
) -> Result<Vec<CheckedPiece>, ContentError> {
    let fields = action.committed_fields();
    let mut remaining: Vec<Option<(Commitment, ContentPiece)>> = pieces
        .into_iter()
        .map(|piece| Some((piece.commitment(), piece)))
        .collect();
    let mut checked = Vec::with_capacity(fields.len());
    for (index, (field, commitment)) in fields.iter().enumerate() {
        if fields[..index]
            .iter()
            .any(|(_, earlier)| earlier == commitment)
        {
            return Err(ContentError::Reused {
                commitment: *commitment,
            });
        }
        let found = remaining
            .iter_mut()
            .find(|slot| matches!(slot, Some((sent, _)) if sent == commitment))
            .and_then(Option::take);
        let Some((_, piece)) = found else {
            return Err(ContentError::Missing {
                field: field.name(),
                commitment: *commitment,
            });
        };
        field.check(&piece.text).map_err(ContentError::Invalid)?;
        checked.push(CheckedPiece {
            field: *field,
            commitment: *commitment,
            piece,
        });
    }
    if let Some((commitment, _)) = remaining.into_iter().flatten().next() {
        return Err(ContentError::Unmatched { commitment });
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_same_text_under_two_salts_gives_two_commitments() {
        let text = "Ivan Petrov, +7 900 000 00 00";
        let first = Commitment::of(&[1; SALT_BYTES], text);
        let second = Commitment::of(&[2; SALT_BYTES], text);
        assert_ne!(first, second);
        assert_eq!(first, Commitment::of(&[1; SALT_BYTES], text));
    }

    #[test]
    fn a_commitment_is_the_hash_of_the_prefix_the_salt_and_the_text() {
        let salt = [7; SALT_BYTES];
        let mut message = CONTENT_DOMAIN.to_vec();
        message.extend_from_slice(&salt);
        message.extend_from_slice("a hole".as_bytes());
        let expected: [u8; 32] = Sha256::digest(&message).into();
        assert_eq!(Commitment::of(&salt, "a hole").0, expected);
    }

    #[test]
    fn a_salt_is_read_only_in_lowercase_hex_of_sixteen_bytes() {
        let read = |salt: &str| {
            serde_json::from_str::<ContentPiece>(&format!(r#"{{"salt":"{salt}","text":"x"}}"#))
        };
        assert!(read(&"ab".repeat(16)).is_ok());
        assert!(read(&"AB".repeat(16)).is_err());
        assert!(read(&"ab".repeat(15)).is_err());
        assert!(read(&"ab".repeat(17)).is_err());
    }

    #[test]
    fn committed_text_obeys_the_rules_its_field_had_in_the_clear() {
        let refused = [
            (Field::ComplaintDescription, " "),
            (Field::ComplaintDescription, "Pothole at \u{202E}5 .ts niaM"),
            (Field::Address, "Main St. 5\nflat 3"),
            (Field::AttachmentUrl, "ftp://photos.example/1.jpg"),
            (Field::DisputeReason, ""),
            (Field::ProposalTitle, "\u{3164}"),
            (Field::ProposalBody, "Plant trees.\n\u{7}"),
        ];
        for (field, text) in refused {
            assert!(field.check(text).is_err(), "{field:?} took {text:?}");
        }
        assert!(Field::ProposalBody.check("Plant trees.\nMany.").is_ok());
    }

    fn filing(description: Commitment, address: Commitment) -> Action {
        use crate::command::{ComplaintFiling, Degrees, Location};
        Action::FileComplaint(ComplaintFiling {
            category: "potholes".into(),
            description,
            location: Location {
                latitude: Degrees(55.75),
                longitude: Degrees(37.61),
                address,
                district: "North".into(),
            },
            attachments: vec![],
            through_gateway: false,
        })
    }

    fn piece(seed: u8, text: &str) -> ContentPiece {
        ContentPiece {
            salt: [seed; SALT_BYTES],
            text: text.into(),
        }
    }

    #[test]
    fn content_matches_the_commitments_one_to_one_or_is_refused() {
        let description = piece(1, "A hole by number 12");
        let address = piece(2, "12 River Street");
        let action = filing(description.commitment(), address.commitment());
        let checked = check(&action, vec![address.clone(), description.clone()]).unwrap();
        assert_eq!(checked[0].field, Field::ComplaintDescription);
        assert_eq!(checked[1].piece, address);
        assert!(matches!(
            check(&action, vec![description.clone()]),
            Err(ContentError::Missing {
                field: "address",
                ..
            })
        ));
        let altered = piece(2, "14 River Street");
        assert!(matches!(
            check(&action, vec![description.clone(), altered]),
            Err(ContentError::Missing { .. })
        ));
        let extra = piece(3, "Ivan Petrov");
        assert!(matches!(
            check(&action, vec![description.clone(), address.clone(), extra]),
            Err(ContentError::Unmatched { .. })
        ));
        let same = filing(description.commitment(), description.commitment());
        assert!(matches!(
            check(&same, vec![description.clone(), description]),
            Err(ContentError::Reused { .. })
        ));
    }
}
