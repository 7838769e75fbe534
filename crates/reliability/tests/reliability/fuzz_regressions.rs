//! fuzz_regressions
