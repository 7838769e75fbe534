//! Token table: 401 / 403 / token_info (REFERENCE §2.3, §5).

use crate::common::{config, Sbx};
use drift_sandbox::{SandboxConfig, TokenSpec};
use reqwest::Method;
use serde_json::json;

fn with_tokens() -> SandboxConfig {
    SandboxConfig {
        limited_tokens: vec![(
            "ro-conv-token-1234567890".into(),
            vec!["conversation_read".into()],
        )],
        tokens: vec![
            TokenSpec {
                token: "expired-token-abcdefghijk".into(),
                scopes: vec!["conversation_read".into()],
                expires_at: Some(1),
            },
            TokenSpec {
                token: "oauth-token-abcdefghijklm".into(),
                scopes: vec!["user_read".into()],
                expires_at: Some(i64::MAX / 2),
            },
        ],
        ..config()
    }
}

#[tokio::test]
async fn unknown_missing_and_expired_tokens_get_drifts_401() {
    let s = Sbx::start(with_tokens()).await;
    for token in [Some("not-a-token"), None, Some("expired-token-abcdefghijk")] {
        let r = s
            .send_as(token, Method::GET, "/conversations/list", None)
            .await;
        assert_eq!(r.status, 401, "{token:?}");
        assert_eq!(r.error_type(), "authentication_error");
        assert_eq!(
            r.body["error"]["message"],
            "The access token is invalid or has expired"
        );
    }
}

#[tokio::test]
async fn missing_scope_is_403_naming_the_scope() {
    let s = Sbx::start(with_tokens()).await;
    let ok = s
        .get_as("ro-conv-token-1234567890", "/conversations/list")
        .await;
    assert_eq!(ok.status, 200);
    let r = s.get_as("ro-conv-token-1234567890", "/users/list").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.error_type(), "forbidden");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("user_read"),
        "{}",
        r.text
    );
    let r = s
        .get_as("ro-conv-token-1234567890", "/contacts/attributes")
        .await;
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("all_contact_read"));
}

#[tokio::test]
async fn token_info_describes_the_token_bare() {
    let s = Sbx::start(with_tokens()).await;
    let full = s.handle.token();
    let r = s
        .post("/app/token_info", json!({"access_token": full}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("data").is_none(), "token_info is not wrapped");
    assert_eq!(r.body["authenticated_userid"], "orgId:104455");
    assert_eq!(r.body["expires_in"], 0);
    assert_eq!(r.body["token_type"], "bearer");
    let scopes: Vec<&str> = r.body["scope"].as_str().unwrap().split(' ').collect();
    assert!(scopes.contains(&"conversation_read") && scopes.contains(&"account_write"));

    // the limited token, named in the body with the peer's camelCase spelling
    let r = s
        .post(
            "/app/token_info",
            json!({"accessToken": "ro-conv-token-1234567890"}),
        )
        .await;
    assert_eq!(r.body["scope"], "conversation_read");

    // an OAuth-style token reports the time left, in ms
    let r = s
        .post(
            "/app/token_info",
            json!({"access_token": "oauth-token-abcdefghijklm"}),
        )
        .await;
    assert!(
        r.body["expires_in"].as_i64().is_some_and(|n| n > 0),
        "{}",
        r.text
    );

    // no body: the bearer token is described
    let r = s
        .send_as(
            Some("ro-conv-token-1234567890"),
            Method::POST,
            "/app/token_info",
            None,
        )
        .await;
    assert_eq!(r.body["scope"], "conversation_read");
}

#[tokio::test]
async fn token_info_bogus_body_token_is_400_bad_bearer_is_401() {
    let s = Sbx::default().await;
    let r = s
        .post("/app/token_info", json!({"access_token": "bogus"}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "validation_error");
    let r = s
        .send_as(
            Some("bogus"),
            Method::POST,
            "/app/token_info",
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn custom_full_scope_token_replaces_the_default() {
    let s = Sbx::start(SandboxConfig {
        token: "my-own-token-000000000000".into(),
        ..config()
    })
    .await;
    assert_eq!(s.handle.token(), "my-own-token-000000000000");
    assert_eq!(s.get("/users/list").await.status, 200);
    let r = s.get_as(drift_sandbox::DEFAULT_TOKEN, "/users/list").await;
    assert_eq!(r.status, 401);
}

#[test]
fn debug_output_masks_every_token() {
    let cfg = with_tokens();
    let shown = format!("{cfg:?}");
    for secret in [
        drift_sandbox::DEFAULT_TOKEN,
        "ro-conv-token-1234567890",
        "expired-token-abcdefghijk",
        "oauth-token-abcdefghijklm",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert!(
        shown.contains("****0000"),
        "masked form keeps the last 4: {shown}"
    );
}
