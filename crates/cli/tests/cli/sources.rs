//! CLI tests: `driftbridge sources ...` manages the saved data sources (the API's objects)
//! and `sources run` runs one in the foreground like `sync`.

use crate::util::{Cli, Sandbox};
use serde_json::json;

fn create(cli: &Cli, name: &str, extra: &[&str]) -> crate::util::Run {
    let db = cli.path(&format!("{name}.db")).display().to_string();
    let sink = format!("sqlite:{db}");
    let mut args = vec![
        "sources",
        "create",
        "--name",
        name,
        "--credential",
        "sb",
        "--streams",
        "conversations,users",
        "--destination",
        &sink,
    ];
    args.extend_from_slice(extra);
    cli.run(&args)
}

fn rows(db: &std::path::Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_source_is_created_listed_paused_resumed_run_and_deleted() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let made = create(&cli, "nightly", &["--schedule", "0 3 * * *"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(
        made.stdout.contains("Saved data source \"nightly\""),
        "{}",
        made.stdout
    );

    let list = cli.run(&["sources", "list"]);
    let header = list.stdout.lines().next().unwrap();
    assert!(header.starts_with("NAME"), "{}", list.stdout);
    let row = list.stdout.lines().nth(1).unwrap();
    assert!(
        row.contains("nightly") && row.contains("cron 0 3 * * * (UTC), next in"),
        "{row}"
    );
    assert!(row.contains("never ran"), "{row}");

    cli.json(&["sources", "pause", "nightly"]);
    let listed = cli.json(&["sources", "list"]);
    assert_eq!(listed[0]["paused"], true);
    assert_eq!(
        listed[0]["next_run_at"],
        json!(null),
        "no next run while paused"
    );
    assert!(cli
        .run(&["sources", "list"])
        .stdout
        .contains("paused (cron 0 3 * * * (UTC))"));
    let resumed = cli.json(&["sources", "resume", "nightly"]);
    assert_eq!(resumed["paused"], false);
    assert!(resumed["next_run_at"].as_i64().is_some(), "{resumed}");

    let run = cli.run(&["--json", "sources", "run", "nightly"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.written("conversations"), 5);
    assert_eq!(rows(&cli.path("nightly.db"), "conversations"), 5);
    let shown = cli.run(&["sources", "show", "nightly"]);
    assert!(
        shown.stdout.contains(&run.run_id()),
        "the run is among its latest: {}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("failure streak  0"),
        "{}",
        shown.stdout
    );

    let deleted = cli.run(&["sources", "delete", "nightly"]);
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert_eq!(cli.json(&["sources", "list"]), json!([]));
    assert_eq!(cli.run(&["sources", "show", "nightly"]).code, 2);
}

#[test]
fn a_bad_cron_is_refused_in_plain_words_and_nothing_is_saved() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let made = create(&cli, "nightly", &["--schedule", "0 99 * * *"]);
    assert_eq!(made.code, 2, "{}", made.stderr);
    assert!(
        made.stderr.contains("hour 99 is out of range 0-23")
            && made.stderr.contains("\"0 2 * * *\""),
        "{}",
        made.stderr
    );
    assert!(!made.stderr.contains("Component error"), "{}", made.stderr);
    assert_eq!(cli.json(&["sources", "list"]), json!([]));
}

#[test]
fn failed_runs_make_a_streak_with_the_last_error_until_a_success() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    assert_eq!(create(&cli, "crm", &[]).code, 0);
    sandbox.set_faults(json!([{"route": "conversations.list", "kind": "status", "status": 400}]));
    for _ in 0..2 {
        let run = cli.run(&["sources", "run", "crm"]);
        assert_ne!(run.code, 0, "{}", run.stdout);
    }
    let shown = cli.json(&["sources", "show", "crm"]);
    assert_eq!(shown["failure_streak"], 2, "{shown}");
    assert!(shown["last_error"].as_str().is_some(), "{shown}");
    assert!(cli
        .run(&["sources", "list"])
        .stdout
        .contains("2 failures in a row"));
    sandbox.set_faults(json!([]));
    assert_eq!(cli.run(&["sources", "run", "crm"]).code, 0);
    let shown = cli.json(&["sources", "show", "crm"]);
    assert_eq!(shown["failure_streak"], 0, "{shown}");
    assert_eq!(shown["last_error"], json!(null));
}

#[test]
fn update_changes_only_what_is_given_and_credentials_delete_names_the_commands() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    assert_eq!(create(&cli, "crm", &["--every-minutes", "30"]).code, 0);
    let updated = cli.json(&[
        "sources",
        "update",
        "crm",
        "--mode",
        "full-refresh",
        "--no-schedule",
    ]);
    assert_eq!(updated["mode"], "full");
    assert_eq!(updated["schedule"], json!(null));
    assert_eq!(updated["streams"], json!(["conversations", "users"]));
    let refused = cli.run(&["credentials", "delete", "sb"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("driftbridge sources delete crm")
            && refused
                .stderr
                .contains("driftbridge sources update crm --credential"),
        "{}",
        refused.stderr
    );
}

#[test]
fn without_a_terminal_a_run_prints_plain_lines_and_runs_show_says_each_thing_once() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    assert_eq!(create(&cli, "crm", &[]).code, 0);
    // stderr is a pipe here, as in CI logs: no bars, a plain line per finished stream.
    let run = cli.run(&["sources", "run", "crm"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("conversations done: 5 read, 5 written in")
            && run.stderr.contains("users done:"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('\r') && !run.stderr.contains('\u{1b}'),
        "no terminal control: {:?}",
        run.stderr
    );
    assert!(run.stdout.contains("  total: "), "{}", run.stdout);
    assert!(
        !run.stdout.contains("summed over concurrent"),
        "plain words: {}",
        run.stdout
    );

    sandbox.set_faults(json!([{"route": "conversations.list", "kind": "status", "status": 400}]));
    let failed = cli.run(&["--json", "sources", "run", "crm"]);
    let id = failed.run_id();
    let shown = cli.run(&["runs", "show", &id]);
    assert_eq!(
        shown.stdout.matches(&format!("run {id}")).count(),
        1,
        "{}",
        shown.stdout
    );
    assert_eq!(
        shown.stdout.matches("error:").count(),
        1,
        "{}",
        shown.stdout
    );
    assert_eq!(
        shown.stdout.matches("  stream ").count(),
        1,
        "{}",
        shown.stdout
    );
}
