//! `--fixtures DIR`: a recorded org served exactly as loaded.

use crate::common::{config, Sbx};
use drift_sandbox::{SandboxConfig, SandboxError};
use serde_json::{json, Value};
use std::path::Path;

fn write(dir: &Path, name: &str, v: Value) {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn recorded_org(dir: &Path) {
    write(
        dir,
        "conversations.json",
        json!([
            {"id": 3790000001_i64, "status": "closed", "participants": [2411803], "contactId": 15900000001_i64, "inboxId": 74120, "createdAt": 1700000000000_i64, "updatedAt": 1700000500000_i64},
            {"id": 3790000002_i64, "status": "open", "contactId": 15900000002_i64, "createdAt": 1700000100000_i64, "updatedAt": 1700000900000_i64, "orgId": null, "customThing": {"x": [1, 2]}},
            {"id": 3790000003_i64, "status": "pending", "contactId": 15900000001_i64, "createdAt": 1700000200000_i64, "updatedAt": 1700000500000_i64}
        ]),
    );
    // a recorded response envelope is accepted as it is
    write(
        dir,
        "messages.json",
        json!({"data": {"messages": [
            {"id": 12400000002_i64, "conversationId": 3790000001_i64, "createdAt": 1700000400000_i64, "body": null, "author": {"type": "contact", "id": 15900000001_i64, "bot": false}, "type": "chat"},
            {"id": 12400000001_i64, "orgId": 104455, "conversationId": 3790000001_i64, "createdAt": 1700000300000_i64, "body": "<p>Hi 👋</p>", "author": {"type": "user", "id": 2400001, "bot": true}, "type": "chat", "attributes": {}, "buttons": [{"label": "A", "value": "a", "type": "reply"}]}
        ]}}),
    );
    write(
        dir,
        "contacts.json",
        json!({"data": [
            {"id": 15900000001_i64, "createdAt": 1690000000000_i64, "attributes": {"email": "same@example.com", "externalId": null}},
            {"id": 15900000002_i64, "createdAt": 1690000000001_i64, "attributes": {"email": "same@example.com", "externalId": "x-2"}}
        ]}),
    );
    write(
        dir,
        "accounts.json",
        json!([{"ownerId": 2411803, "name": "Example Widgets Inc", "domain": "www.example.com", "accountId": "5120044_example.com", "customProperties": [], "deleted": false, "createDateTime": 1695810000000_i64, "updateDateTime": 1701000000000_i64, "targeted": true}]),
    );
    write(
        dir,
        "users.json",
        json!([{"id": 2411803, "orgId": 104455, "name": "Avery Stone", "bot": false}]),
    );
    write(
        dir,
        "playbooks.json",
        json!([{"id": 1188204, "name": "Pricing page greeter"}]),
    );
}

#[tokio::test]
async fn fixtures_are_served_exactly_with_nulls_and_unknown_fields() {
    let dir = tempfile::tempdir().unwrap();
    recorded_org(dir.path());
    let s = Sbx::start(SandboxConfig {
        fixtures: Some(dir.path().to_path_buf()),
        ..config()
    })
    .await;
    let c = s.counts().await;
    assert_eq!(
        c,
        json!({"conversations": 3, "messages": 2, "contacts": 2, "contacts_in_conversations": 2,
        "accounts": 1, "users": 1, "teams": 0, "playbooks": 1, "meetings": 0,
        "deleted_contacts": 0, "deleted_accounts": 0, "deleted_users": 0})
    );
    let rows = s.all_conversations("limit=100").await;
    let ids: Vec<i64> = rows.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        [3790000002, 3790000003, 3790000001],
        "updatedAt desc, tie by id desc"
    );
    assert_eq!(rows[0]["orgId"], Value::Null);
    assert_eq!(rows[0]["customThing"], json!({"x": [1, 2]}));
    assert!(rows[0].get("inboxId").is_none(), "absent stays absent");
    let m = s.get("/conversations/3790000001/messages").await;
    let msgs = m.body["data"]["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["id"], 12400000001_i64, "oldest first");
    assert_eq!(msgs[0]["buttons"][0]["label"], "A");
    assert_eq!(msgs[1]["body"], Value::Null);
    assert!(msgs[1].get("orgId").is_none());
    let r = s.get("/contacts?email=same%40example.com").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    let r = s.get("/accounts/5120044_example.com").await;
    assert_eq!(r.body["data"]["name"], "Example Widgets Inc");
    // created records get ids above the loaded ones
    let created = s
        .post(
            "/contacts",
            json!({"attributes": {"email": "n@example.com"}}),
        )
        .await;
    assert!(created.body["data"]["id"].as_i64().unwrap() > 15900000002);
}

#[tokio::test]
async fn bad_fixtures_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "conversation.json", json!([]));
    let err = drift_sandbox::start(SandboxConfig {
        fixtures: Some(dir.path().to_path_buf()),
        ..config()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, SandboxError::Fixtures { .. }));
    assert!(err.to_string().contains("conversations.json"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "messages.json",
        json!([{"id": 1, "conversationId": 99, "createdAt": 1}]),
    );
    let err = drift_sandbox::start(SandboxConfig {
        fixtures: Some(dir.path().to_path_buf()),
        ..config()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("conversation 99"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.json"), "[{").unwrap();
    let err = drift_sandbox::start(SandboxConfig {
        fixtures: Some(dir.path().to_path_buf()),
        ..config()
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("users.json") && err.to_string().contains("JSON"),
        "{err}"
    );

    let missing = dir.path().join("nope");
    let err = drift_sandbox::start(SandboxConfig {
        fixtures: Some(missing),
        ..config()
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("cannot read the directory"),
        "{err}"
    );
}

#[tokio::test]
async fn reset_reloads_fixtures_and_reports_when_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    recorded_org(dir.path());
    let s = Sbx::start(SandboxConfig {
        fixtures: Some(dir.path().to_path_buf()),
        ..config()
    })
    .await;
    s.post(
        "/contacts",
        json!({"attributes": {"email": "new@example.com"}}),
    )
    .await;
    assert_eq!(s.counts().await["contacts"], 3);
    assert_eq!(s.admin_post("reset", json!({})).await.status, 200);
    assert_eq!(s.counts().await["contacts"], 2);
    std::fs::write(dir.path().join("contacts.json"), "not json").unwrap();
    let r = s.admin_post("reset", json!({})).await;
    assert_eq!(r.status, 500);
    assert!(r.text.contains("contacts.json"), "{}", r.text);
    assert_eq!(
        s.counts().await["contacts"],
        2,
        "a failed reset changes nothing"
    );
}
