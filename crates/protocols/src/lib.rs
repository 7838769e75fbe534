//! driftbridge inside the platforms data teams already run connectors in: the Airbyte
//! protocol ([`airbyte`]), Singer tap mode ([`singer`]) and Dagster Pipes reporting
//! ([`pipes`]), with one flat config for every mode ([`config`]).
//!
//! Design decisions:
//! - **One path per job**: `airbyte read` and `singer` run the same engine and Drift source
//!   as `driftbridge sync` ([`sync_core::run_sync`] over [`source_drift::DriftSource`]);
//!   only the sink differs. The protocol sink ([`sink::ProtocolSink`]) writes each committed
//!   batch as RECORD messages followed by the STATE messages of the checkpoint it carries, so
//!   every state message follows the records it covers and a platform that resumes from the
//!   last state it received loses nothing (records read twice are absorbed by
//!   deduplication on the primary key). The Dagster Pipes report is made by `driftbridge
//!   sync` itself (the CLI calls [`pipes`] around its `flows` run).
//! - **No run record and nothing saved** in the metadata store for the protocol modes: the
//!   platform owns the config, the state and the run history. The client is built from the
//!   config exactly as from a saved credential (key, OAuth refresh, rate budget, the shared
//!   budget in PostgreSQL).
//! - **stdout is the protocol**: every line on it is a protocol message; logs go to stderr
//!   (Airbyte also gets LOG and TRACE messages). Secrets never appear in either: the client
//!   redacts them from its errors, and the config holds them as [`secrecy::SecretString`].
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod airbyte;
pub mod children;
pub mod config;
pub mod pipes;
pub mod singer;
pub mod sink;
pub mod wire;

pub use config::{ConfigError, ProtocolConfig};
pub use wire::{SharedBuffer, Wire};
