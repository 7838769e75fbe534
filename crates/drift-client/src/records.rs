//! Per-record decoding: records that do not fit their model are set aside, never an error
//! of the page.
//!
//! A body's envelope (the list, `pagination`, `links`, `data.next`, ...) is read strictly;
//! each record in it is then decoded on its own (`decode.rs` holds the envelope side):
//! 1. strictly, as the model's `Deserialize` says (the common case, and the fast one);
//! 2. when that fails, leniently (`lenient.rs`: digits in strings, whole floats, `"true"`,
//!    `0`/`1`, numbers as strings);
//! 3. when that fails too, the record is an [`Unfit`]: the endpoint, its key, the reason
//!    naming the field, and the record as received. List calls return them beside the
//!    records that fit ([`Page::unfit`](crate::Page::unfit), [`Records::unfit`]); a call
//!    for one record fails with [`Error::Unfit`](crate::Error::Unfit).
//!
//! Why: one record that did not fit the client's types (a numeric id sent as a string of
//! digits, a `createdAt` sent as an object) used to fail its whole page, and every re-run
//! stopped at that same page.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::Redactor;
use crate::lenient::Lenient;
use crate::models::{
    Account, Contact, Conversation, ConversationStats, CustomAttribute, Meeting, Message, OkResult,
    Playbook, ReportResponse, Team, TimelineEvent, User,
};

/// One record of a body, as received (JSON text).
pub(crate) type RawRecord = Box<RawValue>;

/// A record Drift sent that does not fit its model even leniently.
///
/// Holds no secret: the client's tokens are redacted from `reason` and `raw`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfit {
    /// Route name of the request that returned it, e.g. `conversations.list`.
    pub endpoint: String,
    /// The model's key field read from the raw JSON when it is a string or a number (`"123"`
    /// for an `id`; `accountId` for accounts; `slug`, else `eventId`, for meetings; `name`
    /// for contact attributes), else `None`. For a call asking for one record by id, the id
    /// asked for.
    pub key: Option<String>,
    /// Why it does not fit, naming the field, e.g.
    /// ``field `createdAt`: invalid type: map, expected i64``.
    pub reason: String,
    /// The record as received, JSON text.
    pub raw: String,
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.key {
            Some(key) => write!(
                f,
                "{}: record {key} does not fit the client's model: {}",
                self.endpoint, self.reason
            ),
            None => write!(
                f,
                "{}: a record does not fit the client's model: {}",
                self.endpoint, self.reason
            ),
        }
    }
}

/// The records of a call that is not paginated (or whose pages were all read): those that
/// fit, in Drift's order, and those that did not ([`Unfit`]).
///
/// Derefs to `[T]` and iterates over the records that fit, so `records.len()`,
/// `records.iter()` and `for r in records` read like the `Vec<T>` it replaces.
#[derive(Clone, Debug, PartialEq)]
pub struct Records<T> {
    /// Records that fit their model, in Drift's order.
    pub items: Vec<T>,
    /// Records that did not fit, in Drift's order.
    pub unfit: Vec<Unfit>,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Records {
            items: Vec::new(),
            unfit: Vec::new(),
        }
    }
}

impl<T> std::ops::Deref for Records<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<T> IntoIterator for Records<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a Records<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T> Records<T> {
    /// Records that all fit.
    pub(crate) fn fitting(items: Vec<T>) -> Self {
        Records {
            items,
            unfit: Vec::new(),
        }
    }

    /// Appends the records and unfit records of `other`.
    pub(crate) fn extend(&mut self, other: Records<T>) {
        self.items.extend(other.items);
        self.unfit.extend(other.unfit);
    }
}

/// A Drift model decoded per record, and where its key is.
pub(crate) trait Model: DeserializeOwned {
    /// Fields holding the record's key, tried in order ([`Unfit::key`]).
    const KEYS: &'static [&'static str];
}

macro_rules! keyed {
    ($($t:ty => [$($k:literal),*];)*) => {
        $(impl Model for $t {
            const KEYS: &'static [&'static str] = &[$($k),*];
        })*
    };
}

keyed! {
    Conversation => ["id"];
    Message => ["id"];
    Contact => ["id"];
    User => ["id"];
    Team => ["id"];
    Playbook => ["id"];
    Account => ["accountId"];
    Meeting => ["slug", "eventId"];
    CustomAttribute => ["name"];
    TimelineEvent => ["contactId", "externalId"];
    ConversationStats => [];
    ReportResponse => [];
    OkResult => [];
}

/// The first of `keys` in `value` that is a string or a number, as text.
pub(crate) fn key_of(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match value.get(*k)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// Decodes one record: strictly, then leniently; else the [`Unfit`] naming why. `key`
/// overrides the key read from the record (a call for one id names the id asked for).
pub(crate) fn decode_record<T: Model>(
    endpoint: &str,
    raw: &RawValue,
    key: Option<String>,
    redactor: &Redactor,
) -> Result<T, Unfit> {
    if let Ok(t) = serde_json::from_str::<T>(raw.get()) {
        return Ok(t);
    }
    // Always valid JSON: the envelope parse already checked it.
    let value: Value = match serde_json::from_str(raw.get()) {
        Ok(v) => v,
        Err(e) => return Err(unfit(endpoint, key, e.to_string(), raw, redactor)),
    };
    let key = key.or_else(|| key_of(&value, T::KEYS));
    match serde_path_to_error::deserialize::<_, T>(Lenient(value)) {
        Ok(t) => Ok(t),
        Err(e) => {
            let path = e.path().to_string();
            let reason = if path == "." || path.is_empty() {
                e.inner().to_string()
            } else {
                format!("field `{path}`: {}", e.inner())
            };
            Err(unfit(endpoint, key, reason, raw, redactor))
        }
    }
}

fn unfit(
    endpoint: &str,
    key: Option<String>,
    reason: String,
    raw: &RawValue,
    redactor: &Redactor,
) -> Unfit {
    Unfit {
        endpoint: endpoint.to_string(),
        key: key.map(|k| redactor.clean(&k)),
        reason: redactor.clean(&reason),
        raw: redactor.clean(raw.get()),
    }
}

/// Decodes a message Drift pushed rather than returned (the `data` of a `new_message`
/// webhook event, REFERENCE §7.9) like a fetched one: strictly, then leniently; else the
/// [`Unfit`] naming the field. `endpoint` names where it came from (e.g. `webhook.new_message`).
pub fn decode_pushed_message(endpoint: &str, value: &Value) -> Result<Message, Unfit> {
    decode_pushed(endpoint, value)
}

/// Like [`decode_pushed_message`] for a meeting (the `data` of a `new_meeting` event).
pub fn decode_pushed_meeting(endpoint: &str, value: &Value) -> Result<Meeting, Unfit> {
    decode_pushed(endpoint, value)
}

fn decode_pushed<T: Model>(endpoint: &str, value: &Value) -> Result<T, Unfit> {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    let raw = match RawValue::from_string(text) {
        Ok(raw) => raw,
        Err(e) => {
            return Err(Unfit {
                endpoint: endpoint.to_string(),
                key: key_of(value, T::KEYS),
                reason: e.to_string(),
                raw: value.to_string(),
            })
        }
    };
    let redactor = Redactor::new(secrecy::SecretString::from(String::new()));
    decode_record(endpoint, &raw, None, &redactor)
}

/// Decodes each record on its own: those that fit, and those that do not, each in order.
pub(crate) fn decode_records<T: Model>(
    endpoint: &str,
    raws: Vec<RawRecord>,
    redactor: &Redactor,
) -> Records<T> {
    let mut out = Records {
        items: Vec::with_capacity(raws.len()),
        unfit: Vec::new(),
    };
    for raw in raws {
        match decode_record(endpoint, &raw, None, redactor) {
            Ok(t) => out.items.push(t),
            Err(u) => out.unfit.push(u),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn raws(json: &str) -> Vec<RawRecord> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn each_record_is_decoded_on_its_own() {
        let redactor = Redactor::new(SecretString::from("tok_SECRET"));
        let records: Records<Conversation> = decode_records(
            "conversations.list",
            raws(
                r#"[{"id": 1}, {"id": "abc"}, {"id": "3", "createdAt": "17"},
                   {"id": 4, "createdAt": {"t": "tok_SECRET"}}, 5]"#,
            ),
            &redactor,
        );
        let ids: Vec<i64> = records.iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(records[1].created_at, Some(17));
        let keys: Vec<Option<&str>> = records.unfit.iter().map(|u| u.key.as_deref()).collect();
        assert_eq!(keys, [Some("abc"), Some("4"), None]);
        assert_eq!(
            records.unfit[0].reason,
            "field `id`: invalid type: string \"abc\", expected i64"
        );
        assert_eq!(
            records.unfit[1].reason,
            "field `createdAt`: invalid type: map, expected i64"
        );
        assert_eq!(
            records.unfit[1].raw,
            r#"{"id": 4, "createdAt": {"t": "[redacted]"}}"#
        );
        assert!(records.unfit[2]
            .reason
            .contains("expected struct Conversation"));
        assert_eq!(
            records.unfit[0].to_string(),
            "conversations.list: record abc does not fit the client's model: field `id`: \
             invalid type: string \"abc\", expected i64"
        );
    }

    #[test]
    fn keys_come_from_each_models_key_field() {
        let value = serde_json::json!({"slug": 5, "eventId": "e"});
        assert_eq!(key_of(&value, Meeting::KEYS).as_deref(), Some("5"));
        let value = serde_json::json!({"slug": null, "eventId": "e"});
        assert_eq!(key_of(&value, Meeting::KEYS).as_deref(), Some("e"));
        let value = serde_json::json!({"accountId": {"x": 1}});
        assert_eq!(key_of(&value, Account::KEYS), None);
    }
}
