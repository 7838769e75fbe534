//! Conversations: both list generations, get, messages, stats (REFERENCE §6, §7.2).

use crate::common::{config, key, Sbx};
use drift_sandbox::SandboxConfig;
use serde_json::Value;
use std::collections::HashSet;

#[tokio::test]
async fn current_generation_pass_delivers_every_conversation_newest_first() {
    let s = Sbx::default().await;
    let rows = s.all_conversations("limit=7").await;
    assert_eq!(
        rows.len() as u64,
        s.counts().await["conversations"].as_u64().unwrap()
    );
    let ids: HashSet<i64> = rows.iter().map(|c| key(c).1).collect();
    assert_eq!(ids.len(), rows.len(), "no duplicates");
    for w in rows.windows(2) {
        assert!(
            key(&w[0]) > key(&w[1]),
            "ordered by updatedAt desc, then id desc: {:?} {:?}",
            key(&w[0]),
            key(&w[1])
        );
    }
    // list rows leave out participants
    assert!(rows.iter().all(|c| c.get("participants").is_none()));
    // all four statuses occur
    let statuses: HashSet<&str> = rows.iter().filter_map(|c| c["status"].as_str()).collect();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
}

#[tokio::test]
async fn first_page_has_self_and_next_links_last_page_only_self() {
    let s = Sbx::default().await;
    let r = s.get("/conversations/list?limit=50&page_token=").await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 50);
    let next = r.body["links"]["next"].as_str().unwrap();
    assert!(next.starts_with(&s.handle.base_url()) && next.contains("page_token="));
    let r = s.get(next).await;
    assert_eq!(
        r.body["data"].as_array().unwrap().len(),
        10,
        "limit kept when following next"
    );
    assert!(r.body["links"]["self"].is_string());
    assert!(r.body["links"].get("next").is_none());
}

#[tokio::test]
async fn legacy_generation_uses_next_and_pagination() {
    let s = Sbx::default().await;
    let mut cursor = String::new();
    let mut rows: Vec<Value> = Vec::new();
    loop {
        let r = s
            .get(&format!("/conversations/list?limit=25&next={cursor}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body.get("links").is_none());
        rows.extend(r.body["data"].as_array().unwrap().iter().cloned());
        match r.body.get("pagination") {
            None => break,
            Some(p) => {
                assert_eq!(p["more"], true);
                cursor = p["next"]
                    .as_str()
                    .expect("legacy cursor is a string")
                    .to_string();
            }
        }
    }
    assert_eq!(rows.len(), 60);
    assert_eq!(
        rows,
        s.all_conversations("limit=100").await,
        "both generations list the same order"
    );
}

#[tokio::test]
async fn limit_out_of_range_is_400_in_each_generations_error_shape() {
    let s = Sbx::default().await;
    let r = s.get("/conversations/list?limit=51&next=").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["errors"][0]["type"], "validation_error");
    assert_eq!(r.body["errors"][0]["param"], "limit");
    let r = s.get("/conversations/list?limit=101").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "validation_error");
    assert_eq!(r.body["error"]["param"], "limit");
    let r = s.get("/conversations/list?page_token=garbage!").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"]["param"], "page_token");
    let r = s.get("/conversations/list?statusId=9").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn status_filter_keeps_only_those_statuses_across_pages() {
    let s = Sbx::default().await;
    let all = s.all_conversations("limit=100").await;
    let open_or_pending = s.all_conversations("limit=4&statusId=1&statusId=3").await;
    let expected: Vec<&Value> = all
        .iter()
        .filter(|c| c["status"] == "open" || c["status"] == "pending")
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(open_or_pending.iter().collect::<Vec<_>>(), expected);
}

#[tokio::test]
async fn get_returns_the_full_conversation_or_404_400() {
    let s = Sbx::default().await;
    let row = &s.all_conversations("limit=1").await[0];
    let id = row["id"].as_i64().unwrap();
    let r = s.get(&format!("/conversations/{id}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["id"], id);
    assert!(r.body["data"]["participants"].is_array());
    let r = s.get("/conversations/1").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.error_type(), "not_found");
    assert_eq!(s.get("/conversations/abc").await.status, 400);
}

#[tokio::test]
async fn messages_page_by_50_oldest_first_with_pagination() {
    let s = Sbx::start(SandboxConfig {
        conversations: 3,
        messages_per_conversation: 120,
        ..config()
    })
    .await;
    let id = s.all_conversations("").await[0]["id"].as_i64().unwrap();
    let mut msgs: Vec<Value> = Vec::new();
    let mut next = String::new();
    let mut pages = 0;
    loop {
        let r = s
            .get(&format!("/conversations/{id}/messages?next={next}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages += 1;
        msgs.extend(
            r.body["data"]["messages"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        if r.body["pagination"]["more"] == false {
            break;
        }
        next = r.body["pagination"]["next"].as_str().unwrap().to_string();
    }
    assert_eq!(pages, 3);
    assert_eq!(msgs.len(), 120);
    assert!(msgs.iter().all(|m| m["conversationId"] == id));
    let times: Vec<i64> = msgs
        .iter()
        .map(|m| m["createdAt"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    let kinds: HashSet<(String, bool)> = msgs
        .iter()
        .map(|m| {
            (
                m["author"]["type"].as_str().unwrap().to_string(),
                m["author"]["bot"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("contact".into(), false))
            && kinds.contains(&("user".into(), true))
            && kinds.contains(&("user".into(), false)),
        "{kinds:?}"
    );
    assert_eq!(s.get("/conversations/1/messages").await.status, 404);
}

#[tokio::test]
async fn stats_count_open_closed_pending_bare() {
    let s = Sbx::default().await;
    let all = s.all_conversations("limit=100").await;
    let r = s.get("/conversations/stats").await;
    let count = |st: &str| all.iter().filter(|c| c["status"] == st).count() as u64;
    assert_eq!(
        r.body["conversationCount"]["OPEN"].as_u64().unwrap(),
        count("open")
    );
    assert_eq!(
        r.body["conversationCount"]["CLOSED"].as_u64().unwrap(),
        count("closed")
    );
    assert_eq!(
        r.body["conversationCount"]["PENDING"].as_u64().unwrap(),
        count("pending")
    );
}

#[tokio::test]
async fn same_seed_same_data_other_seed_other_data() {
    let a = Sbx::default().await.all_conversations("limit=100").await;
    let b = Sbx::default().await.all_conversations("limit=100").await;
    let c = Sbx::start(SandboxConfig {
        seed: 8,
        ..config()
    })
    .await
    .all_conversations("limit=100")
    .await;
    let ids = |v: &[Value]| v.iter().map(|c| c["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
    assert_ne!(ids(&a), ids(&c));
}
