//! Testing a credential against Drift (`POST /app/token_info`, REFERENCE §2.3), step by step,
//! and comparing its scopes with the intended use (REFERENCE §3, DESIGN.md §2).
//!
//! Shared by the REST API, the web UI and `driftbridge credentials test` (the CLI prints the
//! same steps), so the checks and their messages exist once.

use crate::addresses::AddressPolicy;
use crate::drift_auth::DriftAuth;
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::Duration;
use store::{Credential, CredentialTest, Store, StoreError};

/// One step of a test, in order: `host_reached`, `token_accepted`, `org_id`, `scopes`,
/// `expires`, then, when uses were named, `least_privilege` (a warning, only when the token
/// has scopes the uses do not need) and `scope_coverage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestStep {
    /// Step name (see above).
    pub step: String,
    /// `ok`, `failed`, `warning` or `unknown`.
    pub outcome: String,
    /// What was found, for people (e.g. `org id: 1234`).
    pub detail: String,
}

/// What a test found. Also the `--json` output of `credentials test`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestReport {
    /// Credential name.
    pub credential: String,
    /// Base URL tested.
    pub base_url: String,
    /// Host (and port) contacted.
    pub host: String,
    /// Step 1: an HTTP answer came back.
    pub host_reached: bool,
    /// Step 2: Drift accepted the token.
    pub token_accepted: bool,
    /// Step 3: org id.
    pub org_id: Option<i64>,
    /// Step 4: scopes granted.
    pub scopes: Vec<String>,
    /// Step 5: `expires_in` as sent, milliseconds; 0 = never expires.
    pub expires_in_ms: Option<i64>,
    /// Expiry, epoch ms; `None` when it never expires or is unknown.
    pub expires_at: Option<i64>,
    /// Scopes the named uses need (empty when none were named).
    pub needed_scopes: Vec<String>,
    /// Needed but not granted.
    pub missing_scopes: Vec<String>,
    /// Granted but not needed (least-privilege warning); only when uses were named.
    pub extra_scopes: Vec<String>,
    /// `verified` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// The steps, in order, for display.
    pub steps: Vec<TestStep>,
}

/// Why a test failed; front ends map it to an exit code or a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The host could not be reached (network, DNS, timeout).
    Unreachable,
    /// Drift rejected the token (401 or 403, and nothing else).
    Rejected,
    /// Rate limited while testing.
    RateLimited,
    /// The credential cannot be used as configured (bad base URL).
    Config,
    /// The token works but lacks scopes the named uses need.
    MissingScopes,
    /// Anything else (a status other than 401/403, 5xx, an undecodable answer): the key was
    /// not judged, so the credential's status is left as it was.
    Other,
}

/// A failed test: what kind, the message, and what fixes it. Never contains the key.
#[derive(Debug, Clone)]
pub struct TestFailure {
    /// Kind of failure.
    pub kind: FailureKind,
    /// What went wrong, for people, without an edge's instructions (also what is stored as
    /// the credential's `last_error`): each edge adds its own with [`TestFailure::message_for`].
    pub message: String,
    /// What fixes it.
    pub fix: Fix,
    /// The credential's name (for the instructions).
    pub credential: String,
}

/// Which front end shows a message: each names its own way to fix things (the CLI a
/// command, the web UI a button, the REST API a route), never another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// `driftbridge` commands.
    Cli,
    /// The web UI's screens and buttons.
    Web,
    /// The REST API's routes.
    Api,
}

/// What fixes a failed credential test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// Nothing the credential can change (try again later, check the network): the message
    /// says it.
    Nothing,
    /// A valid access token.
    RotateKey,
    /// A token with the missing scopes.
    Scopes,
    /// The right OAuth client id and secret (with the current tokens).
    OAuthClient,
    /// Tokens from authorizing the OAuth app again.
    OAuthGrant,
}

impl Fix {
    /// The instruction for credential `name` on `edge`; `None` for [`Fix::Nothing`].
    pub fn instruction(self, name: &str, edge: Edge) -> Option<String> {
        let oauth_flags = "--api-key-env VAR --oauth-client-id ID --oauth-client-secret-env VAR \
                           --oauth-refresh-token-env VAR";
        let rotate = match (self, edge) {
            (Fix::Nothing, _) => return None,
            (Fix::OAuthClient | Fix::OAuthGrant, Edge::Cli) => {
                format!("`driftbridge credentials rotate {name} {oauth_flags}`")
            }
            (_, Edge::Cli) => format!("`driftbridge credentials rotate {name} --api-key-env VAR`"),
            (Fix::OAuthClient | Fix::OAuthGrant, Edge::Web) => format!(
                "the OAuth app fields of the Rotate key button on the tile of \"{name}\" (Authenticate screen)"
            ),
            (_, Edge::Web) => {
                format!("the Rotate key button on the tile of \"{name}\" (Authenticate screen)")
            }
            (Fix::OAuthClient | Fix::OAuthGrant, Edge::Api) => format!(
                "`POST /api/v1/credentials/{name}/rotate` with `api_key` and `oauth`"
            ),
            (_, Edge::Api) => format!("`POST /api/v1/credentials/{name}/rotate` with `api_key`"),
        };
        Some(match self {
            Fix::Nothing => return None,
            Fix::RotateKey => format!("set a valid token with {rotate}"),
            Fix::Scopes => format!("create a Drift token with these scopes and set it with {rotate}"),
            Fix::OAuthClient => format!(
                "save the right client id and client secret (with the current access and refresh tokens) with {rotate}"
            ),
            Fix::OAuthGrant => format!("after authorizing the app again, save its new tokens with {rotate}"),
        })
    }
}

impl TestFailure {
    /// The message with `edge`'s instruction for the fix appended.
    pub fn message_for(&self, edge: Edge) -> String {
        match self.fix.instruction(&self.credential, edge) {
            Some(fix) => format!("{}; {fix}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Test a stored credential with `key`, store the result on it, and return the report plus
/// the failure, if any. `uses`: stream names / write targets whose scopes are checked
/// (see [`drift_writer::scopes::required_scopes`]).
///
/// `addresses`: which hosts may be contacted (the CLI allows all; `serve` by its flag).
/// `edge`: who shows the report (its `error` names that edge's fix).
///
/// Errors: [`StoreError::Invalid`] (field `for`) for an unknown use, store errors when the
/// result cannot be saved. A failed test is not an error: see the returned failure.
pub async fn test_credential(
    store: &Store,
    credential: &Credential,
    uses: &[String],
    addresses: AddressPolicy,
    edge: Edge,
) -> Result<(TestReport, Option<TestFailure>), StoreError> {
    let needed = drift_writer::scopes::required_scopes(uses).map_err(|e| StoreError::Invalid {
        field: "for",
        message: e.0,
    })?;
    let auth = DriftAuth::of(store, credential)?;
    let (report, failure) = probe(
        &credential.name,
        &credential.base_url,
        credential.rate_limit_per_min,
        auth,
        &needed,
        addresses,
        edge,
    )
    .await;
    if let Some(stored) = stored_result(&credential.name, &report, failure.as_ref()) {
        store.record_credential_test(&credential.name, &stored)?;
    }
    Ok((report, failure))
}

/// What a test stores on the credential: `None` when the test did not judge the key.
pub(crate) fn stored_result(
    name: &str,
    report: &TestReport,
    failure: Option<&TestFailure>,
) -> Option<CredentialTest> {
    match failure {
        // Only a 401/403 judges the key, and a base URL this server may not contact makes
        // the credential unusable here; any other failure says nothing about the key.
        Some(f) if matches!(f.kind, FailureKind::Rejected | FailureKind::Config) => {
            Some(CredentialTest::failed(f.message.clone()))
        }
        Some(f) if !report.token_accepted => {
            tracing::info!(credential = %name, kind = ?f.kind, "credential test inconclusive: status left as it was");
            None
        }
        _ => Some(CredentialTest::verified(
            report.org_id,
            report.scopes.clone(),
            report.expires_at,
        )),
    }
}

/// Test a key against `base_url` without storing anything (the web UI's Test button before
/// Save). `name` is used in messages only. A host `addresses` refuses is never contacted.
/// The report's `error` names `edge`'s fix.
pub async fn probe(
    name: &str,
    base_url: &str,
    rate_limit_per_min: u32,
    auth: DriftAuth,
    needed: &BTreeSet<String>,
    addresses: AddressPolicy,
    edge: Edge,
) -> (TestReport, Option<TestFailure>) {
    let mut report = TestReport {
        credential: name.to_string(),
        base_url: base_url.to_string(),
        host: host_of(base_url),
        host_reached: false,
        token_accepted: false,
        org_id: None,
        scopes: Vec::new(),
        expires_in_ms: None,
        expires_at: None,
        needed_scopes: needed.iter().cloned().collect(),
        missing_scopes: Vec::new(),
        extra_scopes: Vec::new(),
        status: "failed".into(),
        error: None,
        steps: Vec::new(),
    };
    tracing::debug!(credential = %name, host = %report.host, "calling token_info");
    let failure = match call_token_info(base_url, rate_limit_per_min, auth, addresses).await {
        Ok(info) => accepted(&mut report, &info, needed),
        Err(e) => Some(rejected(&mut report, &e)),
    };
    report.status = match &failure {
        Some(_) if !report.token_accepted => "failed",
        _ => "verified",
    }
    .to_string();
    report.error = failure.as_ref().map(|f| f.message_for(edge));
    (report, failure)
}

async fn call_token_info(
    base_url: &str,
    rate_limit_per_min: u32,
    auth: DriftAuth,
    addresses: AddressPolicy,
) -> Result<drift_client::TokenInfo, drift_client::Error> {
    let client = auth
        .client(base_url, addresses)
        .rate_limit_per_min(rate_limit_per_min)
        .timeout(Duration::from_secs(20))
        .max_retries(2)
        .backoff(Duration::from_millis(200), Duration::from_secs(2))
        .build()?;
    client.token_info().await
}

fn step(report: &mut TestReport, name: &str, outcome: &str, detail: String) {
    report.steps.push(TestStep {
        step: name.to_string(),
        outcome: outcome.to_string(),
        detail,
    });
}

fn accepted(
    report: &mut TestReport,
    info: &drift_client::TokenInfo,
    needed: &BTreeSet<String>,
) -> Option<TestFailure> {
    report.host_reached = true;
    report.token_accepted = true;
    report.org_id = info.org_id;
    report.scopes = info.scopes.clone();
    report.expires_in_ms = Some(info.expires_in_ms);
    report.expires_at = expires_at(info);
    let host = report.host.clone();
    step(
        report,
        "host_reached",
        "ok",
        format!("host reached: {host}"),
    );
    step(report, "token_accepted", "ok", "token accepted".into());
    match info.org_id {
        Some(org) => step(report, "org_id", "ok", format!("org id: {org}")),
        None => step(
            report,
            "org_id",
            "unknown",
            "org id: not reported by Drift".into(),
        ),
    }
    let scopes = if info.scopes.is_empty() {
        "(none)".to_string()
    } else {
        info.scopes.join(" ")
    };
    step(report, "scopes", "ok", format!("scopes: {scopes}"));
    let expiry = describe_expiry(info.expires_in_ms, report.expires_at);
    step(report, "expires", "ok", format!("expires: {expiry}"));
    if needed.is_empty() {
        return None;
    }
    scope_coverage(report, &info.scopes, needed)
}

fn scope_coverage(
    report: &mut TestReport,
    granted: &[String],
    needed: &BTreeSet<String>,
) -> Option<TestFailure> {
    let check = drift_writer::scopes::check_scopes(granted, needed);
    report.missing_scopes = check.missing.clone();
    report.extra_scopes = check.extra.clone();
    if !check.extra.is_empty() {
        let warning = least_privilege_warning(report);
        step(report, "least_privilege", "warning", warning);
    }
    if check.missing.is_empty() {
        let covered = report.needed_scopes.join(", ");
        step(
            report,
            "scope_coverage",
            "ok",
            format!("scopes cover: {covered}"),
        );
        return None;
    }
    let missing = check.missing.join(", ");
    step(
        report,
        "scope_coverage",
        "failed",
        format!("missing scopes: {missing}"),
    );
    let name = &report.credential;
    Some(TestFailure {
        kind: FailureKind::MissingScopes,
        message: format!(
            "credential \"{name}\" is missing scopes needed for the named uses: {missing}"
        ),
        fix: Fix::Scopes,
        credential: name.clone(),
    })
}

/// The least-privilege warning for a report with extra scopes (empty when there are none).
pub fn least_privilege_warning(report: &TestReport) -> String {
    if report.extra_scopes.is_empty() {
        return String::new();
    }
    format!(
        "least privilege: the token has scopes that the named uses do not need: {}; consider a token with only {}",
        report.extra_scopes.join(", "),
        report.needed_scopes.join(", ")
    )
}

fn rejected(report: &mut TestReport, error: &drift_client::Error) -> TestFailure {
    use drift_client::Error as E;
    let name = report.credential.clone();
    let host = report.host.clone();
    let mut fix = Fix::Nothing;
    let (reached, kind, message) = match error {
        E::Transport { .. } | E::Timeout { .. } => (
            false,
            FailureKind::Unreachable,
            format!("could not reach the host {host}: {error}; check the base URL and the network"),
        ),
        E::Unauthorized { .. } | E::Forbidden { .. } => {
            let (message, f) = rejected_message(&name, error);
            fix = f;
            (true, FailureKind::Rejected, message)
        }
        E::RateLimited { .. } => (
            true,
            FailureKind::RateLimited,
            format!("rate limited while testing credential \"{name}\" ({error}); try again later"),
        ),
        E::Config { .. } | E::PrivateAddress { .. } => (
            false,
            FailureKind::Config,
            format!(
                "credential \"{name}\" cannot be used: {}",
                AddressPolicy::explain(error)
            ),
        ),
        _ => (true, FailureKind::Other, inconclusive_message(&name, error)),
    };
    report.host_reached = reached;
    if reached {
        step(
            report,
            "host_reached",
            "ok",
            format!("host reached: {host}"),
        );
        let (outcome, detail) = if kind == FailureKind::Rejected {
            ("failed", format!("token accepted: {error}"))
        } else {
            ("unknown", format!("token accepted: not judged ({error})"))
        };
        step(report, "token_accepted", outcome, detail);
    } else {
        step(
            report,
            "host_reached",
            "failed",
            format!("host reached: could not reach {host}"),
        );
    }
    TestFailure {
        kind,
        message,
        fix,
        credential: name,
    }
}

/// The message of a test that did not judge the key: Drift answered something other than
/// 200, 401 or 403 (or an undecodable 200). Says what happened and what to check; the
/// credential's status stays as it was.
fn inconclusive_message(name: &str, error: &drift_client::Error) -> String {
    let hint = match error.status() {
        // REFERENCE §5.2: a third-party client reports 400 for an unknown token.
        Some(400) => "; Drift answers 400 here for an unknown token too, so check the key as well as the base URL",
        Some(404 | 405) => "; the base URL probably does not point at the Drift API root (https://driftapi.com)",
        Some(500..=599) => "; Drift had a server error, try again later",
        _ => "; check the base URL (the Drift API root, https://driftapi.com)",
    };
    format!(
        "testing credential \"{name}\" was inconclusive: {error}{hint}; its status is unchanged"
    )
}

/// The message of a rejected key and its fix (each edge words the fix its own way, see
/// [`Fix::instruction`]). A refused OAuth exchange gets its own fix: the client id or secret
/// is wrong (`invalid_client`), or the app must be authorized again.
fn rejected_message(name: &str, error: &drift_client::Error) -> (String, Fix) {
    use drift_client::oauth::{refusal_of, Refusal};
    match refusal_of(error) {
        Some(Refusal::Client) => (
            format!("Drift refused the OAuth app of credential \"{name}\" ({error})"),
            Fix::OAuthClient,
        ),
        Some(Refusal::Grant) => (
            format!("Drift refused to refresh the access token of credential \"{name}\" ({error})"),
            Fix::OAuthGrant,
        ),
        None => (
            format!("Drift rejected the API key of credential \"{name}\" ({error})"),
            Fix::RotateKey,
        ),
    }
}

/// Expiry in epoch ms; `None` when `expires_in` is 0 (never, REFERENCE §2.3).
///
/// REFERENCE §11 leaves open whether `expires_in` counts from `created_at` (the token's
/// lifetime) or from now (what is left). Drift has just accepted the token, so it has not
/// expired: `created_at + expires_in` is used when it lies in the future, otherwise
/// `now + expires_in` (the remaining-time reading, which the sandbox serves).
fn expires_at(info: &drift_client::TokenInfo) -> Option<i64> {
    if info.expires_in_ms == 0 {
        return None;
    }
    let now = chrono::Utc::now().timestamp_millis();
    let from_now = now.saturating_add(info.expires_in_ms);
    Some(info.expires_at().filter(|at| *at > now).unwrap_or(from_now))
}

fn describe_expiry(expires_in_ms: i64, expires_at: Option<i64>) -> String {
    match expires_at {
        None if expires_in_ms == 0 => "never (expires_in 0)".to_string(),
        None => "unknown".to_string(),
        Some(at) => {
            let left_ms = at - chrono::Utc::now().timestamp_millis();
            let when = format_time(at);
            if left_ms <= 0 {
                format!("{when} (already expired)")
            } else {
                let minutes = left_ms / 60_000;
                format!("{when} (in {}h {:02}m)", minutes / 60, minutes % 60)
            }
        }
    }
}

/// Epoch milliseconds as RFC 3339 UTC (seconds precision).
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// `host[:port]` of a base URL, for messages.
pub fn host_of(base_url: &str) -> String {
    url::Url::parse(base_url)
        .ok()
        .and_then(|u| {
            let host = u.host_str()?.to_string();
            Some(match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            })
        })
        .unwrap_or_else(|| base_url.to_string())
}
