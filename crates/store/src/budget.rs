//! Where a credential's rate budget is shared (DESIGN §4 "Rate limit", issue 18).
//!
//! The GCRA state of each credential's budget is one row that every process using the
//! credential reads and moves, through leases of about a second's worth of permits (the
//! rules: `drift_client::shared`):
//! - **one machine** (default): table `rate_budget` of this metadata store, one row per
//!   credential id, each change a short `BEGIN IMMEDIATE` transaction; every process on one
//!   data directory (CLI runs, `serve`, several `serve`s) draws from one budget;
//! - **many machines**: PostgreSQL ([`Store::use_shared_budget`], the CLI's `--shared-budget
//!   postgres://…` or `DRIFTBRIDGE_SHARED_BUDGET`), table `driftbridge_rate_budget` (created
//!   when missing), one row per credential *name and base URL* (credential ids differ between
//!   data directories, so give the credential the same name on every machine), each change a
//!   `SELECT … FOR UPDATE` transaction. Built with the `postgres` feature.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drift_client::shared::{
    BudgetRow, BudgetShare, BudgetUse as RowUse, GiveBack, Lease, LeaseAsk, SharedBudget,
    SharedBudgetError, SharedResult,
};
use drift_client::RateBudget;
use futures::future::BoxFuture;
use futures::FutureExt;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use secrecy::{ExposeSecret, SecretString};

use crate::{Credential, Result, Store, StoreError};

/// Environment variable naming the PostgreSQL database of shared budgets (the CLI's
/// `--shared-budget`).
pub const SHARED_BUDGET_ENV: &str = "DRIFTBRIDGE_SHARED_BUDGET";

/// A credential's budget use across every process, for display (`credentials show`, the
/// credential tile).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BudgetUse {
    /// Requests sent in the last minute by every process using the credential (reported
    /// once per lease, so up to about a second behind).
    pub requests_last_minute: u64,
    /// When a server hint (429, `Retry-After`, remaining 0) pauses the credential: until
    /// then, epoch ms.
    pub paused_until: Option<i64>,
}

impl From<RowUse> for BudgetUse {
    fn from(u: RowUse) -> Self {
        BudgetUse {
            requests_last_minute: u.requests_last_minute,
            paused_until: u.paused_until_us.map(|t| t.div_euclid(1000)),
        }
    }
}

/// Which backend a store's budgets use.
#[derive(Clone, Default)]
pub(crate) enum BudgetBackend {
    /// This store's SQLite file.
    #[default]
    Sqlite,
    /// The PostgreSQL database at this URL (it may hold a password). Read only with the
    /// `postgres` feature; without it the store refuses the URL when it is set.
    Postgres(#[cfg_attr(not(feature = "postgres"), allow(dead_code))] SecretString),
}

impl std::fmt::Debug for BudgetBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetBackend::Sqlite => f.write_str("Sqlite"),
            BudgetBackend::Postgres(_) => f.write_str("Postgres([redacted])"),
        }
    }
}

/// The backend and its connection, made at first use.
#[derive(Debug, Default)]
pub(crate) struct BudgetState {
    pub(crate) backend: BudgetBackend,
    shared: Option<Arc<dyn SharedBudget>>,
}

impl Store {
    /// Share this store's budgets through the PostgreSQL database at `url`
    /// (`postgres://` or `postgresql://`) instead of the store's SQLite file: processes on
    /// several machines then draw from one budget per credential. Nothing is connected
    /// until the first lease; an unreachable database is logged and each process then
    /// paces alone. Call it before [`Store::shared_budget`].
    ///
    /// Errors: [`StoreError::Invalid`] (field `shared_budget`) for another kind of URL, or
    /// when this build has no PostgreSQL support. The URL is never shown.
    pub fn use_shared_budget(&self, url: &str) -> Result<()> {
        let url = url.trim();
        let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !scheme_ok {
            return Err(StoreError::invalid(
                "shared_budget",
                "must be a PostgreSQL URL (postgres://user@host/db); leave it out to share \
                 budgets through the data directory",
            ));
        }
        if !cfg!(feature = "postgres") {
            return Err(StoreError::invalid(
                "shared_budget",
                "this build has no PostgreSQL support (store feature \"postgres\")",
            ));
        }
        let mut state = self.budget_state();
        *state = BudgetState {
            backend: BudgetBackend::Postgres(SecretString::from(url.to_string())),
            shared: None,
        };
        Ok(())
    }

    /// `"postgres"` when budgets are shared through PostgreSQL, else `"sqlite"`.
    pub fn shared_budget_kind(&self) -> &'static str {
        match self.budget_state().backend {
            BudgetBackend::Sqlite => "sqlite",
            BudgetBackend::Postgres(_) => "postgres",
        }
    }

    /// The rate budget of `credential` at `per_min` requests per minute, shared with every
    /// process that uses the credential through this store's backend (see the module
    /// docs). Give it to `ClientBuilder::rate_budget`. Unused permits go back when the
    /// last clone of the budget is dropped.
    ///
    /// Errors: [`StoreError::Invalid`] (field `rate_limit_per_min`) when `per_min` is 0.
    pub fn shared_budget(&self, credential: &Credential, per_min: u32) -> Result<RateBudget> {
        let (backend, key) = self.budget_backend(credential);
        RateBudget::shared(per_min, backend, key)
            .map_err(|e| StoreError::invalid("rate_limit_per_min", e.to_string()))
    }

    /// Where `credential`'s budget is shared, for `ClientBuilder::share_budget` (the
    /// client then makes the budget at its own rate and burst, as
    /// [`Store::shared_budget`] does).
    pub fn budget_share(&self, credential: &Credential) -> BudgetShare {
        let (backend, key) = self.budget_backend(credential);
        BudgetShare { backend, key }
    }

    /// `credential`'s budget use across every process: requests in the last minute and the
    /// server's pause, if one is in force.
    ///
    /// Errors: [`StoreError::Invalid`] (field `shared_budget`) when the backend cannot be
    /// read (the message names the backend, never its password).
    pub async fn budget_use(&self, credential: &Credential) -> Result<BudgetUse> {
        let (backend, key) = self.budget_backend(credential);
        let now_us = now_us();
        backend
            .usage(&key, now_us)
            .await
            .map(BudgetUse::from)
            .map_err(|e| StoreError::invalid("shared_budget", e.to_string()))
    }

    /// The backend (made at first use) and the row key of `credential`.
    fn budget_backend(&self, credential: &Credential) -> (Arc<dyn SharedBudget>, String) {
        let mut state = self.budget_state();
        let key = match &state.backend {
            BudgetBackend::Sqlite => credential.id.clone(),
            BudgetBackend::Postgres(_) => format!(
                "{}@{}",
                credential.name.to_lowercase(),
                credential.base_url.trim_end_matches('/')
            ),
        };
        let backend = match &state.shared {
            Some(b) => b.clone(),
            None => {
                let made: Arc<dyn SharedBudget> = match &state.backend {
                    BudgetBackend::Sqlite => Arc::new(SqliteBudget::new(self.db_path())),
                    #[cfg(feature = "postgres")]
                    BudgetBackend::Postgres(url) => {
                        Arc::new(crate::budget_pg::PostgresBudget::new(url.clone()))
                    }
                    #[cfg(not(feature = "postgres"))]
                    BudgetBackend::Postgres(_) => Arc::new(SqliteBudget::new(self.db_path())),
                };
                state.shared = Some(made.clone());
                made
            }
        };
        (backend, key)
    }

    pub(crate) fn budget_state(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.budget.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Now, microseconds since the Unix epoch.
fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Shared budgets in the store's SQLite file (table `rate_budget`). Each change is a short
/// `BEGIN IMMEDIATE` transaction on a connection of its own, run on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct SqliteBudget {
    inner: Arc<SqliteInner>,
}

#[derive(Debug)]
struct SqliteInner {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
}

impl SqliteBudget {
    /// Budgets in the metadata database at `path` (already migrated by [`Store::open`]).
    pub fn new(path: PathBuf) -> Self {
        SqliteBudget {
            inner: Arc::new(SqliteInner {
                path,
                conn: Mutex::new(None),
            }),
        }
    }
}

impl SqliteInner {
    /// Applies `f` to the row of `key` in one IMMEDIATE transaction (the row is made when
    /// missing). A failed connection is dropped and opened again next time.
    fn with_row<T>(&self, key: &str, f: impl FnOnce(&mut BudgetRow) -> T) -> SharedResult<T> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let result = self.change(&mut guard, key, f);
        if result.is_err() {
            *guard = None;
        }
        result.map_err(|e| SharedBudgetError(format!("metadata store: {e}")))
    }

    fn change<T>(
        &self,
        conn: &mut Option<Connection>,
        key: &str,
        f: impl FnOnce(&mut BudgetRow) -> T,
    ) -> rusqlite::Result<T> {
        let conn = self.connect(conn)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut row = read_row(&tx, key)?.unwrap_or_default();
        let out = f(&mut row);
        tx.execute(
            "INSERT INTO rate_budget (key, tat_us, paused_until_us, window_start_us, \
             window_count, prev_window_count, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (key) DO UPDATE SET tat_us = ?2, paused_until_us = ?3, \
             window_start_us = ?4, window_count = ?5, prev_window_count = ?6, updated_at = ?7",
            rusqlite::params![
                key,
                row.tat_us,
                row.paused_until_us,
                row.window_start_us,
                row.window_count,
                row.prev_window_count,
                crate::now_ms()
            ],
        )?;
        tx.commit()?;
        Ok(out)
    }

    fn read(&self, key: &str) -> SharedResult<Option<BudgetRow>> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let result = self.connect(&mut guard).and_then(|c| read_row(c, key));
        if result.is_err() {
            *guard = None;
        }
        result.map_err(|e| SharedBudgetError(format!("metadata store: {e}")))
    }

    fn connect<'a>(
        &self,
        conn: &'a mut Option<Connection>,
    ) -> rusqlite::Result<&'a mut Connection> {
        if conn.is_none() {
            let c = Connection::open(&self.path)?;
            c.busy_timeout(Duration::from_secs(5))?;
            *conn = Some(c);
        }
        conn.as_mut().ok_or(rusqlite::Error::InvalidQuery)
    }
}

fn read_row(conn: &Connection, key: &str) -> rusqlite::Result<Option<BudgetRow>> {
    conn.query_row(
        "SELECT tat_us, paused_until_us, window_start_us, window_count, prev_window_count \
         FROM rate_budget WHERE key = ?1",
        [key],
        |r| {
            Ok(BudgetRow {
                tat_us: r.get(0)?,
                paused_until_us: r.get(1)?,
                window_start_us: r.get(2)?,
                window_count: r.get(3)?,
                prev_window_count: r.get(4)?,
            })
        },
    )
    .optional()
}

impl SqliteBudget {
    fn blocking<T: Send + 'static>(
        &self,
        key: &str,
        f: impl FnOnce(&SqliteInner, &str) -> SharedResult<T> + Send + 'static,
    ) -> BoxFuture<'static, SharedResult<T>> {
        let inner = self.inner.clone();
        let key = key.to_string();
        async move {
            tokio::task::spawn_blocking(move || f(&inner, &key))
                .await
                .unwrap_or_else(|e| Err(SharedBudgetError(format!("metadata store: {e}"))))
        }
        .boxed()
    }
}

impl SharedBudget for SqliteBudget {
    fn lease(&self, key: &str, ask: LeaseAsk) -> BoxFuture<'static, SharedResult<Lease>> {
        self.blocking(key, move |db, key| db.with_row(key, |row| row.lease(&ask)))
    }

    fn give_back(&self, key: &str, back: GiveBack) -> BoxFuture<'static, SharedResult<()>> {
        self.blocking(key, move |db, key| {
            db.with_row(key, |row| row.give_back(&back))
        })
    }

    fn pause(&self, key: &str, until_us: i64) -> BoxFuture<'static, SharedResult<()>> {
        self.blocking(key, move |db, key| {
            db.with_row(key, |row| row.pause(until_us))
        })
    }

    fn usage(&self, key: &str, now_us: i64) -> BoxFuture<'static, SharedResult<RowUse>> {
        self.blocking(key, move |db, key| {
            Ok(db.read(key)?.unwrap_or_default().usage(now_us))
        })
    }

    /// In place: one short transaction.
    fn give_back_now(&self, key: &str, back: GiveBack) {
        if let Err(e) = self.inner.with_row(key, |row| row.give_back(&back)) {
            tracing::debug!(error = %e, "could not give back unused rate-budget permits");
        }
    }
}

/// The URL for a log line or error: scheme, host and database, never the user or password.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn shown_url(url: &SecretString) -> String {
    match url::Url::parse(url.expose_secret()) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "the PostgreSQL URL".to_string(),
    }
}
