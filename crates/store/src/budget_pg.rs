//! Shared budgets in PostgreSQL (feature `postgres`): table `driftbridge_rate_budget`, one
//! row per key, each change one transaction that locks the row (`SELECT … FOR UPDATE`).
//! One connection per process, made at first use and again after a failure.

use std::sync::Arc;

use drift_client::shared::{
    BudgetRow, BudgetUse, GiveBack, Lease, LeaseAsk, SharedBudget, SharedBudgetError, SharedResult,
};
use futures::future::BoxFuture;
use futures::FutureExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::budget::shown_url;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS driftbridge_rate_budget (
    key               TEXT   PRIMARY KEY,
    tat_us            BIGINT NOT NULL DEFAULT 0,
    paused_until_us   BIGINT NOT NULL DEFAULT 0,
    window_start_us   BIGINT NOT NULL DEFAULT 0,
    window_count      BIGINT NOT NULL DEFAULT 0,
    prev_window_count BIGINT NOT NULL DEFAULT 0,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// Shared budgets in a PostgreSQL database. `Debug` shows the host, never the password.
#[derive(Clone)]
pub struct PostgresBudget {
    inner: Arc<Inner>,
}

struct Inner {
    url: SecretString,
    client: Mutex<Option<tokio_postgres::Client>>,
}

impl std::fmt::Debug for PostgresBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBudget")
            .field("database", &shown_url(&self.inner.url))
            .finish()
    }
}

impl PostgresBudget {
    /// Budgets in the database at `url` (`postgres://…`); nothing is connected yet.
    pub fn new(url: SecretString) -> Self {
        PostgresBudget {
            inner: Arc::new(Inner {
                url,
                client: Mutex::new(None),
            }),
        }
    }

    fn run<T: Send + 'static>(
        &self,
        key: &str,
        f: impl FnOnce(&mut BudgetRow) -> T + Send + 'static,
    ) -> BoxFuture<'static, SharedResult<T>> {
        let inner = self.inner.clone();
        let key = key.to_string();
        async move { inner.with_row(&key, f).await }.boxed()
    }
}

impl Inner {
    fn error(&self, e: &tokio_postgres::Error) -> SharedBudgetError {
        SharedBudgetError(format!("PostgreSQL at {}: {e}", shown_url(&self.url)))
    }

    async fn connected<'a>(
        &self,
        slot: &'a mut Option<tokio_postgres::Client>,
    ) -> Result<&'a mut tokio_postgres::Client, tokio_postgres::Error> {
        let client = match slot.take() {
            Some(c) if !c.is_closed() => c,
            _ => self.connect().await?,
        };
        Ok(slot.insert(client))
    }

    async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(self.url.expose_secret(), tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "shared budget connection ended");
            }
        });
        if let Err(e) = client.batch_execute(CREATE).await {
            // Two processes creating the table at once: one wins, the other may see a
            // duplicate type or table; the table is there either way.
            let raced = e.code().is_some_and(|c| {
                *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                    || *c == tokio_postgres::error::SqlState::DUPLICATE_TABLE
            });
            if !raced {
                return Err(e);
            }
        }
        Ok(client)
    }

    async fn with_row<T>(&self, key: &str, f: impl FnOnce(&mut BudgetRow) -> T) -> SharedResult<T> {
        let mut slot = self.client.lock().await;
        let result = self.change(&mut slot, key, f).await;
        if result.is_err() {
            *slot = None;
        }
        result.map_err(|e| self.error(&e))
    }

    async fn change<T>(
        &self,
        slot: &mut Option<tokio_postgres::Client>,
        key: &str,
        f: impl FnOnce(&mut BudgetRow) -> T,
    ) -> Result<T, tokio_postgres::Error> {
        let client = self.connected(slot).await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO driftbridge_rate_budget (key) VALUES ($1) ON CONFLICT (key) DO NOTHING",
            &[&key],
        )
        .await?;
        let r = tx
            .query_one(
                "SELECT tat_us, paused_until_us, window_start_us, window_count, \
                 prev_window_count FROM driftbridge_rate_budget WHERE key = $1 FOR UPDATE",
                &[&key],
            )
            .await?;
        let mut row = BudgetRow {
            tat_us: r.get(0),
            paused_until_us: r.get(1),
            window_start_us: r.get(2),
            window_count: r.get(3),
            prev_window_count: r.get(4),
        };
        let out = f(&mut row);
        tx.execute(
            "UPDATE driftbridge_rate_budget SET tat_us = $2, paused_until_us = $3, \
             window_start_us = $4, window_count = $5, prev_window_count = $6, \
             updated_at = now() WHERE key = $1",
            &[
                &key,
                &row.tat_us,
                &row.paused_until_us,
                &row.window_start_us,
                &row.window_count,
                &row.prev_window_count,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn read(&self, key: &str) -> SharedResult<BudgetRow> {
        let mut slot = self.client.lock().await;
        let result = async {
            let client = self.connected(&mut slot).await?;
            let row = client
                .query_opt(
                    "SELECT tat_us, paused_until_us, window_start_us, window_count, \
                     prev_window_count FROM driftbridge_rate_budget WHERE key = $1",
                    &[&key],
                )
                .await?;
            Ok::<_, tokio_postgres::Error>(row.map(|r| BudgetRow {
                tat_us: r.get(0),
                paused_until_us: r.get(1),
                window_start_us: r.get(2),
                window_count: r.get(3),
                prev_window_count: r.get(4),
            }))
        }
        .await;
        if result.is_err() {
            *slot = None;
        }
        result
            .map(Option::unwrap_or_default)
            .map_err(|e| self.error(&e))
    }
}

impl SharedBudget for PostgresBudget {
    fn lease(&self, key: &str, ask: LeaseAsk) -> BoxFuture<'static, SharedResult<Lease>> {
        self.run(key, move |row| row.lease(&ask))
    }

    fn give_back(&self, key: &str, back: GiveBack) -> BoxFuture<'static, SharedResult<()>> {
        self.run(key, move |row| row.give_back(&back))
    }

    fn pause(&self, key: &str, until_us: i64) -> BoxFuture<'static, SharedResult<()>> {
        self.run(key, move |row| row.pause(until_us))
    }

    fn usage(&self, key: &str, now_us: i64) -> BoxFuture<'static, SharedResult<BudgetUse>> {
        let inner = self.inner.clone();
        let key = key.to_string();
        async move { Ok(inner.read(&key).await?.usage(now_us)) }.boxed()
    }
}
