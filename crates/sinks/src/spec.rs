//! Parsing `--destination` values and opening the sink they name.

use crate::sqlite::SqliteSink;
use std::path::PathBuf;
use sync_core::{ErrorKind, RunError, Sink};

/// A sink named on the command line (DESIGN.md §6):
/// `sqlite:PATH`, `postgres://...`, `jsonl:DIR`, `csv:DIR`, `parquet:DIR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkSpec {
    /// SQLite database file (created if missing, with its missing parent directories).
    Sqlite(PathBuf),
    /// PostgreSQL connection URL (may hold a password: never printed, see [`Self::describe`]).
    Postgres(String),
    /// Directory of JSON Lines files, one per stream.
    Jsonl(PathBuf),
    /// Directory of CSV files, one per stream.
    Csv(PathBuf),
    /// Directory of Parquet files, one per stream.
    Parquet(PathBuf),
}

impl std::str::FromStr for SinkSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let path = |rest: &str, kind: &str| {
            if rest.is_empty() {
                Err(format!(
                    "destination `{kind}:` needs a path, e.g. `{kind}:./out`"
                ))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres(s.to_owned()));
        }
        match s.split_once(':') {
            Some(("sqlite", rest)) => path(rest, "sqlite").map(Self::Sqlite),
            Some(("jsonl", rest)) => path(rest, "jsonl").map(Self::Jsonl),
            Some(("csv", rest)) => path(rest, "csv").map(Self::Csv),
            Some(("parquet", rest)) => path(rest, "parquet").map(Self::Parquet),
            _ => Err(format!(
                "unknown destination `{s}`: use sqlite:PATH, postgres://..., jsonl:DIR, csv:DIR or parquet:DIR"
            )),
        }
    }
}

impl SinkSpec {
    /// Printable form without secrets (a PostgreSQL password is masked).
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite:{}", p.display()),
            Self::Postgres(url) => mask_password(url),
            Self::Jsonl(p) => format!("jsonl:{}", p.display()),
            Self::Csv(p) => format!("csv:{}", p.display()),
            Self::Parquet(p) => format!("parquet:{}", p.display()),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
            Self::Jsonl(_) => "jsonl",
            Self::Csv(_) => "csv",
            Self::Parquet(_) => "parquet",
        }
    }
}

fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:****@{host}")
        }
        _ => url.to_owned(),
    }
}

/// How a sink applies what it is given, beyond where it writes. `Default`: soft
/// deletes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Databases (SQLite, PostgreSQL): a tombstone (a record deleted in Drift) DELETEs its row
    /// instead of marking it `_deleted = true` (the default, soft deletes, which keeps the
    /// row's last data). File sinks cannot delete what they have published: they
    /// write the tombstone either way.
    pub hard_deletes: bool,
    /// Databases: what a key of a flattened object (contacts' attributes) without a column
    /// does ([`crate::SchemaContract`]; default `evolve`: a new nullable column). File sinks
    /// keep new keys in `_raw` whatever the contract (their columns are fixed per file).
    pub schema_contract: crate::SchemaContract,
    /// SQLite and PostgreSQL: keep every version of a record (history mode: `_valid_from`,
    /// `_valid_to`, `_active`; see the sinks' module docs). File sinks are append-only:
    /// every version is a line already, so they ignore it.
    pub history: bool,
}

/// Open the sink `spec` names, with soft deletes (see [`open_with`]).
///
/// Errors: the SQLite file cannot be opened (kind `Sink`), or the kind is not built
/// into this binary (kind `Failed`, naming the cargo feature to enable).
pub fn open(spec: &SinkSpec) -> Result<Box<dyn Sink>, RunError> {
    open_with(spec, OpenOptions::default())
}

/// Open the sink `spec` names with `options` (e.g. hard deletes). Same errors as
/// [`open`].
pub fn open_with(spec: &SinkSpec, options: OpenOptions) -> Result<Box<dyn Sink>, RunError> {
    match spec {
        SinkSpec::Sqlite(path) => {
            Ok(Box::new(SqliteSink::open_with(path, options)?))
        }
        SinkSpec::Jsonl(dir) => Ok(Box::new(crate::JsonlSink::open(dir))),
        SinkSpec::Csv(dir) => Ok(Box::new(crate::CsvSink::open(dir))),
        #[cfg(feature = "postgres")]
        SinkSpec::Postgres(url) => Ok(Box::new(crate::PostgresSink::open_with(
            url, options,
        )?)),
        #[cfg(feature = "parquet")]
        SinkSpec::Parquet(dir) => Ok(Box::new(crate::ParquetSink::open(dir))),
        #[allow(unreachable_patterns)]
        other => Err(RunError::new(
            ErrorKind::Failed,
            None,
            format!(
                "destination kind `{}` is not available in this build yet (planned behind the `{}` cargo feature); use sqlite:PATH",
                other.kind(),
                other.kind()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(
            "sqlite:./a.db".parse(),
            Ok(SinkSpec::Sqlite("./a.db".into()))
        );
        assert_eq!("jsonl:out".parse(), Ok(SinkSpec::Jsonl("out".into())));
        assert_eq!("csv:out".parse(), Ok(SinkSpec::Csv("out".into())));
        assert_eq!("parquet:out".parse(), Ok(SinkSpec::Parquet("out".into())));
        assert!(matches!(
            "postgres://u@h/db".parse(),
            Ok(SinkSpec::Postgres(_))
        ));
        let err = "mysql://x".parse::<SinkSpec>().unwrap_err();
        assert!(err.contains("use sqlite:PATH"), "{err}");
        let err = "sqlite:".parse::<SinkSpec>().unwrap_err();
        assert!(err.contains("needs a path"), "{err}");
    }

    #[test]
    fn describe_masks_a_postgres_password() {
        let spec: SinkSpec = "postgres://me:hunter2@db:5432/x".parse().unwrap();
        assert_eq!(spec.describe(), "postgres://me:****@db:5432/x");
    }

    #[cfg(not(feature = "parquet"))]
    #[test]
    fn unbuilt_kind_names_its_feature() {
        let err = open(&SinkSpec::Parquet("x".into())).err().unwrap();
        assert!(
            err.message.contains("`parquet` cargo feature"),
            "{}",
            err.message
        );
    }
}
