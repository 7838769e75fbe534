//! Integration tests of the destinations.

#[path = "destinations/sqlite.rs"]
mod sqlite;
