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
