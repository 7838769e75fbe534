//! The push engine against an in-process sandbox: upserts, duplicate policies, ambiguous
//! failures, the ledger, and setup errors.

use drift_client::{Client, Contact, SecretString};
use drift_sandbox::{FaultKind, FaultSpec, SandboxConfig, SandboxHandle};
use drift_writer::Object;
use drift_writer::{
    push, push_until, InputSpec, Key, Ledger, OnDuplicate, Outcome, OutcomeKind, PushError,
    PushOptions, StopKind, Summary,
};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use sync_core::Cancel;

struct Org {
    sandbox: SandboxHandle,
    client: Client,
    dir: tempfile::TempDir,
}

async fn org(faults: Vec<FaultSpec>) -> Org {
    let sandbox = drift_sandbox::start(SandboxConfig {
        conversations: 3,
        accounts: 2,
        rate_limit_per_min: 0,
        faults,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = Client::builder(&sandbox.base_url(), SecretString::from(sandbox.token()))
        .rate_limit_per_min(60_000)
        .build()
        .unwrap();
    Org {
        sandbox,
        client,
        dir: tempfile::tempdir().unwrap(),
    }
}

fn fault(route: &str, kind: FaultKind, status: Option<u16>) -> FaultSpec {
    FaultSpec {
        route: route.into(),
        kind,
        status,
        after_requests: 0,
        count: Some(1),
        probability: None,
        delay_ms: None,
    }
}

#[derive(Default)]
struct MemoryLedger(Mutex<HashMap<String, String>>);

impl Ledger for MemoryLedger {
    fn get(&self, fp: &str) -> Result<Option<String>, String> {
        Ok(self.0.lock().unwrap().get(fp).cloned())
    }
    fn put(&self, fp: &str, id: &str) -> Result<(), String> {
        self.0.lock().unwrap().insert(fp.into(), id.into());
        Ok(())
    }
}

impl Org {
    async fn run(
        &self,
        opts: PushOptions,
        csv: &str,
        ledger: Option<Arc<dyn Ledger>>,
    ) -> (Summary, Vec<Outcome>) {
        let path = self.dir.path().join(format!("in-{}.csv", rand_name()));
        std::fs::write(&path, csv).unwrap();
        let input = InputSpec::Csv(path).open().unwrap();
        let mut out = Vec::new();
        let summary = push(&self.client, opts, input, ledger, |o| {
            out.push(o.clone());
            Ok(())
        })
        .await
        .unwrap();
        out.sort_by_key(|o| o.row);
        (summary, out)
    }

    async fn by_email(&self, email: &str) -> Vec<Contact> {
        let found = self.client.contacts_by_email(email).await.unwrap();
        assert!(found.unfit.is_empty(), "{:?}", found.unfit);
        found.items
    }

    async fn create(&self, attrs: Value) -> i64 {
        let attrs: Map<String, Value> = serde_json::from_value(attrs).unwrap();
        self.client.create_contact(&attrs).await.unwrap().id
    }

    async fn route_count(&self, route: &str) -> u64 {
        let url = format!("{}/__sandbox/stats", self.sandbox.base_url());
        let stats: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        stats["by_route"][route].as_u64().unwrap_or(0)
    }
}

fn rand_name() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

fn kinds(out: &[Outcome]) -> Vec<(u64, OutcomeKind)> {
    out.iter().map(|o| (o.row, o.kind)).collect()
}

fn name_of(c: &Contact) -> Option<&Value> {
    c.attributes.as_ref().and_then(|a| a.get("name"))
}

#[tokio::test]
async fn rows_with_one_key_apply_in_input_order() {
    let org = org(vec![]).await;
    let csv = "email,name\nsame@example.com,A1\nsame@example.com,A2\nsame@example.com,A3\n";
    let (summary, out) = org.run(PushOptions::new(Object::Contacts), csv, None).await;
    use OutcomeKind::*;
    assert_eq!(kinds(&out), vec![(1, Created), (2, Updated), (3, Updated)]);
    let found = org.by_email("same@example.com").await;
    assert_eq!(found.len(), 1);
    assert_eq!(name_of(&found[0]), Some(&json!("A3")));
    assert_eq!(summary.count(Created), 1);
}

#[tokio::test]
async fn update_all_patches_every_contact_sharing_the_email() {
    let org = org(vec![]).await;
    let a = org
        .create(json!({"email": "two@example.com", "externalId": "x1"}))
        .await;
    let b = org
        .create(json!({"email": "two@example.com", "externalId": "x2"}))
        .await;
    let mut opts = PushOptions::new(Object::Contacts);
    opts.on_duplicate = OnDuplicate::UpdateAll;
    let (_, out) = org
        .run(opts, "email,name\ntwo@example.com,Both\n", None)
        .await;
    assert_eq!(out[0].kind, OutcomeKind::Updated);
    assert_eq!(
        out[0].drift_id.as_deref(),
        Some(format!("{a};{b}").as_str())
    );
    for c in org.by_email("two@example.com").await {
        assert_eq!(name_of(&c), Some(&json!("Both")));
    }
}

#[tokio::test]
async fn external_id_key_upserts_and_a_new_contact_without_email_is_rejected() {
    let org = org(vec![]).await;
    let mut opts = PushOptions::new(Object::Contacts);
    opts.key = Key::ExternalId;
    let csv = "externalId,email,name\ncrm-1,one@example.com,One\ncrm-2,,No Email\n";
    let (_, out) = org.run(opts.clone(), csv, None).await;
    assert_eq!(
        kinds(&out),
        vec![(1, OutcomeKind::Created), (2, OutcomeKind::Rejected)]
    );
    assert!(out[1].reason.as_deref().unwrap().contains("needs an email"));
    let (_, again) = org.run(opts, csv, None).await;
    assert_eq!(again[0].kind, OutcomeKind::Unchanged);
    assert_eq!(again[0].drift_id, out[0].drift_id);
}

#[tokio::test]
async fn a_conflict_with_no_match_is_rejected_and_the_create_is_not_repeated() {
    let org = org(vec![fault("contacts.create", FaultKind::Status, Some(409))]).await;
    let (_, out) = org
        .run(
            PushOptions::new(Object::Contacts),
            "email\nc@example.com\n",
            None,
        )
        .await;
    assert_eq!(out[0].kind, OutcomeKind::Rejected);
    assert!(
        out[0].reason.as_deref().unwrap().contains("duplicate"),
        "{:?}",
        out[0].reason
    );
    assert_eq!(org.route_count("contacts.create").await, 1);
    assert!(org.by_email("c@example.com").await.is_empty());
}

#[tokio::test]
async fn accounts_retry_a_503_create_only_after_the_list_shows_it_did_not_land() {
    let org = org(vec![fault("accounts.create", FaultKind::Status, Some(503))]).await;
    let before = org.sandbox.counts()["accounts"].as_u64().unwrap();
    let csv = "domain,name,ownerId\nnew.example,New,1\n";
    let (_, out) = org.run(PushOptions::new(Object::Accounts), csv, None).await;
    assert_eq!(out[0].kind, OutcomeKind::Created, "{:?}", out[0].reason);
    assert_eq!(
        org.sandbox.counts()["accounts"].as_u64().unwrap(),
        before + 1
    );
    assert_eq!(org.route_count("accounts.create").await, 2);

    let mut by_id = PushOptions::new(Object::Accounts);
    by_id.key = Key::AccountId;
    let (_, out) = org
        .run(by_id, "accountId,name\n999_nowhere.example,X\n", None)
        .await;
    assert_eq!(out[0].kind, OutcomeKind::Rejected);
    assert!(out[0].reason.as_deref().unwrap().contains("--key domain"));
}

#[tokio::test]
async fn a_dry_run_of_accounts_plans_a_repeated_domain_as_the_real_run_acts() {
    let org = org(vec![]).await;
    let before = org.sandbox.counts()["accounts"].as_u64().unwrap();
    let csv = "domain,name,ownerId\n\
               twice.example,Twice,1\n\
               other.example,Other,1\n\
               WWW.twice.example,Twice Again,1\n\
               twice.example,Twice Again,1\n";
    let mut dry = PushOptions::new(Object::Accounts);
    dry.dry_run = true;
    let (_, planned) = org.run(dry, csv, None).await;
    let (_, real) = org.run(PushOptions::new(Object::Accounts), csv, None).await;
    let expected = vec![
        (1, OutcomeKind::Created),
        (2, OutcomeKind::Created),
        (3, OutcomeKind::Updated),
        (4, OutcomeKind::Unchanged),
    ];
    assert_eq!(kinds(&planned), expected, "{planned:?}");
    assert_eq!(kinds(&real), expected, "{real:?}");
    let reason = planned[2].reason.as_deref().unwrap();
    assert!(
        reason.contains("would update the account row 1 creates") && reason.contains("Twice Again"),
        "{reason}"
    );
    assert!(!reason.contains("/accounts/create"), "{reason}");
    assert!(
        planned[3]
            .reason
            .as_deref()
            .unwrap()
            .contains("row 1 creates"),
        "{:?}",
        planned[3].reason
    );
    assert_eq!(
        real[2].drift_id, real[0].drift_id,
        "one account for rows 1, 3, 4"
    );
    assert_eq!(
        org.sandbox.counts()["accounts"].as_u64().unwrap(),
        before + 2
    );
}

#[tokio::test]
async fn an_ambiguous_timeline_failure_is_not_retried() {
    let org = org(vec![fault(
        "contacts.timeline",
        FaultKind::Status,
        Some(502),
    )])
    .await;
    let id = org.create(json!({"email": "t@example.com"})).await;
    let csv = format!("contactId,event\n{id},Visited pricing\n");
    let (_, out) = org
        .run(PushOptions::new(Object::Timeline), &csv, None)
        .await;
    assert_eq!(out[0].kind, OutcomeKind::Rejected);
    assert!(out[0].reason.as_deref().unwrap().contains("not retried"));
    assert_eq!(org.route_count("contacts.timeline").await, 1);
}

#[tokio::test]
async fn conversations_are_created_once_with_a_ledger() {
    let org = org(vec![]).await;
    let before = org.sandbox.counts()["conversations"].as_u64().unwrap();
    let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
    let csv = "email,body\nhi@example.com,<p>Hello from the CRM</p>\nhi@example.com,\n";
    let (_, out) = org
        .run(
            PushOptions::new(Object::Conversations),
            csv,
            Some(ledger.clone()),
        )
        .await;
    assert_eq!(
        kinds(&out),
        vec![(1, OutcomeKind::Created), (2, OutcomeKind::Rejected)]
    );
    assert!(out[1]
        .reason
        .as_deref()
        .unwrap()
        .contains("body is required"));
    let (_, again) = org
        .run(PushOptions::new(Object::Conversations), csv, Some(ledger))
        .await;
    assert_eq!(again[0].kind, OutcomeKind::Unchanged);
    assert_eq!(again[0].drift_id, out[0].drift_id);
    assert_eq!(
        org.sandbox.counts()["conversations"].as_u64().unwrap(),
        before + 1
    );
}

#[tokio::test]
async fn a_rejected_token_fails_before_the_first_row() {
    let org = org(vec![]).await;
    let client = Client::builder(&org.sandbox.base_url(), SecretString::from("tok-wrong"))
        .build()
        .unwrap();
    let path = org.dir.path().join("x.csv");
    std::fs::write(&path, "email\na@example.com\n").unwrap();
    let input = InputSpec::Csv(path).open().unwrap();
    let mut rows = 0;
    let err = push(
        &client,
        PushOptions::new(Object::Contacts),
        input,
        None,
        |_| {
            rows += 1;
            Ok(())
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, PushError::Drift(ref e) if e.status() == Some(401)),
        "{err}"
    );
    assert_eq!(rows, 0);
}

/// `n` rows of new contacts `PREFIX{i}@example.com`.
fn new_contacts(prefix: &str, n: u64) -> String {
    let mut csv = String::from("email,name\n");
    for i in 1..=n {
        csv.push_str(&format!("{prefix}{i}@example.com,N{i}\n"));
    }
    csv
}

/// Rows 1..=last each with one outcome; returns `last`.
fn contiguous(out: &[Outcome]) -> u64 {
    let rows: Vec<u64> = out.iter().map(|o| o.row).collect();
    let last = rows.last().copied().unwrap_or(0);
    assert_eq!(
        rows,
        (1..=last).collect::<Vec<_>>(),
        "one outcome per row read"
    );
    last
}

#[tokio::test]
async fn a_cancelled_push_gives_every_row_it_read_one_outcome_and_sends_no_more() {
    let org = org(vec![]).await;
    let path = org.dir.path().join("cancel.csv");
    std::fs::write(&path, new_contacts("cancel", 400)).unwrap();
    let input = InputSpec::Csv(path).open().unwrap();
    let cancel = Cancel::new();
    let mut out = Vec::new();
    let summary = push_until(
        &org.client,
        PushOptions::new(Object::Contacts),
        input,
        None,
        &cancel,
        |o| {
            cancel.cancel();
            out.push(o.clone());
            Ok(())
        },
    )
    .await
    .unwrap();
    out.sort_by_key(|o| o.row);
    assert_eq!(summary.stopped.as_ref().unwrap().kind, StopKind::Cancelled);
    let last = contiguous(&out);
    assert!(last < 400, "the run stopped taking rows: {last}");
    assert_eq!((summary.rows, summary.last_row), (out.len() as u64, last));
    let not_sent: Vec<&Outcome> = out
        .iter()
        .filter(|o| {
            o.reason
                .as_deref()
                .unwrap_or("")
                .starts_with("not sent: the run stopped")
        })
        .collect();
    assert_eq!(summary.not_sent, not_sent.len() as u64);
    assert!(not_sent.iter().all(|o| o.kind == OutcomeKind::Rejected));
    let created = out
        .iter()
        .filter(|o| o.kind == OutcomeKind::Created)
        .count();
    assert_eq!(created + not_sent.len(), out.len(), "{:?}", kinds(&out));
    assert_eq!(org.route_count("contacts.create").await, created as u64);
}

#[tokio::test]
async fn an_outcome_sink_that_fails_stops_the_run_and_still_returns_its_counts() {
    let org = org(vec![]).await;
    let path = org.dir.path().join("sink.csv");
    std::fs::write(&path, new_contacts("sink", 400)).unwrap();
    let input = InputSpec::Csv(path).open().unwrap();
    let summary = push(
        &org.client,
        PushOptions::new(Object::Contacts),
        input,
        None,
        |_| Err(std::io::Error::other("disk full")),
    )
    .await
    .unwrap();
    let stop = summary.stopped.as_ref().unwrap();
    assert_eq!(stop.kind, StopKind::Results);
    assert!(stop.message.contains("disk full"), "{}", stop.message);
    assert_eq!(summary.unsaved, summary.rows);
    let created = summary.count(OutcomeKind::Created);
    assert_eq!(org.route_count("contacts.create").await, created);
    assert!(created < 400, "the run stopped sending: {created}");
}
