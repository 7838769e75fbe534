//! Rate budget, server hints and the retry policy.

use std::time::{Duration, SystemTime};

use drift_client::{Client, Error, SecretString};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{builder, client, json, TOKEN};

fn ok_users() -> ResponseTemplate {
    json(json!({"data": [{"id": 1}]}))
}

async fn mount_once(server: &MockServer, p: &str, resp: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(resp)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
}

async fn mount_ok(server: &MockServer, p: &str) {
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(ok_users())
        .with_priority(2)
        .mount(server)
        .await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_waited_on_tokio_time_and_counted() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        "/users/list",
        ResponseTemplate::new(429).insert_header("retry-after", "2"),
    )
    .await;
    mount_ok(&server, "/users/list").await;
    // Default clock (tokio's, paused here); no timeout timer may fire during socket reads.
    let c = Client::builder(&server.uri(), SecretString::from(TOKEN))
        .no_timeout()
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let users = c.users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    let m = c.metrics();
    assert_eq!(m.rate_limited, 1);
    assert_eq!(m.retries, 1);
    assert_eq!(m.requests, 2);
    assert!(m.wait_time >= Duration::from_secs(2), "{m:?}");
}

#[tokio::test]
async fn retry_after_as_http_date_is_honoured() {
    let server = MockServer::start().await;
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(5));
    mount_once(
        &server,
        "/users/list",
        ResponseTemplate::new(429).insert_header("retry-after", when.as_str()),
    )
    .await;
    mount_ok(&server, "/users/list").await;
    let (b, clock) = builder(&server);
    let c = b.build().unwrap();
    c.users().await.unwrap();
    let m = c.metrics();
    assert_eq!(m.rate_limited, 1);
    assert_eq!(m.retries, 1);
    // HTTP dates have one-second resolution: the wait is between 3 and 5 seconds.
    assert!(m.wait_time >= Duration::from_secs(3), "{m:?}");
    assert!(m.wait_time <= Duration::from_secs(5), "{m:?}");
    assert!(drift_client::clock::Clock::now(&*clock) >= Duration::from_secs(3));
}

#[tokio::test]
async fn server_error_503_with_retry_after_is_retried_after_that_wait() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        "/users/list",
        ResponseTemplate::new(503).insert_header("retry-after", "7"),
    )
    .await;
    mount_ok(&server, "/users/list").await;
    let c = client(&server);
    assert_eq!(c.users().await.unwrap().len(), 1);
    let m = c.metrics();
    assert_eq!(m.retries, 1);
    assert_eq!(m.rate_limited, 0);
    assert!(m.wait_time >= Duration::from_secs(7), "{m:?}");
    // Retry-After is the wait, not multiplied by a backoff factor.
    assert!(m.wait_time < Duration::from_secs(8), "{m:?}");
}

#[tokio::test]
async fn retry_after_beyond_the_cap_gives_rate_limited_without_sleeping() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "86400"))
        .expect(1)
        .mount(&server)
        .await;
    let (b, clock) = builder(&server);
    let c = b.max_retry_wait(Duration::from_secs(60)).build().unwrap();
    let err = c.users().await.unwrap_err();
    match err {
        Error::RateLimited { retry_after } => {
            assert_eq!(retry_after, Some(Duration::from_secs(86400)))
        }
        other => panic!("expected RateLimited, got {other}"),
    }
    assert_eq!(c.metrics().wait_time, Duration::ZERO);
    assert_eq!(drift_client::clock::Clock::now(&*clock), Duration::ZERO);
    // The gate now holds every later request too, without sleeping through it.
    assert!(matches!(c.users().await, Err(Error::RateLimited { .. })));
    assert!(c.rate_budget().gate_remaining() > Duration::from_secs(80000));
    server.verify().await;
}

#[tokio::test]
async fn rate_limit_without_hint_backs_off_then_gives_up() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(ResponseTemplate::new(429))
        .expect(4)
        .mount(&server)
        .await;
    let (b, _clock) = builder(&server);
    let c = b.max_retries(3).build().unwrap();
    let err = c.users().await.unwrap_err();
    assert!(
        matches!(err, Error::RateLimited { retry_after: None }),
        "{err}"
    );
    let m = c.metrics();
    assert_eq!(m.rate_limited, 4);
    assert_eq!(m.retries, 3);
    assert!(m.wait_time > Duration::ZERO);
    server.verify().await;
}

#[tokio::test]
async fn unauthorized_and_forbidden_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"type": "authentication_error",
            "message": "The access token is invalid or has expired"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/teams/org"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"error": {"type": "forbidden", "message": "no"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.users().await.unwrap_err();
    assert!(
        matches!(&e, Error::Unauthorized { message, .. } if message.contains("invalid or has expired")),
        "{e}"
    );
    assert!(e.is_auth());
    let e = c.teams().await.unwrap_err();
    assert!(
        matches!(&e, Error::Forbidden { missing_scope: Some(s), .. } if s == "user_read"),
        "{e}"
    );
    assert_eq!(c.metrics().retries, 0);
    server.verify().await;
}

#[tokio::test]
async fn server_errors_are_retried_for_reads() {
    let server = MockServer::start().await;
    mount_once(&server, "/users/list", ResponseTemplate::new(502)).await;
    mount_ok(&server, "/users/list").await;
    let c = client(&server);
    assert_eq!(c.users().await.unwrap().len(), 1);
    assert_eq!(c.metrics().retries, 1);
}

#[tokio::test]
async fn timeouts_are_retried_for_reads() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        "/users/list",
        ok_users().set_delay(Duration::from_secs(3)),
    )
    .await;
    mount_ok(&server, "/users/list").await;
    let (b, _clock) = builder(&server);
    let c = b.timeout(Duration::from_millis(200)).build().unwrap();
    assert_eq!(c.users().await.unwrap().len(), 1);
    assert_eq!(c.metrics().retries, 1);
}

#[tokio::test]
async fn timeout_surfaces_after_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(ok_users().set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let (b, _clock) = builder(&server);
    let c = b
        .timeout(Duration::from_millis(100))
        .max_retries(1)
        .build()
        .unwrap();
    let e = c.users().await.unwrap_err();
    assert!(
        matches!(&e, Error::Timeout { endpoint } if endpoint == "users.list"),
        "{e}"
    );
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    // A port that was open and is now closed: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let clock = drift_client::clock::ManualClock::new();
    let c = Client::builder(&uri, SecretString::from(TOKEN))
        .clock(clock)
        .max_retries(2)
        .build()
        .unwrap();
    let e = c.users().await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e}");
    assert_eq!(c.metrics().retries, 2);
    assert_eq!(c.metrics().requests, 3);
}

#[tokio::test]
async fn remaining_zero_with_reset_holds_the_next_request() {
    for (remaining, reset) in [
        ("x-ratelimit-remaining", "x-ratelimit-reset"),
        ("ratelimit-remaining", "ratelimit-reset"),
        ("x-ratelimit-remaining-minute", "x-ratelimit-reset"),
    ] {
        let server = MockServer::start().await;
        mount_once(
            &server,
            "/users/list",
            ok_users()
                .insert_header(remaining, "0")
                .insert_header(reset, "4"),
        )
        .await;
        mount_ok(&server, "/users/list").await;
        let (b, clock) = builder(&server);
        let c = b.build().unwrap();
        c.users().await.unwrap();
        assert_eq!(c.metrics().wait_time, Duration::ZERO, "{remaining}");
        c.users().await.unwrap();
        assert!(
            c.metrics().wait_time >= Duration::from_secs(4),
            "{remaining}: {:?}",
            c.metrics()
        );
        assert!(drift_client::clock::Clock::now(&*clock) >= Duration::from_secs(4));
        assert_eq!(c.metrics().retries, 0);
    }
}

#[tokio::test]
async fn pacing_spreads_requests_at_the_configured_rate() {
    let server = MockServer::start().await;
    mount_ok(&server, "/users/list").await;
    let (b, clock) = builder(&server);
    // 600/min = one request per 100 ms after a burst of 3.
    let c = b.rate_limit_per_min(600).burst(3).build().unwrap();
    for _ in 0..13 {
        c.users().await.unwrap();
    }
    let elapsed = drift_client::clock::Clock::now(&*clock);
    assert!(elapsed >= Duration::from_millis(990), "{elapsed:?}");
    assert!(elapsed <= Duration::from_millis(1100), "{elapsed:?}");
    assert_eq!(c.metrics().waits, 10);
    assert_eq!(c.metrics().requests, 13);
}

#[tokio::test]
async fn reports_have_their_own_sixty_per_minute_budget() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/reports/conversations"))
        .respond_with(json(json!({"count": 0, "data": []})))
        .mount(&server)
        .await;
    mount_ok(&server, "/users/list").await;
    let (b, clock) = builder(&server);
    let c = b.rate_limit_per_min(6000).build().unwrap();
    for _ in 0..3 {
        c.reports_conversations(&json!({"metrics": []}))
            .await
            .unwrap();
    }
    // 60/min: one per second, no burst.
    let after_reports = drift_client::clock::Clock::now(&*clock);
    assert!(after_reports >= Duration::from_secs(2), "{after_reports:?}");
    // The main lane is not held back by the reports lane.
    c.users().await.unwrap();
    assert_eq!(drift_client::clock::Clock::now(&*clock), after_reports);
}

#[tokio::test]
async fn clones_share_one_budget_across_tasks() {
    let server = MockServer::start().await;
    mount_ok(&server, "/users/list").await;
    let c = client(&server);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.users().await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().len(), 1);
    }
    assert_eq!(c.metrics().requests, 20);
    // 20 requests on one 600/min budget with a burst of 3 had to wait for pacing.
    assert!(c.metrics().waits >= 17, "{:?}", c.metrics());
}

#[tokio::test]
async fn a_shared_budget_spans_clients() {
    let server = MockServer::start().await;
    mount_ok(&server, "/users/list").await;
    let budget =
        drift_client::RateBudget::with_clock(600, 1, drift_client::clock::ManualClock::new())
            .unwrap();
    let a = Client::builder(&server.uri(), SecretString::from(TOKEN))
        .rate_budget(budget.clone())
        .build()
        .unwrap();
    let b = Client::builder(&server.uri(), SecretString::from(TOKEN))
        .rate_budget(budget.clone())
        .build()
        .unwrap();
    a.users().await.unwrap();
    b.users().await.unwrap();
    assert_eq!(budget.snapshot().requests, 2);
    assert_eq!(a.metrics(), b.metrics());
    assert_eq!(
        budget.snapshot().waits,
        1,
        "the second client waited for the first one's slot"
    );
}

#[tokio::test]
async fn a_body_cut_short_is_retried_for_reads_but_a_wrong_shape_is_not() {
    let server = MockServer::start().await;
    mount_once(
        &server,
        "/users/list",
        ResponseTemplate::new(200).set_body_raw("{\"data\": [{\"id\": 1", "application/json"),
    )
    .await;
    mount_ok(&server, "/users/list").await;
    Mock::given(method("GET"))
        .and(path("/teams/org"))
        .respond_with(json(json!({"data": "not a list"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    assert_eq!(c.users().await.unwrap().len(), 1);
    assert_eq!(c.metrics().retries, 1);
    assert!(matches!(c.teams().await, Err(Error::Decode { .. })));
    assert_eq!(c.metrics().retries, 1, "a wrong shape is not retried");
    server.verify().await;
}

#[tokio::test]
async fn a_stop_ends_the_wait_for_the_budget_and_the_request_is_not_sent() {
    let server = MockServer::start().await;
    mount_ok(&server, "/users/list").await;
    let c = Client::builder(&server.uri(), SecretString::from(TOKEN))
        .rate_limit_per_min(1)
        .burst(1)
        .build()
        .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let c = c.with_stop(rx);
    c.users().await.unwrap();
    // The next request waits a minute for the budget; the stop ends the wait at once.
    let waiting = tokio::spawn({
        let c = c.clone();
        async move { c.users().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped_at = std::time::Instant::now();
    tx.send_replace(true);
    let res = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the stop ends the wait")
        .unwrap();
    assert!(matches!(res, Err(Error::Stopped { .. })), "{res:?}");
    assert!(stopped_at.elapsed() < Duration::from_secs(2));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "not sent"
    );
    assert!(matches!(c.users().await, Err(Error::Stopped { .. })));
}
