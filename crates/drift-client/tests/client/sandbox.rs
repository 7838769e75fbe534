//! The client against the in-process Drift sandbox (a second, independent implementation
//! of REFERENCE §7; it shares no model types with the client).

use std::collections::HashSet;

use drift_client::{Client, Error, ListConversations, SecretString};
use drift_sandbox::{FaultKind, FaultSpec, SandboxConfig, SandboxHandle};
use futures::{StreamExt, TryStreamExt};

async fn sandbox(faults: Vec<FaultSpec>) -> (SandboxHandle, Client) {
    let config = SandboxConfig {
        conversations: 120,
        accounts: 23,
        rate_limit_per_min: 0,
        faults,
        ..SandboxConfig::default()
    };
    let handle = drift_sandbox::start(config).await.unwrap();
    let client = Client::builder(&handle.base_url(), SecretString::from(handle.token()))
        .rate_limit_per_min(60_000)
        .clock(drift_client::clock::ManualClock::new())
        .build()
        .unwrap();
    (handle, client)
}

fn count(handle: &SandboxHandle, key: &str) -> usize {
    handle.counts()[key].as_u64().unwrap() as usize
}

async fn conversation_ids(c: &Client, params: ListConversations) -> Vec<i64> {
    let pages: Vec<_> = c.conversations(params).try_collect().await.unwrap();
    pages
        .into_iter()
        .flat_map(|p| p.items)
        .map(|c| c.id)
        .collect()
}

#[tokio::test]
async fn full_passes_of_both_generations_match_the_counts() {
    let (handle, c) = sandbox(Vec::new()).await;
    let current = conversation_ids(
        &c,
        ListConversations {
            limit: Some(50),
            ..Default::default()
        },
    )
    .await;
    let legacy = conversation_ids(
        &c,
        ListConversations {
            limit: Some(50),
            legacy: true,
            ..Default::default()
        },
    )
    .await;
    let expected = count(&handle, "conversations");
    assert_eq!(current.len(), expected);
    assert_eq!(
        current.iter().collect::<HashSet<_>>().len(),
        expected,
        "no duplicates"
    );
    assert_eq!(
        legacy.iter().collect::<HashSet<_>>(),
        current.iter().collect::<HashSet<_>>()
    );

    let accounts: Vec<_> = c.accounts(10).try_collect().await.unwrap();
    let n: usize = accounts.iter().map(|p| p.items.len()).sum();
    assert_eq!(n, count(&handle, "accounts"));

    let info = c.token_info().await.unwrap();
    assert!(info.org_id.is_some());
    assert!(info.has_scopes(&["conversation_read", "contact_read"]));
    assert_eq!(c.users().await.unwrap().len(), count(&handle, "users"));

    let first = current[0];
    let messages = c.conversation_messages(first).await.unwrap();
    assert!(!messages.is_empty());
    assert!(messages.iter().all(|m| m.conversation_id == Some(first)));
    let conv = c.conversation(first).await.unwrap();
    if let Some(contact_id) = conv.contact_id {
        assert_eq!(c.contact(contact_id).await.unwrap().id, contact_id);
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn sandbox_cursor_faults_are_pagination_errors() {
    for kind in [FaultKind::RepeatCursor, FaultKind::CursorCycle] {
        let fault = FaultSpec {
            route: "conversations.list".into(),
            kind,
            status: None,
            after_requests: 1,
            count: None,
            probability: None,
            delay_ms: None,
        };
        let (handle, c) = sandbox(vec![fault]).await;
        let items: Vec<_> = c
            .conversations(ListConversations {
                limit: Some(20),
                ..Default::default()
            })
            .collect()
            .await;
        let last = items.last().unwrap();
        assert!(
            matches!(last, Err(Error::Pagination { .. })),
            "{kind:?}: {last:?}"
        );
        assert!(items[..items.len() - 1].iter().all(|p| p.is_ok()));
        handle.shutdown().await;
    }
}

fn fault(kind: FaultKind, status: Option<u16>, count: Option<u64>) -> FaultSpec {
    FaultSpec {
        route: "conversations.list".into(),
        kind,
        status,
        after_requests: 1,
        count,
        probability: None,
        delay_ms: None,
    }
}

#[tokio::test]
async fn transient_sandbox_faults_are_retried_to_a_complete_pass() {
    for f in [
        fault(FaultKind::Status, Some(503), Some(2)),
        fault(FaultKind::Status, Some(429), Some(1)),
        fault(FaultKind::Reset, None, Some(1)),
        fault(FaultKind::Truncate, None, Some(1)),
    ] {
        let label = format!("{:?} {:?}", f.kind, f.status);
        let (handle, c) = sandbox(vec![f]).await;
        let ids = conversation_ids(
            &c,
            ListConversations {
                limit: Some(50),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(ids.len(), count(&handle, "conversations"), "{label}");
        assert!(c.metrics().retries >= 1, "{label}");
        handle.shutdown().await;
    }
}

#[tokio::test]
async fn a_revoked_token_stops_the_pass_with_unauthorized() {
    let (handle, c) = sandbox(vec![fault(FaultKind::RevokeToken, None, None)]).await;
    let items: Vec<_> = c
        .conversations(ListConversations {
            limit: Some(50),
            ..Default::default()
        })
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap().items.len(), 50);
    assert!(
        matches!(&items[1], Err(Error::Unauthorized { .. })),
        "{:?}",
        items[1]
    );
    assert_eq!(c.metrics().retries, 0);
    handle.shutdown().await;
}
