//! REST API (/api/v1, OpenAPI) and server-rendered web UI for driftbridge.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
