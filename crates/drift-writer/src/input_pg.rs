//! PostgreSQL input (`--from postgres://user@host/db?table=T` or `?query=SELECT...`, cargo
//! feature `postgres`), read in a read-only session. Rows stream from the server (`query_raw`, no full result in memory)
//! on a thread of its own, through the same bounded channel as the SQLite reader.

use std::sync::mpsc::{channel, sync_channel, SyncSender};

use futures::StreamExt;
use serde_json::{Map, Number, Value};
use tokio_postgres::types::Type;
use tokio_postgres::{Column, NoTls, Row as PgRow};

use crate::input::{ChannelRows, Input, InputError, Row, RowResult, SqlSource};

fn whole(message: String) -> InputError {
    InputError::whole(message)
}

/// What went wrong, as the server said it: its message, detail and hint for an error the
/// server reported (`relation "t" does not exist`), else the client error and its causes
/// (`error connecting to server: Connection refused`). tokio-postgres prints only
/// `db error` for the former. Neither holds the connection URL, so no password.
fn pg_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = db.message().to_string();
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(&format!(": {c_text}"));
        }
        cause = c.source();
    }
    text
}

/// `"a"."b"` for `a.b`, `"t"` for `t`.
fn quote_path(table: &str) -> String {
    table
        .split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

/// Column types this reader converts; anything else must be cast in the query.
fn supported(t: &Type) -> bool {
    [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::OID,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::NAME,
        Type::UNKNOWN,
        Type::JSON,
        Type::JSONB,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::DATE,
    ]
    .contains(t)
}

fn check_types(columns: &[Column]) -> Result<(), String> {
    match columns.iter().find(|c| !supported(c.type_())) {
        None => Ok(()),
        Some(c) => Err(format!(
            "column {} has type {}; cast it in the query (e.g. {}::text or {}::float8)",
            c.name(),
            c.type_(),
            c.name(),
            c.name()
        )),
    }
}

fn value(row: &PgRow, i: usize, t: &Type) -> Result<Value, tokio_postgres::Error> {
    let num = |f: Option<f64>| {
        f.and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number)
    };
    Ok(match *t {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map_or(Value::Null, Value::Bool),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map_or(Value::Null, Value::from),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map_or(Value::Null, Value::from),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)?
            .map_or(Value::Null, Value::from),
        Type::OID => row
            .try_get::<_, Option<u32>>(i)?
            .map_or(Value::Null, Value::from),
        Type::FLOAT4 => num(row.try_get::<_, Option<f32>>(i)?.map(f64::from)),
        Type::FLOAT8 => num(row.try_get::<_, Option<f64>>(i)?),
        Type::JSON | Type::JSONB => row.try_get::<_, Option<Value>>(i)?.unwrap_or(Value::Null),
        Type::TIMESTAMPTZ => row
            .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)?
            .map_or(Value::Null, |d| Value::String(d.to_rfc3339())),
        Type::TIMESTAMP => row
            .try_get::<_, Option<chrono::NaiveDateTime>>(i)?
            .map_or(Value::Null, |d| Value::String(d.and_utc().to_rfc3339())),
        Type::DATE => row
            .try_get::<_, Option<chrono::NaiveDate>>(i)?
            .map_or(Value::Null, |d| Value::String(d.to_string())),
        _ => row
            .try_get::<_, Option<String>>(i)?
            .map_or(Value::Null, Value::String),
    })
}

/// Opens a query on the server; errors (connection, SQL, column types) are returned before
/// any row is read. The connection URL never appears in an error.
pub(crate) fn open(url: &str, source: &SqlSource) -> Result<Input, InputError> {
    let sql = match source {
        SqlSource::Table(t) => format!("SELECT * FROM {}", quote_path(t)),
        SqlSource::Query(q) => q.clone(),
    };
    let url = url.to_string();
    let (tx, rx) = sync_channel::<RowResult>(256);
    let (ready_tx, ready_rx) = channel::<Result<Vec<String>, String>>();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("cannot start a runtime: {e}")));
                return;
            }
        };
        runtime.block_on(stream(&url, &sql, tx, ready_tx));
    });
    let columns = ready_rx
        .recv()
        .map_err(|_| whole("--from postgres: the reader stopped".into()))?
        .map_err(|e| whole(format!("--from postgres: {e}")))?;
    Ok(Input {
        rows: Box::new(ChannelRows(rx)),
        is_results: false,
        columns: Some(columns),
    })
}

async fn stream(
    url: &str,
    sql: &str,
    tx: SyncSender<RowResult>,
    ready: std::sync::mpsc::Sender<Result<Vec<String>, String>>,
) {
    let (client, conn) = match tokio_postgres::connect(url, NoTls).await {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "cannot connect ({}); check the host, port, database, user and password",
                pg_text(&e)
            )));
            return;
        }
    };
    tokio::spawn(conn);
    // `push` only reads its input: a `?query=` that writes (`DELETE ... RETURNING`) fails
    // instead of changing the user's data, even with --dry-run.
    if let Err(e) = client
        .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .await
    {
        let _ = ready.send(Err(pg_text(&e)));
        return;
    }
    let stmt = match client.prepare(sql).await {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(pg_text(&e)));
            return;
        }
    };
    if let Err(e) = check_types(stmt.columns()) {
        let _ = ready.send(Err(e));
        return;
    }
    let columns: Vec<(String, Type)> = stmt
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().clone()))
        .collect();
    let rows = match client.query_raw(&stmt, std::iter::empty::<i32>()).await {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(format!("the query failed: {}", pg_text(&e))));
            return;
        }
    };
    let mut rows = std::pin::pin!(rows);
    // An error before the first row (a write refused by the read-only session, `1/0` in the
    // select list) fails the setup, like a syntax error: nothing was read, nothing to resume.
    let mut first = Some(rows.next().await);
    if let Some(Some(Err(e))) = &first {
        let _ = ready.send(Err(format!("the query failed: {}", pg_text(e))));
        return;
    }
    let _ = ready.send(Ok(columns.iter().map(|(n, _)| n.clone()).collect()));
    let mut number = 0u64;
    loop {
        let next = match first.take() {
            Some(row) => row,
            None => rows.next().await,
        };
        let Some(row) = next else { break };
        number += 1;
        let item = row
            .and_then(|r| {
                let mut fields = Map::new();
                for (i, (name, t)) in columns.iter().enumerate() {
                    fields.insert(name.clone(), value(&r, i, t)?);
                }
                Ok(fields)
            })
            .map(|fields| Row {
                number,
                fields,
                prior: None,
            })
            .map_err(|e| {
                whole(format!(
                    "reading the query failed at row {number}: {}",
                    pg_text(&e)
                ))
            });
        let stop = item.is_err();
        if tx.send(item).is_err() || stop {
            break;
        }
    }
}
