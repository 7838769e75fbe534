//! CLI tests: `credentials`.
