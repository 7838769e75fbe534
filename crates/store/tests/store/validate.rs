//! Field validation and normalisation.

use secrecy::{ExposeSecret, SecretString};
use store::validate;

fn key(text: &str) -> Result<(String, Option<String>), String> {
    validate::api_key(&SecretString::from(text.to_string()))
        .map(|k| (k.key.expose_secret().to_string(), k.notice))
        .map_err(|e| e.to_string())
}

#[test]
fn api_key_is_trimmed_and_bearer_prefix_stripped_with_a_notice() {
    assert_eq!(
        key("  tok_abc1234567890\r\n").unwrap(),
        ("tok_abc1234567890".into(), None)
    );
    let (k, notice) = key("Bearer tok_abc1234567890\n").unwrap();
    assert_eq!(k, "tok_abc1234567890");
    assert!(notice.unwrap().contains("Bearer"));
    assert_eq!(
        key("bearer  tok_abc1234567890").unwrap().0,
        "tok_abc1234567890"
    );
}

#[test]
fn api_key_with_inner_whitespace_or_control_characters_is_rejected_without_echo() {
    for (bad, what) in [
        ("tok_abc 123456", "whitespace"),
        ("tok_abc\t123456", "whitespace"),
        ("tok_abc\u{7}123456", "control character"),
        ("tok_abc\u{e9}123456", "non-ASCII"),
        // A multi-byte character across byte 7, where a "Bearer " prefix would end.
        ("tok_ab\u{e9}\u{27d05},123456789", "non-ASCII"),
        ("Bearer\u{e9}tok_abc123456789", "non-ASCII"),
    ] {
        let err = key(bad).unwrap_err();
        assert!(err.contains(what), "{err}");
        assert!(err.starts_with("api_key:"), "{err}");
        assert!(
            !err.contains("tok_abc"),
            "the error must not echo the key: {err}"
        );
    }
    assert!(key("").unwrap_err().contains("empty"));
    assert!(key(" \n ").unwrap_err().contains("empty"));
    assert!(key("Bearer ").unwrap_err().contains("only the word"));
}

#[test]
fn api_key_shorter_than_16_characters_is_rejected_naming_the_fix() {
    let err = key("  tok_a1b2c3d4e5f\n").unwrap_err(); // 15 characters once trimmed
    assert_eq!(
        err,
        "api_key: the API key is too short: Drift access tokens are much longer than 16 characters; paste the whole token"
    );
    assert!(key("Bearer tok_a1b2c3d4e5f").is_err());
    assert_eq!(key("tok_a1b2c3d4e5f6").unwrap().0, "tok_a1b2c3d4e5f6");
    // A token Drift mints in an OAuth refresh is kept whatever its length.
    let minted = validate::api_key_format(&SecretString::from("abc".to_string())).unwrap();
    assert_eq!(minted.key.expose_secret(), "abc");
}

#[test]
fn mask_shows_only_the_last_four_characters() {
    let mask = |t: &str| validate::mask(&SecretString::from(t.to_string()));
    assert_eq!(mask("tok_0123456789abcdef3f9a"), "••••3f9a");
    assert_eq!(mask("short12"), "••••");
}

#[test]
fn base_url_rules() {
    let ok = |u: &str| validate::base_url(u).unwrap();
    assert_eq!(ok("https://driftapi.com/").url, "https://driftapi.com");
    assert_eq!(
        ok("  https://driftapi.com///  ").url,
        "https://driftapi.com"
    );
    assert_eq!(ok("http://127.0.0.1:8787").url, "http://127.0.0.1:8787");
    assert_eq!(ok("http://localhost:9/").url, "http://localhost:9");
    assert_eq!(ok("http://[::1]:8080").url, "http://[::1]:8080");
    assert_eq!(ok("http://127.0.0.2").url, "http://127.0.0.2");
    assert!(ok("https://driftapi.com").warnings.is_empty());

    let with_path = ok("https://proxy.example.com/drift/");
    assert_eq!(with_path.url, "https://proxy.example.com/drift");
    assert!(with_path.warnings[0].contains("/drift"));
    let with_query = ok("https://driftapi.com/?a=1#x");
    assert_eq!(with_query.url, "https://driftapi.com");
    assert_eq!(with_query.warnings.len(), 2);

    for (bad, hint) in [
        ("driftapi.com", "not a URL"),
        ("http://driftapi.com", "loopback"),
        ("http://10.0.0.5:8787", "loopback"),
        ("ftp://driftapi.com", "https://"),
        ("https://user:pw@driftapi.com", "user name"),
    ] {
        let err = validate::base_url(bad).unwrap_err().to_string();
        assert!(
            err.starts_with("base_url:") && err.contains(hint),
            "{bad}: {err}"
        );
    }
}

#[test]
fn name_and_description_limits() {
    assert_eq!(validate::name("  Prod ").unwrap(), "Prod");
    assert!(
        validate::name(&"é".repeat(100)).is_ok(),
        "100 characters, not bytes"
    );
    assert!(validate::name(&"é".repeat(101))
        .unwrap_err()
        .to_string()
        .contains("at most 100"));
    assert!(validate::name("")
        .unwrap_err()
        .to_string()
        .contains("--name"));
    assert!(validate::name("a\u{0}b").is_err());
    assert_eq!(validate::description(Some("   ")).unwrap(), None);
    assert!(validate::description(Some(&"d".repeat(1000))).is_ok());
    let err = validate::description(Some(&"d".repeat(1001)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("description") && err.contains("1000"), "{err}");
    assert!(validate::rate_limit_per_min(0).is_err());
}
