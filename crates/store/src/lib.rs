//! Embedded metadata store: credentials vault (encrypted), sources, destinations, flows, state, runs.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
