//! Integration tests of the run engine with a scripted source and an in-memory sink.

#[path = "engine/fakes.rs"]
mod fakes;
#[path = "engine/run.rs"]
mod run;
