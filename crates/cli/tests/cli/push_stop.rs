//! CLI tests: a `push` that stops (revoked token, Ctrl-C, SIGTERM, a slow budget) gives every
//! row read one outcome and sends nothing after it stopped.

use crate::util::{contacts_csv, Cli, Sandbox, OBSERVER};
use drift_sandbox::FaultSpec;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;

/// Asserts that the rows of a stopped run's results file are exactly rows 1..=last (every
/// row read has one outcome, rows are read in order) and that what landed in the sandbox
/// matches: a created row landed once, any other row and every row after `last` not at all.
/// Returns `last` and the number of rows rejected as not sent.
fn check_stopped_results(
    sandbox: &Sandbox,
    r: &BTreeMap<u64, (String, String, String)>,
    prefix: &str,
    total: u64,
) -> (u64, u64) {
    let last = *r.keys().last().expect("some rows have an outcome");
    assert_eq!(
        r.keys().copied().collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>(),
        "every row read has exactly one outcome"
    );
    assert!(last < total, "the run stopped before the end: {last}");
    let mut not_sent = 0;
    for i in 1..=total {
        let landed = sandbox.by_email(&format!("{prefix}{i}@example.com"));
        match r.get(&i) {
            Some((outcome, id, _)) if outcome == "created" => {
                assert_eq!(landed.len(), 1, "row {i}");
                assert_eq!(*id, landed[0].id.to_string());
            }
            Some((outcome, _, reason)) => {
                assert_eq!(outcome, "rejected", "row {i}");
                assert!(landed.is_empty(), "row {i}");
                if reason.starts_with("not sent: the run stopped") {
                    not_sent += 1;
                }
            }
            None => assert!(landed.is_empty(), "row {i} has no outcome but landed"),
        }
    }
    (last, not_sent)
}

/// Adds credential `observer` (the sandbox's second token) to `cli`'s data dir.
fn add_observer_credential(cli: &Cli, _sandbox: &Sandbox) {
    cli.add_credential_at("observer", OBSERVER, 60_000);
}

#[test]
fn a_revoked_token_stop_gives_every_read_row_one_outcome_and_re_feeding_finishes_the_rest() {
    let fault = FaultSpec {
        route: "contacts.create".into(),
        kind: drift_sandbox::FaultKind::RevokeToken,
        status: None,
        after_requests: 10,
        count: Some(1),
        probability: None,
        delay_ms: None,
    };
    let sandbox = Sandbox::small().faults(vec![fault]).start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("in.csv", &contacts_csv("stop", 100));
    let run = cli.push("contacts", &from, "r.csv", &["--json"]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let r = cli.results("r.csv");
    let (last, not_sent) = check_stopped_results(&sandbox, &r, "stop", 100);
    assert!(not_sent > 0, "queued rows are listed as not sent");
    let summary: Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(summary["rows"], json!(r.len()));
    assert_eq!(summary["not_sent"], json!(not_sent));
    assert!(
        run.stderr.contains(&format!(
            "{} rows have an outcome in {} ({not_sent} of them `rejected` as not sent); \
             rows after row {last} were not processed",
            r.len(),
            cli.path("r.csv").display()
        )),
        "{}",
        run.stderr
    );

    // Re-feed the rejected rows with a working credential: each is sent once.
    add_observer_credential(&cli, &sandbox);
    let refeed = cli.path("r.csv").display().to_string();
    let results2 = cli.path("r2.csv").display().to_string();
    let run = cli.run(&[
        "push",
        "contacts",
        "--credential",
        "observer",
        "--from",
        &refeed,
        "--only",
        "rejected",
        "--results",
        &results2,
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r2 = cli.results("r2.csv");
    let rejected: Vec<u64> = r
        .iter()
        .filter(|(_, o)| o.0 == "rejected")
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(r2.keys().copied().collect::<Vec<_>>(), rejected);
    assert!(r2.values().all(|o| o.0 == "created"), "{r2:?}");

    // Then the whole input: rows already written come back unchanged, the rest created.
    let run = cli.run(&[
        "push",
        "contacts",
        "--credential",
        "observer",
        "--from",
        &from,
        "--results",
        &cli.path("r3.csv").display().to_string(),
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r3 = cli.results("r3.csv");
    assert_eq!(r3.len(), 100);
    for (i, (outcome, _, _)) in &r3 {
        let expected = if *i <= last { "unchanged" } else { "created" };
        assert_eq!(outcome, expected, "row {i}");
        let landed = sandbox.by_email(&format!("stop{i}@example.com"));
        assert_eq!(landed.len(), 1, "row {i}: no contact is created twice");
    }
}

/// Sends `signal` (`INT`, `TERM`) to a push of 100 rows against a slow sandbox once a few
/// rows have an outcome, and checks how it stopped.
fn stop_a_push_with(signal: &str) {
    let sandbox = Sandbox::small().latency_ms(150).start();
    let cli = Cli::with_sb(&sandbox);
    let prefix = format!("sig{}", signal.to_lowercase());
    let from = cli.write("in.csv", &contacts_csv(&prefix, 100));
    let results = cli.path("r.csv");
    let results_s = results.display().to_string();
    let child = cli
        .command(&[
            "push",
            "contacts",
            "--credential",
            "sb",
            "--from",
            &from,
            "--results",
            &results_s,
            "--concurrency",
            "2",
        ])
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(20) {
        let lines = std::fs::read_to_string(&results)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines > 5 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("push contacts:"),
        "the summary is printed: {stdout}"
    );
    assert!(stderr.contains("the run was stopped"), "{stderr}");
    let r = cli.results("r.csv");
    let (_, not_sent) = check_stopped_results(&sandbox, &r, &prefix, 100);
    let created = r.values().filter(|o| o.0 == "created").count() as u64;
    let rejected = r.values().filter(|o| o.0 == "rejected").count() as u64;
    assert_eq!(rejected, not_sent, "only queued rows are not sent: {r:?}");
    let store = cli.store();
    let runs = store.list_runs(5).unwrap();
    assert_eq!(runs[0].status, "cancelled");
    assert_eq!(runs[0].summary["counts"]["created"], json!(created));
    assert_eq!(runs[0].summary["rows"], json!(r.len()));
}

#[test]
fn ctrl_c_during_a_push_finishes_the_rows_in_flight_and_records_the_run_cancelled() {
    stop_a_push_with("INT");
}

#[test]
fn sigterm_during_a_push_finishes_the_rows_in_flight_and_records_the_run_cancelled() {
    stop_a_push_with("TERM");
}

#[test]
fn ctrl_c_on_a_slow_rate_budget_exits_at_once_and_starts_no_new_row() {
    // 30 requests a minute: each row's lookup and create wait seconds for the budget. Before
    // the fix the rows waiting for it were still sent after Ctrl-C (exit after > 30 s).
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let prefix = "slowstop";
    let from = cli.write("in.csv", &contacts_csv(prefix, 40));
    let results = cli.path("r.csv");
    let results_s = results.display().to_string();
    let contacts_before = sandbox.contact_count();
    let mut child = cli
        .command(&[
            "push",
            "contacts",
            "--credential",
            "sb",
            "--from",
            &from,
            "--results",
            &results_s,
            "--rate-limit-per-min",
            "30",
            "--concurrency",
            "8",
        ])
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(60) {
        let lines = std::fs::read_to_string(&results)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines > 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let signalled = std::time::Instant::now();
    let exited = loop {
        if child.try_wait().unwrap().is_some() {
            break signalled.elapsed();
        }
        if signalled.elapsed() > std::time::Duration::from_secs(90) {
            let _ = child.kill();
            break signalled.elapsed();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        exited < std::time::Duration::from_secs(10),
        "exited {exited:?} after Ctrl-C (rows waiting for the budget must not be sent)\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let requests_at_exit = sandbox.admin("stats");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        sandbox.admin("stats")["by_route"],
        requests_at_exit["by_route"],
        "no request after the exit"
    );
    let r = cli.results("r.csv");
    let (_, not_sent) = check_stopped_results(&sandbox, &r, prefix, 40);
    let created = r.values().filter(|o| o.0 == "created").count() as u64;
    let rejected = r.values().filter(|o| o.0 == "rejected").count() as u64;
    assert!(
        not_sent > 0,
        "rows waiting for the budget are not sent: {r:?}"
    );
    assert_eq!(
        rejected, not_sent,
        "every rejected row is `not sent`: {r:?}"
    );
    assert_eq!(
        sandbox.contact_count() - contacts_before,
        created,
        "one contact per `created`"
    );
    assert_eq!(
        sandbox.route_count("contacts.create"),
        created,
        "no create was sent for a row that is not `created`"
    );
    let store = cli.store();
    let runs = store.list_runs(5).unwrap();
    assert_eq!(runs[0].status, "cancelled");
    assert_eq!(runs[0].summary["rows"], json!(r.len()));
}
