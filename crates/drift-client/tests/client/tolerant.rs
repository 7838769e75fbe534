//! Per-record decoding (records that vary are read, records that do not fit are set aside),
//! precise errors for bodies that are not what was expected, and per-handle meters.

use std::time::Duration;

use drift_client::{Error, ListConversations, Meter, MeterSnapshot, Page};
use futures::StreamExt;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{builder, client, conv, get_with_query, json, TOKEN};

/// Mounts `GET p` answering `resp` once (priority 1), before any other mock of `p`.
async fn once(server: &MockServer, verb: &str, p: &str, resp: ResponseTemplate) {
    Mock::given(method(verb))
        .and(path(p))
        .respond_with(resp)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
}

async fn requests_to(server: &MockServer, p: &str) -> usize {
    let all = server.received_requests().await.unwrap();
    all.iter().filter(|r| r.url.path() == p).count()
}

#[tokio::test]
async fn ids_and_timestamps_sent_as_strings_decode_in_lists_and_single_gets() {
    let server = MockServer::start().await;
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "",
        json!({"data": [
            {"id": "3790012245", "contactId": " 159 ", "createdAt": "1700000000000",
             "updatedAt": 1.7e12, "status": "open", "inboxId": "74120"},
            conv(2)
        ], "links": {}}),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/contacts/42"))
        .respond_with(json(json!({"data": {"id": "42", "createdAt": "-5",
            "attributes": {"email": "a@example.com"}}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(json(
            json!({"data": [{"id": "7", "bot": "true", "verified": 0,
            "name": 12, "createdAt": "1700000000000"}]}),
        ))
        .mount(&server)
        .await;
    let c = client(&server);
    let pages: Vec<_> = c
        .conversations(ListConversations::default())
        .collect()
        .await;
    let page = pages[0].as_ref().unwrap();
    assert!(page.unfit.is_empty(), "{:?}", page.unfit);
    let first = &page.items[0];
    assert_eq!(first.id, 3_790_012_245);
    assert_eq!(first.contact_id, Some(159));
    assert_eq!(first.created_at, Some(1_700_000_000_000));
    assert_eq!(first.updated_at, Some(1_700_000_000_000));
    assert_eq!(first.inbox_id, Some(74120));
    assert_eq!(page.items[1].id, 2);

    let contact = c.contact(42).await.unwrap();
    assert_eq!((contact.id, contact.created_at), (42, Some(-5)));
    assert_eq!(contact.email(), Some("a@example.com"));

    let users = c.users().await.unwrap();
    assert!(users.unfit.is_empty());
    assert_eq!(users.len(), 1);
    let u = &users[0];
    assert_eq!((u.id, u.bot, u.verified), (7, Some(true), Some(false)));
    assert_eq!(u.name.as_deref(), Some("12"));
    assert_eq!(u.created_at, Some(1_700_000_000_000));
}

#[tokio::test]
async fn records_that_do_not_fit_are_set_aside_and_the_pass_goes_on() {
    let server = MockServer::start().await;
    let next = format!("{}/conversations/list?page_token=B", server.uri());
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "",
        json!({"data": [
            conv(1),
            {"id": "abc", "status": "open"},
            conv(3),
            {"id": 4, "createdAt": {"seconds": 1700000000}},
            conv(5)
        ], "links": {"next": next}}),
    )
    .await;
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "B",
        json!({"data": [conv(6)], "links": {}}),
    )
    .await;
    let pages: Vec<Result<Page<_>, Error>> = client(&server)
        .conversations(ListConversations::default())
        .collect()
        .await;
    assert_eq!(pages.len(), 2, "{pages:?}");
    let first = pages[0].as_ref().unwrap();
    let ids: Vec<i64> = first.items.iter().map(|c| c.id).collect();
    assert_eq!(ids, [1, 3, 5]);
    assert_eq!(first.unfit.len(), 2);
    let (abc, four) = (&first.unfit[0], &first.unfit[1]);
    assert_eq!(abc.endpoint, "conversations.list");
    assert_eq!(abc.key.as_deref(), Some("abc"));
    assert_eq!(
        abc.reason,
        "field `id`: invalid type: string \"abc\", expected i64"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&abc.raw).unwrap(),
        json!({"id": "abc", "status": "open"}),
        "the record as received"
    );
    assert_eq!(four.key.as_deref(), Some("4"));
    assert_eq!(
        four.reason,
        "field `createdAt`: invalid type: map, expected i64"
    );
    let second = pages[1].as_ref().unwrap();
    assert_eq!(second.items[0].id, 6);
    assert!(second.unfit.is_empty());
    assert_eq!(second.next, None);
}

#[tokio::test]
async fn repeat_detection_compares_the_records_that_fit() {
    let server = MockServer::start().await;
    let page = |next: &str| {
        json!({"data": [conv(1), {"id": "x"}, conv(2)],
            "links": {"next": format!("{}/conversations/list?page_token={next}", server.uri())}})
    };
    get_with_query(&server, "/conversations/list", "page_token", "", page("B")).await;
    get_with_query(&server, "/conversations/list", "page_token", "B", page("C")).await;
    let pages: Vec<Result<Page<_>, Error>> = client(&server)
        .conversations(ListConversations::default())
        .collect()
        .await;
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(
        matches!(&pages[1], Err(Error::Pagination { page: 2, reason, .. }) if reason.contains("same 2 records")),
        "{:?}",
        pages[1]
    );
}

#[tokio::test]
async fn non_paged_lists_and_lookups_return_unfit_records_beside_the_others() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/teams/org"))
        .respond_with(json(json!({"data": [{"id": 1, "members": [1, "2"]},
            {"id": 2, "members": "everyone"}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/playbooks/list"))
        .respond_with(json(
            json!([{"id": 5, "name": "Welcome"}, {"name": "no id"}]),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .and(query_param("email", "dup@example.com"))
        .respond_with(json(json!({"data": [
            {"id": 10, "attributes": {"email": "dup@example.com"}},
            {"id": 11, "attributes": "dup@example.com"}
        ]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/meetings/org"))
        .respond_with(json(
            json!({"data": [{"slug": "abc", "slotStart": "soon"}]}),
        ))
        .mount(&server)
        .await;
    let c = client(&server);
    let teams = c.teams().await.unwrap();
    assert_eq!(teams.len(), 1);
    assert_eq!(teams[0].members, Some(vec![1, 2]));
    assert_eq!(teams.unfit[0].key.as_deref(), Some("2"));
    assert!(teams.unfit[0].reason.starts_with("field `members`: "));

    let playbooks = c.playbooks().await.unwrap();
    let names: Vec<_> = playbooks.iter().map(|p| p.name.clone()).collect();
    assert_eq!(names, [Some("Welcome".to_string())]);
    assert_eq!(playbooks.unfit[0].key, None);
    assert_eq!(playbooks.unfit[0].reason, "missing field `id`");

    let found = c.contacts_by_email("dup@example.com").await.unwrap();
    assert_eq!(found.iter().map(|c| c.id).collect::<Vec<_>>(), [10]);
    assert_eq!(found.unfit[0].endpoint, "contacts.by_email");
    assert_eq!(found.unfit[0].key.as_deref(), Some("11"));
    assert!(found.unfit[0].reason.starts_with("field `attributes`: "));

    let meetings = c.meetings(1, 2).await.unwrap();
    assert!(meetings.is_empty());
    assert_eq!(meetings.unfit[0].key.as_deref(), Some("abc"));
    assert!(meetings.unfit[0].reason.starts_with("field `slotStart`: "));
}

#[tokio::test]
async fn a_single_record_that_does_not_fit_is_an_unfit_error_keyed_by_the_id_asked_for() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contacts/42"))
        .respond_with(json(json!({"data": {"id": {"value": 42}}})))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server).contact(42).await.unwrap_err();
    match &e {
        Error::Unfit(u) => {
            assert_eq!(u.endpoint, "contacts.get");
            assert_eq!(u.key.as_deref(), Some("42"));
            assert_eq!(u.reason, "field `id`: invalid type: map, expected i64");
        }
        other => panic!("expected Unfit, got {other}"),
    }
    assert_eq!(e.kind(), "unfit");
    assert_eq!(
        e.to_string(),
        "contacts.get: record 42 does not fit the client's model: field `id`: invalid type: \
         map, expected i64"
    );
    server.verify().await;
}

#[tokio::test]
async fn unknown_fields_survive_a_round_trip_on_the_lenient_path() {
    let server = MockServer::start().await;
    let sent = json!({"id": "42", "createdAt": 1, "attributes": {"email": "a@example.com"},
        "newTopLevel": {"nested": [1, "two", null]}, "score": 1.5});
    Mock::given(method("GET"))
        .and(path("/contacts/42"))
        .respond_with(json(json!({ "data": sent })))
        .mount(&server)
        .await;
    let contact = client(&server).contact(42).await.unwrap();
    let back = serde_json::to_value(&contact).unwrap();
    let mut expected = sent.clone();
    expected["id"] = json!(42);
    assert_eq!(back, expected);
}

#[tokio::test]
async fn an_envelope_that_is_not_json_names_what_came() {
    let server = MockServer::start().await;
    let html = format!("<html><body>maintenance {TOKEN}</body></html>");
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(html.clone(), "text/html"))
        .mount(&server)
        .await;
    let e = client(&server).users().await.unwrap_err();
    let shown = e.to_string();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    let expected_start = format!(
        "users.list: expected a JSON object with a \"data\" list; got HTTP 200, content type \
         text/html, {} bytes (starts: \"<html><body>maintenance [redacted]</body></html>\")",
        html.len()
    );
    assert!(shown.starts_with(&expected_start), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert_eq!(e.status(), None, "a 2xx body is no error response");
}

#[tokio::test]
async fn an_empty_200_on_a_list_is_retried_exactly_twice_then_fails() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(ResponseTemplate::new(200).insert_header("content-type", "application/json"))
        .expect(3)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.users().await.unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "users.list: expected a JSON object with a \"data\" list; got HTTP 200, content type \
         application/json, empty body (0 bytes)"
    );
    let m = c.metrics();
    assert_eq!((m.requests, m.retries), (3, 2));
    assert_eq!(
        m.wait_time,
        Duration::from_millis(600),
        "short waits: 200 ms then 400 ms"
    );
    server.verify().await;
}

#[tokio::test]
async fn a_body_cut_short_is_retried_twice_at_most_and_a_wrong_shape_never() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/teams/org"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("{\"data\": [{\"id\": 1", "application/json"),
        )
        .expect(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(json(json!({"data": {"id": 1}})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.teams().await.unwrap_err();
    assert!(e.to_string().contains("; cut short: EOF"), "{e}");
    let e = c.users().await.unwrap_err();
    assert!(
        e.to_string().contains("; wrong shape: invalid type: map"),
        "{e}"
    );
    assert_eq!(c.metrics().retries, 2);
    server.verify().await;
}

#[tokio::test]
async fn a_create_answered_with_an_empty_200_is_not_sent_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/contacts"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let attrs = json!({"email": "j@example.com"})
        .as_object()
        .unwrap()
        .clone();
    let e = c.create_contact(&attrs).await.unwrap_err();
    assert!(e.to_string().contains("empty body (0 bytes)"), "{e}");
    assert_eq!(c.metrics().retries, 0);
    server.verify().await;
}

#[tokio::test]
async fn token_info_keeps_the_status_of_a_405_and_names_an_empty_body() {
    let server = MockServer::start().await;
    once(
        &server,
        "POST",
        "/app/token_info",
        ResponseTemplate::new(405).set_body_string("Method Not Allowed"),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/app/token_info"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.token_info().await.unwrap_err();
    assert_eq!(e.status(), Some(405), "{e}");
    assert!(!e.is_auth(), "a 405 is not a rejected key: {e}");
    assert!(
        matches!(&e, Error::Invalid { status: Some(405), message, .. } if message.contains("HTTP 405")),
        "{e}"
    );
    let e = c.token_info().await.unwrap_err();
    assert!(matches!(e, Error::Decode { .. }), "{e}");
    assert!(e.to_string().contains("empty body (0 bytes)"), "{e}");
    assert!(e.to_string().starts_with("app.token_info: "), "{e}");
    assert_eq!(
        requests_to(&server, "/app/token_info").await,
        4,
        "the 405 once, the empty 200 three times (two quick retries)"
    );
}

#[tokio::test]
async fn every_4xx_keeps_its_status() {
    for status in [400u16, 405, 410, 422] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/users/list"))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({"error": "no"})))
            .mount(&server)
            .await;
        let e = client(&server).users().await.unwrap_err();
        assert_eq!(e.status(), Some(status), "{e}");
        assert!(e.to_string().contains(&format!("HTTP {status}")), "{e}");
    }
}

#[tokio::test]
async fn rate_limited_prints_the_wait_in_whole_seconds_rounded_up() {
    let e = Error::RateLimited {
        retry_after: Some(Duration::from_secs_f64(3_599.631_470_469)),
    };
    assert_eq!(e.to_string(), "rate limited by Drift (Retry-After 3600 s)");
    // From a server: an HTTP date an hour ahead is a fractional wait.
    let server = MockServer::start().await;
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", at.as_str()))
        .mount(&server)
        .await;
    let e = client(&server).users().await.unwrap_err();
    let shown = e.to_string();
    assert!(
        shown == "rate limited by Drift (Retry-After 3600 s)"
            || shown == "rate limited by Drift (Retry-After 3599 s)",
        "{shown}"
    );
}

#[tokio::test]
async fn a_meter_counts_the_pages_and_retries_of_its_handle_only() {
    let server = MockServer::start().await;
    let next = format!("{}/conversations/list?page_token=B", server.uri());
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "",
        json!({"data": [conv(1)], "links": {"next": next}}),
    )
    .await;
    // Page 2: a 429 (Retry-After 2 s), then a 500, then the page.
    Mock::given(method("GET"))
        .and(path("/conversations/list"))
        .and(query_param("page_token", "B"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/conversations/list"))
        .and(query_param("page_token", "B"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/conversations/list"))
        .and(query_param("page_token", "B"))
        .respond_with(json(json!({"data": [conv(2)], "links": {}})))
        .with_priority(3)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/list"))
        .respond_with(json(json!({"data": []})))
        .mount(&server)
        .await;
    let (b, _clock) = builder(&server);
    let c = b.build().unwrap();
    let (stream_meter, run_meter) = (Meter::new(), Meter::new());
    let run = c.with_meter(run_meter.clone());
    let stream = run.with_meter(stream_meter.clone());
    let pages: Vec<_> = stream
        .conversations(ListConversations::default())
        .collect()
        .await;
    assert!(pages.iter().all(Result::is_ok), "{pages:?}");
    let s = stream_meter.snapshot();
    assert_eq!(
        (s.requests, s.rate_limited, s.retries),
        (4, 1, 2),
        "page 1, then page 2 three times: {s:?}"
    );
    assert!(s.waits >= 2, "{s:?}");
    assert!(s.wait_time >= Duration::from_secs(2), "{s:?}");
    // Another handle's requests are not this meter's; the budget counts everything.
    run.users().await.unwrap();
    c.users().await.unwrap();
    assert_eq!(stream_meter.snapshot(), s);
    assert_eq!(run_meter.snapshot().requests, 5);
    assert_eq!(c.metrics().requests, 6);
    assert_eq!(Meter::new().snapshot(), MeterSnapshot::default());
}
