//! `--compat airbyte-0.3`: off-by-default additions for the `airbyte-source-drift` 0.3.x
//! peer client, which is not what Drift serves (see issue 3): it reads the next-page cursor
//! from a `next` field on the last record of a page and calls `/conversations` and `/users`.
//! Only for benchmarks against that peer; a faithful run never enables it.

use serde_json::Value;

/// Copy the page's next link (an absolute URL) onto its last row as `next`, which is where
/// the peer looks for it.
pub fn mark_last_row(rows: &mut [Value], next: Option<&Value>) {
    if let (Some(Value::Object(last)), Some(next)) = (rows.last_mut(), next) {
        last.insert("next".into(), next.clone());
    }
}
