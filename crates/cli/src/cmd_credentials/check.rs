//! `credentials test`: check a credential against Drift (`POST /app/token_info`, REFERENCE
//! §2.3), step by step, store the result, and compare scopes with the intended use
//! (REFERENCE §3, DESIGN.md §2).

use crate::common::{exit, fail, Ctx};
use secrecy::SecretString;
use serde::Serialize;
use std::time::Duration;
use store::{Credential, CredentialTest, Store};

/// What a test found. Serialised as the `--json` output of `credentials test`.
#[derive(Debug, Serialize)]
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
    /// Scopes the `--for` uses need (empty without `--for`).
    pub needed_scopes: Vec<String>,
    /// Needed but not granted.
    pub missing_scopes: Vec<String>,
    /// Granted but not needed (least-privilege warning); only with `--for`.
    pub extra_scopes: Vec<String>,
    /// `verified` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// How a failed test ends the process.
struct Failure {
    code: u8,
    message: String,
}

/// Run the test for `credential` with `key`, print each step, store the result, and return
/// the report plus, when the test failed, the error to exit with.
pub async fn run_test(
    ctx: &Ctx,
    store: &Store,
    credential: &Credential,
    key: SecretString,
    uses: &[String],
) -> anyhow::Result<(TestReport, Option<anyhow::Error>)> {
    let needed =
        store::scopes::required_scopes(uses).map_err(crate::cmd_credentials::store_error)?;
    let mut report = TestReport {
        credential: credential.name.clone(),
        base_url: credential.base_url.clone(),
        host: host_of(&credential.base_url),
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
    };
    let human = !ctx.json;
    if human {
        println!(
            "Testing credential \"{}\" against {}",
            credential.name, credential.base_url
        );
    }
    tracing::debug!(credential = %credential.name, host = %report.host, "calling token_info");
    let failure = match call_token_info(credential, key).await {
        Ok(info) => accepted(&mut report, &info, &needed, human),
        Err(e) => Some(rejected(&mut report, &e, human)),
    };
    let stored = match &failure {
        Some(f) if !report.token_accepted => CredentialTest::failed(f.message.clone()),
        _ => CredentialTest::verified(report.org_id, report.scopes.clone(), report.expires_at),
    };
    store
        .record_credential_test(&credential.name, &stored)
        .map_err(crate::cmd_credentials::store_error)?;
    report.status = stored.status.to_string();
    report.error = failure.as_ref().map(|f| f.message.clone());
    Ok((report, failure.map(|f| fail(f.code, f.message))))
}

async fn call_token_info(
    credential: &Credential,
    key: SecretString,
) -> Result<drift_client::TokenInfo, drift_client::Error> {
    let client = drift_client::Client::builder(&credential.base_url, key)
        .rate_limit_per_min(credential.rate_limit_per_min)
        .timeout(Duration::from_secs(20))
        .max_retries(2)
        .backoff(Duration::from_millis(200), Duration::from_secs(2))
        .build()?;
    client.token_info().await
}

fn accepted(
    report: &mut TestReport,
    info: &drift_client::TokenInfo,
    needed: &std::collections::BTreeSet<String>,
    human: bool,
) -> Option<Failure> {
    report.host_reached = true;
    report.token_accepted = true;
    report.org_id = info.org_id;
    report.scopes = info.scopes.clone();
    report.expires_in_ms = Some(info.expires_in_ms);
    report.expires_at = expires_at(info);
    if human {
        println!("  ✓ host reached: {}", report.host);
        println!("  ✓ token accepted");
        match info.org_id {
            Some(org) => println!("  ✓ org id: {org}"),
            None => println!("  ? org id: not reported by Drift"),
        }
        println!("  ✓ scopes: {}", or_none(&info.scopes.join(" ")));
        println!(
            "  ✓ expires: {}",
            describe_expiry(info.expires_in_ms, report.expires_at)
        );
    }
    if needed.is_empty() {
        return None;
    }
    let check = store::scopes::check_scopes(&info.scopes, needed);
    report.missing_scopes = check.missing.clone();
    report.extra_scopes = check.extra.clone();
    if !check.extra.is_empty() {
        eprintln!(
            "warning: least privilege: the token has scopes that the named uses do not need: {}; consider a token with only {}",
            check.extra.join(", "),
            report.needed_scopes.join(", ")
        );
    }
    if check.missing.is_empty() {
        if human {
            println!("  ✓ scopes cover: {}", report.needed_scopes.join(", "));
        }
        return None;
    }
    if human {
        println!("  ✗ missing scopes: {}", check.missing.join(", "));
    }
    Some(Failure {
        code: exit::CREDENTIAL_REJECTED,
        message: format!(
            "credential \"{}\" is missing scopes needed for what --for names: {}; create a Drift token with these scopes and run `driftbridge credentials rotate {}`",
            report.credential,
            check.missing.join(", "),
            report.credential
        ),
    })
}

fn rejected(report: &mut TestReport, error: &drift_client::Error, human: bool) -> Failure {
    use drift_client::Error as E;
    let (reached, code, message) = match error {
        E::Transport { .. } | E::Timeout { .. } => (
            false,
            exit::FAILURE,
            format!("could not reach the host {}: {error}; check the base URL and the network", report.host),
        ),
        E::Unauthorized { .. } | E::Forbidden { .. } | E::Invalid { .. } => (
            true,
            exit::CREDENTIAL_REJECTED,
            format!("Drift rejected the API key of credential \"{}\" ({error}); set a valid token with `driftbridge credentials rotate {}`", report.credential, report.credential),
        ),
        E::RateLimited { .. } => (
            true,
            exit::RATE_LIMITED,
            format!("rate limited while testing credential \"{}\" ({error}); try again later", report.credential),
        ),
        E::Config { .. } => (
            false,
            exit::USAGE,
            format!("credential \"{}\" cannot be used: {error}", report.credential),
        ),
        _ => (
            true,
            exit::FAILURE,
            format!("testing credential \"{}\" failed: {error}", report.credential),
        ),
    };
    report.host_reached = reached;
    if human {
        if reached {
            println!("  ✓ host reached: {}", report.host);
            println!("  ✗ token accepted: {error}");
        } else {
            println!("  ✗ host reached: could not reach {}", report.host);
        }
    }
    Failure { code, message }
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
            let when = crate::cmd_credentials::format_time(at);
            if left_ms <= 0 {
                format!("{when} (already expired)")
            } else {
                let minutes = left_ms / 60_000;
                format!("{when} (in {}h {:02}m)", minutes / 60, minutes % 60)
            }
        }
    }
}

fn or_none(text: &str) -> &str {
    if text.is_empty() {
        "(none)"
    } else {
        text
    }
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
