//! CLI tests: `push` inputs: flags, CSV/JSONL quirks, PostgreSQL queries, unreadable rows.

use crate::util::{attr, outcomes, Cli, Sandbox};
use serde_json::{json, Value};
use std::collections::BTreeMap;

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
            "--allow-new-attributes",
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
