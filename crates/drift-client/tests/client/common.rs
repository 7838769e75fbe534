//! Shared helpers: a wiremock server and a client on a manual clock.

use std::sync::Arc;

use drift_client::clock::ManualClock;
use drift_client::{Client, ClientBuilder, SecretString};
use serde_json::Value;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Token used by most tests; distinctive so leaks are easy to spot.
pub const TOKEN: &str = "tok_CANARY_5b0c1d2e3f";

pub fn builder(server: &MockServer) -> (ClientBuilder, Arc<ManualClock>) {
    let clock = ManualClock::new();
    let b = Client::builder(&server.uri(), SecretString::from(TOKEN)).clock(clock.clone());
    (b, clock)
}

pub fn client(server: &MockServer) -> Client {
    builder(server).0.build().unwrap()
}

pub fn json(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

/// Mounts `GET path` answering `body` once per matching `(key, value)` query parameter.
pub async fn get_with_query(server: &MockServer, p: &str, key: &str, value: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(p))
        .and(query_param(key, value))
        .respond_with(json(body))
        .mount(server)
        .await;
}

/// A list row of `GET /conversations/list`.
pub fn conv(id: i64) -> Value {
    serde_json::json!({"status": "open", "contactId": id * 10, "createdAt": 1_700_000_000_000i64,
        "id": id, "inboxId": 74120, "updatedAt": 1_700_000_000_000i64 + id})
}

/// A message object.
pub fn msg(id: i64, body: &str) -> Value {
    serde_json::json!({"id": id, "orgId": 1, "conversationId": 5, "body": body,
        "author": {"type": "contact", "id": 9, "bot": false}, "type": "chat",
        "createdAt": 1_700_000_000_000i64 + id, "attributes": {}})
}
