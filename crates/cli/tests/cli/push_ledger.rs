//! CLI tests: `push` of accounts, timeline events and conversations: what the push ledger
//! and the lookups keep from being sent twice.

use crate::util::{outcomes, Cli, Sandbox};
use serde_json::json;

#[test]
fn accounts_upsert_by_domain_and_timeline_events_are_not_sent_twice() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let accounts = cli.write(
        "accounts.jsonl",
        "{\"domain\":\"acme.example\",\"name\":\"Acme\",\"ownerId\":1}\n\
         {\"domain\":\"orphan.example\",\"name\":\"No Owner\"}\n",
    );
    let run = cli.push("accounts", &accounts, "a1.csv", &[]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    let r = cli.results("a1.csv");
    assert_eq!(outcomes(&r), vec![(1, "created"), (2, "rejected")]);
    assert!(r[&2].2.contains("ownerId"), "{}", r[&2].2);
    let renamed = cli.write(
        "accounts2.jsonl",
        "{\"domain\":\"www.ACME.example\",\"name\":\"Acme Corp\"}\n",
    );
    let run = cli.push("accounts", &renamed, "a2.csv", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r2 = cli.results("a2.csv");
    assert_eq!(outcomes(&r2), vec![(1, "updated")]);
    assert_eq!(r2[&1].1, r[&1].1, "the same account");
    let acct = sandbox
        .runtime
        .block_on(sandbox.observer().account(&r[&1].1))
        .unwrap();
    assert_eq!(acct.name.as_deref(), Some("Acme Corp"));
    assert_eq!(
        acct.domain.as_deref(),
        Some("acme.example"),
        "the key is not rewritten"
    );

    let contact = sandbox.create(json!({"email": "tl@example.com"}));
    let events = cli.write(
        "events.csv",
        &format!("contactId,event,at\n{contact},Signed up,2024-05-01T12:00:00Z\n"),
    );
    let first = cli.push("timeline", &events, "t1.csv", &["--map", "at=createdAt"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(outcomes(&cli.results("t1.csv")), vec![(1, "created")]);
    let posted = sandbox.route_count("contacts.timeline");
    let second = cli.push("timeline", &events, "t2.csv", &["--map", "at=createdAt"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(outcomes(&cli.results("t2.csv")), vec![(1, "unchanged")]);
    assert_eq!(sandbox.route_count("contacts.timeline"), posted);
}

impl Sandbox {
    /// Conversations per contact email (every conversation in the sandbox).
    fn conversations_of(&self, email: &str) -> usize {
        use futures::StreamExt;
        let ids: Vec<i64> = self.by_email(email).iter().map(|c| c.id).collect();
        self.runtime.block_on(async {
            let mut pages = Box::pin(
                self.observer()
                    .conversations(drift_client::ListConversations::default()),
            );
            let mut n = 0;
            while let Some(page) = pages.next().await {
                n += page
                    .unwrap()
                    .items
                    .iter()
                    .filter(|c| c.contact_id.is_some_and(|id| ids.contains(&id)))
                    .count();
            }
            n
        })
    }
}

#[test]
fn a_conversation_whose_connection_dropped_is_not_sent_again_by_a_re_run() {
    let sandbox = Sandbox::start();
    sandbox.set_faults(json!([
        {"route": "conversations.create", "kind": "reset", "after_requests": 2, "count": 1},
        {"route": "conversations.create", "kind": "status", "status": 403,
         "after_requests": 6, "count": 1}
    ]));
    let cli = Cli::with_sb(&sandbox);
    let mut csv = String::from("email,body\n");
    for i in 1..=30 {
        csv.push_str(&format!("conv{i}@example.com,Hello {i}\n"));
    }
    let from = cli.write("cs.csv", &csv);
    let first = cli.push("conversations", &from, "r1.csv", &["--concurrency", "1"]);
    assert_eq!(first.code, 3, "{}", first.stderr);
    let r1 = cli.results("r1.csv");
    assert_eq!(r1[&3].0, "rejected");
    assert!(r1[&3].2.contains("may or may not"), "{}", r1[&3].2);
    assert!(
        first
            .stderr
            .contains("the 1 rows whose write may or may not have landed are not sent again"),
        "the stop message does not promise what a re-run cannot keep: {}",
        first.stderr
    );
    assert!(
        !first.stderr.contains("nothing is written twice"),
        "{}",
        first.stderr
    );

    sandbox.set_faults(json!([]));
    let again = cli.push("conversations", &from, "r2.csv", &["--concurrency", "1"]);
    assert_eq!(again.code, 5, "{}", again.stderr);
    let r2 = cli.results("r2.csv");
    assert_eq!(r2.len(), 30);
    let (outcome, _, reason) = &r2[&3];
    assert_eq!(outcome, "rejected", "{reason}");
    assert!(
        reason.contains("may have created") && reason.contains("--resend-uncertain"),
        "{reason}"
    );
    for i in [1, 2, 4, 5, 6] {
        assert_eq!(r2[&i].0, "unchanged", "row {i}");
    }
    for i in 7..=30 {
        assert_eq!(r2[&i].0, "created", "row {i}");
    }
    for i in 1..=30 {
        let n = sandbox.conversations_of(&format!("conv{i}@example.com"));
        if i == 3 {
            assert!(n <= 1, "the uncertain row: {n} conversations");
        } else {
            assert_eq!(n, 1, "row {i}");
        }
    }

    // Re-feeding the rejected rows does not send it either; --resend-uncertain does.
    let refeed = cli.push(
        "conversations",
        &cli.path("r2.csv").display().to_string(),
        "r3.csv",
        &["--only", "rejected"],
    );
    assert_eq!(refeed.code, 5, "{}", refeed.stderr);
    assert_eq!(outcomes(&cli.results("r3.csv")), vec![(3, "rejected")]);
    let forced = cli.push("conversations", &from, "r4.csv", &["--resend-uncertain"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(cli.results("r4.csv")[&3].0, "created");
}
