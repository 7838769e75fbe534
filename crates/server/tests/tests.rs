//! Integration tests of the server crate: the REST API, access control and the web UI in a
//! real browser (Debian's chromium + chromedriver, see `scripts/install-browser-deps`).

#[path = "server/common.rs"]
mod common;

#[path = "server/api_alerts.rs"]
mod api_alerts;

#[path = "server/api_credentials.rs"]
mod api_credentials;

#[path = "server/api_sources.rs"]
mod api_sources;

#[path = "server/api_destinations.rs"]
mod api_destinations;

#[path = "server/api_saved_destinations.rs"]
mod api_saved_destinations;

#[path = "server/api_runs.rs"]
mod api_runs;

#[path = "server/realtime.rs"]
mod realtime;

#[path = "server/access.rs"]
mod access;

#[path = "server/ssrf.rs"]
mod ssrf;

#[path = "server/security.rs"]
mod security;

#[path = "server/browser.rs"]
mod browser;
