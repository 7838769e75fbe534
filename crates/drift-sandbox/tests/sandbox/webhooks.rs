//! Webhook events of mutations (issue 22): what the sandbox sends, where it refuses to send,
//! and the duplicate fault.

use crate::common::{config, Sbx};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A receiver on 127.0.0.1 that keeps every event with its `X-Verification-Token` header.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let kept = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::Json<Value>| {
                let kept = kept.clone();
                async move {
                    let token = headers
                        .get("x-verification-token")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    kept.lock().unwrap().push((token, body.0));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Wait (up to 10 s) until `n` events arrived; returns them.
async fn events(seen: &Seen, n: usize) -> Vec<(Option<String>, Value)> {
    for _ in 0..100 {
        if seen.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn each_mutation_sends_the_matching_drift_event() {
    let (url, seen) = receiver().await;
    let sb = Sbx::default().await;
    let r = sb
        .admin_post("webhooks", json!({"url": url, "token": "tok-123456789"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.contains("tok-123456789"), "the token is not echoed");
    let changed = sb
        .admin_post(
            "mutate",
            json!({"new_conversations": 1, "new_messages": 2, "rename_contacts": 1}),
        )
        .await
        .body;
    let per = config().messages_per_conversation;
    let got = events(&seen, 1 + per + 2 + 1).await;
    assert_eq!(got.len(), 1 + per + 2 + 1, "{got:?}");
    for (header, e) in &got {
        assert_eq!(header.as_deref(), Some("tok-123456789"));
        assert_eq!(e["token"], "tok-123456789");
        assert!(e["orgId"].is_i64());
    }
    let of = |t: &str| -> Vec<Value> {
        got.iter()
            .filter(|(_, e)| e["type"] == t)
            .map(|(_, e)| e["data"].clone())
            .collect()
    };
    let conv = changed["new_conversations"][0].as_i64().unwrap();
    assert_eq!(of("new_conversation")[0]["conversationId"], conv);
    let messages = of("new_message");
    assert_eq!(messages.len(), per + 2);
    for id in changed["new_messages"].as_array().unwrap() {
        assert!(messages
            .iter()
            .any(|m| &m["id"] == id && m["createdAt"].is_i64()));
    }
    assert_eq!(
        messages
            .iter()
            .filter(|m| m["conversationId"] == conv)
            .count(),
        per
    );
    let updated = of("contact_updated");
    assert_eq!(updated[0]["endUserId"], changed["rename_contacts"][0]);
    assert_eq!(updated[0]["diff"][0]["name"], "attributes.name");
    assert_ne!(
        updated[0]["diff"][0]["previous"],
        updated[0]["diff"][0]["updated"]
    );
    let counters = sb.admin_get("webhooks").await;
    assert_eq!(counters["delivered"], got.len());
}

#[tokio::test]
async fn private_addresses_are_refused_and_null_stops_sending() {
    let sb = Sbx::default().await;
    for url in [
        "http://10.1.2.3/hook",
        "http://192.168.0.9:8080/x",
        "http://169.254.169.254/",
    ] {
        let r = sb
            .admin_post("webhooks", json!({"url": url, "token": "t-123456"}))
            .await;
        assert_eq!(r.status, 400, "{url}: {}", r.text);
        assert!(r.text.contains("url"), "{}", r.text);
    }
    let (url, seen) = receiver().await;
    sb.admin_post("webhooks", json!({"url": url, "token": "t-123456"}))
        .await;
    sb.admin_post("webhooks", json!({"url": null})).await;
    sb.admin_post("mutate", json!({"new_messages": 3})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seen.lock().unwrap().is_empty(), "no URL, no events");
}

#[tokio::test]
async fn the_duplicate_fault_delivers_every_event_twice() {
    let (url, seen) = receiver().await;
    let mut cfg = config();
    cfg.webhooks = drift_sandbox::webhooks::WebhookSettings {
        url: Some(url),
        token: "t-123456".into(),
        duplicates: 1.0,
        reorder: true,
    };
    let sb = Sbx::start(cfg).await;
    sb.admin_post("mutate", json!({"new_messages": 4})).await;
    let got = events(&seen, 8).await;
    assert_eq!(got.len(), 8);
    let mut ids: Vec<i64> = got
        .iter()
        .map(|(_, e)| e["data"]["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "4 events, each twice");
}
