//! One page type for every listing: its items under the listing's own member name, and the
//! cursor of the next page.
//!
//! Each listing keeps the JSON members it always had (`polls` and `next_after`, `entries` and
//! `next_from`, …) and its schema name (`PollPage`, …): the item type says which, once.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeStruct, Serializer};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::http::problem::ApiError;
use crate::store::{EventStore, StoredEntry};

/// How one listing names its page, its items and its next-page cursor.
pub struct Listing {
    /// The page's schema name, e.g. `PollPage`.
    page: &'static str,
    /// The member that holds the items, e.g. `polls`.
    items: &'static str,
    /// The member that names where the next page starts, e.g. `next_after`: `next_` and the
    /// query parameter that takes it.
    next: &'static str,
}

impl Listing {
    pub const fn new(page: &'static str, items: &'static str, next: &'static str) -> Listing {
        Listing { page, items, next }
    }

    fn next_description(&self) -> String {
        let Some(parameter) = self.next.strip_prefix("next_") else {
            panic!(
                "a listing names its cursor next_<parameter>, not {}",
                self.next
            )
        };
        format!("Pass as `{parameter}` for the next page (same filters and order); absent on the last page.")
    }
}

/// An item that is listed in pages.
pub trait Listed: ToSchema + Serialize {
    const LISTING: Listing;
}

/// One page of a listing; `next`, a position or an opaque text, is absent on the last page.
pub struct Page<Item: Listed, Cursor = u64> {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

impl<Item: Listed, Cursor> Page<Item, Cursor> {
    /// The first `size` of `items`; when more follow, the next page is named by `cursor` of the
    /// last item kept.
    pub fn first(
        items: impl Iterator<Item = Item>,
        size: usize,
        cursor: impl Fn(&Item) -> Cursor,
    ) -> Page<Item, Cursor> {
        let mut items: Vec<Item> = items.take(size.saturating_add(1)).collect();
        let more = items.len() > size;
        items.truncate(size);
        let next = if more { items.last().map(cursor) } else { None };
        Page { items, next }
    }
}

impl<Item: Listed, Cursor: Serialize> Serialize for Page<Item, Cursor> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let listing = Item::LISTING;
        let mut page = serializer.serialize_struct(listing.page, 2)?;
        page.serialize_field(listing.items, &self.items)?;
        page.serialize_field(listing.next, &self.next)?;
        page.end()
    }
}

impl<Item: Listed, Cursor: PartialSchema> PartialSchema for Page<Item, Cursor> {
    fn schema() -> RefOr<Schema> {
        let listing = Item::LISTING;
        // The cursor's own schema, made nullable: the last page has none.
        let mut next = Cursor::schema();
        if let RefOr::T(Schema::Object(object)) = &mut next {
            if let SchemaType::Type(kind) = object.schema_type.clone() {
                object.schema_type = SchemaType::Array(vec![kind, Type::Null]);
            }
            object.description = Some(listing.next_description());
        }
        let items = ArrayBuilder::new().items(Ref::from_schema_name(Item::name()));
        ObjectBuilder::new()
            .property(listing.items, items)
            .required(listing.items)
            .property(listing.next, next)
            .into()
    }
}

impl<Item: Listed, Cursor: PartialSchema> ToSchema for Page<Item, Cursor> {
    fn name() -> Cow<'static, str> {
        Item::LISTING.page.into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Item::name().into_owned(), Item::schema()));
        Item::schemas(schemas);
    }
}

/// The positions one page may read: from `from` towards `end` (exclusive), `budget` at most.
pub(crate) struct Stretch {
    pub(crate) from: u64,
    pub(crate) end: u64,
    pub(crate) budget: usize,
}

/// Reads the log over `stretch`, a page of the store at a time, keeping what `pick` takes until
/// `size` are kept: the one bounded scan behind every filtered listing of the log. Returns what
/// was kept and where the next page reads from (none at the stretch's end).
pub(crate) fn scan_log<T>(
    store: &dyn EventStore,
    stretch: Stretch,
    size: usize,
    mut pick: impl FnMut(StoredEntry) -> Result<Option<T>, ApiError>,
) -> Result<(Vec<T>, Option<u64>), ApiError> {
    let Stretch { from, end, budget } = stretch;
    let budget_end = end.min(from.saturating_add(budget as u64));
    let mut items = Vec::new();
    let mut position = from;
    while position < budget_end && items.len() < size {
        let chunk = usize::try_from(budget_end - position)
            .unwrap_or(usize::MAX)
            .min(projections::limits::LOG_PAGE_ENTRIES_MAX);
        let stored = store.read(position, chunk)?;
        if stored.is_empty() {
            return Err(ApiError::StoreUnavailable(format!(
                "the store holds no entry at {position}, below the published size {end}"
            )));
        }
        for entry in stored {
            position = entry.position + 1;
            items.extend(pick(entry)?);
            if items.len() == size {
                break;
            }
        }
    }
    Ok((items, (position < end).then_some(position)))
}
