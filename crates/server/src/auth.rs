//! Access control: the admin token, browser sessions and the Origin check.
//!
//! - **Admin token**: 32 random bytes (hex, prefixed `dbt_`), created on the first start of
//!   `serve` and printed once. Only its SHA-256 is stored, in the metadata store
//!   ([`store::AdminToken`], with a generation). A high-entropy random token needs no slow
//!   password hash: SHA-256 makes the stored value useless to a reader without making the
//!   check slow. `serve --print-token` replaces it and increases the generation.
//! - **No cache**: every request reads the stored hash and generation, so a replacement made
//!   by any process (`serve --print-token` while `serve` runs) revokes the old token and
//!   every session at once, in every `serve` on that data directory.
//! - **Sessions**: the web UI logs in with the token and gets an `HttpOnly; SameSite=Strict`
//!   cookie (plus `Secure` when the server is reached over https, see
//!   [`crate::ServeOptions::secure_cookies`]) holding a random session id. Sessions live in
//!   memory (a restart logs users out), expire after [`SESSION_TTL_MS`] and belong to the
//!   token generation they were opened under: a rotation ends them.
//! - **Origin check**: a state-changing request (anything but GET/HEAD/OPTIONS) whose `Origin`
//!   header names another origin than the `Host` it was sent to (or the `--public-url`) is
//!   refused (403), whatever its credentials; a cookie-authenticated one must carry a
//!   matching `Origin` (browsers always send it on such requests), so another site cannot
//!   drive the UI.

use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use store::{Store, StoreError};

/// File in the data dir where versions before the admin token moved into the metadata store
/// kept its hex SHA-256. Read once by [`ensure_admin_token`] (the hash moves into the
/// store) and then removed.
pub const LEGACY_TOKEN_HASH_FILE: &str = "admin-token.sha256";
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "driftbridge_session";
/// Session lifetime, milliseconds (12 hours).
pub const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

fn hash_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> SecretString {
    let bytes: [u8; 32] = rand::random();
    SecretString::from(format!(
        "dbt_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Make a new admin token, store its hash (replacing any previous one, which stops working
/// at once together with every session, in every `serve` using `store`) and return it. The
/// caller prints it once; it cannot be recovered later. Errors: the store's.
pub fn regenerate_admin_token(store: &Store) -> Result<SecretString, StoreError> {
    let token = new_token();
    store.replace_admin_token(&hash_hex(secrecy::ExposeSecret::expose_secret(&token)))?;
    remove_legacy_file(store.data_dir());
    Ok(token)
}

/// Create the admin token if the store has none. Returns the new token (to print once), or
/// `None` when one already exists. A hash left by an older version in
/// [`LEGACY_TOKEN_HASH_FILE`] moves into the store (the token keeps working).
pub fn ensure_admin_token(store: &Store) -> Result<Option<SecretString>, StoreError> {
    if store.admin_token()?.is_some() {
        remove_legacy_file(store.data_dir());
        return Ok(None);
    }
    let legacy = store.data_dir().join(LEGACY_TOKEN_HASH_FILE);
    if let Ok(text) = std::fs::read_to_string(&legacy) {
        if store.create_admin_token(text.trim()).is_ok() {
            remove_legacy_file(store.data_dir());
            return Ok(None);
        }
    }
    let token = new_token();
    let created =
        store.create_admin_token(&hash_hex(secrecy::ExposeSecret::expose_secret(&token)))?;
    // Another process made one first: that one stands, and it printed it.
    Ok(created.map(|_| token))
}

fn remove_legacy_file(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(LEGACY_TOKEN_HASH_FILE));
}

/// A live session: when it expires (epoch ms) and the token generation it belongs to.
#[derive(Debug, Clone, Copy)]
struct Session {
    expires: i64,
    generation: i64,
}

/// Checks tokens and sessions against the admin token stored in one metadata store.
#[derive(Debug)]
pub struct Auth {
    store: Arc<Store>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Auth {
    /// Access control for the admin token stored in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Auth {
            store,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The stored token now; `None` when there is none or the store cannot be read (then
    /// nothing is accepted).
    fn current(&self) -> Option<store::AdminToken> {
        match self.store.admin_token() {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the admin token from the metadata store; refusing");
                None
            }
        }
    }

    /// The token generation when `token` is the admin token now, else `None`. Reads the
    /// store on every call: a token replaced by any process fails at once.
    pub fn check_token(&self, token: &str) -> Option<i64> {
        let given = hash_hex(token.trim());
        self.current()
            .filter(|t| constant_eq(&t.hash, &given))
            .map(|t| t.generation)
    }

    /// Start a session under token generation `generation` (from [`Auth::check_token`]);
    /// returns its id (the cookie value).
    pub fn new_session(&self, generation: i64) -> String {
        let bytes: [u8; 32] = rand::random();
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = store_now();
        sessions.retain(|_, s| s.expires > now && s.generation >= generation);
        sessions.insert(
            hash_hex(&id),
            Session {
                expires: now + SESSION_TTL_MS,
                generation,
            },
        );
        id
    }

    /// True when `id` is a live session opened under the current token generation.
    pub fn check_session(&self, id: &str) -> bool {
        let session = {
            let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            sessions.get(&hash_hex(id)).copied()
        };
        let Some(session) = session.filter(|s| s.expires > store_now()) else {
            return false;
        };
        self.current()
            .is_some_and(|t| t.generation == session.generation)
    }

    /// End a session.
    pub fn end_session(&self, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&hash_hex(id));
    }
}

fn store_now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session id from the request's cookies, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value that starts a session; `secure` adds `Secure` (the server is
/// reached over https, see [`crate::ServeOptions::secure_cookies`]).
pub fn session_set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        SESSION_TTL_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn session_clear_cookie(secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authn {
    /// `Authorization: Bearer <admin token>`.
    Token,
    /// The session cookie.
    Session,
}

/// Authenticate a request from its headers.
pub fn authenticate(auth: &Auth, headers: &HeaderMap) -> Option<Authn> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    if let Some(token) = bearer {
        return auth.check_token(token).map(|_| Authn::Token);
    }
    session_cookie(headers)
        .filter(|id| auth.check_session(id))
        .map(|_| Authn::Session)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Check the `Origin` of a state-changing request against its `Host` (or `public_origin`,
/// the origin of `--public-url`, e.g. `https://db.example.com`): a foreign origin is always
/// refused; a missing one only when `required` (cookie-authenticated requests).
pub fn check_origin(
    method: &Method,
    headers: &HeaderMap,
    required: bool,
    public_origin: Option<&str>,
) -> Result<(), ApiError> {
    if is_safe(method) {
        return Ok(());
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (None, _) if !required => Ok(()),
        (None, _) => Err(ApiError::ForeignOrigin(
            "a state-changing request with the session cookie must carry an Origin header; use the web UI or the admin token".into(),
        )),
        (Some(origin), _) if public_origin.is_some_and(|p| p.eq_ignore_ascii_case(origin)) => {
            Ok(())
        }
        (Some(origin), Some(host)) if origin_matches(origin, host) => Ok(()),
        (Some(origin), _) => Err(ApiError::ForeignOrigin(format!(
            "requests from origin {origin} are refused: state-changing requests must come from this server's own pages"
        ))),
    }
}

fn origin_matches(origin: &str, host: &str) -> bool {
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    bare.is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// Middleware for `/api/v1`: requires the admin token or a session, and the Origin check.
pub async fn require_api_auth(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let authn = authenticate(&state.auth, request.headers()).ok_or(ApiError::Unauthorized)?;
    let public_origin = state.options.public_origin();
    check_origin(
        request.method(),
        request.headers(),
        authn == Authn::Session,
        public_origin.as_deref(),
    )?;
    Ok(next.run(request).await)
}
