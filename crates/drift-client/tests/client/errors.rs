//! Error taxonomy, error-body shapes, and the token canary.

use drift_client::{Client, Error, SecretString};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{builder, client, json, TOKEN};

async fn error_for(status: u16, body: ResponseTemplate) -> Error {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contacts/1"))
        .respond_with(body)
        .mount(&server)
        .await;
    let (b, _clock) = builder(&server);
    let c = b.max_retries(0).build().unwrap();
    let e = c.contact(1).await.unwrap_err();
    assert_eq!(e.status().unwrap_or(status), status, "{e}");
    e
}

fn assert_no_token(e: &Error) {
    let shown = format!("{e} | {e:?}");
    assert!(!shown.contains(TOKEN), "token leaked: {shown}");
    assert!(!shown.contains("CANARY"), "token leaked: {shown}");
}

#[tokio::test]
async fn every_documented_error_body_shape_is_parsed() {
    let e = error_for(
        404,
        ResponseTemplate::new(404).set_body_json(
            json!({"error": {"type": "not_found", "message": "Contact 1 not found"}}),
        ),
    )
    .await;
    assert!(
        matches!(&e, Error::NotFound { message, endpoint } if message.contains("Contact 1 not found") && endpoint == "contacts.get"),
        "{e}"
    );

    let e = error_for(
        409,
        ResponseTemplate::new(409).set_body_json(json!({"error": "duplicate email"})),
    )
    .await;
    assert!(
        matches!(&e, Error::Conflict { message, .. } if message == "duplicate email"),
        "{e}"
    );

    let e = error_for(400, ResponseTemplate::new(400).set_body_json(json!({"errors": [
        {"type": "validation_error", "message": "limit must be between 1 and 50", "param": "limit"}]}))).await;
    match &e {
        Error::Invalid {
            field,
            message,
            status,
        } => {
            assert_eq!(*status, Some(400));
            assert_eq!(field.as_deref(), Some("limit"));
            assert!(
                message.contains("limit must be between 1 and 50"),
                "{message}"
            );
            assert!(message.contains("400"), "{message}");
        }
        other => panic!("expected Invalid, got {other}"),
    }

    let e = error_for(
        500,
        ResponseTemplate::new(500).set_body_string("upstream connect error"),
    )
    .await;
    assert!(
        matches!(&e, Error::Server { status: 500, message, .. } if message == "upstream connect error"),
        "{e}"
    );

    let e = error_for(
        401,
        ResponseTemplate::new(401).set_body_json(json!({"error_description": "token expired"})),
    )
    .await;
    assert!(
        matches!(&e, Error::Unauthorized { message, .. } if message == "token expired"),
        "{e}"
    );
}

#[tokio::test]
async fn forbidden_names_the_missing_scope() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contacts/attributes"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"error": {"type": "forbidden", "message": "Forbidden"}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/accounts/x"))
        .respond_with(ResponseTemplate::new(403).set_body_json(
            json!({"error": {"type": "forbidden", "message": "missing scope account_read"}}),
        ))
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.contact_attributes().await.unwrap_err();
    assert!(
        matches!(&e, Error::Forbidden { missing_scope: Some(s), .. } if s == "all_contact_read"),
        "{e}"
    );
    assert!(e.to_string().contains("all_contact_read"));
    let e = c.account("x").await.unwrap_err();
    assert!(
        matches!(&e, Error::Forbidden { missing_scope: Some(s), .. } if s == "account_read"),
        "{e}"
    );
}

#[tokio::test]
async fn token_never_appears_in_errors_even_when_echoed() {
    let echo = format!("bad token {TOKEN} given");
    for status in [400u16, 401, 403, 404, 409, 500] {
        let e = error_for(
            status,
            ResponseTemplate::new(status)
                .set_body_json(json!({"error": {"type": "x", "message": echo}})),
        )
        .await;
        assert_no_token(&e);
        assert!(e.to_string().contains("[redacted]"), "{e}");
    }
    // Undecodable 2xx body that contains the token: the snippet is redacted.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contacts/1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(format!("{{\"data\": \"{TOKEN}\" broken")),
        )
        .mount(&server)
        .await;
    let e = client(&server).contact(1).await.unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    assert_no_token(&e);
}

/// The error message a client with token `token` shows when Drift answers 400 with `message`.
async fn message_seen_with(token: &str, message: &str) -> String {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contacts/1"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"type": "bad_request", "message": message}})),
        )
        .mount(&server)
        .await;
    let c = Client::builder(&server.uri(), SecretString::from(token.to_string()))
        .max_retries(0)
        .build()
        .unwrap();
    c.contact(1).await.unwrap_err().to_string()
}

#[tokio::test]
async fn a_short_token_is_redacted_as_a_whole_word_only() {
    // A short token (saved before keys under 16 characters were refused) that also occurs
    // inside ordinary words: the words stay readable, the token on its own is redacted.
    let shown = message_seen_with("ken", "app/token_info says ken is unknown; see tokens").await;
    assert!(
        shown.contains("app/token_info says [redacted] is unknown; see tokens"),
        "{shown}"
    );
    let shown = message_seen_with("ken", "token=ken, \"ken\" and (ken).").await;
    assert_eq!(shown.matches("[redacted]").count(), 3, "{shown}");
    assert!(
        !shown.contains("=ken") && !shown.contains("\"ken"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_full_length_token_is_redacted_even_glued_to_other_text() {
    let echo = format!("got access_token={TOKEN}&x=1 and Bearer{TOKEN}");
    let shown = message_seen_with(TOKEN, &echo).await;
    assert!(!shown.contains(TOKEN), "token leaked: {shown}");
    assert!(
        shown.contains("access_token=[redacted]&x=1 and Bearer[redacted]"),
        "{shown}"
    );
}

#[tokio::test]
async fn token_never_appears_in_debug_or_transport_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let b = Client::builder(&uri, SecretString::from(TOKEN)).max_retries(0);
    assert!(!format!("{b:?}").contains(TOKEN));
    let c = b.build().unwrap();
    assert!(!format!("{c:?}").contains(TOKEN));
    let e = c.users().await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e}");
    assert_no_token(&e);
    let bad = Client::new("http://example.com", SecretString::from(TOKEN)).unwrap_err();
    assert_no_token(&bad);
    let bad = Client::new(&uri, SecretString::from(format!("{TOKEN}\n"))).map(|_| ());
    assert!(bad.is_ok(), "surrounding whitespace is trimmed");
    let bad = Client::new(&uri, SecretString::from("tok_CANARY\nmore".to_string())).unwrap_err();
    assert!(matches!(bad, Error::Config { field: "token", .. }));
    assert_no_token(&bad);
}

#[tokio::test]
async fn every_request_carries_the_bearer_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .and(wiremock::matchers::header(
            "authorization",
            format!("Bearer {TOKEN}").as_str(),
        ))
        .respond_with(json(json!({"data": []})))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).users().await.unwrap();
    server.verify().await;
}

#[tokio::test]
async fn redirect_to_another_host_is_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(json!({"data": []})))
        .expect(0)
        .mount(&elsewhere)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("{}/users/list", elsewhere.uri()).as_str(),
        ))
        .mount(&server)
        .await;
    let e = client(&server).users().await.unwrap_err();
    assert!(
        matches!(&e, Error::Transport { message, .. } if message.contains("redirect")),
        "{e}"
    );
    elsewhere.verify().await;
}

#[tokio::test]
async fn redirect_on_the_same_host_is_followed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "/v2/users/list"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/users/list"))
        .respond_with(json(json!({"data": [{"id": 3}]})))
        .mount(&server)
        .await;
    assert_eq!(client(&server).users().await.unwrap()[0].id, 3);
}
