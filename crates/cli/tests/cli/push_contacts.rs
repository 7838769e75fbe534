//! CLI tests: `push contacts` (issue 7): one outcome per row, lookups, retries, dry runs. The
//! real binary against the harness's sandbox, whose own view (`/__sandbox/*` and lookups with
//! a second token) shows what landed in Drift.

use crate::util::{attr, outcomes, Cli, Sandbox};
use drift_sandbox::FaultSpec;
use serde_json::json;

const MIXED: &str = "email,name,tier\n\
new@example.com,New Person,gold\n\
ada@example.com,Ada Lovelace,pro\n\
grace@example.com,Grace,free\n\
twin@example.com,Twin,gold\n\
not-an-email,Bad Email,gold\n\
,Nobody,gold\n\
zoë@example.com,\"Zoë Ångström, 李小龍\",platinum\n\
,,\n";

/// Seeds the contacts the mixed file refers to: ada (to update), grace (unchanged), and two
/// contacts sharing twin@example.com. Returns (ada, twin1, twin2) ids.
fn seed_mixed(sandbox: &Sandbox) -> (i64, i64, i64) {
    let ada = sandbox.create(json!({"email": "ada@example.com", "name": "Ada", "plan": "free"}));
    sandbox.create(json!({"email": "grace@example.com", "name": "Grace", "plan": "free"}));
    let t1 = sandbox.create(json!({"email": "twin@example.com", "externalId": "t-1"}));
    let t2 = sandbox.create(json!({"email": "twin@example.com", "externalId": "t-2"}));
    (ada, t1, t2)
}

#[test]
fn mixed_csv_gets_one_expected_outcome_per_row_and_the_sandbox_matches() {
    let sandbox = Sandbox::start();
    let (ada, t1, t2) = seed_mixed(&sandbox);
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("contacts.csv", MIXED);
    let before = sandbox.contact_count();

    let run = cli.push(
        "contacts",
        &from,
        "r1.csv",
        &["--map", "tier=plan", "--allow-new-attributes"],
    );
    assert_eq!(run.code, 5, "rejected rows mean exit 5: {}", run.stderr);
    let r = cli.results("r1.csv");
    assert_eq!(
        outcomes(&r),
        vec![
            (1, "created"),
            (2, "updated"),
            (3, "unchanged"),
            (4, "rejected"),
            (5, "rejected"),
            (6, "rejected"),
            (7, "created"),
            (8, "skipped"),
        ]
    );
    assert_eq!(r[&2].1, ada.to_string());
    assert!(
        r[&4].2.contains(&t1.to_string()) && r[&4].2.contains(&t2.to_string()),
        "{}",
        r[&4].2
    );
    assert!(r[&4].2.contains("--on-duplicate"), "{}", r[&4].2);
    assert!(r[&5].2.contains("not an email"), "{}", r[&5].2);
    assert!(r[&6].2.contains("missing key"), "{}", r[&6].2);
    assert!(
        run.stdout
            .contains("created 2, updated 1, unchanged 1, skipped 1, rejected 3"),
        "{}",
        run.stdout
    );

    // The sandbox holds exactly what the results say.
    assert_eq!(sandbox.contact_count(), before + 2);
    let new = sandbox.by_email("new@example.com");
    assert_eq!(new.len(), 1);
    assert_eq!(r[&1].1, new[0].id.to_string());
    assert_eq!(attr(&new[0], "name"), Some(&json!("New Person")));
    assert_eq!(attr(&new[0], "plan"), Some(&json!("gold")));
    let ada_now = &sandbox.by_email("ada@example.com")[0];
    assert_eq!(attr(ada_now, "name"), Some(&json!("Ada Lovelace")));
    assert_eq!(attr(ada_now, "plan"), Some(&json!("pro")));
    let zoe = sandbox.by_email("zoë@example.com");
    assert_eq!(zoe.len(), 1);
    assert_eq!(attr(&zoe[0], "name"), Some(&json!("Zoë Ångström, 李小龍")));
    for twin in sandbox.by_email("twin@example.com") {
        assert_eq!(attr(&twin, "name"), None, "a rejected row must not write");
    }

    // The second run of the same file creates nothing and sends no write.
    let creates = sandbox.route_count("contacts.create");
    let updates = sandbox.route_count("contacts.update");
    let again = cli.push(
        "contacts",
        &from,
        "r2.csv",
        &["--map", "tier=plan", "--allow-new-attributes"],
    );
    assert_eq!(again.code, 5, "{}", again.stderr);
    let r2 = cli.results("r2.csv");
    for row in [1, 2, 3, 7] {
        assert_eq!(r2[&row].0, "unchanged", "row {row}: {:?}", r2[&row]);
    }
    assert_eq!(sandbox.contact_count(), before + 2);
    assert_eq!(sandbox.route_count("contacts.create"), creates);
    assert_eq!(sandbox.route_count("contacts.update"), updates);

    // Re-feed only the rejected rows, now updating the first of the duplicates.
    let refeed = cli.path("r1.csv").display().to_string();
    let fixed = cli.push(
        "contacts",
        &refeed,
        "r3.csv",
        &[
            "--only",
            "rejected",
            "--on-duplicate",
            "first",
            "--map",
            "tier=plan",
            "--allow-new-attributes",
        ],
    );
    assert_eq!(fixed.code, 5, "{}", fixed.stderr);
    let r3 = cli.results("r3.csv");
    assert_eq!(
        outcomes(&r3),
        vec![(4, "updated"), (5, "rejected"), (6, "rejected")]
    );
    assert_eq!(r3[&4].1, t1.to_string(), "first = earliest created");
    assert!(
        fixed.stdout.contains("5 rows left out by --only"),
        "{}",
        fixed.stdout
    );
}

#[test]
fn a_503_on_the_create_is_looked_up_then_retried_and_creates_exactly_one_contact() {
    let fault = FaultSpec {
        route: "contacts.create".into(),
        kind: drift_sandbox::FaultKind::Status,
        status: Some(503),
        after_requests: 0,
        count: Some(1),
        probability: None,
        delay_ms: None,
    };
    let sandbox = Sandbox::small().faults(vec![fault]).start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("one.csv", "email,name\nretry@example.com,Retry Me\n");
    let run = cli.push("contacts", &from, "r.csv", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = cli.results("r.csv");
    assert_eq!(outcomes(&r), vec![(1, "created")]);
    assert!(r[&1].2.contains("attempt 2"), "{}", r[&1].2);
    let found = sandbox.by_email("retry@example.com");
    assert_eq!(found.len(), 1);
    assert_eq!(r[&1].1, found[0].id.to_string());
    assert_eq!(sandbox.route_count("contacts.create"), 2);
}

#[test]
fn a_create_whose_answer_is_lost_is_found_by_lookup_and_not_sent_again() {
    let fault = FaultSpec {
        route: "contacts.create".into(),
        kind: drift_sandbox::FaultKind::Reset,
        status: None,
        after_requests: 0,
        count: Some(1),
        probability: None,
        delay_ms: None,
    };
    let sandbox = Sandbox::small().faults(vec![fault]).start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("one.csv", "email,name\nlost@example.com,Lost Answer\n");
    let run = cli.push("contacts", &from, "r.csv", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = cli.results("r.csv");
    assert_eq!(outcomes(&r), vec![(1, "created")]);
    assert!(r[&1].2.contains("had landed"), "{}", r[&1].2);
    assert_eq!(sandbox.by_email("lost@example.com").len(), 1);
    assert_eq!(sandbox.route_count("contacts.create"), 1, "never re-sent");
}

#[test]
fn a_401_mid_run_exits_3_and_the_results_list_every_processed_row() {
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
    let mut csv = String::from("email,name\n");
    for i in 1..=40 {
        csv.push_str(&format!("user{i}@example.com,User {i}\n"));
    }
    let from = cli.write("many.csv", &csv);
    let run = cli.push("contacts", &from, "r.csv", &[]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("401"), "{}", run.stderr);
    let r = cli.results("r.csv");
    // 40 rows fit in the workers' queues: every row is read, so every row has an outcome
    // (the ones queued when the run stopped are rejected as not sent).
    assert!(r.len() >= 10 && r.len() <= 40, "{} rows", r.len());
    assert_eq!(
        r.keys().copied().collect::<Vec<_>>(),
        (1..=r.len() as u64).collect::<Vec<_>>()
    );
    for i in 1..=40u64 {
        let landed = sandbox.by_email(&format!("user{i}@example.com"));
        match r.get(&i) {
            Some((outcome, id, _)) if outcome == "created" => {
                assert_eq!(landed.len(), 1, "row {i}");
                assert_eq!(*id, landed[0].id.to_string());
            }
            Some((outcome, _, reason)) => {
                assert_eq!(outcome, "rejected", "row {i}");
                assert!(reason.contains("401"), "{reason}");
                assert!(landed.is_empty(), "row {i}");
            }
            None => assert!(landed.is_empty(), "row {i} has no outcome but landed"),
        }
    }
    let store = cli.store();
    assert_eq!(
        store.credential("sb").unwrap().status,
        store::CredentialStatus::Failed
    );
}

#[test]
fn dry_run_looks_up_and_prints_but_makes_no_write_request() {
    let sandbox = Sandbox::start();
    let (ada, _, _) = seed_mixed(&sandbox);
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("contacts.csv", MIXED);
    let before = sandbox.contact_count();
    let writes = |s: &Sandbox| {
        [
            "contacts.create",
            "contacts.update",
            "contacts.timeline",
            "contacts.delete",
        ]
        .iter()
        .map(|r| s.route_count(r))
        .sum::<u64>()
    };
    let writes_before = writes(&sandbox);
    let lookups_before = sandbox.route_count("contacts.find");
    let run = cli.push(
        "contacts",
        &from,
        "dry.csv",
        &["--dry-run", "--map", "tier=plan", "--allow-new-attributes"],
    );
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert_eq!(writes(&sandbox), writes_before, "a dry run wrote to Drift");
    assert!(
        sandbox.route_count("contacts.find") > lookups_before,
        "a dry run looks up"
    );
    assert_eq!(sandbox.contact_count(), before);
    assert!(run.stdout.contains("POST /contacts"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("PATCH /contacts/{ada}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("would create 2, would update 1, would leave unchanged 1"),
        "a dry run says what it would do: {}",
        run.stdout
    );
    assert!(run.stdout.contains("row 1: would create"), "{}", run.stdout);
    let rows: Vec<u64> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("row ")?.split(':').next()?.parse().ok())
        .collect();
    assert!(rows.len() >= 7, "{}", run.stdout);
    assert!(
        rows.windows(2).all(|w| w[0] < w[1]),
        "rows in input order: {rows:?}"
    );
    let r = cli.results("dry.csv");
    assert_eq!(r[&1].0, "created");
    assert_eq!(r[&2].0, "updated");
    assert!(r[&1].2.starts_with("dry run"), "{}", r[&1].2);
    assert_eq!(
        attr(&sandbox.by_email("ada@example.com")[0], "name"),
        Some(&json!("Ada"))
    );
}

#[test]
fn a_dry_run_plans_later_rows_with_the_effects_of_earlier_rows_like_the_real_run() {
    let sandbox = Sandbox::start();
    sandbox.create(json!({"email": "ada@example.com", "name": "Ada", "plan": "free"}));
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write(
        "dups.csv",
        "email,name,plan\n\
         alice@example.com,Alice,free\n\
         ada@example.com,Ada Lovelace,pro\n\
         bob@example.com,Bob,free\n\
         ada@example.com,Ada Lovelace,pro\n\
         bob@example.com,Bob,free\n\
         alice@example.com,Alice,gold\n",
    );
    let dry = cli.push(
        "contacts",
        &from,
        "dry.csv",
        &["--dry-run", "--include-unmapped"],
    );
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        sandbox.by_email("alice@example.com").is_empty(),
        "a dry run wrote"
    );
    let d = cli.results("dry.csv");
    let expected = vec![
        (1, "created"),
        (2, "updated"),
        (3, "created"),
        (4, "unchanged"),
        (5, "unchanged"),
        (6, "updated"),
    ];
    assert_eq!(outcomes(&d), expected);
    assert!(
        d[&6].2.contains("would update the contact row 1 creates"),
        "{}",
        d[&6].2
    );
    assert!(
        d[&6].2.contains("PATCH") && d[&6].2.contains("gold"),
        "{}",
        d[&6].2
    );
    assert!(!d[&6].2.contains("POST"), "{}", d[&6].2);
    assert!(d[&5].2.contains("row 3 creates"), "{}", d[&5].2);

    let run = cli.push("contacts", &from, "real.csv", &["--include-unmapped"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = cli.results("real.csv");
    assert_eq!(outcomes(&r), expected, "the dry run foretold the real run");
    let alice = sandbox.by_email("alice@example.com");
    assert_eq!(alice.len(), 1, "one contact for rows 1 and 6");
    assert_eq!(attr(&alice[0], "plan"), Some(&json!("gold")));
    assert_eq!(r[&6].1, alice[0].id.to_string());
}

/// Issue 21: a mapping to an attribute Drift does not have (it would create a new custom
/// attribute) is refused before any row is sent, dry runs too, naming the column, the
/// attribute and `--allow-new-attributes`; an existing custom attribute (`plan_tier`) and
/// the opt-in pass.
#[test]
fn a_mapping_to_an_attribute_drift_does_not_have_needs_allow_new_attributes() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("c.csv", "email,tier\nnew-attr@example.com,gold\n");
    let before = sandbox.contact_count();
    let runs_before = cli.json(&["runs", "list"]).as_array().unwrap().len();
    for extra in [
        &["--map", "tier=JobTier"][..],
        &["--map", "tier=JobTier", "--dry-run"],
    ] {
        let run = cli.push("contacts", &from, "r.csv", extra);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        for needle in ["column \"tier\" -> \"JobTier\"", "--allow-new-attributes"] {
            assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        }
        assert!(
            !run.stderr.contains("tick"),
            "no web wording: {}",
            run.stderr
        );
    }
    assert_eq!(sandbox.contact_count(), before, "no row was sent");
    assert_eq!(
        cli.json(&["runs", "list"]).as_array().unwrap().len(),
        runs_before,
        "a refused push records no run"
    );
    let known = cli.push("contacts", &from, "k.csv", &["--map", "tier=plan_tier"]);
    assert_eq!(known.code, 0, "an attribute Drift lists: {}", known.stderr);
    let from = cli.write("d.csv", "email,tier\nopted-in@example.com,gold\n");
    let opted = cli.push(
        "contacts",
        &from,
        "o.csv",
        &["--map", "tier=JobTier", "--allow-new-attributes"],
    );
    assert_eq!(opted.code, 0, "{}", opted.stderr);
    let c = &sandbox.by_email("opted-in@example.com")[0];
    assert_eq!(attr(c, "JobTier"), Some(&json!("gold")));
}
