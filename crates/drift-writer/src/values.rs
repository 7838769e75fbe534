//! Type checks and conversions applied to every mapped value before anything is sent:
//! email syntax, domain names, numbers, booleans, dates (epoch ms or RFC 3339 -> epoch ms).

use chrono::{DateTime, NaiveDate};
use serde_json::{Number, Value};

use crate::mapping::FieldType;

/// Converts `value` to what Drift expects for `ty`. `Ok(None)` means "absent" (null or an
/// empty/blank cell). Errors are a short reason naming the expected form.
pub fn convert(value: &Value, ty: FieldType) -> Result<Option<Value>, String> {
    if is_absent(value) {
        return Ok(None);
    }
    match ty {
        FieldType::String => Ok(Some(Value::String(text(value)))),
        FieldType::Email => email(value).map(Some),
        FieldType::Domain => domain(value).map(Some),
        FieldType::Number => number(value).map(Some),
        FieldType::Integer => integer(value).map(|i| Some(Value::from(i))),
        FieldType::Boolean => boolean(value).map(|b| Some(Value::Bool(b))),
        FieldType::Date => date_ms(value).map(|ms| Some(Value::from(ms))),
        FieldType::Any => Ok(Some(match value {
            Value::String(s) => Value::String(s.trim().to_string()),
            other => other.clone(),
        })),
    }
}

/// Null, or a string that is empty after trimming.
pub fn is_absent(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    }
}

/// An email address: `local@domain.tld`, no whitespace or control characters, at most 254
/// characters, a domain with a dot and no empty labels. Non-ASCII letters are allowed
/// (RFC 6531). Returned trimmed, otherwise as given.
pub fn email(value: &Value) -> Result<Value, String> {
    let s = text(value);
    let bad = || format!("`{s}` is not an email address (expected name@example.com)");
    if s.chars().count() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok {
        Ok(Value::String(s))
    } else {
        Err(bad())
    }
}

/// A domain name (an account's `domain`): dot-separated labels of letters (any script),
/// digits and hyphens, at least two labels, each 1-63 characters and not starting or ending
/// with a hyphen, at most 253 characters in all; no spaces or other characters.
///
/// A pasted URL is accepted and reduced to its host: a leading `http://` or `https://` and
/// a trailing `/` are removed (`https://www.acme.com/` is sent as `www.acme.com`); a URL
/// with a path, query or port is refused, naming the host to give instead. Otherwise the
/// value is returned trimmed, as given (case and `www.` are kept; accounts are matched
/// ignoring both).
pub fn domain(value: &Value) -> Result<Value, String> {
    let s = text(value);
    let bad = || {
        format!(
            "`{s}` is not a domain name (expected a host name like example.com: letters, \
             digits, hyphens and dots, no spaces)"
        )
    };
    let lower = s.to_ascii_lowercase();
    let (host, was_url) = match ["https://", "http://"]
        .iter()
        .find(|p| lower.starts_with(*p))
    {
        Some(p) => (&s[p.len()..], true),
        None => (s.as_str(), false),
    };
    let host = host.strip_suffix('/').unwrap_or(host);
    if was_url {
        if let Some(i) = host.find(['/', '?', '#', ':', '@']) {
            return Err(format!(
                "`{s}` is a URL, not a domain name; give only its host name ({})",
                &host[..i]
            ));
        }
    }
    let labels: Vec<&str> = host.split('.').collect();
    let ok = host.chars().count() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.chars().count())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if ok {
        Ok(Value::String(host.to_string()))
    } else {
        Err(bad())
    }
}

/// A finite number; integers stay integers.
pub fn number(value: &Value) -> Result<Value, String> {
    match value {
        Value::Number(n) => Ok(Value::Number(n.clone())),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return Ok(Value::from(i));
            }
            s.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("`{s}` is not a number"))
        }
        other => Err(format!("`{other}` is not a number")),
    }
}

/// A whole number (`42`, `"42"`, `42.0`).
pub fn integer(value: &Value) -> Result<i64, String> {
    let bad = || format!("`{}` is not a whole number", text(value));
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(bad),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// `true/false`, `yes/no`, `y/n`, `1/0`, `on/off` (any case), or a JSON boolean.
pub fn boolean(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        other => match text(other).to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" | "on" => Ok(true),
            "false" | "no" | "n" | "0" | "off" => Ok(false),
            s => Err(format!("`{s}` is not a boolean (use true or false)")),
        },
    }
}

/// Epoch milliseconds from an integer (taken as ms), an RFC 3339 timestamp
/// (`2024-05-01T12:00:00Z`, any offset) or a date (`2024-05-01`, midnight UTC).
pub fn date_ms(value: &Value) -> Result<i64, String> {
    let bad = |s: &str| {
        format!(
            "`{s}` is not a date (use epoch milliseconds or RFC 3339, e.g. 2024-05-01T12:00:00Z)"
        )
    };
    match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| bad(&n.to_string())),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(ms) = s.parse::<i64>() {
                return Ok(ms);
            }
            if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
                return Ok(dt.timestamp_millis());
            }
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|dt| dt.and_utc().timestamp_millis())
                .ok_or_else(|| bad(s))
        }
        other => Err(bad(&other.to_string())),
    }
}

/// Whether a value Drift holds equals the value we would send (numbers compared by value,
/// a number and its decimal text count as equal).
pub fn same(existing: Option<&Value>, new: &Value) -> bool {
    match (existing, new) {
        (None, _) => false,
        (Some(a), b) if a == b => true,
        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Some(Value::String(a)), Value::Number(b)) | (Some(Value::Number(b)), Value::String(a)) => {
            a.trim().parse::<f64>().ok() == b.as_f64()
        }
        _ => false,
    }
}
