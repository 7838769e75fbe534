//! The protocols crate's one integration-test binary: Airbyte and Singer messages against an
//! in-process sandbox. One module per area; the harness is `protocols/util.rs`.

#[path = "protocols/airbyte.rs"]
mod airbyte;
#[path = "protocols/pipes.rs"]
mod pipes;
#[path = "protocols/singer.rs"]
mod singer;
#[path = "protocols/util.rs"]
mod util;
