//! `/__sandbox/*` admin routes (DESIGN.md §7).

use crate::common::{config, Sbx};
use drift_sandbox::SandboxConfig;
use serde_json::json;
use std::collections::HashSet;

#[tokio::test]
async fn counts_match_what_a_full_read_delivers() {
    let s = Sbx::start(SandboxConfig {
        messages_per_conversation: 3,
        ..config()
    })
    .await;
    let c = s.counts().await;
    let convs = s.all_conversations("limit=100").await;
    assert_eq!(c["conversations"], convs.len());
    let mut messages = 0;
    for conv in &convs {
        messages += s
            .get(&format!("/conversations/{}/messages", conv["id"]))
            .await
            .body["data"]["messages"]
            .as_array()
            .unwrap()
            .len();
    }
    assert_eq!(c["messages"], messages);
    let distinct: HashSet<i64> = convs
        .iter()
        .map(|c| c["contactId"].as_i64().unwrap())
        .collect();
    assert_eq!(c["contacts_in_conversations"], distinct.len());
    assert!(
        c["contacts"].as_u64().unwrap() > distinct.len() as u64,
        "some contacts have no conversation"
    );
    assert_eq!(c["accounts"], 23);
    assert_eq!(c["teams"], 3);
    assert_eq!(c["playbooks"], 4);
}

#[tokio::test]
async fn stats_count_by_route_and_status_and_peak() {
    let s = Sbx::default().await;
    s.get("/conversations/list").await;
    s.get("/conversations/list").await;
    s.get("/conversations/1").await;
    s.get_as("bad-token", "/users/list").await;
    let st = s.admin_get("stats").await;
    assert_eq!(st["requests_total"], 4);
    assert_eq!(st["by_route"]["conversations.list"], 2);
    assert_eq!(st["by_route"]["conversations.get"], 1);
    assert_eq!(st["by_status"]["200"], 2);
    assert_eq!(st["by_status"]["404"], 1);
    assert_eq!(st["by_status"]["401"], 1);
    assert_eq!(st["peak_requests_per_minute"], 4);
}

#[tokio::test]
async fn mutate_changes_what_the_next_sync_sees_and_reset_restores() {
    let s = Sbx::default().await;
    let before = s.counts().await;
    let top_before = s.all_conversations("limit=100").await;
    let r = s.admin_post("mutate", json!({"touch_conversations": 3, "new_conversations": 2, "new_messages": 4, "touch_accounts": 2})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let touched: Vec<i64> = r.body["touch_conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(touched.len(), 3);
    assert_eq!(r.body["new_conversations"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["new_messages"].as_array().unwrap().len(), 4);
    assert_eq!(r.body["touch_accounts"].as_array().unwrap().len(), 2);
    let after = s.counts().await;
    assert_eq!(
        after["conversations"],
        before["conversations"].as_u64().unwrap() + 2
    );
    assert_eq!(
        after["messages"],
        before["messages"].as_u64().unwrap() + 4 + 2 * 5
    );
    // changed conversations come first now
    let top: HashSet<i64> = s
        .all_conversations("limit=100")
        .await
        .iter()
        .take(9)
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert!(
        touched.iter().all(|id| top.contains(id)),
        "touched conversations are newest"
    );
    let newest_before = top_before[0]["updatedAt"].as_i64().unwrap();
    let acct = r.body["touch_accounts"][0].as_str().unwrap();
    assert!(
        s.get(&format!("/accounts/{acct}")).await.body["data"]["updateDateTime"]
            .as_i64()
            .unwrap()
            > newest_before
    );

    assert_eq!(s.admin_post("reset", json!({})).await.status, 200);
    assert_eq!(s.counts().await, before);
    assert_eq!(s.all_conversations("limit=100").await, top_before);
    assert_eq!(
        s.admin_get("stats").await["requests_total"],
        1,
        "stats zeroed by reset"
    );
    assert_eq!(
        s.admin_post("mutate", json!({"new_messages": -1}))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn log_lists_requests_with_authorization_masked() {
    let s = Sbx::default().await;
    s.get("/teams/org?x=1").await;
    let log = s.admin_get("log").await;
    let e = &log["requests"][0];
    assert_eq!(e["method"], "GET");
    assert_eq!(e["path"], "/teams/org");
    assert_eq!(e["route"], "teams.list");
    assert_eq!(e["status"], 200);
    let auth = e["authorization"].as_str().unwrap();
    assert!(!auth.contains(&s.handle.token()), "token masked: {auth}");
    assert!(auth.starts_with("Bearer ****"));
    assert!(!log.to_string().contains(&s.handle.token()));
}

#[tokio::test]
async fn deleting_a_contact_of_a_conversation_lowers_both_contact_counts() {
    let s = Sbx::default().await;
    let before = s.counts().await;
    let contact = s.all_conversations("limit=1").await[0]["contactId"].clone();
    assert_eq!(s.delete(&format!("/contacts/{contact}")).await.status, 200);
    let after = s.counts().await;
    let n = |c: &serde_json::Value, k: &str| c[k].as_u64().unwrap();
    assert_eq!(n(&after, "contacts"), n(&before, "contacts") - 1);
    assert_eq!(
        n(&after, "contacts_in_conversations"),
        n(&before, "contacts_in_conversations") - 1
    );
}
