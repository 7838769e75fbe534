//! Typed async client for the Drift REST API: models, pagination, rate budget, retries.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
