//! `--messy` ([`crate::SandboxConfig::messy`]): serve records the way a real org's data can
//! arrive, so a client and a sync can be tested against more than the documented shapes.
//!
//! Only the rendering changes: the org keeps its typed records, so sorting, cursors, filters
//! and mutations work as without `--messy`, and writes (POST/PATCH answers) stay faithful.
//! Every READ route passes its records through [`crate::org::Org::show`]:
//! - **Fitting variations**, about 1 record in 10 (a tolerant client must accept them): every
//!   integer id and epoch-millisecond timestamp of the record ([`Stream::int_fields`]) as a
//!   JSON string of digits (`"1700000000000"`), and one or more of: an unknown field
//!   `"_sbx_trace": {"shard": n}`, one optional field ([`Stream::optional_fields`]) sent as
//!   `null`, one optional field left out. A primary key ([`Stream::key_field`]) is never
//!   nulled or left out, and no value changes its meaning.
//! - **Unfit records**, `max(1, n/200 rounded)` per stream ([`unfit_quota`]): a value no
//!   client can fit — `{"$oid": "<24 hex>"}` where an id or timestamp belongs, a non-numeric
//!   string (`"abc"`, `"n/a"`) where an integer id belongs, an object or an array where a
//!   string key belongs. What is corrupted per stream: see [`Stream::corrupt`]; a
//!   conversation keeps `id`, `contactId` and `updatedAt`, so its messages and contact stay
//!   reachable and a cursor can move past it.
//!
//! Deterministic: whether and how a record varies depends only on the seed, the stream and
//! the record's key (FNV-1a and a 64-bit finalizer, stable across Rust versions), so every
//! request renders a record the same way. Which records are unfit is fixed when the org is
//! built (start and `POST /__sandbox/reset`): the `max(1, n/200 rounded)` records with the
//! smallest hash among the stream's records then. Records created later are never unfit.
//! `n` counts what a full `sync --streams all` reads: contacts that conversations refer to,
//! meetings whose `slotStart` lies within [`MEETINGS_WINDOW_MS`] of the clock, every message.

use crate::org::{Obj, Org};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};

/// Meetings within this distance of the sandbox clock (either side, ms) are the ones a
/// default sync requests: it asks `now - 30 days + 1 minute ..= now + 30 days`
/// (`source-drift` meetings stream); 29 days stays inside that whatever the clocks' skew.
pub const MEETINGS_WINDOW_MS: i64 = 29 * 86_400_000;

/// A stream of records a READ route serves, named as in `sync --streams` and in the
/// `unfit` object of `GET /__sandbox/counts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    /// `GET /conversations/list`, `GET /conversations/{id}`.
    Conversations,
    /// `GET /conversations/{id}/messages`.
    Messages,
    /// `GET /contacts/{id}`, `GET /contacts?email=` / `?idType=external&id=`.
    Contacts,
    /// `GET /accounts`, `GET /accounts/{id}`.
    Accounts,
    /// `GET /users/list`, `GET /users/{id}`, `GET /users?userId=`.
    Users,
    /// `GET /teams/org`, `GET /teams/users/{id}`.
    Teams,
    /// `GET /playbooks/list`.
    Playbooks,
    /// `GET /users/meetings/org`.
    Meetings,
    /// `GET /contacts/attributes`.
    ContactAttributes,
}

impl Stream {
    /// Every stream, in the order of `GET /__sandbox/counts`.
    pub const ALL: [Stream; 9] = [
        Stream::Conversations,
        Stream::Messages,
        Stream::Contacts,
        Stream::Accounts,
        Stream::Users,
        Stream::Teams,
        Stream::Playbooks,
        Stream::Meetings,
        Stream::ContactAttributes,
    ];

    /// The stream's name (`contact_attributes`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Stream::Conversations => "conversations",
            Stream::Messages => "messages",
            Stream::Contacts => "contacts",
            Stream::Accounts => "accounts",
            Stream::Users => "users",
            Stream::Teams => "teams",
            Stream::Playbooks => "playbooks",
            Stream::Meetings => "meetings",
            Stream::ContactAttributes => "contact_attributes",
        }
    }

    /// The primary key: `id`; `accountId` for accounts, `slug` for meetings, `name` for
    /// contact attributes.
    pub fn key_field(self) -> &'static str {
        match self {
            Stream::Accounts => "accountId",
            Stream::Meetings => "slug",
            Stream::ContactAttributes => "name",
            _ => "id",
        }
    }

    /// Integer ids and epoch-ms timestamps (JSON pointers) a fitting variation sends as
    /// strings of digits.
    pub fn int_fields(self) -> &'static [&'static str] {
        match self {
            Stream::Conversations => &[
                "/id",
                "/contactId",
                "/inboxId",
                "/orgId",
                "/relatedPlaybookId",
                "/createdAt",
                "/updatedAt",
            ],
            Stream::Messages => &[
                "/id",
                "/orgId",
                "/conversationId",
                "/author/id",
                "/createdAt",
                "/editedMessageId",
            ],
            Stream::Contacts => &["/id", "/createdAt"],
            Stream::Accounts => &["/ownerId", "/createDateTime", "/updateDateTime"],
            Stream::Users => &["/id", "/orgId", "/createdAt", "/updatedAt"],
            Stream::Teams => &["/id", "/orgId", "/owner", "/updatedAt"],
            Stream::Playbooks => &[
                "/id",
                "/orgId",
                "/createdAt",
                "/updatedAt",
                "/createdAuthorId",
                "/updatedAuthorId",
                "/interactionId",
            ],
            Stream::Meetings => &[
                "/agentId",
                "/orgId",
                "/schedulerId",
                "/slotStart",
                "/slotEnd",
                "/updatedAt",
                "/scheduledAt",
                "/conversationId",
                "/bookedBy",
            ],
            Stream::ContactAttributes => &[],
        }
    }

    /// Optional fields (JSON pointers) a fitting variation may send as `null` or leave out.
    /// Never a primary key, nor a field a sync needs to stay consistent (a conversation's
    /// `contactId` and `updatedAt`, an account's `updateDateTime` and `deleted`, a meeting's
    /// `slotStart` and `updatedAt`, a message's `conversationId`).
    pub fn optional_fields(self) -> &'static [&'static str] {
        match self {
            Stream::Conversations => &[
                "/inboxId",
                "/relatedPlaybookId",
                "/conversationTags",
                "/participants",
            ],
            Stream::Messages => &["/body", "/attributes", "/context", "/buttons"],
            Stream::Contacts => &[
                "/createdAt",
                "/attributes/phone",
                "/attributes/tags",
                "/attributes/socialProfiles",
            ],
            Stream::Accounts => &["/name", "/customProperties", "/targeted", "/createDateTime"],
            Stream::Users => &["/alias", "/phone", "/avatarUrl", "/locale", "/timeZone"],
            Stream::Teams => &["/owner", "/workspaceId", "/autoOffline"],
            Stream::Playbooks => &["/meta", "/goals", "/interactionId", "/reportType"],
            Stream::Meetings => &[
                "/meetingNotes",
                "/bookedBy",
                "/endUserTimeZone",
                "/meetingType",
                "/scheduledAt",
            ],
            Stream::ContactAttributes => &["/displayName"],
        }
    }

    /// Make `record` unfit; `alt` picks one of the stream's two ways:
    /// conversations `createdAt: {"$oid"}` or `inboxId: "abc"` (`createdAt` when the row has
    /// no `inboxId`); contacts `createdAt: {"$oid"}` or `id: "abc"`; messages `id: "n/a"` or
    /// `id: {"$oid"}`; users, teams, playbooks `id: "abc"` or `id: {"$oid"}`; accounts
    /// `accountId: {"$oid"}` or `ownerId: "abc"`; meetings `slug: {"$oid"}` or
    /// `slotStart: {"$oid"}`; contact attributes `name: {"$oid"}` or `type: [<type>]`.
    pub fn corrupt(self, record: &mut Obj, alt: bool, oid: &str) {
        let object = json!({ "$oid": oid });
        let (field, value) = match self {
            Stream::Conversations if alt && record.contains_key("inboxId") => {
                ("inboxId", json!("abc"))
            }
            Stream::Conversations | Stream::Contacts if !alt => ("createdAt", object),
            Stream::Conversations => ("createdAt", object),
            Stream::Contacts => ("id", json!("abc")),
            Stream::Messages if !alt => ("id", json!("n/a")),
            Stream::Users | Stream::Teams | Stream::Playbooks if !alt => ("id", json!("abc")),
            Stream::Messages | Stream::Users | Stream::Teams | Stream::Playbooks => ("id", object),
            Stream::Accounts if !alt => ("accountId", object),
            Stream::Accounts => ("ownerId", json!("abc")),
            Stream::Meetings if !alt => ("slug", object),
            Stream::Meetings => ("slotStart", object),
            Stream::ContactAttributes if !alt => ("name", object),
            Stream::ContactAttributes => {
                let kind = record.get("type").cloned().unwrap_or(Value::Null);
                ("type", json!([kind]))
            }
        };
        record.insert(field.into(), value);
    }
}

/// How many records of a stream of `n` are unfit: `max(1, n/200 rounded half up)`, 0 for an
/// empty stream.
pub fn unfit_quota(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        ((n + 100) / 200).max(1)
    }
}

/// The key of a stored record as text (`"3790000001"`, `"5120000_acme-0.example.com"`);
/// `None` when the key field is missing or neither a number nor a string.
pub fn record_key(stream: Stream, record: &Obj) -> Option<String> {
    match record.get(stream.key_field())? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// FNV-1a over the seed, the stream's name and the key, then a 64-bit finalizer
/// (splitmix64's) so every bit is usable.
fn hash(seed: u64, stream: Stream, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = seed
        .to_le_bytes()
        .into_iter()
        .chain(stream.name().bytes())
        .chain([0u8])
        .chain(key.bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The `--messy` rendering of one org: its seed and the keys of its unfit records.
#[derive(Clone, Debug, Default)]
pub struct Messy {
    seed: u64,
    unfit: BTreeMap<Stream, HashSet<String>>,
}

impl Messy {
    /// Choose the unfit records of `org` (built just now; `now_ms` is the sandbox clock)
    /// for `seed`: per stream, the [`unfit_quota`] records with the smallest hash.
    pub fn choose(org: &Org, seed: u64, now_ms: i64) -> Messy {
        let unfit = Stream::ALL
            .into_iter()
            .map(|stream| {
                let keys = candidates(org, stream, now_ms);
                let mut ranked: Vec<(u64, String)> = keys
                    .into_iter()
                    .map(|k| (hash(seed, stream, &k), k))
                    .collect();
                ranked.sort_unstable();
                ranked.dedup();
                let k = unfit_quota(ranked.len());
                let chosen = ranked.into_iter().take(k).map(|(_, key)| key).collect();
                (stream, chosen)
            })
            .collect();
        Messy { seed, unfit }
    }

    /// Whether the record with this key is one of the stream's unfit records.
    pub fn is_unfit(&self, stream: Stream, key: &str) -> bool {
        self.unfit.get(&stream).is_some_and(|s| s.contains(key))
    }

    /// Render one record as served: unfit, varied (about 1 in 10) or as stored. Anything
    /// but an object with a key is returned unchanged.
    pub fn render(&self, stream: Stream, record: Value) -> Value {
        let Value::Object(mut o) = record else {
            return record;
        };
        let Some(key) = record_key(stream, &o) else {
            return Value::Object(o);
        };
        let h = hash(self.seed, stream, &key);
        if self.is_unfit(stream, &key) {
            let oid = format!("{:016x}{:08x}", h, h >> 40);
            stream.corrupt(&mut o, h & (1 << 12) != 0, &oid);
        } else if h.is_multiple_of(10) {
            vary(stream, &mut o, h);
        }
        Value::Object(o)
    }

    /// The `unfit` object of `GET /__sandbox/counts`: per stream, the unfit records a full
    /// `sync --streams all` receives now — contacts among the existing ones conversations
    /// refer to, users still listed, meetings within [`MEETINGS_WINDOW_MS`] of `now_ms`,
    /// messages of every conversation.
    pub fn unfit_counts(&self, org: &Org, now_ms: i64) -> Value {
        let mut out = Map::new();
        for stream in Stream::ALL {
            let n = candidates(org, stream, now_ms)
                .iter()
                .filter(|k| self.is_unfit(stream, k))
                .count();
            out.insert(stream.name().into(), json!(n));
        }
        Value::Object(out)
    }
}

/// The keys of the records a full sync reads from `stream` now (a key twice when the org
/// serves two records with it).
fn candidates(org: &Org, stream: Stream, now_ms: i64) -> Vec<String> {
    let keys = |records: &[Obj]| -> Vec<String> {
        records
            .iter()
            .filter_map(|r| record_key(stream, r))
            .collect()
    };
    match stream {
        Stream::Conversations => keys(&org.conversations),
        Stream::Messages => org
            .messages
            .iter()
            .flatten()
            .map(|m| m.id.to_string())
            .collect(),
        Stream::Contacts => org
            .contact_ids_in_conversations()
            .into_iter()
            .map(|id| id.to_string())
            .collect(),
        Stream::Accounts => keys(&org.accounts),
        Stream::Users => keys(&org.users),
        Stream::Teams => keys(&org.teams),
        Stream::Playbooks => keys(&org.playbooks),
        Stream::Meetings => org
            .meetings
            .iter()
            .filter(|m| {
                m.get("slotStart")
                    .and_then(Value::as_i64)
                    .is_some_and(|s| (s - now_ms).abs() <= MEETINGS_WINDOW_MS)
            })
            .filter_map(|m| record_key(stream, m))
            .collect(),
        Stream::ContactAttributes => keys(&org.attributes),
    }
}

/// Apply the fitting variations chosen by `h` to a record that is not unfit.
fn vary(stream: Stream, o: &mut Obj, h: u64) {
    let mut record = Value::Object(std::mem::take(o));
    for pointer in stream.int_fields() {
        if let Some(v) = record.pointer_mut(pointer) {
            if let Some(n) = v.as_u64() {
                *v = Value::String(n.to_string());
            }
        }
    }
    let present: Vec<&str> = stream
        .optional_fields()
        .iter()
        .copied()
        .filter(|p| record.pointer(p).is_some_and(|v| !v.is_null()))
        .collect();
    let (null, remove) = (h & (1 << 9) != 0, h & (1 << 10) != 0);
    let (null, remove) = (null && !present.is_empty(), remove && present.len() > 1);
    if null || remove {
        let first = (h >> 16) as usize % present.len();
        if null {
            if let Some(v) = record.pointer_mut(present[first]) {
                *v = Value::Null;
            }
        }
        if remove {
            let other =
                present[(first + 1 + (h >> 24) as usize % (present.len() - 1)) % present.len()];
            remove_pointer(&mut record, other);
        }
    }
    if let Value::Object(map) = record {
        *o = map;
    }
    if h & (1 << 8) != 0 || !(null || remove) {
        o.insert("_sbx_trace".into(), json!({ "shard": (h >> 40) % 8 }));
    }
}

/// Remove the field a JSON pointer names from its parent object.
fn remove_pointer(record: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    if let Some(Value::Object(map)) = record.pointer_mut(parent) {
        map.shift_remove(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_one_in_two_hundred_rounded_and_at_least_one() {
        assert_eq!(unfit_quota(0), 0);
        assert_eq!(unfit_quota(3), 1);
        assert_eq!(unfit_quota(299), 1);
        assert_eq!(unfit_quota(300), 2);
        assert_eq!(unfit_quota(5000), 25);
    }

    #[test]
    fn hash_depends_on_seed_stream_and_key() {
        let a = hash(7, Stream::Users, "1");
        assert_eq!(a, hash(7, Stream::Users, "1"));
        assert_ne!(a, hash(8, Stream::Users, "1"));
        assert_ne!(a, hash(7, Stream::Teams, "1"));
        assert_ne!(a, hash(7, Stream::Users, "2"));
    }

    #[test]
    fn a_variation_keeps_the_key_and_the_meaning() {
        for h in (0..4096u64).map(|i| i << 8) {
            let mut o =
                crate::seed::obj(json!({"id": 42, "alias": "a", "phone": "p", "createdAt": 5}));
            vary(Stream::Users, &mut o, h);
            assert_eq!(o["id"], json!("42"));
            assert!(o.get("createdAt").is_none_or(|v| v == &json!("5")));
            let left_out = !(o.contains_key("alias") && o.contains_key("phone"));
            assert!(o.contains_key("_sbx_trace") || o.values().any(Value::is_null) || left_out);
        }
    }
}
