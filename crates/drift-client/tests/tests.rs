//! Integration tests of drift-client against wiremock servers (one binary, modules below).

#[path = "client/common.rs"]
mod common;

#[path = "client/concurrency.rs"]
mod concurrency;
#[path = "client/config.rs"]
mod config;
#[path = "client/endpoints.rs"]
mod endpoints;
#[path = "client/errors.rs"]
mod errors;
#[path = "client/models.rs"]
mod models;
#[path = "client/oauth.rs"]
mod oauth;
#[path = "client/pagination.rs"]
mod pagination;
#[path = "client/rate.rs"]
mod rate;
#[path = "client/sandbox.rs"]
mod sandbox;
#[path = "client/shared.rs"]
mod shared;
#[path = "client/tolerant.rs"]
mod tolerant;
#[path = "client/writes.rs"]
mod writes;
