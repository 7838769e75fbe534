//! REST API (`/api/v1`, OpenAPI at `/api/v1/openapi.json`) and server-rendered web UI for
//! driftbridge (DESIGN.md §1, §5, §6 `serve`).
//!
//! Design decisions:
//! - **One [`AppState`]** (the metadata store, access control); each area exposes a
//!   `router()`; one error type ([`problem::ApiError`]) maps to `application/problem+json`.
//! - **Server-rendered UI** (askama templates compiled into the binary, htmx for partial
//!   updates, vendored assets served from memory): no JS build step, one binary.
//! - **Secrets**: the API key is accepted in request bodies only, never returned, rendered,
//!   logged or put in a URL; the admin token is stored hashed (see [`auth`]).
//! - **Security by default**: every API call needs the admin token or a UI session;
//!   state-changing requests check `Origin`; bodies are limited to [`BODY_LIMIT_BYTES`];
//!   slow or idle connections are closed and their number capped ([`limits`]).
//!
//! - **Browser hardening** ([`hardening`]): a Content-Security-Policy without inline script,
//!   no framing, a `Host` allow-list against DNS rebinding, rate-limited logins.
//!
//! - **A thin edge**: what a run does (sync, push, credential test, schedules, the address
//!   policy) lives in the `flows` crate, shared with the CLI; handlers parse requests, call
//!   it, and map its [`flows::FlowError`] to a problem ([`problem::ApiError`]).
//!
//! Routes: `/healthz` (no auth: no secrets in it), `/metrics` (the admin token unless
//! `--public-metrics`), `/assets/*`, `/login`, `/logout`, the UI pages (`/credentials`, ...)
//! and `/api/v1/*`.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod api;
pub mod assets;
pub mod auth;
pub mod hardening;
mod json_error;
pub mod limits;
pub mod metrics;
pub mod problem;
pub mod ui;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use std::sync::Arc;
use store::Store;

/// Largest request body accepted, in bytes (1 MiB); CSV uploads have their own limit,
/// [`api::destinations::UPLOAD_LIMIT_BYTES`].
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// How `serve` is exposed and limited (its flags); [`ServeOptions::default`] holds the
/// documented defaults.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Timeouts and the connection cap.
    pub limits: limits::Limits,
    /// How long uploads and results files are kept.
    pub retention: flows::uploads::Retention,
    /// The address `serve` listens on (allowed as `Host`; with no `public_url`, the base of
    /// real-time sources' webhook URLs); [`serve`] fills it in from its
    /// listener when it is `None`.
    pub bind: Option<std::net::SocketAddr>,
    /// The URL people reach the server at (`--public-url`), e.g. behind a TLS proxy: its
    /// host is allowed as `Host`, its origin as `Origin`, and with `https` the session
    /// cookie is `Secure`.
    pub public_url: Option<url::Url>,
    /// Further host names allowed as `Host` (`--allowed-host`), lower case, without port.
    pub allowed_hosts: Vec<String>,
    /// Serve `/metrics` without the admin token (`--public-metrics`).
    pub public_metrics: bool,
}

impl ServeOptions {
    /// The base of absolute URLs people and Drift reach the server at: `--public-url`
    /// (without a trailing slash), else `http://` + the bind address.
    pub fn base_url(&self) -> String {
        match (&self.public_url, self.bind) {
            (Some(url), _) => url.as_str().trim_end_matches('/').to_string(),
            (None, Some(bind)) => format!("http://{bind}"),
            (None, None) => "http://127.0.0.1:8080".to_string(),
        }
    }

    /// True when the session cookie must be `Secure`: the server is reached over https
    /// (`--public-url https://...`; `serve` itself speaks plain HTTP).
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|u| u.scheme() == "https")
    }

    /// The origin of `--public-url` (`https://db.example.com`), if given.
    pub fn public_origin(&self) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|u| u.origin().ascii_serialization())
    }

    /// The `Host` allow-list these options make (see [`hardening::HostPolicy`]).
    pub fn host_policy(&self) -> hardening::HostPolicy {
        let mut names: Vec<String> = self
            .allowed_hosts
            .iter()
            .map(|h| hardening::host_name(h))
            .collect();
        if let Some(host) = self.public_url.as_ref().and_then(|u| u.host_str()) {
            names.push(hardening::host_name(host));
        }
        hardening::HostPolicy {
            bind: self.bind.map(|b| b.ip()),
            names,
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The metadata store (credentials, sources, destinations, flows, runs).
    pub store: Arc<Store>,
    /// Admin token and sessions.
    pub auth: Arc<auth::Auth>,
    /// The application layer over the same store: runs in progress, and which hosts
    /// credentials may point at (public only unless `serve` was started with
    /// `--allow-private-base-urls`, see [`flows::addresses`]).
    pub flows: flows::Flows,
    /// How the server is exposed and limited.
    pub options: Arc<ServeOptions>,
    /// Failed logins per client address.
    pub login_limiter: Arc<hardening::LoginLimiter>,
}

impl AppState {
    /// State over an opened store; the admin token is the one stored in the store's data dir.
    /// Credentials may point only at public addresses; see
    /// [`AppState::allowing_private_base_urls`].
    pub fn new(store: Store) -> Self {
        let store = Arc::new(store);
        AppState {
            auth: Arc::new(auth::Auth::new(store.clone())),
            flows: flows::Flows::new(store.clone(), flows::AddressPolicy::PublicOnly),
            store,
            options: Arc::new(ServeOptions::default()),
            login_limiter: Arc::new(hardening::LoginLimiter::default()),
        }
    }

    /// Use `options` (the flags of `serve`) instead of the defaults.
    pub fn with_options(mut self, options: ServeOptions) -> Self {
        self.options = Arc::new(options);
        self
    }

    /// Allow (`true`) base URLs on loopback, private and other internal addresses, e.g. a
    /// local sandox (`serve --allow-private-base-urls`).
    pub fn allowing_private_base_urls(mut self, allow: bool) -> Self {
        self.flows.addresses = flows::AddressPolicy::allowing_private(allow);
        self
    }

    /// Which hosts Drift clients of this server may contact.
    pub fn addresses(&self) -> flows::AddressPolicy {
        self.flows.addresses
    }
}

/// The whole application: API, UI, assets, health and metrics.
pub fn app(state: AppState) -> Router {
    metrics::init();
    let body_timeout = state.options.limits.body_timeout;
    let hosts = Arc::new(state.options.host_policy());
    let api = api::router()
        .route("/openapi.json", get(api::openapi::document))
        .fallback(api_not_found)
        .layer(axum::middleware::from_fn(json_bodies_are_objects))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_auth,
        ));
    Router::new()
        .nest("/api/v1", api)
        .merge(ui::router(state.clone()))
        .merge(webhooks::router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(metrics::count_requests))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(axum::middleware::map_response(too_large_as_problem))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn(move |request, next| {
            limits::body_timeout(body_timeout, request, next)
        }))
        .layer(axum::middleware::from_fn(move |request, next| {
            hardening::check_host(hosts.clone(), request, next)
        }))
        .layer(axum::middleware::from_fn(hardening::security_headers))
        .with_state(state)
}

/// Every JSON request body of the API is an object: serde would otherwise read a struct from
/// an array by position (`["key"]` as a rotate body), matching values to fields the caller
/// never named. An array or a lone value is a 422 on field `body`; an empty body and other
/// media types go on to the handler, which answers them as before.
async fn json_bodies_are_objects(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, problem::ApiError> {
    let is_json = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    let is_upload = request.uri().path().ends_with("/destinations/uploads");
    if !is_json || is_upload {
        return Ok(next.run(request).await);
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT_BYTES)
        .await
        .map_err(|_| problem::ApiError::TooLarge(problem::too_large_detail(BODY_LIMIT_BYTES)))?;
    if let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        if *first != b'{' {
            return Err(problem::ApiError::field(
                "body",
                "the body must be a JSON object ({\"field\": value, ...}), not an array or a single value",
            ));
        }
    }
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    Ok(next.run(request).await)
}

async fn api_not_found() -> problem::ApiError {
    problem::ApiError::NotFound("no such API route; see /api/v1/openapi.json".into())
}

/// Axum's own plain answers (a 413 from an extractor hitting the body limit, an empty 405
/// for a route without that method) become problem bodies like every other error (axum adds
/// the 405's `Allow` header afterwards).
async fn too_large_as_problem(response: axum::response::Response) -> axum::response::Response {
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(problem::PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            problem::ApiError::TooLarge(problem::too_large_detail(BODY_LIMIT_BYTES)).into_response()
        }
        StatusCode::METHOD_NOT_ALLOWED => problem::ApiError::MethodNotAllowed(
            "this route does not answer this method; the Allow header lists the ones it does \
             (see /api/v1/openapi.json)"
                .into(),
        )
        .into_response(),
        _ => response,
    }
}

/// `GET /healthz`: `{"status": "ok"}` when the metadata store answers.
async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    match state.store.list_runs(1) {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))),
        Err(e) => {
            tracing::error!(error = %e, "health check: metadata store failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({"status": "unavailable", "detail": "the metadata store does not answer"}),
                ),
            )
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, running due schedules meanwhile,
/// within the options' [`limits::Limits`] (see [`limits::serve_connections`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut state = state;
    if state.options.bind.is_none() {
        let mut options = (*state.options).clone();
        options.bind = listener.local_addr().ok();
        state.options = Arc::new(options);
    }
    api::sources::seal_clear_sink_passwords(&state);
    state.flows.realtime.replay(&state.flows);
    let scheduler = flows::schedule::spawn(state.flows.clone());
    let sweeper = flows::uploads::spawn_sweeper(
        state.store.data_dir().to_path_buf(),
        state.options.retention,
    );
    let limits = state.options.limits;
    let result = limits::serve_connections(listener, app(state), limits, shutdown).await;
    scheduler.abort();
    sweeper.abort();
    result
}

/// True when `addr` is a loopback address (`serve` warns when binding anything else without
/// TLS in front).
pub fn is_loopback(addr: &std::net::SocketAddr) -> bool {
    addr.ip().is_loopback()
}
