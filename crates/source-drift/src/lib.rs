//! Drift streams (read): the Drift data source. The reverse direction (records into Drift)
//! is the `drift-writer` crate.
//!
//! [`DriftSource`] implements [`sync_core::Source`] over a [`drift_client::Client`] for the
//! streams of DESIGN.md §2. Each stream is defined once, as a row of [`STREAMS`] (name,
//! schema, keys, cursor, write mode, OAuth scopes, reader); the catalog, the read dispatch
//! and the scope table derive from it, so adding a stream is adding one file (its reader)
//! and one row. Design decisions:
//!
//! - **Conversations, messages and contacts are read in one pass** (`streams/conversations.rs`):
//!   Drift has no list of messages or contacts, so both hang off the conversation list.
//!   Messages and contacts of a page are fetched concurrently (bounded by
//!   [`DriftSourceConfig::fetch_concurrency`]) so the rate budget is used even with network
//!   latency, while the next page is prefetched.
//! - **Incremental** reads conversations newest-first down to the watermark minus
//!   [`DriftSourceConfig::overlap_ms`]; messages are re-read only for conversations whose
//!   `updatedAt` moved, and the contact of every conversation read (once per run), so a
//!   renamed contact arrives with the next incremental run; besides, a rotation re-reads
//!   up to [`DriftSourceConfig::contacts_recheck_per_run`] known contacts per run, so a
//!   contact deleted in Drift (404) is tombstoned even when its conversations did not
//!   change. The watermark moves
//!   only when the pass succeeds, to the highest `updatedAt` Drift reported (Drift's clock).
//! - **Resume**: the state holds the pass in progress (page cursor, conversations of that page
//!   whose records are committed, contacts fetched), so a killed run finishes the pass without
//!   re-reading what was committed.
//! - **403** on a stream marks it unavailable (naming the scope) and the run goes on; **401**
//!   ends the run (the credential is rejected) after committing what was read.
//! - Full-refresh streams (users, teams, playbooks, contact_attributes) replace their table;
//!   an incremental run skips the write when the content hash is unchanged.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod fail;
pub mod schemas;
pub mod shapes;
mod streams;
mod watermark;

use async_trait::async_trait;
use drift_client::Client;
use sync_core::{Catalog, Emitter, ReadRequest, Source, SourceError, State, SyncMode};

pub use streams::catalog;
pub use streams::defs::{stream_def, StreamDef, STREAMS};

/// The stream whose child table `name` is read only when selected by name or with `all`
/// ([`sync_core::ChildTable::on_request`]: `conversation_participants`, `conversation_tags`,
/// one `GET /conversations/{id}` per conversation); `None` for any other name. Selecting
/// such a child needs its parent's scopes.
pub fn on_request_parent(name: &str) -> Option<&'static StreamDef> {
    catalog()
        .streams
        .iter()
        .find(|s| s.children.iter().any(|c| c.on_request && c.name == name))
        .and_then(|s| stream_def(&s.name))
}

/// What a run can select by name, with the Drift scopes each needs (comma-separated):
/// every stream of [`STREAMS`], then the child tables of [`on_request_parent`] with their
/// parent's scopes. For forms and `GET /api/v1/streams`.
pub fn selectable_streams() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = STREAMS
        .iter()
        .map(|d| (d.name.to_owned(), d.scopes.join(", ")))
        .collect();
    for s in catalog().streams {
        for c in s.children.into_iter().filter(|c| c.on_request) {
            if let Some(parent) = on_request_parent(&c.name) {
                out.push((c.name, parent.scopes.join(", ")));
            }
        }
    }
    out
}

/// Stream names (DESIGN.md §2), also the sink table names. Each stream is defined once, in
/// [`STREAMS`].
pub mod names {
    /// `GET /conversations/list`.
    pub const CONVERSATIONS: &str = "conversations";
    /// `GET /conversations/{id}/messages`.
    pub const MESSAGES: &str = "messages";
    /// `GET /contacts/{id}` for contactIds seen in conversations.
    pub const CONTACTS: &str = "contacts";
    /// `GET /accounts`.
    pub const ACCOUNTS: &str = "accounts";
    /// `GET /users/list`.
    pub const USERS: &str = "users";
    /// `GET /teams/org`.
    pub const TEAMS: &str = "teams";
    /// `GET /playbooks/list`.
    pub const PLAYBOOKS: &str = "playbooks";
    /// `GET /users/meetings/org`.
    pub const MEETINGS: &str = "meetings";
    /// `GET /contacts/attributes`.
    pub const CONTACT_ATTRIBUTES: &str = "contact_attributes";
}

/// Options of the Drift source (per data source; the credential is in the client).
#[derive(Clone, Debug)]
pub struct DriftSourceConfig {
    /// How far below the watermark an incremental pass reads again, in milliseconds
    /// (default 5 minutes). Upserts absorb the overlap.
    pub overlap_ms: i64,
    /// Conversations per list page (default 100, Drift's maximum; REFERENCE §6).
    pub page_size: u32,
    /// Conversations whose messages and contact are fetched at once; 0 (the default) means
    /// the client's [`Client::max_concurrency`], which grows with the rate budget so that
    /// network latency does not leave the budget unused (DESIGN.md §4).
    pub fetch_concurrency: usize,
    /// Commit progress of a pass at most this often, milliseconds (default 250).
    pub checkpoint_interval_ms: u64,
    /// Extra contacts to read by email (`GET /contacts?email=`), besides those in conversations.
    pub contact_emails: Vec<String>,
    /// Extra contacts to read by external id (`GET /contacts?idType=external&id=`).
    pub contact_external_ids: Vec<String>,
    /// Booked meetings window: days back from now (Drift serves at most 30; REFERENCE §7.4).
    pub meetings_days_back: i64,
    /// Booked meetings window: days ahead of now.
    pub meetings_days_ahead: i64,
    /// Contacts fetched by earlier runs that an incremental run re-reads besides the contacts
    /// of the conversations it reads, in a rotation (default 1,000: about 100 s of Drift's
    /// default 600 requests/minute). Drift has no list of changed contacts, so this is how a
    /// contact deleted in Drift (404) or changed without a conversation update reaches the
    /// sink: every contact is re-read at least every `ceil(contacts / this)` incremental
    /// runs. 0 turns the rotation off.
    pub contacts_recheck_per_run: usize,
    /// The oldest `updatedAt` (epoch milliseconds) the conversations pass reads when it has
    /// no watermark yet (the first run, or every full refresh): conversations last updated
    /// before it, and their messages and contacts, are not read. `None` (the default): no
    /// bound. Set from the protocol modes' `start_date` (`driftbridge airbyte`, `singer`).
    pub start_date_ms: Option<i64>,
}

impl Default for DriftSourceConfig {
    fn default() -> Self {
        Self {
            overlap_ms: 5 * 60 * 1000,
            page_size: 100,
            fetch_concurrency: 0,
            checkpoint_interval_ms: 250,
            contact_emails: Vec::new(),
            contact_external_ids: Vec::new(),
            meetings_days_back: 30,
            meetings_days_ahead: 30,
            contacts_recheck_per_run: 1000,
            start_date_ms: None,
        }
    }
}

/// The Drift data source.
#[derive(Clone, Debug)]
pub struct DriftSource {
    client: Client,
    config: DriftSourceConfig,
}

impl DriftSource {
    /// A source reading through `client` (which carries the credential and its rate budget).
    pub fn new(client: Client, config: DriftSourceConfig) -> Self {
        Self { client, config }
    }
}

/// Everything a stream reader needs.
pub(crate) struct Ctx {
    pub client: Client,
    pub config: DriftSourceConfig,
    pub out: Emitter,
    pub state: State,
}

#[async_trait]
impl Source for DriftSource {
    fn catalog(&self) -> Catalog {
        catalog()
    }

    async fn read(&self, request: ReadRequest, out: Emitter) -> Result<(), SourceError> {
        let ctx = Ctx {
            client: self.client.clone(),
            config: self.config.clone(),
            out,
            state: request.state,
        };
        let selected: Vec<(String, SyncMode)> = request
            .streams
            .iter()
            .map(|s| (s.stream.name.clone(), s.mode))
            .collect();
        // Conversations are read in full (`GET /conversations/{id}`, one request each) only
        // when a child table that needs it (tags, participants) is selected.
        let details = request
            .streams
            .iter()
            .filter(|s| s.stream.name == names::CONVERSATIONS)
            .any(|s| s.stream.children.iter().any(|c| c.on_request));
        streams::read_all(&ctx, &selected, details).await
    }
}
