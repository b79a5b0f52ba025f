//! Content beside the log in the views: each committed field is served as its stored text, or as
//! a placeholder when this node holds none, never as anything the commitment does not bind.

use actix_web::web;
use projections::content::Commitment;
use serde::{Serialize, Serializer};

use crate::http::off_worker;
use crate::http::page::{Listed, Page};
use crate::http::problem::ApiError;
use crate::node::{HeldContent, Node};

/// A committed field as a view serves it: the text when the store holds it.
#[derive(Clone, Debug)]
pub struct Served {
    commitment: Commitment,
    held: Option<HeldContent>,
}

impl Served {
    pub fn of(commitment: Commitment) -> Served {
        Served {
            commitment,
            held: None,
        }
    }
}

impl Serialize for Served {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.held {
            Some(HeldContent::Text(text)) => serializer.serialize_str(text),
            Some(HeldContent::ErasedBy(entry)) => {
                serializer.serialize_str(&format!("[erased by entry {entry}]"))
            }
            Some(HeldContent::Missing) | None => {
                serializer.serialize_str(&placeholder(self.commitment))
            }
        }
    }
}

/// What a view shows for content this node does not hold: the commitment it stood for.
pub fn placeholder(commitment: Commitment) -> String {
    format!("[content not held: {commitment}]")
}

/// A view with committed fields to fill from the content store.
pub trait HoldsContent {
    fn served(&mut self) -> Vec<&mut Served>;
}

impl<Item: HoldsContent + Listed, Cursor> HoldsContent for Page<Item, Cursor> {
    fn served(&mut self) -> Vec<&mut Served> {
        self.items
            .iter_mut()
            .flat_map(HoldsContent::served)
            .collect()
    }
}

impl<Item: HoldsContent> HoldsContent for Vec<Item> {
    fn served(&mut self) -> Vec<&mut Served> {
        self.iter_mut().flat_map(HoldsContent::served).collect()
    }
}

/// Fills `view`'s committed fields with the texts the store holds (read off the HTTP workers).
pub async fn filled<View: HoldsContent>(
    node: &web::Data<Node>,
    mut view: View,
) -> Result<View, ApiError> {
    let commitments: Vec<Commitment> = view
        .served()
        .iter()
        .map(|served| served.commitment)
        .collect();
    if commitments.is_empty() {
        return Ok(view);
    }
    let reader = node.clone();
    let texts = off_worker(move || reader.content(&commitments)).await?;
    for served in view.served() {
        served.held = texts.get(&served.commitment).cloned();
    }
    Ok(view)
}
