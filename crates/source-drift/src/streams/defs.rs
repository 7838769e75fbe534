//! The stream table: every Drift stream (DESIGN.md §2) defined once, as one [`StreamDef`]
//! row of [`STREAMS`]. Everything else about streams derives from it:
//!
//! - the catalog ([`crate::catalog`]): name, JSON Schema, primary key, cursor, write mode,
//!   indexed fields, in the table's order;
//! - the read dispatch (`streams::read_all`): [`StreamDef::read`] says which reader reads a
//!   stream, the conversations pass or a reader of its own;
//! - the analyst-ready shapes ([`crate::shapes`]): contacts' flattened attributes and the
//!   child tables of each stream's arrays, by stream name;
//! - the scope table: the OAuth scopes reading a stream needs ([`StreamDef::scopes`]; the
//!   credential checks of the CLI and the server, the API's `GET /api/v1/streams`, the web
//!   UI's stream list).
//!
//! **Adding a stream is adding one file and one table row**: the file is the stream's reader
//! (`streams/<name>.rs`, with its `read(ctx, mode)` and its schema; for a stream that Drift
//! serves whole in one request, only the fetch function of a [`Read::FullRefresh`] reader)
//! and the row names it here. No other list of streams exists in the workspace.

use crate::fail::Fail;
use crate::names::*;
use crate::streams::full_refresh::{self, Fetched};
use crate::streams::{accounts, meetings};
use crate::{schemas, Ctx};
use drift_client::Client;
use futures::future::BoxFuture;
use serde_json::Value;
use sync_core::{Stream, SyncMode, WriteMode};

/// One Drift stream: what the catalog says of it, which OAuth scopes reading it needs, and
/// which reader reads it.
pub struct StreamDef {
    /// Stream name, also the sink's table (or folder) name.
    pub name: &'static str,
    /// Its JSON Schema (draft-07), built on demand.
    pub schema: fn() -> Value,
    /// Primary-key field (upserts and tombstones are keyed by it).
    pub primary_key: &'static str,
    /// Cursor field (orders the stream's changes), when the stream has one.
    pub cursor: Option<&'static str>,
    /// How a sink applies its records: upsert by key, or replace (full refresh).
    pub write_mode: WriteMode,
    /// Top-level fields sinks index besides the primary key.
    pub index_fields: &'static [&'static str],
    /// The OAuth scopes a credential needs to read it (REFERENCE §3).
    pub scopes: &'static [&'static str],
    /// Which reader reads it.
    pub(crate) read: Read,
}

/// A reader of its own: reads the stream in `mode` and emits its records, tombstones and
/// checkpoints.
pub(crate) type ReadFn = for<'a> fn(&'a Ctx, SyncMode) -> BoxFuture<'a, Result<(), Fail>>;

/// Fetches a full-refresh stream whole (one request or a few).
pub(crate) type FetchFn = for<'a> fn(&'a Client) -> BoxFuture<'a, Result<Fetched, Fail>>;

/// How a stream is read. Streams with a reader of their own (one request or a few each) are
/// read first, in the order selected; then the conversations pass.
pub(crate) enum Read {
    /// In the conversations pass (`streams/conversations.rs`): Drift has no list of messages
    /// or contacts, so conversations, messages and contacts are read from the conversation
    /// list in one pass.
    ConversationsPass,
    /// A reader of its own (`streams/<name>.rs`).
    Own(ReadFn),
    /// Read whole with this fetch function by the full-refresh reader
    /// (`streams/full_refresh.rs`: written again only when the content changed, records
    /// gone from Drift tombstoned).
    FullRefresh(FetchFn),
}

/// The Drift streams, in catalog order.
pub static STREAMS: &[StreamDef] = &[
    StreamDef {
        name: CONVERSATIONS,
        schema: schemas::conversations,
        primary_key: "id",
        cursor: Some("updatedAt"),
        write_mode: WriteMode::Upsert,
        index_fields: &["contactId", "updatedAt"],
        scopes: &["conversation_read"],
        read: Read::ConversationsPass,
    },
    // Messages are part of conversations: the same scope.
    StreamDef {
        name: MESSAGES,
        schema: schemas::messages,
        primary_key: "id",
        cursor: None,
        write_mode: WriteMode::Upsert,
        index_fields: &["conversationId"],
        scopes: &["conversation_read"],
        read: Read::ConversationsPass,
    },
    StreamDef {
        name: CONTACTS,
        schema: schemas::contacts,
        primary_key: "id",
        cursor: None,
        write_mode: WriteMode::Upsert,
        index_fields: &[],
        scopes: &["contact_read"],
        read: Read::ConversationsPass,
    },
    StreamDef {
        name: ACCOUNTS,
        schema: schemas::accounts,
        primary_key: "accountId",
        cursor: Some("updateDateTime"),
        write_mode: WriteMode::Upsert,
        index_fields: &[],
        scopes: &["account_read"],
        read: Read::Own(|ctx, mode| Box::pin(accounts::read(ctx, mode))),
    },
    StreamDef {
        name: USERS,
        schema: schemas::users,
        primary_key: "id",
        cursor: None,
        write_mode: WriteMode::Replace,
        index_fields: &[],
        scopes: &["user_read"],
        read: Read::FullRefresh(|c| Box::pin(async move { full_refresh::all(c.users().await?) })),
    },
    StreamDef {
        name: TEAMS,
        schema: schemas::teams,
        primary_key: "id",
        cursor: None,
        write_mode: WriteMode::Replace,
        index_fields: &[],
        scopes: &["user_read"],
        read: Read::FullRefresh(|c| Box::pin(async move { full_refresh::all(c.teams().await?) })),
    },
    StreamDef {
        name: PLAYBOOKS,
        schema: schemas::playbooks,
        primary_key: "id",
        cursor: None,
        write_mode: WriteMode::Replace,
        index_fields: &[],
        scopes: &["playbook_read"],
        read: Read::FullRefresh(|c| {
            Box::pin(async move { full_refresh::all(c.playbooks().await?) })
        }),
    },
    // Drift has no `meeting_read` scope: meetings are read with `user_read`.
    StreamDef {
        name: MEETINGS,
        schema: schemas::meetings,
        primary_key: "slug",
        cursor: Some("updatedAt"),
        write_mode: WriteMode::Upsert,
        index_fields: &[],
        scopes: &["user_read"],
        read: Read::Own(|ctx, mode| Box::pin(meetings::read(ctx, mode))),
    },
    // Custom contact attributes need the elevated `all_contact_read`.
    StreamDef {
        name: CONTACT_ATTRIBUTES,
        schema: schemas::contact_attributes,
        primary_key: "name",
        cursor: None,
        write_mode: WriteMode::Replace,
        index_fields: &[],
        scopes: &["all_contact_read"],
        read: Read::FullRefresh(|c| {
            Box::pin(async move { full_refresh::all(c.contact_attributes().await?) })
        }),
    },
];

/// The definition of stream `name`, if there is one.
pub fn stream_def(name: &str) -> Option<&'static StreamDef> {
    STREAMS.iter().find(|d| d.name == name)
}

impl StreamDef {
    /// The catalog entry of this stream.
    pub fn stream(&self) -> Stream {
        Stream {
            name: self.name.to_owned(),
            json_schema: (self.schema)(),
            primary_key: vec![self.primary_key.to_owned()],
            cursor_field: self.cursor.map(str::to_owned),
            write_mode: self.write_mode,
            index_fields: self.index_fields.iter().map(|f| (*f).to_owned()).collect(),
            flatten: crate::shapes::flatten_of(self.name),
            children: crate::shapes::children_of(self.name),
        }
    }

    /// Whether the primary key is an integer in the schema (a tombstone then carries the key
    /// as a number, so it matches the column type of the record it marks).
    pub(crate) fn integer_key(&self) -> bool {
        (self.schema)()["properties"][self.primary_key]["type"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "integer"))
    }
}
