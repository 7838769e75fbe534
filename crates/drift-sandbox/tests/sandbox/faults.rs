//! Fault plans: each kind, route matching, after_requests / count / probability.

use crate::common::{config, Sbx};
use drift_sandbox::{FaultKind, FaultSpec, SandboxConfig};
use serde_json::{json, Value};

async fn with_faults(faults: Value) -> Sbx {
    let s = Sbx::default().await;
    let r = s.admin_post("faults", json!({ "faults": faults })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    s
}

#[tokio::test]
async fn status_burst_after_requests_for_count_then_recovers() {
    let s = with_faults(json!([{"route": "conversations.list", "kind": "status", "status": 503, "after_requests": 1, "count": 2}])).await;
    let statuses: Vec<u16> = futures_statuses(&s, "/conversations/list", 5).await;
    assert_eq!(statuses, [200, 503, 503, 200, 200]);
    let r = s.get("/users/list").await;
    assert_eq!(r.status, 200, "other routes are not affected");
    let r = s.get("/conversations/list").await;
    assert_eq!(r.status, 200);
    let stats = s.admin_get("stats").await;
    assert_eq!(stats["by_status"]["503"], 2);
}

async fn futures_statuses(s: &Sbx, path: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(s.get(path).await.status);
    }
    out
}

#[tokio::test]
async fn status_429_fault_has_retry_after_and_drift_body() {
    let s = with_faults(json!([{"route": "*", "kind": "status", "status": 429, "count": 1}])).await;
    let r = s.get("/teams/org").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.error_type(), "rate_limit");
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = s.get("/teams/org").await;
    assert_eq!(r.status, 200, "count 1: only the first request");
    let s = with_faults(json!([{"route": "*", "kind": "status", "status": 502}])).await;
    let r = s.get("/teams/org").await;
    assert_eq!(r.status, 502);
    assert_eq!(r.error_type(), "server_error");
}

#[tokio::test]
async fn reset_drops_the_connection() {
    let s = with_faults(json!([{"route": "users.list", "kind": "reset", "count": 1}])).await;
    let res = s
        .http
        .get(s.url("/users/list"))
        .bearer_auth(s.handle.token())
        .send()
        .await;
    let failed = match res {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "the client sees a transport error");
    assert_eq!(s.get("/users/list").await.status, 200);
}

#[tokio::test]
async fn truncate_sends_half_a_json_body() {
    let s = with_faults(json!([{"route": "accounts.list", "kind": "truncate", "count": 1}])).await;
    let r = s.get("/accounts").await;
    assert_eq!(r.status, 200);
    assert!(r.text.starts_with("{\"data\""), "{}", r.text);
    assert!(
        serde_json::from_str::<Value>(&r.text).is_err(),
        "not parseable"
    );
    let whole = s.get("/accounts").await;
    assert!(whole.text.starts_with(&r.text) && whole.text.len() >= 2 * r.text.len());
}

#[tokio::test]
async fn slow_body_still_delivers_the_whole_body() {
    let s = with_faults(
        json!([{"route": "teams.list", "kind": "slow_body", "delay_ms": 100, "count": 1}]),
    )
    .await;
    let slow = s.get("/teams/org").await;
    let normal = s.get("/teams/org").await;
    assert_eq!(slow.status, 200);
    assert_eq!(slow.body, normal.body);
    let log = s.admin_get("log").await;
    assert_eq!(log["requests"][0]["fault"], "slow_body");
    assert_eq!(log["requests"][1]["fault"], Value::Null);
}

#[tokio::test]
async fn slow_body_trips_a_client_timeout() {
    let s =
        with_faults(json!([{"route": "teams.list", "kind": "slow_body", "delay_ms": 5000}])).await;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();
    let res = client
        .get(s.url("/teams/org"))
        .bearer_auth(s.handle.token())
        .send()
        .await;
    let timed_out = match res {
        Err(e) => e.is_timeout(),
        Ok(r) => r.bytes().await.is_err_and(|e| e.is_timeout()),
    };
    assert!(timed_out);
}

#[tokio::test]
async fn repeat_cursor_repeats_the_pages_own_cursor() {
    let s = with_faults(
        json!([{"route": "conversations.list", "kind": "repeat_cursor", "after_requests": 1}]),
    )
    .await;
    let p1 = s.get("/conversations/list?limit=10").await;
    let next = p1.body["links"]["next"].as_str().unwrap().to_string();
    let p2 = s.get(&next).await;
    assert_eq!(
        p2.body["links"]["next"].as_str(),
        Some(next.as_str()),
        "same cursor again"
    );
    assert_eq!(p2.body["links"]["self"].as_str(), Some(next.as_str()));

    let s =
        with_faults(json!([{"route": "conversations.messages", "kind": "repeat_cursor"}])).await;
    let id = s.all_conversations("limit=1").await[0]["id"].clone();
    let m1 = s.get(&format!("/conversations/{id}/messages")).await;
    let cursor = m1.body["pagination"]["next"].as_str().unwrap().to_string();
    assert_eq!(m1.body["pagination"]["more"], true);
    let m2 = s
        .get(&format!("/conversations/{id}/messages?next={cursor}"))
        .await;
    assert_eq!(
        m2.body["pagination"]["next"].as_str(),
        Some(cursor.as_str())
    );
}

#[tokio::test]
async fn cursor_cycle_points_back_to_an_earlier_page() {
    let s = with_faults(json!([{"route": "conversations.list", "kind": "cursor_cycle", "after_requests": 1, "count": 1}])).await;
    let mut seen = Vec::new();
    let mut url = s.url("/conversations/list?limit=10&page_token=");
    let mut cycled = false;
    for _ in 0..10 {
        let r = s.get(&url).await;
        let Some(next) = r.body["links"]["next"].as_str() else {
            break;
        };
        if seen.iter().any(|u: &String| u == next) {
            cycled = true;
            break;
        }
        seen.push(next.to_string());
        url = next.to_string();
    }
    assert!(cycled, "a cursor came back: {seen:?}");

    let s = with_faults(json!([{"route": "accounts.list", "kind": "cursor_cycle", "after_requests": 1, "count": 1}])).await;
    let p1 = s.get("/accounts?index=0&size=5").await;
    let p2 = s.get(p1.body["data"]["next"].as_str().unwrap()).await;
    assert!(
        p2.body["data"]["next"]
            .as_str()
            .unwrap()
            .contains("index=0&"),
        "{}",
        p2.text
    );

    let s =
        with_faults(json!([{"route": "conversations.list", "kind": "cursor_cycle", "count": 1}]))
            .await;
    let legacy = s.get("/conversations/list?next=").await;
    assert_eq!(legacy.body["pagination"]["next"], "0");
}

#[tokio::test]
async fn revoke_token_after_n_requests_then_401_everywhere() {
    let s = with_faults(
        json!([{"route": "*", "kind": "revoke_token", "after_requests": 2, "count": 1}]),
    )
    .await;
    assert_eq!(s.get("/teams/org").await.status, 200);
    assert_eq!(s.get("/users/list").await.status, 200);
    let r = s.get("/conversations/list").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_type(), "authentication_error");
    assert_eq!(s.get("/teams/org").await.status, 401, "stays revoked");
    s.admin_post("reset", json!({})).await;
    assert_eq!(
        s.get("/teams/org").await.status,
        200,
        "reset restores the token"
    );
}

#[tokio::test]
async fn probability_is_seeded_and_partial() {
    let plan =
        json!([{"route": "teams.list", "kind": "status", "status": 500, "probability": 0.5}]);
    let a = with_faults(plan.clone()).await;
    let b = with_faults(plan).await;
    let sa = futures_statuses(&a, "/teams/org", 40).await;
    let sb = futures_statuses(&b, "/teams/org", 40).await;
    assert_eq!(sa, sb, "same seed, same firings");
    let fired = sa.iter().filter(|&&s| s == 500).count();
    assert!(fired > 5 && fired < 35, "{fired} of 40");
}

#[tokio::test]
async fn empty_plan_clears_and_bad_plans_are_400() {
    let s = with_faults(json!([{"route": "*", "kind": "status"}])).await;
    assert_eq!(
        s.get("/teams/org").await.status,
        503,
        "status defaults to 503"
    );
    s.admin_post("faults", json!({"faults": []})).await;
    assert_eq!(s.get("/teams/org").await.status, 200);
    assert_eq!(s.admin_get("faults").await["faults"], json!([]));
    let r = s
        .admin_post(
            "faults",
            json!({"faults": [{"route": "*", "kind": "explode"}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kind"),
        "{}",
        r.text
    );
    let r = s
        .admin_post(
            "faults",
            json!({"faults": [{"route": "*", "kind": "status", "probability": 2.0}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("probability"));
    // A misspelt setting would be ignored (the fault firing at once): refused, naming it.
    let r = s
        .admin_post(
            "faults",
            json!({"faults": [{"route": "*", "kind": "reset", "afterrequests": 5}]}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("unknown field `afterrequests`"),
        "{}",
        r.text
    );
    // A misspelt route would never fire: refused, naming the routes there are.
    let r = s
        .admin_post(
            "faults",
            json!({"faults": [{"route": "conversation.list", "kind": "reset"}]}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text
            .contains("faults[0]: route `conversation.list` is not a sandbox route")
            && r.text.contains("conversations.list"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn start_plan_from_config_is_active_and_restored_by_reset() {
    let spec = FaultSpec {
        route: "users.list".into(),
        kind: FaultKind::Status,
        status: Some(500),
        after_requests: 0,
        count: Some(1),
        probability: None,
        delay_ms: None,
    };
    let s = Sbx::start(SandboxConfig {
        faults: vec![spec],
        ..config()
    })
    .await;
    assert_eq!(s.get("/users/list").await.status, 500);
    assert_eq!(s.get("/users/list").await.status, 200);
    s.admin_post("reset", json!({})).await;
    assert_eq!(s.get("/users/list").await.status, 500);
}

#[test]
fn fault_kind_names_are_the_plan_spellings() {
    use FaultKind::*;
    for kind in [
        Status,
        Reset,
        SlowBody,
        Truncate,
        RepeatCursor,
        CursorCycle,
        RevokeToken,
    ] {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
    }
}
