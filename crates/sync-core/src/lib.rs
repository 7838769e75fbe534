//! Protocol-neutral sync model and run engine: streams, records, state, source and destination traits.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
