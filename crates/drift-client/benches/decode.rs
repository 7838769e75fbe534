//! Decode throughput benchmark (filled in by the drift-client work).
fn main() {}
