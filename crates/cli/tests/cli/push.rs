//! CLI tests: `push`.
