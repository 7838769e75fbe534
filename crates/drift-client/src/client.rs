//! `Client`, `ClientBuilder` and the request path every endpoint goes through:
//! budget (pacing + gate) → concurrency permit → HTTP → rate headers → classification,
//! wrapped in the retry policy (`retry.rs`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;
use url::Url;

use crate::addresses::{internal_host, InternalAnswer, PublicOnlyResolver};
use crate::base::{parse_base_url, same_origin};
use crate::budget::{Lane, MetricsSnapshot, RateBudget, DEFAULT_BURST, DEFAULT_RATE_PER_MIN};
use crate::clock::{Clock, TokioClock};
use crate::decode::{Body, BodyError};
use crate::error::{parse_error_body, scope_in, Redactor};
use crate::meter::{Meter, Meters};
use crate::oauth::{OAuthRefresh, OAuthState};
use crate::retry::{AttemptError, RetryPolicy};
use crate::shared::BudgetShare;
use crate::Error;

/// Whether a request may be repeated after a failure (see `retry.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// GET and read-only POSTs (`token_info`, reports): retried.
    Read,
    /// PATCH / DELETE: same effect when repeated; retried.
    Idempotent,
    /// POST that creates something: only retried when Drift surely did not act
    /// (429, or the connection failed before the request was sent).
    Create,
}

/// One request, relative to the base URL.
#[derive(Debug)]
pub(crate) struct Req {
    pub method: Method,
    /// Path (and maybe query) relative to the base URL, without a leading `/`.
    pub target: String,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Bytes>,
    /// Route name (`conversations.list`) for errors and logs.
    pub route: &'static str,
    /// Scope the endpoint needs (REFERENCE §3/§7), named in `Forbidden` when Drift does not.
    pub scope: Option<&'static str>,
    pub kind: Kind,
}

impl Req {
    pub(crate) fn get(route: &'static str, scope: &'static str, target: impl Into<String>) -> Req {
        Req {
            method: Method::GET,
            target: target.into(),
            query: Vec::new(),
            body: None,
            route,
            scope: Some(scope),
            kind: Kind::Read,
        }
    }

    pub(crate) fn query(mut self, key: &'static str, value: impl ToString) -> Req {
        self.query.push((key, value.to_string()));
        self
    }

    /// A request with a JSON body.
    pub(crate) fn with_body(
        method: Method,
        route: &'static str,
        scope: Option<&'static str>,
        target: impl Into<String>,
        body: &impl serde::Serialize,
        kind: Kind,
    ) -> Result<Req, Error> {
        let body = serde_json::to_vec(body).map_err(|e| Error::Invalid {
            field: None,
            message: format!("{route}: request body cannot be encoded: {e}"),
            status: None,
        })?;
        Ok(Req {
            method,
            target: target.into(),
            query: Vec::new(),
            body: Some(Bytes::from(body)),
            route,
            scope,
            kind,
        })
    }

    fn lane(&self) -> Lane {
        if self.target.starts_with("reports/") {
            Lane::Reports
        } else {
            Lane::Main
        }
    }
}

/// A response with a 2xx status.
#[derive(Debug)]
pub(crate) struct Raw {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Raw {
    /// The body with what its decode errors name.
    pub(crate) fn body<'a>(&'a self, route: &'a str, redactor: &'a Redactor) -> Body<'a> {
        Body {
            route,
            status: self.status,
            content_type: self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
            bytes: &self.body,
            redactor,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base: Url,
    /// `Authorization` header value and its generation (bumped by each OAuth refresh).
    auth: std::sync::RwLock<(HeaderValue, u64)>,
    pub(crate) redactor: Redactor,
    pub(crate) oauth: Option<OAuthState>,
    pub(crate) budget: RateBudget,
    concurrency: Semaphore,
    max_concurrency: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) page_cap: u32,
    /// Set by [`ClientBuilder::observer`]: told of retries and 429s.
    pub(crate) observer: Option<Arc<dyn crate::Observer>>,
}

/// Drift REST client. Cheap to clone (an `Arc` inside); clones share one [`RateBudget`],
/// one connection pool and one concurrency cap, and may be used from many tasks at once.
///
/// Every request carries `Authorization: Bearer <token>` and goes only to the base URL's
/// host: redirects and next links to another host are refused.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    /// Set by [`Client::with_stop`]: once it holds `true`, requests not yet sent fail with
    /// [`Error::Stopped`] instead of waiting for the budget, a slot or a retry.
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    /// Set by [`Client::with_meter`]: counters of this handle's requests.
    pub(crate) meters: Meters,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("token", &"[redacted]")
            .field("budget", &self.inner.budget)
            .finish()
    }
}

/// Settings for a [`Client`]; start with [`Client::builder`].
pub struct ClientBuilder {
    base_url: String,
    token: SecretString,
    rate_limit_per_min: u32,
    burst: u32,
    max_concurrency: Option<usize>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    page_cap: u32,
    budget: Option<RateBudget>,
    share: Option<BudgetShare>,
    clock: Option<Arc<dyn Clock>>,
    deny_private: bool,
    oauth: Option<OAuthRefresh>,
    observer: Option<Arc<dyn crate::Observer>>,
    user_agent: Option<String>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("token", &"[redacted]")
            .field("rate_limit_per_min", &self.rate_limit_per_min)
            .field("max_concurrency", &self.max_concurrency)
            .field("timeout", &self.timeout)
            .field("page_cap", &self.page_cap)
            .field("deny_private_addresses", &self.deny_private)
            .field("oauth", &self.oauth)
            .finish()
    }
}

/// Response time up to which the default concurrency keeps the whole budget in use.
pub const LATENCY_ALLOWANCE: Duration = Duration::from_millis(500);

/// Default maximum of requests in flight for a budget of `per_min` requests per minute:
/// enough to spend the whole budget while each response takes up to [`LATENCY_ALLOWANCE`]
/// (requests per second x 0.5 s), at least 8 and at most 64. E.g. 600/min -> 8,
/// 6000/min -> 50. With a fixed 8, a 6000/min budget at 150 ms latency ran at about half of
/// the budget (bench/RESULTS.md).
pub fn default_max_concurrency(per_min: u32) -> usize {
    let per_sec = u64::from(per_min).div_ceil(60);
    let in_flight = (per_sec * LATENCY_ALLOWANCE.as_millis() as u64).div_ceil(1000);
    usize::try_from(in_flight)
        .unwrap_or(usize::MAX)
        .clamp(8, 64)
}

/// Default page cap: a backstop against a server that never stops paginating.
pub const DEFAULT_PAGE_CAP: u32 = 100_000;

impl ClientBuilder {
    /// Requests per minute of the credential's budget (default 600, DESIGN §4).
    /// Ignored when a shared budget is given with [`ClientBuilder::rate_budget`].
    pub fn rate_limit_per_min(mut self, per_min: u32) -> Self {
        self.rate_limit_per_min = per_min;
        self
    }

    /// GCRA burst: requests that may start back to back after idling (default 3).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Maximum requests in flight at once (at least 1). Default:
    /// [`default_max_concurrency`] of the budget, so latency does not leave the budget unused.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = Some(n);
        self
    }

    /// Longest total time one call may spend waiting for retries and the rate gate
    /// (default 120 s). A server asking for more gets `Error::RateLimited` at once.
    pub fn max_retry_wait(mut self, d: Duration) -> Self {
        self.retry.max_total_wait = d;
        self
    }

    /// How many times a failed attempt is repeated (default 5).
    pub fn max_retries(mut self, n: usize) -> Self {
        self.retry.max_retries = n;
        self
    }

    /// First and largest backoff between attempts when the server names no wait
    /// (defaults 250 ms and 10 s; jittered, doubled each time).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.retry.min_delay = min;
        self.retry.max_delay = max;
        self
    }

    /// Timeout of one HTTP attempt, body included (default 60 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Removes the request and connect timeouts. Only for tests on tokio's paused clock,
    /// where any pending timer would fire while a real socket is being read.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self.connect_timeout = None;
        self
    }

    /// Most pages one pagination pass may read (default 100 000); reaching it is an
    /// `Error::Pagination`, never a silent stop.
    pub fn page_cap(mut self, pages: u32) -> Self {
        self.page_cap = pages;
        self
    }

    /// Shares an existing budget (one per credential, DESIGN §4) instead of making one.
    pub fn rate_budget(mut self, budget: RateBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Keeps the budget (at [`ClientBuilder::rate_limit_per_min`] and
    /// [`ClientBuilder::burst`]) in a shared backend, so every process using the credential
    /// draws from one budget and sees the server's pauses (see [`crate::shared`]).
    /// Ignored when [`ClientBuilder::rate_budget`] is given.
    pub fn share_budget(mut self, share: BudgetShare) -> Self {
        self.share = Some(share);
        self
    }

    /// Clock for pacing and retry waits (tests: `ManualClock`). Ignored with `rate_budget`,
    /// whose clock is used.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Refuse internal addresses (loopback, private, link-local, unique-local, CGNAT,
    /// unspecified, ...; see `internal_address_kind`) as the base URL's host: a literal one
    /// fails [`ClientBuilder::build`], and a host name is checked on its resolved addresses
    /// each time a connection opens (internal answers are dropped), so DNS rebinding cannot
    /// get around it. Either way the error is [`Error::PrivateAddress`] and nothing is sent.
    /// System proxies (`HTTP_PROXY`, `HTTPS_PROXY`) are not used while it is on, since a
    /// proxy would resolve the host itself and bypass the check.
    /// Default `false` (the CLI talks to a loopback sandbox); `driftbridge serve` sets it
    /// unless started with `--allow-private-base-urls`.
    pub fn deny_private_addresses(mut self, deny: bool) -> Self {
        self.deny_private = deny;
        self
    }

    /// Refresh an expired OAuth access token (REFERENCE §2.2): on a 401 the client mints a
    /// new one at `POST /oauth2/token` with `oauth`'s app and refresh token, passes the new
    /// tokens to `oauth.on_refresh` and sends the request again. See [`crate::oauth`].
    pub fn oauth_refresh(mut self, oauth: OAuthRefresh) -> Self {
        self.oauth = Some(oauth);
        self
    }

    /// The `User-Agent` header sent on every request (default `driftbridge/<version>`),
    /// e.g. the Singer config's `user_agent`. A value that is not a valid header is an
    /// error of [`ClientBuilder::build`] (field `user_agent`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Tell `observer` of every retried attempt and every 429 of this client (and its
    /// clones), e.g. to write them to a run's log.
    pub fn observer(mut self, observer: Arc<dyn crate::Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Validates everything and builds the client. Errors: `Error::Config` naming the field
    /// (`base_url`, `token`, `rate_limit_per_min`, `max_concurrency`, `page_cap`), or
    /// `Error::PrivateAddress` (see [`ClientBuilder::deny_private_addresses`]).
    pub fn build(self) -> Result<Client, Error> {
        let base = parse_base_url(&self.base_url)?;
        // Literal IPs here (the resolver never sees them); names, `localhost` included, are
        // checked by the resolver on every connect.
        let literal_ip = !matches!(base.host(), Some(url::Host::Domain(_)));
        if self.deny_private && literal_ip {
            if let Some(reason) = internal_host(&base) {
                return Err(Error::PrivateAddress {
                    host: base.host_str().unwrap_or_default().to_string(),
                    reason,
                });
            }
        }
        let auth = bearer(&self.token)?;
        if self.max_concurrency == Some(0) {
            return Err(config("max_concurrency", "must be at least 1"));
        }
        if self.page_cap == 0 {
            return Err(config("page_cap", "must be at least 1"));
        }
        let budget = match self.budget {
            Some(b) => b,
            None => {
                let clock = self
                    .clock
                    .unwrap_or_else(|| Arc::new(TokioClock::default()));
                match self.share {
                    Some(share) => RateBudget::shared_with_clock(
                        self.rate_limit_per_min,
                        self.burst,
                        share.backend,
                        share.key,
                        clock,
                    )?,
                    None => RateBudget::with_clock(self.rate_limit_per_min, self.burst, clock)?,
                }
            }
        };
        let http = http_client(
            &base,
            self.timeout,
            self.connect_timeout,
            self.deny_private,
            self.user_agent.as_deref(),
        )?;
        let max_concurrency = self
            .max_concurrency
            .unwrap_or_else(|| default_max_concurrency(budget.per_minute()));
        let redactor = Redactor::new(self.token);
        if let Some(o) = &self.oauth {
            redactor.add(o.client_secret.clone());
            redactor.add(o.refresh_token.clone());
        }
        Ok(Client {
            stop: None,
            meters: Meters::default(),
            inner: Arc::new(Inner {
                http,
                base,
                auth: std::sync::RwLock::new((auth, 0)),
                redactor,
                oauth: self.oauth.map(OAuthState::new),
                budget,
                concurrency: Semaphore::new(max_concurrency),
                max_concurrency,
                retry: self.retry,
                page_cap: self.page_cap,
                observer: self.observer,
            }),
        })
    }
}

fn config(field: &'static str, message: &str) -> Error {
    Error::Config {
        field,
        message: message.to_string(),
    }
}

fn bearer(token: &SecretString) -> Result<HeaderValue, Error> {
    let token = token.expose_secret().trim();
    if token.is_empty() {
        return Err(config("token", "the API key is empty"));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        config(
            "token",
            "the API key contains characters not allowed in an HTTP header (newline?)",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn http_client(
    base: &Url,
    timeout: Option<Duration>,
    connect: Option<Duration>,
    deny_private: bool,
    user_agent: Option<&str>,
) -> Result<reqwest::Client, Error> {
    let pinned = base.clone();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() < 5 && same_origin(attempt.url(), &pinned) {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    let mut builder = reqwest::Client::builder().redirect(policy);
    if deny_private {
        // Connect directly: through a proxy (HTTP(S)_PROXY) the proxy would resolve the
        // host, and the address check below would see only the proxy's address.
        builder = builder
            .dns_resolver(Arc::new(PublicOnlyResolver))
            .no_proxy();
    }
    if let Some(t) = timeout {
        builder = builder.timeout(t);
    }
    if let Some(t) = connect {
        builder = builder.connect_timeout(t);
    }
    let agent = match user_agent {
        None => HeaderValue::from_static(concat!("driftbridge/", env!("CARGO_PKG_VERSION"))),
        Some(ua) => HeaderValue::from_str(ua.trim())
            .map_err(|_| config("user_agent", "is not a valid HTTP header value (newline?)"))?,
    };
    builder
        .user_agent(agent)
        .build()
        .map_err(|e| Error::Config {
            field: "http",
            message: format!("cannot build the HTTP client: {e}"),
        })
}

impl Client {
    /// Starts a builder for `base_url` (e.g. `https://driftapi.com`) and the Drift token.
    pub fn builder(base_url: &str, token: SecretString) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_string(),
            token,
            rate_limit_per_min: DEFAULT_RATE_PER_MIN,
            burst: DEFAULT_BURST,
            max_concurrency: None,
            retry: RetryPolicy::default(),
            timeout: Some(Duration::from_secs(60)),
            connect_timeout: Some(Duration::from_secs(10)),
            page_cap: DEFAULT_PAGE_CAP,
            budget: None,
            share: None,
            clock: None,
            deny_private: false,
            oauth: None,
            observer: None,
            user_agent: None,
        }
    }

    /// A client with default settings. Errors: `Error::Config` for a bad base URL or token.
    pub fn new(base_url: &str, token: SecretString) -> Result<Client, Error> {
        Self::builder(base_url, token).build()
    }

    /// The normalised base URL (path always ends in `/`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// Counters of this client's budget (shared with every client on the same budget).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.budget.snapshot()
    }

    /// Maximum requests this client has in flight at once (see
    /// [`ClientBuilder::max_concurrency`]); readers size their own concurrency by it.
    pub fn max_concurrency(&self) -> usize {
        self.inner.max_concurrency
    }

    /// Generation of the token in use: 0 at build, +1 per OAuth refresh.
    pub(crate) fn auth_generation(&self) -> u64 {
        self.inner.auth.read().unwrap_or_else(|e| e.into_inner()).1
    }

    /// The `Authorization` header value in use.
    fn auth_header(&self) -> HeaderValue {
        self.inner
            .auth
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// Switch to access token `token` (after a refresh): new header, next generation, and
    /// the token redacted from every message.
    pub(crate) fn set_token(&self, token: &SecretString) -> Result<(), Error> {
        let header = bearer(token)?;
        self.inner.redactor.use_token(token.clone());
        let mut auth = self.inner.auth.write().unwrap_or_else(|e| e.into_inner());
        *auth = (header, auth.1 + 1);
        Ok(())
    }

    /// Whether a 401 may be cured by refreshing the access token.
    pub(crate) fn refreshes_tokens(&self) -> bool {
        self.inner.oauth.is_some()
    }

    /// The rate budget this client draws from.
    pub fn rate_budget(&self) -> &RateBudget {
        &self.inner.budget
    }

    /// A clone of this client (same budget, pool and concurrency cap) whose requests stop
    /// waiting once `stop` holds `true`: a request still waiting for the rate budget, a
    /// concurrency slot or a retry pause is not sent and fails with [`Error::Stopped`]; a
    /// request already sent finishes normally.
    pub fn with_stop(&self, stop: tokio::sync::watch::Receiver<bool>) -> Client {
        Client {
            inner: self.inner.clone(),
            stop: Some(stop),
            meters: self.meters.clone(),
        }
    }

    /// A clone of this client that shares everything with it (budget, pool, concurrency
    /// cap, stop signal, the meters it already counts into) and also counts what it sends
    /// into `meter`: every attempt that leaves (retries and OAuth token refreshes
    /// included), each 429, each retry, and the time waited for the budget and between
    /// retries. Give each stream of a sync its own meter to attribute requests to it.
    /// [`Client::metrics`] still counts everything on the budget.
    pub fn with_meter(&self, meter: Meter) -> Client {
        Client {
            inner: self.inner.clone(),
            stop: self.stop.clone(),
            meters: self.meters.with(meter),
        }
    }

    /// Whether [`Client::with_stop`]'s signal is set.
    pub(crate) fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| *s.borrow())
    }

    /// Completes once [`Client::with_stop`]'s signal is set (never without one).
    pub(crate) async fn stop_signal(&self) {
        match self.stop.clone() {
            Some(mut rx) => {
                if rx.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// Sends `req` and decodes its 2xx body with `decode`. A body that is not JSON at all
    /// (empty, HTML, cut short) is sent again at most twice, quickly, for reads and
    /// idempotent writes (see `retry.rs`); a JSON body of the wrong shape and an unfit
    /// single record are not.
    pub(crate) async fn read<T>(
        &self,
        req: &Req,
        decode: impl Fn(&Body<'_>) -> Result<T, BodyError>,
    ) -> Result<T, Error> {
        self.read_with_headers(req, decode).await.map(|(t, _)| t)
    }

    /// Like [`Client::read`] for a request whose body names the access token: `build` makes
    /// it again after an OAuth refresh (see `retry::run_rebuilt`).
    pub(crate) async fn read_rebuilt<T>(
        &self,
        decode: impl Fn(&Body<'_>) -> Result<T, BodyError>,
        build: impl Fn() -> Result<Req, Error>,
    ) -> Result<T, Error> {
        let redactor = &self.inner.redactor;
        crate::retry::run_rebuilt(self, build, |req: &Req, raw: Raw| {
            decode(&raw.body(req.route, redactor)).map_err(AttemptError::body)
        })
        .await
    }

    /// Like [`Client::read`], also returning the response headers.
    pub(crate) async fn read_with_headers<T>(
        &self,
        req: &Req,
        decode: impl Fn(&Body<'_>) -> Result<T, BodyError>,
    ) -> Result<(T, HeaderMap), Error> {
        let redactor = &self.inner.redactor;
        crate::retry::run(self, req, |raw: Raw| {
            let decoded = decode(&raw.body(req.route, redactor));
            decoded
                .map(|t| (t, raw.headers))
                .map_err(AttemptError::body)
        })
        .await
    }

    /// One attempt: budget, permit, HTTP exchange, header observation, classification.
    pub(crate) async fn attempt(&self, req: &Req) -> Result<Raw, AttemptError> {
        let inner = &self.inner;
        let url = self.url_for(req).map_err(AttemptError::fatal)?;
        // Permit first, then the budget: a slot granted by the pacer is used at once, so
        // requests queued behind the concurrency cap cannot leave in a burst.
        let lane = req.lane();
        let stopped = || {
            AttemptError::fatal(Error::Stopped {
                endpoint: req.route.to_string(),
            })
        };
        if self.stopped() {
            return Err(stopped());
        }
        // Waiting for a slot and for the budget ends at once when the caller stops.
        let waited = async {
            let permit =
                inner.concurrency.acquire().await.map_err(|_| {
                    AttemptError::fatal(config("max_concurrency", "semaphore closed"))
                })?;
            inner
                .budget
                .acquire(lane, inner.retry.max_total_wait, &self.meters)
                .await
                .map_err(AttemptError::fatal)?;
            Ok::<_, AttemptError>(permit)
        };
        let _permit = tokio::select! {
            biased;
            _ = self.stop_signal() => return Err(stopped()),
            permit = waited => permit?,
        };
        let mut builder = inner
            .http
            .request(req.method.clone(), url)
            .header(AUTHORIZATION, self.auth_header());
        if !req.query.is_empty() {
            builder = builder.query(&req.query);
        }
        if let Some(body) = &req.body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let seq = inner.budget.record_request();
        self.meters.each(|m| m.request());
        let resp = builder
            .send()
            .await
            .map_err(|e| self.transport_error(req, &e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let server_wait = inner.budget.observe(lane, status, &headers, seq);
        if let Some(wait) = server_wait {
            inner.budget.share_pause(lane, wait).await;
        }
        if status == 429 {
            self.meters.each(|m| m.rate_limited());
            if let Some(observer) = &inner.observer {
                observer.rate_limited(req.route, server_wait);
            }
            tracing::info!(
                route = req.route,
                retry_after_ms = server_wait.map(|d| d.as_millis() as u64),
                "Drift rate limited the request (429)"
            );
        } else {
            tracing::debug!(route = req.route, status, "Drift response");
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(req, &e))?;
        if (200..300).contains(&status) {
            return Ok(Raw {
                status,
                headers,
                body,
            });
        }
        Err(AttemptError::status(
            self.status_error(req, status, &body, server_wait),
            status,
        ))
    }

    /// The absolute URL of `req`, refused unless it is on the base URL's host (the token is
    /// never sent elsewhere, whatever a cursor or link says).
    fn url_for(&self, req: &Req) -> Result<Url, Error> {
        let base = &self.inner.base;
        let url = base.join(&req.target).map_err(|e| Error::Invalid {
            field: None,
            message: format!("{}: bad request path: {e}", req.route),
            status: None,
        })?;
        if !same_origin(&url, base) || !url.path().starts_with(base.path()) {
            return Err(Error::Invalid {
                field: Some("cursor".into()),
                message: format!(
                    "{}: refused a request outside the base URL {} (to {}://{}); the token \
                     is only sent to the credential's base URL",
                    req.route,
                    base.as_str(),
                    url.scheme(),
                    url.host_str().unwrap_or("?")
                ),
                status: None,
            });
        }
        Ok(url)
    }

    fn transport_error(&self, req: &Req, e: &reqwest::Error) -> AttemptError {
        let endpoint = req.route.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(answer) = s.downcast_ref::<InternalAnswer>() {
                return AttemptError::fatal(Error::PrivateAddress {
                    host: answer.host.clone(),
                    reason: answer.reason.clone(),
                });
            }
            source = s.source();
        }
        if e.is_timeout() {
            return AttemptError::transport(Error::Timeout { endpoint }, false);
        }
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        let message = self.inner.redactor.clean(&message);
        AttemptError::transport(Error::Transport { endpoint, message }, e.is_connect())
    }

    fn status_error(
        &self,
        req: &Req,
        status: u16,
        body: &[u8],
        server_wait: Option<Duration>,
    ) -> Error {
        let parsed = parse_error_body(body);
        let message = self.inner.redactor.clean(&parsed.message);
        let endpoint = req.route.to_string();
        match status {
            401 => Error::Unauthorized { endpoint, message },
            403 => Error::Forbidden {
                endpoint,
                missing_scope: scope_in(&message).or(req.scope.map(str::to_string)),
                message,
            },
            404 => Error::NotFound { endpoint, message },
            409 => Error::Conflict { endpoint, message },
            429 => Error::RateLimited {
                retry_after: server_wait,
            },
            500..=599 => Error::Server {
                status,
                endpoint,
                message,
                retry_after: server_wait,
            },
            300..=399 => Error::Transport {
                endpoint,
                message: format!(
                    "HTTP {status} redirect not followed: only the base URL's host may \
                     receive the token"
                ),
            },
            _ => Error::Invalid {
                field: parsed.param.map(|p| self.inner.redactor.clean(&p)),
                message: format!("{endpoint}: HTTP {status}: {message}"),
                status: Some(status),
            },
        }
    }
}
