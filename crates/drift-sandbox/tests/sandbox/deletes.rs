//! `POST /__sandbox/mutate` renames and deletes: `rename_contacts`, `delete_contacts`,
//! `delete_accounts`, `delete_users`, their counts, and reset.

use crate::common::{config, Sbx};
use drift_sandbox::SandboxConfig;
use serde_json::{json, Value};
use std::collections::HashSet;

/// The bot user of the seeded org.
const BOT: i64 = 2_400_001;

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

async fn accounts(s: &Sbx) -> Vec<Value> {
    let r = s.get("/accounts?size=65").await;
    r.body["data"]["accounts"].as_array().unwrap().clone()
}

/// Ids of the users `GET /users/list` lists.
async fn listed_users(s: &Sbx) -> HashSet<i64> {
    let r = s.get("/users/list").await;
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect()
}

fn twelve_users() -> SandboxConfig {
    SandboxConfig {
        users: 12,
        ..config()
    }
}

fn n(counts: &Value, key: &str) -> u64 {
    counts[key]
        .as_u64()
        .unwrap_or_else(|| panic!("counts has no {key}: {counts}"))
}

#[tokio::test]
async fn renamed_contacts_have_a_new_name_and_a_touched_conversation() {
    let s = Sbx::default().await;
    let before = s.all_conversations("limit=100").await;
    let newest = before[0]["updatedAt"].as_i64().unwrap();
    let r = s.admin_post("mutate", json!({"rename_contacts": 3})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let renamed = ids(&r.body["rename_contacts"]);
    assert_eq!(renamed.len(), 3);
    let referenced: HashSet<i64> = before
        .iter()
        .map(|c| c["contactId"].as_i64().unwrap())
        .collect();
    for id in &renamed {
        assert!(
            referenced.contains(id),
            "{id} is a contact of a conversation"
        );
    }
    let after = s.all_conversations("limit=100").await;
    assert_eq!(after.len(), before.len());
    // the three newest conversations are now one of each renamed contact
    let top: HashSet<i64> = after[..3]
        .iter()
        .map(|c| c["contactId"].as_i64().unwrap())
        .collect();
    assert_eq!(top, renamed.iter().copied().collect::<HashSet<_>>());
    assert!(after[..3]
        .iter()
        .all(|c| c["updatedAt"].as_i64().unwrap() > newest));
    assert!(after[3]["updatedAt"].as_i64().unwrap() <= newest);
    // and the name a full read of the contact gives has changed
    let s2 = Sbx::default().await;
    for id in &renamed {
        let old = s2.get(&format!("/contacts/{id}")).await.body["data"].clone();
        let new = s.get(&format!("/contacts/{id}")).await.body["data"].clone();
        let name = new["attributes"]["name"].as_str().expect("a name");
        assert_ne!(old["attributes"]["name"], json!(name));
        assert_eq!(
            new["attributes"]["_END_USER_VERSION"].as_i64().unwrap(),
            old["attributes"]["_END_USER_VERSION"].as_i64().unwrap() + 1
        );
        assert_eq!(new["attributes"]["email"], old["attributes"]["email"]);
    }
    assert_eq!(
        s.counts().await,
        s2.counts().await,
        "a rename changes no count"
    );
}

#[tokio::test]
async fn deleted_contacts_answer_404_and_are_not_found_while_their_conversations_stay() {
    let s = Sbx::default().await;
    let before = s.counts().await;
    assert_eq!(n(&before, "deleted_contacts"), 0);
    let convs = s.all_conversations("limit=100").await;
    let r = s.admin_post("mutate", json!({"delete_contacts": 3})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let deleted = ids(&r.body["delete_contacts"]);
    assert_eq!(deleted.len(), 3);
    let fresh = Sbx::default().await;
    for id in &deleted {
        assert!(convs.iter().any(|c| c["contactId"] == json!(id)));
        assert_eq!(s.get(&format!("/contacts/{id}")).await.status, 404);
        let was = fresh.get(&format!("/contacts/{id}")).await.body["data"].clone();
        let email = was["attributes"]["email"].as_str().unwrap();
        let found = s.get(&format!("/contacts?email={email}")).await;
        assert_eq!(found.status, 200);
        assert!(
            found.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["id"] != json!(id)),
            "{id} still found by email"
        );
        if let Some(x) = was["attributes"]["externalId"].as_str() {
            let found = s.get(&format!("/contacts?idType=external&id={x}")).await;
            assert_eq!(
                found.body["data"],
                json!([]),
                "{id} still found by externalId"
            );
        }
    }
    assert_eq!(
        s.all_conversations("limit=100").await,
        convs,
        "conversations untouched"
    );
    let after = s.counts().await;
    assert_eq!(n(&after, "deleted_contacts"), 3);
    assert_eq!(n(&after, "contacts"), n(&before, "contacts") - 3);
    assert_eq!(
        n(&after, "contacts_in_conversations"),
        n(&before, "contacts_in_conversations") - 3
    );
    // a delete through the API counts too
    let other = convs
        .iter()
        .map(|c| c["contactId"].as_i64().unwrap())
        .find(|id| !deleted.contains(id))
        .unwrap();
    assert_eq!(s.delete(&format!("/contacts/{other}")).await.status, 200);
    assert_eq!(n(&s.counts().await, "deleted_contacts"), 4);
}

#[tokio::test]
async fn deleted_accounts_stay_listed_with_deleted_true_and_the_same_update_time() {
    let s = Sbx::default().await;
    let before = s.counts().await;
    let seeded = n(&before, "deleted_accounts");
    assert!(seeded > 0, "the seeded org has soft-deleted accounts");
    let accounts_before = accounts(&s).await;
    let r = s.admin_post("mutate", json!({"delete_accounts": 2})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let deleted: Vec<String> = r.body["delete_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(deleted.len(), 2);
    for id in &deleted {
        let old = accounts_before
            .iter()
            .find(|a| a["accountId"] == json!(id))
            .unwrap();
        assert_eq!(old["deleted"], false, "{id} was live");
        let now = s.get(&format!("/accounts/{id}")).await;
        assert_eq!(now.status, 200);
        assert_eq!(now.body["data"]["deleted"], true);
        assert_eq!(now.body["data"]["updateDateTime"], old["updateDateTime"]);
    }
    assert_eq!(accounts(&s).await.len(), 23, "still listed");
    let after = s.counts().await;
    assert_eq!(n(&after, "deleted_accounts"), seeded + 2);
    assert_eq!(n(&after, "accounts"), n(&before, "accounts"));
}

#[tokio::test]
async fn deleted_users_are_gone_and_never_the_bot_an_admin_or_an_owner() {
    let s = Sbx::start(twelve_users()).await;
    let users = s.get("/users/list").await.body["data"].clone();
    let r = s.admin_post("mutate", json!({"delete_users": 2})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let deleted = ids(&r.body["delete_users"]);
    assert_eq!(deleted.len(), 2);
    for id in &deleted {
        assert_ne!(*id, BOT);
        assert_eq!(s.get(&format!("/users/{id}")).await.status, 404);
    }
    let listed = listed_users(&s).await;
    assert_eq!(listed.len(), 10);
    assert!(deleted.iter().all(|id| !listed.contains(id)));
    let counts = s.counts().await;
    assert_eq!(n(&counts, "users"), 10);
    assert_eq!(n(&counts, "deleted_users"), 2);
    // asking for more than there are deletes only the safe ones
    let r = s.admin_post("mutate", json!({"delete_users": 100})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let left_ids = listed_users(&s).await;
    assert!(left_ids.contains(&BOT), "the bot stays");
    for u in users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] == "admin")
    {
        assert!(left_ids.contains(&u["id"].as_i64().unwrap()), "admins stay");
    }
    for t in s.get("/teams/org").await.body["data"].as_array().unwrap() {
        if let Some(owner) = t["owner"].as_i64() {
            assert!(left_ids.contains(&owner), "team owners stay");
        }
    }
    for p in s.get("/playbooks/list").await.body.as_array().unwrap() {
        assert!(left_ids.contains(&p["createdAuthorId"].as_i64().unwrap()));
    }
    assert!(left_ids.len() < 10, "some more were deleted");
    assert_eq!(
        n(&s.counts().await, "deleted_users") as usize,
        users.as_array().unwrap().len() - left_ids.len()
    );
}

#[tokio::test]
async fn the_new_mutations_are_deterministic_validated_and_undone_by_reset() {
    let a = Sbx::start(twelve_users()).await;
    let b = Sbx::start(twelve_users()).await;
    let before = a.counts().await;
    let convs = a.all_conversations("limit=100").await;
    let body = json!({"rename_contacts": 2, "delete_contacts": 2, "delete_accounts": 1, "delete_users": 1});
    let ra = a.admin_post("mutate", body.clone()).await;
    let rb = b.admin_post("mutate", body).await;
    assert_eq!(ra.status, 200, "{}", ra.text);
    assert_eq!(ra.body, rb.body, "same seed, same changes");
    let renamed = ids(&ra.body["rename_contacts"]);
    let deleted = ids(&ra.body["delete_contacts"]);
    assert!(renamed.iter().all(|id| !deleted.contains(id)), "disjoint");
    let user = ids(&ra.body["delete_users"])[0];
    let account = ra.body["delete_accounts"][0].as_str().unwrap().to_string();

    assert_eq!(a.admin_post("reset", json!({})).await.status, 200);
    assert_eq!(a.counts().await, before);
    assert_eq!(a.all_conversations("limit=100").await, convs);
    assert_eq!(
        a.get(&format!("/contacts/{}", deleted[0])).await.status,
        200
    );
    assert_eq!(a.get(&format!("/users/{user}")).await.status, 200);
    assert_eq!(
        a.get(&format!("/accounts/{account}")).await.body["data"]["deleted"],
        false
    );
    for bad in [
        json!({"delete_users": -1}),
        json!({"rename_contacts": "two"}),
    ] {
        let r = a.admin_post("mutate", bad).await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
    let r = a
        .admin_post("mutate", json!({"delete_accounts": "x"}))
        .await;
    assert!(r.text.contains("delete_accounts"), "{}", r.text);
}
