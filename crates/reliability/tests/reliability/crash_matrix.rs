//! Crash matrix (placeholder while written).
