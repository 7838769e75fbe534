//! Versioned schema migrations, tracked in SQLite's `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema from version `i` to `i + 1` and runs in its
//! own transaction together with the version bump, so a crash leaves the file at a whole
//! version. Never edit a released migration; append a new one.

use crate::error::{Result, StoreError};
use rusqlite::Connection;
use std::path::Path;

/// Schema version 1: the vault, credentials, the objects that use them, state and runs.
const V1: &str = r#"
-- One row per master-key version. `check_*` is a known plaintext encrypted with that key,
-- so a wrong master key is detected before anything is read or written.
CREATE TABLE vault_keys (
    version     INTEGER PRIMARY KEY,
    check_nonce BLOB    NOT NULL,
    check_ct    BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Drift credentials (the connection profile). Secrets live in `secrets`.
CREATE TABLE credentials (
    id                 TEXT    PRIMARY KEY,
    name               TEXT    NOT NULL,
    name_key           TEXT    NOT NULL UNIQUE,      -- lower-cased name: unique case-insensitively
    kind               TEXT    NOT NULL DEFAULT 'drift',
    description        TEXT,
    base_url           TEXT    NOT NULL,
    key_mask           TEXT    NOT NULL,
    rate_limit_per_min INTEGER NOT NULL,
    status             TEXT    NOT NULL DEFAULT 'unverified',
    tested_at          INTEGER,
    org_id             INTEGER,
    scopes             TEXT    NOT NULL DEFAULT '[]', -- JSON array of strings
    expires_at         INTEGER,
    last_error         TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

-- Encrypted secret fields: XChaCha20-Poly1305, AAD = owner id + field name.
CREATE TABLE secrets (
    owner_id    TEXT    NOT NULL,
    field       TEXT    NOT NULL,
    key_version INTEGER NOT NULL REFERENCES vault_keys(version),
    nonce       BLOB    NOT NULL,
    ciphertext  BLOB    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (owner_id, field)
);

-- Data sources: read streams from Drift with a credential.
CREATE TABLE sources (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    name_key      TEXT    NOT NULL UNIQUE,
    credential_id TEXT    REFERENCES credentials(id) ON DELETE SET NULL,
    streams       TEXT    NOT NULL DEFAULT '[]',
    config        TEXT    NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Data destinations: sinks (sqlite, postgres, files) or Drift itself (with a credential).
CREATE TABLE destinations (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    name_key      TEXT    NOT NULL UNIQUE,
    kind          TEXT    NOT NULL,
    credential_id TEXT    REFERENCES credentials(id) ON DELETE SET NULL,
    config        TEXT    NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Flows: a source's streams into a destination, once or on a schedule.
CREATE TABLE flows (
    id             TEXT    PRIMARY KEY,
    name           TEXT    NOT NULL,
    name_key       TEXT    NOT NULL UNIQUE,
    source_id      TEXT    REFERENCES sources(id) ON DELETE SET NULL,
    destination_id TEXT    REFERENCES destinations(id) ON DELETE SET NULL,
    credential_id  TEXT    REFERENCES credentials(id) ON DELETE SET NULL,
    mode           TEXT    NOT NULL DEFAULT 'incremental',
    streams        TEXT    NOT NULL DEFAULT '[]',
    schedule       TEXT,
    config         TEXT    NOT NULL DEFAULT '{}',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- Per-flow, per-stream sync state (cursor / watermark / checkpoint) as JSON.
CREATE TABLE stream_state (
    scope      TEXT    NOT NULL,   -- flow name, or another key chosen by the caller
    stream     TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, stream)
);

-- Run history.
CREATE TABLE runs (
    id          TEXT    PRIMARY KEY,
    credential  TEXT    NOT NULL,
    destination TEXT    NOT NULL,
    mode        TEXT    NOT NULL,
    streams     TEXT    NOT NULL DEFAULT '[]',
    flow        TEXT,
    status      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    summary     TEXT    NOT NULL DEFAULT '{}',
    error       TEXT
);
CREATE INDEX runs_by_start ON runs (started_at DESC);
"#;

/// Schema version 2: a credential may refresh its access token with an OAuth app (the client
/// id here; the client secret and refresh token are secrets, in `secrets`).
const V2: &str = r#"
ALTER TABLE credentials ADD COLUMN oauth_client_id TEXT;
"#;

/// Schema version 3: the records a sync run quarantined (they did not fit their stream's
/// types), for `driftbridge runs rejected` and the API; the sink keeps them too.
const V3: &str = r#"
CREATE TABLE run_rejected (
    run_id      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    stream      TEXT    NOT NULL,
    primary_key TEXT,
    reason      TEXT    NOT NULL,
    raw         TEXT    NOT NULL,
    rejected_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"#;

/// Schema version 4: the admin token of `serve` (its SHA-256, never the token) with a
/// generation that every rotation increases; sessions carry the generation they were opened
/// in, so a rotation ends them in every process using this store.
const V4: &str = r#"
CREATE TABLE admin_token (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    hash       TEXT    NOT NULL,   -- hex SHA-256 of the token
    generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
"#;

/// Schema version 5: the rate budget of each credential, shared by every process on this
/// data directory (issue 18; the rules: `drift_client::shared`). `key` is the credential id
/// (`/reports` appended for the reports lane); times are epoch microseconds.
const V5: &str = r#"
CREATE TABLE rate_budget (
    key               TEXT    PRIMARY KEY,
    tat_us            INTEGER NOT NULL DEFAULT 0,  -- GCRA theoretical arrival time
    paused_until_us   INTEGER NOT NULL DEFAULT 0,  -- server hint: no request before
    window_start_us   INTEGER NOT NULL DEFAULT 0,  -- minute of window_count
    window_count      INTEGER NOT NULL DEFAULT 0,  -- requests reported in that minute
    prev_window_count INTEGER NOT NULL DEFAULT 0,  -- requests reported in the minute before
    updated_at        INTEGER NOT NULL DEFAULT 0   -- epoch ms
);
"#;

/// Schema version 6: one run at a time per data source and per saved destination, across
/// processes (issue 18). `key` names what runs (`source:<id>`, `destination:<id>`, ...);
/// `run_id` is the run holding it. A row whose run's lock file (`runs/<id>.lock`) no live
/// process holds is stale and is taken over.
const V6: &str = r#"
CREATE TABLE run_locks (
    key      TEXT    PRIMARY KEY,
    run_id   TEXT    NOT NULL,
    taken_at INTEGER NOT NULL   -- epoch ms
);
"#;

/// Schema version 7 (`V7__notifications`): notification channels for alerts (issue 21).
/// The webhook URL is a secret, in `secrets` (owner = the channel id, field `webhook_url`);
/// `url_mask` is what is shown. `events` is a JSON array of event names.
const V7_NOTIFICATIONS: &str = r#"
CREATE TABLE notification_channels (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    name_key   TEXT    NOT NULL UNIQUE,
    format     TEXT    NOT NULL DEFAULT 'json',
    events     TEXT    NOT NULL DEFAULT '[]',
    url_mask   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,   -- epoch ms
    updated_at INTEGER NOT NULL    -- epoch ms
);
"#;

/// Schema version 8: the durable queue of Drift webhook events of real-time data sources
/// (issue 22). An event is inserted when `serve` accepts it (before the 200), its records
/// are written to the source's sink by a background worker, then `done_at` is set and the
/// body emptied; done rows are kept two hours for deduplication and the source's figures
/// (events in the last hour, lag). `dedup_key` is the event type + ids + timestamp, so a
/// duplicate delivery is refused by the unique index. Times are epoch milliseconds.
const V8_WEBHOOK_EVENTS: &str = r#"
CREATE TABLE webhook_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id   TEXT    NOT NULL,
    dedup_key   TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    body        TEXT    NOT NULL,   -- the event as received; '' once done
    event_at    INTEGER NOT NULL,   -- Drift's time of the event, else the receipt time
    received_at INTEGER NOT NULL,
    done_at     INTEGER,            -- its records committed to the sink (NULL: pending)
    lag_ms      INTEGER,            -- done_at - event_at
    UNIQUE (source_id, dedup_key)
);
CREATE INDEX webhook_events_pending ON webhook_events (source_id, done_at, id);
CREATE INDEX webhook_events_received ON webhook_events (source_id, received_at);
"#;

/// Schema version 9: what started each run (issue 21): `manual` (the CLI's `sync`, `push`,
/// `sources run`, `destinations run`; the API's and the web UI's run now) or `schedule` (the
/// scheduler). Rows written before this version have NULL, read as `manual`
/// ([`crate::runs::Trigger`]).
const V9_RUN_TRIGGER: &str = r#"
ALTER TABLE runs ADD COLUMN trigger TEXT;
"#;

/// All migrations, in order. `MIGRATIONS[i]` upgrades version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    V7_NOTIFICATIONS,
    V8_WEBHOOK_EVENTS,
    V9_RUN_TRIGGER,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the database up to [`SCHEMA_VERSION`]. Errors if the file is newer than this build.
/// The version is re-read inside each write transaction, so two processes opening a new
/// store at once apply each migration exactly once.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found,
                known: SCHEMA_VERSION,
            });
        }
        let Some(sql) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
        tracing::debug!(version = found + 1, "applied store migration");
    }
}
