//! Integration tests of the writer (`drift_writer`): value checks, mapping, input readers and
//! the push engine against an in-process sandbox.

#[path = "writer/conflict.rs"]
mod conflict;
#[path = "writer/engine.rs"]
mod engine;
#[path = "writer/input.rs"]
mod input;
#[path = "writer/mapping.rs"]
mod mapping;
#[path = "writer/scopes.rs"]
mod scopes;
#[path = "writer/unfit.rs"]
mod unfit;
#[path = "writer/values.rs"]
mod values;
