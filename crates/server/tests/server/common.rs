//! Shared helpers: an in-process server on a free port with its own data dir, and an
//! in-process Drift sandbox.

use secrecy::ExposeSecret;
use std::sync::Arc;
use store::Store;

/// A running server with a fresh data dir and admin token.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The admin token.
    pub token: String,
    /// The store the server uses (to set up sources etc.).
    pub store: Arc<Store>,
    /// The server's state (to call the scheduler directly).
    pub state: server::AppState,
    /// An HTTP client without cookies.
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    /// A server like `serve --allow-private-base-urls` (the sandbox is on loopback).
    pub async fn start() -> TestServer {
        Self::start_with(true).await
    }

    /// A server allowing (`true`) or refusing internal base URLs, like `serve` with or
    /// without `--allow-private-base-urls`.
    pub async fn start_with(allow_private_base_urls: bool) -> TestServer {
        Self::start_with_options(allow_private_base_urls, server::ServeOptions::default()).await
    }

    /// A server with `options` (timeouts, limits, hardening flags of `serve`).
    pub async fn start_with_options(
        allow_private_base_urls: bool,
        options: server::ServeOptions,
    ) -> TestServer {
        install_run_logs();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let token = server::auth::ensure_admin_token(&store)
            .unwrap()
            .expect("a fresh data dir gets a new admin token");
        let state = server::AppState::new(store)
            .allowing_private_base_urls(allow_private_base_urls)
            .with_options(options);
        let store = state.store.clone();
        let kept = state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        tokio::spawn(server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        TestServer {
            base,
            token: token.expose_secret().to_string(),
            store,
            state: kept,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            _dir: dir,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with the admin token.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.req(reqwest::Method::GET, path)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.req(reqwest::Method::POST, path)
    }

    /// `GET path` with the admin token; the answer's JSON body (panics on a non-JSON body).
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }

    /// `POST path` (no body) with the admin token; the answer's JSON body.
    pub async fn post_json(&self, path: &str) -> serde_json::Value {
        self.post(path).send().await.unwrap().json().await.unwrap()
    }

    /// Create a credential through the API; returns its JSON.
    pub async fn create_credential(
        &self,
        name: &str,
        key: &str,
        base_url: &str,
    ) -> serde_json::Value {
        let response = self
            .post("/api/v1/credentials")
            .json(&serde_json::json!({"name": name, "api_key": key, "base_url": base_url, "save_untested": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "creating credential {name}");
        response.json().await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Install the run-log layer once in this test process, as `driftbridge serve` does at
/// start, so runs write `runs/<run id>.log`.
pub fn install_run_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::registry()
            .with(flows::logs::layer())
            .try_init();
    });
}

/// An in-process sandbox with a small org.
pub async fn sandbox() -> drift_sandbox::SandboxHandle {
    drift_sandbox::start(drift_sandbox::SandboxConfig {
        port: 0,
        conversations: 20,
        messages_per_conversation: 2,
        accounts: 5,
        users: 3,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Poll run `id` through the API until it is no longer running (bounded); returns it.
pub async fn wait_run(s: &TestServer, id: &str) -> serde_json::Value {
    for _ in 0..600 {
        let run: serde_json::Value = s
            .get(&format!("/api/v1/runs/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if run["status"] != "running" {
            return run;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("run {id} still running after 60 s");
}

/// The sandbox's expected totals per stream (`/__sandbox/counts`).
pub async fn sandbox_counts(sandbox: &drift_sandbox::SandboxHandle) -> serde_json::Value {
    reqwest::get(format!("{}/__sandbox/counts", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Assert an answer is a problem of the given status and type suffix; returns the body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    kind: &str,
) -> serde_json::Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["type"],
        format!("urn:driftbridge:problem:{kind}"),
        "problem: {body}"
    );
    assert_eq!(body["status"], status);
    assert!(
        !body["detail"].as_str().unwrap_or_default().is_empty(),
        "problem has a detail: {body}"
    );
    body
}
