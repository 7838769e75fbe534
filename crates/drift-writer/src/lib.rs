//! The writer: records from a file or table into Drift (DESIGN.md §3), the engine of a
//! *data destination* (`driftbridge push`, the API's data destinations). The other direction,
//! Drift into a sink, is `source-drift` with the `sinks` crate.
//!
//! `Reader (CSV / JSONL / SQLite / a results file) -> Mapping -> Writer -> Client -> outcome log`.
//!
//! Design decisions (why, not only what):
//! - **Drift has no upsert and emails are not unique** (REFERENCE §7.1 quirk 3), so every
//!   contact write is *look up, then PATCH or POST*. A POST answered with a duplicate-email
//!   conflict turns into lookup + PATCH. Several contacts with one key are settled by
//!   [`OnDuplicate`] (default: reject, naming the ids).
//! - **Creates are never retried blindly.** The client never repeats a creating POST after
//!   Drift may have acted (`drift-client` retry policy); when a create fails ambiguously
//!   (5xx, timeout, broken connection, unreadable 2xx body) the writer looks the key up
//!   again and only POSTs once more when the lookup proves the first attempt did not land.
//!   Timeline events and conversations cannot be looked up, so an ambiguous failure there
//!   rejects the row with the reason instead of retrying.
//! - **Re-running the same input creates nothing**: contacts and accounts are found by
//!   their key; unchanged attributes are not sent (`unchanged`, no request). Timeline events
//!   and conversations, which Drift cannot look up, are remembered in a [`Ledger`] keyed by
//!   a fingerprint of the row (the CLI keeps it in the metadata store).
//! - **Every input row read ends in exactly one [`Outcome`]**, in the order rows finish, with
//!   the row number, the key, the Drift id and the reason; nothing is dropped silently. A
//!   row that cannot be read keeps its raw text in the results file, so a re-feed rejects
//!   it again rather than losing it ([`results`]).
//! - **A dry run plans what the real run would do**: it looks up like the real run and
//!   remembers what earlier rows would write, so a second row with the key of a contact or
//!   account an earlier row would create is planned as an update of it, not a second create.
//! - **Memory is bounded**: rows stream through bounded channels; rows with the same key
//!   go to the same worker (in input order), so a later row never overtakes an earlier one.
//! - **One rate budget**: every request goes through the one [`drift_client::Client`] of
//!   the run, which carries the credential's budget.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod accounts;
mod contacts;
mod dry_run;
mod engine;
mod events;
pub mod input;
mod input_csv;
#[cfg(feature = "postgres")]
mod input_pg;
pub mod mapping;
pub mod results;
pub mod scopes;
mod stop;
mod unreadable;
pub mod values;

pub use engine::{push, push_until, Ledger, PushError, PushOptions, Summary};
pub use input::{ConnUrl, Input, InputError, InputSpec, Row, RowResult, SqlSource};
pub use mapping::{FieldType, Mapper, Mapping, MappingError};
pub use results::{csv_cell, same_file, ResultsFormat, ResultsWriter};
pub use stop::{Stop, StopKind};

use serde_json::{Map, Value};

/// What a push writes (DESIGN.md §3 table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Object {
    /// Contacts: upsert by `email` or `externalId` (`GET /contacts`, `PATCH /contacts/{id}`,
    /// `POST /contacts`; REFERENCE §7.1).
    Contacts,
    /// Accounts: upsert by `accountId` or `domain` (`POST /accounts/create`,
    /// `PATCH /accounts/update`; REFERENCE §7.3).
    Accounts,
    /// Timeline events: append by `contactId` or `externalId` (`POST /contacts/timeline`).
    Timeline,
    /// Conversations: create by `email` with a message body (`POST /conversations/new`).
    Conversations,
}

impl Object {
    /// Parses `contacts`, `accounts`, `timeline` or `conversations`.
    pub fn parse(text: &str) -> Option<Object> {
        match text.trim().to_ascii_lowercase().as_str() {
            "contacts" | "contact" => Some(Object::Contacts),
            "accounts" | "account" => Some(Object::Accounts),
            "timeline" | "timeline-events" | "timeline_events" | "events" => Some(Object::Timeline),
            "conversations" | "conversation" => Some(Object::Conversations),
            _ => None,
        }
    }

    /// The lower-case name (`contacts`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Object::Contacts => "contacts",
            Object::Accounts => "accounts",
            Object::Timeline => "timeline",
            Object::Conversations => "conversations",
        }
    }

    /// The keys this object may be matched by; the first is the default.
    pub fn keys(self) -> &'static [Key] {
        match self {
            Object::Contacts => &[Key::Email, Key::ExternalId],
            Object::Accounts => &[Key::Domain, Key::AccountId],
            Object::Timeline => &[Key::ContactId, Key::ExternalId],
            Object::Conversations => &[Key::Email],
        }
    }
}

/// The field a row is matched on in Drift. Spelled as Drift spells the attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Key {
    /// Contact attribute `email` (not unique in Drift).
    #[serde(rename = "email")]
    Email,
    /// Contact attribute `externalId`.
    #[serde(rename = "externalId")]
    ExternalId,
    /// Account `accountId` (string id assigned by Drift).
    #[serde(rename = "accountId")]
    AccountId,
    /// Account `domain` (unique among live accounts).
    #[serde(rename = "domain")]
    Domain,
    /// Timeline event `contactId`.
    #[serde(rename = "contactId")]
    ContactId,
}

impl Key {
    /// Parses a key name (`email`, `externalId`, `accountId`, `domain`, `contactId`;
    /// case-insensitive, `_` allowed).
    pub fn parse(text: &str) -> Option<Key> {
        match text
            .trim()
            .to_ascii_lowercase()
            .replace(['_', '-'], "")
            .as_str()
        {
            "email" => Some(Key::Email),
            "externalid" => Some(Key::ExternalId),
            "accountid" => Some(Key::AccountId),
            "domain" => Some(Key::Domain),
            "contactid" => Some(Key::ContactId),
            _ => None,
        }
    }

    /// Drift's spelling of the field.
    pub fn field(self) -> &'static str {
        match self {
            Key::Email => "email",
            Key::ExternalId => "externalId",
            Key::AccountId => "accountId",
            Key::Domain => "domain",
            Key::ContactId => "contactId",
        }
    }
}

/// What to do when several contacts share the key (emails are not unique in Drift).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDuplicate {
    /// Update every match.
    UpdateAll,
    /// Update the earliest created match (lowest `createdAt`, then lowest id) — the one
    /// `POST /conversations/new` would pick (REFERENCE §7.2).
    First,
    /// Reject the row, naming the ids (default).
    #[default]
    Reject,
}

impl OnDuplicate {
    /// Parses `update-all`, `first` or `reject`.
    pub fn parse(text: &str) -> Option<OnDuplicate> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "update-all" => Some(OnDuplicate::UpdateAll),
            "first" => Some(OnDuplicate::First),
            "reject" => Some(OnDuplicate::Reject),
            _ => None,
        }
    }
}

/// The outcome of one input row.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    /// A new object was created in Drift.
    Created,
    /// An existing object was changed.
    Updated,
    /// The object already held these values (or the event was already sent): no write.
    Unchanged,
    /// Nothing to write (a row with no mapped value besides its key).
    Skipped,
    /// Not written; the reason says why and how to fix it.
    Rejected,
}

impl OutcomeKind {
    /// Every outcome, in report order.
    pub const ALL: [OutcomeKind; 5] = [
        OutcomeKind::Created,
        OutcomeKind::Updated,
        OutcomeKind::Unchanged,
        OutcomeKind::Skipped,
        OutcomeKind::Rejected,
    ];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Created => "created",
            OutcomeKind::Updated => "updated",
            OutcomeKind::Unchanged => "unchanged",
            OutcomeKind::Skipped => "skipped",
            OutcomeKind::Rejected => "rejected",
        }
    }

    /// Parses a lower-case outcome name.
    pub fn parse(text: &str) -> Option<OutcomeKind> {
        OutcomeKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// One row's outcome, as written to the results file.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// 1-based row number in the input (a re-fed results file keeps the original numbers).
    pub row: u64,
    /// The key value the row was matched on, when it had one.
    pub key: Option<String>,
    /// What happened.
    pub kind: OutcomeKind,
    /// Drift id(s) written or matched (contact id, `accountId`, conversation id); several
    /// ids are joined with `;`.
    pub drift_id: Option<String>,
    /// Why (always set for `rejected`, `skipped`, and for every dry-run outcome).
    pub reason: Option<String>,
    /// The input row as read, so a results file can be re-fed (`--only rejected`).
    pub input: Map<String, Value>,
}

/// A request the writer made or, in a dry run, would make.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Planned {
    pub method: &'static str,
    pub path: String,
    pub body: Value,
}

impl std::fmt::Display for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.method, self.path, self.body)
    }
}
