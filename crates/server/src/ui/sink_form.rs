//! The structured sink form of the data source pages: the kind (SQLite, PostgreSQL, JSON
//! Lines, CSV, Parquet), then a path, or PostgreSQL's host, port, database, schema, user and
//! password (write-only: never rendered; left empty on the Edit page it keeps the stored
//! one), and a Test button that runs the sink check ([`flows::sink_test::test_sink`]).

use super::{field, filters, render};
use crate::problem::{ApiError, FieldError};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::{Form, Router};
use flows::sink_secret::MASK;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/ui/sinks/test", post(test))
}

/// What the sink form shows (never a password).
pub(crate) struct SinkForm {
    pub kind: String,
    pub path: String,
    pub host: String,
    pub port: String,
    pub database: String,
    pub schema: String,
    pub user: String,
    /// A password is stored (the Edit page says that an empty field keeps it).
    pub has_password: bool,
}

impl SinkForm {
    /// The form of sink `sink` as answers show it (`postgres://user:••••@host:5432/db?schema=s`).
    pub(crate) fn of(sink: &str) -> SinkForm {
        let mut form = SinkForm {
            kind: "sqlite".into(),
            path: String::new(),
            host: String::new(),
            port: "5432".into(),
            database: String::new(),
            schema: String::new(),
            user: String::new(),
            has_password: false,
        };
        if let Some((kind, rest)) = sink.split_once(':') {
            if matches!(kind, "sqlite" | "jsonl" | "csv" | "parquet") {
                form.kind = kind.into();
                form.path = rest.into();
                return form;
            }
        }
        if sink.starts_with("postgres://") || sink.starts_with("postgresql://") {
            form.kind = "postgres".into();
            form.has_password = sink.contains(MASK);
            if let Ok(url) = url::Url::parse(&sink.replace(MASK, "x")) {
                form.host = url.host_str().unwrap_or_default().to_string();
                form.port = url
                    .port()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "5432".into());
                form.database = url.path().trim_start_matches('/').to_string();
                form.user = decode(url.username());
                form.schema = url
                    .query_pairs()
                    .find(|(k, _)| k == "schema")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
            }
        }
        form
    }

    pub(crate) fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Percent-encode everything but unreserved characters (user names, passwords, database
/// names in a URL).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The sink URI of the form's fields (`sink_kind`, `sink_path`, `pg_host`, `pg_port`,
/// `pg_database`, `pg_schema`, `pg_user`, `pg_password`); `None` when the form has no
/// `sink_kind` (a plain `sink` field is used as it is). An empty password with
/// `keep_password` keeps the stored one (written as the mask, which the update accepts when
/// nothing else changed). Errors name the field.
pub(crate) fn compose(
    pairs: &[(String, String)],
    keep_password: bool,
) -> Option<Result<String, FieldError>> {
    let kind = field(pairs, "sink_kind");
    if kind.is_empty() {
        return None;
    }
    let missing = |what: &str| FieldError {
        field: "sink".into(),
        message: format!("give the sink's {what}"),
    };
    let value = |name: &str| field(pairs, name).trim().to_string();
    Some(match kind.as_str() {
        "sqlite" | "jsonl" | "csv" | "parquet" => {
            let path = value("sink_path");
            if path.is_empty() {
                Err(missing(if kind == "sqlite" {
                    "database file path"
                } else {
                    "directory"
                }))
            } else {
                Ok(format!("{kind}:{path}"))
            }
        }
        "postgres" => {
            let (host, database, user) = (value("pg_host"), value("pg_database"), value("pg_user"));
            let port = value("pg_port");
            let password = field(pairs, "pg_password");
            if host.is_empty() {
                return Some(Err(missing("host")));
            }
            if database.is_empty() {
                return Some(Err(missing("database")));
            }
            if !port.is_empty() && port.parse::<u16>().is_err() {
                return Some(Err(FieldError {
                    field: "sink".into(),
                    message: format!("port \"{port}\" is not a port number; use e.g. 5432"),
                }));
            }
            let secret = if !password.is_empty() {
                format!(":{}", encode(&password))
            } else if keep_password {
                format!(":{MASK}")
            } else {
                String::new()
            };
            let login = if user.is_empty() {
                String::new()
            } else {
                format!("{}{secret}@", encode(&user))
            };
            let port = if port.is_empty() {
                String::new()
            } else {
                format!(":{port}")
            };
            let schema = value("pg_schema");
            let schema = if schema.is_empty() {
                String::new()
            } else {
                format!("?schema={}", encode(&schema))
            };
            Ok(format!(
                "postgres://{login}{host}{port}/{}{schema}",
                encode(&database)
            ))
        }
        other => Err(FieldError {
            field: "sink".into(),
            message: format!(
                "unknown sink kind \"{other}\"; pick SQLite, PostgreSQL, JSON Lines, CSV or Parquet"
            ),
        }),
    })
}

#[derive(Template)]
#[template(path = "sink_tested.html")]
struct Tested {
    ok: bool,
    message: String,
}

/// The Test button: compose the sink from the form, check it, say what was found.
async fn test(
    State(state): State<AppState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let source = field(&pairs, "source_id");
    let sink = match compose(&pairs, !source.is_empty()) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            return Ok(render(&Tested {
                ok: false,
                message: e.message,
            }))
        }
        None => field(&pairs, "sink"),
    };
    let result = match crate::api::sinks::with_stored_password(
        &state,
        &sink,
        (!source.is_empty()).then_some(source.as_str()),
    ) {
        Ok(sink) => flows::sink_test::test_sink(&state.store, &sink)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    Ok(render(&match result {
        Ok(described) => Tested {
            ok: true,
            message: format!("The sink {described} can be opened and written."),
        },
        Err(ApiError::Validation(errors)) => Tested {
            ok: false,
            message: errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; "),
        },
        Err(ApiError::Unavailable(message)) => Tested { ok: false, message },
        Err(e) => return Err(e),
    }))
}
