//! The server-rendered web UI: askama templates, htmx for partial updates, no JS build step.
//!
//! Pages need a session (log in with the admin token at `/login`); without one they redirect
//! there. Fragment routes under `/ui/` answer htmx requests; they also need the session and,
//! when they change something, a matching `Origin`. Fragments answer 200 even for input errors
//! (htmx swaps only 2xx answers); the errors travel as out-of-band swaps of the field-error
//! slots.

mod alerts;
mod credentials;
mod destinations;
mod runs;
mod saved_destinations;
mod sink_form;
mod sources;

use crate::auth::{self, Authn};
use crate::problem::ApiError;
use crate::AppState;
use askama::Template;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use secrecy::SecretString;
use serde::Deserialize;
use std::net::SocketAddr;

/// Routes of the web UI (pages and fragments), all behind `require_session` except the
/// login page.
pub fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/", get(|| async { Redirect::to("/credentials") }))
        .route("/ui/empty", get(|| async { Html("") }))
        .merge(credentials::router())
        .merge(sources::router())
        .merge(runs::router())
        .merge(destinations::router())
        .merge(saved_destinations::router())
        .merge(alerts::router())
        .merge(sink_form::router())
        .route_layer(axum::middleware::from_fn_with_state(state, require_session));
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .merge(protected)
}

/// Template filters (askama finds them as `filters::<name>` where a template is derived).
pub(crate) mod filters {
    /// Escape `text` for HTML, then render each `` `…` `` pair as `<code>…</code>` (messages
    /// name commands and routes between backticks; pages show them as code, not as literal
    /// backticks). An unpaired backtick stays as it is. Use with `|safe` after it.
    pub fn code_spans<T: std::fmt::Display>(
        text: T,
        _: &dyn askama::Values,
    ) -> askama::Result<String> {
        Ok(code_spans_of(&text.to_string()))
    }

    pub(crate) fn code_spans_of(text: &str) -> String {
        let escaped = escape(text);
        let parts: Vec<&str> = escaped.split('`').collect();
        if parts.len() < 3 {
            return escaped;
        }
        let mut out = String::with_capacity(escaped.len() + 16);
        let pairs = (parts.len() - 1) / 2 * 2;
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                if i > pairs {
                    out.push('`');
                } else if i % 2 == 1 {
                    out.push_str("<code>");
                } else {
                    out.push_str("</code>");
                }
            }
            out.push_str(part);
        }
        out
    }

    fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#x27;"),
                c => out.push(c),
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::code_spans_of;

        #[test]
        fn backtick_pairs_become_code_and_html_is_escaped() {
            assert_eq!(
                code_spans_of("run `driftbridge x <a>` now"),
                "run <code>driftbridge x &lt;a&gt;</code> now"
            );
            assert_eq!(code_spans_of("one ` only"), "one ` only");
            assert_eq!(
                code_spans_of("`a` and `b` and `"),
                "<code>a</code> and <code>b</code> and `"
            );
        }
    }
}

/// A point in time as pages show it: `<time datetime="ISO" title="ISO">` with a readable UTC
/// text that `app.js` replaces with the browser's local time (the ISO value stays on hover).
#[derive(Debug, Clone)]
pub(crate) struct Time {
    /// RFC 3339 UTC, seconds precision.
    pub iso: String,
    /// `2026-12-06 14:03 UTC` (before app.js localises it).
    pub text: String,
}

impl Time {
    /// The time `ms` (epoch milliseconds).
    pub(crate) fn at(ms: i64) -> Time {
        match chrono::DateTime::from_timestamp_millis(ms) {
            Some(t) => Time {
                iso: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                text: t.format("%Y-%m-%d %H:%M UTC").to_string(),
            },
            None => Time {
                iso: String::new(),
                text: ms.to_string(),
            },
        }
    }
}

impl std::fmt::Display for Time {
    /// The `<time>` element (escaped parts: both strings are generated here, no user text).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<time datetime=\"{0}\" title=\"{0}\">{1}</time>",
            self.iso, self.text
        )
    }
}

/// The first value of form field `name` ("" when absent).
pub(crate) fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Render a template into an HTML response (500 problem when rendering fails).
pub(crate) fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::Internal(format!("template: {e}")).into_response(),
    }
}

/// An htmx answer that sends the browser to `path`.
pub(crate) fn with_redirect(path: &str) -> Response {
    let mut response = Html("").into_response();
    if let Ok(value) = HeaderValue::from_str(path) {
        response.headers_mut().insert("hx-redirect", value);
    }
    response
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// Middleware: a live session (pages redirect to `/login`, htmx requests get `HX-Redirect`),
/// and the Origin check on state-changing requests.
async fn require_session(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if auth::authenticate(&state.auth, headers) != Some(Authn::Session) {
        if is_htmx(headers) {
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            response
                .headers_mut()
                .insert("hx-redirect", HeaderValue::from_static("/login"));
            return response;
        }
        let next_path = request.uri().path().to_string();
        return Redirect::to(&format!("/login?next={}", url_encode(&next_path))).into_response();
    }
    let public_origin = state.options.public_origin();
    if let Err(e) = auth::check_origin(request.method(), headers, true, public_origin.as_deref()) {
        return e.into_response();
    }
    next.run(request).await
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: String,
    next: String,
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    #[serde(default)]
    next: String,
}

async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    render(&LoginPage {
        error: String::new(),
        next: safe_next(&q.next),
    })
}

/// Where to go after login: `next` when it is a path on this server, else `/` (no open
/// redirect). Browsers are lenient with what follows the first `/` (`/\evil.example` and
/// `/<TAB>/evil.example` both lead to evil.example), so `next` must start with a single `/`,
/// hold no backslash and no control character (also not percent-encoded), not start with
/// `//` once percent-decoded, and resolve to this server's origin. The normalised path (and
/// query) is returned.
fn safe_next(next: &str) -> String {
    const FALLBACK: &str = "/";
    let decoded = percent_decode(next);
    let suspicious = |text: &str| text.contains('\\') || text.chars().any(char::is_control);
    let single_slash = next.starts_with('/') && !next.starts_with("//");
    if !single_slash || decoded.starts_with("//") || suspicious(next) || suspicious(&decoded) {
        return FALLBACK.to_string();
    }
    let Ok(base) = url::Url::parse("http://driftbridge.invalid/") else {
        return FALLBACK.to_string();
    };
    match base.join(next) {
        Ok(url)
            if url.origin() == base.origin()
                && url.username().is_empty()
                && url.password().is_none() =>
        {
            match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            }
        }
        _ => FALLBACK.to_string(),
    }
}

/// `text` with `%XX` escapes decoded (lossily: bytes that are not UTF-8 become U+FFFD).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(value as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Deserialize)]
struct LoginForm {
    token: SecretString,
    #[serde(default)]
    next: String,
}

async fn login(
    State(state): State<AppState>,
    client: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Form<LoginForm>,
) -> Response {
    let public_origin = state.options.public_origin();
    if let Err(e) = auth::check_origin(
        &axum::http::Method::POST,
        &headers,
        false,
        public_origin.as_deref(),
    ) {
        return e.into_response();
    }
    let Form(form) = form;
    let client = client.map(|axum::Extension(ConnectInfo(addr))| addr);
    if let Some(wait) = state.login_limiter.blocked(client) {
        let seconds = wait.as_secs().max(1);
        let page = LoginPage {
            error: format!(
                "Too many failed logins from your address: wait {seconds} s, then log in with the admin token."
            ),
            next: safe_next(&form.next),
        };
        let mut response = render(&page);
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let generation = state
        .auth
        .check_token(secrecy::ExposeSecret::expose_secret(&form.token));
    let Some(generation) = generation else {
        state.login_limiter.failed(client);
        let page = LoginPage {
            error: "That is not the admin token. Use the token `driftbridge serve` printed, or make a new one with `driftbridge serve --print-token`.".into(),
            next: safe_next(&form.next),
        };
        let mut response = render(&page);
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    };
    let session = state.auth.new_session(generation);
    let mut response = Redirect::to(&safe_next(&form.next)).into_response();
    let cookie = auth::session_set_cookie(&session, state.options.secure_cookies());
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let public_origin = state.options.public_origin();
    if let Err(e) = auth::check_origin(
        &axum::http::Method::POST,
        &headers,
        false,
        public_origin.as_deref(),
    ) {
        return e.into_response();
    }
    if let Some(id) = auth::session_cookie(&headers) {
        state.auth.end_session(&id);
    }
    let mut response = Redirect::to("/login").into_response();
    let cookie = auth::session_clear_cookie(state.options.secure_cookies());
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// A test step for display: outcome class and icon.
#[derive(Debug, Clone)]
pub(crate) struct StepView {
    pub outcome: String,
    pub icon: &'static str,
    pub detail: String,
}

impl From<&flows::check::TestStep> for StepView {
    fn from(s: &flows::check::TestStep) -> Self {
        let icon = match s.outcome.as_str() {
            "ok" => "✓",
            "failed" => "✗",
            _ => "!",
        };
        StepView {
            outcome: s.outcome.clone(),
            icon,
            detail: s.detail.clone(),
        }
    }
}
