//! Integration tests of the Drift source: the real client against the sandbox, through the
//! run engine into a SQLite sink.

#[path = "drift/catalog.rs"]
mod catalog;
#[path = "drift/deletes.rs"]
mod deletes;
#[path = "drift/streams.rs"]
mod streams;
