//! What the CLI prints: short lines and tables for people, or the server's JSON as it is with
//! `--json`. People's lines read the server's documents field by field; a field the server
//! leaves out prints as `-`, never as an error.

use std::io::Write;

use projections::limits::CLI_TABLE_CELL_CHARACTERS_MAX as CELL_CHARACTERS_MAX;
use serde_json::Value;

use crate::cli::OutputArgument;

/// Prints `document` as JSON with `--json`, else the lines `human` makes of it.
pub fn show(output: OutputArgument, document: &Value, human: impl Fn(&Value) -> Vec<String>) {
    let lines = if output.json {
        vec![json(document)]
    } else {
        human(document)
    };
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        // A reader that stops early (`| head`) closes the pipe: stop writing, do not panic.
        if writeln!(stdout, "{line}").is_err() {
            return;
        }
    }
}

/// A receipt: with `--json` as the server sent it, else `what` and where it landed.
pub fn receipt(output: OutputArgument, receipt: &Value, what: impl Fn(u64) -> String) {
    let position = receipt["position"].as_u64().unwrap_or_default();
    show(output, receipt, |receipt| {
        vec![format!(
            "{} (entry {position}, {})",
            what(position),
            field(receipt, "server_time")
        )]
    });
}

fn json(document: &Value) -> String {
    // A `Value` always serialises; the fallback only keeps `unwrap` out.
    serde_json::to_string_pretty(document).unwrap_or_else(|_| document.to_string())
}

/// A field as text: strings without quotes, absent or null as `-`.
pub fn field(document: &Value, name: &str) -> String {
    text(&document[name])
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `text` cut to a table cell, on one line.
fn cell(text: &str) -> String {
    let line = text.replace(['\n', '\r', '\t'], " ");
    if line.chars().count() <= CELL_CHARACTERS_MAX {
        line
    } else {
        let kept: String = line.chars().take(CELL_CHARACTERS_MAX - 1).collect();
        format!("{kept}…")
    }
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|name| name.chars().count()).collect();
    for row in rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut lines = vec![line(header.iter().map(|name| name.to_string()).collect())];
    lines.extend(rows.iter().map(|row| line(row.clone())));
    lines
}

/// The items of a page (`complaints`, `proposals`, `holders`), and a hint to the next page.
pub fn page(
    document: &Value,
    items: &str,
    next: &str,
    header: &[&str],
    row: impl Fn(&Value) -> Vec<String>,
) -> Vec<String> {
    let items = document[items].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return vec!["nothing matches".into()];
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    let mut lines = table(header, &rows);
    if !document[next].is_null() {
        lines.push(format!("more: --after {}", field(document, next)));
    }
    lines
}

/// One row of the complaint queue.
pub fn complaint_row(complaint: &Value) -> Vec<String> {
    vec![
        field(complaint, "id"),
        field(complaint, "status"),
        field(complaint, "category"),
        field(&complaint["location"], "district"),
        field(complaint, "department"),
        field(complaint, "filed_at"),
        cell(&field(complaint, "description")),
    ]
}

pub const COMPLAINT_HEADER: [&str; 7] = [
    "id",
    "status",
    "category",
    "district",
    "department",
    "filed",
    "description",
];

/// A complaint with its timeline, a line a fact.
pub fn complaint(complaint: &Value) -> Vec<String> {
    let location = &complaint["location"];
    let mut lines = vec![
        format!(
            "complaint {} — {} ({}, {})",
            field(complaint, "id"),
            field(complaint, "status"),
            field(complaint, "category"),
            field(location, "district")
        ),
        format!("author:      {}", field(complaint, "author")),
        format!("description: {}", field(complaint, "description")),
        format!(
            "address:     {} ({}, {})",
            field(location, "address"),
            field(location, "latitude"),
            field(location, "longitude")
        ),
        format!("filed:       {}", field(complaint, "filed_at")),
        format!("department:  {}", field(complaint, "department")),
        format!("deadline:    {}", field(complaint, "deadline")),
    ];
    lines.extend(optional_lines(complaint));
    lines.push("timeline:".into());
    for step in complaint["timeline"].as_array().into_iter().flatten() {
        let note = match &step["note"] {
            Value::Null => String::new(),
            note => format!(" — {}", text(note)),
        };
        lines.push(format!(
            "  {:>6}  {}  {}  → {}{note}",
            field(step, "position"),
            field(step, "at"),
            field(step, "action"),
            field(step, "status")
        ));
    }
    lines
}

/// The lines a complaint has only at some point of its life.
fn optional_lines(complaint: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for (label, name) in [
        ("answer:      ", "answer"),
        ("merged into: ", "merged_into"),
        ("rejection:   ", "rejection"),
    ] {
        if !complaint[name].is_null() {
            lines.push(format!("{label}{}", field(complaint, name)));
        }
    }
    for (label, name) in [
        ("attachment:  ", "attachments"),
        ("evidence:    ", "evidence"),
    ] {
        for attachment in complaint[name].as_array().into_iter().flatten() {
            lines.push(format!(
                "{label}{} sha256 {}",
                field(attachment, "url"),
                field(attachment, "sha256")
            ));
        }
    }
    if let Some(merged) = complaint["merged_from"]
        .as_array()
        .filter(|merged| !merged.is_empty())
    {
        let ids: Vec<String> = merged.iter().map(text).collect();
        lines.push(format!("merged from: {}", ids.join(", ")));
    }
    lines
}

/// One row of a proposal listing.
pub fn proposal_row(proposal: &Value) -> Vec<String> {
    vec![
        field(proposal, "id"),
        field(proposal, "status"),
        field(proposal, "category"),
        field(proposal, "district"),
        format!(
            "{}/{}",
            field(proposal, "supports"),
            field(proposal, "support_threshold")
        ),
        cell(&field(proposal, "title")),
    ]
}

pub const PROPOSAL_HEADER: [&str; 6] =
    ["id", "status", "category", "district", "supports", "title"];

/// A proposal, a line a fact.
pub fn proposal(proposal: &Value) -> Vec<String> {
    let mut lines = vec![
        format!(
            "proposal {} — {} ({}, {})",
            field(proposal, "id"),
            field(proposal, "status"),
            field(proposal, "category"),
            field(proposal, "district")
        ),
        format!("title:      {}", field(proposal, "title")),
        format!("body:       {}", field(proposal, "body")),
        format!("author:     {}", field(proposal, "author")),
        format!("department: {}", field(proposal, "department")),
        format!(
            "supports:   {} of {}",
            field(proposal, "supports"),
            field(proposal, "support_threshold")
        ),
        format!("submitted:  {}", field(proposal, "submitted_at")),
        format!("expires:    {}", field(proposal, "expires_at")),
    ];
    if !proposal["rejection_reason"].is_null() {
        lines.push(format!(
            "rejected:   {}",
            field(proposal, "rejection_reason")
        ));
    }
    let answer = &proposal["answer"];
    if !answer.is_null() {
        lines.push(format!(
            "answer:     {}: {} ({}, {})",
            field(answer, "outcome"),
            field(answer, "answer"),
            field(answer, "official"),
            field(answer, "at")
        ));
    }
    lines
}

/// The category catalogue as a table.
pub fn categories(list: &Value) -> Vec<String> {
    let rows: Vec<Vec<String>> = list["categories"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|category| {
            vec![
                field(category, "id"),
                field(category, "version"),
                field(category, "department"),
                field(category, "sla_working_days"),
                field(category, "confirmation_window_days"),
                format!(
                    "{} in {} days{}",
                    field(category, "support_threshold"),
                    field(category, "proposal_lifetime_days"),
                    if category["supports_from_residents_only"] == Value::Bool(true) {
                        ", residents only"
                    } else {
                        ""
                    }
                ),
                field(category, "name"),
            ]
        })
        .collect();
    if rows.is_empty() {
        return vec!["no categories".into()];
    }
    table(
        &[
            "id",
            "version",
            "department",
            "sla days",
            "confirm days",
            "supports",
            "name",
        ],
        &rows,
    )
}

/// One row of the role holders: the key and each role it holds.
pub fn holder_row(holder: &Value) -> Vec<String> {
    let roles: Vec<String> = holder["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|role| match &role["department"] {
            Value::Null => format!(
                "{} since {}",
                field(role, "role"),
                field(role, "granted_at_position")
            ),
            department => format!(
                "{} of {} since {}",
                field(role, "role"),
                text(department),
                field(role, "granted_at_position")
            ),
        })
        .collect();
    vec![field(holder, "key"), roles.join("; ")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_pads_each_column_to_its_widest_cell() {
        let lines = table(
            &["id", "status"],
            &[
                vec!["7".into(), "filed".into()],
                vec!["1234".into(), "-".into()],
            ],
        );
        assert_eq!(lines, ["id    status", "7     filed", "1234  -"]);
    }

    #[test]
    fn a_long_description_is_cut_on_one_line() {
        let long = format!("first line\n{}", "x".repeat(100));
        let shown = cell(&long);
        assert_eq!(shown.chars().count(), CELL_CHARACTERS_MAX);
        assert!(shown.starts_with("first line x") && shown.ends_with('…'));
    }

    #[test]
    fn an_empty_page_says_so_and_a_full_one_names_the_next_cursor() {
        let empty = serde_json::json!({"complaints": [], "next_after": null});
        assert_eq!(
            page(
                &empty,
                "complaints",
                "next_after",
                &COMPLAINT_HEADER,
                complaint_row
            ),
            ["nothing matches"]
        );
        let full =
            serde_json::json!({"complaints": [{"id": 3, "status": "filed"}], "next_after": 3});
        let lines = page(
            &full,
            "complaints",
            "next_after",
            &COMPLAINT_HEADER,
            complaint_row,
        );
        assert_eq!(lines.last().map(String::as_str), Some("more: --after 3"));
        assert!(lines[1].starts_with("3   filed"), "{lines:?}");
    }
}
