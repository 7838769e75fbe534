//! Fault matrix: each sandbox fault (DESIGN.md §7) against `sync` and `push`, with the
//! expected outcome written down in [`CASES`] and checked: completed (with the retries or
//! 429s counted), failed with the right exit code and message, or stream unavailable; and
//! in every case the data committed before the fault is kept (sync: a re-run without the
//! fault completes with every record exactly once; push: each row the failed run finished
//! has its outcome in the results file and its contact in Drift).

use crate::common::{small, Env, Out, CRED};
use crate::crash_matrix::{assert_exactly_once, Sink};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What a run under a fault must do.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exit 0, every record; the summary counter (`totals.<name>` for sync, `<name>` in
    /// push's JSON) is at least the number.
    Completed(&'static str, u64),
    /// Exit 0; the stream is `unavailable` (sync) naming the reason.
    Unavailable(&'static str, &'static str),
    /// Exit code and a word of the message on stderr.
    Failed(i32, &'static str),
    /// The fault cannot reach this command; why.
    NotApplicable(&'static str),
}

use Expect::*;

struct Case {
    name: &'static str,
    /// Fault plan for sync (`POST /__sandbox/faults`).
    sync_faults: &'static str,
    sync: Expect,
    /// Fault plan for push (contacts, unless the case says accounts).
    push_faults: &'static str,
    push: Expect,
}

/// The expected outcome of each fault, for sync and push.
const CASES: &[Case] = &[
    Case {
        name: "429 burst",
        sync_faults: r#"[{"route": "conversations.messages", "kind": "status", "status": 429, "count": 3}]"#,
        sync: Completed("rate_limited", 3),
        push_faults: r#"[{"route": "contacts.find", "kind": "status", "status": 429, "count": 3}]"#,
        push: Completed("rate_limited", 3),
    },
    Case {
        name: "5xx burst",
        sync_faults: r#"[{"route": "*", "kind": "status", "status": 503, "after_requests": 2, "count": 4}]"#,
        sync: Completed("retries", 4),
        push_faults: r#"[{"route": "contacts.find", "kind": "status", "status": 502, "count": 4}]"#,
        push: Completed("requests", 4),
    },
    Case {
        name: "connection reset",
        sync_faults: r#"[{"route": "conversations.messages", "kind": "reset", "count": 3}]"#,
        sync: Completed("retries", 3),
        push_faults: r#"[{"route": "contacts.find", "kind": "reset", "count": 3}]"#,
        push: Completed("requests", 3),
    },
    Case {
        name: "slow body",
        sync_faults: r#"[{"route": "conversations.list", "kind": "slow_body", "delay_ms": 400, "count": 2}]"#,
        sync: Completed("requests", 1),
        push_faults: r#"[{"route": "contacts.find", "kind": "slow_body", "delay_ms": 400, "count": 2}]"#,
        push: Completed("requests", 1),
    },
    Case {
        name: "truncated JSON",
        sync_faults: r#"[{"route": "conversations.messages", "kind": "truncate", "count": 3}]"#,
        sync: Completed("retries", 3),
        push_faults: r#"[{"route": "contacts.find", "kind": "truncate", "count": 3}]"#,
        push: Completed("requests", 3),
    },
    Case {
        name: "repeated cursor",
        sync_faults: r#"[{"route": "conversations.list", "kind": "repeat_cursor", "after_requests": 1, "count": 1}]"#,
        sync: Failed(1, "repeated cursor"),
        push_faults: "[]",
        push: NotApplicable("push reads no paginated list: lookups are one page"),
    },
    Case {
        name: "cursor cycle",
        sync_faults: r#"[{"route": "conversations.list", "kind": "cursor_cycle", "after_requests": 1, "count": 1}]"#,
        sync: Failed(1, "cursor cycle"),
        push_faults: "[]",
        push: NotApplicable("push reads no paginated list: lookups are one page"),
    },
    Case {
        name: "token revoked",
        sync_faults: r#"[{"route": "contacts.get", "kind": "revoke_token", "after_requests": 10}]"#,
        sync: Failed(3, "marked failed"),
        push_faults: r#"[{"route": "contacts.find", "kind": "revoke_token", "after_requests": 5}]"#,
        push: Failed(3, "401"),
    },
    Case {
        name: "403 on accounts",
        sync_faults: r#"[{"route": "accounts.list", "kind": "status", "status": 403}]"#,
        sync: Unavailable("accounts", "account_read"),
        push_faults: r#"[{"route": "accounts.list", "kind": "status", "status": 403}, {"route": "accounts.get", "kind": "status", "status": 403}, {"route": "accounts.create", "kind": "status", "status": 403}, {"route": "accounts.update", "kind": "status", "status": 403}]"#,
        push: Failed(3, "403"),
    },
];

fn stream<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["streams"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["stream"] == name))
        .unwrap_or_else(|| panic!("no stream {name} in {summary}"))
}

async fn check_sync(case: &Case) {
    let env = Env::start(small(150)).await;
    let counts = env.counts().await;
    let sink = Sink::Sqlite(env.path("out.db"));
    let faults: Value = serde_json::from_str(case.sync_faults).unwrap();
    env.faults(faults).await;
    let out = env.sync(&sink.spec(), &[]).await;
    let what = format!("sync under {}", case.name);
    let summary = out.json();
    match case.sync {
        Completed(counter, at_least) => {
            out.expect(0, &what);
            let n = summary["totals"][counter].as_u64().unwrap();
            assert!(
                n >= at_least,
                "{what}: totals.{counter} = {n}, expected >= {at_least}"
            );
            assert_exactly_once(&sink, &counts, &what).await;
        }
        Unavailable(name, word) => {
            out.expect(0, &what);
            let s = stream(&summary, name);
            assert_eq!(s["state"], "unavailable", "{what}: {s}");
            assert!(s["reason"].as_str().unwrap().contains(word), "{what}: {s}");
            assert_eq!(stream(&summary, "conversations")["state"], "succeeded");
        }
        Failed(code, word) => {
            out.expect(code, &what);
            assert!(
                out.stderr.contains(word),
                "{what}: stderr names {word:?}: {}",
                out.stderr
            );
            let kept = crate::common::sql_count(
                env.path("out.db").as_path(),
                "SELECT count(*) FROM conversations",
            );
            assert!(
                kept > 0,
                "{what}: the pages committed before the fault are kept"
            );
        }
        NotApplicable(_) => unreachable!("every fault applies to sync"),
    }
    // Committed data is kept and completed by a run without the fault.
    env.faults(json!([])).await;
    if case.name == "token revoked" {
        env.admin("reset", Some(json!({}))).await;
    }
    let again = env.sync(&sink.spec(), &[]).await;
    again.expect(0, &format!("{what}: re-run without the fault"));
    if matches!(case.sync, Unavailable(..)) {
        return;
    }
    assert_exactly_once(&sink, &counts, &format!("{what}: after the re-run")).await;
}

/// (row -> outcome) of a results file; empty when the run stopped before its first row
/// (a setup error such as a refused scope check writes no results file).
fn outcomes(path: &std::path::Path) -> BTreeMap<u64, String> {
    if !path.exists() {
        return BTreeMap::new();
    }
    let mut r = csv::Reader::from_path(path).unwrap();
    let mut out = BTreeMap::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        let row: u64 = rec[0].parse().unwrap();
        assert!(
            out.insert(row, rec[2].to_string()).is_none(),
            "row {row} twice"
        );
    }
    out
}

async fn check_push(case: &Case) {
    let what = format!("push under {}", case.name);
    if let NotApplicable(why) = case.push {
        assert_eq!(case.push_faults, "[]", "{what}: {why}");
        return;
    }
    let env = Env::start(small(3)).await;
    let accounts = case.name == "403 on accounts";
    let (object, input) = if accounts {
        (
            "accounts",
            "domain,name\nfault1.example.com,F1\nfault2.example.com,F2\n".to_string(),
        )
    } else {
        let rows: Vec<String> = (0..12)
            .map(|i| format!("fault{i}@example.com,F{i}"))
            .collect();
        ("contacts", format!("email,name\n{}\n", rows.join("\n")))
    };
    let input = env.write("in.csv", input);
    let results = env.path("results.csv");
    let res = results.display().to_string();
    let before = env.counts().await["contacts"].as_u64().unwrap();
    env.faults(serde_json::from_str(case.push_faults).unwrap())
        .await;
    let out: Out = env
        .run(&[
            "--json",
            "push",
            object,
            "--credential",
            CRED,
            "--from",
            &input,
            "--results",
            &res,
            "--concurrency",
            "2",
        ])
        .await;
    let got = outcomes(&results);
    match case.push {
        Completed(counter, at_least) => {
            out.expect(0, &what);
            let n = out.json()[counter].as_u64().unwrap();
            assert!(
                n >= at_least,
                "{what}: {counter} = {n}, expected >= {at_least}"
            );
            assert_eq!(got.len(), 12, "{what}: one outcome per row");
            assert!(got.values().all(|o| o == "created"), "{what}: {got:?}");
        }
        Failed(code, word) => {
            out.expect(code, &what);
            assert!(
                out.stderr.contains(word),
                "{what}: stderr names {word:?}: {}",
                out.stderr
            );
            // Rows finished before the fault are recorded once each, and their contacts
            // exist in Drift once each (the revoked token cannot look them up; counts can).
            if !accounts {
                let created = got.values().filter(|o| *o == "created").count() as u64;
                let after = env.counts().await["contacts"].as_u64().unwrap();
                assert_eq!(after, before + created, "{what}: {got:?}");
            }
        }
        Unavailable(..) | NotApplicable(_) => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_against_sync_has_its_expected_outcome() {
    for case in CASES {
        check_sync(case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_against_push_has_its_expected_outcome() {
    for case in CASES {
        check_push(case).await;
    }
}
