//! CLI tests: `credentials list/show/update/delete`, their `--json` output and errors.

use crate::util::{Cli, Sandbox, TOKEN as CANARY};

#[test]
fn json_output_of_list_show_and_test() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let add = cli.credentials_add(
        "Sandbox",
        &sandbox.url(),
        CANARY,
        &["--description", "local"],
    );
    assert_eq!(add.code, 0, "{}", add.stderr);

    let list = cli.json(&["credentials", "list"]);
    let first = &list.as_array().unwrap()[0];
    assert_eq!(first["name"], "Sandbox");
    assert_eq!(first["description"], "local");
    assert_eq!(first["key_mask"], "••••1b0a");
    assert_eq!(first["status"], "verified");
    assert_eq!(first["org_id"], 104455);
    assert_eq!(first["rate_limit_per_min"], 600);

    let mut show = cli.json(&["credentials", "show", "SANDBOX"]);
    // `show` adds the shared budget's live use to what `list` shows.
    let budget = show.as_object_mut().unwrap().remove("budget").unwrap();
    assert!(budget["requests_last_minute"].is_u64(), "{budget}");
    assert_eq!(budget["paused_until"], serde_json::Value::Null, "{budget}");
    assert_eq!(show, *first);
    assert!(
        show["tested_at"].as_i64().unwrap() > 1_700_000_000_000,
        "epoch ms"
    );

    let test = cli.json(&["credentials", "test", "sandbox"]);
    assert_eq!(test["host_reached"], true);
    assert_eq!(test["token_accepted"], true);
    assert_eq!(test["status"], "verified");
    assert_eq!(test["expires_in_ms"], 0);
    assert_eq!(test["expires_at"], serde_json::Value::Null);
    assert!(test["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "account_read"));
}

#[test]
fn update_changes_fields_and_validates_them() {
    let cli = Cli::new();
    let add = cli.run_with(
        &[
            "credentials",
            "add",
            "--name",
            "a",
            "--api-key-env",
            "T",
            "--no-test",
        ],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(add.code, 0);
    let none = cli.run(&["credentials", "update", "a"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("nothing to update"));
    let bad = cli.run(&[
        "credentials",
        "update",
        "a",
        "--base-url",
        "http://10.1.2.3",
    ]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("base_url"));
    let ok = cli.run(&[
        "credentials",
        "update",
        "a",
        "--name",
        "renamed",
        "--description",
        "d",
        "--base-url",
        "https://eu.example.com",
        "--rate-limit-per-min",
        "100",
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let show = cli.json(&["credentials", "show", "RENAMED"]);
    assert_eq!(show["description"], "d");
    assert_eq!(show["base_url"], "https://eu.example.com");
    assert_eq!(show["rate_limit_per_min"], 100);
    let missing = cli.run(&["credentials", "show", "a"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("\"a\" not found"),
        "{}",
        missing.stderr
    );
}

#[test]
fn delete_refuses_while_used_unless_forced() {
    let cli = Cli::new();
    let add = cli.run_with(
        &[
            "credentials",
            "add",
            "--name",
            "prod",
            "--api-key-env",
            "T",
            "--no-test",
        ],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(add.code, 0);
    {
        let store = store::Store::open(cli.data_dir()).unwrap();
        store
            .add_source("crm", "prod", &["conversations".to_string()])
            .unwrap();
        store
            .add_destination("local", "sqlite", None, &serde_json::json!({}))
            .unwrap();
        store.add_flow("nightly", "crm", "local").unwrap();
    }
    let refused = cli.run(&["credentials", "delete", "prod"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("data source \"crm\"")
            && refused.stderr.contains("flow \"nightly\"")
            && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        cli.json(&["credentials", "list"]).as_array().unwrap().len(),
        1
    );
    let forced = cli.run(&["credentials", "delete", "prod", "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(forced.stderr.contains("crm"), "{}", forced.stderr);
    assert!(cli
        .json(&["credentials", "list"])
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn descriptions_cannot_carry_terminal_escapes_and_list_keeps_one_line_per_credential() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let url = sandbox.url();
    let escape = cli.credentials_add(
        "esc",
        &url,
        CANARY,
        &["--no-test", "--description", "a\u{1b}[2Jb"],
    );
    assert_eq!(escape.code, 2, "{}", escape.stderr);
    assert!(
        escape.stderr.contains("description") && escape.stderr.contains("control character"),
        "{}",
        escape.stderr
    );
    let lines = cli.credentials_add(
        "multi",
        &url,
        CANARY,
        &["--no-test", "--description", "first line\nsecond line"],
    );
    assert_eq!(lines.code, 0, "{}", lines.stderr);
    let list = cli.run(&["credentials", "list"]);
    assert_eq!(
        list.stdout.lines().count(),
        2,
        "header + one row: {}",
        list.stdout
    );
    assert!(
        list.stdout.contains("first line second line"),
        "{}",
        list.stdout
    );
}

#[test]
fn with_json_a_bad_flag_value_is_a_json_error_on_stdout_too() {
    let cli = Cli::new();
    for args in [
        &["--json", "sync", "--credential", "x", "--mode", "sideways"][..],
        &[
            "sync",
            "--credential",
            "x",
            "--rate-limit-per-min",
            "abc",
            "--json",
        ][..],
        &["--json", "credentials", "nosuchcommand"][..],
    ] {
        let out = cli.run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {:?}", out.stdout));
        assert_eq!(v["error"]["exit_code"], 2, "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            ["sideways", "abc", "nosuchcommand"]
                .iter()
                .any(|w| message.contains(w)),
            "the message names the bad value: {v}"
        );
        assert!(
            out.stderr.starts_with("error: "),
            "clap's text stays on stderr: {}",
            out.stderr
        );
    }
    let missing = cli.run(&["--json", "sync"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    let v: serde_json::Value = serde_json::from_str(&missing.stdout).unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("not provided: --credential <CREDENTIAL>"),
        "names the missing argument: {v}"
    );
    let plain = cli.run(&["sync", "--credential", "x", "--mode", "sideways"]);
    assert_eq!(plain.code, 2);
    assert!(plain.stdout.is_empty(), "{}", plain.stdout);
    let help = cli.run(&["--json", "sync", "--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(help.stdout.contains("Usage"), "{}", help.stdout);
}

#[test]
fn with_json_a_failure_is_a_json_error_on_stdout_and_quiet_drops_the_checklist() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    let missing = cli.run(&["--json", "credentials", "show", "nosuch"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    let v: serde_json::Value = serde_json::from_str(&missing.stdout)
        .unwrap_or_else(|e| panic!("{e}: {:?}", missing.stdout));
    assert_eq!(v["error"]["exit_code"], 2);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nosuch"),
        "{v}"
    );
    let quiet = cli.credentials_add("q", &sandbox.url(), CANARY, &["-q"]);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(!quiet.stdout.contains('✓'), "{}", quiet.stdout);
    assert!(
        !quiet.stdout.contains("Testing credential"),
        "{}",
        quiet.stdout
    );
}
