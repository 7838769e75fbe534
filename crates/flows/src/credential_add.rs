//! Adding a credential: the one function behind `driftbridge credentials add`,
//! `POST /api/v1/credentials` and the web UI's Add Credential overlay.
//!
//! The key is tested against Drift *before* anything is saved: a key Drift rejects (or a host
//! that cannot be reached, or missing scopes) leaves no credential behind, so the user fixes
//! the key and adds it again under the same name. Saving an untested or failing credential
//! is an explicit choice ([`SaveMode::SaveUntested`]: `--save-untested`,
//! `"save_untested": true`, the overlay's checkbox; [`SaveMode::NoTest`]: `--no-test`).
//! A name already taken is refused with how to rotate that credential's key instead, worded
//! for the edge that shows it ([`Edge`]).

use crate::addresses::AddressPolicy;
use crate::check::{self, Edge, TestFailure, TestReport};
use crate::drift_auth::{grant_expires_at, DriftAuth};
use store::{Credential, NewCredential, OAuthSettings, Store, StoreError};

/// Whether and how the new credential is tested before it is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    /// Test first; save only when the test passes (the default everywhere).
    Test,
    /// Test first; save even when the test fails (the result is stored on it).
    SaveUntested,
    /// Save without testing (status `unverified`).
    NoTest,
}

/// What to add.
pub struct AddCredential {
    /// Name, description, base URL, key, rate budget (validated by the store).
    pub new: NewCredential,
    /// The OAuth app that refreshes the key, if it is an OAuth access token.
    pub oauth: Option<OAuthSettings>,
    /// Streams / write targets whose scopes the test checks (`--for`); may be empty.
    pub uses: Vec<String>,
    /// Test, save anyway, or do not test.
    pub mode: SaveMode,
}

/// A saved credential and its test, when one ran.
#[derive(Debug)]
pub struct Added {
    /// The credential as stored after the test.
    pub credential: Credential,
    /// The test's report (`None` with [`SaveMode::NoTest`]).
    pub report: Option<TestReport>,
    /// The test's failure, when it failed and [`SaveMode::SaveUntested`] saved it anyway.
    pub failure: Option<TestFailure>,
}

/// Why nothing was saved.
#[derive(Debug)]
pub enum AddError {
    /// A credential with that name (case-insensitive) exists: rotate its key instead.
    Taken {
        /// The existing credential's name, as it is spelled.
        existing: String,
    },
    /// The test failed: nothing saved.
    TestFailed {
        /// The test's report (each step).
        report: Box<TestReport>,
        /// What failed.
        failure: TestFailure,
    },
    /// A field is invalid ([`StoreError::Invalid`], naming the field) or the store failed.
    Store(StoreError),
}

impl From<StoreError> for AddError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { existing, .. } => AddError::Taken { existing },
            other => AddError::Store(other),
        }
    }
}

/// The field a failed test points at: `base_url` when the host could not be reached or may
/// not be contacted, `oauth` when Drift refused the OAuth app, `api_key` otherwise.
pub fn failed_field(failure: &TestFailure) -> &'static str {
    use check::{FailureKind, Fix};
    match (failure.kind, failure.fix) {
        (FailureKind::Unreachable | FailureKind::Config | FailureKind::Other, _) => "base_url",
        (_, Fix::OAuthClient | Fix::OAuthGrant) => "oauth",
        _ => "api_key",
    }
}

impl AddError {
    /// The message for `edge`, naming that edge's way out (a command, a button, a route).
    pub fn message_for(&self, edge: Edge) -> String {
        match self {
            AddError::Taken { existing } => {
                let rotate = match edge {
                    Edge::Cli => {
                        format!("run `driftbridge credentials rotate {existing} --api-key-env VAR`")
                    }
                    Edge::Web => format!("use the Rotate key button on the tile of \"{existing}\""),
                    Edge::Api => format!("send it to `POST /api/v1/credentials/{existing}/rotate`"),
                };
                format!(
                    "a credential named \"{existing}\" already exists; to give it a new key, {rotate}; to add another one, pick a different name"
                )
            }
            AddError::TestFailed { failure, .. } => {
                let anyway = match edge {
                    Edge::Cli => "fix the key or base URL and run `driftbridge credentials add` again, or add `--save-untested` to save it anyway",
                    Edge::Web => "fix the key or base URL and press Save again, or tick \"Save even if the test fails\"",
                    Edge::Api => "fix `api_key` or `base_url` and send it again, or send `\"save_untested\": true` to save it anyway",
                };
                let scopes = if failure.fix == check::Fix::Scopes {
                    "; create a Drift token with these scopes"
                } else {
                    ""
                };
                format!(
                    "{}{scopes}; the credential was not saved: {anyway}",
                    failure.message
                )
            }
            AddError::Store(e) => e.to_string(),
        }
    }
}

/// Add credential `add` to `store`: refuse a taken name, test the key against Drift
/// (`POST /app/token_info`, REFERENCE §2.3; a refreshed OAuth token is kept for the save),
/// then save it with the test's result, or not at all when the test fails under
/// [`SaveMode::Test`]. `addresses`: the hosts the test may contact; `edge`: who shows the
/// report (its `error` names that edge's fix).
///
/// Errors: [`AddError::Taken`], [`AddError::TestFailed`], [`AddError::Store`] (an invalid
/// field, with its name; an unknown `--for` use is field `for`).
pub async fn add_credential(
    store: &Store,
    add: AddCredential,
    addresses: AddressPolicy,
    edge: Edge,
) -> Result<Added, AddError> {
    if let Ok(existing) = store.credential(&add.new.name) {
        return Err(AddError::Taken {
            existing: existing.name,
        });
    }
    let needed =
        drift_writer::scopes::required_scopes(&add.uses).map_err(|e| StoreError::Invalid {
            field: "for",
            message: e.0,
        })?;
    if add.mode == SaveMode::NoTest {
        let credential = store.add_credential_with_oauth(&add.new, add.oauth.as_ref())?;
        return Ok(Added {
            credential,
            report: None,
            failure: None,
        });
    }
    let key = store::validate::api_key(&add.new.api_key)?.key;
    let base_url = store::validate::base_url(
        add.new
            .base_url
            .as_deref()
            .unwrap_or(store::validate::DEFAULT_BASE_URL),
    )?
    .url;
    let (auth, refreshed) = DriftAuth::unsaved(key, add.oauth.as_ref());
    let name = add.new.name.trim().to_string();
    let (report, failure) = check::probe(
        &name,
        &base_url,
        add.new.rate_limit_per_min,
        auth,
        &needed,
        addresses,
        edge,
    )
    .await;
    if let (Some(failure), SaveMode::Test) = (&failure, add.mode) {
        tracing::info!(credential = %name, kind = ?failure.kind, "credential test failed: not saved");
        return Err(AddError::TestFailed {
            report: Box::new(report),
            failure: failure.clone(),
        });
    }
    let credential = store.add_credential_with_oauth(&add.new, add.oauth.as_ref())?;
    let grant = refreshed.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(grant) = grant {
        store.save_refreshed_tokens(
            &credential.id,
            &grant.access_token,
            grant.refresh_token.as_ref(),
            grant_expires_at(&grant),
        )?;
    }
    if let Some(stored) = check::stored_result(&credential.name, &report, failure.as_ref()) {
        store.record_credential_test(&credential.name, &stored)?;
    }
    let credential = store.credential(&credential.name)?;
    Ok(Added {
        credential,
        report: Some(report),
        failure,
    })
}
