//! Conversation writes and reports (REFERENCE §7.2).

use crate::common::Sbx;
use serde_json::{json, Value};

#[tokio::test]
async fn new_conversation_is_bare_and_reuses_the_earliest_contact() {
    let s = Sbx::default().await;
    let c1 = s
        .post(
            "/contacts",
            json!({"attributes": {"email": "conv@example.com"}}),
        )
        .await
        .body["data"]
        .clone();
    s.post(
        "/contacts",
        json!({"attributes": {"email": "conv@example.com", "externalId": "later"}}),
    )
    .await;
    let r = s.post("/conversations/new", json!({"email": "conv@example.com", "message": {"body": "From a form", "attributes": {"integrationSource": "Forms"}}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("data").is_none(), "bare response");
    assert_eq!(r.body["status"], "open");
    assert_eq!(r.body["contactId"], c1["id"]);
    let id = r.body["id"].as_i64().unwrap();
    let rows = s.all_conversations("limit=1").await;
    assert_eq!(rows[0]["id"], id, "newest first");
    let m = s.get(&format!("/conversations/{id}/messages")).await;
    assert_eq!(m.body["data"]["messages"][0]["body"], "<p>From a form</p>");
    // a new email creates a contact
    let before = s.counts().await["contacts"].as_u64().unwrap();
    let r = s
        .post("/conversations/new", json!({"email": "fresh@example.com"}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(s.counts().await["contacts"].as_u64().unwrap(), before + 1);
    let r = s
        .post("/conversations/new", json!({"message": {"body": "x"}}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["param"], "email");
}

#[tokio::test]
async fn post_message_answers_data_messages_and_moves_updated_at() {
    let s = Sbx::default().await;
    let rows = s.all_conversations("limit=100").await;
    let oldest = rows.last().unwrap()["id"].as_i64().unwrap();
    let r = s.post(&format!("/conversations/{oldest}/messages"), json!({"type": "chat", "body": "Would you like a demo?", "buttons": [{"label": "Yes", "value": "yes", "type": "reply"}]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = &r.body["data"]["messages"][0];
    assert_eq!(m["conversationId"], oldest);
    assert_eq!(m["body"], "<p>Would you like a demo?</p>");
    assert_eq!(
        m["author"],
        json!({"type": "user", "id": 2400001, "bot": true}),
        "the bot authors without userId"
    );
    assert_eq!(m["buttons"][0]["value"], "yes");
    assert_eq!(s.all_conversations("limit=1").await[0]["id"], oldest);
    let r = s
        .post(
            &format!("/conversations/{oldest}/messages"),
            json!({"body": "no type"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["param"], "type");
    assert_eq!(
        s.post("/conversations/1/messages", json!({"type": "chat"}))
            .await
            .status,
        404
    );
    assert_eq!(
        s.post(
            &format!("/conversations/{oldest}/messages"),
            json!({"type": "chat", "userId": 1})
        )
        .await
        .status,
        400
    );
}

#[tokio::test]
async fn report_filters_and_metrics_with_nan() {
    let s = Sbx::default().await;
    let all = s.all_conversations("limit=100").await;
    let r = s.post("/reports/conversations", json!({"filters": [{"property": "status", "operation": "IN", "values": ["closed"]}], "metrics": ["createdAt", "timeToCloseMillis", "noSuchMetric"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let closed = all.iter().filter(|c| c["status"] == "closed").count();
    assert_eq!(r.body["count"], closed);
    let row = &r.body["data"][0];
    assert!(row["conversationId"].is_i64());
    assert!(row["metrics"][0].is_i64() && row["metrics"][1].is_i64());
    assert_eq!(row["metrics"][2], "NaN");
    let bad = s
        .post(
            "/reports/conversations",
            json!({"filters": [{"property": "status", "operation": "LIKE"}], "metrics": []}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        s.post("/reports/conversations", json!({})).await.status,
        400
    );
}

#[tokio::test]
async fn malformed_json_bodies_and_unknown_routes() {
    let s = Sbx::default().await;
    let r = s
        .http
        .post(s.url("/contacts"))
        .bearer_auth(s.handle.token())
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "validation_error");
    let r = s.get("/no/such/route").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_type(), "not_found");
    assert_eq!(s.admin_get("stats").await["by_route"]["unknown"], 1);
}
