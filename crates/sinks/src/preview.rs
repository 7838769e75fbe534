//! The last rows a database sink holds for a stream (the web UI's data preview): the most
//! recently extracted rows of the stream's table, newest first, every value as text. Files
//! sinks are not previewed (their rows are read with the tools of each format).

use crate::SinkSpec;
use sync_core::{ErrorKind, RunError};

/// Rows of a preview: column names and, per row, each column's value as text (`None` for
/// SQL NULL). Long values are cut at [`MAX_VALUE_CHARS`] characters with `…`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Preview {
    /// Column names in table order, `_raw` left out (the whole record, too long to show).
    pub columns: Vec<String>,
    /// Rows, newest first (by `_extracted_at`).
    pub rows: Vec<Vec<Option<String>>>,
}

/// Longest value shown, characters.
pub const MAX_VALUE_CHARS: usize = 200;

fn cut(text: String) -> String {
    if text.chars().count() <= MAX_VALUE_CHARS {
        return text;
    }
    let mut out: String = text.chars().take(MAX_VALUE_CHARS).collect();
    out.push('…');
    out
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn sink_error(message: impl Into<String>) -> RunError {
    RunError::new(ErrorKind::Sink, None, message.into())
}

/// The last `limit` rows of `stream` in sink `spec` (SQLite or PostgreSQL). A table that
/// does not exist yet (no run wrote the stream) gives an empty preview.
///
/// Errors (kind `Sink`): a file sink (nothing to preview), the database cannot be opened or
/// read; messages never hold a password.
pub async fn last_rows(spec: &SinkSpec, stream: &str, limit: usize) -> Result<Preview, RunError> {
    match spec {
        SinkSpec::Sqlite(path) => {
            let path = path.clone();
            let stream = stream.to_string();
            tokio::task::spawn_blocking(move || sqlite_rows(&path, &stream, limit))
                .await
                .map_err(|e| sink_error(format!("preview: {e}")))?
        }
        #[cfg(feature = "postgres")]
        SinkSpec::Postgres(url) => postgres_rows(spec, url, stream, limit).await,
        other => Err(sink_error(format!(
            "{} is not a database: previews are for SQLite and PostgreSQL sinks",
            other.describe()
        ))),
    }
}

fn sqlite_rows(path: &std::path::Path, stream: &str, limit: usize) -> Result<Preview, RunError> {
    if !path.exists() {
        return Ok(Preview::default());
    }
    let e = |what: &str, err: rusqlite::Error| sink_error(format!("sqlite: {what}: {err}"));
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| e("open", err))?;
    let exists: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [stream],
            |r| r.get(0),
        )
        .map_err(|err| e("read the catalog", err))?;
    if exists == 0 {
        return Ok(Preview::default());
    }
    let mut stmt = conn
        .prepare(&format!(
            "SELECT * FROM {} ORDER BY \"_extracted_at\" DESC LIMIT ?1",
            quote(stream)
        ))
        .map_err(|err| e("read the table", err))?;
    let names: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let shown: Vec<usize> = (0..names.len()).filter(|i| names[*i] != "_raw").collect();
    let limit = i64::try_from(limit).unwrap_or(20);
    let rows = stmt
        .query_map([limit], |row| {
            let mut values = Vec::with_capacity(shown.len());
            for i in &shown {
                let value: rusqlite::types::Value = row.get(*i)?;
                values.push(match value {
                    rusqlite::types::Value::Null => None,
                    rusqlite::types::Value::Integer(n) => Some(n.to_string()),
                    rusqlite::types::Value::Real(x) => Some(x.to_string()),
                    rusqlite::types::Value::Text(t) => Some(cut(t)),
                    rusqlite::types::Value::Blob(b) => Some(format!("({} bytes)", b.len())),
                });
            }
            Ok(values)
        })
        .map_err(|err| e("read the rows", err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| e("read a row", err))?;
    Ok(Preview {
        columns: shown.iter().map(|i| names[*i].clone()).collect(),
        rows,
    })
}

#[cfg(feature = "postgres")]
async fn postgres_rows(
    spec: &SinkSpec,
    url: &str,
    stream: &str,
    limit: usize,
) -> Result<Preview, RunError> {
    let described = spec.describe();
    let (conn_url, schema) = crate::postgres::split_schema_pub(url);
    let schema = schema.unwrap_or_else(|| "public".to_string());
    let mut config: tokio_postgres::Config = conn_url
        .parse()
        .map_err(|e| sink_error(format!("{described}: not a valid connection URL ({e})")))?;
    config.connect_timeout(std::time::Duration::from_secs(10));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| sink_error(format!("{described}: cannot connect: {e}")))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let table = format!("{}.{}", quote(&schema), quote(stream));
    let exists = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(|e| sink_error(format!("{described}: read the catalog: {e}")))?;
    if !exists.get::<_, bool>(0) {
        return Ok(Preview::default());
    }
    let limit = i64::try_from(limit).unwrap_or(20);
    // Every column as text, `_raw` left out: `row_to_json` keeps the order and the names.
    let rows = client
        .query(
            &format!(
                "SELECT (row_to_json(t)::jsonb - '_raw')::text FROM (SELECT * FROM {table} ORDER BY \"_extracted_at\" DESC LIMIT $1) t"
            ),
            &[&limit],
        )
        .await
        .map_err(|e| sink_error(format!("{described}: read the rows: {e}")))?;
    let columns_rows = client
        .query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name <> '_raw' ORDER BY ordinal_position",
            &[&schema, &stream],
        )
        .await
        .map_err(|e| sink_error(format!("{described}: read the columns: {e}")))?;
    let columns: Vec<String> = columns_rows.iter().map(|r| r.get(0)).collect();
    let mut out = Vec::new();
    for row in rows {
        let text: String = row.get(0);
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap_or_default();
        out.push(
            columns
                .iter()
                .map(|c| match object.get(c) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(cut(s.clone())),
                    Some(v) => Some(cut(v.to_string())),
                })
                .collect(),
        );
    }
    Ok(Preview { columns, rows: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_newest_rows_come_first_without_raw_and_a_missing_table_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER, name TEXT, _extracted_at TEXT, _raw TEXT);
             INSERT INTO users VALUES (1, 'old', '2026-01-01T00:00:00Z', '{}');
             INSERT INTO users VALUES (2, NULL, '2026-02-01T00:00:00Z', '{}');",
        )
        .unwrap();
        drop(conn);
        let spec = SinkSpec::Sqlite(path.clone());
        let preview = last_rows(&spec, "users", 20).await.unwrap();
        assert_eq!(preview.columns, ["id", "name", "_extracted_at"]);
        assert_eq!(preview.rows[0][0].as_deref(), Some("2"));
        assert_eq!(preview.rows[0][1], None);
        assert_eq!(preview.rows.len(), 2);
        let none = last_rows(&spec, "accounts", 20).await.unwrap();
        assert!(none.rows.is_empty() && none.columns.is_empty());
        let files = last_rows(&SinkSpec::Jsonl(dir.path().into()), "users", 20).await;
        assert!(files.unwrap_err().to_string().contains("not a database"));
    }
}
