//! The in-memory org: every record the sandbox serves, with the indexes the routes need.
//!
//! Records are kept as JSON objects exactly as Drift would send them (so fixtures round-trip
//! with nulls and absent fields intact), except messages, which are by far the most numerous
//! and use a compact typed form ([`Message`]) rendered to JSON on demand.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// A JSON object as Drift sends it.
pub type Obj = Map<String, Value>;

/// Who wrote a message (REFERENCE §7.2 `author`).
#[derive(Clone, Debug)]
pub enum Author {
    /// `{"type": "contact"|"user", "id": n, "bot": b}`.
    Known {
        /// `true` for `type: "user"`, `false` for `type: "contact"`.
        user: bool,
        /// Contact or user id.
        id: i64,
        /// `bot` flag.
        bot: bool,
    },
    /// Any other shape, kept as loaded from fixtures.
    Raw(Box<Value>),
}

/// One message, compact (REFERENCE §7.2 message object).
#[derive(Clone, Debug)]
pub struct Message {
    /// `id`.
    pub id: i64,
    /// `conversationId`.
    pub conversation_id: i64,
    /// `createdAt`, epoch ms.
    pub created_at: i64,
    /// `orgId`; `None` = absent.
    pub org_id: Option<i64>,
    /// `body`; `None` = absent, `Some(Null)` = null.
    pub body: Option<Value>,
    /// `author`; `None` = absent.
    pub author: Option<Author>,
    /// `type` (`chat`, `private_note`, ...); `None` = absent.
    pub kind: Option<String>,
    /// `attributes`; `None` = absent.
    pub attributes: Option<Value>,
    /// Every other field (buttons, context, attachments, unknown fixture fields), in order.
    pub extra: Obj,
}

impl Message {
    /// Render as Drift's JSON message object.
    pub fn to_json(&self) -> Value {
        let mut m = Obj::new();
        m.insert("id".into(), self.id.into());
        if let Some(o) = self.org_id {
            m.insert("orgId".into(), o.into());
        }
        m.insert("conversationId".into(), self.conversation_id.into());
        if let Some(b) = &self.body {
            m.insert("body".into(), b.clone());
        }
        match &self.author {
            Some(Author::Known { user, id, bot }) => {
                let kind = if *user { "user" } else { "contact" };
                m.insert(
                    "author".into(),
                    serde_json::json!({"type": kind, "id": id, "bot": bot}),
                );
            }
            Some(Author::Raw(v)) => {
                m.insert("author".into(), (**v).clone());
            }
            None => {}
        }
        if let Some(k) = &self.kind {
            m.insert("type".into(), Value::String(k.clone()));
        }
        m.insert("createdAt".into(), self.created_at.into());
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        if let Some(a) = &self.attributes {
            m.insert("attributes".into(), a.clone());
        }
        Value::Object(m)
    }

    /// Parse a message object (fixtures, message posts). Errors name the missing field.
    pub fn from_json(mut o: Obj) -> Result<Message, String> {
        let id = take_i64(&mut o, "id")?;
        let conversation_id = take_i64(&mut o, "conversationId")?;
        let created_at = take_i64(&mut o, "createdAt")?;
        let org_id = o.remove("orgId").and_then(|v| v.as_i64());
        let body = o.remove("body");
        let author = o.remove("author").map(author_from_json);
        let kind = o
            .remove("type")
            .and_then(|v| v.as_str().map(str::to_string));
        let attributes = o.remove("attributes");
        Ok(Message {
            id,
            conversation_id,
            created_at,
            org_id,
            body,
            author,
            kind,
            attributes,
            extra: o,
        })
    }
}

fn author_from_json(v: Value) -> Author {
    let kind = v.get("type").and_then(Value::as_str);
    let id = v.get("id").and_then(Value::as_i64);
    let bot = v.get("bot").and_then(Value::as_bool);
    match (kind, id, bot, v.as_object().map(|o| o.len())) {
        (Some(k @ ("user" | "contact")), Some(id), Some(bot), Some(3)) => Author::Known {
            user: k == "user",
            id,
            bot,
        },
        _ => Author::Raw(Box::new(v)),
    }
}

fn take_i64(o: &mut Obj, key: &str) -> Result<i64, String> {
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

    /// Re-sort the list order: `updatedAt` desc, ties by `id` desc (REFERENCE §9 [SIM]).
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

    /// Distinct contact ids that conversations refer to.
    pub fn contacts_in_conversations(&self) -> usize {
        let mut ids: Vec<i64> = self
            .conversations
            .iter()
            .filter_map(|c| c.get("contactId").and_then(Value::as_i64))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

/// A string attribute of a contact (`attributes.<key>`).
pub fn attr_str<'a>(contact: &'a Obj, key: &str) -> Option<&'a str> {
    contact.get("attributes")?.get(key)?.as_str()
}
