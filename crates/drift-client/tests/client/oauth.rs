//! OAuth access-token refresh (REFERENCE §2.2) against the sandbox's `POST /oauth2/token`.

use std::sync::{Arc, Mutex};

use drift_client::{Client, Error, ExposeSecret, OAuthRefresh, SecretString, TokenGrant};
use drift_sandbox::{
    OAuthAppSpec, SandboxConfig, SandboxHandle, TokenSpec, ALL_SCOPES, DEFAULT_OAUTH_CLIENT_ID,
    DEFAULT_OAUTH_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN,
};

const EXPIRED: &str = "oauth-access-token-that-expired-0001";

/// A sandbox whose OAuth app mints tokens living `ttl_ms`, plus an access token that
/// expired an hour ago.
async fn sandbox(ttl_ms: i64) -> SandboxHandle {
    let now = chrono_now_ms();
    let config = SandboxConfig {
        conversations: 20,
        rate_limit_per_min: 0,
        tokens: vec![TokenSpec {
            token: EXPIRED.into(),
            scopes: ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
            expires_at: Some(now - 3_600_000),
        }],
        oauth_apps: vec![OAuthAppSpec {
            access_ttl_ms: ttl_ms,
            ..OAuthAppSpec::default()
        }],
        ..SandboxConfig::default()
    };
    drift_sandbox::start(config).await.unwrap()
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every grant the client reported, in order.
type Seen = Arc<Mutex<Vec<TokenGrant>>>;

fn client(handle: &SandboxHandle, secret: &str, refresh: &str) -> (Client, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let client = Client::builder(&handle.base_url(), SecretString::from(EXPIRED))
        .rate_limit_per_min(60_000)
        .oauth_refresh(OAuthRefresh {
            client_id: DEFAULT_OAUTH_CLIENT_ID.into(),
            client_secret: SecretString::from(secret),
            refresh_token: SecretString::from(refresh),
            on_refresh: Arc::new(move |g: &TokenGrant| {
                sink.lock().unwrap().push(g.clone());
                Ok(())
            }),
            reload: None,
        })
        .build()
        .unwrap();
    (client, seen)
}

async fn token_requests(handle: &SandboxHandle) -> u64 {
    let stats: serde_json::Value = reqwest::get(format!("{}/__sandbox/stats", handle.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["by_route"]["oauth.token"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once_for_concurrent_requests_and_the_grant_reported() {
    let handle = sandbox(3_600_000).await;
    let (c, seen) = client(&handle, DEFAULT_OAUTH_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN);
    let calls = (0..8).map(|_| c.users());
    for users in futures::future::join_all(calls).await {
        assert!(!users.unwrap().is_empty());
    }
    assert_eq!(
        token_requests(&handle).await,
        1,
        "one exchange for 8 requests"
    );
    let grants = seen.lock().unwrap().clone();
    assert_eq!(grants.len(), 1);
    let grant = &grants[0];
    assert_ne!(grant.access_token.expose_secret(), EXPIRED);
    assert_ne!(
        grant.refresh_token.as_ref().unwrap().expose_secret(),
        DEFAULT_REFRESH_TOKEN,
        "the sandbox replaces the refresh token"
    );
    assert_eq!(grant.expires_in_s, Some(3_600));
    assert_eq!(grant.org_id, Some(drift_sandbox::ORG_ID));
    // token_info describes the new token, not the expired one.
    let info = c.token_info().await.unwrap();
    assert_eq!(info.expires_in_ms, 3_600_000, "{info:?}");
}

async fn route_requests(handle: &SandboxHandle, route: &str) -> u64 {
    let stats: serde_json::Value = reqwest::get(format!("{}/__sandbox/stats", handle.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["by_route"][route].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn token_info_with_an_expired_token_asks_about_the_refreshed_one_at_once() {
    let handle = sandbox(3_600_000).await;
    let (c, _) = client(&handle, DEFAULT_OAUTH_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN);
    let info = c.token_info().await.unwrap();
    assert_eq!(info.expires_in_ms, 3_600_000, "{info:?}");
    // One refused call (expired token), one exchange, one call naming the new token: no
    // call that names the expired token after the refresh.
    assert_eq!(token_requests(&handle).await, 1);
    assert_eq!(route_requests(&handle, "app.token_info").await, 2);
}

#[tokio::test]
async fn the_replaced_refresh_token_is_the_one_used_next_time() {
    let handle = sandbox(1_000).await;
    let (c, seen) = client(&handle, DEFAULT_OAUTH_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN);
    c.users().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    // The minted token has expired too; the original refresh token is retired, so this
    // works only with the refresh token of the first grant.
    c.users().await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(token_requests(&handle).await, 2);
}

#[tokio::test]
async fn a_refused_refresh_is_a_401_naming_the_fix_without_any_secret() {
    let handle = sandbox(3_600_000).await;
    for (secret, refresh, code) in [
        (
            "wrong-secret-000000000000",
            DEFAULT_REFRESH_TOKEN,
            "invalid_client",
        ),
        (
            DEFAULT_OAUTH_CLIENT_SECRET,
            "a-refresh-token-that-never-was",
            "invalid_grant",
        ),
    ] {
        let (c, seen) = client(&handle, secret, refresh);
        let before = token_requests(&handle).await;
        // Eight requests see the expired token; Drift is asked once, and all eight fail.
        let errors = futures::future::join_all((0..8).map(|_| c.users())).await;
        assert!(errors.iter().all(|r| r.is_err()));
        assert_eq!(
            token_requests(&handle).await,
            before + 1,
            "one refused exchange"
        );
        let err = c.users().await.unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
        let text = format!("{err} {err:?}");
        assert!(text.contains("oauth.token"), "{text}");
        assert!(text.contains(code), "{text}");
        let (kind, fix) = match code {
            "invalid_client" => (
                drift_client::oauth::Refusal::Client,
                "the OAuth client id or client secret is wrong",
            ),
            _ => (
                drift_client::oauth::Refusal::Grant,
                "authorize the app again",
            ),
        };
        assert!(text.contains(fix), "{text}");
        assert_eq!(drift_client::oauth::refusal_of(&err), Some(kind), "{text}");
        for secret in [secret, refresh, EXPIRED] {
            assert!(!text.contains(secret), "a secret leaked: {text}");
        }
        assert!(seen.lock().unwrap().is_empty());
        assert!(!format!("{c:?}").contains(secret));
    }
}

#[tokio::test]
async fn without_refresh_settings_a_401_stands() {
    let handle = sandbox(3_600_000).await;
    let c = Client::builder(&handle.base_url(), SecretString::from(EXPIRED))
        .build()
        .unwrap();
    let err = c.users().await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert_eq!(token_requests(&handle).await, 0);
}

#[tokio::test]
async fn tokens_another_process_refreshed_are_used_without_a_second_exchange() {
    let handle = sandbox(3_600_000).await;
    // Process A refreshes (and would store the new tokens).
    let (a, seen_a) = client(&handle, DEFAULT_OAUTH_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN);
    a.users().await.unwrap();
    let stored = seen_a.lock().unwrap()[0].clone();
    assert_eq!(token_requests(&handle).await, 1);
    // Process B started with the same, now expired, token and the retired refresh token;
    // it reads the store before exchanging.
    let reload_grant = stored.clone();
    let b = Client::builder(&handle.base_url(), SecretString::from(EXPIRED))
        .oauth_refresh(OAuthRefresh {
            client_id: DEFAULT_OAUTH_CLIENT_ID.into(),
            client_secret: SecretString::from(DEFAULT_OAUTH_CLIENT_SECRET),
            refresh_token: SecretString::from(DEFAULT_REFRESH_TOKEN),
            on_refresh: Arc::new(|_: &TokenGrant| Ok(())),
            reload: Some(Arc::new(move || {
                Some((
                    reload_grant.access_token.clone(),
                    reload_grant.refresh_token.clone(),
                ))
            })),
        })
        .build()
        .unwrap();
    assert!(!b.users().await.unwrap().is_empty());
    assert_eq!(token_requests(&handle).await, 1, "B did not exchange again");
}
