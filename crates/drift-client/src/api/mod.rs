//! Endpoints, one module per resource (REFERENCE §7). Each is an `impl Client` block.

pub(crate) mod accounts;
pub(crate) mod contacts;
pub(crate) mod conversations;
pub(crate) mod users;

use reqwest::Method;
use serde::Deserialize;

use crate::client::{Kind, Req};
use crate::decode::{kind_of, Body, BodyError};
use crate::models::TokenInfo;
use crate::records::{Model, RawRecord, Records, Unfit};
use crate::{Client, Error, ExposeSecret};

pub use conversations::ListConversations;

/// The `{"data": ...}` envelope (REFERENCE §1).
#[derive(Deserialize)]
pub(crate) struct Data<T> {
    pub data: T,
}

/// What a `{"data": {record}}` body must look like.
pub(crate) const EXPECT_RECORD: &str = "a JSON object with the record in \"data\"";
/// What a `{"data": [records]}` body must look like.
pub(crate) const EXPECT_LIST: &str = "a JSON object with a \"data\" list";

/// A single record that does not fit, as the error of the call.
pub(crate) fn unfit_error(u: Unfit) -> BodyError {
    BodyError {
        error: Error::Unfit(Box::new(u)),
        not_json: false,
    }
}

/// The record of a `{"data": {record}}` body. `key`: the id asked for, if any. A `data`
/// that is not an object is an envelope error; an object that does not fit is
/// `Error::Unfit`.
pub(crate) fn data_record<T: Model>(body: &Body<'_>, key: Option<String>) -> Result<T, BodyError> {
    body.decode(
        EXPECT_RECORD,
        |d: Data<T>| Ok(d.data),
        |d: Data<RawRecord>| match kind_of(&d.data) {
            "an object" => Ok(body.record(&d.data, key)),
            other => Err(format!("\"data\" is {other}")),
        },
    )?
    .map_err(unfit_error)
}

/// The record of a bare `{record}` body (`key` read from the record).
pub(crate) fn bare_record<T: Model>(body: &Body<'_>, expected: &str) -> Result<T, BodyError> {
    body.decode(
        expected,
        |t: T| Ok(t),
        |raw: RawRecord| match kind_of(&raw) {
            "an object" => Ok(body.record(&raw, None)),
            other => Err(format!("the body is {other}")),
        },
    )?
    .map_err(unfit_error)
}

/// The records of a `{"data": [records]}` body.
pub(crate) fn data_list<T: Model>(body: &Body<'_>) -> Result<Records<T>, BodyError> {
    body.decode(
        EXPECT_LIST,
        |d: Data<Vec<T>>| Records::fitting(d.data),
        |d: Data<Vec<RawRecord>>| Ok(body.records(d.data)),
    )
}

/// What `POST /app/token_info` must answer.
pub(crate) const EXPECT_TOKEN_INFO: &str = "a JSON object describing the token";

/// The `token_info` answer (tolerant by construction, see [`TokenInfo`]).
pub(crate) fn token_info_body(body: &Body<'_>) -> Result<TokenInfo, BodyError> {
    body.parse(EXPECT_TOKEN_INFO)
}

impl Client {
    /// `POST /app/token_info` with `{"access_token": <this client's token>}`: org, scopes,
    /// expiry (REFERENCE §2.3). A bad token gives `Unauthorized` (401) or `Invalid` (400).
    /// When the token has expired and this client refreshes OAuth tokens, the request is
    /// sent again naming the new token (the body names the token, so replaying it would ask
    /// about the expired one).
    ///
    /// Any other refusal keeps its status ([`Error::status`]: a 405 is `Invalid` with status
    /// 405, never `Unauthorized`); an answer that is not a JSON object is a `Decode` error
    /// (an empty 200 says `empty body (0 bytes)`), after two quick retries when it is not
    /// JSON at all.
    pub async fn token_info(&self) -> Result<TokenInfo, Error> {
        self.read_rebuilt(token_info_body, || {
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
