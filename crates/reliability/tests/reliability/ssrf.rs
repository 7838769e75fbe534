//! ssrf
