//! CLI tests: `sandbox`.
