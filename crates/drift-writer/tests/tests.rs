//! The reverse writer (`source_drift::writer`): value checks, mapping, input readers and the
//! push engine against an in-process sandbox.

mod conflict;
mod engine;
mod input;
mod mapping;
mod unfit;
mod values;
