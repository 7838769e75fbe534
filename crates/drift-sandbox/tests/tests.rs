//! The drift-sandbox integration tests: one binary, one module per area. Every test starts
//! its own sandbox on a free port and talks HTTP to it with reqwest.

#[path = "sandbox/common.rs"]
mod common;

#[path = "sandbox/accounts.rs"]
mod accounts;
#[path = "sandbox/admin.rs"]
mod admin;
#[path = "sandbox/auth.rs"]
mod auth;
#[path = "sandbox/compat.rs"]
mod compat;
#[path = "sandbox/contacts.rs"]
mod contacts;
#[path = "sandbox/conversations.rs"]
mod conversations;
#[path = "sandbox/data.rs"]
mod data;
#[path = "sandbox/deletes.rs"]
mod deletes;
#[path = "sandbox/faults.rs"]
mod faults;
#[path = "sandbox/fixtures.rs"]
mod fixtures;
#[path = "sandbox/messy.rs"]
mod messy;
#[path = "sandbox/rate_limit.rs"]
mod rate_limit;
#[path = "sandbox/users.rs"]
mod users;
#[path = "sandbox/webhooks.rs"]
mod webhooks;
#[path = "sandbox/writes.rs"]
mod writes;
