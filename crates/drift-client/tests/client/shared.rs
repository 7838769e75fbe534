//! Budgets shared by several processes (issue 18): two `RateBudget`s on one `MemoryBudget`
//! stand in for two processes on one credential; server hints and reported quota.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drift_client::clock::{Clock, ManualClock};
use drift_client::{Client, Error, MemoryBudget, RateBudget, SecretString, SharedBudget};
use drift_sandbox::SandboxConfig;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{json, TOKEN};

fn on(server: &str, token: &str, budget: RateBudget) -> Client {
    Client::builder(server, SecretString::from(token.to_string()))
        .rate_budget(budget)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_429_seen_by_one_process_holds_the_other_for_the_time_the_server_gave() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "5"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(json(json!({"data": [{"id": 1}]})))
        .with_priority(2)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let shared: Arc<dyn SharedBudget> = MemoryBudget::new();
    let budget =
        || RateBudget::shared_with_clock(600, 3, shared.clone(), "cred_1", clock.clone()).unwrap();
    let one = Client::builder(&server.uri(), SecretString::from(TOKEN))
        .rate_budget(budget())
        .max_retries(0)
        .build()
        .unwrap();
    let other = on(&server.uri(), TOKEN, budget());
    let e = one.users().await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e}");

    let before = clock.now();
    assert_eq!(other.users().await.unwrap().len(), 1);
    let held = clock.now() - before;
    assert!(
        held >= Duration::from_millis(4900) && held <= Duration::from_millis(5300),
        "the other process waited {held:?}"
    );
    let m = other.metrics();
    assert_eq!((m.requests, m.rate_limited), (1, 0), "{m:?}");
    assert!(m.wait_time >= Duration::from_millis(4900), "{m:?}");
}

#[tokio::test]
async fn remaining_zero_seen_by_one_process_holds_the_other() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(
            json(json!({"data": []}))
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", "3"),
        )
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let shared: Arc<dyn SharedBudget> = MemoryBudget::new();
    let budget =
        || RateBudget::shared_with_clock(600, 3, shared.clone(), "k", clock.clone()).unwrap();
    let one = on(&server.uri(), TOKEN, budget());
    let other = on(&server.uri(), TOKEN, budget());
    one.users().await.unwrap();
    let before = clock.now();
    other.users().await.unwrap();
    let held = clock.now() - before;
    assert!(held >= Duration::from_millis(2900), "waited {held:?}");
}

#[tokio::test]
async fn two_clients_on_one_shared_budget_keep_its_pace() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(json(json!({"data": []})))
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let shared: Arc<dyn SharedBudget> = MemoryBudget::new();
    let budget =
        || RateBudget::shared_with_clock(600, 3, shared.clone(), "k", clock.clone()).unwrap();
    let (a, b) = (
        on(&server.uri(), TOKEN, budget()),
        on(&server.uri(), TOKEN, budget()),
    );
    for _ in 0..13 {
        a.users().await.unwrap();
        b.users().await.unwrap();
    }
    // 26 requests at 600/min with a burst of 3: at least 2.3 s of one shared schedule
    // (each alone would have needed only 1 s)
    let elapsed = clock.now();
    assert!(elapsed >= Duration::from_millis(2200), "{elapsed:?}");
    assert!(elapsed <= Duration::from_millis(3200), "{elapsed:?}");
}

async fn stats(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/__sandbox/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_spare_quota_is_spent_beyond_the_pace_without_a_429() {
    // The sandbox's bucket holds 300 requests and drains 300 a minute; its headers say so.
    let sandbox = drift_sandbox::start(SandboxConfig {
        rate_limit_per_min: 300,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let base = sandbox.base_url();
    let budget = RateBudget::shared(300, MemoryBudget::new(), "k").unwrap();
    let c = on(&base, &sandbox.token(), budget);
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    c.users().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    // 320 requests: at the steady 5/s that is 64 s; the reported quota (300, less a margin
    // of 30) lets about 270 go at once, the rest at the pace.
    assert!(took < Duration::from_secs(25), "took {took:?}");
    let s = stats(&base).await;
    assert_eq!(s["rate_limited_total"], 0, "{s}");
    assert_eq!(c.metrics().rate_limited, 0);
    assert_eq!(c.metrics().requests, 320);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn without_rate_limit_headers_the_steady_pace_is_kept() {
    let sandbox = drift_sandbox::start(SandboxConfig {
        rate_limit_per_min: 300,
        rate_limit_headers: false,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let clock = ManualClock::new();
    let c = Client::builder(&sandbox.base_url(), SecretString::from(sandbox.token()))
        .rate_limit_per_min(300)
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..13 {
        c.users().await.unwrap();
    }
    // a burst of 3, then one per 200 ms
    let elapsed = clock.now();
    assert!(elapsed >= Duration::from_millis(1990), "{elapsed:?}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn reported_quota_is_spent_down_to_the_margin_then_the_pace_holds() {
    // The server reports 15, 14, 13, ... left of 100; the margin is 10.
    let server = MockServer::start().await;
    for (i, left) in (8..=15).rev().enumerate() {
        Mock::given(method("GET"))
            .and(path("/users/list"))
            .respond_with(
                json(json!({"data": []}))
                    .insert_header("x-ratelimit-limit", "100")
                    .insert_header("x-ratelimit-remaining", left.to_string().as_str()),
            )
            .up_to_n_times(1)
            .with_priority(u8::try_from(i + 1).unwrap())
            .mount(&server)
            .await;
    }
    let clock = ManualClock::new();
    let c = Client::builder(&server.uri(), SecretString::from(TOKEN))
        .rate_limit_per_min(60)
        .burst(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(drift_client::spare_margin(100), 10);
    // request 1 is paced (nothing reported yet); 2-6 ride on the reports 15..11 (5 over the
    // margin); the report 10 leaves nothing spare, so 7 and 8 wait for the pace (1/s)
    for _ in 0..6 {
        c.users().await.unwrap();
    }
    assert_eq!(clock.now(), Duration::ZERO, "{:?}", c.metrics());
    c.users().await.unwrap();
    assert_eq!(clock.now(), Duration::from_secs(1));
    c.users().await.unwrap();
    assert_eq!(clock.now(), Duration::from_secs(2));
}
