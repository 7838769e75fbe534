//! `POST /__sandbox/mutate`: change the org the way a live Drift org changes between two
//! syncs, deterministically (seed + number of earlier mutations).

use crate::config::SandboxConfig;
use crate::error::{ApiError, ApiResult};
use crate::org::{int, Author, Body, IdGen, Message, Org};
use crate::seed::{obj, BOT_USER_ID, INBOX_ID};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::borrow::Cow;

/// How many records of each kind to change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MutateRequest {
    /// Conversations whose `updatedAt` (and sometimes status) moves to now.
    pub touch_conversations: usize,
    /// New conversations (with `messages_per_conversation` messages, existing contacts).
    pub new_conversations: usize,
    /// New messages on existing conversations (their `updatedAt` moves to now).
    pub new_messages: usize,
    /// Accounts whose `updateDateTime` moves to now.
    pub touch_accounts: usize,
}

impl MutateRequest {
    /// Parse the body; every field is optional, a non-negative integer.
    pub fn from_json(v: &Value) -> ApiResult<MutateRequest> {
        let field = |k: &str| -> ApiResult<usize> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(0),
                Some(x) => x.as_u64().map(|n| n as usize).ok_or_else(|| {
                    ApiError::invalid(k, format!("{k} must be a non-negative integer"))
                }),
            }
        };
        Ok(MutateRequest {
            touch_conversations: field("touch_conversations")?,
            new_conversations: field("new_conversations")?,
            new_messages: field("new_messages")?,
            touch_accounts: field("touch_accounts")?,
        })
    }
}

/// Apply a mutation; returns the ids changed per kind (`touch_accounts` lists `accountId`s,
/// `new_messages` message ids).
pub fn apply(org: &mut Org, req: &MutateRequest, cfg: &SandboxConfig, now: i64) -> Value {
    org.mutations += 1;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_mul(31).wrapping_add(org.mutations));
    let touched = touch_conversations(org, &mut rng, req.touch_conversations, now);
    let created = new_conversations(
        org,
        &mut rng,
        req.new_conversations,
        cfg.messages_per_conversation,
        now,
    );
    let messages = new_messages(org, &mut rng, req.new_messages, now);
    let accounts = touch_accounts(org, &mut rng, req.touch_accounts, now);
    org.reindex();
    json!({"touch_conversations": touched, "new_conversations": created,
        "new_messages": messages, "touch_accounts": accounts})
}

fn touch_conversations(org: &mut Org, rng: &mut ChaCha8Rng, k: usize, now: i64) -> Vec<i64> {
    let n = org.conversations.len();
    sample(rng, n, k.min(n))
        .into_iter()
        .map(|i| {
            let c = &mut org.conversations[i];
            c.insert("updatedAt".into(), json!(now));
            let next = match c.get("status").and_then(Value::as_str) {
                Some("open") => "closed",
                Some("pending") => "open",
                Some("closed") => "open",
                _ => "bulk_sent",
            };
            c.insert("status".into(), json!(next));
            int(c, "id")
        })
        .collect()
}

fn new_conversations(
    org: &mut Org,
    rng: &mut ChaCha8Rng,
    k: usize,
    per: usize,
    now: i64,
) -> Vec<i64> {
    let contacts: Vec<i64> = org.contacts.keys().copied().collect();
    (0..k)
        .filter_map(|_| {
            let contact = *contacts.get(rng.random_range(0..contacts.len().max(1)))?;
            let id = IdGen::take(&mut org.ids.conversation);
            let msgs: Vec<Message> = (0..per)
                .map(|j| {
                    let user = j % 2 == 0;
                    let author = Author { user, id: if user { BOT_USER_ID } else { contact }, bot: user };
                    message(&mut org.ids, id, now - (per - j) as i64, author, "<p>New message ✨</p>")
                })
                .collect();
            let created = msgs.first().map_or(now, |m| m.created_at);
            org.conversations.push(obj(json!({"id": id, "status": "open", "participants": [BOT_USER_ID],
                "contactId": contact, "inboxId": INBOX_ID, "createdAt": created, "updatedAt": now, "conversationTags": []})));
            org.messages.push(msgs);
            Some(id)
        })
        .collect()
}

fn new_messages(org: &mut Org, rng: &mut ChaCha8Rng, k: usize, now: i64) -> Vec<i64> {
    let n = org.conversations.len();
    if n == 0 {
        return Vec::new();
    }
    (0..k)
        .map(|_| {
            let i = rng.random_range(0..n);
            let conv = &org.conversations[i];
            let (cid, contact) = (int(conv, "id"), int(conv, "contactId"));
            let author = Author {
                user: false,
                id: contact,
                bot: false,
            };
            let m = message(&mut org.ids, cid, now, author, "Any update on this? 🙂");
            let id = m.id;
            org.messages[i].push(m);
            org.conversations[i].insert("updatedAt".into(), json!(now));
            id
        })
        .collect()
}

fn message(ids: &mut IdGen, conv: i64, at: i64, author: Author, body: &'static str) -> Message {
    let id = IdGen::take(&mut ids.message);
    Message::new(
        id,
        conv,
        at,
        author,
        "chat",
        Body::Text(Cow::Borrowed(body)),
    )
}

fn touch_accounts(org: &mut Org, rng: &mut ChaCha8Rng, k: usize, now: i64) -> Vec<String> {
    let n = org.accounts.len();
    sample(rng, n, k.min(n))
        .into_iter()
        .map(|i| {
            let a = &mut org.accounts[i];
            a.insert("updateDateTime".into(), json!(now));
            let targeted = a.get("targeted").and_then(Value::as_bool).unwrap_or(false);
            a.insert("targeted".into(), json!(!targeted));
            a.get("accountId")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect()
}
