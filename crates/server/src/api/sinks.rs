//! `/api/v1/sinks/test`: check a sink before saving it ([`flows::sink_test::test_sink`]).

use crate::problem::{ApiError, ApiResult, Problem};
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use flows::sink_secret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /api/v1/sinks/test`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkTestRequest {
    /// The sink: `sqlite:PATH`, `postgres://user:PASSWORD@host:port/db?schema=NAME`,
    /// `jsonl:DIR`, `csv:DIR` or `parquet:DIR`. A password is write-only: it is used for the
    /// check and never returned.
    pub sink: String,
    /// A data source (id or name) whose stored sink password fills the `••••` of `sink`,
    /// when `sink` is that source's sink as answers show it.
    #[serde(default)]
    pub source: Option<String>,
}

/// Answer of a passed sink test.
#[derive(Debug, Serialize, ToSchema)]
pub struct SinkTestResult {
    /// Always `true` (a failed test is a problem answer).
    pub ok: bool,
    /// The sink checked, its password masked.
    pub sink: String,
}

/// Routes under `/api/v1/sinks`.
pub fn router() -> Router<AppState> {
    Router::new().route("/sinks/test", post(test))
}

/// The sink to check: `sink` itself, or with the stored password of `source` in place of
/// the mask when it is that source's sink as shown.
pub(crate) fn with_stored_password(
    state: &AppState,
    sink: &str,
    source: Option<&str>,
) -> ApiResult<String> {
    let parts = sink_secret::split(sink);
    if !parts.has_mask() {
        return Ok(sink.to_string());
    }
    let stored = source.and_then(|s| state.store.source(s).ok());
    match stored {
        Some(record) if flows::sources::SourceOptions::of(&record).sink == parts.shown => {
            let secret = state.store.source_sink_secret(&record.id)?;
            sink_secret::join(&parts.shown, secret.as_ref()).map_err(|e| ApiError::field("sink", e))
        }
        _ => Err(ApiError::field(
            "sink",
            format!(
                "the password is shown as {}, which is not a password: type the password to test this sink",
                sink_secret::MASK
            ),
        )),
    }
}

#[utoipa::path(post, operation_id = "test_sink", path = "/api/v1/sinks/test", tag = "sources", request_body = SinkTestRequest,
    responses((status = 200, body = SinkTestResult, description = "the sink can be opened and written"),
        (status = 422, body = Problem, description = "the sink cannot be parsed or is refused (field `sink`)"),
        (status = 503, body = Problem, description = "the sink cannot be reached or written: `detail` says why and names the fix")))]
async fn test(
    State(state): State<AppState>,
    body: Result<Json<SinkTestRequest>, JsonRejection>,
) -> ApiResult<Json<SinkTestResult>> {
    let Json(body) = body?;
    let sink = with_stored_password(&state, &body.sink, body.source.as_deref())?;
    let described = flows::sink_test::test_sink(&state.store, &sink).await?;
    Ok(Json(SinkTestResult {
        ok: true,
        sink: described,
    }))
}
