//! The in-memory org: every record the sandbox serves, with the indexes the routes need.
//!
//! Records are kept as JSON objects exactly as Drift would send them (so fixtures round-trip
//! with nulls and absent fields intact), except messages, which are by far the most numerous
//! and use a compact typed form ([`Message`]) rendered to JSON on demand.

use crate::config::ORG_ID;
use crate::messy::{Messy, Stream};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A JSON object as Drift sends it.
pub type Obj = Map<String, Value>;

/// Who wrote a message (REFERENCE §7.2 `author`): `{"type": "contact"|"user", "id", "bot"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Author {
    /// `true` for `type: "user"`, `false` for `type: "contact"`.
    pub user: bool,
    /// Contact or user id.
    pub id: i64,
    /// `bot` flag.
    pub bot: bool,
}

/// A message `body`: absent, null, or HTML text (REFERENCE §7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// No `body` field.
    Absent,
    /// `"body": null`.
    Null,
    /// `"body": "<p>...</p>"`.
    Text(Cow<'static, str>),
}

/// One message (REFERENCE §7.2 message object). Generated and posted messages are compact
/// (the most numerous records by far); messages loaded from fixtures keep their object in
/// `raw` and are served exactly as loaded.
#[derive(Clone, Debug)]
pub struct Message {
    /// `id`.
    pub id: i64,
    /// `conversationId`.
    pub conversation_id: i64,
    /// `createdAt`, epoch ms.
    pub created_at: i64,
    /// `author`.
    pub author: Author,
    /// `type`: `chat` or `private_note`.
    pub kind: &'static str,
    /// `body`.
    pub body: Body,
    /// `attributes`; `None` = `{}`.
    pub attributes: Option<Arc<Obj>>,
    /// Further fields in order (`buttons`, `context`, `attachments`); shared between
    /// generated messages with the same values.
    pub extra: Option<Arc<Obj>>,
    /// The whole object as loaded from fixtures; when set it is what is served.
    pub raw: Option<Box<Obj>>,
}

impl Message {
    /// A compact message of the sandbox org (`orgId` is [`ORG_ID`]).
    pub fn new(
        id: i64,
        conversation_id: i64,
        created_at: i64,
        author: Author,
        kind: &'static str,
        body: Body,
    ) -> Message {
        Message {
            id,
            conversation_id,
            created_at,
            author,
            kind,
            body,
            attributes: None,
            extra: None,
            raw: None,
        }
    }

    /// Render as Drift's JSON message object.
    pub fn to_json(&self) -> Value {
        if let Some(raw) = &self.raw {
            return Value::Object((**raw).clone());
        }
        let mut m = Obj::new();
        m.insert("id".into(), self.id.into());
        m.insert("orgId".into(), ORG_ID.into());
        m.insert("conversationId".into(), self.conversation_id.into());
        match &self.body {
            Body::Absent => {}
            Body::Null => {
                m.insert("body".into(), Value::Null);
            }
            Body::Text(t) => {
                m.insert("body".into(), Value::String(t.to_string()));
            }
        }
        let a = self.author;
        let kind = if a.user { "user" } else { "contact" };
        m.insert(
            "author".into(),
            json!({"type": kind, "id": a.id, "bot": a.bot}),
        );
        m.insert("type".into(), self.kind.into());
        m.insert("createdAt".into(), self.created_at.into());
        if let Some(extra) = &self.extra {
            m.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let attributes = self
            .attributes
            .as_ref()
            .map_or_else(Obj::new, |a| (**a).clone());
        m.insert("attributes".into(), Value::Object(attributes));
        Value::Object(m)
    }

    /// A message loaded from fixtures: `id`, `conversationId`, `createdAt` are required
    /// integers; the object is kept whole. Errors name the missing field.
    pub fn from_json(o: Obj) -> Result<Message, String> {
        let author = Author {
            user: false,
            id: 0,
            bot: false,
        };
        let mut m = Message::new(
            take_i64(&o, "id")?,
            take_i64(&o, "conversationId")?,
            take_i64(&o, "createdAt")?,
            author,
            "chat",
            Body::Absent,
        );
        m.raw = Some(Box::new(o));
        Ok(m)
    }
}

fn take_i64(o: &Obj, key: &str) -> Result<i64, String> {
    o.get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("field `{key}` must be an integer"))
}

/// Read an integer field of a record (0 when absent or not a number).
pub fn int(o: &Obj, key: &str) -> i64 {
    o.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// Read a string field of a record.
pub fn text<'a>(o: &'a Obj, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

/// Next ids to hand out for created records (REFERENCE §9 magnitudes).
#[derive(Clone, Debug, Default)]
pub struct IdGen {
    /// Next contact id.
    pub contact: i64,
    /// Next conversation id.
    pub conversation: i64,
    /// Next message id.
    pub message: i64,
    /// Next account counter (the number before `_domain` in `accountId`).
    pub account: i64,
}

impl IdGen {
    /// Take the next id of a counter.
    pub fn take(counter: &mut i64) -> i64 {
        let id = *counter;
        *counter += 1;
        id
    }
}

/// The whole org held by a sandbox.
#[derive(Clone, Debug, Default)]
pub struct Org {
    /// Conversations, full objects (REFERENCE §7.2), in creation order.
    pub conversations: Vec<Obj>,
    /// Messages of each conversation (same index), oldest first.
    pub messages: Vec<Vec<Message>>,
    /// Conversation id -> index.
    pub conv_pos: HashMap<i64, usize>,
    /// Conversation indexes ordered by `updatedAt` desc, ties by `id` desc.
    pub order: Vec<usize>,
    /// Contacts by id (ascending id = creation order); deleted contacts are removed.
    pub contacts: BTreeMap<i64, Obj>,
    /// Accounts (REFERENCE §7.3) in creation order; soft delete sets `deleted: true`.
    pub accounts: Vec<Obj>,
    /// `accountId` -> index.
    pub account_pos: HashMap<String, usize>,
    /// Users (REFERENCE §7.4).
    pub users: Vec<Obj>,
    /// Teams (REFERENCE §7.5).
    pub teams: Vec<Obj>,
    /// Playbooks (REFERENCE §7.6).
    pub playbooks: Vec<Obj>,
    /// Conversational landing pages (REFERENCE §7.6).
    pub landing_pages: Vec<Obj>,
    /// Booked meetings (REFERENCE §7.4).
    pub meetings: Vec<Obj>,
    /// Custom contact attribute definitions (REFERENCE §7.1).
    pub attributes: Vec<Obj>,
    /// Timeline events posted (REFERENCE §7.1).
    pub timeline: Vec<Obj>,
    /// Id counters for created records.
    pub ids: IdGen,
    /// Number of `/__sandbox/mutate` calls applied (seeds the next one).
    pub mutations: u64,
    /// Ids of the contacts deleted since the org was built (`DELETE /contacts/{id}` or the
    /// `delete_contacts` mutation); they are gone from `contacts`.
    pub deleted_contacts: BTreeSet<i64>,
    /// Ids of the users deleted by the `delete_users` mutation; they are gone from `users`.
    pub deleted_users: BTreeSet<i64>,
    /// The `--messy` rendering, `None` when records are served as stored.
    pub messy: Option<Messy>,
}

impl Org {
    /// Rebuild the conversation indexes after conversations were added or changed.
    pub fn reindex(&mut self) {
        self.conv_pos = self
            .conversations
            .iter()
            .enumerate()
            .map(|(i, c)| (int(c, "id"), i))
            .collect();
        self.resort();
    }

    /// Re-sort the list order: `updatedAt` desc, ties by `id` desc (REFERENCE §9 `[SIM]`).
    pub fn resort(&mut self) {
        let convs = &self.conversations;
        let mut order: Vec<usize> = (0..convs.len()).collect();
        order.sort_by(|&a, &b| {
            let (ca, cb) = (&convs[a], &convs[b]);
            (int(cb, "updatedAt"), int(cb, "id")).cmp(&(int(ca, "updatedAt"), int(ca, "id")))
        });
        self.order = order;
    }

    /// Sort key of conversation `i` in the list order (larger = earlier in the list).
    fn list_key(&self, i: usize) -> (i64, i64) {
        let c = &self.conversations[i];
        (int(c, "updatedAt"), int(c, "id"))
    }

    /// Move conversation `i` to its place in the list order after its `updatedAt` changed
    /// (O(n) instead of a full re-sort).
    pub fn reposition(&mut self, i: usize) {
        if let Some(at) = self.order.iter().position(|&x| x == i) {
            self.order.remove(at);
        }
        let key = self.list_key(i);
        let at = self.order.partition_point(|&x| self.list_key(x) > key);
        self.order.insert(at, i);
    }

    /// Add a conversation with its messages and index it; returns its index.
    pub fn push_conversation(&mut self, conversation: Obj, messages: Vec<Message>) -> usize {
        let i = self.conversations.len();
        self.conv_pos.insert(int(&conversation, "id"), i);
        self.conversations.push(conversation);
        self.messages.push(messages);
        self.reposition(i);
        i
    }

    /// Rebuild the account index.
    pub fn reindex_accounts(&mut self) {
        self.account_pos = self
            .accounts
            .iter()
            .enumerate()
            .filter_map(|(i, a)| text(a, "accountId").map(|id| (id.to_string(), i)))
            .collect();
    }

    /// Set the id counters above every id present (after fixtures were loaded).
    pub fn bump_ids(&mut self) {
        let max_conv = self.conv_pos.keys().copied().max().unwrap_or(3_790_000_000);
        let max_msg = self
            .messages
            .iter()
            .flat_map(|ms| ms.iter().map(|m| m.id))
            .max()
            .unwrap_or(12_400_000_000);
        let max_contact = self
            .contacts
            .keys()
            .next_back()
            .copied()
            .unwrap_or(15_900_000_000);
        let max_account = self
            .accounts
            .iter()
            .filter_map(|a| text(a, "accountId")?.split('_').next()?.parse::<i64>().ok())
            .max()
            .unwrap_or(5_120_000);
        self.ids.conversation = self.ids.conversation.max(max_conv + 1);
        self.ids.message = self.ids.message.max(max_msg + 1);
        self.ids.contact = self.ids.contact.max(max_contact + 1);
        self.ids.account = self.ids.account.max(max_account + 1);
    }

    /// The conversation with this id, with its index.
    pub fn conversation(&self, id: i64) -> Option<(usize, &Obj)> {
        let i = *self.conv_pos.get(&id)?;
        Some((i, &self.conversations[i]))
    }

    /// Contacts whose `attributes.email` equals `email` exactly, oldest first.
    pub fn contacts_by_email(&self, email: &str) -> Vec<&Obj> {
        self.contacts
            .values()
            .filter(|c| attr_str(c, "email") == Some(email))
            .collect()
    }

    /// Contacts whose `attributes.externalId` equals `external_id`, oldest first.
    pub fn contacts_by_external_id(&self, external_id: &str) -> Vec<&Obj> {
        self.contacts
            .values()
            .filter(|c| attr_str(c, "externalId") == Some(external_id))
            .collect()
    }

    /// Number of messages in the org.
    pub fn message_count(&self) -> usize {
        self.messages.iter().map(Vec::len).sum()
    }

    /// Distinct existing contacts that conversations refer to (a deleted contact is not
    /// counted: reading it answers 404).
    pub fn contacts_in_conversations(&self) -> usize {
        self.contact_ids_in_conversations().len()
    }

    /// Ids of the existing contacts that conversations refer to, ascending.
    pub fn contact_ids_in_conversations(&self) -> BTreeSet<i64> {
        self.conversations
            .iter()
            .filter_map(|c| c.get("contactId").and_then(Value::as_i64))
            .filter(|id| self.contacts.contains_key(id))
            .collect()
    }

    /// Accounts served with `deleted: true` (soft-deleted: seeded so, deleted through the
    /// API, or by the `delete_accounts` mutation).
    pub fn deleted_accounts(&self) -> usize {
        self.accounts
            .iter()
            .filter(|a| a.get("deleted") == Some(&Value::Bool(true)))
            .count()
    }

    /// A record of `stream` as a READ route serves it: as stored, or rendered by `--messy`
    /// ([`crate::messy`]). Writes answer with the stored record instead.
    pub fn show(&self, stream: Stream, record: Value) -> Value {
        match &self.messy {
            Some(m) => m.render(stream, record),
            None => record,
        }
    }

    /// [`Org::show`] of a stored object.
    pub fn show_obj(&self, stream: Stream, record: &Obj) -> Value {
        self.show(stream, Value::Object(record.clone()))
    }
}

/// Raise a contact's version attributes (`_END_USER_VERSION`, `_end_user_version`,
/// `_calculated_version`) by one, as Drift does on every change of the contact.
pub fn bump_versions(attributes: &mut Obj) {
    let version = attributes
        .get("_END_USER_VERSION")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        + 1;
    for k in [
        "_END_USER_VERSION",
        "_end_user_version",
        "_calculated_version",
    ] {
        attributes.insert(k.into(), json!(version));
    }
}

/// A string attribute of a contact (`attributes.<key>`).
pub fn attr_str<'a>(contact: &'a Obj, key: &str) -> Option<&'a str> {
    contact.get("attributes")?.get(key)?.as_str()
}
