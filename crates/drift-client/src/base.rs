//! Base URL validation and host pinning (DESIGN §4 "Base URL", issue: foreign hosts refused).

use std::net::IpAddr;

use url::{Host, Url};

use crate::Error;

/// Validates and normalises a base URL.
///
/// Rules: `https://` always; `http://` only to loopback (127.0.0.0/8, ::1, `localhost`);
/// no credentials, query or fragment; trailing slashes collapse so the stored URL's path
/// always ends in exactly one `/` (`https://driftapi.com//` → `https://driftapi.com/`).
pub(crate) fn parse_base_url(raw: &str) -> Result<Url, Error> {
    let config = |message: String| Error::Config {
        field: "base_url",
        message,
    };
    let trimmed = raw.trim();
    let mut url = Url::parse(trimmed).map_err(|e| {
        config(format!(
            "{trimmed:?} is not a URL ({e}); use e.g. https://driftapi.com"
        ))
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(config(format!(
                "{trimmed:?} uses http:// to a non-loopback host; use https:// (http is only \
                 allowed to 127.0.0.0/8, ::1 and localhost, e.g. the sandbox)"
            )))
        }
        other => {
            return Err(config(format!(
                "{trimmed:?} has scheme {other:?}; use https://"
            )))
        }
    }
    if url.host().is_none() {
        return Err(config(format!("{trimmed:?} has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config(
            "the base URL must not contain a user name or password; give the token separately"
                .to_string(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config(format!(
            "{trimmed:?} has a query or fragment; give only scheme, host, port and path"
        )));
    }
    let path = format!("{}/", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// True when `url` has the same scheme, host and port as `base`.
pub(crate) fn same_origin(url: &Url, base: &Url) -> bool {
    url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default()
}

/// Resolves a next link (absolute or relative) against `base` and returns it relative to the
/// base path (no leading `/`), or a reason why it is refused.
pub(crate) fn relative_link(base: &Url, link: &str) -> Result<String, String> {
    let url = base
        .join(link)
        .map_err(|e| format!("next link {link:?} is not a URL ({e})"))?;
    if !same_origin(&url, base) {
        return Err(format!(
            "next link points to {}://{}, not the credential's base URL {}; refused so the \
             token is never sent to another host",
            url.scheme(),
            url.host_str().unwrap_or("?"),
            base.as_str().trim_end_matches('/'),
        ));
    }
    let Some(rest) = url.path().strip_prefix(base.path()) else {
        return Err(format!(
            "next link path {} is outside the base URL path {}",
            url.path(),
            base.path()
        ));
    };
    let rel = match url.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    // A first segment with a colon (`v://x`, `a:b`) would read as a scheme when joined
    // again: `./` keeps it a path, so the stored cursor fetches the same URL (found by
    // fuzzing: `https:/v://ea` became a cursor that resolved to host `ea`, then refused).
    if base.join(&rel).ok().as_ref() != Some(&url) {
        return Ok(format!("./{rel}"));
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_rules() {
        assert_eq!(
            parse_base_url("https://driftapi.com//").unwrap().as_str(),
            "https://driftapi.com/"
        );
        assert_eq!(
            parse_base_url("http://127.0.0.1:8787/").unwrap().as_str(),
            "http://127.0.0.1:8787/"
        );
        assert_eq!(
            parse_base_url("https://example.com/drift///")
                .unwrap()
                .as_str(),
            "https://example.com/drift/"
        );
        assert!(parse_base_url("http://[::1]:80").is_ok());
        assert!(parse_base_url("http://localhost:1").is_ok());
        for bad in [
            "http://driftapi.com",
            "ftp://x",
            "driftapi.com",
            "https://u:p@driftapi.com",
            "https://driftapi.com/?a=1",
            "http://10.0.0.1",
        ] {
            let err = parse_base_url(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Config {
                        field: "base_url",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn links_are_pinned() {
        let base = parse_base_url("http://127.0.0.1:9000/api").unwrap();
        assert_eq!(
            relative_link(&base, "http://127.0.0.1:9000/api/accounts?index=2").unwrap(),
            "accounts?index=2"
        );
        assert_eq!(
            relative_link(&base, "/api/accounts?index=2").unwrap(),
            "accounts?index=2"
        );
        assert!(relative_link(&base, "http://127.0.0.2:9000/api/accounts").is_err());
        assert!(relative_link(&base, "https://evil.example/api/accounts").is_err());
    }
}
