//! The REST API under `/api/v1`. Every route needs the admin token (or a UI session); errors
//! are `application/problem+json` (see [`crate::problem`]).

pub mod alerts;
pub mod credentials;
pub mod destinations;
pub mod openapi;
pub mod runs;
pub mod saved_destinations;
pub mod sinks;
pub mod sources;

use crate::AppState;
use axum::Router;

/// All `/api/v1` routes (without the prefix and without the auth layer).
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(credentials::router())
        .merge(sources::router())
        .merge(runs::router())
        .merge(destinations::router())
        .merge(saved_destinations::router())
        .merge(alerts::router())
        .merge(sinks::router())
}
