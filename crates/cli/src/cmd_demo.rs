//! `driftbridge demo`: the whole product in one command, offline. Starts the Drift sandbox
//! in-process on a free port, creates (or reuses) a `demo` credential in the data directory,
//! syncs every stream into `./driftbridge-demo.db`, removes the credential again (its
//! sandbox is gone), then prints the summary, a few rows and the next commands to try.

use crate::cmd_sync::{execute, finish, open_store, print_summary, SyncJob};
use crate::common::{exit, fail, Ctx};
use secrecy::SecretString;
use sinks::SinkSpec;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use store::{CredentialUpdate, NewCredential, Store, StoreError};
use sync_core::SyncMode;

/// Name of the credential the demo creates or reuses.
pub const DEMO_CREDENTIAL: &str = "demo";
/// The SQLite file the demo writes, in the current directory.
pub const DEMO_DB: &str = "driftbridge-demo.db";
/// Conversations in the demo org (messages and contacts follow from them).
const DEMO_CONVERSATIONS: usize = 120;
/// Request budget of the demo, sandbox and client alike: about 215 requests at 40 per second
/// keep the demo around five seconds while still showing the rate budget at work.
const DEMO_RATE_PER_MIN: u32 = 2400;

/// Arguments of `driftbridge demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  driftbridge demo
  driftbridge --data-dir /tmp/demo demo --json")]
pub struct Args {}

/// Run the subcommand.
pub async fn run(ctx: &Ctx, _args: Args) -> anyhow::Result<ExitCode> {
    let config = drift_sandbox::SandboxConfig {
        port: 0,
        conversations: DEMO_CONVERSATIONS,
        rate_limit_per_min: DEMO_RATE_PER_MIN,
        ..Default::default()
    };
    let sandbox = drift_sandbox::start(config)
        .await
        .map_err(|e| fail(exit::FAILURE, format!("cannot start the sandbox: {e}")))?;
    let base_url = sandbox.base_url();
    say(
        ctx,
        &format!(
            "driftbridge demo: a simulated Drift org ({DEMO_CONVERSATIONS} conversations) at {base_url}, \
             budget {DEMO_RATE_PER_MIN} requests/minute (sandbox and client), so this takes about 5 seconds.\n"
        ),
    );
    let store = open_store(ctx)?;
    ensure_credential(&store, &base_url, sandbox.token())?;
    let db = PathBuf::from(DEMO_DB);
    let job = SyncJob {
        credential: DEMO_CREDENTIAL.into(),
        streams: vec!["all".into()],
        sink: SinkSpec::Sqlite(db.clone()),
        mode: SyncMode::FullRefresh,
        flow: None,
        rate_limit_per_min: Some(DEMO_RATE_PER_MIN),
        source: source_drift::DriftSourceConfig::default(),
        hard_deletes: false,
        schema_contract: Default::default(),
        history: false,
        reset_streams: Vec::new(),
        trigger: store::Trigger::Manual,
    };
    let summary = execute(ctx, &store, &job).await;
    sandbox.shutdown().await;
    remove_credential(&store);
    let summary = summary?;
    print_summary(ctx, &summary)?;
    if !ctx.json && !ctx.quiet {
        out!("{}", samples(&db));
        out!("{}", next_steps(ctx, &summary.run_id));
    }
    finish(&summary)
}

fn say(ctx: &Ctx, text: &str) {
    if !ctx.json && !ctx.quiet {
        out!("{text}");
    }
}

/// Create the `demo` credential, or point the existing one at this sandbox.
fn ensure_credential(store: &Store, base_url: &str, token: String) -> anyhow::Result<()> {
    let key = SecretString::from(token);
    let to_cli = |e: StoreError| fail(exit::FAILURE, format!("demo credential: {e}"));
    match store.credential(DEMO_CREDENTIAL) {
        Ok(existing) => {
            if existing.base_url != base_url {
                let update = CredentialUpdate {
                    base_url: Some(base_url.to_owned()),
                    ..Default::default()
                };
                store
                    .update_credential(DEMO_CREDENTIAL, &update)
                    .map_err(to_cli)?;
            }
            store
                .rotate_credential_key(DEMO_CREDENTIAL, &key)
                .map_err(to_cli)?;
        }
        Err(StoreError::NotFound { .. }) => {
            store
                .add_credential(&NewCredential {
                    name: DEMO_CREDENTIAL.into(),
                    description: Some("Offline Drift sandbox used by `driftbridge demo`".into()),
                    base_url: Some(base_url.to_owned()),
                    api_key: key,
                    rate_limit_per_min: DEMO_RATE_PER_MIN,
                })
                .map_err(to_cli)?;
        }
        Err(e) => return Err(to_cli(e)),
    }
    Ok(())
}

/// Delete the `demo` credential once its sandbox has stopped, so no dead credential stays
/// on the Authenticate screen or in `credentials list` (its runs keep its name). One that
/// a data source or destination uses is left alone (with a note).
fn remove_credential(store: &Store) {
    match store.delete_credential(DEMO_CREDENTIAL, false) {
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => eprintln!("note: the demo credential stays: {e}"),
    }
}

const SAMPLES: &[(&str, &str)] = &[
    (
        "latest conversations",
        "SELECT id, status, contactId, updatedAt_iso FROM conversations ORDER BY updatedAt DESC LIMIT 3",
    ),
    (
        "latest messages",
        "SELECT conversationId, json_extract(author, '$.type'), substr(body, 1, 50) FROM messages ORDER BY createdAt DESC LIMIT 3",
    ),
    (
        "contacts",
        "SELECT id, json_extract(attributes, '$.name'), json_extract(attributes, '$.email') FROM contacts ORDER BY id LIMIT 3",
    ),
];

/// A few rows of the demo database, as text (errors become a line saying so).
fn samples(db: &Path) -> String {
    let conn = match rusqlite::Connection::open(db) {
        Ok(c) => c,
        Err(e) => return format!("(cannot open {} for samples: {e})\n", db.display()),
    };
    let mut out = String::new();
    for (title, sql) in SAMPLES {
        out.push_str(&format!("\n{title}:\n"));
        match query_rows(&conn, sql) {
            Ok(rows) => rows
                .iter()
                .for_each(|r| out.push_str(&format!("  {}\n", r.join(" | ")))),
            Err(e) => out.push_str(&format!("  (query failed: {e})\n")),
        }
    }
    out
}

fn query_rows(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<Vec<Vec<String>>> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    let rows = stmt.query_map([], |row| {
        (0..n)
            .map(|i| {
                let v: rusqlite::types::Value = row.get(i)?;
                Ok(match v {
                    rusqlite::types::Value::Null => "-".to_owned(),
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Text(t) => t.replace('\n', " "),
                    rusqlite::types::Value::Blob(b) => format!("<{} bytes>", b.len()),
                })
            })
            .collect()
    })?;
    rows.collect()
}

fn next_steps(ctx: &Ctx, run_id: &str) -> String {
    let dd = format!(" --data-dir {}", ctx.data_dir.display());
    format!(
        "\nnext steps:\n\
         \x20 sqlite3 {DEMO_DB} \"SELECT status, count(*) FROM conversations GROUP BY status\"\n\
         \x20 driftbridge{dd} runs list\n\
         \x20 driftbridge{dd} runs show {run_id}\n\
         \x20 driftbridge sandbox --port 8787      # keep a sandbox running, then in another shell:\n\
         \x20 export DRIFT_TOKEN={token}   # the \"token\" the sandbox printed\n\
         \x20 driftbridge{dd} credentials add --name local --base-url http://127.0.0.1:8787 --api-key-env DRIFT_TOKEN\n\
         \x20 driftbridge{dd} sync --credential local --destination sqlite:local.db --mode incremental\n\
         \x20 with a real Drift token: see README.md (create an app in Drift's developer portal, install it, credentials add, sync)\n\
         (the demo's own credential was removed with its sandbox: sync with `local` or a real credential)\n",
        token = drift_sandbox::DEFAULT_TOKEN
    )
}
