//! `/api/v1/alerts`: notification channels over the API (the URL write-only and masked,
//! internal addresses refused without `--allow-private-base-urls`, a test alert delivered),
//! and a run started by the API alerting its channel.

use crate::common::{assert_problem, TestServer};
use axum::extract::State;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// A webhook receiver on 127.0.0.1 keeping every JSON body.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook/s3cret", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let app =
        axum::Router::new()
            .fallback(
                |State(kept): State<Arc<Mutex<Vec<Value>>>>,
                 axum::Json(body): axum::Json<Value>| async move {
                    kept.lock().unwrap().push(body);
                    "ok"
                },
            )
            .with_state(bodies.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

#[tokio::test]
async fn channels_are_created_masked_tested_listed_and_deleted() {
    let s = TestServer::start().await;
    let (url, bodies) = receiver().await;
    let created = s
        .post("/api/v1/alerts")
        .json(&json!({"name": "ops", "url": url, "format": "slack", "events": ["run_failed"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    assert!(
        body["url_mask"].as_str().unwrap().ends_with("/••••"),
        "{body}"
    );
    assert!(
        !body.to_string().contains("s3cret"),
        "the URL is write-only: {body}"
    );
    assert_eq!(body["events"], json!(["run_failed"]));
    let listed = s.get_json("/api/v1/alerts").await;
    assert_eq!(listed[0]["name"], "ops");
    assert!(!listed.to_string().contains("s3cret"));

    let tested = s.post_json("/api/v1/alerts/ops/test").await;
    assert_eq!(tested["delivered"], true);
    let got = bodies.lock().unwrap().clone();
    assert!(
        got[0]["text"].as_str().unwrap().contains("test alert"),
        "{got:?}"
    );

    let dup = s
        .post("/api/v1/alerts")
        .json(&json!({"name": "OPS", "url": "https://example.com/h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    let bad = s
        .post("/api/v1/alerts")
        .json(&json!({"name": "x", "url": "https://example.com/h", "events": ["nope"], "format": "xml"}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(bad, 422, "validation").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["format", "events"], "{problem}");

    let gone = s
        .req(reqwest::Method::DELETE, "/api/v1/alerts/ops")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert_eq!(s.get_json("/api/v1/alerts").await, json!([]));
    let doc = s.get_json("/api/v1/openapi.json").await;
    assert!(doc["paths"]["/api/v1/alerts/{id}/test"]["post"].is_object());
}

#[tokio::test]
async fn internal_webhook_addresses_are_refused_without_the_flag() {
    let s = TestServer::start_with(false).await;
    for url in [
        "http://127.0.0.1:9/h",
        "http://169.254.169.254/latest",
        "http://localhost/h",
    ] {
        let refused = s
            .post("/api/v1/alerts")
            .json(&json!({"name": "x", "url": url}))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(refused, 422, "validation").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{problem}");
        assert!(
            problem.to_string().contains("--allow-private-base-urls"),
            "{problem}"
        );
    }
    assert_eq!(s.get_json("/api/v1/alerts").await, json!([]));
}

#[tokio::test]
async fn the_alerts_page_adds_tests_and_deletes_a_channel() {
    let s = TestServer::start().await;
    let (url, bodies) = receiver().await;
    let cookie = crate::access::login(&s).await;
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        s.http
            .post(s.url(path))
            .header("cookie", cookie.clone())
            .header("origin", s.base.clone())
            .form(&form)
            .send()
    };
    let html = post(
        "/alerts",
        vec![
            ("name", "ops".into()),
            ("url", "nope".into()),
            ("format", "json".into()),
            ("events", "run_failed".into()),
        ],
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        html.contains("id=\"alert-url-error\""),
        "the URL error is shown at its field"
    );
    let html = post(
        "/alerts",
        vec![
            ("name", "ops".into()),
            ("url", url.clone()),
            ("format", "json".into()),
            ("events", "run_failed".into()),
        ],
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        html.contains("Channel &#34;ops&#34; added") || html.contains("Channel \"ops\" added"),
        "{html}"
    );
    assert!(!html.contains("s3cret"), "the URL is not shown");
    let id = s.get_json("/api/v1/alerts").await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let html = post(&format!("/alerts/{id}/test"), vec![])
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Test alert delivered"), "{html}");
    assert_eq!(bodies.lock().unwrap()[0]["event"], "test");
    post(&format!("/alerts/{id}/delete"), vec![]).await.unwrap();
    assert_eq!(s.get_json("/api/v1/alerts").await, json!([]));
}
