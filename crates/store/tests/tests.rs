//! The store's one integration-test binary. One module per area.

#[path = "store/admin.rs"]
mod admin;
#[path = "store/budget.rs"]
mod budget;
#[path = "store/credentials.rs"]
mod credentials;
#[path = "store/destinations.rs"]
mod destinations;
#[path = "store/helpers.rs"]
mod helpers;
#[path = "store/runs.rs"]
mod runs;
#[path = "store/validate.rs"]
mod validate;
#[path = "store/vault.rs"]
mod vault;
