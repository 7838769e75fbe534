//! JSON decoding of 2xx bodies with Drift-tolerant fallbacks.
//!
//! Chat text is user input: a body may carry a lone UTF-16 surrogate escape (`"\ud83d"`
//! from a truncated emoji) that strict JSON parsers reject. Such escapes are replaced by
//! `\ufffd` (U+FFFD REPLACEMENT CHARACTER) and the body decoded again; everything else in
//! the record is kept.

use serde::de::DeserializeOwned;

use crate::error::{snippet, Redactor};
use crate::Error;

/// Decodes `body` as `T`; on failure an `Error::Decode` naming the route with the parse
/// error and the start of the body (token redacted).
pub(crate) fn decode<T: DeserializeOwned>(
    route: &str,
    body: &[u8],
    redactor: &Redactor,
) -> Result<T, Error> {
    decode_classified(route, body, redactor).map_err(|(e, _)| e)
}

/// Like [`decode`], and tells whether the body ended early (a cut-off response, worth a
/// retry for reads) rather than having the wrong shape.
pub(crate) fn decode_classified<T: DeserializeOwned>(
    route: &str,
    body: &[u8],
    redactor: &Redactor,
) -> Result<T, (Error, bool)> {
    let fail = |e: serde_json::Error| {
        let truncated = e.classify() == serde_json::error::Category::Eof;
        (decode_error(route, &e, body, redactor), truncated)
    };
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(e) => {
            // serde_json reports lone surrogates with several messages; rewrite and retry
            // only when the body really has one.
            let fixed = replace_lone_surrogates(body);
            if fixed == body {
                return Err(fail(e));
            }
            serde_json::from_slice(&fixed).map_err(fail)
        }
    }
}

fn decode_error(route: &str, e: &serde_json::Error, body: &[u8], r: &Redactor) -> Error {
    let text = String::from_utf8_lossy(body);
    Error::Decode {
        endpoint: route.to_string(),
        snippet: r.clean(&format!("{e}; body starts: {}", snippet(&text, 200))),
    }
}

/// Rewrites `\uD800`–`\uDFFF` escapes that do not form a valid high+low pair into `\uFFFD`.
/// Same length, so done on a copy in one pass. Backslashes only occur inside JSON strings,
/// so escape parsing needs no string tracking.
pub(crate) fn replace_lone_surrogates(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    let mut i = 0;
    while i < out.len() {
        if out[i] != b'\\' {
            i += 1;
            continue;
        }
        if out.get(i + 1) != Some(&b'u') {
            i += 2; // a two-byte escape such as \\ or \"
            continue;
        }
        let Some(unit) = hex4(&out, i + 2) else {
            i += 2;
            continue;
        };
        match unit {
            0xD800..=0xDBFF => {
                let low = (out.get(i + 6) == Some(&b'\\') && out.get(i + 7) == Some(&b'u'))
                    .then(|| hex4(&out, i + 8))
                    .flatten();
                if matches!(low, Some(0xDC00..=0xDFFF)) {
                    i += 12;
                } else {
                    out[i + 2..i + 6].copy_from_slice(b"FFFD");
                    i += 6;
                }
            }
            0xDC00..=0xDFFF => {
                out[i + 2..i + 6].copy_from_slice(b"FFFD");
                i += 6;
            }
            _ => i += 6,
        }
    }
    out
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    u16::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let fixed = replace_lone_surrogates(br#""a\ud83d b \ude00 \ud83d\ude00 \\ud800""#);
        let s: String = serde_json::from_slice(&fixed).unwrap();
        assert_eq!(s, "a\u{fffd} b \u{fffd} \u{1f600} \\ud800");
    }
}
