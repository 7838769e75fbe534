//! Compact state encodings for the large id collections of the conversations pass.
//!
//! A pass's state holds every contact it has read (tens of thousands in a large org) and is
//! checkpointed many times per run. As JSON arrays and objects each id is a separate value
//! (a tree of small allocations copied through the engine and the sink at every
//! checkpoint); as one string it is a single allocation. Each reader also accepts the JSON
//! form older versions wrote, so a state saved by them resumes.
//!
//! Forms: a set of ids is `"1,5,9"` (ascending, decimal); a map id -> number is
//! `"1:77,5:-3"`. An empty collection is `""`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// `#[serde(with = "ids")]` for a `BTreeSet<i64>`: `"1,5,9"`, or a JSON array of ids.
pub(crate) mod ids {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(set: &BTreeSet<i64>, s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(set.len() * 8);
        for (i, id) in set.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{id}");
        }
        s.serialize_str(&out)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<i64>, D::Error> {
        let v = Value::deserialize(d)?;
        from_value(&v)
            .ok_or_else(|| D::Error::custom("expected a list of ids (\"1,5,9\" or [1,5,9])"))
    }

    /// The set in `v` (either form); `None` when `v` is neither.
    pub(crate) fn from_value(v: &Value) -> Option<BTreeSet<i64>> {
        match v {
            Value::String(s) => parse_list(s, |item| item.parse().ok()),
            Value::Array(items) => items.iter().map(Value::as_i64).collect(),
            _ => None,
        }
    }
}

/// `#[serde(with = "id_map")]` for a `BTreeMap<i64, i64>`: `"1:77,5:-3"`, or a JSON
/// object `{"1": 77, "5": -3}`.
pub(crate) mod id_map {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        map: &BTreeMap<i64, i64>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_string(map))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<i64, i64>, D::Error> {
        let v = Value::deserialize(d)?;
        from_value(&v).ok_or_else(|| {
            D::Error::custom("expected a map of ids (\"1:77,5:-3\" or {\"1\": 77, \"5\": -3})")
        })
    }

    /// The compact form of `map`.
    pub(crate) fn to_string(map: &BTreeMap<i64, i64>) -> String {
        let mut out = String::with_capacity(map.len() * 28);
        for (i, (id, n)) in map.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{id}:{n}");
        }
        out
    }

    /// The map in `v` (either form); `None` when `v` is neither.
    pub(crate) fn from_value(v: &Value) -> Option<BTreeMap<i64, i64>> {
        match v {
            Value::String(s) => parse_list(s, |item| {
                let (id, n) = item.split_once(':')?;
                Some((id.parse().ok()?, n.parse().ok()?))
            }),
            Value::Object(entries) => entries
                .iter()
                .map(|(k, v)| Some((k.parse().ok()?, v.as_i64()?)))
                .collect(),
            _ => None,
        }
    }
}

/// The comma-separated items of `s`, each read by `item`; `None` when one does not read.
fn parse_list<T, C: FromIterator<T>>(s: &str, item: impl Fn(&str) -> Option<T>) -> Option<C> {
    if s.is_empty() {
        return Some(std::iter::empty().collect());
    }
    s.split(',').map(|i| item(i.trim())).collect()
}

#[cfg(test)]
mod tests {
    use super::{id_map, ids};
    use serde::{Deserialize, Serialize};
    use serde_json::json;
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct S {
        #[serde(with = "ids")]
        done: BTreeSet<i64>,
        #[serde(with = "id_map")]
        changed: BTreeMap<i64, i64>,
    }

    #[test]
    fn round_trip_and_older_json_forms() {
        let s = S {
            done: [9, 1, 5].into(),
            changed: [(5, -3), (1, 77)].into(),
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v, json!({"done": "1,5,9", "changed": "1:77,5:-3"}));
        assert_eq!(serde_json::from_value::<S>(v).unwrap(), s);
        let old = json!({"done": [1, 5, 9], "changed": {"1": 77, "5": -3}});
        assert_eq!(serde_json::from_value::<S>(old).unwrap(), s);
        let empty = json!({"done": "", "changed": {}});
        let e = serde_json::from_value::<S>(empty).unwrap();
        assert!(e.done.is_empty() && e.changed.is_empty());
    }

    #[test]
    fn a_damaged_list_is_refused_not_half_read() {
        assert!(serde_json::from_value::<S>(json!({"done": "1,x", "changed": ""})).is_err());
        assert!(serde_json::from_value::<S>(json!({"done": "", "changed": "1:2,3"})).is_err());
        assert!(ids::from_value(&json!(7)).is_none());
        assert!(id_map::from_value(&json!("x")).is_none());
    }
}
