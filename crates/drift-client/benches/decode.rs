//! Decode throughput of Drift pages into drift-client models (records per second).
//!
//! Run with `cargo bench -p drift-client --bench decode`. Pages mimic
//! `GET /conversations/list` (100 rows, current generation) and
//! `GET /conversations/{id}/messages` (50 messages with HTML bodies, buttons and context),
//! with one unknown field per record so the flattened `extra` map is exercised.
//!
//! Each page is decoded three ways: plain serde into the models (the floor), the client's
//! own decode path (`fuzzing::decode_envelope`: envelope, per-record fallback, next page),
//! and the client's path on a page where one record does not fit (`"id": "abc"`), which
//! takes the per-record path for the whole page.

use std::hint::black_box;
use std::time::{Duration, Instant};

use drift_client::fuzzing::{decode_envelope, Envelope};
use drift_client::models::{Conversation, Message};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct ConversationsPage {
    data: Vec<Conversation>,
    #[allow(dead_code)]
    links: Value,
}

#[derive(Deserialize)]
struct MessagesPage {
    data: MessagesData,
    #[allow(dead_code)]
    pagination: Value,
}

#[derive(Deserialize)]
struct MessagesData {
    messages: Vec<Message>,
}

fn conversations_page(rows: i64) -> Vec<u8> {
    serde_json::to_vec(&conversations(rows)).unwrap_or_default()
}

fn conversations(rows: i64) -> Value {
    let data: Vec<Value> = (0..rows)
        .map(|i| {
            json!({"status": "open", "contactId": 15900000000i64 + i, "createdAt": 1702010333012i64 + i,
                "id": 3790100000i64 + i, "inboxId": 74120, "updatedAt": 1702010399110i64 + i,
                "someNewField": "x"})
        })
        .collect();
    json!({"data": data, "links": {
        "self": "https://driftapi.com/conversations/list?page_token=a",
        "next": "https://driftapi.com/conversations/list?page_token=b"}})
}

fn messages_page(rows: i64) -> Vec<u8> {
    serde_json::to_vec(&messages(rows)).unwrap_or_default()
}

fn messages(rows: i64) -> Value {
    let messages: Vec<Value> = (0..rows)
        .map(|i| {
            json!({"id": 12400811850i64 + i, "orgId": 104455, "conversationId": 3790012245i64,
                "body": "<p>Hello! Anything I can help with? Here is our price sheet — 价格 👋</p>",
                "author": {"type": "user", "id": 2411803, "bot": i % 2 == 0}, "type": "chat",
                "createdAt": 1700127699120i64 + i,
                "buttons": [{"label": "Starter", "value": "Starter", "type": "reply"}],
                "context": {"ip": "203.0.113.24", "userAgent": "Mozilla/5.0 ExampleBrowser/1.0"},
                "attributes": {"developer_app_id": "app-0000demo"}, "someNewField": 1})
        })
        .collect();
    json!({"data": {"messages": messages},
        "pagination": {"more": true, "next": "12400811902"}})
}

/// The client's decode path; counts records that fit and those that do not.
fn client_path(envelope: Envelope, body: &[u8]) -> usize {
    decode_envelope(envelope, body)
        .map(|d| d.records + d.unfit.len())
        .unwrap_or(0)
}

/// Decodes `body` repeatedly for about `budget` and returns records per second.
fn measure(name: &str, body: &[u8], per_page: usize, decode: impl Fn(&[u8]) -> usize) {
    let budget = Duration::from_secs(2);
    // Warm-up.
    for _ in 0..10 {
        black_box(decode(body));
    }
    let started = Instant::now();
    let mut records = 0usize;
    let mut pages = 0usize;
    while started.elapsed() < budget {
        let n = decode(black_box(body));
        assert_eq!(n, per_page, "{name}: decoded a wrong number of records");
        records += n;
        pages += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name}: {:.0} records/s ({pages} pages of {per_page}, {:.1} MB/s)",
        records as f64 / secs,
        (pages * body.len()) as f64 / secs / 1e6
    );
}

fn main() {
    let conversations = conversations_page(100);
    measure("conversations page (100 rows)", &conversations, 100, |b| {
        serde_json::from_slice::<ConversationsPage>(b)
            .map(|p| p.data.len())
            .unwrap_or(0)
    });
    measure(
        "conversations page (100 rows), client path",
        &conversations,
        100,
        |b| client_path(Envelope::ConversationsList, b),
    );
    let mut one_unfit = self::conversations(100);
    one_unfit["data"][50]["id"] = json!("abc");
    let one_unfit = serde_json::to_vec(&one_unfit).unwrap_or_default();
    measure(
        "conversations page (100 rows, 1 unfit), client path",
        &one_unfit,
        100,
        |b| client_path(Envelope::ConversationsList, b),
    );
    let messages = messages_page(50);
    measure("messages page (50 messages)", &messages, 50, |b| {
        serde_json::from_slice::<MessagesPage>(b)
            .map(|p| p.data.messages.len())
            .unwrap_or(0)
    });
    measure(
        "messages page (50 messages), client path",
        &messages,
        50,
        |b| client_path(Envelope::Messages, b),
    );
    let mut one_unfit = self::messages(50);
    one_unfit["data"]["messages"][25]["id"] = json!("abc");
    let one_unfit = serde_json::to_vec(&one_unfit).unwrap_or_default();
    measure(
        "messages page (50 messages, 1 unfit), client path",
        &one_unfit,
        50,
        |b| client_path(Envelope::Messages, b),
    );
}
