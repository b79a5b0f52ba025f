//! The command line by role: residents, moderators, officials, the admin and the registrar each
//! get a group of subcommands that sign as a real client does, send, and show the answer.
//!
//! Every signed command goes through [`Session::send`]: fresh nonce, `issued_at` from the wall
//! clock, and the content the command commits to beside it in the envelope, so the server
//! stores the text and the log holds only the commitments.

pub mod catalogue;
pub mod complaint;
pub mod output;
pub mod progress;
pub mod proposal;
pub mod resident;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use projections::command::Attachment;
use projections::content::Commitment;
use projections::Action;
use serde_json::Value;
use sha2::{Digest, Sha256};
use veche::client::{endpoint_for, signed_envelope, Client, ClientError, ContentBook};
use veche::clock::{Clock, SystemClock};
use veche::keys::{read_key_file, OsEntropy};

use crate::KeyArgument;

/// The server a group of commands talks to; given before or after the subcommand.
#[derive(clap::Args)]
pub struct Connection {
    /// Base URL of the veche server.
    #[arg(
        long,
        env = "VECHE_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
}

/// How answers are printed: short lines for people, or the server's JSON for scripts.
#[derive(clap::Args, Clone, Copy)]
pub struct OutputArgument {
    /// Print the server's JSON answer as it is (one document), for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A signer talking to one server: the key, the HTTP client and the content not yet sent.
pub struct Session {
    key: SigningKey,
    client: Client,
    content: ContentBook,
}

impl Session {
    pub fn open(server: &Connection, key: &KeyArgument) -> anyhow::Result<Session> {
        Ok(Session {
            key: read_key_file(&key.key)?,
            client: Client::new(&server.server)?,
            content: ContentBook::new(),
        })
    }

    /// A commitment to `text` under a fresh salt; the text travels beside the command.
    pub fn commit(&self, text: &str) -> Commitment {
        self.content.commit(text, &OsEntropy)
    }

    /// An attachment as `FILE=URL`: the SHA-256 of the file's bytes, and the URL committed.
    pub fn attachment(&self, argument: &str) -> anyhow::Result<Attachment> {
        let Some((file, url)) = argument.split_once('=') else {
            bail!("an attachment is FILE=URL, not {argument:?}");
        };
        Ok(Attachment {
            sha256: file_sha256(Path::new(file))?,
            url: self.commit(url),
        })
    }

    /// Attachments for each `FILE=URL` argument, in order.
    pub fn attachments(&self, arguments: &[String]) -> anyhow::Result<Vec<Attachment>> {
        arguments
            .iter()
            .map(|argument| self.attachment(argument))
            .collect()
    }

    /// Signs `action` issued now, puts its content beside it and sends it to its route; the
    /// receipt, or an error carrying the server's problem document.
    pub fn send(&self, action: Action) -> anyhow::Result<Value> {
        let path = endpoint_for(&action);
        let envelope = signed_envelope(&self.key, action, SystemClock.now(), &OsEntropy);
        let envelope = self.content.attach(envelope);
        match self.client.post(&path, &envelope) {
            Ok(receipt) => Ok(receipt),
            Err(ClientError::Refused { status, body }) => Err(refusal(status, &body)),
            Err(error) => Err(error.into()),
        }
    }
}

/// Reads from a server without signing anything.
pub fn get(server: &Connection, path: &str) -> anyhow::Result<Value> {
    match Client::new(&server.server)?.get(path) {
        Ok(answer) => Ok(answer),
        Err(ClientError::Refused { status, body }) => Err(refusal(status, &body)),
        Err(error) => Err(error.into()),
    }
}

/// Reads `path` and prints it: `human`'s lines, or the JSON with `--json`.
pub fn read_and_show(
    server: &Connection,
    output: OutputArgument,
    path: &str,
    human: impl Fn(&Value) -> Vec<String>,
) -> anyhow::Result<()> {
    output::show(output, &get(server, path)?, human);
    Ok(())
}

/// The server's problem document as an error: its type and detail on one line.
fn refusal(status: u16, body: &Value) -> anyhow::Error {
    let kind = body["type"].as_str().unwrap_or("unknown problem");
    let detail = body["detail"].as_str().unwrap_or("");
    anyhow::anyhow!("the server refused ({status}): {kind}: {detail}")
}

/// The query string of `pairs` whose value is present, names and values escaped.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value {
            serializer.append_pair(name, value);
        }
    }
    let query = serializer.finish();
    if query.is_empty() {
        query
    } else {
        format!("?{query}")
    }
}

/// One path segment escaped (a department or district name is any text).
pub fn segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// A text given on the command line, or read from a file with `@FILE` (long descriptions).
pub fn text_argument(argument: &str) -> anyhow::Result<String> {
    match argument.strip_prefix('@') {
        Some(file) => {
            let path = PathBuf::from(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok(text.trim_end().to_string())
        }
        None => Ok(argument.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_names_only_the_filters_given_and_escapes_their_values() {
        assert_eq!(query(&[("status", None)]), "");
        assert_eq!(
            query(&[
                ("status", Some("filed".into())),
                ("district", None),
                ("department", Some("Roads & Bridges".into())),
            ]),
            "?status=filed&department=Roads+%26+Bridges"
        );
    }

    #[test]
    fn an_attachment_hashes_the_files_bytes_and_commits_to_its_url() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("photo.jpg");
        std::fs::write(&file, b"test").unwrap();
        let session = Session {
            key: SigningKey::from_bytes(&[7; 32]),
            client: Client::new("http://127.0.0.1:1").unwrap(),
            content: ContentBook::new(),
        };
        let url = "https://files.example.city/a.jpg?size=large";
        let attachment = session
            .attachment(&format!("{}={url}", file.display()))
            .unwrap();
        assert_eq!(
            attachment.sha256,
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        assert_eq!(session.content.text(&attachment.url).as_deref(), Some(url));
        assert!(session.attachment("no-equals-sign").is_err());
    }
}
