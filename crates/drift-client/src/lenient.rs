//! A lenient reading of one record: a serde `Deserializer` over a `serde_json::Value` that
//! coerces the values Drift plausibly varies to the type the model asks for.
//!
//! Used only after the strict decode of a record failed (see `records.rs`). The model's own
//! `Deserialize` drives it, so each coercion happens where a typed field asks for it:
//! - integers (`deserialize_i64`, `u64`, ...) accept strings of digits (`"123"`, `" -5 "`,
//!   surrounding spaces trimmed) and floats without a fraction (`1.7e12`); Drift's epoch-ms
//!   timestamps are integers, so they are covered;
//! - booleans accept `"true"`/`"false"` (any case) and `0`/`1`;
//! - strings accept numbers and booleans (their JSON text);
//! - floats accept numeric strings;
//! - `null` is `None` for every `Option`.
//!
//! Nested objects and arrays are wrapped again, so a coercion applies at any depth. Models
//! with a flattened `extra` map read their known fields through `MapAccess::next_value`,
//! which goes through this deserializer (checked by a test below). Anything else is passed
//! to `serde_json::Value`'s own deserializer, which gives serde's usual error
//! (`invalid type: map, expected i64`).

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

type Error = serde_json::Error;

/// Lenient deserializer over one JSON value.
pub(crate) struct Lenient(pub(crate) Value);

/// An integer read from a number or a string.
enum Int {
    Signed(i64),
    Unsigned(u64),
}

/// Largest magnitude an `f64` may have to convert to `i64`/`u64` exactly enough (2^63, 2^64).
const I64_LIMIT: f64 = 9_223_372_036_854_775_808.0;
const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0;

fn whole_float(f: f64) -> Option<Int> {
    if !f.is_finite() || f.fract() != 0.0 {
        return None;
    }
    if (-I64_LIMIT..I64_LIMIT).contains(&f) {
        Some(Int::Signed(f as i64))
    } else if (0.0..U64_LIMIT).contains(&f) {
        Some(Int::Unsigned(f as u64))
    } else {
        None
    }
}

fn integer(v: &Value) -> Option<Int> {
    match v {
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Some(Int::Signed(i)),
            (None, Some(u)) => Some(Int::Unsigned(u)),
            _ => n.as_f64().and_then(whole_float),
        },
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                Some(Int::Signed(i))
            } else if let Ok(u) = s.parse::<u64>() {
                Some(Int::Unsigned(u))
            } else {
                s.parse::<f64>().ok().and_then(whole_float)
            }
        }
        _ => None,
    }
}

fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => {
            let s = s.trim();
            if s.eq_ignore_ascii_case("true") {
                Some(true)
            } else if s.eq_ignore_ascii_case("false") {
                Some(false)
            } else {
                None
            }
        }
        Value::Number(n) => {
            let f = n.as_f64()?;
            if f == 0.0 {
                Some(false)
            } else if f == 1.0 {
                Some(true)
            } else {
                None
            }
        }
        _ => None,
    }
}

impl Lenient {
    fn integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match integer(&self.0) {
            Some(Int::Signed(i)) => visitor.visit_i64(i),
            Some(Int::Unsigned(u)) => visitor.visit_u64(u),
            None => de::Deserializer::deserialize_any(self, visitor),
        }
    }

    fn float<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.0 {
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => visitor.visit_f64(f),
                _ => de::Deserializer::deserialize_any(self, visitor),
            },
            _ => de::Deserializer::deserialize_any(self, visitor),
        }
    }

    fn string<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_string(s),
            Value::Number(n) => visitor.visit_string(n.to_string()),
            Value::Bool(b) => visitor.visit_string(b.to_string()),
            other => de::Deserializer::deserialize_any(Lenient(other), visitor),
        }
    }
}

macro_rules! integers {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.integer(visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Lenient {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            other => other.deserialize_any(visitor),
        }
    }

    integers!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.float(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.float(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match boolean(&self.0) {
            Some(b) => visitor.visit_bool(b),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.string(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Lenient(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        drop(self);
        visitor.visit_unit()
    }

    // Maps, sequences, structs, units and bytes: the JSON value decides (`deserialize_any`
    // wraps nested values again); a mismatch is serde's usual "invalid type" error.
    forward_to_deserialize_any! {
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
    }
}

/// The fields of a JSON object, values read leniently.
struct Fields {
    iter: serde_json::map::IntoIter,
    value: Option<Value>,
    len: usize,
}

impl Fields {
    fn new(map: Map<String, Value>) -> Self {
        Fields {
            len: map.len(),
            iter: map.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Fields {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                self.len = self.len.saturating_sub(1);
                seed.deserialize(key.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(Lenient(v)),
            None => Err(de::Error::custom("value read before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.len)
    }
}

/// The items of a JSON array, read leniently.
struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.next() {
            Some(v) => seed.deserialize(Lenient(v)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Account, Contact, Conversation, Message, User};
    use serde::de::DeserializeOwned;
    use serde_json::json;

    fn lenient<T: DeserializeOwned>(v: Value) -> Result<T, String> {
        serde_path_to_error::deserialize(Lenient(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn flattened_models_read_known_fields_through_the_lenient_deserializer() {
        // `createdAt` as a string and `id` as a float only decode if the flattened struct
        // hands its known fields to this deserializer.
        let c: Conversation = lenient(json!({"id": 5.0, "createdAt": " 1700000000000 ",
            "contactId": "-5", "participants": ["1", 2], "newField": {"a": "1"}}))
        .unwrap();
        assert_eq!(c.id, 5);
        assert_eq!(c.created_at, Some(1_700_000_000_000));
        assert_eq!(c.contact_id, Some(-5));
        assert_eq!(c.participants, Some(vec![1, 2]));
        assert_eq!(
            c.extra["newField"],
            json!({"a": "1"}),
            "unknown fields kept as sent"
        );
    }

    #[test]
    fn coercions_reach_nested_records() {
        let m: Message = lenient(json!({"id": "7", "author": {"id": "9", "bot": "true"},
            "buttons": [{"label": 3, "value": true}], "createdAt": 1.7e12}))
        .unwrap();
        let author = m.author.unwrap();
        assert_eq!((author.id, author.bot), (Some(9), Some(true)));
        let button = &m.buttons.unwrap()[0];
        assert_eq!(button.label.as_deref(), Some("3"));
        assert_eq!(button.value.as_deref(), Some("true"));
        assert_eq!(m.created_at, Some(1_700_000_000_000));
        let u: User = lenient(json!({"id": 1, "bot": 0, "verified": 1, "name": null})).unwrap();
        assert_eq!((u.bot, u.verified, u.name), (Some(false), Some(true), None));
        let a: Account = lenient(json!({"accountId": 12, "ownerId": "3",
            "customProperties": [{"name": "tier", "value": "7", "type": 1}]}))
        .unwrap();
        assert_eq!(a.account_id.as_deref(), Some("12"));
        let prop = &a.custom_properties.unwrap()[0];
        assert_eq!(
            prop.value,
            Some(json!("7")),
            "Value fields keep what was sent"
        );
        assert_eq!(prop.property_type.as_deref(), Some("1"));
    }

    #[test]
    fn what_cannot_be_coerced_names_the_field() {
        let e = lenient::<Conversation>(json!({"id": 1, "createdAt": {"ms": 1}})).unwrap_err();
        assert_eq!(e, "createdAt: invalid type: map, expected i64");
        let e = lenient::<Conversation>(json!({"id": "abc"})).unwrap_err();
        assert_eq!(e, "id: invalid type: string \"abc\", expected i64");
        let e = lenient::<Contact>(json!({"id": 1.5})).unwrap_err();
        assert!(e.contains("floating point"), "{e}");
        let e = lenient::<Message>(json!({"id": 1, "buttons": [{"label": []}]})).unwrap_err();
        assert_eq!(
            e,
            "buttons[0].label: invalid type: sequence, expected a string"
        );
        let e = lenient::<Contact>(json!({"createdAt": 1})).unwrap_err();
        assert!(e.contains("missing field `id`"), "{e}");
        let e = lenient::<User>(json!({"id": 1, "bot": "yes"})).unwrap_err();
        assert!(e.starts_with("bot: invalid type: string \"yes\""), "{e}");
        let e = lenient::<User>(json!({"id": "1e400"})).unwrap_err();
        assert!(e.starts_with("id: "), "{e}");
    }
}
