//! Pagination of every generation (REFERENCE §6) and its failure modes.

use drift_client::{Error, ListConversations, Page, PageCursor};
use futures::StreamExt;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{builder, client, conv, get_with_query, json, msg};

async fn collect<T>(
    s: impl futures::Stream<Item = Result<Page<T>, Error>>,
) -> Vec<Result<Page<T>, Error>> {
    s.collect().await
}

fn ids(pages: &[Result<Page<drift_client::Conversation>, Error>]) -> Vec<i64> {
    pages
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .flat_map(|p| p.items.iter().map(|c| c.id))
        .collect()
}

fn pagination_error<T>(item: &Result<Page<T>, Error>) -> (u32, String) {
    match item {
        Err(Error::Pagination {
            endpoint,
            page,
            reason,
        }) => {
            assert_eq!(endpoint, "conversations.list");
            (*page, reason.clone())
        }
        Err(other) => panic!("expected a pagination error, got {other}"),
        Ok(_) => panic!("expected a pagination error, got a page"),
    }
}

#[tokio::test]
async fn page_token_generation_follows_links_next_to_the_end() {
    let server = MockServer::start().await;
    let next = format!("{}/conversations/list?page_token=B&limit=2", server.uri());
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "",
        json!({
        "data": [conv(1), conv(2)], "links": {"self": "x", "next": next}}),
    )
    .await;
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "B",
        json!({
        "data": [conv(3)], "links": {"self": "y"}}),
    )
    .await;

    let params = ListConversations {
        limit: Some(2),
        ..Default::default()
    };
    let pages = collect(client(&server).conversations(params)).await;
    assert_eq!(pages.len(), 2);
    assert_eq!(ids(&pages), vec![1, 2, 3]);
    let first = pages[0].as_ref().unwrap();
    assert_eq!(first.number, 1);
    assert_eq!(
        first.next,
        Some(PageCursor(
            "/conversations/list?page_token=B&limit=2".into()
        ))
    );
    assert_eq!(pages[1].as_ref().unwrap().next, None);
}

#[tokio::test]
async fn empty_links_next_ends_the_pass() {
    let server = MockServer::start().await;
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "",
        json!({
        "data": [conv(1)], "links": {"self": "x", "next": ""}}),
    )
    .await;
    let pages = collect(client(&server).conversations(Default::default())).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(ids(&pages), vec![1]);
    assert!(pages[0].as_ref().unwrap().next.is_none());
}

#[tokio::test]
async fn legacy_generation_with_short_page_and_numeric_cursor() {
    let server = MockServer::start().await;
    get_with_query(
        &server,
        "/conversations/list",
        "next",
        "",
        json!({
        "data": [conv(1), conv(2)], "pagination": {"more": true, "next": "123"}}),
    )
    .await;
    // A short page that still says more: the pass must go on.
    get_with_query(
        &server,
        "/conversations/list",
        "next",
        "123",
        json!({
        "data": [conv(3)], "pagination": {"more": true, "next": 456}}),
    )
    .await;
    get_with_query(
        &server,
        "/conversations/list",
        "next",
        "456",
        json!({
        "data": [conv(4)]}),
    )
    .await;

    let params = ListConversations {
        legacy: true,
        limit: Some(2),
        ..Default::default()
    };
    let pages = collect(client(&server).conversations(params)).await;
    assert_eq!(ids(&pages), vec![1, 2, 3, 4]);
    assert_eq!(pages.len(), 3);
    assert!(pages.iter().all(|p| p.is_ok()));
}

#[tokio::test]
async fn generation_is_detected_from_the_response() {
    // Asked for page_token, the server answers legacy style: the client follows it.
    let server = MockServer::start().await;
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "",
        json!({
        "data": [conv(1)], "pagination": {"more": true, "next": "77"}}),
    )
    .await;
    get_with_query(
        &server,
        "/conversations/list",
        "next",
        "77",
        json!({
        "data": [conv(2)], "pagination": {"more": false}}),
    )
    .await;
    let pages = collect(client(&server).conversations(Default::default())).await;
    assert_eq!(ids(&pages), vec![1, 2]);
}

#[tokio::test]
async fn repeated_cursor_fails_naming_the_page() {
    let server = MockServer::start().await;
    get_with_query(
        &server,
        "/conversations/list",
        "next",
        "",
        json!({
        "data": [conv(1)], "pagination": {"more": true, "next": "A"}}),
    )
    .await;
    get_with_query(
        &server,
        "/conversations/list",
        "next",
        "A",
        json!({
        "data": [conv(2)], "pagination": {"more": true, "next": "A"}}),
    )
    .await;
    let params = ListConversations {
        legacy: true,
        ..Default::default()
    };
    let pages = collect(client(&server).conversations(params)).await;
    assert_eq!(pages.len(), 3, "two pages then the error, then the end");
    assert_eq!(ids(&pages), vec![1, 2]);
    let (page, reason) = pagination_error(&pages[2]);
    assert_eq!(page, 2);
    assert!(reason.contains("repeated cursor"), "{reason}");
}

#[tokio::test]
async fn cursor_cycle_fails() {
    let server = MockServer::start().await;
    let link = |t: &str| format!("{}/conversations/list?page_token={t}", server.uri());
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "",
        json!({
        "data": [conv(1)], "links": {"next": link("A")}}),
    )
    .await;
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "A",
        json!({
        "data": [conv(2)], "links": {"next": link("B")}}),
    )
    .await;
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "B",
        json!({
        "data": [conv(3)], "links": {"next": link("A")}}),
    )
    .await;
    let pages = collect(client(&server).conversations(Default::default())).await;
    assert_eq!(ids(&pages), vec![1, 2, 3]);
    let (page, reason) = pagination_error(pages.last().unwrap());
    assert_eq!(page, 3);
    assert!(
        reason.contains("cycle") && reason.contains("page 2"),
        "{reason}"
    );
}

#[tokio::test]
async fn more_without_cursor_fails() {
    let server = MockServer::start().await;
    get_with_query(
        &server,
        "/conversations/list",
        "next",
        "",
        json!({
        "data": [conv(1)], "pagination": {"more": true}}),
    )
    .await;
    let params = ListConversations {
        legacy: true,
        ..Default::default()
    };
    let pages = collect(client(&server).conversations(params)).await;
    assert_eq!(pages.len(), 2);
    let (page, reason) = pagination_error(&pages[1]);
    assert_eq!(page, 1);
    assert!(reason.contains("more"), "{reason}");
}

#[tokio::test]
async fn next_link_to_another_host_is_refused() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(json!({"data": []})))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let foreign = format!("{}/conversations/list?page_token=B", elsewhere.uri());
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "",
        json!({
        "data": [conv(1)], "links": {"next": foreign}}),
    )
    .await;
    let pages = collect(client(&server).conversations(Default::default())).await;
    assert_eq!(pages.len(), 2);
    let (page, reason) = pagination_error(&pages[1]);
    assert_eq!(page, 1);
    assert!(reason.contains("refused"), "{reason}");
    elsewhere.verify().await;
}

#[tokio::test]
async fn a_stored_cursor_resumes_the_pass() {
    let server = MockServer::start().await;
    get_with_query(&server, "/conversations/list", "page_token", "", json!({
        "data": [conv(1)], "links": {"next": format!("{}/conversations/list?page_token=P2", server.uri())}})).await;
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "P2",
        json!({
        "data": [conv(2)], "links": {}}),
    )
    .await;
    let c = client(&server);
    let first = collect(c.conversations(Default::default())).await;
    let stored = first[0].as_ref().unwrap().next.clone().unwrap();
    // Round-trip the cursor through JSON as a checkpoint would.
    let stored: PageCursor =
        serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
    let params = ListConversations {
        start: Some(stored),
        ..Default::default()
    };
    let resumed = collect(c.conversations(params)).await;
    assert_eq!(ids(&resumed), vec![2]);
}

#[tokio::test]
async fn page_cap_is_a_backstop() {
    let server = MockServer::start().await;
    for i in 0..5 {
        let next = format!("{}/conversations/list?page_token=T{}", server.uri(), i + 1);
        let token = if i == 0 {
            String::new()
        } else {
            format!("T{i}")
        };
        get_with_query(
            &server,
            "/conversations/list",
            "page_token",
            &token,
            json!({
            "data": [conv(i + 1)], "links": {"next": next}}),
        )
        .await;
    }
    let c = builder(&server).0.page_cap(3).build().unwrap();
    let pages = collect(c.conversations(Default::default())).await;
    assert_eq!(ids(&pages), vec![1, 2, 3]);
    let (page, reason) = pagination_error(pages.last().unwrap());
    assert_eq!(page, 4);
    assert!(reason.contains("page cap"), "{reason}");
}

#[tokio::test]
async fn unauthorized_mid_stream_comes_after_the_pages_read() {
    let server = MockServer::start().await;
    get_with_query(&server, "/conversations/list", "page_token", "", json!({
        "data": [conv(1), conv(2)], "links": {"next": format!("{}/conversations/list?page_token=X", server.uri())}})).await;
    Mock::given(method("GET"))
        .and(path("/conversations/list"))
        .and(query_param("page_token", "X"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {
            "type": "authentication_error", "message": "The access token is invalid or has expired"}})))
        .expect(1)
        .mount(&server)
        .await;
    let pages = collect(client(&server).conversations(Default::default())).await;
    assert_eq!(pages.len(), 2);
    assert_eq!(ids(&pages), vec![1, 2]);
    assert!(
        matches!(&pages[1], Err(Error::Unauthorized { endpoint, .. }) if endpoint == "conversations.list")
    );
    server.verify().await;
}

#[tokio::test]
async fn messages_follow_next_while_more() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/conversations/5/messages"))
        .and(wiremock::matchers::query_param_is_missing("next"))
        .respond_with(json(
            json!({"data": {"messages": [msg(1, "a"), msg(2, "b")]},
            "pagination": {"more": true, "next": "2"}}),
        ))
        .mount(&server)
        .await;
    get_with_query(
        &server,
        "/conversations/5/messages",
        "next",
        "2",
        json!({
        "data": {"messages": [msg(3, "c")]}, "pagination": {"more": false}}),
    )
    .await;
    let all = client(&server).conversation_messages(5).await.unwrap();
    let ids: Vec<i64> = all.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
}

#[tokio::test]
async fn accounts_page_to_the_end_using_total() {
    let server = MockServer::start().await;
    let acct = |n: i64| json!({"accountId": format!("{n}_example.com"), "ownerId": 1, "name": format!("A{n}")});
    let next = |i: u32| format!("{}/accounts?index={i}&size=2", server.uri());
    get_with_query(
        &server,
        "/accounts",
        "index",
        "0",
        json!({"data": {
        "accounts": [acct(1), acct(2)], "total": 5, "next": next(2)}}),
    )
    .await;
    get_with_query(
        &server,
        "/accounts",
        "index",
        "2",
        json!({"data": {
        "accounts": [acct(3), acct(4)], "total": 5, "next": next(4)}}),
    )
    .await;
    // The last page still carries a next link past the total: the total ends the pass.
    get_with_query(
        &server,
        "/accounts",
        "index",
        "4",
        json!({"data": {
        "accounts": [acct(5)], "total": 5, "next": next(6)}}),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/accounts"))
        .and(query_param("index", "6"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let pages = collect(client(&server).accounts(2)).await;
    let got: Vec<String> = pages
        .iter()
        .flat_map(|p| p.as_ref().unwrap().items.iter())
        .map(|a| a.account_id.clone().unwrap())
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got[4], "5_example.com");
    assert_eq!(pages.len(), 3);
    server.verify().await;
}

#[tokio::test]
async fn accounts_end_when_next_disappears() {
    let server = MockServer::start().await;
    get_with_query(
        &server,
        "/accounts",
        "index",
        "0",
        json!({"data": {
        "accounts": [{"accountId": "1_a.com"}], "total": 1}}),
    )
    .await;
    let pages = collect(client(&server).accounts(10)).await;
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].as_ref().unwrap().items.len(), 1);
}

#[tokio::test]
async fn into_records_flattens_pages_and_keeps_errors_in_place() {
    let server = MockServer::start().await;
    get_with_query(
        &server,
        "/conversations/list",
        "next",
        "",
        json!({
        "data": [conv(1), conv(2)], "pagination": {"more": true, "next": "A"}}),
    )
    .await;
    get_with_query(
        &server,
        "/conversations/list",
        "next",
        "A",
        json!({
        "data": [conv(3)], "pagination": {"more": true}}),
    )
    .await;
    let params = ListConversations {
        legacy: true,
        ..Default::default()
    };
    let records: Vec<_> = drift_client::into_records(client(&server).conversations(params))
        .collect()
        .await;
    assert_eq!(records.len(), 4);
    let ids: Vec<i64> = records
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert!(matches!(records[3], Err(Error::Pagination { page: 2, .. })));
}

#[tokio::test]
async fn a_forged_cursor_cannot_send_the_token_to_another_host() {
    let server = MockServer::start().await;
    let c = client(&server);
    for forged in ["///evil.example/conversations/list", "///127.0.0.2:1/x"] {
        let params = ListConversations {
            start: Some(PageCursor(forged.into())),
            ..Default::default()
        };
        let pages = collect(c.conversations(params)).await;
        assert_eq!(pages.len(), 1, "{forged}");
        match &pages[0] {
            Err(Error::Invalid { field: Some(f), .. }) if f == "cursor" => {}
            other => panic!("{forged}: expected a refused cursor, got {other:?}"),
        }
    }
    assert_eq!(c.metrics().requests, 0);
}

#[tokio::test]
async fn a_raw_page_token_cursor_resumes_too() {
    let server = MockServer::start().await;
    get_with_query(
        &server,
        "/conversations/list",
        "page_token",
        "/slashy+token",
        json!({
        "data": [conv(9)], "links": {}}),
    )
    .await;
    let params = ListConversations {
        start: Some(PageCursor("page_token:/slashy+token".into())),
        ..Default::default()
    };
    let pages = collect(client(&server).conversations(params)).await;
    assert_eq!(ids(&pages), vec![9]);
}

#[tokio::test]
async fn out_of_range_page_sizes_are_refused_before_any_request() {
    let server = MockServer::start().await;
    let c = client(&server);
    for (limit, legacy) in [(0, false), (101, false), (51, true)] {
        let params = ListConversations {
            limit: Some(limit),
            legacy,
            ..Default::default()
        };
        let pages = collect(c.conversations(params)).await;
        assert_eq!(pages.len(), 1);
        assert!(
            matches!(&pages[0], Err(Error::Invalid { field: Some(f), .. }) if f == "limit"),
            "{limit}: {:?}",
            pages[0]
        );
    }
    let pages = collect(c.accounts(0)).await;
    assert!(matches!(&pages[0], Err(Error::Invalid { field: Some(f), .. }) if f == "page_size"));
    assert_eq!(c.metrics().requests, 0);
}
