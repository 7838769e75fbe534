//! Field errors for a JSON body that does not fit the request type, without any value from
//! the body.
//!
//! serde's messages quote what was sent (`invalid type: string "tok_…", expected …`,
//! `invalid value: integer `1234…``) and name Rust types (`expected struct OAuthSettingsBody`,
//! `expected u32`). A body may hold an API key, a client secret or a refresh token in the
//! wrong place, so the sent value is replaced by its JSON kind (`a string`, `a number`) and
//! Rust type names by JSON words, before the message reaches a problem body or a log line.
//! The field is the full path (`oauth.client_secret`), taken from the path axum's `Json`
//! extractor puts in front of the message.

use crate::problem::FieldError;

/// The field error of axum's `JsonDataError` text (`Failed to deserialize the JSON body into
/// the target type: oauth: missing field `client_secret` at line 1 column 40`).
pub(crate) fn field_error(text: &str) -> FieldError {
    let rest = text
        .split_once("target type: ")
        .map_or(text, |(_, rest)| rest);
    let (path, message) = match rest.split_once(": ") {
        Some((path, message)) if is_path(path) => (Some(path), message),
        _ => (None, rest),
    };
    let field = match (path, named_field(message)) {
        // An unknown field's path ends with it already; a missing one's is its parent's.
        (Some(path), Some(name)) if path == name || path.ends_with(&format!(".{name}")) => {
            path.to_string()
        }
        (Some(path), Some(name)) => format!("{path}.{name}"),
        (None, Some(name)) => name.to_string(),
        (Some(path), None) => path.to_string(),
        (None, None) => "body".to_string(),
    };
    FieldError {
        field,
        message: clean_message(message),
    }
}

/// `message` (one serde_json error, no path; its ` at line L column C` is kept) without any
/// value from the body.
pub(crate) fn clean_message(message: &str) -> String {
    let (message, position) = split_position(message);
    format!("{}{position}", clean_text(message))
}

fn clean_text(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let Some((sent, expected)) = rest.rsplit_once(", expected ") else {
                return format!("{prefix}{}", kind_of(rest));
            };
            return format!(
                "{prefix}{}, expected {}",
                kind_of(sent),
                expected_text(expected)
            );
        }
    }
    if message.starts_with("unknown variant `") {
        return match message.rsplit_once(", expected ") {
            Some((_, expected)) => format!("unknown value, expected {expected}"),
            None => "unknown value".to_string(),
        };
    }
    let names_a_field = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .any(|p| message.starts_with(p));
    if names_a_field
        || message.starts_with("invalid length ")
        || !message.contains(['"', '`', '\''])
    {
        return message.to_string();
    }
    "invalid value".to_string()
}

/// Whether `text` is a serde path (`oauth`, `streams[0].name`), not the start of a message.
fn is_path(text: &str) -> bool {
    !text.is_empty()
        && text != "."
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '?' | '-'))
}

/// `(message, " at line L column C")`.
fn split_position(message: &str) -> (&str, &str) {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => (&message[..i], &message[i..]),
        _ => (message, ""),
    }
}

/// The field a `missing field` / `unknown field` / `duplicate field` message names.
fn named_field(message: &str) -> Option<&str> {
    let named = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .any(|p| message.starts_with(p));
    if named {
        message.split('`').nth(1)
    } else {
        None
    }
}

/// The JSON kind of serde's description of a sent value (`string "…"`, `integer `5``).
fn kind_of(sent: &str) -> &'static str {
    let starts = |p: &str| sent.starts_with(p);
    if starts("string") || starts("character") || starts("byte array") {
        "a string"
    } else if starts("integer") || starts("floating point") {
        "a number"
    } else if starts("boolean") {
        "a boolean"
    } else if starts("null") || starts("unit") || starts("Option") {
        "null"
    } else if starts("sequence") {
        "an array"
    } else if starts("map") {
        "an object"
    } else {
        "a value of another kind"
    }
}

/// serde's `expected …` in JSON words: no Rust type names.
fn expected_text(expected: &str) -> String {
    let word = expected.trim();
    let text = match word {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number of 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a sequence" | "sequence" => "an array",
        "a map" | "map" => "an object",
        "a borrowed string" | "a string" | "string" => "a string",
        "option" => "a value or null",
        _ if word.starts_with("struct ") => "an object",
        _ if word.starts_with("enum ") => "one of the documented values",
        _ => return word.to_string(),
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "Failed to deserialize the JSON body into the target type: ";

    #[test]
    fn sent_values_and_rust_types_are_left_out() {
        let e = field_error(&format!(
            "{PREFIX}oauth: invalid type: string \"SECRET, expected x\", expected struct \
             OAuthSettingsBody at line 1 column 60"
        ));
        assert_eq!(e.field, "oauth");
        assert_eq!(
            e.message,
            "invalid type: a string, expected an object at line 1 column 60"
        );
        let e = field_error(&format!(
            "{PREFIX}rate_limit_per_min: invalid value: integer `-5`, expected u32 at line 1 column 9"
        ));
        assert_eq!(e.field, "rate_limit_per_min");
        assert!(
            !e.message.contains("-5") && !e.message.contains("u32"),
            "{e:?}"
        );
        let e = field_error(&format!(
            "{PREFIX}mode: unknown variant `SECRETX`, expected `a` or `b` at line 1 column 9"
        ));
        assert_eq!(
            e.message,
            "unknown value, expected `a` or `b` at line 1 column 9"
        );
    }

    #[test]
    fn nested_missing_and_unknown_fields_get_their_full_path() {
        let e = field_error(&format!(
            "{PREFIX}oauth: missing field `client_secret` at line 1 column 40"
        ));
        assert_eq!(e.field, "oauth.client_secret");
        let e = field_error(&format!(
            "{PREFIX}oauth.extra: unknown field `extra`, expected one of `client_id` at line 1 column 40"
        ));
        assert_eq!(e.field, "oauth.extra");
        let e = field_error(&format!("{PREFIX}missing field `name` at line 1 column 2"));
        assert_eq!(e.field, "name");
        let e = field_error(&format!(
            "{PREFIX}invalid type: integer `7`, expected struct CreateCredential at line 1 column 1"
        ));
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            (
                "body",
                "invalid type: a number, expected an object at line 1 column 1"
            )
        );
    }
}
