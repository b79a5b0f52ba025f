//! The server reader: fetches every number a server publishes, each with the log size it was
//! computed at, for the recount to diff against.

use std::time::Duration;

use reqwest::blocking::{Client, Response};
use serde_json::Value;

use projections::limits::PROPOSAL_READ_ATTEMPTS_MAX;

use crate::verification::Published;

/// Why the published numbers could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {path}: {source}")]
    Request {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what} carries no log size")]
    NoLogSize { what: &'static str },
    #[error("the log grew while the proposals were read, {attempts} times in a row")]
    ProposalsMoving { attempts: u32 },
}

struct Reader<'a> {
    client: &'a Client,
    base: &'a str,
}

impl Reader<'_> {
    fn get(&self, path: &str) -> Result<Response, FetchError> {
        let request = |source| FetchError::Request {
            path: path.to_owned(),
            source,
        };
        self.client
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(60))
            .send()
            .map_err(request)
    }

    fn json(&self, path: &str) -> Result<Value, FetchError> {
        let request = |source| FetchError::Request {
            path: path.to_owned(),
            source,
        };
        self.get(path)?
            .error_for_status()
            .map_err(request)?
            .json()
            .map_err(request)
    }

    /// Every item of a paged listing, following its cursor.
    fn all_pages(
        &self,
        first: &str,
        items: &str,
        cursor: &str,
        next: &str,
    ) -> Result<Vec<Value>, FetchError> {
        let mut all = Vec::new();
        let mut path = first.to_owned();
        loop {
            let mut page = self.json(&path)?;
            if let Some(Value::Array(found)) = page.get_mut(items).map(Value::take) {
                all.extend(found);
            }
            match &page[next] {
                Value::Null => return Ok(all),
                value => {
                    let value = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    path = format!("{first}&{cursor}={value}");
                }
            }
        }
    }

    /// The complaint statistics with the log size they were computed at.
    fn statistics(&self) -> Result<(u64, Value), FetchError> {
        let path = "/v1/statistics/complaints";
        let response = self.get(path)?;
        let size = response
            .headers()
            .get("X-Veche-Log-Size")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .ok_or(FetchError::NoLogSize {
                what: "the statistics response",
            })?;
        let statistics = response.json().map_err(|source| FetchError::Request {
            path: path.to_owned(),
            source,
        })?;
        Ok((size, statistics))
    }
}

/// Fetches the numbers the server publishes, each with the log size it was computed at.
pub fn fetch_published(client: &Client, base: &str) -> Result<Published, FetchError> {
    let reader = Reader { client, base };
    let mut published = Published::default();
    let polls = reader.all_pages("/v1/polls?limit=100", "polls", "after", "next_after")?;
    for id in polls.iter().filter_map(|poll| poll["id"].as_u64()) {
        let path = format!("/v1/polls/{id}/tally");
        if reader.get(&path)?.status() == reqwest::StatusCode::FORBIDDEN {
            // Sealed until it closes: nothing is published to compare.
            continue;
        }
        let tally = reader.json(&path)?;
        let size = tally["log_size"]
            .as_u64()
            .ok_or(FetchError::NoLogSize { what: "a tally" })?;
        published.tallies.entry(size).or_default().push(tally);
    }
    let (size, statistics) = reader.statistics()?;
    published.statistics.insert(size, statistics);
    let (size, standings) = proposal_standings(&reader, size)?;
    published.proposals.insert(size, standings);
    Ok(published)
}

/// The proposal listing carries no log size: it is read between two reads of the statistics'
/// log size, and kept only when the log did not grow meanwhile.
fn proposal_standings(reader: &Reader<'_>, mut size: u64) -> Result<(u64, Vec<Value>), FetchError> {
    for _ in 0..PROPOSAL_READ_ATTEMPTS_MAX {
        let standings = reader.all_pages(
            "/v1/proposals?limit=100",
            "proposals",
            "cursor",
            "next_cursor",
        )?;
        let (after, _) = reader.statistics()?;
        if after == size {
            return Ok((size, standings));
        }
        size = after;
    }
    Err(FetchError::ProposalsMoving {
        attempts: PROPOSAL_READ_ATTEMPTS_MAX,
    })
}
