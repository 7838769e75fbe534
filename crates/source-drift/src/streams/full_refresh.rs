//! The full-refresh reader, of the streams whose row in the stream table (`defs.rs`) says
//! [`Read::FullRefresh`](super::defs::Read::FullRefresh): users, teams, playbooks,
//! contact_attributes. One request each; the
//! records are written again when anything changed (an incremental run skips the write when
//! the content hash is unchanged), and a record whose key was in the last complete pass but
//! is absent from this one is tombstoned (deleted in Drift). The state holds the hash and the
//! keys of the last complete pass; a failed read emits nothing, so nothing is marked deleted
//! after a failed or partial pass.

use crate::fail::{quarantine, to_record, Fail};
use crate::streams::defs::{FetchFn, StreamDef};
use crate::Ctx;
use drift_client::{Records, Unfit};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use sync_core::{key_text, SyncMode};

/// State of a full-refresh stream after a complete pass.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    /// [`content_hash`] of the records.
    #[serde(default)]
    hash: Option<String>,
    /// Primary keys of the records (as [`key_text`]); `None` in state of older versions.
    #[serde(default)]
    keys: Option<BTreeSet<String>>,
}

/// The records that fit, as JSON objects, and those that do not.
pub(crate) type Fetched = (Vec<Map<String, Value>>, Vec<Unfit>);

/// The records of one fetch, split into those that fit and those that do not (the fetch
/// functions of the stream table end in this).
pub(crate) fn all<T: serde::Serialize>(records: Records<T>) -> Result<Fetched, Fail> {
    let fit = records
        .items
        .iter()
        .map(to_record)
        .collect::<Result<_, _>>()?;
    Ok((fit, records.unfit))
}

/// FNV-1a 64 of the records' JSON: stable across runs and Rust versions.
pub(crate) fn content_hash(records: &[Map<String, Value>]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for r in records {
        for b in Value::Object(r.clone()).to_string().bytes().chain([b'\n']) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Read stream `def` whole with `fetch` (see the module doc).
pub(crate) async fn read(
    ctx: &Ctx,
    def: &StreamDef,
    fetch: FetchFn,
    mode: SyncMode,
) -> Result<(), Fail> {
    let name = def.name;
    let (records, unfit) = fetch(&ctx.client).await?;
    let raws: Vec<Map<String, Value>> = unfit
        .iter()
        .map(|u| Map::from_iter([("unfit".to_owned(), Value::from(u.raw.as_str()))]))
        .collect();
    let hash = content_hash(&[records.as_slice(), raws.as_slice()].concat());
    let previous: Snapshot = ctx
        .state
        .get(name)
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if mode == SyncMode::Incremental && previous.hash.as_deref() == Some(hash.as_str()) {
        return Ok(()); // unchanged since the last run: nothing to write
    }
    let (field, numeric) = (def.primary_key, def.integer_key());
    let pk = [field.to_owned()];
    // A record that does not fit still exists in Drift: its key is not tombstoned.
    let keys: BTreeSet<String> = records
        .iter()
        .filter_map(|r| key_text(r, &pk))
        .chain(unfit.iter().filter_map(|u| u.key.clone()))
        .collect();
    for r in records {
        ctx.out.record(name, r).await?;
    }
    for u in &unfit {
        quarantine(&ctx.out, name, u).await?;
    }
    for gone in previous
        .keys
        .iter()
        .flatten()
        .filter(|k| !keys.contains(*k))
    {
        ctx.out
            .tombstone(name, key_map(field, gone, numeric))
            .await?;
    }
    let next = Snapshot {
        hash: Some(hash),
        keys: Some(keys),
    };
    let state = serde_json::to_value(&next).map_err(|e| Fail::Other(e.to_string()))?;
    ctx.out.checkpoint(name, name, state).await?;
    Ok(())
}

/// `{field: key}` for a tombstone; with `numeric`, the key as a number when it is one, so
/// that it matches the column type of the record it marks.
pub(crate) fn key_map(field: &str, key: &str, numeric: bool) -> Map<String, Value> {
    let value = key
        .parse::<i64>()
        .ok()
        .filter(|n| numeric && n.to_string() == key)
        .map_or_else(|| Value::from(key), Value::from);
    let mut map = Map::new();
    map.insert(field.to_owned(), value);
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_changes_with_content_and_order() {
        let a: Map<String, Value> = json!({"id": 1}).as_object().unwrap().clone();
        let b: Map<String, Value> = json!({"id": 2}).as_object().unwrap().clone();
        let ab = content_hash(&[a.clone(), b.clone()]);
        assert_eq!(ab, content_hash(&[a.clone(), b.clone()]));
        assert_ne!(ab, content_hash(&[b, a]));
        assert_eq!(content_hash(&[]), "cbf29ce484222325");
    }

    #[test]
    fn tombstone_keys_keep_the_type_of_the_id() {
        assert_eq!(Value::Object(key_map("id", "42", true)), json!({"id": 42}));
        assert_eq!(
            Value::Object(key_map("id", "042", true)),
            json!({"id": "042"})
        );
        assert_eq!(
            Value::Object(key_map("name", "42", false)),
            json!({"name": "42"})
        );
    }
}
