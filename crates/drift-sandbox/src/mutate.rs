//! `POST /__sandbox/mutate`: change the org the way a live Drift org changes between two
//! syncs, deterministically (seed + number of earlier mutations). `POST /__sandbox/reset`
//! builds the org again, which undoes every mutation.
//!
//! Which users `delete_users` may delete ([`deletable_users`]): never the bot (it authors
//! bot messages and is the default author of posted ones), never an admin (the org needs
//! one), never a team's `owner`, never a playbook's `createdAuthorId` / `updatedAuthorId`.
//! Other references to a deleted user — team `members`, account `ownerId`, message authors,
//! conversation `participants`, meeting agents — stay as they are, the way an org's history
//! keeps naming a user who left.

use crate::config::SandboxConfig;
use crate::error::{ApiError, ApiResult};
use crate::org::{bump_versions, int, text, Author, Body, IdGen, Message, Org};
use crate::seed::{obj, BOT_USER_ID, FIRST, INBOX_ID, LAST};
use rand::seq::index::sample;
use rand::seq::IndexedRandom;
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
    /// Existing contacts that conversations refer to whose `attributes.name` changes (their
    /// versions go up by one); the most recently updated conversation of each moves its
    /// `updatedAt` to now, so an incremental sync reads it again.
    pub rename_contacts: usize,
    /// Existing contacts that conversations refer to (others than the renamed ones) that are
    /// deleted: `GET /contacts/{id}` answers 404 and lookups by email or external id no
    /// longer find them. Their conversations are left unchanged.
    pub delete_contacts: usize,
    /// Accounts not yet deleted that are soft-deleted: still listed and readable, with
    /// `deleted: true`; `updateDateTime` is left unchanged (Drift does not document whether
    /// it moves).
    pub delete_accounts: usize,
    /// Users removed from the org ([`deletable_users`] only): gone from `GET /users/list`,
    /// 404 on `GET /users/{id}`.
    pub delete_users: usize,
    /// Conversations with tags that lose their last tag (`conversationTags`); their
    /// `updatedAt` moves to now, so an incremental sync reads them again.
    pub untag_conversations: usize,
    /// A contact attribute key to add: up to 3 contacts that conversations refer to get it
    /// (a string value; versions up by one) and each one's most recently updated
    /// conversation moves its `updatedAt` to now. `GET /contacts/attributes` does not list
    /// it (a new field for the schema contract).
    pub new_contact_attribute: Option<String>,
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
            rename_contacts: field("rename_contacts")?,
            delete_contacts: field("delete_contacts")?,
            delete_accounts: field("delete_accounts")?,
            delete_users: field("delete_users")?,
            untag_conversations: field("untag_conversations")?,
            new_contact_attribute: match v.get("new_contact_attribute") {
                None | Some(Value::Null) => None,
                Some(Value::String(k)) if !k.is_empty() => Some(k.clone()),
                Some(_) => {
                    return Err(ApiError::invalid(
                        "new_contact_attribute",
                        "new_contact_attribute must be a non-empty string (the attribute key)",
                    ))
                }
            },
        })
    }
}

/// Apply a mutation; returns the ids changed per kind (`touch_accounts` and
/// `delete_accounts` list `accountId`s, `new_messages` message ids, `rename_contacts` and
/// `delete_contacts` contact ids, `delete_users` user ids). A kind asks for at most as many
/// records as there are candidates; the lists say how many were changed.
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
    let (renamed, deleted) =
        change_contacts(org, &mut rng, req.rename_contacts, req.delete_contacts, now);
    let deleted_accounts = delete_accounts(org, &mut rng, req.delete_accounts);
    let deleted_users = delete_users(org, &mut rng, req.delete_users);
    let untagged = untag_conversations(org, &mut rng, req.untag_conversations, now);
    let attributed = match &req.new_contact_attribute {
        Some(key) => new_contact_attribute(org, &mut rng, key, now),
        None => Vec::new(),
    };
    org.reindex();
    json!({"touch_conversations": touched, "new_conversations": created,
        "new_messages": messages, "touch_accounts": accounts,
        "rename_contacts": renamed, "delete_contacts": deleted,
        "delete_accounts": deleted_accounts, "delete_users": deleted_users,
        "untag_conversations": untagged, "new_contact_attribute": attributed})
}

/// Remove the last tag of `k` conversations that have tags; their `updatedAt` moves to now.
fn untag_conversations(org: &mut Org, rng: &mut ChaCha8Rng, k: usize, now: i64) -> Vec<i64> {
    let tagged: Vec<usize> = org
        .conversations
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.get("conversationTags")
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty())
        })
        .map(|(i, _)| i)
        .collect();
    sample(rng, tagged.len(), k.min(tagged.len()))
        .into_iter()
        .map(|j| {
            let c = &mut org.conversations[tagged[j]];
            if let Some(Value::Array(tags)) = c.get_mut("conversationTags") {
                tags.pop();
            }
            c.insert("updatedAt".into(), json!(now));
            int(c, "id")
        })
        .collect()
}

/// Give up to 3 contacts that conversations refer to the attribute `key` (value
/// `"<key> <mutation>"`), versions up by one, and touch each one's latest conversation.
fn new_contact_attribute(org: &mut Org, rng: &mut ChaCha8Rng, key: &str, now: i64) -> Vec<i64> {
    let pool: Vec<i64> = org.contact_ids_in_conversations().into_iter().collect();
    let picked: Vec<i64> = sample(rng, pool.len(), 3.min(pool.len()))
        .into_iter()
        .map(|i| pool[i])
        .collect();
    let value = format!("{key} {}", org.mutations);
    for &id in &picked {
        if let Some(c) = org.contacts.get_mut(&id) {
            if !c.get("attributes").is_some_and(Value::is_object) {
                c.insert("attributes".into(), json!({}));
            }
            if let Some(Value::Object(a)) = c.get_mut("attributes") {
                a.insert(key.to_owned(), json!(value));
                bump_versions(a);
            }
        }
        let latest = org
            .conversations
            .iter()
            .enumerate()
            .filter(|(_, c)| int(c, "contactId") == id)
            .max_by_key(|(_, c)| (int(c, "updatedAt"), int(c, "id")))
            .map(|(i, _)| i);
        if let Some(i) = latest {
            org.conversations[i].insert("updatedAt".into(), json!(now));
        }
    }
    picked
}

/// Rename `rename` and delete `delete` distinct contacts among those conversations refer to;
/// returns the renamed and the deleted ids.
fn change_contacts(
    org: &mut Org,
    rng: &mut ChaCha8Rng,
    rename: usize,
    delete: usize,
    now: i64,
) -> (Vec<i64>, Vec<i64>) {
    let pool: Vec<i64> = org.contact_ids_in_conversations().into_iter().collect();
    let picked: Vec<i64> = sample(rng, pool.len(), (rename + delete).min(pool.len()))
        .into_iter()
        .map(|i| pool[i])
        .collect();
    let (renamed, deleted) = picked.split_at(rename.min(picked.len()));
    for &id in renamed {
        rename_contact(org, rng, id, now);
    }
    for &id in deleted {
        org.contacts.remove(&id);
        org.deleted_contacts.insert(id);
    }
    (renamed.to_vec(), deleted.to_vec())
}

/// A new `attributes.name` (and `first_name` when the contact has one), versions up by one,
/// and the contact's most recently updated conversation touched.
fn rename_contact(org: &mut Org, rng: &mut ChaCha8Rng, id: i64, now: i64) {
    let first = FIRST.choose(rng).copied().unwrap_or("Alex");
    let last = LAST.choose(rng).copied().unwrap_or("Doe");
    // The mutation number makes the name differ from every earlier one.
    let name = format!("{first} {last} ({})", org.mutations);
    if let Some(c) = org.contacts.get_mut(&id) {
        if !c.get("attributes").is_some_and(Value::is_object) {
            c.insert("attributes".into(), json!({}));
        }
        if let Some(Value::Object(a)) = c.get_mut("attributes") {
            a.insert("name".into(), json!(name));
            if a.contains_key("first_name") {
                a.insert("first_name".into(), json!(first));
            }
            bump_versions(a);
        }
    }
    let latest = org
        .conversations
        .iter()
        .enumerate()
        .filter(|(_, c)| int(c, "contactId") == id)
        .max_by_key(|(_, c)| (int(c, "updatedAt"), int(c, "id")))
        .map(|(i, _)| i);
    if let Some(i) = latest {
        org.conversations[i].insert("updatedAt".into(), json!(now));
    }
}

/// Soft-delete `k` accounts not yet deleted; `updateDateTime` stays.
fn delete_accounts(org: &mut Org, rng: &mut ChaCha8Rng, k: usize) -> Vec<String> {
    let live: Vec<usize> = (0..org.accounts.len())
        .filter(|&i| org.accounts[i].get("deleted") != Some(&Value::Bool(true)))
        .collect();
    sample(rng, live.len(), k.min(live.len()))
        .into_iter()
        .map(|j| {
            let a = &mut org.accounts[live[j]];
            a.insert("deleted".into(), json!(true));
            text(a, "accountId").unwrap_or("").to_string()
        })
        .collect()
}

/// Indexes of the users `delete_users` may delete (see the module docs): not the bot, not
/// an admin, no team's owner, no playbook's author.
pub fn deletable_users(org: &Org) -> Vec<usize> {
    let mut needed: std::collections::BTreeSet<i64> = org
        .teams
        .iter()
        .filter_map(|t| t.get("owner").and_then(Value::as_i64))
        .collect();
    for p in &org.playbooks {
        for k in ["createdAuthorId", "updatedAuthorId"] {
            needed.extend(p.get(k).and_then(Value::as_i64));
        }
    }
    needed.insert(BOT_USER_ID);
    (0..org.users.len())
        .filter(|&i| {
            let u = &org.users[i];
            u.get("bot") != Some(&Value::Bool(true))
                && text(u, "role") != Some("admin")
                && !needed.contains(&int(u, "id"))
        })
        .collect()
}

/// Remove `k` deletable users from the org; returns their ids.
fn delete_users(org: &mut Org, rng: &mut ChaCha8Rng, k: usize) -> Vec<i64> {
    let pool = deletable_users(org);
    let ids: Vec<i64> = sample(rng, pool.len(), k.min(pool.len()))
        .into_iter()
        .map(|j| int(&org.users[pool[j]], "id"))
        .collect();
    org.users.retain(|u| !ids.contains(&int(u, "id")));
    org.deleted_users.extend(ids.iter().copied());
    ids
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
