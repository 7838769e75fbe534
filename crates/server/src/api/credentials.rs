//! `/api/v1/credentials`: list, create, get, update, rotate key, delete, test.
//!
//! The API key is write-only: requests may carry it (`api_key`), responses never do; they
//! show `key_mask` (`••••3f9a`). Credentials are addressed by id (`cred_…`) or by name
//! (case-insensitive).

use crate::problem::{ApiError, ApiResult, Problem};
use crate::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flows::addresses::AddressPolicy;
use flows::check::{self, Edge, TestReport};
use flows::credential_add::{add_credential, failed_field, AddCredential, AddError, SaveMode};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use store::{Credential, CredentialUpdate, NewCredential, Store};
use utoipa::ToSchema;

/// A credential as the API shows it (never the key; only its mask). Timestamps: epoch ms.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CredentialView {
    /// Stable id, `cred_` + 16 hex digits.
    pub id: String,
    /// Unique name (case-insensitive), 1-100 characters.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
    /// `drift`.
    pub kind: String,
    /// Normalised base URL, e.g. `https://driftapi.com`.
    pub base_url: String,
    /// The key's mask, `••••` + its last 4 characters.
    pub key_mask: String,
    /// Request budget per minute.
    pub rate_limit_per_min: u32,
    /// `unverified`, `verified` or `failed`.
    pub status: String,
    /// Last test time.
    pub tested_at: Option<i64>,
    /// Drift org id from the last successful test.
    pub org_id: Option<i64>,
    /// Scopes from the last successful test.
    pub scopes: Vec<String>,
    /// Token expiry; `null` when it never expires or is untested.
    pub expires_at: Option<i64>,
    /// Error of the last failed test or run.
    pub last_error: Option<String>,
    /// Client id of the OAuth app that refreshes the access token when it expires; `null`
    /// for an install token. The app's secret and refresh token are never returned.
    pub oauth_client_id: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change time.
    pub updated_at: i64,
}

impl From<Credential> for CredentialView {
    fn from(c: Credential) -> Self {
        CredentialView {
            id: c.id,
            name: c.name,
            description: c.description,
            kind: c.kind,
            base_url: c.base_url,
            key_mask: c.key_mask,
            rate_limit_per_min: c.rate_limit_per_min,
            status: c.status.to_string(),
            tested_at: c.tested_at,
            org_id: c.org_id,
            scopes: c.scopes,
            expires_at: c.expires_at,
            last_error: c.last_error,
            oauth_client_id: c.oauth_client_id,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// OAuth refresh settings of a credential whose key is an OAuth app's access token
/// (REFERENCE §2.2): with them an expired access token is refreshed by itself. Write-only
/// secrets.
#[derive(Deserialize, ToSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an object with client_id, client_secret, refresh_token"
)]
pub struct OAuthSettingsBody {
    /// The app's client id (developer portal, OAuth & Permissions).
    pub client_id: String,
    /// The app's client secret. Write-only.
    #[schema(value_type = String, format = Password)]
    pub client_secret: SecretString,
    /// The refresh token that came with the access token. Write-only.
    #[schema(value_type = String, format = Password)]
    pub refresh_token: SecretString,
}

impl OAuthSettingsBody {
    /// The settings, each value checked; errors name `oauth.client_id`,
    /// `oauth.client_secret` or `oauth.refresh_token` (`prefix` = `"oauth."`; the web UI's
    /// form fields use `"oauth_"`).
    pub(crate) fn check(
        self,
        prefix: &str,
    ) -> Result<store::OAuthSettings, Vec<crate::problem::FieldError>> {
        use drift_client::ExposeSecret;
        let mut errors = Vec::new();
        let mut value = |field: &str, what: &str, raw: &str| match store::validate::oauth_value(
            "oauth", what, raw,
        ) {
            Ok(v) => v,
            Err(e) => {
                let message = match e {
                    store::StoreError::Invalid { message, .. } => message,
                    other => other.to_string(),
                };
                errors.push(crate::problem::FieldError {
                    field: format!("{prefix}{field}"),
                    message,
                });
                String::new()
            }
        };
        let settings = store::OAuthSettings {
            client_id: value("client_id", "client id", &self.client_id),
            client_secret: SecretString::from(value(
                "client_secret",
                "client secret",
                self.client_secret.expose_secret(),
            )),
            refresh_token: SecretString::from(value(
                "refresh_token",
                "refresh token",
                self.refresh_token.expose_secret(),
            )),
        };
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

/// Body of `POST /api/v1/credentials`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    /// Unique name, 1-100 characters.
    pub name: String,
    /// Optional description, up to 1000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// The Drift access token. Write-only; 16 to 4096 characters.
    #[schema(value_type = String, format = Password, min_length = 16, max_length = 4096)]
    pub api_key: SecretString,
    /// Base URL; default `https://driftapi.com`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Request budget per minute; default 600.
    #[serde(default)]
    pub rate_limit_per_min: Option<u32>,
    /// For an OAuth app's access token: how to refresh it when it expires.
    #[serde(default)]
    pub oauth: Option<OAuthSettingsBody>,
    /// The key is tested against Drift before it is saved; a failed test saves nothing
    /// (422 naming the field) unless this is `true` (then it is saved with the failure).
    #[serde(default)]
    pub save_untested: bool,
}

/// Body of `PATCH /api/v1/credentials/{id}`: absent fields stay as they are. The key and the
/// OAuth app are changed with `POST /api/v1/credentials/{id}/rotate`, not here.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateCredential {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description; `""` removes it.
    #[serde(default)]
    pub description: Option<String>,
    /// New base URL (the credential becomes unverified).
    #[serde(default)]
    pub base_url: Option<String>,
    /// New request budget per minute.
    #[serde(default)]
    pub rate_limit_per_min: Option<u32>,
}

/// Body of `POST /api/v1/credentials/{id}/rotate`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// The new Drift access token. Write-only; 16 to 4096 characters.
    #[schema(value_type = String, format = Password, min_length = 16, max_length = 4096)]
    pub api_key: SecretString,
    /// The OAuth app that refreshes the new token. Absent: the credential's OAuth app (if
    /// any) is kept. An object: replaces it (or adds one). `null`: removes it, so the new key
    /// is an install token that is never refreshed.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<OAuthSettingsBody>, nullable)]
    pub oauth: Option<Option<OAuthSettingsBody>>,
}

/// A field that is present (`null` included): `Some(value)`; an absent one stays `None`
/// through `#[serde(default)]`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Body of `POST /api/v1/credentials/{id}/test` (optional).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// Streams / write targets whose scopes to check (`conversations`, `push:contacts`, `all`).
    #[serde(default, rename = "for")]
    pub uses: Vec<String>,
}

/// Answer of a test: the report and the credential as stored after it.
#[derive(Serialize, ToSchema)]
pub struct TestResponse {
    /// Step-by-step report.
    pub test: TestReport,
    /// The credential after the test (status, tested_at, org_id, scopes).
    pub credential: CredentialView,
}

/// Query of `DELETE /api/v1/credentials/{id}`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
pub struct DeleteQuery {
    /// Delete even while data sources, destinations or flows use it (they lose it).
    #[serde(default)]
    pub force: bool,
}

/// Routes under `/api/v1/credentials`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/credentials", get(list).post(create))
        .route("/credentials/{id}", get(show).patch(update).delete(delete))
        .route("/credentials/{id}/rotate", post(rotate))
        .route("/credentials/{id}/test", post(test))
}

/// Find a credential by id (`cred_…`) or name.
pub(crate) fn resolve(store: &Store, key: &str) -> ApiResult<Credential> {
    Ok(flows::pusher::resolve_credential(store, key)?)
}

/// Validate every field of a new credential, collecting all errors (not only the first).
/// A base URL `addresses` refuses gets that error instead of any other on `base_url`.
pub(crate) fn validate_new(
    name: &str,
    description: Option<&str>,
    base_url: &str,
    api_key: &SecretString,
    rate_limit_per_min: u32,
    addresses: AddressPolicy,
) -> Result<(), Vec<crate::problem::FieldError>> {
    use store::validate as v;
    let results = [
        v::name(name).err(),
        v::description(description).err(),
        v::api_key(api_key).err(),
        v::base_url(base_url).err(),
        v::rate_limit_per_min(rate_limit_per_min).err(),
    ];
    let errors: Vec<_> = results
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            store::StoreError::Invalid { field, message } => Some(crate::problem::FieldError {
                field: field.to_string(),
                message,
            }),
            _ => None,
        })
        .collect();
    let errors = with_address_check(errors, base_url, addresses);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// `errors` with the `base_url` error of `addresses` (if any) replacing the others on that
/// field: the refused address is the first thing to fix.
pub(crate) fn with_address_check(
    mut errors: Vec<crate::problem::FieldError>,
    base_url: &str,
    addresses: AddressPolicy,
) -> Vec<crate::problem::FieldError> {
    if let Some(refused) = addresses.check_base_url(base_url) {
        errors.retain(|e| e.field != "base_url");
        errors.push(refused);
    }
    errors
}

#[utoipa::path(get, operation_id = "list_credentials", path = "/api/v1/credentials", tag = "credentials",
    responses((status = 200, body = [CredentialView]), (status = 401, body = Problem)))]
async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<CredentialView>>> {
    let list = state.store.list_credentials()?;
    Ok(Json(list.into_iter().map(CredentialView::from).collect()))
}

#[utoipa::path(post, operation_id = "create_credential", path = "/api/v1/credentials", tag = "credentials", request_body = CreateCredential,
    responses((status = 201, body = CredentialView), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 401, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    body: Result<Json<CreateCredential>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    let base_url = body
        .base_url
        .clone()
        .unwrap_or_else(|| store::validate::DEFAULT_BASE_URL.to_string());
    let rate = body
        .rate_limit_per_min
        .unwrap_or(store::validate::DEFAULT_RATE_LIMIT_PER_MIN);
    let checked = validate_new(
        &body.name,
        body.description.as_deref(),
        &base_url,
        &body.api_key,
        rate,
        state.addresses(),
    );
    let oauth = body.oauth.map(|o| o.check("oauth.")).transpose();
    let oauth = match (checked, oauth) {
        (Ok(()), Ok(oauth)) => oauth,
        (a, b) => {
            let mut errors = a.err().unwrap_or_default();
            errors.extend(b.err().unwrap_or_default());
            return Err(ApiError::Validation(errors));
        }
    };
    let mode = if body.save_untested {
        SaveMode::SaveUntested
    } else {
        SaveMode::Test
    };
    let request = AddCredential {
        new: NewCredential {
            name: body.name,
            description: body.description,
            base_url: Some(base_url),
            api_key: body.api_key,
            rate_limit_per_min: rate,
        },
        oauth,
        uses: Vec::new(),
        mode,
    };
    let added = add_credential(&state.store, request, state.addresses(), Edge::Api)
        .await
        .map_err(add_error)?;
    let credential = added.credential;
    if let Some(report) = &added.report {
        flows::metrics::credential_tested(&credential.name, &report.status);
    }
    tracing::info!(credential = %credential.name, id = %credential.id, "credential saved");
    let location = format!("/api/v1/credentials/{}", credential.id);
    let view = CredentialView::from(credential);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

/// A credential not added, as the REST API answers it: a taken name is 409 naming the
/// rotate route; a failed test 422 on the field at fault.
pub(crate) fn add_error(e: AddError) -> ApiError {
    let message = e.message_for(Edge::Api);
    match e {
        AddError::Taken { .. } => ApiError::Duplicate(message),
        AddError::TestFailed { failure, .. } => ApiError::field(failed_field(&failure), message),
        AddError::Store(inner) => inner.into(),
    }
}

#[utoipa::path(get, operation_id = "get_credential", path = "/api/v1/credentials/{id}", tag = "credentials",
    params(("id" = String, Path, description = "credential id or name")),
    responses((status = 200, body = CredentialView), (status = 404, body = Problem)))]
async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<CredentialView>> {
    Ok(Json(resolve(&state.store, &id)?.into()))
}

#[utoipa::path(patch, operation_id = "update_credential", path = "/api/v1/credentials/{id}", tag = "credentials", request_body = UpdateCredential,
    params(("id" = String, Path, description = "credential id or name")),
    responses((status = 200, body = CredentialView), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<UpdateCredential>, JsonRejection>,
) -> ApiResult<Json<CredentialView>> {
    let Json(body) = body.map_err(update_hint)?;
    let current = resolve(&state.store, &id)?;
    if let Some(refused) = body
        .base_url
        .as_deref()
        .and_then(|u| state.addresses().check_base_url(u))
    {
        return Err(ApiError::Validation(vec![refused]));
    }
    let update = CredentialUpdate {
        name: body.name,
        description: body.description.map(Some),
        base_url: body.base_url,
        rate_limit_per_min: body.rate_limit_per_min,
    };
    Ok(Json(
        state
            .store
            .update_credential(&current.name, &update)?
            .into(),
    ))
}

#[utoipa::path(post, operation_id = "rotate_credential", path = "/api/v1/credentials/{id}/rotate", tag = "credentials", request_body = RotateKey,
    params(("id" = String, Path, description = "credential id or name")),
    responses((status = 200, body = CredentialView), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<RotateKey>, JsonRejection>,
) -> ApiResult<Json<CredentialView>> {
    let Json(body) = body?;
    let current = resolve(&state.store, &id)?;
    let change = match body.oauth {
        None => store::OAuthChange::Keep,
        Some(None) => store::OAuthChange::Remove,
        Some(Some(o)) => store::OAuthChange::Set(o.check("oauth.").map_err(ApiError::Validation)?),
    };
    let rotated = state
        .store
        .rotate_credential(&current.name, &body.api_key, &change)?;
    tracing::info!(credential = %rotated.name, oauth = ?change_name(&change), "credential key rotated");
    Ok(Json(rotated.into()))
}

/// A PATCH body with `api_key` or `oauth`: the 422 says where they are changed.
fn update_hint(rejection: JsonRejection) -> ApiError {
    match ApiError::from(rejection) {
        ApiError::Validation(mut errors) => {
            for e in &mut errors {
                if matches!(e.field.as_str(), "api_key" | "oauth")
                    && e.message.starts_with("unknown field")
                {
                    e.message.push_str(
                        "; use POST /api/v1/credentials/{id}/rotate to change the key or OAuth app",
                    );
                }
            }
            ApiError::Validation(errors)
        }
        other => other,
    }
}

/// What a rotation did to the OAuth app, for the log (no secret).
fn change_name(change: &store::OAuthChange) -> &'static str {
    match change {
        store::OAuthChange::Keep => "kept",
        store::OAuthChange::Set(_) => "replaced",
        store::OAuthChange::Remove => "removed",
    }
}

#[utoipa::path(delete, operation_id = "delete_credential", path = "/api/v1/credentials/{id}", tag = "credentials", params(("id" = String, Path, description = "credential id or name"), DeleteQuery),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> ApiResult<StatusCode> {
    let Query(query) = query?;
    let current = resolve(&state.store, &id)?;
    state.store.delete_credential(&current.name, query.force)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, operation_id = "test_credential", path = "/api/v1/credentials/{id}/test", tag = "credentials", request_body(content = TestRequest, description = "optional"),
    params(("id" = String, Path, description = "credential id or name")),
    responses((status = 200, body = TestResponse, description = "the test ran; see test.status"),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<TestResponse>> {
    let uses = if body.iter().all(u8::is_ascii_whitespace) {
        Vec::new()
    } else {
        serde_json::from_slice::<TestRequest>(&body)
            .map_err(|e| {
                let cleaned = crate::json_error::clean_message(&e.to_string());
                ApiError::field("for", format!("the body is not a test request: {cleaned}"))
            })?
            .uses
    };
    let current = resolve(&state.store, &id)?;
    let (report, _) = run_test(&state, &current, &uses, Edge::Api).await?;
    let credential = resolve(&state.store, &current.id)?.into();
    Ok(Json(TestResponse {
        test: report,
        credential,
    }))
}

/// Test a stored credential and record the result (and a metric); the report's error names
/// `edge`'s fix.
pub(crate) async fn run_test(
    state: &AppState,
    credential: &Credential,
    uses: &[String],
    edge: Edge,
) -> ApiResult<(TestReport, Option<check::TestFailure>)> {
    let (report, failure) =
        check::test_credential(&state.store, credential, uses, state.addresses(), edge).await?;
    flows::metrics::credential_tested(&credential.name, &report.status);
    Ok((report, failure))
}
