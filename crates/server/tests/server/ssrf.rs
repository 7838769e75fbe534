//! Host pinning / SSRF (issue 10): without `--allow-private-base-urls` the server never sends
//! a request, so never a token, to a loopback, private, link-local or other internal address;
//! literal ones are refused at create/update (API and web UI), and credentials stored some
//! other way (the CLI) fail when tested, run or pushed, before anything is sent.

use crate::common::{assert_problem, sandbox, TestServer};
use axum::http::Uri;
use secrecy::SecretString;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use store::NewCredential;

const FIX: &str = "--allow-private-base-urls";

/// A server on 127.0.0.1 that counts every request it receives (answers 200 `{}`).
struct Recorder {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move |_uri: Uri| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({}))
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Recorder { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Store a credential directly (as the CLI would), bypassing the API's checks.
fn store_credential(s: &TestServer, name: &str, base_url: &str) {
    s.store
        .add_credential(&NewCredential {
            name: name.into(),
            description: None,
            base_url: Some(base_url.into()),
            api_key: SecretString::from("tok_ssrf_canary_1234567890"),
            rate_limit_per_min: 600,
        })
        .unwrap();
}

/// The problem's `base_url` error message (asserting there is one).
async fn base_url_error(response: reqwest::Response) -> String {
    let body = assert_problem(response, 422, "validation").await;
    let errors = body["errors"].as_array().unwrap();
    let error = errors
        .iter()
        .find(|e| e["field"] == "base_url")
        .unwrap_or_else(|| panic!("a base_url error: {body}"));
    error["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn internal_base_urls_are_refused_at_create_and_update() {
    let s = TestServer::start_with(false).await;
    let rec = Recorder::start().await;
    let port = rec.port;
    for url in [
        "http://169.254.169.254".to_string(),
        "https://169.254.169.254/latest/meta-data".to_string(),
        "http://10.0.0.1".to_string(),
        "https://192.168.1.5:8443".to_string(),
        "https://[fd00::1]".to_string(),
        "https://[::ffff:10.0.0.1]".to_string(),
        format!("http://[::1]:{port}"),
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let response = s
            .post("/api/v1/credentials")
            .json(&json!({"name": "c", "api_key": "tok_abcdefgh12345678", "base_url": url}))
            .send()
            .await
            .unwrap();
        let message = base_url_error(response).await;
        assert!(message.contains(FIX), "{url}: {message}");
        assert!(message.contains("internal address"), "{url}: {message}");
    }
    assert!(s.store.list_credentials().unwrap().is_empty());

    // Update: a public credential cannot be moved onto an internal address.
    s.create_credential("Prod", "tok_abcdefgh12345678", "https://drift.example.com")
        .await;
    let response = s
        .req(reqwest::Method::PATCH, "/api/v1/credentials/Prod")
        .json(&json!({"base_url": format!("http://127.0.0.1:{port}")}))
        .send()
        .await
        .unwrap();
    assert!(base_url_error(response).await.contains(FIX));
    assert_eq!(
        s.store.credential("Prod").unwrap().base_url,
        "https://drift.example.com"
    );
    assert_eq!(rec.hits(), 0);
}

#[tokio::test]
async fn the_web_ui_overlay_names_the_flag() {
    let s = TestServer::start_with(false).await;
    let cookie = crate::access::login(&s).await;
    for path in [
        "/ui/credentials/check",
        "/ui/credentials/probe",
        "/ui/credentials",
    ] {
        let html = s
            .http
            .post(s.url(path))
            .header("cookie", &cookie)
            .header("origin", s.base.clone())
            .form(&[
                ("name", "Meta"),
                ("api_key", "tok_abcdefgh12345678"),
                ("base_url", "http://169.254.169.254"),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains(FIX), "{path}: {html}");
    }
    assert!(s.store.list_credentials().unwrap().is_empty());
}

#[tokio::test]
async fn stored_internal_credentials_are_never_contacted() {
    let s = TestServer::start_with(false).await;
    let rec = Recorder::start().await;
    store_credential(&s, "literal", &format!("http://127.0.0.1:{}", rec.port));
    // A name is checked on its resolved addresses when the server connects.
    store_credential(&s, "named", &format!("http://localhost:{}", rec.port));
    for name in ["literal", "named"] {
        let tested: serde_json::Value = s
            .post(&format!("/api/v1/credentials/{name}/test"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(tested["test"]["status"], "failed", "{tested}");
        let error = tested["test"]["error"].as_str().unwrap();
        assert!(error.contains(FIX), "{name}: {error}");
        // A refused base URL is the credential's configuration failing (check.rs): it is
        // marked failed with the fix, as a 401/403 is; other failures leave it as it was.
        assert_eq!(tested["credential"]["status"], "failed");
    }
    let sink = format!(
        "sqlite:{}",
        s.store.data_dir().join("sinks").join("out.db").display()
    );
    for name in ["literal", "named"] {
        s.store
            .create_source(
                &format!("src-{name}"),
                name,
                &["users".to_string()],
                &json!({"mode": "full", "sink": sink}),
            )
            .unwrap();
    }
    // A literal address (and `localhost`) cannot even start a run.
    let response = s
        .post("/api/v1/sources/src-literal/run")
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "credential", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains(FIX));
    let response = s
        .post("/api/v1/sources/src-named/run")
        .send()
        .await
        .unwrap();
    assert_problem(response, 422, "validation").await;
    // Creating a source tests the credential first: refused the same way.
    let response = s
        .post("/api/v1/sources")
        .json(
            &json!({"name": "again", "credential": "literal", "streams": ["users"],
            "mode": "full", "sink": sink}),
        )
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert!(body.to_string().contains(FIX), "{body}");
    // Push into Drift with the stored credential.
    let upload: serde_json::Value = s
        .post("/api/v1/destinations/uploads")
        .header("content-type", "text/csv")
        .body("email,name\nada@example.test,Ada\n")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = s
        .post("/api/v1/destinations/push")
        .json(
            &json!({"credential": "literal", "object": "contacts", "key": "email",
            "upload": upload["upload"]}),
        )
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert!(body.to_string().contains(FIX), "{body}");
    assert_eq!(rec.hits(), 0, "the internal host received requests");
}

#[tokio::test]
async fn with_the_flag_a_loopback_sandbox_works() {
    let sandbox = sandbox().await;
    let s = TestServer::start_with(true).await;
    s.create_credential("Local", &sandbox.token(), &sandbox.base_url())
        .await;
    let tested: serde_json::Value = s
        .post("/api/v1/credentials/Local/test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["test"]["status"], "verified", "{tested}");
    let named = sandbox.base_url().replace("127.0.0.1", "localhost");
    s.create_credential("Named", &sandbox.token(), &named).await;
    let tested: serde_json::Value = s
        .post("/api/v1/credentials/Named/test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["test"]["status"], "verified", "{tested}");
}
