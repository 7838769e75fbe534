//! Per-token leaky bucket and headers (REFERENCE §4 [SIM]).

use crate::common::{config, Sbx};
use drift_sandbox::SandboxConfig;
use serde_json::json;

#[tokio::test]
async fn every_response_has_headers_and_overflow_is_429_with_retry_after() {
    let s = Sbx::start(SandboxConfig {
        rate_limit_per_min: 5,
        limited_tokens: vec![("other-token-0123456789".into(), vec!["user_read".into()])],
        ..config()
    })
    .await;
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let r = s.get("/users/list").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header_u64("x-ratelimit-limit"), 5);
        remaining.push(r.header_u64("x-ratelimit-remaining"));
        assert!(r.header("x-ratelimit-reset").is_some());
    }
    assert_eq!(remaining, [4, 3, 2, 1, 0]);
    let r = s.get("/users/list").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.error_type(), "rate_limit");
    assert!(r.header_u64("retry-after") >= 1);
    assert_eq!(r.header_u64("x-ratelimit-remaining"), 0);
    // errors carry the headers too, and another token has its own bucket
    let other = s
        .get_as("other-token-0123456789", "/conversations/list")
        .await;
    assert_eq!(other.status, 403);
    assert_eq!(other.header_u64("x-ratelimit-remaining"), 4);
    let stats = s.admin_get("stats").await;
    assert_eq!(stats["rate_limited_total"], 1);
    assert_eq!(stats["by_status"]["429"], 1);
}

#[tokio::test]
async fn reports_have_their_own_bucket_60_per_minute_by_default() {
    let body = json!({"metrics": ["createdAt"], "filters": []});
    let default = Sbx::start(SandboxConfig {
        rate_limit_per_min: 600,
        ..config()
    })
    .await;
    let r = default.post("/reports/conversations", body.clone()).await;
    assert_eq!(
        r.header_u64("x-ratelimit-limit"),
        60,
        "Drift's documented reports limit"
    );
    assert_eq!(r.header_u64("x-ratelimit-remaining"), 59);
    let r = default.get("/users/list").await;
    assert_eq!(
        r.header_u64("x-ratelimit-remaining"),
        599,
        "reports do not charge the main bucket"
    );

    // a small reports budget, so draining it does not depend on how fast requests go
    let s = Sbx::start(SandboxConfig {
        rate_limit_per_min: 600,
        reports_rate_limit_per_min: 2,
        ..config()
    })
    .await;
    for i in 0..2 {
        assert_eq!(
            s.post("/reports/conversations", body.clone()).await.status,
            200,
            "report {i}"
        );
    }
    let r = s.post("/reports/conversations", body).await;
    assert_eq!(r.status, 429);
    assert!(r.header_u64("retry-after") >= 1);
    let r = s.get("/users/list").await;
    assert_eq!(r.status, 200, "the main bucket is separate");
    assert_eq!(r.header_u64("x-ratelimit-limit"), 600);
}

#[tokio::test]
async fn limit_zero_turns_it_off() {
    let s = Sbx::default().await;
    for _ in 0..30 {
        let r = s.get("/teams/org").await;
        assert_eq!(r.status, 200);
        assert!(r.header("x-ratelimit-limit").is_none());
    }
}

#[tokio::test]
async fn unknown_tokens_share_one_bucket() {
    let s = Sbx::start(SandboxConfig {
        rate_limit_per_min: 3,
        ..config()
    })
    .await;
    let a = s.get_as("unknown-a", "/teams/org").await;
    let b = s.get_as("unknown-b", "/teams/org").await;
    assert_eq!((a.status, b.status), (401, 401));
    assert_eq!(a.header_u64("x-ratelimit-remaining"), 2);
    assert_eq!(b.header_u64("x-ratelimit-remaining"), 1);
    let own = s.get("/teams/org").await;
    assert_eq!(
        own.header_u64("x-ratelimit-remaining"),
        2,
        "a real token has its own"
    );
}

#[tokio::test]
async fn without_rate_limit_headers_the_limit_still_holds() {
    let s = Sbx::start(SandboxConfig {
        rate_limit_per_min: 3,
        rate_limit_headers: false,
        ..config()
    })
    .await;
    for _ in 0..3 {
        let r = s.get("/users/list").await;
        assert_eq!(r.status, 200);
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert!(r.header(name).is_none(), "{name} sent: {:?}", r.headers);
        }
    }
    let r = s.get("/users/list").await;
    assert_eq!(r.status, 429, "the limit is still enforced");
    assert_eq!(r.error_type(), "rate_limit");
    assert!(r.header_u64("retry-after") >= 1, "429 still says when");
    assert!(r.header("x-ratelimit-remaining").is_none());
    assert_eq!(s.admin_get("stats").await["rate_limited_total"], 1);
}
