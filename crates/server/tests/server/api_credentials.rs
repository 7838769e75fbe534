//! `/api/v1/credentials`: status codes, problem bodies, and the key never coming back.

use crate::common::{assert_problem, sandbox, TestServer};
use reqwest::Method;
use serde_json::json;

const KEY: &str = "tok_live_9f8e7d6c5b4a3f9a";

#[tokio::test]
async fn create_list_get_update_delete_never_return_the_key() {
    let s = TestServer::start().await;
    let response = s
        .post("/api/v1/credentials")
        .json(&json!({"name": "Prod", "description": "main org", "api_key": KEY, "save_untested": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let text = response.text().await.unwrap();
    assert!(!text.contains(KEY), "create answer holds the key: {text}");
    let created: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["key_mask"], "••••3f9a");
    assert_eq!(created["base_url"], "https://driftapi.com");
    assert_eq!(created["status"], "unverified");
    assert_eq!(created["rate_limit_per_min"], 600);
    assert!(created.get("api_key").is_none());
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, format!("/api/v1/credentials/{id}"));

    for path in [
        "/api/v1/credentials".to_string(),
        location.clone(),
        "/api/v1/credentials/prod".into(),
    ] {
        let response = s.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        let text = response.text().await.unwrap();
        assert!(!text.contains(KEY), "GET {path} holds the key");
        assert!(
            text.contains("Prod") && text.contains("••••3f9a"),
            "GET {path}: {text}"
        );
    }

    let response = s
        .req(Method::PATCH, &location)
        .json(&json!({"name": "Production", "description": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updated: serde_json::Value = response.json().await.unwrap();
    assert_eq!(updated["name"], "Production");
    assert_eq!(updated["description"], serde_json::Value::Null);
    assert_eq!(updated["id"], id);

    let response = s.req(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(response.status(), 204);
    let response = s.get(&location).send().await.unwrap();
    assert_problem(response, 404, "not-found").await;
    let list: Vec<serde_json::Value> = s
        .get("/api/v1/credentials")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list.is_empty());
}

#[tokio::test]
async fn invalid_fields_answer_422_with_every_field_error() {
    let s = TestServer::start().await;
    let response = s
        .post("/api/v1/credentials")
        .json(
            &json!({"name": "  ", "api_key": "two words", "base_url": "http://drift.example.com"}),
        )
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "api_key", "base_url"]);
    let messages = body["errors"].to_string();
    assert!(
        messages.contains("the credential name is empty"),
        "{messages}"
    );
    assert!(
        messages.contains("http:// is only allowed to a loopback host"),
        "{messages}"
    );
    assert!(
        !body.to_string().contains("two words"),
        "the key text is echoed: {body}"
    );

    let response = s
        .post("/api/v1/credentials")
        .json(&json!({"name": "x", "api_key": KEY, "rate_limit_per_min": 0}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "rate_limit_per_min");

    let response = s
        .post("/api/v1/credentials")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "api_key", "{body}");

    let response = s
        .post("/api/v1/credentials")
        .json(&json!({"name": "x", "api_key": KEY, "colour": "red"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "colour", "{body}");
    assert!(
        s.store.list_credentials().unwrap().is_empty(),
        "nothing saved on bad input"
    );
}

#[tokio::test]
async fn malformed_bodies_answer_400_415_and_413() {
    let s = TestServer::start().await;
    let response = s
        .post("/api/v1/credentials")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "bad-request").await;
    let response = s
        .post("/api/v1/credentials")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "unsupported-media-type").await;
    let huge = format!(
        "{{\"name\": \"{}\"}}",
        "x".repeat(server::BODY_LIMIT_BYTES + 10)
    );
    let response = s
        .post("/api/v1/credentials")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "payload-too-large").await;
}

#[tokio::test]
async fn duplicate_names_answer_409_case_insensitively() {
    let s = TestServer::start().await;
    s.create_credential("Prod", KEY, "https://driftapi.com")
        .await;
    let response = s
        .post("/api/v1/credentials")
        .json(&json!({"name": "PROD", "api_key": KEY, "save_untested": true}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 409, "duplicate-name").await;
    assert!(
        body["detail"].as_str().unwrap().contains("\"Prod\""),
        "{body}"
    );
    s.create_credential("Other", KEY, "https://driftapi.com")
        .await;
    let response = s
        .req(Method::PATCH, "/api/v1/credentials/other")
        .json(&json!({"name": "prod"}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 409, "duplicate-name").await;
}

#[tokio::test]
async fn update_rejects_a_key_and_unknown_credentials() {
    let s = TestServer::start().await;
    s.create_credential("Prod", KEY, "https://driftapi.com")
        .await;
    let response = s
        .req(Method::PATCH, "/api/v1/credentials/Prod")
        .json(&json!({"api_key": "new"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "api_key");
    for (method, path, body) in [
        (Method::GET, "/api/v1/credentials/nope", json!({})),
        (
            Method::PATCH,
            "/api/v1/credentials/nope",
            json!({"name": "x"}),
        ),
        (Method::DELETE, "/api/v1/credentials/nope", json!({})),
        (Method::POST, "/api/v1/credentials/nope/test", json!({})),
        (
            Method::POST,
            "/api/v1/credentials/cred_0000000000000000/rotate",
            json!({"api_key": KEY}),
        ),
    ] {
        let response = s
            .req(method.clone(), path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let body = assert_problem(response, 404, "not-found").await;
        assert!(
            body["detail"].as_str().unwrap().contains("credential"),
            "{method} {path}: {body}"
        );
    }
}

#[tokio::test]
async fn rotate_replaces_the_key_and_resets_the_status() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    let created = s
        .create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let id = created["id"].as_str().unwrap();
    let tested: serde_json::Value = s
        .post(&format!("/api/v1/credentials/{id}/test"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["credential"]["status"], "verified");

    let new_key = "tok_rotated_000011112222abcd";
    let response = s
        .post(&format!("/api/v1/credentials/{id}/rotate"))
        .json(&json!({"api_key": new_key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains(new_key));
    let rotated: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rotated["key_mask"], "••••abcd");
    assert_eq!(rotated["status"], "unverified");
    assert_eq!(rotated["org_id"], serde_json::Value::Null);
    let stored = s.store.credential_api_key("Sandbox").unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored), new_key);

    let response = s
        .post(&format!("/api/v1/credentials/{id}/rotate"))
        .json(&json!({"api_key": ""}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "api_key");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn delete_is_refused_while_a_data_source_uses_the_credential() {
    let s = TestServer::start().await;
    s.create_credential("Prod", KEY, "https://driftapi.com")
        .await;
    s.store
        .add_source("crm", "Prod", &["conversations".to_string()])
        .unwrap();
    let response = s
        .req(Method::DELETE, "/api/v1/credentials/Prod")
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 409, "in-use").await;
    assert_eq!(body["used_by"], json!(["data source \"crm\""]));
    assert!(
        s.store.credential("Prod").is_ok(),
        "still there after the 409"
    );
    let response = s
        .req(Method::DELETE, "/api/v1/credentials/Prod?force=true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(s.store.credential("Prod").is_err());
}

#[tokio::test]
async fn test_reports_each_step_and_stores_the_result() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let response = s
        .post("/api/v1/credentials/sandbox/test")
        .json(&json!({"for": ["conversations"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(&sandbox.token()),
        "test answer holds the key"
    );
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let steps: Vec<&str> = body["test"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "host_reached",
            "token_accepted",
            "org_id",
            "scopes",
            "expires",
            "least_privilege",
            "scope_coverage"
        ]
    );
    assert_eq!(body["test"]["status"], "verified");
    assert_eq!(body["test"]["needed_scopes"], json!(["conversation_read"]));
    assert!(
        body["test"]["extra_scopes"].as_array().unwrap().len() > 1,
        "a full-scope token has extra scopes"
    );
    assert_eq!(body["credential"]["status"], "verified");
    assert!(body["credential"]["org_id"].is_i64());
    assert!(body["credential"]["tested_at"].is_i64());

    let response = s
        .post("/api/v1/credentials/sandbox/test")
        .json(&json!({"for": ["everything"]}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "for");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_rejected_key_or_unreachable_host_marks_the_credential_failed() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential(
        "Wrong",
        "tok_not_the_sandbox_token_1234",
        &sandbox.base_url(),
    )
    .await;
    let body: serde_json::Value = s
        .post("/api/v1/credentials/Wrong/test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["test"]["status"], "failed");
    assert_eq!(body["test"]["host_reached"], true);
    assert_eq!(body["test"]["token_accepted"], false);
    assert!(
        body["test"]["error"]
            .as_str()
            .unwrap()
            .contains("rejected the API key"),
        "{body}"
    );
    assert_eq!(body["credential"]["status"], "failed");

    // A port nothing listens on: bind one, then drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.create_credential("Nowhere", KEY, &format!("http://127.0.0.1:{port}"))
        .await;
    let body: serde_json::Value = s
        .post("/api/v1/credentials/Nowhere/test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["test"]["host_reached"], false);
    assert_eq!(body["test"]["steps"][0]["outcome"], "failed");
    assert!(
        body["test"]["error"]
            .as_str()
            .unwrap()
            .contains("could not reach the host"),
        "{body}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_key_that_fails_its_test_is_not_saved_and_a_taken_name_names_the_rotate_route() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    let bad = "tok_not_the_sandbox_token_1234";
    let response = s
        .post("/api/v1/credentials")
        .json(&json!({"name": "Main", "api_key": bad, "base_url": sandbox.base_url()}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "api_key", "{problem}");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    for part in [
        "rejected the API key",
        "was not saved",
        "\"save_untested\": true",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert!(!problem.to_string().contains(bad));
    assert!(s.store.list_credentials().unwrap().is_empty());
    // The right key under the same name is accepted.
    let response = s
        .post("/api/v1/credentials")
        .json(&json!({"name": "Main", "api_key": sandbox.token(), "base_url": sandbox.base_url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    assert_eq!(created["status"], "verified");
    // Again: 409, saying how to rotate the key instead.
    let response = s
        .post("/api/v1/credentials")
        .json(&json!({"name": "MAIN", "api_key": sandbox.token(), "base_url": sandbox.base_url()}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 409, "duplicate-name").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("POST /api/v1/credentials/Main/rotate"),
        "{problem}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn openapi_document_lists_the_credential_routes() {
    let s = TestServer::start().await;
    let doc: serde_json::Value = s
        .get("/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/credentials",
        "/api/v1/credentials/{id}",
        "/api/v1/credentials/{id}/rotate",
        "/api/v1/credentials/{id}/test",
        "/api/v1/sources",
        "/api/v1/sources/{id}/run",
        "/api/v1/runs/{id}",
        "/api/v1/destinations/push",
        "/api/v1/runs/{id}/results",
    ] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    let create = &doc["components"]["schemas"]["CreateCredential"];
    assert_eq!(create["properties"]["api_key"]["format"], "password");
    assert_eq!(create["properties"]["api_key"]["minLength"], 16);
    // Every operation has its own operationId (OpenAPI requires it; clients and tools such as
    // schemathesis resolve links by it).
    let mut ids = std::collections::BTreeMap::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_string();
            if let Some(other) = ids.insert(id.clone(), format!("{method} {path}")) {
                panic!("operationId {id} is used by {other} and {method} {path}");
            }
        }
    }
    assert_eq!(
        ids["rotate_credential"],
        "post /api/v1/credentials/{id}/rotate"
    );
    assert!(doc["components"]["schemas"]["CredentialView"]["properties"]
        .get("api_key")
        .is_none());
}

#[tokio::test]
async fn an_oauth_credential_refreshes_its_expired_token_and_never_returns_a_secret() {
    use drift_sandbox::{
        DEFAULT_OAUTH_CLIENT_ID as CLIENT, DEFAULT_OAUTH_CLIENT_SECRET as SECRET,
        DEFAULT_REFRESH_TOKEN as REFRESH,
    };
    const EXPIRED: &str = "tok_api_EXPIRED_0123456789abcdef";
    let now = chrono::Utc::now().timestamp_millis();
    let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig {
        conversations: 3,
        tokens: vec![drift_sandbox::TokenSpec {
            token: EXPIRED.into(),
            scopes: vec!["conversation_read".into()],
            expires_at: Some(now - 60_000),
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    let s = TestServer::start().await;

    // Bad settings: one field error per value, nothing saved.
    let response = s
        .post("/api/v1/credentials")
        .json(
            &json!({"name": "oauth", "api_key": EXPIRED, "base_url": sandbox.base_url(),
                      "oauth": {"client_id": "", "client_secret": SECRET,
                                "refresh_token": "has space"}}),
        )
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 422, "validation").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["oauth.client_id", "oauth.refresh_token"]);
    assert!(!problem.to_string().contains(SECRET));
    assert!(s.store.list_credentials().unwrap().is_empty());

    let response = s
        .post("/api/v1/credentials")
        .json(
            &json!({"name": "oauth", "api_key": EXPIRED, "base_url": sandbox.base_url(),
                      "oauth": {"client_id": CLIENT, "client_secret": SECRET,
                                "refresh_token": REFRESH}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    for secret in [SECRET, REFRESH, EXPIRED] {
        assert!(!text.contains(secret), "{secret} returned: {text}");
    }
    let created: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(created["oauth_client_id"], CLIENT);
    // The test before saving refreshed the expired token and saved the new one with it.
    assert_eq!(created["status"], "verified", "{created}");
    let expired_mask = format!("••••{}", &EXPIRED[EXPIRED.len() - 4..]);
    assert_ne!(created["key_mask"], expired_mask.as_str());

    let response = s
        .post("/api/v1/credentials/oauth/test")
        .json(&json!({"for": ["conversations"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("sbx-oauth-"),
        "a minted token returned: {text}"
    );
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["test"]["status"], "verified", "{body}");
    assert_eq!(body["credential"]["status"], "verified");
    assert_eq!(body["credential"]["key_mask"], created["key_mask"]);
    assert!(body["credential"]["expires_at"].as_i64().unwrap() > now + 3_600_000);
    let stats: serde_json::Value = reqwest::get(format!("{}/__sandbox/stats", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["by_route"]["oauth.token"], 1);

    let doc: serde_json::Value = s
        .get("/api/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["components"]["schemas"]["OAuthSettingsBody"].is_object());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_overlay_saves_oauth_settings_and_the_tile_names_the_app() {
    use drift_sandbox::{
        DEFAULT_OAUTH_CLIENT_ID as CLIENT, DEFAULT_OAUTH_CLIENT_SECRET as SECRET,
        DEFAULT_REFRESH_TOKEN as REFRESH,
    };
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    let cookie = crate::access::login(&s).await;
    let post = |fields: Vec<(&'static str, String)>| {
        s.http
            .post(s.url("/ui/credentials"))
            .header("cookie", &cookie)
            .header("origin", s.base.clone())
            .form(&fields)
            .send()
    };
    let base = vec![
        ("name", "Via UI".to_string()),
        ("api_key", sandbox.token()),
        ("base_url", sandbox.base_url()),
    ];
    // Only part of the app's settings: each missing one is named, nothing is saved.
    let mut partial = base.clone();
    partial.push(("oauth_client_id", CLIENT.to_string()));
    let html = post(partial).await.unwrap().text().await.unwrap();
    assert!(
        html.contains(r#"id="err-oauth_client_secret""#)
            && html.contains("the OAuth client secret is empty"),
        "{html}"
    );
    assert!(html.contains("the OAuth refresh token is empty"), "{html}");
    assert!(s.store.list_credentials().unwrap().is_empty());

    let mut full = base;
    full.extend([
        ("oauth_client_id", CLIENT.to_string()),
        ("oauth_client_secret", SECRET.to_string()),
        ("oauth_refresh_token", REFRESH.to_string()),
    ]);
    let html = post(full).await.unwrap().text().await.unwrap();
    assert!(html.contains("Token refresh"), "{html}");
    assert!(html.contains(&format!("OAuth app {CLIENT}")), "{html}");
    for secret in [SECRET, REFRESH, sandbox.token().as_str()] {
        assert!(!html.contains(secret), "{secret} in the page");
    }
    let saved = s.store.credential_oauth("Via UI").unwrap().unwrap();
    assert_eq!(saved.client_id, CLIENT);
    sandbox.shutdown().await;
}

/// POST/PATCH `body` to `path` and return the 422 problem as text (asserting its shape).
async fn rejected(s: &TestServer, method: Method, path: &str, body: serde_json::Value) -> String {
    let response = s.req(method, path).json(&body).send().await.unwrap();
    assert_problem(response, 422, "validation")
        .await
        .to_string()
}

#[tokio::test]
async fn bodies_that_do_not_fit_never_echo_a_value_or_a_rust_type_and_name_the_full_path() {
    let s = TestServer::start().await;
    s.create_credential("Prod", KEY, "https://driftapi.com")
        .await;
    let creds = "/api/v1/credentials";
    let oauth_ok = json!({"client_id": "app", "client_secret": "sec-000000000000",
                          "refresh_token": "ref-000000000000"});
    for (method, path, body, field, value) in [
        (
            Method::POST,
            creds,
            json!({"name": "x", "api_key": KEY, "oauth": "SECRETVALUE123456789"}),
            "oauth",
            "SECRETVALUE123456789",
        ),
        (
            Method::POST,
            creds,
            json!({"name": "x", "api_key": KEY, "oauth": {"client_id": "app",
                   "client_secret": 12345678901234567_u64, "refresh_token": "r"}}),
            "oauth.client_secret",
            "12345678901234567",
        ),
        (
            Method::POST,
            creds,
            json!({"name": "x", "api_key": 12345678901234567890_u64}),
            "api_key",
            "12345678901234567890",
        ),
        (
            Method::POST,
            "/api/v1/credentials/Prod/rotate",
            json!({"api_key": KEY, "oauth": "SECRETVALUE123456789"}),
            "oauth",
            "SECRETVALUE123456789",
        ),
        (
            Method::PATCH,
            "/api/v1/credentials/Prod",
            json!({"rate_limit_per_min": "SECRETVALUE123456789"}),
            "rate_limit_per_min",
            "SECRETVALUE123456789",
        ),
    ] {
        let text = rejected(&s, method.clone(), path, body).await;
        let problem: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            problem["errors"][0]["field"], field,
            "{method} {path}: {text}"
        );
        assert!(
            !text.contains(value),
            "{method} {path} echoes the value: {text}"
        );
        for rust in ["OAuthSettingsBody", "struct ", "u32", "SecretString"] {
            assert!(!text.contains(rust), "{method} {path} names {rust}: {text}");
        }
    }
    let text = rejected(
        &s,
        Method::POST,
        creds,
        json!({"name": "x", "api_key": KEY, "oauth": "SECRETVALUE123456789"}),
    )
    .await;
    assert!(
        text.contains("invalid type: a string, expected an object with client_id, client_secret, refresh_token"),
        "{text}"
    );

    // A body that is not an object is refused: serde would read an array by position and,
    // on rotate, replace the key with whatever came first.
    for (method, path, body) in [
        (
            Method::POST,
            "/api/v1/credentials/Prod/rotate",
            json!(["SECRETARRAYKEY000000"]),
        ),
        (
            Method::POST,
            creds,
            json!([
                "arr",
                "desc",
                "https://driftapi.com",
                "SECRETARRAYKEY000000"
            ]),
        ),
        (
            Method::PATCH,
            "/api/v1/credentials/Prod",
            json!("SECRETARRAYKEY000000"),
        ),
    ] {
        let text = rejected(&s, method.clone(), path, body).await;
        let problem: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            problem["errors"][0]["field"], "body",
            "{method} {path}: {text}"
        );
        assert!(!text.contains("SECRETARRAYKEY"), "{text}");
    }
    let prod: serde_json::Value = s
        .get("/api/v1/credentials/Prod")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        prod["key_mask"]
            .as_str()
            .unwrap()
            .ends_with(&KEY[KEY.len() - 4..]),
        "the key was not replaced: {prod}"
    );

    // Nested fields are named by their full path.
    let mut missing = oauth_ok.clone();
    missing.as_object_mut().unwrap().remove("client_secret");
    let mut extra = oauth_ok.clone();
    extra["extra"] = json!(1);
    for (oauth, field) in [(missing, "oauth.client_secret"), (extra, "oauth.extra")] {
        let text = rejected(
            &s,
            Method::POST,
            creds,
            json!({"name": "x", "api_key": KEY, "oauth": oauth}),
        )
        .await;
        let problem: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{text}");
    }

    // PATCH cannot change the OAuth app; the answer says where it is changed.
    let text = rejected(
        &s,
        Method::PATCH,
        "/api/v1/credentials/Prod",
        json!({"oauth": oauth_ok}),
    )
    .await;
    assert!(
        text.contains("use POST /api/v1/credentials/{id}/rotate to change the key or OAuth app"),
        "{text}"
    );

    // The test body is read by hand; its errors leave values out too.
    let response = s
        .post("/api/v1/credentials/Prod/test")
        .json(&json!({"for": 12345678901234567_u64}))
        .send()
        .await
        .unwrap();
    let text = assert_problem(response, 422, "validation")
        .await
        .to_string();
    assert!(!text.contains("12345678901234567"), "{text}");
    assert!(s.store.credential("x").is_err(), "nothing saved");
}

#[tokio::test]
async fn rotate_keeps_the_oauth_app_when_absent_replaces_it_with_an_object_and_removes_it_with_null(
) {
    let s = TestServer::start().await;
    let response = s
        .post("/api/v1/credentials")
        .json(
            &json!({"name": "app", "api_key": KEY, "save_untested": true, "oauth": {"client_id": "app-1",
                      "client_secret": "sec-000000000001", "refresh_token": "ref-000000000001"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let rotate =
        |body: serde_json::Value| s.post("/api/v1/credentials/app/rotate").json(&body).send();
    let kept: serde_json::Value = rotate(json!({"api_key": "tok_rotated_000000000001"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kept["oauth_client_id"], "app-1", "{kept}");

    let response = rotate(json!({"api_key": "tok_rotated_000000000002", "oauth": {
        "client_id": "app-2", "client_secret": "sec-000000000002",
        "refresh_token": "ref-000000000002"}}))
    .await
    .unwrap();
    let text = response.text().await.unwrap();
    assert!(!text.contains("sec-000000000002") && !text.contains("ref-000000000002"));
    let replaced: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(replaced["oauth_client_id"], "app-2", "{replaced}");

    let removed: serde_json::Value =
        rotate(json!({"api_key": "tok_plain_0000000000000003", "oauth": null}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(
        removed["oauth_client_id"],
        serde_json::Value::Null,
        "{removed}"
    );
    assert_eq!(removed["key_mask"], "••••0003");
    assert!(s.store.credential_oauth("app").unwrap().is_none());
}

#[tokio::test]
async fn the_rotate_overlay_replaces_or_removes_the_oauth_app_and_never_shows_its_secrets() {
    use drift_sandbox::{
        DEFAULT_OAUTH_CLIENT_ID as CLIENT, DEFAULT_OAUTH_CLIENT_SECRET as SECRET,
        DEFAULT_REFRESH_TOKEN as REFRESH,
    };
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    let created = s
        .create_credential("Rot", &sandbox.token(), &sandbox.base_url())
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let cookie = crate::access::login(&s).await;
    let rotate_url = s.url(&format!("/ui/credentials/{id}/rotate"));
    let post = |fields: Vec<(&'static str, String)>| {
        s.http
            .post(&rotate_url)
            .header("cookie", &cookie)
            .header("origin", s.base.clone())
            .form(&fields)
            .send()
    };
    let form = || async {
        s.http
            .get(&rotate_url)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // No app yet: the overlay offers one, without the remove box.
    let html = form().await;
    assert!(
        html.contains(r#"name="oauth_client_secret" type="password""#),
        "{html}"
    );
    assert!(!html.contains("oauth_remove"), "{html}");

    let key = || ("api_key", sandbox.token());
    let html = post(vec![
        key(),
        ("oauth_client_id", CLIENT.to_string()),
        ("oauth_client_secret", SECRET.to_string()),
        ("oauth_refresh_token", REFRESH.to_string()),
    ])
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(html.contains("Rotated the key and OAuth app of"), "{html}");
    assert_eq!(
        s.store.credential_oauth("Rot").unwrap().unwrap().client_id,
        CLIENT
    );

    // With an app: the overlay names it and offers to remove it; no secret is rendered.
    let html = form().await;
    assert!(html.contains(&format!("OAuth app {CLIENT}")), "{html}");
    assert!(
        html.contains(r#"name="oauth_remove" type="checkbox""#),
        "{html}"
    );
    for secret in [SECRET, REFRESH] {
        assert!(!html.contains(secret), "{secret} in the overlay");
    }

    // Empty OAuth fields keep the app; both new settings and removal is refused.
    post(vec![key()]).await.unwrap();
    assert!(s.store.credential_oauth("Rot").unwrap().is_some());
    let html = post(vec![
        key(),
        ("oauth_remove", "on".into()),
        ("oauth_client_id", CLIENT.to_string()),
        ("oauth_client_secret", SECRET.to_string()),
        ("oauth_refresh_token", REFRESH.to_string()),
    ])
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        html.contains("either remove the OAuth app or fill in new settings"),
        "{html}"
    );
    assert!(!html.contains(SECRET) && !html.contains(REFRESH));

    let html = post(vec![key(), ("oauth_remove", "on".into())])
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("removed the OAuth app"), "{html}");
    assert!(s.store.credential_oauth("Rot").unwrap().is_none());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_wrong_client_secret_is_named_with_the_fix_in_the_ui_and_the_cli() {
    use drift_sandbox::{DEFAULT_OAUTH_CLIENT_ID as CLIENT, DEFAULT_REFRESH_TOKEN as REFRESH};
    const EXPIRED: &str = "tok_api_EXPIRED_0123456789abcdef";
    const WRONG: &str = "wrong-client-secret-000000";
    let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig {
        conversations: 1,
        tokens: vec![drift_sandbox::TokenSpec {
            token: EXPIRED.into(),
            scopes: vec!["conversation_read".into()],
            expires_at: Some(chrono::Utc::now().timestamp_millis() - 60_000),
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    let s = TestServer::start().await;
    let response = s
        .post("/api/v1/credentials")
        .json(
            &json!({"name": "oabad", "api_key": EXPIRED, "base_url": sandbox.base_url(), "save_untested": true,
                      "oauth": {"client_id": CLIENT, "client_secret": WRONG,
                                "refresh_token": REFRESH}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let text = s
        .post("/api/v1/credentials/oabad/test")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let error = body["test"]["error"].as_str().unwrap();
    for part in [
        "invalid_client",
        "the OAuth client id or client secret is wrong",
        "POST /api/v1/credentials/oabad/rotate",
    ] {
        assert!(error.contains(part), "{part}: {error}");
    }
    // The API names its route, not the CLI's command or the web UI's button.
    assert!(
        !error.contains("driftbridge credentials") && !error.contains("Rotate key"),
        "{error}"
    );
    assert!(!error.contains("authorize the app again"), "{error}");
    let stored = body["credential"]["last_error"].as_str().unwrap();
    assert!(
        stored.contains("invalid_client") && error.starts_with(stored),
        "{stored}"
    );
    for secret in [WRONG, REFRESH, EXPIRED] {
        assert!(!text.contains(secret), "{secret} returned: {text}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_key_shorter_than_16_characters_is_refused_by_the_api_and_the_ui() {
    const SHORT: &str = "tok_a1b2c3d4e5"; // 14 characters
    let fix = "Drift access tokens are much longer than 16 characters; paste the whole token";
    let s = TestServer::start().await;
    let response = s
        .post("/api/v1/credentials")
        .json(&json!({"name": "Short", "api_key": SHORT}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "api_key", "{body}");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains(fix),
        "{body}"
    );
    assert!(
        !body.to_string().contains(SHORT),
        "the key is echoed: {body}"
    );
    assert!(s.store.list_credentials().unwrap().is_empty());

    // Rotating to a short key leaves the saved key as it was.
    let created = s
        .create_credential("Prod", KEY, "https://driftapi.com")
        .await;
    let id = created["id"].as_str().unwrap();
    let response = s
        .post(&format!("/api/v1/credentials/{id}/rotate"))
        .json(&json!({"api_key": SHORT}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "api_key", "{body}");
    let stored = s.store.credential_api_key("Prod").unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored), KEY);

    // The overlay's form names the field with the same fix and saves nothing.
    let cookie = crate::access::login(&s).await;
    let html = s
        .http
        .post(s.url("/ui/credentials"))
        .header("cookie", &cookie)
        .header("origin", s.base.clone())
        .form(&[("name", "Via UI"), ("api_key", SHORT)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(r#"id="err-api_key""#) && html.contains(fix),
        "{html}"
    );
    assert!(!html.contains(SHORT), "the key is echoed in the page");
    assert_eq!(s.store.list_credentials().unwrap().len(), 1);
}

#[tokio::test]
async fn the_credential_tile_shows_the_shared_budgets_live_use() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Budgeted", &sandbox.token(), &sandbox.base_url())
        .await;
    let cookie = crate::access::login(&s).await;
    let page = s
        .http
        .get(s.url("/credentials"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Budget use"), "{page}");
    assert!(
        page.contains("0 requests in the last minute (all processes) of "),
        "{page}"
    );
    sandbox.shutdown().await;
}
