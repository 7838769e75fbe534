//! A create that races another writer: the lookup finds nothing, the POST is answered with a
//! duplicate-email conflict, and the row becomes lookup + PATCH (a scripted Drift, since the
//! sandbox cannot stage the race).

use drift_client::{Client, SecretString};
use drift_writer::{push, InputSpec, Object, OutcomeKind, PushOptions};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn a_duplicate_conflict_on_create_becomes_lookup_and_patch() {
    let drift = MockServer::start().await;
    let contact = json!({"id": 77, "createdAt": 1, "attributes": {"email": "race@example.com", "name": "Old"}});
    Mock::given(method("GET"))
        .and(path("/contacts/attributes"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"properties": []}})))
        .mount(&drift)
        .await;
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .and(query_param("email", "race@example.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&drift)
        .await;
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .and(query_param("email", "race@example.com"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [contact]})))
        .with_priority(2)
        .expect(1)
        .mount(&drift)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts"))
        .respond_with(ResponseTemplate::new(409).set_body_json(
            json!({"error": {"type": "conflict", "message": "A contact with email race@example.com already exists"}}),
        ))
        .expect(1)
        .mount(&drift)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/contacts/77"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"id": 77, "attributes": {"email": "race@example.com", "name": "New"}}}),
        ))
        .expect(1)
        .mount(&drift)
        .await;

    let client = Client::builder(&drift.uri(), SecretString::from("tok"))
        .rate_limit_per_min(60_000)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("race.csv");
    std::fs::write(&file, "email,name\nrace@example.com,New\n").unwrap();
    let input = InputSpec::Csv(file).open().unwrap();
    let mut out = Vec::new();
    push(
        &client,
        PushOptions::new(Object::Contacts),
        input,
        None,
        |o| {
            out.push(o.clone());
            Ok(())
        },
    )
    .await
    .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].kind, OutcomeKind::Updated, "{:?}", out[0].reason);
    assert_eq!(out[0].drift_id.as_deref(), Some("77"));
    let patch = drift
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.method.as_str() == "PATCH")
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&patch.body).unwrap();
    assert_eq!(
        body,
        json!({"attributes": {"name": "New"}}),
        "only the changed attribute"
    );
}
