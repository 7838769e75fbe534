//! The CLI's one integration-test binary: runs the real `driftbridge` binary against a sandbox.
//! One module per area; the harness they share is `cli/util.rs`.

#[path = "cli/alerts.rs"]
mod alerts;
#[path = "cli/catalog.rs"]
mod catalog;
#[path = "cli/credentials_add.rs"]
mod credentials_add;
#[path = "cli/credentials_manage.rs"]
mod credentials_manage;
#[path = "cli/credentials_oauth.rs"]
mod credentials_oauth;
#[path = "cli/credentials_test.rs"]
mod credentials_test;
#[path = "cli/credentials_vault.rs"]
mod credentials_vault;
#[path = "cli/protocol_modes.rs"]
mod protocol_modes;
#[path = "cli/push_contacts.rs"]
mod push_contacts;
#[path = "cli/push_inputs.rs"]
mod push_inputs;
#[path = "cli/push_ledger.rs"]
mod push_ledger;
#[path = "cli/push_results.rs"]
mod push_results;
#[path = "cli/push_saved.rs"]
mod push_saved;
#[path = "cli/push_stop.rs"]
mod push_stop;
#[path = "cli/sandbox.rs"]
mod sandbox;
#[path = "cli/serve.rs"]
mod serve;
#[path = "cli/sources.rs"]
mod sources;
#[path = "cli/sync.rs"]
mod sync;
#[path = "cli/util.rs"]
mod util;
