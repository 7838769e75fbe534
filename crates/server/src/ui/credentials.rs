//! The Authenticate screen: one tile per Drift credential and the Add Credential tile, whose
//! overlay (Credential Name, Credential Description, API Key Value, Base URL) tests and saves
//! a credential. Tiles have Test, Edit, Rotate key and Delete.
//!
//! The key is only ever received (form posts), never rendered: the form's key field is
//! always empty and tiles show the mask.

use super::{filters, render, StepView};
use crate::api::credentials::{resolve, run_test, validate_new, with_address_check};
use crate::problem::{ApiError, FieldError};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use flows::check::{self, Edge, TestReport};
use flows::credential_add::{add_credential, failed_field, AddCredential, AddError, SaveMode};
use secrecy::SecretString;
use serde::Deserialize;
use store::{Credential, CredentialUpdate, NewCredential, StoreError};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/credentials", get(page))
        .route("/ui/credentials", post(save_new))
        .route("/ui/credentials/new", get(new_form))
        .route("/ui/credentials/check", post(check_fields))
        .route("/ui/credentials/probe", post(probe))
        .route("/ui/credentials/{id}", axum::routing::delete(delete))
        .route("/ui/credentials/{id}/test", post(test))
        .route("/ui/credentials/{id}/edit", get(edit_form).post(save_edit))
        .route(
            "/ui/credentials/{id}/rotate",
            get(rotate_form).post(save_rotate),
        )
}

/// What a tile shows.
pub(crate) struct TileView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub base_url: String,
    pub key_mask: String,
    pub status: String,
    pub tested: String,
    pub org_id: String,
    /// "OAuth app <client id>" when an expired token is refreshed, else "".
    pub refresh: String,
    pub message: String,
    pub steps: Vec<StepView>,
    /// `hx-swap-oob` value when the tile travels out of band ("" otherwise).
    pub oob: String,
    /// The shared budget's live use ([`budget_text`]); "" when not read.
    pub budget: String,
}

/// The live use of `c`'s shared rate budget for its tile: requests in the last minute by
/// every process on the credential, against its budget, and the pause a server hint set
/// (if still in force). "" when it cannot be read.
pub(crate) async fn budget_text(store: &store::Store, c: &Credential) -> String {
    let Ok(used) = store.budget_use(c).await else {
        return String::new();
    };
    let mut text = format!(
        "{} requests in the last minute (all processes) of {}/min",
        used.requests_last_minute, c.rate_limit_per_min
    );
    if let Some(until) = used
        .paused_until
        .filter(|t| *t > chrono::Utc::now().timestamp_millis())
    {
        text.push_str(&format!(
            "; paused by Drift until {}",
            check::format_time(until)
        ));
    }
    text
}

impl TileView {
    pub(crate) fn new(c: &Credential) -> Self {
        TileView {
            id: c.id.clone(),
            name: c.name.clone(),
            description: c.description.clone().unwrap_or_default(),
            base_url: c.base_url.clone(),
            key_mask: c.key_mask.clone(),
            status: c.status.to_string(),
            tested: c
                .tested_at
                .map(|t| super::Time::at(t).to_string())
                .unwrap_or_else(|| "never".into()),
            org_id: c
                .org_id
                .map(|o| o.to_string())
                .unwrap_or_else(|| "–".into()),
            refresh: c
                .oauth_client_id
                .as_ref()
                .map(|id| format!("OAuth app {id}"))
                .unwrap_or_default(),
            message: c.last_error.clone().unwrap_or_default(),
            steps: Vec::new(),
            oob: String::new(),
            budget: String::new(),
        }
    }

    fn with_report(mut self, report: &TestReport) -> Self {
        self.steps = report.steps.iter().map(StepView::from).collect();
        self.message = report.error.clone().unwrap_or_default();
        self
    }
}

#[derive(Template)]
#[template(path = "credentials.html")]
struct CredentialsPage {
    nav: &'static str,
    tiles: Vec<TileView>,
}

async fn page(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut tiles = Vec::new();
    for c in state.store.list_credentials()? {
        let mut tile = TileView::new(&c);
        tile.budget = budget_text(&state.store, &c).await;
        tiles.push(tile);
    }
    Ok(render(&CredentialsPage {
        nav: "credentials",
        tiles,
    }))
}

#[derive(Template)]
#[template(path = "tile.html")]
struct Tile {
    c: TileView,
}

#[derive(Template)]
#[template(path = "credential_form.html")]
struct CredentialForm {
    title: String,
    action: String,
    test_action: String,
    show_name: bool,
    show_key: bool,
    show_url: bool,
    name: String,
    description: String,
    base_url: String,
    /// Client id of the credential's OAuth app (Rotate key only; "" when none): the overlay
    /// offers to keep, replace or remove it. Its secrets are never rendered.
    oauth_app: String,
}

async fn new_form() -> Response {
    render(&CredentialForm {
        title: "Add New Credential".into(),
        action: "/ui/credentials".into(),
        test_action: "/ui/credentials/probe".into(),
        show_name: true,
        show_key: true,
        show_url: true,
        name: String::new(),
        description: String::new(),
        base_url: store::validate::DEFAULT_BASE_URL.into(),
        oauth_app: String::new(),
    })
}

async fn edit_form(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = resolve(&state.store, &id)?;
    Ok(render(&CredentialForm {
        title: format!("Edit credential {}", c.name),
        action: format!("/ui/credentials/{}/edit", c.id),
        test_action: String::new(),
        show_name: true,
        show_key: false,
        show_url: true,
        name: c.name,
        description: c.description.unwrap_or_default(),
        base_url: c.base_url,
        oauth_app: String::new(),
    }))
}

async fn rotate_form(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = resolve(&state.store, &id)?;
    Ok(render(&CredentialForm {
        title: format!("Rotate the API key of {}", c.name),
        action: format!("/ui/credentials/{}/rotate", c.id),
        test_action: "/ui/credentials/probe".into(),
        show_name: false,
        show_key: true,
        show_url: false,
        name: c.name,
        description: String::new(),
        base_url: c.base_url,
        oauth_app: c.oauth_client_id.unwrap_or_default(),
    }))
}

/// The overlay's fields. Absent fields are `None` (inline checks send one field at a time).
#[derive(Deserialize)]
struct Fields {
    name: Option<String>,
    description: Option<String>,
    api_key: Option<SecretString>,
    base_url: Option<String>,
    /// Optional OAuth app settings (all three, or none).
    oauth_client_id: Option<String>,
    oauth_client_secret: Option<SecretString>,
    oauth_refresh_token: Option<SecretString>,
    /// Rotate key: "on" removes the credential's OAuth app.
    oauth_remove: Option<String>,
    /// Add: "on" saves the credential even when its test fails.
    save_untested: Option<String>,
}

impl Fields {
    /// The OAuth settings when any of the three fields is filled in (then all three are
    /// checked); errors name `oauth_client_id`, `oauth_client_secret`, `oauth_refresh_token`.
    fn oauth(&mut self) -> Result<Option<store::OAuthSettings>, Vec<FieldError>> {
        use secrecy::ExposeSecret;
        let id = self.oauth_client_id.take().unwrap_or_default();
        let empty = || SecretString::from(String::new());
        let secret = self.oauth_client_secret.take().unwrap_or_else(empty);
        let refresh = self.oauth_refresh_token.take().unwrap_or_else(empty);
        if id.trim().is_empty()
            && secret.expose_secret().trim().is_empty()
            && refresh.expose_secret().trim().is_empty()
        {
            return Ok(None);
        }
        crate::api::credentials::OAuthSettingsBody {
            client_id: id,
            client_secret: secret,
            refresh_token: refresh,
        }
        .check("oauth_")
        .map(Some)
    }
}

#[derive(Template)]
#[template(path = "form_feedback.html")]
pub(super) struct Feedback {
    errors: Vec<FieldError>,
    with_test: bool,
    steps: Vec<StepView>,
    test_message: String,
}

impl Feedback {
    /// Only field errors: every given slot is set (empty message = valid).
    pub(super) fn errors_only(errors: Vec<FieldError>) -> Self {
        Feedback {
            errors,
            with_test: false,
            steps: Vec::new(),
            test_message: String::new(),
        }
    }

    /// Errors for `fields` (every listed field gets its slot set, empty when valid).
    fn errors(fields: &[&str], errors: Vec<FieldError>) -> Self {
        let all = fields
            .iter()
            .map(|f| FieldError {
                field: f.to_string(),
                message: errors
                    .iter()
                    .filter(|e| e.field == *f)
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            })
            .collect();
        Feedback {
            errors: all,
            with_test: false,
            steps: Vec::new(),
            test_message: String::new(),
        }
    }
}

const ALL_FIELDS: [&str; 7] = [
    "name",
    "description",
    "api_key",
    "base_url",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_refresh_token",
];

fn field_errors(e: StoreError) -> Result<Vec<FieldError>, ApiError> {
    match ApiError::from(e) {
        ApiError::Validation(errors) => Ok(errors),
        ApiError::Duplicate(message) => Ok(vec![FieldError {
            field: "name".into(),
            message,
        }]),
        other => Err(other),
    }
}

/// Inline validation of the fields present (same messages as the CLI).
async fn check_fields(State(state): State<AppState>, Form(f): Form<Fields>) -> Response {
    use store::validate as v;
    let mut present = Vec::new();
    let mut errors = Vec::new();
    let mut note = |field: &'static str, result: Result<(), StoreError>| {
        present.push(field);
        if let Err(StoreError::Invalid { field, message }) = result {
            errors.push(FieldError {
                field: field.into(),
                message,
            });
        }
    };
    if let Some(name) = &f.name {
        note("name", v::name(name).map(drop));
    }
    if let Some(d) = &f.description {
        note("description", v::description(Some(d)).map(drop));
    }
    if let Some(key) = &f.api_key {
        note("api_key", v::api_key(key).map(drop));
    }
    if let Some(url) = &f.base_url {
        note("base_url", v::base_url(url).map(drop));
    }
    let errors = match &f.base_url {
        Some(url) => with_address_check(errors, url, state.addresses()),
        None => errors,
    };
    render(&Feedback::errors(&present, errors))
}

/// Test the key in the overlay without saving it.
async fn probe(State(state): State<AppState>, Form(f): Form<Fields>) -> Response {
    let url = f.base_url.unwrap_or_default();
    let key = f
        .api_key
        .unwrap_or_else(|| SecretString::from(String::new()));
    let mut errors = Vec::new();
    let key = match store::validate::api_key(&key) {
        Ok(k) => Some(k.key),
        Err(e) => {
            errors.extend(field_errors(e).unwrap_or_default());
            None
        }
    };
    let refused = state.addresses().check_base_url(&url).is_some();
    let checked = match store::validate::base_url(&url) {
        Ok(u) if !refused => Some(u.url),
        Ok(_) => None,
        Err(e) => {
            errors.extend(field_errors(e).unwrap_or_default());
            None
        }
    };
    let errors = with_address_check(errors, &url, state.addresses());
    let url = checked;
    let mut feedback = Feedback::errors(&["api_key", "base_url"], errors);
    feedback.with_test = true;
    if let (Some(key), Some(url)) = (key, url) {
        let name = f.name.unwrap_or_default();
        let (report, _) = check::probe(
            name.trim(),
            &url,
            store::validate::DEFAULT_RATE_LIMIT_PER_MIN,
            flows::drift_auth::DriftAuth::key_only(key),
            &Default::default(),
            state.addresses(),
            Edge::Web,
        )
        .await;
        feedback.steps = report.steps.iter().map(StepView::from).collect();
        feedback.test_message = report.error.unwrap_or_default();
    } else {
        feedback.test_message = "Fix the fields above, then test again.".into();
    }
    render(&feedback)
}

#[derive(Template)]
#[template(path = "saved.html")]
struct Saved {
    inserted: bool,
    c: TileView,
    status: String,
}

/// Save a new credential, test it (as the CLI does), insert its tile and close the overlay.
async fn save_new(
    State(state): State<AppState>,
    Form(mut f): Form<Fields>,
) -> Result<Response, ApiError> {
    let oauth = f.oauth();
    let name = f.name.unwrap_or_default();
    let key = f
        .api_key
        .unwrap_or_else(|| SecretString::from(String::new()));
    let url = f.base_url.unwrap_or_default();
    let rate = store::validate::DEFAULT_RATE_LIMIT_PER_MIN;
    let valid = validate_new(
        &name,
        f.description.as_deref(),
        &url,
        &key,
        rate,
        state.addresses(),
    );
    let oauth = match (valid, oauth) {
        (Ok(()), Ok(oauth)) => oauth,
        (a, b) => {
            let mut errors = a.err().unwrap_or_default();
            errors.extend(b.err().unwrap_or_default());
            return Ok(render(&Feedback::errors(&ALL_FIELDS, errors)));
        }
    };
    let mode = if f.save_untested.as_deref() == Some("on") {
        SaveMode::SaveUntested
    } else {
        SaveMode::Test
    };
    let request = AddCredential {
        new: NewCredential {
            name,
            description: f.description,
            base_url: Some(url),
            api_key: key,
            rate_limit_per_min: rate,
        },
        oauth,
        uses: Vec::new(),
        mode,
    };
    let added = match add_credential(&state.store, request, state.addresses(), Edge::Web).await {
        Ok(added) => added,
        Err(e) => return add_refused(e),
    };
    let credential = added.credential;
    if let Some(report) = &added.report {
        flows::metrics::credential_tested(&credential.name, &report.status);
    }
    tracing::info!(credential = %credential.name, id = %credential.id, "credential saved from the web UI");
    let mut tile = TileView::new(&credential);
    if let Some(report) = &added.report {
        tile = tile.with_report(report);
    }
    let status = format!(
        "Saved credential \"{}\"; test: {}.",
        credential.name, credential.status
    );
    Ok(render(&Saved {
        inserted: true,
        c: tile,
        status,
    }))
}

/// The overlay stays open when a credential is not added: a taken name is the name field's
/// error (pointing at the Rotate key button); a failed test shows its steps and puts the
/// error on the field at fault (the key, the base URL or the OAuth app).
fn add_refused(e: AddError) -> Result<Response, ApiError> {
    let message = e.message_for(Edge::Web);
    match e {
        AddError::Taken { .. } => Ok(render(&Feedback::errors(
            &ALL_FIELDS,
            vec![FieldError {
                field: "name".into(),
                message,
            }],
        ))),
        AddError::TestFailed { report, failure } => {
            let field = match failed_field(&failure) {
                "oauth" => "oauth_client_id",
                other => other,
            };
            let error = FieldError {
                field: field.into(),
                message,
            };
            let mut feedback = Feedback::errors(&ALL_FIELDS, vec![error]);
            feedback.with_test = true;
            feedback.steps = report.steps.iter().map(StepView::from).collect();
            Ok(render(&feedback))
        }
        AddError::Store(e) => Ok(render(&Feedback::errors(&ALL_FIELDS, field_errors(e)?))),
    }
}

/// Test `credential` and answer with its tile (inserted or replaced out of band).
async fn tested_tile(
    state: &AppState,
    credential: &Credential,
    inserted: bool,
    verb: &str,
) -> Result<Response, ApiError> {
    let (report, _) = run_test(state, credential, &[], Edge::Web).await?;
    let after = resolve(&state.store, &credential.id)?;
    let mut tile = TileView::new(&after).with_report(&report);
    tile.oob = if inserted {
        String::new()
    } else {
        "true".into()
    };
    let status = format!(
        "{verb} credential \"{}\"; test: {}.",
        after.name, after.status
    );
    Ok(render(&Saved {
        inserted,
        c: tile,
        status,
    }))
}

async fn save_edit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response, ApiError> {
    let current = resolve(&state.store, &id)?;
    if let Some(refused) = f
        .base_url
        .as_deref()
        .and_then(|u| state.addresses().check_base_url(u))
    {
        return Ok(render(&Feedback::errors(
            &["name", "description", "base_url"],
            vec![refused],
        )));
    }
    let update = CredentialUpdate {
        name: f.name,
        description: Some(f.description),
        base_url: f.base_url,
        rate_limit_per_min: None,
    };
    let after = match state.store.update_credential(&current.name, &update) {
        Ok(c) => c,
        Err(e) => {
            return Ok(render(&Feedback::errors(
                &["name", "description", "base_url"],
                field_errors(e)?,
            )))
        }
    };
    let mut tile = TileView::new(&after);
    tile.oob = "true".into();
    Ok(render(&Saved {
        inserted: false,
        c: tile,
        status: format!("Updated credential \"{}\".", after.name),
    }))
}

/// Fields of the Rotate key overlay.
const ROTATE_FIELDS: [&str; 5] = [
    "api_key",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_refresh_token",
    "oauth_remove",
];

/// Replace the key and keep (all OAuth fields empty), replace (all three filled in) or
/// remove (the checkbox) the OAuth app, then test.
async fn save_rotate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(mut f): Form<Fields>,
) -> Result<Response, ApiError> {
    use store::OAuthChange;
    let current = resolve(&state.store, &id)?;
    let remove = f.oauth_remove.as_deref() == Some("on");
    let change = match (f.oauth(), remove) {
        (Err(errors), _) => return Ok(render(&Feedback::errors(&ROTATE_FIELDS, errors))),
        (Ok(Some(_)), true) => {
            let error = FieldError {
                field: "oauth_remove".into(),
                message: "either remove the OAuth app or fill in new settings, not both".into(),
            };
            return Ok(render(&Feedback::errors(&ROTATE_FIELDS, vec![error])));
        }
        (Ok(Some(oauth)), false) => OAuthChange::Set(oauth),
        (Ok(None), true) => OAuthChange::Remove,
        (Ok(None), false) => OAuthChange::Keep,
    };
    let key = f
        .api_key
        .unwrap_or_else(|| SecretString::from(String::new()));
    let rotated = match state.store.rotate_credential(&current.name, &key, &change) {
        Ok(c) => c,
        Err(e) => return Ok(render(&Feedback::errors(&ROTATE_FIELDS, field_errors(e)?))),
    };
    tracing::info!(credential = %rotated.name, "credential key rotated from the web UI");
    let verb = match (&change, &current.oauth_client_id) {
        (OAuthChange::Set(_), _) => "Rotated the key and OAuth app of",
        (OAuthChange::Remove, Some(_)) => "Rotated the key and removed the OAuth app of",
        _ => "Rotated the key of",
    };
    tested_tile(&state, &rotated, false, verb).await
}

async fn test(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let current = resolve(&state.store, &id)?;
    let (report, _) = run_test(&state, &current, &[], Edge::Web).await?;
    let after = resolve(&state.store, &current.id)?;
    Ok(render(&Tile {
        c: TileView::new(&after).with_report(&report),
    }))
}

/// Delete; while in use, the tile stays and says who uses it.
async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let current = resolve(&state.store, &id)?;
    match state.store.delete_credential(&current.name, false) {
        Ok(_) => Ok(Html("").into_response()),
        Err(e @ StoreError::InUse { .. }) => {
            let mut tile = TileView::new(&current);
            tile.message = e.to_string().replace(", or pass --force", "");
            Ok(render(&Tile { c: tile }))
        }
        Err(e) => Err(e.into()),
    }
}
