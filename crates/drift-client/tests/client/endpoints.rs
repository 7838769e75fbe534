//! Read endpoints of REFERENCE §7: request shape and decoding.

use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer};

use crate::common::{client, json, TOKEN};

async fn mount_get(server: &MockServer, p: &str, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(p))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(json(body))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn token_info_parses_org_scopes_and_expiry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/app/token_info"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(json!({"access_token": TOKEN})))
        .respond_with(json(json!({
            "access_token": TOKEN, "authenticated_userid": "orgId:104455",
            "credential_id": "app-0000demo", "token_type": "bearer", "expires_in": 0,
            "created_at": 1695800000000i64, "scope": "contact_read conversation_read user_read",
            "id": "2f9e"})))
        .expect(1)
        .mount(&server)
        .await;
    let info = client(&server).token_info().await.unwrap();
    assert_eq!(info.org_id, Some(104455));
    assert_eq!(
        info.scopes,
        vec!["contact_read", "conversation_read", "user_read"]
    );
    assert!(info.never_expires());
    assert_eq!(info.expires_at(), None);
    assert_eq!(info.created_at, Some(1695800000000));
    assert!(info.has_scopes(&["contact_read", "user_read"]));
    assert!(!info.has_scopes(&["account_read"]));
    // The inspected token is not kept anywhere in the record.
    assert!(!format!("{info:?}").contains(TOKEN));
    assert!(!serde_json::to_string(&info).unwrap().contains(TOKEN));
    server.verify().await;
}

#[tokio::test]
async fn contacts_by_email_returns_every_match() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .and(query_param("email", "casey@example.com"))
        .respond_with(json(json!({"data": [
            {"id": 15900231774i64, "createdAt": 1, "attributes": {"email": "casey@example.com", "externalId": "a"}},
            {"id": 15900987310i64, "createdAt": 2, "attributes": {"email": "casey@example.com", "externalId": "b"}}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let found = client(&server)
        .contacts_by_email("casey@example.com")
        .await
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].id, 15900231774);
    assert_eq!(found[1].external_id(), Some("b"));
    assert_eq!(found[1].email(), Some("casey@example.com"));
    server.verify().await;
}

#[tokio::test]
async fn contacts_lookup_follows_link_rel_next() {
    let server = MockServer::start().await;
    let next = format!(
        "<{}/contacts?email=x%40example.com&page=2>; rel='next'",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .and(query_param("page", "2"))
        .respond_with(json(json!({"data": [{"id": 2, "attributes": {}}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .and(query_param("email", "x@example.com"))
        .respond_with(
            json(json!({"data": [{"id": 1, "attributes": {}}]}))
                .insert_header("link", next.as_str()),
        )
        .mount(&server)
        .await;
    let found = client(&server)
        .contacts_by_email("x@example.com")
        .await
        .unwrap();
    let ids: Vec<i64> = found.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![1, 2]);
}

#[tokio::test]
async fn contact_by_id_and_external_id() {
    let server = MockServer::start().await;
    mount_get(
        &server,
        "/contacts/42",
        json!({"data": {"id": 42, "createdAt": 5, "attributes": {"email": "a@example.com"}}}),
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .and(query_param("idType", "external"))
        .and(query_param("id", "cust-1"))
        .respond_with(json(
            json!({"data": [{"id": 43, "attributes": {"externalId": "cust-1"}}]}),
        ))
        .mount(&server)
        .await;
    let c = client(&server);
    assert_eq!(c.contact(42).await.unwrap().email(), Some("a@example.com"));
    let by_ext = c.contacts_by_external_id("cust-1").await.unwrap();
    assert_eq!(by_ext[0].id, 43);
    server.verify().await;
}

#[tokio::test]
async fn lists_without_pagination() {
    let server = MockServer::start().await;
    mount_get(
        &server,
        "/users/list",
        json!({"data": [{"id": 1, "name": "Avery", "availability": "SOMETHING_NEW"}]}),
    )
    .await;
    mount_get(
        &server,
        "/teams/org",
        json!({"data": [{"id": 31001, "members": [1, 2], "workspaceId": "0f4d"}]}),
    )
    .await;
    mount_get(
        &server,
        "/playbooks/list",
        json!([{"id": 1188204, "name": "Greeter", "goals": [{"id": "g", "message": "m"}]}]),
    )
    .await;
    mount_get(
        &server,
        "/contacts/attributes",
        json!({"data": {"properties": [
        {"type": "STRING", "displayName": "Plan Tier", "name": "plan_tier"}]}}),
    )
    .await;
    mount_get(
        &server,
        "/conversations/stats",
        json!({"conversationCount": {"OPEN": 37, "CLOSED": 912, "PENDING": 5}}),
    )
    .await;
    mount_get(
        &server,
        "/conversations/3790012245",
        json!({"data": {"id": 3790012245i64, "status": "closed",
        "participants": [1], "conversationTags": [{"color": "0960C5", "name": "pricing"}]}}),
    )
    .await;
    let c = client(&server);
    let users = c.users().await.unwrap();
    assert_eq!(users[0].availability.as_deref(), Some("SOMETHING_NEW"));
    assert_eq!(c.teams().await.unwrap()[0].members, Some(vec![1, 2]));
    assert_eq!(c.playbooks().await.unwrap()[0].id, 1188204);
    let attrs = c.contact_attributes().await.unwrap();
    assert_eq!(attrs[0].name, "plan_tier");
    assert_eq!(attrs[0].attribute_type.as_deref(), Some("STRING"));
    let stats = c.conversation_stats().await.unwrap();
    assert_eq!(stats.count("CLOSED"), Some(912));
    let conv = c.conversation(3790012245).await.unwrap();
    assert_eq!(
        conv.conversation_tags.unwrap()[0].name.as_deref(),
        Some("pricing")
    );
    server.verify().await;
}

#[tokio::test]
async fn meetings_send_both_bounds_in_ms() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/meetings/org"))
        .and(query_param("min_start_time", "1700000000000"))
        .and(query_param("max_start_time", "1702000000000"))
        .respond_with(json(
            json!({"data": [{"slug": "mtg-1", "slotStart": 1702051200000i64}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let m = c
        .meetings(1_700_000_000_000, 1_702_000_000_000)
        .await
        .unwrap();
    assert_eq!(m[0].slug.as_deref(), Some("mtg-1"));
    let reversed = c.meetings(2, 1).await.unwrap_err();
    assert!(
        matches!(reversed, drift_client::Error::Invalid { field: Some(f), .. } if f == "max_start_ms")
    );
    server.verify().await;
}

#[tokio::test]
async fn users_by_ids_reads_the_keyed_map() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users"))
        .and(query_param("userId", "2400001"))
        .respond_with(json(json!({"data": {
            "2411803": {"id": 2411803, "name": "Avery"},
            "2400001": {"id": 2400001, "name": "Bot", "bot": true}}})))
        .mount(&server)
        .await;
    let users = client(&server)
        .users_by_ids(&[2411803, 2400001])
        .await
        .unwrap();
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    assert_eq!(ids, vec![2400001, 2411803]);
}

#[tokio::test]
async fn account_get_encodes_the_string_id() {
    let server = MockServer::start().await;
    mount_get(
        &server,
        "/accounts/5120044_example.com",
        json!({"data": {"accountId": "5120044_example.com", "deleted": true}}),
    )
    .await;
    let a = client(&server)
        .account("5120044_example.com")
        .await
        .unwrap();
    assert_eq!(a.deleted, Some(true));
    server.verify().await;
}

#[tokio::test]
async fn reports_use_their_own_lane() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/reports/conversations"))
        .respond_with(json(
            json!({"count": 1, "data": [{"conversationId": 1, "metrics": [3, "NaN"]}]}),
        ))
        .mount(&server)
        .await;
    let r = client(&server)
        .reports_conversations(&json!({"filters": [], "metrics": ["timeToCloseMillis", "x"]}))
        .await
        .unwrap();
    assert_eq!(r.count, Some(1));
    assert_eq!(
        r.data.unwrap()[0].metrics.as_ref().unwrap()[1],
        json!("NaN")
    );
}

#[tokio::test]
async fn quirk_version_keys_and_single_object_lookup() {
    // Quirk 1: both version spellings are kept as sent. Quirk 3: a lookup answering a
    // single object (as one doc example shows) still gives a list.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .and(query_param("email", "one@example.com"))
        .respond_with(json(
            json!({"data": {"id": 5, "createdAt": 1, "attributes": {
            "_END_USER_VERSION": 12, "_end_user_version": 12, "_calculated_version": 12,
            "email": "one@example.com"}}}),
        ))
        .mount(&server)
        .await;
    let found = client(&server)
        .contacts_by_email("one@example.com")
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let attrs = found[0].attributes.as_ref().unwrap();
    assert_eq!(attrs["_END_USER_VERSION"], json!(12));
    assert_eq!(attrs["_end_user_version"], json!(12));
    assert_eq!(attrs["_calculated_version"], json!(12));
}

#[tokio::test]
async fn quirk_conversation_create_accepts_a_data_wrapper_too() {
    // Quirk 8: documented bare; one third-party client assumes `data`. Both decode.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/conversations/new"))
        .respond_with(json(
            json!({"data": {"id": 77, "status": "open", "contactId": 9}}),
        ))
        .mount(&server)
        .await;
    let conv = client(&server)
        .create_conversation("a@example.com", "hi", serde_json::Map::new())
        .await
        .unwrap();
    assert_eq!(conv.id, 77);
    assert_eq!(conv.contact_id, Some(9));
}

#[tokio::test]
async fn empty_lookup_results() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/contacts"))
        .respond_with(json(json!({"data": []})))
        .mount(&server)
        .await;
    assert!(client(&server)
        .contacts_by_email("none@example.com")
        .await
        .unwrap()
        .is_empty());
}
