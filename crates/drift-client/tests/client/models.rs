//! Tolerant models: round trips, nulls, odd text, large bodies.

use drift_client::models::{Account, Contact, Conversation, Message, Playbook, TokenInfo};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::common::{client, json, msg};

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(v: Value) -> (T, Value) {
    let t: T = serde_json::from_value(v).unwrap();
    let back = serde_json::to_value(&t).unwrap();
    (t, back)
}

#[test]
fn records_round_trip_with_unknown_fields() {
    let conv = json!({"id": 3790012245i64, "status": "snoozed", "participants": [2411803],
        "contactId": 15900231774i64, "inboxId": 74120, "createdAt": 1700127699012i64,
        "updatedAt": 1700131220877i64, "relatedPlaybookId": 1188204,
        "conversationTags": [{"color": "0960C5", "name": "pricing", "newTagField": 1}],
        "brandNewField": {"nested": [1, 2]}});
    let (c, back) = round_trip::<Conversation>(conv.clone());
    assert_eq!(back, conv);
    assert_eq!(
        c.status.as_deref(),
        Some("snoozed"),
        "unknown enum values are kept"
    );
    assert_eq!(c.extra["brandNewField"], json!({"nested": [1, 2]}));

    let message = json!({"id": 12400811902i64, "orgId": 104455, "conversationId": 3790012245i64,
        "body": "<p>Hi</p>", "author": {"type": "user", "id": 2411803, "bot": false},
        "type": "private_prompt", "createdAt": 1700127760034i64,
        "buttons": [{"label": "Starter", "value": "Starter", "type": "reply",
            "reaction": {"type": "replace", "message": "ok"}}],
        "context": {"ip": "203.0.113.24", "userAgent": "X"}, "attributes": {},
        "attachments": [{"id": 581990, "fileName": "a.pdf", "mimeType": "application/pdf", "url": "u"}]});
    let (m, back) = round_trip::<Message>(message.clone());
    assert_eq!(back, message);
    assert_eq!(m.message_type.as_deref(), Some("private_prompt"));

    let account = json!({"ownerId": 2411803, "name": "Example", "domain": "www.example.com",
        "accountId": "5120044_example.com", "customProperties": [{"label": "Employee Count",
        "name": "employee_count", "value": 250, "type": "NUMBER"}], "deleted": false,
        "createDateTime": 1695810000000i64, "updateDateTime": 1701000000000i64, "targeted": true});
    let (a, back) = round_trip::<Account>(account.clone());
    assert_eq!(back, account);
    assert_eq!(a.account_id.as_deref(), Some("5120044_example.com"));

    let playbook = json!([{"goals": [{"id": "3f2b", "message": "Thanks"}], "id": 1188204,
        "name": "Greeter", "orgId": 104455, "meta": {}, "reportType": "BOOK_MORE_MEETINGS"}]);
    let (_, back) = round_trip::<Vec<Playbook>>(playbook.clone());
    assert_eq!(back, playbook);
}

#[test]
fn nulls_where_objects_are_usual_are_accepted() {
    let conv: Conversation = serde_json::from_value(json!({"id": 1, "conversationTags": null,
        "participants": null, "status": null}))
    .unwrap();
    assert_eq!(conv.conversation_tags, None);
    assert_eq!(conv.participants, None);
    let contact: Contact = serde_json::from_value(json!({"id": 2, "attributes": {
        "socialProfiles": null, "tags": null, "externalId": null, "email": "a@example.com"}}))
    .unwrap();
    assert_eq!(contact.email(), Some("a@example.com"));
    assert_eq!(contact.external_id(), None);
    // Nulls inside the free attribute map are kept as sent.
    assert_eq!(
        serde_json::to_value(&contact).unwrap()["attributes"]["socialProfiles"],
        Value::Null
    );
    let message: Message = serde_json::from_value(json!({"id": 3, "author": null, "buttons": null,
        "context": null, "attributes": null, "body": null}))
    .unwrap();
    assert_eq!(message.body, None);
}

#[test]
fn a_missing_id_is_a_clear_error() {
    let err = serde_json::from_value::<Conversation>(json!({"status": "open"})).unwrap_err();
    assert!(err.to_string().contains("id"), "{err}");
}

#[test]
fn token_info_accepts_camel_case_and_string_numbers() {
    let info: TokenInfo = serde_json::from_value(json!({"accessToken": "secret-x", "orgId": "77",
        "expiresIn": 7200000, "createdAt": 1000, "scope": "a b"}))
    .unwrap();
    assert_eq!(info.org_id, Some(77));
    assert_eq!(info.expires_at(), Some(7201000));
    assert!(!serde_json::to_string(&info).unwrap().contains("secret-x"));
    let again: TokenInfo = serde_json::from_value(serde_json::to_value(&info).unwrap()).unwrap();
    assert_eq!(again, info);
}

async fn messages_with_body(raw_page: String) -> Vec<Message> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/conversations/5/messages"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_raw(raw_page, "application/json"),
        )
        .mount(&server)
        .await;
    let all = client(&server).conversation_messages(5).await.unwrap();
    assert!(all.unfit.is_empty(), "{:?}", all.unfit);
    all.items
}

#[tokio::test]
async fn emoji_cjk_rtl_and_a_lone_surrogate_survive() {
    let page = r#"{"data": {"messages": [
        {"id": 1, "body": "<p>👋🏽 family: 👨‍👩‍👧 \ud83d\ude00</p>"},
        {"id": 2, "body": "价格是多少？ 日本語のテキスト"},
        {"id": 3, "body": "مرحبا بالعالم שלום"},
        {"id": 4, "body": "broken emoji \ud83d here", "attributes": {"k": "\udc00"}}
    ]}, "pagination": {"more": false}}"#;
    let msgs = messages_with_body(page.to_string()).await;
    assert_eq!(msgs.len(), 4);
    assert_eq!(msgs[0].body.as_deref(), Some("<p>👋🏽 family: 👨‍👩‍👧 😀</p>"));
    assert_eq!(
        msgs[1].body.as_deref(),
        Some("价格是多少？ 日本語のテキスト")
    );
    assert_eq!(msgs[2].body.as_deref(), Some("مرحبا بالعالم שלום"));
    assert_eq!(msgs[3].body.as_deref(), Some("broken emoji \u{fffd} here"));
    assert_eq!(msgs[3].attributes.as_ref().unwrap()["k"], json!("\u{fffd}"));
}

#[tokio::test]
async fn a_twenty_megabyte_message_body_is_read_whole() {
    let big = "x".repeat(20 * 1024 * 1024);
    let page = json!({"data": {"messages": [msg(1, &big), msg(2, "small")]}, "pagination": {"more": false}});
    let msgs = messages_with_body(page.to_string()).await;
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].body.as_ref().unwrap().len(), 20 * 1024 * 1024);
    assert_eq!(msgs[1].body.as_deref(), Some("small"));
}

#[tokio::test]
async fn wrong_shape_is_a_decode_error_naming_the_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(json(json!({"data": {"not": "a list"}})))
        .mount(&server)
        .await;
    let e = client(&server).users().await.unwrap_err();
    match e {
        drift_client::Error::Decode { endpoint, snippet } => {
            assert_eq!(endpoint, "users.list");
            assert!(snippet.contains("not"), "{snippet}");
        }
        other => panic!("expected Decode, got {other}"),
    }
}
