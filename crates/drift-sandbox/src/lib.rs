//! Offline simulator of the Drift REST API, for the demo, tests and benchmarks.
//!
//! [`start`] serves the endpoints of `drift-api/REFERENCE.md` §7 on `127.0.0.1` with Drift's
//! envelopes, status codes and error bodies, plus the `/__sandbox/*` admin routes of
//! DESIGN.md §7. Where Drift's behaviour is not public the sandbox follows the `[SIM]`
//! conventions of REFERENCE §4, §5 and §9; those places are marked `[SIM]` in the code.
//!
//! Design decisions:
//! - It shares no model types with `drift-client`: records are kept as the JSON Drift would
//!   send (messages in a compact typed form, rendered on demand), so the client and the
//!   sandbox check each other.
//! - The org lives in memory behind one `RwLock`; handlers never hold it across an await.
//! - Data is deterministic for a seed ([`seed`]) or loaded from recorded JSON ([`fixtures`]).
//! - Every Drift route passes one guard layer ([`guard`]): latency, per-token leaky bucket
//!   with `X-RateLimit-*` headers, token and scope checks, fault plan, stats and log.
//! - `--messy` ([`messy`]) changes only how READ routes render records (digit-string ids,
//!   nulls, unknown fields, about 1 in 200 records unfit), never the stored org, so paging,
//!   filters and mutations behave the same. `[SIM]` The shapes are the sandbox's choice of
//!   what a client must survive, not anything Drift documents.
//!
//! Conventions a client can rely on (REFERENCE §4–§9; `[SIM]` where Drift is silent):
//! - `GET /conversations/list` serves the current generation (`links.self`/`links.next`,
//!   absolute URLs on this sandbox, `limit` ≤ 100, default 25) unless the query has `next`
//!   and no `page_token`; then the legacy one (`pagination: {more, next}` only while more
//!   pages follow, `limit` ≤ 50). Ask for the legacy first page with `next=` (empty).
//!   `page_token` is base64url JSON `{offset, limit, statusId}`; legacy `next` is the
//!   offset as a string. Order: `updatedAt` desc, ties by `id` desc. Bad `limit`/cursor ->
//!   400 (`error` object; legacy: `errors` array).
//! - Messages: 50 per page, oldest first, `pagination: {more: true, next: "<last id>"}`,
//!   `{more: false}` on the last page.
//! - Accounts: `index` ≥ 0, `size` 1..=65 (default 10); `data.next` is an absolute URL here
//!   while `index + size < total`; soft-deleted accounts stay listed with `deleted: true`.
//! - Errors: `{"error": {"type", "message"}}` with types `authentication_error` (401, Drift's
//!   text), `forbidden` (403, message ends with the missing scope), `not_found`,
//!   `validation_error` (+ `param`), `conflict` (409), `rate_limit` (429), `server_error`.
//! - Rate limit: `X-RateLimit-Limit` (per minute), `X-RateLimit-Remaining`,
//!   `X-RateLimit-Reset` (seconds until the bucket is empty) on every Drift response while
//!   the limit is on; 429 adds `Retry-After` (seconds). `/reports/*` has its own bucket.
//!   With [`SandboxConfig::rate_limit_headers`] off (`--no-rate-limit-headers`) the limit is
//!   enforced the same way but no `X-RateLimit-*` header is sent (429 keeps `Retry-After`).
//! - `token_info` echoes the inspected `access_token`, as Drift does: clients must not keep
//!   or log that field.
//! - `POST /oauth2/token` (outside the bearer guard, route `oauth.token` in stats) takes the
//!   refresh grant of an app in [`SandboxConfig::oauth_apps`] (form fields, or JSON with
//!   Drift's camelCase keys) and mints an access token living the app's `access_ttl_ms`
//!   plus a new refresh token; `[SIM]` the refresh token used is retired, and refusals use
//!   OAuth 2.0's `{"error", "error_description"}` (400 `invalid_grant`, 401 `invalid_client`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), drift_sandbox::SandboxError> {
//! let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig::default()).await?;
//! println!("{} {}", sandbox.base_url(), sandbox.token());
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod admin;
pub mod api;
pub mod auth;
pub mod compat;
pub mod config;
pub mod error;
pub mod faults;
pub mod fixtures;
pub mod guard;
pub mod messy;
pub mod mutate;
pub mod org;
pub mod ratelimit;
pub mod seed;
pub mod state;
pub mod stats;
pub mod webhooks;

pub use config::{
    Compat, FaultKind, FaultPlan, FaultSpec, OAuthAppSpec, SandboxConfig, SandboxError, TokenSpec,
    ALL_SCOPES, DEFAULT_OAUTH_CLIENT_ID, DEFAULT_OAUTH_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN,
    DEFAULT_TOKEN, ORG_ID,
};

use state::App;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running sandbox. Dropping it without [`SandboxHandle::shutdown`] leaves the server
/// running until the runtime ends.
pub struct SandboxHandle {
    base_url: String,
    token: String,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The full-scope token (a sandbox value, not a secret).
    pub fn token(&self) -> String {
        self.token.clone()
    }

    /// What a full sync of each stream should deliver now (same as `GET /__sandbox/counts`).
    pub fn counts(&self) -> serde_json::Value {
        admin::counts_json(&self.app.read(), self.app.clock.now_ms())
    }

    /// Stop serving and wait for open connections to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Wait until the server stops (it only stops on [`SandboxHandle::shutdown`] or an I/O
    /// error of the listener).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

fn validate(cfg: &SandboxConfig) -> Result<(), SandboxError> {
    if cfg.token.trim().is_empty() {
        return Err(SandboxError::Config {
            field: "token",
            message: "the token must not be empty".into(),
        });
    }
    if let Some(url) = &cfg.webhooks.url {
        webhooks::check_url(url).map_err(|message| SandboxError::Config {
            field: "webhook_url",
            message,
        })?;
    }
    if !(0.0..=1.0).contains(&cfg.webhooks.duplicates) {
        return Err(SandboxError::Config {
            field: "webhook_duplicates",
            message: "the probability of a duplicate delivery must be between 0 and 1".into(),
        });
    }
    for (i, f) in cfg.faults.iter().enumerate() {
        f.validate().map_err(|m| SandboxError::Config {
            field: "faults",
            message: format!("faults[{i}]: {m}"),
        })?;
    }
    Ok(())
}

/// Build the org and serve it on `127.0.0.1:config.port` (0 = a free port).
///
/// Errors: [`SandboxError::Bind`] when the port is taken, [`SandboxError::Fixtures`] for a
/// bad fixtures directory, [`SandboxError::Config`] for invalid settings.
pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    validate(&config)?;
    let port = config.port;
    let token = config.token.clone();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| SandboxError::Bind { port, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SandboxError::Bind { port, source })?;
    // Building a large org takes a moment: keep it off the async worker threads.
    let app = tokio::task::spawn_blocking(move || App::new(config))
        .await
        .map_err(|e| SandboxError::Config {
            field: "conversations",
            message: format!("building the org failed: {e}"),
        })??;
    let app = Arc::new(app);
    webhooks::spawn(app.clone());
    let base_url = format!("http://127.0.0.1:{}", addr.port());
    let _ = app.base_url.set(base_url.clone());
    let router = api::router(&app)
        .merge(admin::router())
        .with_state(app.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    Ok(SandboxHandle {
        base_url,
        token,
        app,
        stop: Some(stop),
        task,
    })
}
