//! Accounts: index/size paging, get, create, update, soft delete (REFERENCE §7.3).

use crate::common::Sbx;
use serde_json::{json, Value};

async fn all_accounts(s: &Sbx, size: u32) -> (Vec<Value>, usize) {
    let mut url = s.url(&format!("/accounts?index=0&size={size}"));
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let r = s.get(&url).await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages += 1;
        assert_eq!(r.body["data"]["total"].as_u64().unwrap(), 23);
        out.extend(
            r.body["data"]["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        match r.body["data"]["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => return (out, pages),
        }
    }
}

#[tokio::test]
async fn paging_follows_next_until_absent() {
    let s = Sbx::default().await;
    let (accounts, pages) = all_accounts(&s, 10).await;
    assert_eq!(pages, 3);
    assert_eq!(accounts.len(), 23);
    assert!(accounts.iter().all(|a| a["accountId"].is_string()));
    assert!(
        accounts.iter().any(|a| a["deleted"] == true),
        "some accounts are soft-deleted"
    );
    let r = s.get("/accounts").await;
    assert_eq!(
        r.body["data"]["accounts"].as_array().unwrap().len(),
        10,
        "size defaults to 10"
    );
    assert_eq!(s.get("/accounts?size=66").await.status, 400);
    assert_eq!(s.get("/accounts?index=-1").await.status, 400);
}

#[tokio::test]
async fn get_one_and_404() {
    let s = Sbx::default().await;
    let (accounts, _) = all_accounts(&s, 65).await;
    let id = accounts[3]["accountId"].as_str().unwrap();
    let r = s.get(&format!("/accounts/{id}")).await;
    assert_eq!(r.body["data"], accounts[3]);
    assert_eq!(s.get("/accounts/0_nowhere.example").await.status, 404);
}

#[tokio::test]
async fn create_needs_owner_and_unique_domain() {
    let s = Sbx::default().await;
    let r = s
        .post(
            "/accounts/create",
            json!({"name": "New", "domain": "www.new.example.org", "ownerId": 2411807}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let a = &r.body["data"];
    assert!(a["accountId"]
        .as_str()
        .unwrap()
        .ends_with("_new.example.org"));
    assert_eq!(a["deleted"], false);
    assert_eq!(a["createDateTime"], a["updateDateTime"]);
    let dup = s
        .post(
            "/accounts/create",
            json!({"name": "Again", "domain": "NEW.example.org", "ownerId": 1}),
        )
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.error_type(), "conflict");
    let no_owner = s
        .post("/accounts/create", json!({"domain": "x.example"}))
        .await;
    assert_eq!(no_owner.status, 400);
    assert_eq!(no_owner.body["error"]["param"], "ownerId");
    let r = s.get("/accounts?size=65").await;
    assert_eq!(r.body["data"]["total"], 24);
}

#[tokio::test]
async fn update_needs_account_id_in_body_and_delete_is_soft() {
    let s = Sbx::default().await;
    let a = s
        .post(
            "/accounts/create",
            json!({"name": "U", "domain": "u.example", "ownerId": 1}),
        )
        .await
        .body["data"]
        .clone();
    let id = a["accountId"].as_str().unwrap().to_string();
    let r = s
        .patch(
            "/accounts/update",
            json!({"accountId": id, "ownerId": 2, "name": "Renamed ✓"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"]["name"], "Renamed ✓");
    assert_eq!(r.body["data"]["ownerId"], 2);
    assert_eq!(r.body["data"]["accountId"], id.as_str());
    let no_id = s.patch("/accounts/update", json!({"ownerId": 2})).await;
    assert_eq!(no_id.status, 400);
    assert_eq!(no_id.body["error"]["param"], "accountId");
    assert_eq!(
        s.patch(
            "/accounts/update",
            json!({"accountId": "nope", "ownerId": 2})
        )
        .await
        .status,
        404
    );
    let d = s.delete(&format!("/accounts/{id}")).await;
    assert_eq!(d.body["ok"], true);
    let r = s.get(&format!("/accounts/{id}")).await;
    assert_eq!(r.status, 200, "soft-deleted accounts stay readable");
    assert_eq!(r.body["data"]["deleted"], true);
    // the domain is free again once the account is deleted
    let again = s
        .post(
            "/accounts/create",
            json!({"domain": "u.example", "ownerId": 1}),
        )
        .await;
    assert_eq!(again.status, 200);
}
