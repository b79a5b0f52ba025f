//! Open data: every export of `veche_verifier::open_data` over HTTP, each taken from one read of
//! the published ledger and stamped with the log size and the signed checkpoint at that size
//! (`docs/OPEN_DATA.md`).
//!
//! The complaint files are streamed: their rows (numbers and short names, no texts) are copied
//! under the one read, the lock is released, and the rows are rendered a chunk of
//! `OPEN_DATA_CHUNK_ROWS` at a time as the client reads, so the rendered body is never held
//! whole and the writer never waits on a slow download. The other files are small (a row per
//! poll, option, proposal or statistics group) and are rendered under the read.

use std::sync::Arc;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use veche_verifier::open_data::{
    content_type, render, ComplaintFormat, ComplaintRow, OpenDataError, Stamp, FILES,
};

use crate::http::off_worker;
use crate::http::problem::{ApiError, ProblemStatus};
use crate::http::Reply;
use crate::node::Node;

impl From<OpenDataError> for ApiError {
    fn from(error: OpenDataError) -> Self {
        match error {
            OpenDataError::UnknownFile(name) => ApiError::NotFound(format!("open data {name}")),
            // Encoding a ledger's own values cannot fail unless something impossible happened.
            OpenDataError::Encoding(error) => ApiError::Faulted(error.to_string()),
        }
    }
}

/// One export as the index lists it.
#[derive(Serialize, ToSchema)]
pub struct OpenDataFile {
    pub name: &'static str,
    pub url: String,
    pub content_type: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct OpenDataIndex {
    /// Every export, in the order a dump lists them.
    pub files: Vec<OpenDataFile>,
    /// Where the columns are documented.
    pub documentation: &'static str,
}

/// The list of open-data exports.
#[utoipa::path(tag = "open-data", responses((status = 200, body = OpenDataIndex)))]
#[get("/v1/open-data")]
pub async fn open_data_index() -> Reply<OpenDataIndex> {
    let files = FILES
        .iter()
        .map(|name| OpenDataFile {
            name,
            url: format!("/v1/open-data/{name}"),
            content_type: content_type(name),
        })
        .collect();
    Ok(web::Json(OpenDataIndex {
        files,
        documentation: "docs/OPEN_DATA.md",
    }))
}

/// What one read of the ledger took for an export.
enum Taken {
    Whole(Vec<u8>),
    Complaints {
        format: ComplaintFormat,
        stamp: Stamp,
        rows: Vec<ComplaintRow>,
    },
}

fn take(node: &Node, name: &str) -> Result<(u64, Taken), ApiError> {
    let ledger = node.proven_ledger()?;
    let taken = match ComplaintFormat::of(name) {
        Some(format) => Taken::Complaints {
            format,
            stamp: Stamp::of(&ledger),
            rows: ComplaintRow::all(&ledger),
        },
        None => Taken::Whole(render(name, &ledger)?),
    };
    Ok((ledger.size, taken))
}

/// One open-data file: `complaints.csv`, `complaints.geojson`, `polls.csv`, `polls.json`,
/// `poll-results.csv`, `poll-results.json`, `proposals.csv`, `proposals.json`,
/// `complaint-statistics.csv` or `complaint-statistics.json` (docs/OPEN_DATA.md). Every file is
/// computed at one log size, named by `X-Veche-Log-Size`; `X-Veche-Checkpoint` carries the signed
/// checkpoint at that size (standard base64 of the note), whose root the JSON files' `meta.root`
/// repeats. `veche open-data verify` recomputes the bytes from the log.
#[utoipa::path(tag = "open-data",
    params(("file" = String, Path, description = "The export's file name")),
    responses((status = 200, description = "The export (CSV, GeoJSON or JSON)",
        content((String = "text/csv"), (String = "application/geo+json"), (String = "application/json")),
        headers(
            ("X-Veche-Log-Size" = u64, description = "Log entries the file is computed from"),
            ("X-Veche-Checkpoint" = String, description = "Base64 of the signed checkpoint note at that size"))),
        ProblemStatus<404>, ProblemStatus<503>))]
#[get("/v1/open-data/{file}")]
pub async fn open_data_file(
    node: web::Data<Node>,
    file: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = FILES
        .into_iter()
        .find(|name| *name == file.as_str())
        .ok_or_else(|| ApiError::NotFound(format!("open data {file}")))?;
    let (size, taken) = take(&node, name)?;
    let signer = node.clone();
    let checkpoint = off_worker(move || signer.checkpoint_at(size)).await?;
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type(name))
        .insert_header(("X-Veche-Log-Size", size.to_string()))
        .insert_header(("X-Veche-Checkpoint", base64_note(&checkpoint)))
        .insert_header((
            "Content-Disposition",
            format!("inline; filename=\"{name}\""),
        ));
    Ok(match taken {
        Taken::Whole(bytes) => response.body(bytes),
        Taken::Complaints {
            format,
            stamp,
            rows,
        } => response.streaming(complaint_stream(format, &stamp, rows)?),
    })
}

fn base64_note(note: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(note.as_bytes())
}

type Chunk = Result<web::Bytes, actix_web::Error>;

/// The head, the rows a chunk at a time, the tail.
fn complaint_stream(
    format: ComplaintFormat,
    stamp: &Stamp,
    rows: Vec<ComplaintRow>,
) -> Result<impl futures_util::Stream<Item = Chunk>, ApiError> {
    let head = format.head(stamp)?;
    let rows = Arc::new(rows);
    let chunks = futures_util::stream::unfold(0usize, move |first| {
        let rows = Arc::clone(&rows);
        async move {
            if first >= rows.len() {
                return None;
            }
            let last = rows
                .len()
                .min(first + projections::limits::OPEN_DATA_CHUNK_ROWS);
            let chunk = format
                .rows(&rows[first..last], first)
                .map(web::Bytes::from)
                .map_err(|error| actix_web::error::ErrorInternalServerError(error.to_string()));
            Some((chunk, last))
        }
    });
    let head = futures_util::stream::once(async move { Ok(web::Bytes::from(head)) });
    let tail = futures_util::stream::once(async move { Ok(web::Bytes::from(format.tail())) });
    Ok(futures_util::StreamExt::chain(
        futures_util::StreamExt::chain(head, chunks),
        tail,
    ))
}
