//! JSON decoding of 2xx bodies with Drift-tolerant fallbacks.
//!
//! Chat text is user input: a body may carry a lone UTF-16 surrogate escape (`"\ud83d"`
//! from a truncated emoji) that strict JSON parsers reject. Such escapes are replaced by
//! `\ufffd` (U+FFFD REPLACEMENT CHARACTER) and the body decoded again; everything else in
//! the record is kept.
//!
//! The envelope of a body is read strictly; its records one by one (`records.rs`). An
//! envelope that cannot be read is an `Error::Decode` naming the endpoint, what was
//! expected, the HTTP status, the content type and the body's length and start; whether
//! the body was JSON at all decides if a read is retried (`retry.rs`).

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::{snippet, Redactor};
use crate::records::{decode_record, decode_records, Model, RawRecord, Records, Unfit};
use crate::Error;

/// A 2xx response body and what an error about it must say.
pub(crate) struct Body<'a> {
    /// Route name of the request.
    pub route: &'a str,
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` header, when sent.
    pub content_type: Option<&'a str>,
    /// The body as received.
    pub bytes: &'a [u8],
    /// Scrubs the client's tokens from error messages.
    pub redactor: &'a Redactor,
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) struct BodyError {
    /// `Error::Decode` for the envelope, `Error::Unfit` for a single record.
    pub error: Error,
    /// The body is not JSON at all (empty, HTML, cut short): worth a short retry for reads.
    /// A well-formed JSON body of the wrong shape is not.
    pub not_json: bool,
}

impl<'a> Body<'a> {
    /// A body as the fuzz targets and unit tests see one: HTTP 200, JSON.
    pub(crate) fn json(route: &'a str, bytes: &'a [u8], redactor: &'a Redactor) -> Self {
        Body {
            route,
            status: 200,
            content_type: Some("application/json"),
            bytes,
            redactor,
        }
    }

    /// Parses the whole body as `E` (lone surrogates repaired, see the module docs). The
    /// error names `expected`, the status, the content type, the length and the start of
    /// the body.
    pub(crate) fn parse<E: DeserializeOwned>(&self, expected: &str) -> Result<E, BodyError> {
        match serde_json::from_slice(self.bytes) {
            Ok(v) => Ok(v),
            Err(e) => {
                // serde_json reports lone surrogates with several messages; rewrite and
                // parse again only when the body really has one.
                let fixed = replace_lone_surrogates(self.bytes);
                if fixed == self.bytes {
                    return Err(self.parse_error(expected, e));
                }
                serde_json::from_slice(&fixed).map_err(|e| self.parse_error(expected, e))
            }
        }
    }

    fn parse_error(&self, expected: &str, e: serde_json::Error) -> BodyError {
        use serde_json::error::Category;
        let (problem, not_json) = match e.classify() {
            Category::Eof => ("cut short", true),
            Category::Syntax | Category::Io => ("not JSON", true),
            Category::Data => ("wrong shape", false),
        };
        BodyError {
            error: self.error(expected, Some(&format!("{problem}: {e}"))),
            not_json,
        }
    }

    /// Decodes the body with its records: first whole as `Fast` (typed records: the common
    /// case, one pass); when that fails, as `Slow` (records kept raw), and `slow` decodes
    /// each record on its own (see `records.rs`). `slow` returns `Err(detail)` when the
    /// envelope's shape is wrong in a way serde could not see (a `data` that is neither a
    /// list nor an object).
    pub(crate) fn decode<Fast, Slow, Out>(
        &self,
        expected: &str,
        fast: impl FnOnce(Fast) -> Out,
        slow: impl FnOnce(Slow) -> Result<Out, String>,
    ) -> Result<Out, BodyError>
    where
        Fast: DeserializeOwned,
        Slow: DeserializeOwned,
    {
        if let Ok(f) = serde_json::from_slice::<Fast>(self.bytes) {
            return Ok(fast(f));
        }
        // Raw records are not unescaped by the envelope parse, so lone surrogates are
        // repaired before it, not after a failure.
        let fixed = replace_lone_surrogates(self.bytes);
        let s =
            serde_json::from_slice::<Slow>(&fixed).map_err(|e| self.parse_error(expected, e))?;
        slow(s).map_err(|detail| self.shape_error(expected, &detail))
    }

    /// Each record on its own: those that fit and the [`Unfit`] ones.
    pub(crate) fn records<T: Model>(&self, raws: Vec<RawRecord>) -> Records<T> {
        decode_records(self.route, raws, self.redactor)
    }

    /// One record; `key` is the id asked for, when one was.
    pub(crate) fn record<T: Model>(&self, raw: &RawValue, key: Option<String>) -> Result<T, Unfit> {
        decode_record(self.route, raw, key, self.redactor)
    }

    /// A well-formed JSON body whose envelope has the wrong shape (`detail` says how).
    pub(crate) fn shape_error(&self, expected: &str, detail: &str) -> BodyError {
        BodyError {
            error: self.error(expected, Some(&format!("wrong shape: {detail}"))),
            not_json: false,
        }
    }

    /// `Error::Decode`: `expected ...; got HTTP 200, content type text/html, 1532 bytes
    /// (starts: "<html>…"); not JSON: ...`, or `..., empty body (0 bytes)`. Tokens redacted.
    fn error(&self, expected: &str, problem: Option<&str>) -> Error {
        let content_type = match self.content_type {
            Some(ct) => format!("content type {ct}"),
            None => "no content type".to_string(),
        };
        let (status, n) = (self.status, self.bytes.len());
        let message = if self.bytes.is_empty() {
            format!("expected {expected}; got HTTP {status}, {content_type}, empty body (0 bytes)")
        } else {
            // The whole text is scrubbed before it is cut, so no part of a token survives.
            let text = self.redactor.clean(&String::from_utf8_lossy(self.bytes));
            let start = snippet(&text, 120);
            let problem = problem.map(|p| format!("; {p}")).unwrap_or_default();
            format!(
                "expected {expected}; got HTTP {status}, {content_type}, {n} bytes \
                 (starts: {start:?}){problem}"
            )
        };
        Error::Decode {
            endpoint: self.route.to_string(),
            snippet: self.redactor.clean(&message),
        }
    }
}

/// What a JSON value is, for shape errors (`"data" is a string`).
pub(crate) fn kind_of(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "a list",
        Some(b'"') => "a string",
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
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
