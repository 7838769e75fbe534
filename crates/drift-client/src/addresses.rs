//! Refusing internal network addresses (issue 10 "Host pinning / SSRF").
//!
//! A multi-user server (`driftbridge serve`) must not become a proxy into the network it
//! runs in: with [`ClientBuilder::deny_private_addresses`](crate::ClientBuilder::deny_private_addresses)
//! a client refuses a base URL whose host is a literal internal address when it is built, and
//! installs a DNS resolver that drops internal answers at connect time, so a host name that
//! resolves (or later re-resolves, DNS rebinding) to such an address gets no request and no
//! token. Redirects and next links are already pinned to the base URL's host (`base.rs`), so
//! the host checked here is the only one the client ever contacts.
//!
//! Internal means: loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16), link-local
//! (169.254/16 incl. the cloud metadata address 169.254.169.254, fe80::/10), unique-local
//! (fc00::/7), shared/CGNAT (100.64/10), unspecified and "this network" (0/8, ::), IETF
//! protocol assignments (192.0.0/24), benchmarking (198.18/15), multicast, reserved
//! (240/4, incl. broadcast), deprecated site-local (fec0::/10), and IPv6 forms that embed one
//! of those IPv4 addresses, classified by that IPv4 address: IPv4-mapped `::ffff:a.b.c.d`,
//! IPv4-compatible `::a.b.c.d` (`::/96`), IPv4-translated `::ffff:0:a.b.c.d`, NAT64
//! `64:ff9b::/96`, local-use NAT64 `64:ff9b:1::/48` (every RFC 6052 position of the IPv4
//! address within it: internal if any is) and 6to4 `2002::/16`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// What kind of internal address `ip` is (`"loopback"`, `"private"`, `"link-local"`, ...),
/// or `None` for a public address.
pub fn internal_address_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (127, _, _) => "loopback",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (0, _, _) => "unspecified",
        (192, 0, 0) => "IETF protocol",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    let seg = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // IPv4-compatible (`::a.b.c.d`, ::/96; `::` and `::1` are handled above), IPv4-translated
    // (`::ffff:0:a.b.c.d`) and well-known NAT64 (`64:ff9b::/96`): the last 32 bits.
    if seg[..6] == [0, 0, 0, 0, 0, 0]
        || seg[..6] == [0, 0, 0, 0, 0xffff, 0]
        || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        return v4_kind(embedded(seg[6], seg[7]));
    }
    // Local-use NAT64 (RFC 8215, 64:ff9b:1::/48): the translator's prefix may be /96, /64,
    // /56 or /48, each placing the IPv4 address elsewhere (RFC 6052 §2.2, skipping the u
    // octet, byte 8). Internal when any reading is; readings in 0.0.0.0/8 (zero padding, no
    // translation target) are skipped.
    if seg[..3] == [0x64, 0xff9b, 1] {
        let b = ip.octets();
        return [
            [b[12], b[13], b[14], b[15]],
            [b[9], b[10], b[11], b[12]],
            [b[7], b[9], b[10], b[11]],
            [b[6], b[7], b[9], b[10]],
        ]
        .into_iter()
        .filter(|v4| v4[0] != 0)
        .find_map(|v4| v4_kind(Ipv4Addr::from(v4)));
    }
    if seg[0] == 0x2002 {
        return v4_kind(embedded(seg[1], seg[2]));
    }
    match seg[0] {
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("site-local"),
        s if s & 0xfe00 == 0xfc00 => Some("unique-local"),
        s if s & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// Why the host of `url` is internal without resolving it: a literal internal IP, or
/// `localhost` / `*.localhost` (RFC 6761: always loopback). `None` for other names, which are
/// checked on their resolved addresses at connect time.
/// E.g. `http://169.254.169.254/` -> `Some("169.254.169.254 is a link-local address")`.
pub fn internal_host(url: &Url) -> Option<String> {
    match url.host()? {
        Host::Ipv4(ip) => v4_kind(ip).map(|kind| format!("{ip} is {} address", article(kind))),
        Host::Ipv6(ip) => v6_kind(ip).map(|kind| format!("[{ip}] is {} address", article(kind))),
        Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            (d == "localhost" || d.ends_with(".localhost"))
                .then(|| format!("{d} is a loopback name"))
        }
    }
}

fn article(kind: &str) -> String {
    let vowel = kind.starts_with(['a', 'e', 'i', 'o', 'I']) || kind.starts_with("unspecified");
    format!("{} {kind}", if vowel { "an" } else { "a" })
}

/// Error of [`PublicOnlyResolver`]: every address the name resolved to is internal. Found in
/// the transport error's source chain and turned into [`Error::PrivateAddress`](crate::Error).
#[derive(Debug)]
pub(crate) struct InternalAnswer {
    pub host: String,
    pub reason: String,
}

impl std::fmt::Display for InternalAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.host, self.reason)
    }
}

impl std::error::Error for InternalAnswer {}

/// A DNS resolver for any `reqwest` client (e.g. alert webhooks) that keeps only public
/// addresses, as [`ClientBuilder::deny_private_addresses`](crate::ClientBuilder::deny_private_addresses)
/// does for Drift clients: a name with no public address fails to connect.
pub fn public_only_resolver() -> std::sync::Arc<impl reqwest::dns::Resolve + 'static> {
    std::sync::Arc::new(PublicOnlyResolver)
}

/// DNS resolver that keeps only public addresses (system resolver underneath). A name with
/// no public address fails with [`InternalAnswer`], so no connection is opened.
pub(crate) struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        type BoxError = Box<dyn std::error::Error + Send + Sync>;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(e) as BoxError)?
                .collect();
            let (internal, public): (Vec<SocketAddr>, Vec<SocketAddr>) = all
                .into_iter()
                .partition(|a| internal_address_kind(a.ip()).is_some());
            if public.is_empty() {
                let reason = match internal.first() {
                    Some(a) => format!(
                        "it resolves to {}, {} address",
                        a.ip(),
                        article(internal_address_kind(a.ip()).unwrap_or("internal"))
                    ),
                    None => "it resolves to no address".to_string(),
                };
                return Err(Box::new(InternalAnswer { host, reason }) as BoxError);
            }
            if !internal.is_empty() {
                tracing::warn!(host = %host, dropped = internal.len(), "ignored internal addresses in a DNS answer");
            }
            Ok::<_, BoxError>(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        for (ip, kind) in [
            ("127.0.0.1", Some("loopback")),
            ("127.8.9.10", Some("loopback")),
            ("10.0.0.1", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.32.0.1", None),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("100.64.0.1", Some("shared (CGNAT)")),
            ("100.128.0.1", None),
            ("0.0.0.0", Some("unspecified")),
            ("255.255.255.255", Some("reserved")),
            ("224.0.0.1", Some("multicast")),
            ("8.8.8.8", None),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fe80::1", Some("link-local")),
            ("fc00::1", Some("unique-local")),
            ("fd12:3456::1", Some("unique-local")),
            ("::ffff:10.0.0.1", Some("private")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("::127.0.0.1", Some("loopback")),
            ("::10.1.2.3", Some("private")),
            ("::169.254.169.254", Some("link-local")),
            ("::8.8.8.8", None),
            ("::ffff:0:127.0.0.1", Some("loopback")),
            ("::ffff:0:192.168.0.1", Some("private")),
            ("::ffff:0:8.8.8.8", None),
            ("64:ff9b:1::7f00:1", Some("loopback")),
            ("64:ff9b:1::a00:1", Some("private")),
            ("64:ff9b:1:a9fe:a9:fe00::", Some("link-local")),
            ("64:ff9b:1:0:a:0:1::", Some("private")),
            ("64:ff9b:1::808:808", None),
            ("2002:7f00:1::", Some("loopback")),
            ("2606:4700::1111", None),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(internal_address_kind(ip), kind, "{ip}");
        }
    }

    #[test]
    fn hosts() {
        let host = |u: &str| internal_host(&Url::parse(u).unwrap());
        assert_eq!(
            host("http://169.254.169.254/").as_deref(),
            Some("169.254.169.254 is a link-local address")
        );
        assert_eq!(
            host("http://[::1]:9/").as_deref(),
            Some("[::1] is a loopback address")
        );
        // The URL parser normalises numeric forms, so they cannot hide an address.
        assert!(host("http://2130706433/").is_some());
        assert!(host("http://0x7f.1/").is_some());
        assert!(host("http://LOCALHOST:80/").is_some());
        assert!(host("http://a.localhost/").is_some());
        assert_eq!(host("https://driftapi.com/"), None);
        assert_eq!(host("https://8.8.8.8/"), None);
    }
}
