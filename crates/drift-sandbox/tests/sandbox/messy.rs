//! `--messy`: fitting variations, unfit records and their counts, determinism; the default
//! sandbox stays faithful. Records are judged here by small typed structs of this file, not
//! by the sandbox's own code.

use crate::common::{config, Sbx};
use drift_sandbox::SandboxConfig;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// 2026-01-01T00:00:00Z: a fixed clock, so a messy and a faithful sandbox hold the same org.
const START: i64 = 1_767_225_600_000;
const DAY: i64 = 86_400_000;

fn cfg(messy: bool, conversations: usize) -> SandboxConfig {
    SandboxConfig {
        conversations,
        accounts: 60,
        users: 12,
        clock_start_ms: Some(START),
        messy,
        ..config()
    }
}

/// An integer as a tolerant client reads it: a JSON integer or a string of digits.
struct Int;

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Int, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Int),
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Ok(Int),
            other => Err(D::Error::custom(format!("not an integer: {other}"))),
        }
    }
}

/// Text as a tolerant client reads it: a string, a number or a boolean.
struct Text;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        match Value::deserialize(d)? {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(Text),
            other => Err(D::Error::custom(format!("not text: {other}"))),
        }
    }
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Conversation {
    id: Int,
    contact_id: Int,
    updated_at: Int,
    #[serde(default)]
    created_at: Option<Int>,
    #[serde(default)]
    inbox_id: Option<Int>,
    #[serde(default)]
    org_id: Option<Int>,
    #[serde(default)]
    related_playbook_id: Option<Int>,
    #[serde(default)]
    status: Option<Text>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Author {
    #[serde(default)]
    id: Option<Int>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    id: Int,
    #[serde(default)]
    conversation_id: Option<Int>,
    #[serde(default)]
    org_id: Option<Int>,
    #[serde(default)]
    created_at: Option<Int>,
    #[serde(default)]
    author: Option<Author>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Contact {
    id: Int,
    #[serde(default)]
    created_at: Option<Int>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Account {
    account_id: Text,
    #[serde(default)]
    owner_id: Option<Int>,
    #[serde(default)]
    create_date_time: Option<Int>,
    #[serde(default)]
    update_date_time: Option<Int>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdRecord {
    id: Int,
    #[serde(default)]
    org_id: Option<Int>,
    #[serde(default)]
    created_at: Option<Int>,
    #[serde(default)]
    updated_at: Option<Int>,
    #[serde(default)]
    owner: Option<Int>,
    #[serde(default)]
    created_author_id: Option<Int>,
    #[serde(default)]
    updated_author_id: Option<Int>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meeting {
    slug: Text,
    #[serde(default)]
    slot_start: Option<Int>,
    #[serde(default)]
    slot_end: Option<Int>,
    #[serde(default)]
    updated_at: Option<Int>,
    #[serde(default)]
    agent_id: Option<Int>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attribute {
    name: Text,
    #[serde(default, rename = "type")]
    kind: Option<Text>,
    #[serde(default)]
    display_name: Option<Text>,
}

fn fits_as<T: DeserializeOwned>(v: &Value) -> bool {
    serde_json::from_value::<T>(v.clone()).is_ok()
}

/// Whether a tolerant client can fit this record of `stream`.
fn fits(stream: &str, v: &Value) -> bool {
    match stream {
        "conversations" => fits_as::<Conversation>(v),
        "messages" => fits_as::<Message>(v),
        "contacts" => fits_as::<Contact>(v),
        "accounts" => fits_as::<Account>(v),
        "users" | "teams" | "playbooks" => fits_as::<IdRecord>(v),
        "meetings" => fits_as::<Meeting>(v),
        "contact_attributes" => fits_as::<Attribute>(v),
        other => panic!("unknown stream {other}"),
    }
}

/// An integer or a string of digits.
fn int_of(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

async fn messages_of(s: &Sbx, id: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = format!("/conversations/{id}/messages");
    loop {
        let r = s.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        out.extend(
            r.body["data"]["messages"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        match r.body["pagination"]["next"].as_str() {
            Some(n) => path = format!("/conversations/{id}/messages?next={n}"),
            None => return out,
        }
    }
}

/// Every record a full `sync --streams all` reads, per stream, as served: the conversation
/// list, the messages of every conversation, the contact of every conversation, every
/// account page, users, teams, playbooks, meetings of the sync's window (30 days either
/// side), the contact attributes.
async fn full_read(s: &Sbx) -> BTreeMap<&'static str, Vec<Value>> {
    let mut out = BTreeMap::new();
    let convs = s.all_conversations("limit=100").await;
    let mut messages = Vec::new();
    let mut contact_ids = BTreeSet::new();
    for c in &convs {
        let id = int_of(&c["id"]).expect("a conversation id stays readable");
        messages.extend(messages_of(s, id).await);
        contact_ids.insert(int_of(&c["contactId"]).expect("contactId stays readable"));
    }
    let mut contacts = Vec::new();
    for id in contact_ids {
        let r = s.get(&format!("/contacts/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        contacts.push(r.body["data"].clone());
    }
    let mut accounts = Vec::new();
    let mut path = "/accounts?size=65".to_string();
    loop {
        let r = s.get(&path).await;
        accounts.extend(
            r.body["data"]["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        match r.body["data"]["next"].as_str() {
            Some(n) => path = n.to_string(),
            None => break,
        }
    }
    let data = |r: crate::common::Resp| r.body["data"].as_array().unwrap().clone();
    let window = format!(
        "/users/meetings/org?min_start_time={}&max_start_time={}",
        START - 30 * DAY + 60_000,
        START + 30 * DAY
    );
    out.insert("conversations", convs);
    out.insert("messages", messages);
    out.insert("contacts", contacts);
    out.insert("accounts", accounts);
    out.insert("users", data(s.get("/users/list").await));
    out.insert("teams", data(s.get("/teams/org").await));
    out.insert(
        "playbooks",
        s.get("/playbooks/list")
            .await
            .body
            .as_array()
            .unwrap()
            .clone(),
    );
    out.insert("meetings", data(s.get(&window).await));
    out.insert(
        "contact_attributes",
        s.get("/contacts/attributes").await.body["data"]["properties"]
            .as_array()
            .unwrap()
            .clone(),
    );
    out
}

#[tokio::test]
async fn unfit_counts_equal_what_a_full_read_cannot_fit() {
    let s = Sbx::start(cfg(true, 400)).await;
    let counts = s.counts().await;
    let read = full_read(&s).await;
    let unfit = counts["unfit"].as_object().expect("counts has `unfit`");
    assert_eq!(unfit.len(), 9, "{unfit:?}");
    for (stream, records) in &read {
        let n = records.len();
        let bad = records.iter().filter(|r| !fits(stream, r)).count();
        assert_eq!(unfit[*stream], bad, "{stream}: counts vs served");
        // max(1, n/200 rounded) per stream that has records
        assert_eq!(
            bad,
            ((n + 100) / 200).max(1),
            "{stream}: {bad} unfit of {n}"
        );
    }
    // the contract's sizes: 400 conversations, 5 messages each
    assert_eq!(unfit["conversations"], 2);
    assert_eq!(unfit["messages"], 10);
    // the other counts keep their meaning: every record served, unfit ones included
    assert_eq!(counts["conversations"], read["conversations"].len());
    assert_eq!(counts["messages"], read["messages"].len());
    assert_eq!(counts["contacts_in_conversations"], read["contacts"].len());
    assert_eq!(counts["accounts"], read["accounts"].len());
    assert_eq!(counts["users"], read["users"].len());
    // an unfit conversation still names its id, contact and updatedAt
    for c in read["conversations"]
        .iter()
        .filter(|c| !fits("conversations", c))
    {
        assert!(c["id"].is_i64() || int_of(&c["id"]).is_some(), "{c}");
        assert!(int_of(&c["contactId"]).is_some() && int_of(&c["updatedAt"]).is_some());
    }
}

/// What a fitting messy record changed against the faithful one.
#[derive(Debug, Default)]
struct Kinds {
    digits: usize,
    nulls: usize,
    extra: usize,
    left_out: usize,
}

impl Kinds {
    fn total(&self) -> usize {
        self.digits + self.nulls + self.extra + self.left_out
    }
}

/// Compare a faithful record with its messy rendering: only digit strings for the same
/// integer, nulls, `_sbx_trace` and left-out fields may differ.
fn compare(f: &Value, m: &Value, path: &str, kinds: &mut Kinds) -> Result<(), String> {
    match (f, m) {
        (Value::Object(fo), Value::Object(mo)) => {
            for (k, fv) in fo {
                match mo.get(k) {
                    None => kinds.left_out += 1,
                    Some(mv) => compare(fv, mv, &format!("{path}/{k}"), kinds)?,
                }
            }
            for k in mo.keys().filter(|k| !fo.contains_key(*k)) {
                if k != "_sbx_trace" {
                    return Err(format!("{path}: unexpected field {k}"));
                }
                kinds.extra += 1;
            }
            Ok(())
        }
        (a, b) if a == b => Ok(()),
        (Value::Number(n), Value::String(s))
            if n.as_u64().map(|x| x.to_string()) == Some(s.clone()) =>
        {
            kinds.digits += 1;
            Ok(())
        }
        (_, Value::Null) => {
            kinds.nulls += 1;
            Ok(())
        }
        (a, b) => Err(format!("{path}: {a} became {b}")),
    }
}

#[tokio::test]
async fn fitting_variations_keep_keys_and_meaning_in_about_one_record_in_ten() {
    let (faithful, messy) = tokio::join!(Sbx::start(cfg(false, 200)), Sbx::start(cfg(true, 200)));
    let (f, m) = tokio::join!(full_read(&faithful), full_read(&messy));
    let mut all = Kinds::default();
    for (stream, records) in &f {
        let served = &m[stream];
        assert_eq!(records.len(), served.len(), "{stream}");
        let key = match *stream {
            "accounts" => "accountId",
            "meetings" => "slug",
            "contact_attributes" => "name",
            _ => "id",
        };
        let mut varied = 0;
        let mut fit = 0;
        for (fr, mr) in records.iter().zip(served) {
            if !fits(stream, mr) {
                continue;
            }
            fit += 1;
            assert!(
                mr.get(key).is_some_and(|k| !k.is_null()),
                "{stream}: key {key} nulled or left out: {mr}"
            );
            let mut kinds = Kinds::default();
            compare(fr, mr, stream, &mut kinds).unwrap_or_else(|e| panic!("{e}\n{fr}\n{mr}"));
            if kinds.total() > 0 {
                varied += 1;
            }
            all.digits += kinds.digits;
            all.nulls += kinds.nulls;
            all.extra += kinds.extra;
            all.left_out += kinds.left_out;
        }
        if ["conversations", "messages", "contacts"].contains(stream) {
            let share = varied as f64 / fit as f64;
            assert!(
                (0.04..=0.2).contains(&share),
                "{stream}: {varied} of {fit} fitting records vary"
            );
        }
    }
    assert!(
        all.digits > 0 && all.nulls > 0 && all.extra > 0 && all.left_out > 0,
        "{all:?}"
    );
    // the messy sandbox sends digit strings where the faithful one sends integers
    let text = serde_json::to_string(&m["messages"]).unwrap();
    assert!(text.contains("\"_sbx_trace\":{\"shard\":"));
    assert!(m["conversations"].iter().any(|c| c["updatedAt"]
        .as_str()
        .is_some_and(|s| s.parse::<i64>().is_ok())));
    assert!(m["messages"].iter().any(|c| c["author"]["id"]
        .as_str()
        .is_some_and(|s| s.parse::<i64>().is_ok())));
}

#[tokio::test]
async fn messy_renders_are_the_same_on_every_request_and_for_the_same_seed() {
    let s = Sbx::start(cfg(true, 120)).await;
    let first = full_read(&s).await;
    assert_eq!(full_read(&s).await, first);
    let conv = first["conversations"][0]["id"].clone();
    let one = s.get(&format!("/conversations/{conv}")).await;
    assert_eq!(
        s.get(&format!("/conversations/{conv}")).await.body,
        one.body
    );
    let other = Sbx::start(cfg(true, 120)).await;
    assert_eq!(full_read(&other).await, first, "same seed, same rendering");
    // a record's rendering does not depend on the others: a mutation leaves the untouched
    // records' renderings as they were
    let r = s
        .admin_post("mutate", json!({"new_conversations": 3}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let after = full_read(&s).await;
    assert_eq!(after["users"], first["users"]);
    assert_eq!(after["accounts"], first["accounts"]);
    for m in &first["messages"] {
        assert!(after["messages"].contains(m), "{m} rendered differently");
    }
    assert_eq!(s.counts().await["unfit"], other.counts().await["unfit"]);
}

#[tokio::test]
async fn writes_stay_faithful_under_messy() {
    let s = Sbx::start(cfg(true, 40)).await;
    for i in 0..30 {
        let r = s
            .post(
                "/contacts",
                json!({"attributes": {"email": format!("w{i}@example.com")}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body["data"]["id"].is_i64() && r.body["data"]["createdAt"].is_i64());
        assert!(r.body["data"].get("_sbx_trace").is_none());
    }
    let r = s
        .post(
            "/accounts/create",
            json!({"ownerId": 2411807, "domain": "w.example.com"}),
        )
        .await;
    assert!(r.body["data"]["updateDateTime"].is_i64(), "{}", r.text);
}

#[tokio::test]
async fn the_default_sandbox_serves_every_record_as_drift_documents_it() {
    let s = Sbx::start(cfg(false, 200)).await;
    let counts = s.counts().await;
    assert!(counts.get("unfit").is_none(), "{counts}");
    let read = full_read(&s).await;
    for (stream, records) in &read {
        assert!(!records.is_empty(), "{stream}");
        for r in records {
            assert!(fits(stream, r), "{stream}: {r}");
        }
        let text = serde_json::to_string(records).unwrap();
        assert!(
            !text.contains("_sbx_trace") && !text.contains("$oid"),
            "{stream}"
        );
    }
    for c in &read["conversations"] {
        assert!(c["id"].is_i64() && c["contactId"].is_i64() && c["updatedAt"].is_i64());
        assert!(c.get("inboxId").is_none_or(Value::is_i64), "{c}");
    }
    for m in &read["messages"] {
        assert!(m["id"].is_i64() && m["createdAt"].is_i64() && m["author"]["id"].is_i64());
    }
    for a in &read["accounts"] {
        assert!(a["ownerId"].is_i64() && a["updateDateTime"].is_i64(), "{a}");
    }
}
