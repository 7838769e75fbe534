//! A lookup that finds a record Drift sent in a shape the client cannot read (an unfit
//! record): that row is rejected with the reason and nothing is sent for it; the other rows
//! go on (a scripted Drift, since the sandbox only sends well-formed records).

use drift_client::{Client, SecretString};
use drift_writer::{push, InputSpec, Key, Object, Outcome, OutcomeKind, PushOptions};
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn run(drift: &MockServer, opts: PushOptions, csv: &str) -> Vec<Outcome> {
    let client = Client::builder(&drift.uri(), SecretString::from("tok"))
        .rate_limit_per_min(60_000)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.csv");
    std::fs::write(&file, csv).unwrap();
    let input = InputSpec::Csv(file).open().unwrap();
    let mut out = Vec::new();
    push(&client, opts, input, None, |o| {
        out.push(o.clone());
        Ok(())
    })
    .await
    .unwrap();
    out.sort_by_key(|o| o.row);
    out
}

fn ok(body: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(body)
}

async fn writes(drift: &MockServer) -> Vec<String> {
    let all = drift.received_requests().await.unwrap();
    all.iter()
        .filter(|r| r.method.as_str() != "GET")
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

#[tokio::test]
async fn a_contact_lookup_that_finds_an_unfit_contact_rejects_the_row_and_sends_nothing() {
    let drift = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contacts/attributes"))
        .respond_with(ok(json!({"data": {"properties": []}})))
        .mount(&drift)
        .await;
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .and(query_param("email", "odd@example.com"))
        .respond_with(ok(
            json!({"data": [{"id": 5, "createdAt": {"at": 1}, "attributes": {"email": "odd@example.com"}}]}),
        ))
        .mount(&drift)
        .await;
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .and(query_param("email", "fine@example.com"))
        .respond_with(ok(
            json!({"data": [{"id": "6", "attributes": {"email": "fine@example.com"}}]}),
        ))
        .mount(&drift)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/contacts/6"))
        .respond_with(ok(json!({"data": {"id": 6}})))
        .expect(1)
        .mount(&drift)
        .await;
    let out = run(
        &drift,
        PushOptions::new(Object::Contacts),
        "email,name\nodd@example.com,A\nfine@example.com,B\n",
    )
    .await;
    assert_eq!(out[0].kind, OutcomeKind::Rejected, "{:?}", out[0]);
    let reason = out[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("record 5 does not fit")
            && reason.contains("field `createdAt`: invalid type: map, expected i64"),
        "{reason}"
    );
    assert_eq!(out[1].kind, OutcomeKind::Updated, "{:?}", out[1]);
    assert_eq!(
        writes(&drift).await,
        ["PATCH /contacts/6"],
        "nothing sent for row 1"
    );
    drift.verify().await;
}

#[tokio::test]
async fn an_account_that_does_not_fit_rejects_its_row_by_domain_and_by_id() {
    let drift = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/accounts"))
        .respond_with(ok(json!({"data": {"accounts": [
            {"accountId": "1_odd.example", "domain": "odd.example", "ownerId": {"id": 1}},
            {"accountId": "2_fine.example", "domain": "fine.example", "ownerId": 1, "name": "Old"}
        ], "total": 2}})))
        .mount(&drift)
        .await;
    Mock::given(method("GET"))
        .and(path("/accounts/1_odd.example"))
        .respond_with(ok(
            json!({"data": {"accountId": "1_odd.example", "deleted": "maybe"}}),
        ))
        .mount(&drift)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/accounts/update"))
        .respond_with(ok(json!({"data": {"accountId": "2_fine.example"}})))
        .expect(1)
        .mount(&drift)
        .await;
    let out = run(
        &drift,
        PushOptions::new(Object::Accounts),
        "domain,name\nodd.example,A\nfine.example,B\n",
    )
    .await;
    assert_eq!(out[0].kind, OutcomeKind::Rejected, "{:?}", out[0]);
    let reason = out[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("record 1_odd.example does not fit") && reason.contains("`ownerId`"),
        "{reason}"
    );
    assert_eq!(out[1].kind, OutcomeKind::Updated, "{:?}", out[1]);

    let mut by_id = PushOptions::new(Object::Accounts);
    by_id.key = Key::AccountId;
    let out = run(&drift, by_id, "accountId,name\n1_odd.example,A\n").await;
    assert_eq!(out[0].kind, OutcomeKind::Rejected, "{:?}", out[0]);
    let reason = out[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("field `deleted`"), "{reason}");
    assert_eq!(writes(&drift).await, ["PATCH /accounts/update"]);
    drift.verify().await;
}
