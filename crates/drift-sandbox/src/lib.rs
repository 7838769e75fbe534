//! Offline simulator of the Drift REST API, for the demo, tests and benchmarks.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
