//! Drift streams (read) and the reverse writer (records to Drift).
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod writer;
