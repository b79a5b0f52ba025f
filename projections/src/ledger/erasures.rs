//! Erasure and redaction: which entries commit to content, who wrote it, and which later entry
//! erased it. The content itself is beside the log; this state is what lets anyone check that
//! every missing piece was erased by a public entry, by its author or a moderator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::Event;
use super::keys::Keys;
use super::refusal::Refusal;
use super::state::State;
use crate::command::{ContentReference, Redaction, Role};
use crate::protocol::PublicKey;

/// An entry whose payload commits to content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentRecord {
    pub author: PublicKey,
    /// The position of the `erase_content` or `redact_content` entry that erased it.
    pub erased_by: Option<u64>,
}

/// The erasures aggregate: entries with content, by position.
pub type Erasures = State<BTreeMap<u64, ContentRecord>>;

#[derive(Clone, Copy, Debug)]
pub enum ErasureAction<'a> {
    EraseContent(&'a ContentReference),
    RedactContent(&'a Redaction),
    /// A moderator's spam rejection that redacts the complaint filed at this position with it.
    RejectAsSpam {
        complaint: u64,
    },
}

impl ErasureAction<'_> {
    /// The entry whose content the action erases.
    fn entry(&self) -> u64 {
        match self {
            ErasureAction::EraseContent(reference) => reference.entry,
            ErasureAction::RedactContent(redaction) => redaction.entry,
            ErasureAction::RejectAsSpam { complaint } => *complaint,
        }
    }
}

impl Erasures {
    /// Notes every entry that commits to content, whatever its aggregate, as it is folded in.
    pub fn record(&mut self, event: &Event) {
        if !event.command.action.committed_fields().is_empty() {
            let record = ContentRecord {
                author: event.command.author,
                erased_by: None,
            };
            self.0.insert(event.position, record);
        }
    }

    /// The entry that erased `position`'s content, if one did.
    pub fn erased_by(&self, position: u64) -> Option<u64> {
        self.0.get(&position).and_then(|record| record.erased_by)
    }

    /// The author may erase their own content; a moderator may redact anyone's; each once.
    pub fn decide(
        &self,
        keys: &Keys,
        author: PublicKey,
        action: ErasureAction<'_>,
    ) -> Result<(), Refusal> {
        let entry = self.find(action.entry(), Refusal::UnknownContent)?;
        let (allowed, refusal) = match action {
            ErasureAction::EraseContent(_) => (entry.author == author, Refusal::NotAuthor),
            ErasureAction::RedactContent(_) | ErasureAction::RejectAsSpam { .. } => {
                let moderator = keys.holds_role(author, Role::Moderator);
                (moderator, Refusal::NotModerator)
            }
        };
        match (allowed, entry.erased_by) {
            (false, _) => Err(refusal),
            (true, Some(_)) => Err(Refusal::ContentAlreadyErased),
            (true, None) => Ok(()),
        }
    }

    pub fn evolve(&mut self, action: ErasureAction<'_>, event: &Event) {
        self.found_mut(action.entry(), "content").erased_by = Some(event.position);
    }
}
