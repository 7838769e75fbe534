//! Endpoints, one module per resource (REFERENCE §7). Each is an `impl Client` block.

pub(crate) mod accounts;
pub(crate) mod contacts;
pub(crate) mod conversations;
pub(crate) mod users;

use reqwest::Method;
use serde::Deserialize;

use crate::client::{Kind, Req};
use crate::models::TokenInfo;
use crate::{Client, Error, ExposeSecret};

pub use conversations::ListConversations;

/// The `{"data": ...}` envelope (REFERENCE §1).
#[derive(Deserialize)]
pub(crate) struct Data<T> {
    pub data: T,
}

impl Client {
    /// `POST /app/token_info` with `{"access_token": <this client's token>}`: org, scopes,
    /// expiry (REFERENCE §2.3). A bad token gives `Unauthorized` (401) or `Invalid` (400).
    /// When the token has expired and this client refreshes OAuth tokens, the request is
    /// sent again naming the new token (the body names the token, so replaying it would ask
    /// about the expired one).
    pub async fn token_info(&self) -> Result<TokenInfo, Error> {
        self.json_rebuilt("app.token_info", || {
            let token = self.inner.redactor.token();
            let body = TokenBody {
                access_token: token.expose_secret(),
            };
            Req::with_body(
                Method::POST,
                "app.token_info",
                None,
                "app/token_info",
                &body,
                Kind::Read,
            )
        })
        .await
    }
}

#[derive(serde::Serialize)]
struct TokenBody<'a> {
    access_token: &'a str,
}
