//! `driftbridge catalog`: the tables a sync writes, for tools (DESIGN.md §6). Every table
//! including the child tables, with columns, types, primary key, cursor and descriptions,
//! as JSON (default), Markdown, or a dbt `sources.yml` (`--format dbt`).
//!
//! Glue only: the tables come from `sinks::catalog` (the layout the sinks write with) over
//! the streams `flows::job::catalog_streams` gives (with `--credential`, the org's custom
//! contact attributes too).

use crate::common::{exit, fail, Ctx};
use sinks::catalog::{describe, to_json, Dialect, TableInfo};
use std::fmt::Write as _;
use std::process::ExitCode;

/// Arguments of `driftbridge catalog`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Streams to describe, comma-separated, or `all` (their child tables come with them).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub streams: Vec<String>,
    /// Add the custom contact attributes of this credential's org (one request to Drift,
    /// `all_contact_read`); without it contacts list the standard attributes.
    #[arg(long)]
    pub credential: Option<String>,
    /// `json` (default), `markdown`, or `dbt` (a dbt `sources.yml`: source `drift`).
    #[arg(long, default_value = "json", value_parser = ["json", "markdown", "dbt"])]
    pub format: String,
    /// Database schema the dbt source points at (`--format dbt`).
    #[arg(long, default_value = "drift")]
    pub schema: String,
    /// Whose column names: `sqlite` (and file sinks: `_iso` timestamp twins) or `postgres`
    /// (`_ts` twins). Default: `postgres` for `--format dbt`, else `sqlite`.
    #[arg(long, value_parser = ["sqlite", "postgres"])]
    pub dialect: Option<String>,
    /// Describe the history-mode columns (`_valid_from`, `_valid_to`, `_active`) of tables
    /// synced with `sync --history`.
    #[arg(long)]
    pub history: bool,
}

/// Run the subcommand.
pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let streams = match &args.credential {
        None => sinks_streams(&args.streams)?,
        Some(name) => {
            let store = crate::common::open_store(ctx)?;
            flows::job::catalog_streams(
                &store,
                Some(name),
                &args.streams,
                flows::AddressPolicy::AllowPrivate,
            )
            .await
            .map_err(|e| fail(e.exit_code(), e.message()))?
        }
    };
    let dialect = match args.dialect.as_deref() {
        Some("postgres") => Dialect::Postgres,
        Some(_) => Dialect::Sqlite,
        None if args.format == "dbt" => Dialect::Postgres,
        None => Dialect::Sqlite,
    };
    let tables = describe(&streams, dialect, args.history);
    match args.format.as_str() {
        "markdown" => outln!("{}", markdown(&tables)),
        "dbt" => out!("{}", dbt_sources(&tables, &args.schema)),
        _ => outln!("{}", serde_json::to_string_pretty(&to_json(&tables))?),
    }
    Ok(ExitCode::SUCCESS)
}

fn sinks_streams(names: &[String]) -> anyhow::Result<Vec<sync_core::Stream>> {
    let selected = source_drift::catalog()
        .select(names, sync_core::SyncMode::FullRefresh)
        .map_err(|e| fail(exit::USAGE, format!("--streams: {e}")))?;
    Ok(selected.into_iter().map(|s| s.stream).collect())
}

/// The tables as Markdown: one section per table with its key, cursor and a column table.
pub fn markdown(tables: &[TableInfo]) -> String {
    let mut s = String::from("# driftbridge tables\n");
    for t in tables {
        let _ = write!(s, "\n## `{}`\n\n{}\n\n", t.name, t.description);
        let _ = writeln!(s, "- primary key: {}", code_list(&t.primary_key));
        if let Some(parent) = &t.parent {
            let _ = writeln!(s, "- child table of `{parent}`");
        }
        if let Some(c) = &t.cursor {
            let _ = writeln!(s, "- cursor: `{c}`");
        }
        for r in &t.renamed {
            let _ = writeln!(s, "- attribute `{}` is column `{}`", r.key, r.column);
        }
        s.push_str("\n| column | type | description |\n|---|---|---|\n");
        for c in &t.columns {
            let d = c.description.replace('|', "\\|").replace('\n', " ");
            let _ = writeln!(s, "| `{}` | {} | {d} |", c.name, c.kind);
        }
    }
    s
}

fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A YAML scalar: every string double-quoted with JSON's escapes, which YAML reads the same.
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The tables as a dbt `sources.yml` (version 2, source `drift` in `schema`): each table
/// with its description and columns; a single-column primary key gets `unique` and
/// `not_null` tests, each column of a composite key (child tables, history mode) `not_null`
/// only (a composite `unique` needs a package such as dbt_utils, which is not assumed).
pub fn dbt_sources(tables: &[TableInfo], schema: &str) -> String {
    let mut s = String::from("version: 2\n\nsources:\n  - name: drift\n");
    let _ = writeln!(s, "    schema: {}", q(schema));
    s.push_str("    description: \"Drift data synced by driftbridge\"\n    tables:\n");
    for t in tables {
        let _ = writeln!(s, "      - name: {}", q(&t.name));
        let _ = writeln!(s, "        description: {}", q(&t.description));
        if !t.columns.is_empty() {
            s.push_str("        columns:\n");
        }
        let single = t.primary_key.len() == 1;
        for c in &t.columns {
            let _ = writeln!(s, "          - name: {}", q(&c.name));
            if c.name.chars().any(|ch| ch.is_ascii_uppercase()) {
                // PostgreSQL keeps the case of quoted names only: dbt must quote them.
                s.push_str(
                    "            quote: true
",
                );
            }
            let desc = if c.description.is_empty() {
                format!("({})", c.kind)
            } else {
                format!("{} ({})", c.description, c.kind)
            };
            let _ = writeln!(s, "            description: {}", q(&desc));
            if t.primary_key.contains(&c.name) {
                // In history mode a key has many versions: not unique over the table.
                let unique = single && !t.columns.iter().any(|c| c.name == "_valid_from");
                s.push_str("            tests:\n              - not_null\n");
                if unique {
                    s.push_str("              - unique\n");
                }
            }
        }
    }
    s
}
