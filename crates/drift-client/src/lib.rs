//! Typed async client for the Drift REST API: models, pagination, rate budget, retries.
//!
//! Everything driftbridge reads from or writes to Drift goes through [`Client`]. Facts about
//! the API come from `docs/drift-api/REFERENCE.md` (cited as "REFERENCE §n").
//!
//! Design decisions:
//! - **Tolerant models** ([`models`]): every field optional unless Drift always sends it,
//!   unknown fields kept in a flattened `extra` map so records round-trip, enum-like values
//!   kept as strings. Drift changes shapes quietly; a new field must never fail a sync.
//! - **Decoded per record** (`records.rs`): a body's envelope is read strictly, each record
//!   on its own — strictly, then leniently (`"123"` for an integer, `"true"` for a
//!   boolean, ...). A record that still does not fit is an [`Unfit`] returned beside the
//!   others ([`Page::unfit`], [`Records::unfit`]), never an error of the page; a call for
//!   one record fails with [`Error::Unfit`]. A body that is not JSON at all is retried
//!   twice, quickly, then is an [`Error::Decode`] saying what came (status, content type,
//!   length, start).
//! - **One request path** (`client.rs` + `retry.rs`): rate budget → concurrency permit →
//!   HTTP → rate-limit headers → error classification, wrapped in a backon retry policy.
//! - **One pagination loop** (`pagination.rs`) with small per-endpoint hooks, for every
//!   generation Drift uses; a pass ends only on a structural signal.
//! - **The token is a secret**: held as [`SecretString`], sent only to the base URL's host
//!   (redirects and next links elsewhere are refused), scrubbed from every error message,
//!   and absent from every `Debug` output. With
//!   [`ClientBuilder::deny_private_addresses`] (the multi-user server) the base URL's host
//!   must also be public, checked on the resolved addresses at connect time (`addresses.rs`).
//! - **Waits are measurable**: pacing and retry sleeps go through an injectable
//!   [`clock::Clock`] and are counted in [`MetricsSnapshot`] (the whole budget) and in the
//!   [`Meter`] of a handle made with [`Client::with_meter`] (e.g. one stream).
//!
//! ```no_run
//! use drift_client::{Client, ListConversations, SecretString};
//! use futures::TryStreamExt;
//!
//! # async fn run() -> Result<(), drift_client::Error> {
//! let client = Client::builder("https://driftapi.com", SecretString::from("token"))
//!     .rate_limit_per_min(600)
//!     .build()?;
//! let info = client.token_info().await?;
//! println!("org {:?}, scopes {:?}", info.org_id, info.scopes);
//! let mut pages = Box::pin(client.conversations(ListConversations {
//!     limit: Some(100),
//!     ..Default::default()
//! }));
//! while let Some(page) = pages.try_next().await? {
//!     // Store `page.next` as the checkpoint to resume this pass later.
//!     println!("page {}: {} conversations", page.number, page.items.len());
//! }
//! println!("{:?}", client.metrics());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod addresses;
mod api;
mod base;
mod budget;
mod client;
pub mod clock;
mod decode;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod lenient;
mod meter;
pub mod models;
pub mod oauth;
mod observer;
mod pagination;
mod records;
mod retry;
pub mod shared;

pub use secrecy::{ExposeSecret, SecretString};

pub use addresses::{internal_address_kind, internal_host, public_only_resolver};
pub use api::ListConversations;
pub use budget::{
    spare_margin, MetricsSnapshot, RateBudget, DEFAULT_BURST, DEFAULT_RATE_PER_MIN,
    REPORTS_RATE_PER_MIN,
};
pub use client::{
    default_max_concurrency, Client, ClientBuilder, DEFAULT_PAGE_CAP, LATENCY_ALLOWANCE,
};
pub use error::Error;
pub use meter::{Meter, MeterSnapshot};
pub use models::{
    Account, Contact, Conversation, ConversationStats, CustomAttribute, Meeting, Message, OkResult,
    Playbook, Team, TimelineEvent, TokenInfo, User,
};
pub use oauth::{OAuthRefresh, OnRefresh, Reload, TokenGrant};
pub use observer::Observer;
pub use pagination::{into_records, Page, PageCursor};
pub use records::{decode_pushed_meeting, decode_pushed_message, Records, Unfit};
pub use shared::{BudgetShare, MemoryBudget, SharedBudget};
