//! CLI tests: the vault: the key is in no file or log, the master key (from a file or the
//! environment) is rotated, checked and never half-applied.

use crate::util::{contains, Cli, Sandbox, TOKEN as CANARY};
use std::path::Path;

#[test]
fn canary_is_absent_from_files_and_verbose_logs() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    assert_eq!(
        cli.credentials_add("a", &sandbox.url(), CANARY, &["-vv"])
            .code,
        0
    );
    assert_eq!(
        cli.credentials_add("b", &sandbox.url(), &format!("Bearer {CANARY}\n"), &[])
            .code,
        0
    );
    let test = cli.run(&["-vv", "credentials", "test", "a"]);
    assert_eq!(test.code, 0, "{}", test.stderr);
    assert!(
        test.stderr.contains("DEBUG"),
        "-vv logs at debug level: {}",
        test.stderr
    );
    let rotate = cli.run_with(
        &["-vv", "credentials", "rotate", "b", "--api-key-stdin"],
        &[],
        Some(CANARY),
    );
    assert_eq!(rotate.code, 0, "{}", rotate.stderr);
    assert_eq!(cli.run(&["-vv", "vault", "rotate-key"]).code, 0);
    let bytes = cli.all_file_bytes();
    assert!(
        contains(&bytes, "••••1b0a"),
        "the scan reads the stored rows"
    );
    assert!(!contains(&bytes, CANARY));
    assert!(!contains(&bytes, &CANARY[..16]));
}

#[test]
fn vault_rotate_key_then_read_back() {
    let sandbox = Sandbox::start();
    let cli = Cli::new();
    assert_eq!(
        cli.credentials_add("s", &sandbox.url(), CANARY, &[]).code,
        0
    );
    let key_file = cli.data_dir().join("master.key");
    let before = std::fs::read_to_string(&key_file).unwrap();
    let rotate = cli.json(&["vault", "rotate-key"]);
    assert_eq!(
        (
            rotate["from_version"].as_i64(),
            rotate["to_version"].as_i64(),
            rotate["secrets"].as_i64()
        ),
        (Some(1), Some(2), Some(1))
    );
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), before);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        cli.run(&["credentials", "test", "s"]).code,
        0,
        "the key reads back after rotation"
    );

    // With the old key the vault does not open, and nothing changes.
    let old = before.trim();
    let wrong = cli.run_with(
        &["credentials", "test", "s"],
        &[("DRIFTBRIDGE_MASTER_KEY", old)],
        None,
    );
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("DRIFTBRIDGE_MASTER_KEY") && wrong.stderr.contains("does not open"),
        "{}",
        wrong.stderr
    );
}

#[test]
fn master_key_from_environment_and_wrong_key_changes_nothing() {
    let cli = Cli::new();
    let key_a = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="; // 32 x 'A'
    let key_b = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="; // 32 x 'B'
    let add = |name: &str, key: &str| {
        let args = [
            "credentials",
            "add",
            "--name",
            name,
            "--api-key-env",
            "T",
            "--no-test",
        ];
        cli.run_with(
            &args,
            &[("T", CANARY), ("DRIFTBRIDGE_MASTER_KEY", key)],
            None,
        )
    };
    assert_eq!(add("one", key_a).code, 0);
    assert!(
        !cli.data_dir().join("master.key").exists(),
        "no key file when the key comes from the environment"
    );
    let before = vault_rows(cli.data_dir());
    let wrong = add("two", key_b);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("nothing was changed"),
        "{}",
        wrong.stderr
    );
    // The vault's key is needed by every command, listing included.
    let listed = cli.run_with(
        &["--json", "credentials", "list"],
        &[("DRIFTBRIDGE_MASTER_KEY", key_a)],
        None,
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let keyless = cli.run(&["credentials", "list"]);
    assert_eq!(keyless.code, 1);
    assert!(
        keyless.stderr.contains("is missing") && keyless.stderr.contains("DRIFTBRIDGE_MASTER_KEY"),
        "{}",
        keyless.stderr
    );
    assert_eq!(vault_rows(cli.data_dir()), before);

    let bad = add("two", "not-base64!");
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("DRIFTBRIDGE_MASTER_KEY") && bad.stderr.contains("base64"),
        "{}",
        bad.stderr
    );

    // Rotating an environment key needs the new key from another variable.
    let env = [("DRIFTBRIDGE_MASTER_KEY", key_a), ("NEW_KEY", key_b)];
    let refused = cli.run_with(&["vault", "rotate-key"], &env[..1], None);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("--new-key-env"),
        "{}",
        refused.stderr
    );
    let rotated = cli.run_with(
        &["vault", "rotate-key", "--new-key-env", "NEW_KEY"],
        &env,
        None,
    );
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    assert!(
        rotated.stderr.contains("set DRIFTBRIDGE_MASTER_KEY"),
        "{}",
        rotated.stderr
    );
    assert_eq!(add("two", key_b).code, 0);
    assert_eq!(add("three", key_a).code, 1);
}

/// A malformed or wrong `DRIFTBRIDGE_MASTER_KEY` fails every command that opens the store,
/// also those that read no secret (`credentials list`, `runs list`), naming the variable and
/// the fix; nothing is created or changed.
#[test]
fn every_store_command_refuses_a_bad_master_key() {
    let cli = Cli::new();
    let key_a = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="; // 32 x 'A'
    let key_b = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="; // 32 x 'B'
    let commands: [&[&str]; 6] = [
        &["credentials", "list"],
        &["--json", "credentials", "list"],
        &["credentials", "show", "one"],
        &["runs", "list"],
        &["sync", "--credential", "one"],
        &[
            "push",
            "contacts",
            "--credential",
            "one",
            "--from",
            "none.csv",
        ],
    ];
    // Before anything is stored: a malformed key is refused, and no key file appears.
    for bad in ["not base64!", "QUFB", ""] {
        for args in commands {
            let out = cli.run_with(args, &[("DRIFTBRIDGE_MASTER_KEY", bad)], None);
            assert_eq!(out.code, 1, "{args:?} with {bad:?}: {}", out.stderr);
            assert!(
                out.stderr.contains("DRIFTBRIDGE_MASTER_KEY")
                    && out.stderr.contains("openssl rand -base64 32")
                    && out.stderr.contains("unset DRIFTBRIDGE_MASTER_KEY"),
                "{args:?}: {}",
                out.stderr
            );
        }
    }
    assert!(!cli.data_dir().join("master.key").exists());
    let added = cli.run_with(
        &[
            "credentials",
            "add",
            "--name",
            "one",
            "--api-key-env",
            "T",
            "--no-test",
        ],
        &[("T", CANARY), ("DRIFTBRIDGE_MASTER_KEY", key_a)],
        None,
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let before = vault_rows(cli.data_dir());
    // A well-formed key that is not the vault's.
    for args in commands {
        let out = cli.run_with(args, &[("DRIFTBRIDGE_MASTER_KEY", key_b)], None);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("DRIFTBRIDGE_MASTER_KEY") && out.stderr.contains("does not open"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(vault_rows(cli.data_dir()), before);
    let listed = cli.run_with(
        &["--json", "credentials", "list"],
        &[("DRIFTBRIDGE_MASTER_KEY", key_a)],
        None,
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    // Without a key the store still opens (the key file is made on first use).
    let fresh = Cli::new();
    assert_eq!(fresh.run_with(&["runs", "list"], &[], None).code, 0);
}

/// Every row of the vault tables, to show that a refused command changed nothing.
fn vault_rows(data_dir: &Path) -> Vec<(String, Vec<u8>)> {
    let db = rusqlite::Connection::open(data_dir.join("driftbridge.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT owner_id, ciphertext FROM secrets UNION ALL SELECT version, check_ct FROM vault_keys")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get::<_, rusqlite::types::Value>(0)?, r.get(1)?))
    })
    .unwrap()
    .map(|r| {
        let (k, v) = r.unwrap();
        (format!("{k:?}"), v)
    })
    .collect()
}

#[test]
fn tampered_ciphertext_gives_a_decryption_error_naming_the_credential() {
    let cli = Cli::new();
    let add = cli.run_with(
        &[
            "credentials",
            "add",
            "--name",
            "Billing",
            "--api-key-env",
            "T",
            "--no-test",
        ],
        &[("T", CANARY)],
        None,
    );
    assert_eq!(add.code, 0);
    {
        let db = rusqlite::Connection::open(cli.data_dir().join("driftbridge.db")).unwrap();
        let mut ct: Vec<u8> = db
            .query_row("SELECT ciphertext FROM secrets", [], |r| r.get(0))
            .unwrap();
        ct[0] ^= 0x80;
        db.execute("UPDATE secrets SET ciphertext = ?1", [ct])
            .unwrap();
    }
    let run = cli.run(&["credentials", "test", "billing"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cannot decrypt") && run.stderr.contains("\"Billing\""),
        "{}",
        run.stderr
    );
}
