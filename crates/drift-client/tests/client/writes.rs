//! Write endpoints: request shapes, and which failures are retried.

use drift_client::models::{Account, TimelineEvent};
use drift_client::Error;
use serde_json::{json, Map, Value};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{client, json};

fn attrs(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn create_contact_posts_attributes_and_is_not_retried_on_5xx() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts"))
        .and(body_json(
            json!({"attributes": {"email": "jordan@example.com"}}),
        ))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c
        .create_contact(&attrs(json!({"email": "jordan@example.com"})))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Server { status: 503, .. }), "{e}");
    assert_eq!(c.metrics().retries, 0);
    server.verify().await;
}

#[tokio::test]
async fn creates_are_retried_after_429_because_drift_did_not_act() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts"))
        .respond_with(json(json!({"data": {"id": 15901450027i64, "createdAt": 1,
            "attributes": {"email": "j@example.com", "externalId": "c1", "external_id": "c1"}}})))
        .with_priority(2)
        .mount(&server)
        .await;
    let c = client(&server);
    let contact = c
        .create_contact(&attrs(
            json!({"email": "j@example.com", "externalId": "c1"}),
        ))
        .await
        .unwrap();
    assert_eq!(contact.id, 15901450027);
    assert_eq!(contact.external_id(), Some("c1"));
    assert_eq!(c.metrics().retries, 1);
}

#[tokio::test]
async fn idempotent_writes_are_retried() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(path("/contacts/7"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/contacts/7"))
        .and(body_json(json!({"attributes": {"plan_tier": "gold"}})))
        .respond_with(json(
            json!({"data": {"id": 7, "attributes": {"plan_tier": "gold"}}}),
        ))
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/contacts/7"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let c = client(&server);
    let updated = c
        .update_contact(7, &attrs(json!({"plan_tier": "gold"})))
        .await
        .unwrap();
    assert_eq!(updated.attributes.unwrap()["plan_tier"], json!("gold"));
    assert_eq!(c.metrics().retries, 1);
    // 202 with an empty body is a success.
    let ok = c.delete_contact(7).await.unwrap();
    assert_eq!(ok.ok, None);
}

#[tokio::test]
async fn timeline_event_and_conversation_writes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts/timeline"))
        .and(body_json(json!({"contactId": 15900231774i64, "event": "Invoice paid", "createdAt": 1702003600000i64})))
        .respond_with(json(json!({"data": {"contactId": 15900231774i64, "event": "Invoice paid",
            "createdAt": 1702003600000i64, "attributes": {}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/conversations/new"))
        .and(body_json(json!({"email": "m@example.com", "message": {"body": "hi", "attributes": {"integrationSource": "x"}}})))
        .respond_with(json(json!({"status": "open", "participants": [2411803], "contactId": 15902000411i64,
            "createdAt": 1702010000456i64, "id": 3790100833i64, "inboxId": 74120})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/conversations/3790012245/messages"))
        .and(body_json(json!({"type": "chat", "body": "Book a demo?"})))
        .respond_with(json(
            json!({"data": {"messages": [{"id": 12400813555i64, "type": "chat",
            "body": "<p>Book a demo?</p>", "attributes": {"developer_app_id": "app"}}]}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let event = TimelineEvent {
        contact_id: Some(15900231774),
        external_id: None,
        event: Some("Invoice paid".into()),
        created_at: Some(1702003600000),
        attributes: None,
        extra: Map::new(),
    };
    assert_eq!(
        c.post_timeline_event(&event)
            .await
            .unwrap()
            .event
            .as_deref(),
        Some("Invoice paid")
    );
    let conv = c
        .create_conversation(
            "m@example.com",
            "hi",
            attrs(json!({"integrationSource": "x"})),
        )
        .await
        .unwrap();
    assert_eq!(conv.id, 3790100833);
    let posted = c
        .post_message(3790012245, &json!({"type": "chat", "body": "Book a demo?"}))
        .await
        .unwrap();
    assert_eq!(posted[0].id, 12400813555);
    server.verify().await;
}

#[tokio::test]
async fn account_writes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/accounts/create"))
        .and(body_json(
            json!({"ownerId": 2411803, "name": "Gadgets", "domain": "www.example.org"}),
        ))
        .respond_with(json(
            json!({"data": {"accountId": "5120045_example.org", "ownerId": 2411803}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/accounts/update"))
        .and(body_json(
            json!({"accountId": "5120045_example.org", "ownerId": 2411803, "name": "G2"}),
        ))
        .respond_with(json(
            json!({"data": {"accountId": "5120045_example.org", "name": "G2"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/accounts/5120045_example.org"))
        .respond_with(json(json!({"result": "OK", "ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let new: Account = serde_json::from_value(
        json!({"ownerId": 2411803, "name": "Gadgets", "domain": "www.example.org"}),
    )
    .unwrap();
    let created = c.create_account(&new).await.unwrap();
    assert_eq!(created.account_id.as_deref(), Some("5120045_example.org"));
    let update: Account = serde_json::from_value(
        json!({"accountId": "5120045_example.org", "ownerId": 2411803, "name": "G2"}),
    )
    .unwrap();
    assert_eq!(
        c.update_account(&update).await.unwrap().name.as_deref(),
        Some("G2")
    );
    let no_id: Account = serde_json::from_value(json!({"ownerId": 1})).unwrap();
    assert!(
        matches!(c.update_account(&no_id).await, Err(Error::Invalid { field: Some(f), .. }) if f == "accountId")
    );
    assert_eq!(
        c.delete_account("5120045_example.org").await.unwrap().ok,
        Some(true)
    );
    server.verify().await;
}

#[tokio::test]
async fn duplicate_create_is_a_conflict() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/accounts/create"))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(json!({"error": {"type": "conflict", "message": "domain exists"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let acct: Account = serde_json::from_value(json!({"ownerId": 1, "domain": "a.com"})).unwrap();
    let e = client(&server).create_account(&acct).await.unwrap_err();
    assert!(
        matches!(&e, Error::Conflict { message, .. } if message.contains("domain exists")),
        "{e}"
    );
    server.verify().await;
}
