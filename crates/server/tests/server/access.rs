//! Access control and the routes around the API: admin token, sessions, Origin check,
//! /healthz, /metrics, UI redirects.

use crate::common::{assert_problem, TestServer};
use reqwest::Method;
use serde_json::json;

/// Every API route, with a body that would be valid.
fn api_routes() -> Vec<(Method, &'static str)> {
    vec![
        (Method::GET, "/api/v1/credentials"),
        (Method::POST, "/api/v1/credentials"),
        (Method::GET, "/api/v1/credentials/Prod"),
        (Method::PATCH, "/api/v1/credentials/Prod"),
        (Method::DELETE, "/api/v1/credentials/Prod"),
        (Method::POST, "/api/v1/credentials/Prod/rotate"),
        (Method::POST, "/api/v1/credentials/Prod/test"),
        (Method::GET, "/api/v1/openapi.json"),
        (Method::GET, "/api/v1/streams"),
        (Method::GET, "/api/v1/sources"),
        (Method::POST, "/api/v1/sources"),
        (Method::GET, "/api/v1/sources/crm"),
        (Method::PATCH, "/api/v1/sources/crm"),
        (Method::DELETE, "/api/v1/sources/crm"),
        (Method::POST, "/api/v1/sources/crm/run"),
        (Method::GET, "/api/v1/runs"),
        (Method::GET, "/api/v1/runs/run_x"),
        (Method::POST, "/api/v1/runs/run_x/cancel"),
        (Method::GET, "/api/v1/runs/run_x/results"),
        (Method::POST, "/api/v1/destinations/uploads"),
        (Method::POST, "/api/v1/destinations/push"),
        (Method::GET, "/api/v1/destinations"),
        (Method::POST, "/api/v1/destinations"),
        (Method::GET, "/api/v1/destinations/Leads"),
        (Method::PATCH, "/api/v1/destinations/Leads"),
        (Method::PUT, "/api/v1/destinations/Leads"),
        (Method::DELETE, "/api/v1/destinations/Leads"),
        (Method::POST, "/api/v1/destinations/Leads/runs"),
        (Method::GET, "/api/v1/no-such-route"),
    ]
}

#[tokio::test]
async fn every_api_route_needs_the_admin_token() {
    let s = TestServer::start().await;
    s.create_credential("Prod", "tok_abcdefgh12345678", "https://driftapi.com")
        .await;
    s.store
        .add_source("crm", "Prod", &["users".to_string()])
        .unwrap();
    s.store
        .add_destination(
            "Leads",
            "drift",
            Some("Prod"),
            &json!({"object": "contacts", "key": "email", "mapping": ""}),
        )
        .unwrap();
    for (method, path) in api_routes() {
        let no_token = s
            .http
            .request(method.clone(), s.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            no_token.headers()["www-authenticate"],
            "Bearer realm=\"driftbridge\""
        );
        assert_problem(no_token, 401, "unauthorized").await;
        let wrong = s
            .http
            .request(method.clone(), s.url(path))
            .bearer_auth("dbt_wrong")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_problem(wrong, 401, "unauthorized").await;
    }
    assert!(
        s.store.credential("Prod").is_ok(),
        "unauthenticated requests changed nothing"
    );
    assert!(
        s.store.source("crm").is_ok(),
        "the data source is still there"
    );
    assert!(
        s.store.destination("Leads").is_ok(),
        "the data destination is still there"
    );
}

#[tokio::test]
async fn state_changing_requests_from_another_origin_are_refused() {
    let s = TestServer::start().await;
    let response = s
        .post("/api/v1/credentials")
        .header("origin", "https://evil.example")
        .json(&json!({"name": "Prod", "api_key": "tok_abcdefgh12345678", "save_untested": true}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 403, "foreign-origin").await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("https://evil.example"));
    assert!(s.store.list_credentials().unwrap().is_empty());

    let response = s
        .post("/api/v1/credentials")
        .header("origin", s.base.clone())
        .json(&json!({"name": "Prod", "api_key": "tok_abcdefgh12345678", "save_untested": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "same origin is accepted");
    let response = s
        .get("/api/v1/credentials")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "reads are not state-changing");
}

/// Log in through the form; returns the session cookie pair `name=value`.
pub(crate) async fn login(s: &TestServer) -> String {
    let response = s
        .http
        .post(s.url("/login"))
        .header("origin", s.base.clone())
        .form(&[("token", s.token.as_str()), ("next", "/credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/credentials");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains(&s.token),
        "the cookie is not the admin token"
    );
    cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn the_ui_logs_in_with_the_token_into_a_session_cookie() {
    let s = TestServer::start().await;
    let response = s.http.get(s.url("/credentials")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login?next=%2Fcredentials");

    let response = s
        .http
        .post(s.url("/login"))
        .form(&[("token", "dbt_wrong"), ("next", "/credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("That is not the admin token"));

    let cookie = login(&s).await;
    let page = s
        .http
        .get(s.url("/credentials"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Add Credential"));
    let api = s
        .http
        .get(s.url("/api/v1/credentials"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200, "the session works for the API too");

    let no_origin = s
        .http
        .post(s.url("/api/v1/credentials"))
        .header("cookie", &cookie)
        .json(&json!({"name": "Prod", "api_key": "tok_abcdefgh12345678", "save_untested": true}))
        .send()
        .await
        .unwrap();
    assert_problem(no_origin, 403, "foreign-origin").await;
    let same_origin = s
        .http
        .post(s.url("/api/v1/credentials"))
        .header("cookie", &cookie)
        .header("origin", s.base.clone())
        .json(&json!({"name": "Prod", "api_key": "tok_abcdefgh12345678", "save_untested": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 201);

    let out = s
        .http
        .post(s.url("/logout"))
        .header("cookie", &cookie)
        .header("origin", s.base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = s
        .http
        .get(s.url("/api/v1/credentials"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_problem(after, 401, "unauthorized").await;
}

#[tokio::test]
async fn login_follows_only_local_paths() {
    let s = TestServer::start().await;
    let response = s
        .http
        .post(s.url("/login"))
        .form(&[("token", s.token.as_str()), ("next", "//evil.example/x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["location"], "/");
}

#[tokio::test]
async fn the_admin_token_is_stored_hashed_and_can_be_regenerated() {
    let s = TestServer::start().await;
    let stored = s.store.admin_token().unwrap().expect("a stored token");
    assert_eq!(stored.hash.len(), 64, "a hex SHA-256");
    assert!(
        !stored.hash.contains(&s.token) && !format!("{stored:?}").contains(&stored.hash),
        "neither the token nor its hash is shown"
    );
    let db = std::fs::read(s.store.db_path()).unwrap();
    assert!(
        !db.windows(s.token.len()).any(|w| w == s.token.as_bytes()),
        "the metadata store holds the token in clear"
    );
    assert!(
        server::auth::ensure_admin_token(&s.store)
            .unwrap()
            .is_none(),
        "an existing token is kept"
    );

    let new = server::auth::regenerate_admin_token(&s.store).unwrap();
    let new = secrecy::ExposeSecret::expose_secret(&new).to_string();
    assert_ne!(new, s.token);
    let old = s.get("/api/v1/credentials").send().await.unwrap();
    assert_problem(old, 401, "unauthorized").await;
    let fresh = s
        .http
        .get(s.url("/api/v1/credentials"))
        .bearer_auth(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(
        fresh.status(),
        200,
        "the running server accepts the regenerated token"
    );
}

#[tokio::test]
async fn a_token_hash_left_by_an_older_version_moves_into_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let token = "dbt_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let legacy = dir.path().join(server::auth::LEGACY_TOKEN_HASH_FILE);
    std::fs::write(&legacy, format!("{hash}\n")).unwrap();
    let store = store::Store::open(dir.path()).unwrap();
    assert!(
        server::auth::ensure_admin_token(&store).unwrap().is_none(),
        "the old token is kept, no new one printed"
    );
    assert!(!legacy.exists(), "the old hash file is removed");
    let auth = server::auth::Auth::new(std::sync::Arc::new(store));
    assert_eq!(auth.check_token(token), Some(1));
}

#[tokio::test]
async fn healthz_needs_no_token_and_metrics_count_requests() {
    let s = TestServer::start().await;
    let health = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "ok"})
    );
    s.get("/api/v1/credentials").send().await.unwrap();
    let metrics = s.get("/metrics").send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("driftbridge_http_requests_total{")
                && l.contains("route=\"/api/v1/credentials\"")
                && l.contains("status=\"200\"")),
        "{text}"
    );
}

#[tokio::test]
async fn assets_are_served_from_the_binary() {
    let s = TestServer::start().await;
    let htmx = s
        .http
        .get(s.url("/assets/htmx.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(htmx.status(), 200);
    assert!(htmx.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(htmx.text().await.unwrap().contains("htmx"));
    let missing = s.http.get(s.url("/assets/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn ui_fragments_need_a_session_and_the_same_origin() {
    let s = TestServer::start().await;
    let anonymous = s
        .http
        .post(s.url("/ui/credentials"))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["hx-redirect"], "/login");
    let cookie = login(&s).await;
    let foreign = s
        .http
        .post(s.url("/ui/credentials"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .form(&[
            ("name", "Prod"),
            ("api_key", "tok_abcdefgh12345678"),
            ("base_url", "https://driftapi.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_problem(foreign, 403, "foreign-origin").await;
    assert!(s.store.list_credentials().unwrap().is_empty());
}
