//! CLI tests: `sync`.
