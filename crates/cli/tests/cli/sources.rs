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

/// The verification tokens of the real-time tests: neither may appear in any output.
const VT: &str = "vt-CANARY-first-token-5c2e";
const VT2: &str = "vt-CANARY-second-token-81ad";

/// Every output of `runs`, checked for the verification tokens.
fn no_token(runs: &[&crate::util::Run]) {
    for run in runs {
        for text in [&run.stdout, &run.stderr] {
            assert!(
                !text.contains(VT) && !text.contains(VT2),
                "a verification token in the output: {text}"
            );
        }
    }
}

#[test]
fn a_realtime_source_from_the_cli_shows_its_webhook_and_figures_never_its_token() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let db = format!("sqlite:{}", cli.path("live.db").display());
    let made = cli.run_with(
        &[
            "sources",
            "create",
            "--name",
            "live",
            "--credential",
            "sb",
            "--streams",
            "conversations,messages",
            "--destination",
            &db,
            "--realtime",
            "--verification-token-env",
            "VT",
        ],
        &[("VT", VT)],
        None,
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    assert!(
        made.stdout
            .contains("Real time is on: give Drift the webhook URL /webhooks/drift/"),
        "{}",
        made.stdout
    );
    let store = cli.store();
    let id = store.source("live").unwrap().id;
    let stored = store.webhook_token(&id).unwrap().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored), VT);

    // Two events written with a 40 ms lag: the figures come from the store.
    let now = chrono::Utc::now().timestamp_millis();
    for n in 0..2 {
        store
            .enqueue_webhook(
                &id,
                &format!("message:{n}"),
                "new_message",
                "{}",
                now - 1000,
            )
            .unwrap();
    }
    let ids: Vec<i64> = store
        .pending_webhooks(&id, 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    store.finish_webhooks(&ids, now - 960).unwrap();

    let shown = cli.json(&["sources", "show", "live"]);
    let path = shown["webhook_url"].as_str().unwrap().to_string();
    let hook_id = path
        .strip_prefix("/webhooks/drift/")
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        hook_id.len() == 32 && hook_id != id,
        "a random id, not the source's: {path}"
    );
    assert_eq!(
        shown["realtime"],
        json!({"enabled": true, "events_last_hour": 2, "lag_ms_p95": 40})
    );
    let text = cli.run(&["sources", "show", "live"]);
    assert!(
        text.stdout
            .contains("real time       on: 2 events in the last hour, lag p95 40 ms")
            && text.stdout.contains(&format!("webhook URL     {path}"))
            && text.stdout.contains("prefix serve's public URL"),
        "{}",
        text.stdout
    );
    // With serve's public URL (flag or environment) the URL is whole.
    let flag = cli.json(&[
        "sources",
        "show",
        "live",
        "--public-url",
        "https://db.example.com/",
    ]);
    assert_eq!(flag["webhook_url"], format!("https://db.example.com{path}"));
    let env = cli.run_with(
        &["--json", "sources", "show", "live"],
        &[("DRIFTBRIDGE_PUBLIC_URL", "https://env.example.com")],
        None,
    );
    assert_eq!(
        env.json["webhook_url"],
        format!("https://env.example.com{path}")
    );
    let bad = cli.run(&["sources", "show", "live", "--public-url", "ftp://x"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--public-url"), "{}", bad.stderr);

    // The list marks it; a source that is not real time has none.
    assert_eq!(create(&cli, "nightly", &[]).code, 0);
    let list = cli.run(&["sources", "list"]);
    assert!(
        list.stdout.lines().next().unwrap().ends_with("REAL TIME"),
        "{}",
        list.stdout
    );
    let row = |name: &str| {
        list.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_string()
    };
    assert!(row("live").ends_with("on (2/h)"), "{}", list.stdout);
    assert!(row("nightly").ends_with('-'), "{}", list.stdout);
    let listed = cli.json(&["sources", "list"]);
    let nightly = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "nightly")
        .unwrap();
    assert_eq!(
        (&nightly["realtime"], &nightly["webhook_url"]),
        (&json!(null), &json!(null))
    );

    // A new token keeps the webhook URL.
    let changed = cli.run_with(
        &[
            "--json",
            "sources",
            "update",
            "live",
            "--realtime",
            "--verification-token-env",
            "VT2",
        ],
        &[("VT2", VT2)],
        None,
    );
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    assert_eq!(changed.json["webhook_url"], path.as_str());
    let stored = store.webhook_token(&id).unwrap().unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&stored), VT2);

    // --no-realtime turns it off: no URL, no token, no figures.
    let off = cli.run(&["--json", "sources", "update", "live", "--no-realtime"]);
    assert_eq!(off.code, 0, "{}", off.stderr);
    assert_eq!(
        (&off.json["realtime"], &off.json["webhook_url"]),
        (&json!(null), &json!(null))
    );
    assert!(store.webhook_token(&id).unwrap().is_none());
    let text_off = cli.run(&["sources", "show", "live"]);
    assert!(
        text_off.stdout.contains("real time       off"),
        "{}",
        text_off.stdout
    );
    assert!(
        !text_off.stdout.contains("webhook URL"),
        "{}",
        text_off.stdout
    );

    no_token(&[&made, &text, &env, &bad, &list, &changed, &off, &text_off]);
    let bytes = cli.all_file_bytes();
    assert!(
        !bytes.windows(VT2.len()).any(|w| w == VT2.as_bytes()),
        "the token is encrypted at rest"
    );
}

#[test]
fn a_missing_or_refused_verification_token_is_exit_2_naming_the_variable_and_saves_nothing() {
    let sandbox = Sandbox::start();
    let cli = Cli::with_sb(&sandbox);
    let rt = ["--realtime", "--verification-token-env", "DRIFT_VT"];
    let unset = create(&cli, "live", &rt);
    assert_eq!(unset.code, 2, "{}", unset.stderr);
    assert!(
        unset.stderr.contains("--verification-token-env")
            && unset.stderr.contains("DRIFT_VT is not set or is empty")
            && unset.stderr.contains("App Credentials"),
        "{}",
        unset.stderr
    );
    let db = format!("sqlite:{}", cli.path("live.db").display());
    let args = [
        "sources",
        "create",
        "--name",
        "live",
        "--credential",
        "sb",
        "--streams",
        "users",
        "--destination",
        &db,
        "--realtime",
        "--verification-token-env",
        "DRIFT_VT",
    ];
    let empty = cli.run_with(&args, &[("DRIFT_VT", "")], None);
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    assert!(empty.stderr.contains("DRIFT_VT"), "{}", empty.stderr);
    let short = cli.run_with(&args, &[("DRIFT_VT", "vt-CAN7")], None);
    assert_eq!(short.code, 2, "{}", short.stderr);
    assert!(
        short.stderr.contains("DRIFT_VT")
            && short.stderr.contains("8 to 512 characters")
            && !short.stderr.contains("vt-CAN7"),
        "{}",
        short.stderr
    );
    // --realtime needs the variable; the token is never a flag's value.
    let no_var = create(&cli, "live", &["--realtime"]);
    assert_eq!(no_var.code, 2, "{}", no_var.stderr);
    assert!(
        no_var.stderr.contains("--verification-token-env"),
        "{}",
        no_var.stderr
    );
    assert_eq!(cli.json(&["sources", "list"]), json!([]), "nothing saved");

    // An update with a missing variable changes nothing either.
    assert_eq!(create(&cli, "live", &[]).code, 0);
    let update = cli.run(&[
        "sources",
        "update",
        "live",
        "--realtime",
        "--verification-token-env",
        "DRIFT_VT",
    ]);
    assert_eq!(update.code, 2, "{}", update.stderr);
    assert!(update.stderr.contains("DRIFT_VT"), "{}", update.stderr);
    assert_eq!(
        cli.json(&["sources", "show", "live"])["realtime"],
        json!(null)
    );
    let both = cli.run(&["sources", "update", "live", "--no-realtime", "--realtime"]);
    assert_eq!(both.code, 2, "{}", both.stderr);
}
