//! Base URL validation and builder settings.

use drift_client::{Client, Error, SecretString};

fn new(url: &str) -> Result<Client, Error> {
    Client::new(url, SecretString::from("t"))
}

#[tokio::test]
async fn base_url_is_validated_and_normalised() {
    assert_eq!(
        new("https://driftapi.com").unwrap().base_url().as_str(),
        "https://driftapi.com/"
    );
    assert_eq!(
        new("https://driftapi.com///").unwrap().base_url().as_str(),
        "https://driftapi.com/"
    );
    assert_eq!(
        new("http://127.0.0.1:8787/").unwrap().base_url().as_str(),
        "http://127.0.0.1:8787/"
    );
    assert_eq!(
        new("http://127.1.2.3:1").unwrap().base_url().port(),
        Some(1)
    );
    assert!(new("http://localhost:8787").is_ok());
    assert!(new("http://[::1]:8787").is_ok());
    for bad in [
        "http://driftapi.com",
        "http://192.168.1.10:8787",
        "ftp://driftapi.com",
        "driftapi.com",
        "",
        "https://driftapi.com/?x=1",
    ] {
        match new(bad) {
            Err(Error::Config {
                field: "base_url",
                message,
            }) => assert!(!message.is_empty()),
            Err(other) => panic!("{bad}: unexpected {other}"),
            Ok(_) => panic!("{bad} was accepted"),
        }
    }
    let e = new("http://driftapi.com").unwrap_err().to_string();
    assert!(e.contains("https://") && e.contains("loopback"), "{e}");
}

#[tokio::test]
async fn builder_rejects_zero_settings() {
    let b = || Client::builder("https://driftapi.com", SecretString::from("t"));
    assert!(matches!(
        b().rate_limit_per_min(0).build(),
        Err(Error::Config {
            field: "rate_limit_per_min",
            ..
        })
    ));
    assert!(matches!(
        b().max_concurrency(0).build(),
        Err(Error::Config {
            field: "max_concurrency",
            ..
        })
    ));
    assert!(matches!(
        b().page_cap(0).build(),
        Err(Error::Config {
            field: "page_cap",
            ..
        })
    ));
    assert!(matches!(
        Client::new("https://driftapi.com", SecretString::from("  ")),
        Err(Error::Config { field: "token", .. })
    ));
    assert_eq!(
        b().rate_limit_per_min(120)
            .build()
            .unwrap()
            .rate_budget()
            .per_minute(),
        120
    );
}

#[tokio::test]
async fn concurrency_grows_with_the_budget_unless_set() {
    let b = |per_min: u32| {
        Client::builder("https://driftapi.com", SecretString::from("t")).rate_limit_per_min(per_min)
    };
    // requests per second x 0.5 s of latency, at least 8, at most 64
    assert_eq!(b(600).build().unwrap().max_concurrency(), 8);
    assert_eq!(b(6000).build().unwrap().max_concurrency(), 50);
    assert_eq!(b(100_000).build().unwrap().max_concurrency(), 64);
    assert_eq!(
        b(6000)
            .max_concurrency(3)
            .build()
            .unwrap()
            .max_concurrency(),
        3
    );
}

/// `deny_private_addresses`: a literal internal IP fails at build; a name that resolves to
/// loopback (`localhost`) fails at connect time, before any request (so the token) is sent.
#[tokio::test]
async fn deny_private_addresses_refuses_internal_hosts_before_sending() {
    use wiremock::{matchers::any, Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "access_token": "t", "authenticated_userid": "orgId:1", "expires_in": 0,
            "scope": "user_read"})))
        .mount(&server)
        .await;
    let port = server.address().port();
    let deny = |url: String| {
        Client::builder(&url, SecretString::from("t"))
            .deny_private_addresses(true)
            .max_retries(3)
            .build()
    };
    for url in [
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
        "https://169.254.169.254".to_string(),
        "https://10.0.0.1".to_string(),
        "https://[::ffff:192.168.0.1]".to_string(),
    ] {
        match deny(url.clone()) {
            Err(Error::PrivateAddress { reason, .. }) => {
                assert!(reason.contains(" address"), "{url}: {reason}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    let by_name = deny(format!("http://localhost:{port}")).unwrap();
    let err = by_name.token_info().await.unwrap_err();
    assert!(
        matches!(&err, Error::PrivateAddress { host, reason } if host == "localhost" && reason.contains("loopback")),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("only connects to public addresses"),
        "{err}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
    // The same client without the option reaches the server (the refusal is the option's).
    let allowed =
        Client::new(&format!("http://localhost:{port}"), SecretString::from("t")).unwrap();
    assert_eq!(allowed.token_info().await.unwrap().org_id, Some(1));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
