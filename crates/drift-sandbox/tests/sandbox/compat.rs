//! `--compat airbyte-0.3`: off by default; when on, serves what that peer needs.

use crate::common::{config, Sbx};
use drift_sandbox::{Compat, SandboxConfig};

#[tokio::test]
async fn faithful_by_default_no_peer_routes_and_no_next_on_records() {
    let s = Sbx::default().await;
    assert_eq!(s.get("/conversations").await.status, 404);
    assert_eq!(s.get("/users").await.status, 400);
    let page = s.get("/conversations/list?limit=5").await;
    assert!(page.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r.get("next").is_none()));
}

#[tokio::test]
async fn compat_adds_peer_routes_and_copies_next_onto_the_last_record() {
    let s = Sbx::start(SandboxConfig {
        compat: Some(Compat::Airbyte03),
        ..config()
    })
    .await;
    let page = s.get("/conversations?limit=5").await;
    assert_eq!(page.status, 200);
    let rows = page.body["data"].as_array().unwrap();
    assert_eq!(rows[4]["next"], page.body["links"]["next"]);
    assert!(rows[..4].iter().all(|r| r.get("next").is_none()));
    let users = s.get("/users").await;
    assert_eq!(users.body["data"].as_array().unwrap().len(), 5);
    let accounts = s.get("/accounts?size=10").await;
    assert_eq!(
        accounts.body["data"]["accounts"][9]["next"],
        accounts.body["data"]["next"]
    );
    assert_eq!("airbyte-0.3".parse::<Compat>(), Ok(Compat::Airbyte03));
    assert!("airbyte-9"
        .parse::<Compat>()
        .unwrap_err()
        .contains("airbyte-0.3"));
}
