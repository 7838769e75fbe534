//! Contacts: get, find, attributes, create / update / delete, timeline (REFERENCE §7.1).

use crate::common::Sbx;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A contact id that a conversation refers to.
async fn some_contact(s: &Sbx) -> Value {
    let conv = &s.all_conversations("limit=1").await[0];
    let id = conv["contactId"].as_i64().unwrap();
    let r = s.get(&format!("/contacts/{id}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["data"].clone()
}

#[tokio::test]
async fn get_by_id_and_404() {
    let s = Sbx::default().await;
    let c = some_contact(&s).await;
    assert!(c["id"].is_i64() && c["createdAt"].is_i64());
    assert!(c["attributes"]["email"].is_string());
    let v = &c["attributes"]["_END_USER_VERSION"];
    assert_eq!(v, &c["attributes"]["_end_user_version"]);
    let r = s.get("/contacts/42").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_type(), "not_found");
}

#[tokio::test]
async fn seeded_contacts_share_emails_and_find_by_email_returns_all() {
    let s = Sbx::default().await;
    // walk the contacts referenced by conversations, find an email used twice
    let mut by_email: HashMap<String, Vec<i64>> = HashMap::new();
    for conv in s.all_conversations("limit=100").await {
        let r = s.get(&format!("/contacts/{}", conv["contactId"])).await;
        let c = &r.body["data"];
        by_email
            .entry(c["attributes"]["email"].as_str().unwrap().to_string())
            .or_default()
            .push(c["id"].as_i64().unwrap());
    }
    let mut found_shared = false;
    for (email, _) in by_email {
        let r = s
            .get(&format!("/contacts?email={}", urlencode(&email)))
            .await;
        let list = r.body["data"].as_array().expect("always an array");
        assert!(list
            .iter()
            .all(|c| c["attributes"]["email"] == email.as_str()));
        found_shared |= list.len() > 1;
    }
    assert!(found_shared, "some contacts share an email");
    let r = s.get("/contacts?email=nobody%40example.com").await;
    assert_eq!(r.body["data"], json!([]));
}

fn urlencode(s: &str) -> String {
    s.replace('@', "%40").replace('+', "%2B")
}

#[tokio::test]
async fn find_by_external_id_and_bad_queries() {
    let s = Sbx::default().await;
    let created = s
        .post(
            "/contacts",
            json!({"attributes": {"email": "x1@example.com", "externalId": "ext-1"}}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    s.post(
        "/contacts",
        json!({"attributes": {"email": "x2@example.com", "externalId": "ext-2"}}),
    )
    .await;
    let r = s.get("/contacts?idType=external&id=ext-1&id=ext-2").await;
    let emails: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["attributes"]["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["x1@example.com", "x2@example.com"]);
    assert_eq!(s.get("/contacts").await.status, 400, "no list-all");
    assert_eq!(s.get("/contacts?idType=drift&id=1").await.status, 400);
    assert_eq!(s.get("/contacts?idType=external").await.status, 400);
}

#[tokio::test]
async fn attributes_list_properties() {
    let s = Sbx::default().await;
    let r = s.get("/contacts/attributes").await;
    let props = r.body["data"]["properties"].as_array().unwrap();
    assert!(props
        .iter()
        .any(|p| p["name"] == "plan_tier" && p["type"] == "STRING"));
    assert!(props.iter().all(|p| p["displayName"].is_string()));
}

#[tokio::test]
async fn create_duplicate_email_is_409_unless_external_id() {
    let s = Sbx::default().await;
    let body = json!({"attributes": {"email": "dup@example.com", "name": "Dup 一"}});
    let first = s.post("/contacts", body.clone()).await;
    assert_eq!(first.status, 200);
    let a = &first.body["data"]["attributes"];
    assert_eq!(
        a["externalId"],
        Value::Null,
        "Drift never invents an externalId"
    );
    assert_eq!(a["_END_USER_VERSION"], 1);
    let again = s.post("/contacts", body).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.error_type(), "conflict");
    let with_ext = s
        .post(
            "/contacts",
            json!({"attributes": {"email": "dup@example.com", "externalId": "e-9"}}),
        )
        .await;
    assert_eq!(with_ext.status, 200);
    assert_eq!(with_ext.body["data"]["attributes"]["external_id"], "e-9");
    let same_ext = s
        .post(
            "/contacts",
            json!({"attributes": {"email": "other@example.com", "externalId": "e-9"}}),
        )
        .await;
    assert_eq!(same_ext.status, 409);
    let no_email = s
        .post("/contacts", json!({"attributes": {"name": "x"}}))
        .await;
    assert_eq!(no_email.status, 400);
    assert_eq!(no_email.body["error"]["param"], "attributes.email");
    let r = s.get("/contacts?email=dup%40example.com").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn patch_merges_attributes_and_bumps_versions_delete_removes() {
    let s = Sbx::default().await;
    let c = s
        .post(
            "/contacts",
            json!({"attributes": {"email": "p@example.com", "phone": "555"}}),
        )
        .await
        .body["data"]
        .clone();
    let id = c["id"].as_i64().unwrap();
    let r = s
        .patch(
            &format!("/contacts/{id}"),
            json!({"attributes": {"plan_tier": "gold", "phone": null}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let a = &r.body["data"]["attributes"];
    assert_eq!(a["plan_tier"], "gold");
    assert_eq!(a["phone"], Value::Null);
    assert_eq!(a["email"], "p@example.com");
    assert_eq!(a["_END_USER_VERSION"], 2);
    assert_eq!(
        s.patch("/contacts/1", json!({"attributes": {}}))
            .await
            .status,
        404
    );
    assert_eq!(
        s.patch(&format!("/contacts/{id}"), json!({"name": "x"}))
            .await
            .status,
        400
    );
    let d = s.delete(&format!("/contacts/{id}")).await;
    assert_eq!(d.body, json!({"result": "OK", "ok": true}));
    assert_eq!(s.get(&format!("/contacts/{id}")).await.status, 404);
    assert_eq!(s.delete(&format!("/contacts/{id}")).await.status, 404);
}

#[tokio::test]
async fn timeline_event_by_contact_or_external_id() {
    let s = Sbx::default().await;
    let c = s
        .post(
            "/contacts",
            json!({"attributes": {"email": "t@example.com", "externalId": "t-1"}}),
        )
        .await
        .body["data"]
        .clone();
    let r = s.post("/contacts/timeline", json!({"contactId": c["id"], "event": "Invoice paid", "createdAt": 1_700_000_000_000_i64, "attributes": {"amount": 12}})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["event"], "Invoice paid");
    assert_eq!(r.body["data"]["createdAt"], 1_700_000_000_000_i64);
    assert_eq!(
        r.body["data"]["attributes"]["amount"], "12",
        "values are stringified"
    );
    let r = s
        .post(
            "/contacts/timeline",
            json!({"externalId": "t-1", "event": "x"}),
        )
        .await;
    assert_eq!(r.body["data"]["contactId"], c["id"]);
    assert_eq!(
        s.post("/contacts/timeline", json!({"contactId": 1, "event": "x"}))
            .await
            .status,
        404
    );
    assert_eq!(
        s.post("/contacts/timeline", json!({"contactId": c["id"]}))
            .await
            .status,
        400
    );
}
