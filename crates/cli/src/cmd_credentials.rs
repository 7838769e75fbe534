//! `driftbridge credentials add|list|show|test|rotate|update|delete` and
//! `driftbridge vault rotate-key` (DESIGN.md §1 steps 1-3, §4 "Secrets", §6).
//!
//! Results go to stdout (JSON with `--json`); notices and warnings to stderr. The API key is
//! read from a prompt, stdin or an environment variable (see `key_input`), shown only as a
//! mask, and never printed, logged or put in an error.

mod check;
mod key_input;

use crate::common::{exit, fail, Ctx};
use clap::Subcommand;
use key_input::{KeyInput, OAuthInput};
use serde_json::json;
use std::process::ExitCode;
use store::validate::DEFAULT_RATE_LIMIT_PER_MIN;
use store::{Credential, CredentialUpdate, NewCredential, OAuthChange, Store, StoreError};

/// Arguments of `driftbridge credentials`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  export DRIFT_KEY=...   # the API key stays out of the process list and shell history
  driftbridge credentials add --name prod --api-key-env DRIFT_KEY
  driftbridge credentials test prod --for conversations,contacts
  driftbridge credentials rotate prod --api-key-env DRIFT_KEY
  driftbridge credentials list")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add a Drift credential; the key is prompted for (no echo) unless
    /// --api-key-stdin or --api-key-env is given. Tested right away unless --no-test.
    Add(AddArgs),
    /// List credentials: name, status, masked key, base URL, description.
    List,
    /// Show one credential and its last test result.
    Show {
        /// Credential name (case-insensitive).
        name: String,
    },
    /// Test a credential against Drift (POST /app/token_info) and store the result.
    Test {
        /// Credential name (case-insensitive).
        name: String,
        #[command(flatten)]
        uses: Uses,
    },
    /// Replace a credential's API key, then test it (unless --no-test).
    Rotate(RotateArgs),
    /// Change a credential's name, description, base URL or rate budget.
    Update(UpdateArgs),
    /// Delete a credential (refused while a data source, destination or flow uses it).
    Delete {
        /// Credential name (case-insensitive).
        name: String,
        /// Delete even if data sources, destinations or flows use it (they lose it).
        #[arg(long)]
        force: bool,
    },
}

/// `--for`: what the credential will be used for, to check its scopes.
#[derive(Debug, clap::Args)]
struct Uses {
    /// Streams or write targets the credential will serve, comma-separated
    /// (conversations, messages, contacts, accounts, users, teams, playbooks, meetings,
    /// contact_attributes, all, push:contacts, push:accounts, push:timeline,
    /// push:conversations). Missing scopes are an error; extra scopes a warning.
    #[arg(long = "for", value_name = "USES", value_delimiter = ',')]
    uses: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// Unique name, 1-100 characters (case-insensitive).
    #[arg(long)]
    name: String,
    /// Optional description, up to 1000 characters.
    #[arg(long)]
    description: Option<String>,
    /// API base URL: https://, or http:// to a loopback address (the sandbox).
    #[arg(long, default_value = store::validate::DEFAULT_BASE_URL)]
    base_url: String,
    /// Request budget per minute shared by every use of this credential.
    #[arg(long, default_value_t = DEFAULT_RATE_LIMIT_PER_MIN)]
    rate_limit_per_min: u32,
    #[command(flatten)]
    key: KeyInput,
    #[command(flatten)]
    oauth: OAuthInput,
    /// Save without testing against Drift (status stays unverified).
    #[arg(long, conflicts_with_all = ["uses", "save_untested"])]
    no_test: bool,
    /// Save the credential even when its test fails (by default a failed test saves
    /// nothing); the failure is stored on it and the exit code still says it failed.
    #[arg(long)]
    save_untested: bool,
    #[command(flatten)]
    uses: Uses,
}

#[derive(Debug, clap::Args)]
struct RotateArgs {
    /// Credential name (case-insensitive).
    name: String,
    #[command(flatten)]
    key: KeyInput,
    /// With a new access token of an OAuth app: its refresh settings (replace the old ones).
    /// Without them the credential's OAuth app, if any, is kept (see --no-oauth).
    #[command(flatten)]
    oauth: OAuthInput,
    /// Remove the credential's OAuth app (client id, client secret, refresh token): the new
    /// key is an install token that is never refreshed.
    #[arg(long, conflicts_with = "oauth_client_id")]
    no_oauth: bool,
    /// Save without testing the new key.
    #[arg(long, conflicts_with = "uses")]
    no_test: bool,
    #[command(flatten)]
    uses: Uses,
}

#[derive(Debug, clap::Args)]
struct UpdateArgs {
    /// Credential name (case-insensitive).
    name: String,
    /// New name.
    #[arg(long = "name", value_name = "NEW_NAME")]
    new_name: Option<String>,
    /// New description (an empty string removes it).
    #[arg(long)]
    description: Option<String>,
    /// New base URL (the credential becomes unverified until tested).
    #[arg(long)]
    base_url: Option<String>,
    /// New request budget per minute.
    #[arg(long)]
    rate_limit_per_min: Option<u32>,
}

/// Run `driftbridge credentials`.
pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Add(a) => add(ctx, a).await,
        Command::List => list(ctx),
        Command::Show { name } => show(ctx, &name).await,
        Command::Test { name, uses } => test(ctx, &name, &uses.uses).await,
        Command::Rotate(a) => rotate(ctx, a).await,
        Command::Update(a) => update(ctx, a),
        Command::Delete { name, force } => delete(ctx, &name, force),
    }
}

/// Map a store error to the CLI's exit codes: 2 for bad input, 1 otherwise.
pub(crate) fn store_error(e: StoreError) -> anyhow::Error {
    let code = if e.is_user_error() {
        exit::USAGE
    } else {
        exit::FAILURE
    };
    fail(code, e.to_string())
}

/// `--for` names something that is neither a stream nor a write target: exit 2.
fn unknown_use(e: drift_writer::scopes::UnknownUse) -> anyhow::Error {
    store_error(StoreError::Invalid {
        field: "for",
        message: e.0,
    })
}

fn open_store(ctx: &Ctx) -> anyhow::Result<Store> {
    crate::common::open_store(ctx)
}

fn note(ctx: &Ctx, text: &str) {
    if !ctx.quiet {
        eprintln!("note: {text}");
    }
}

/// Read and validate a key from the chosen source; prints the `Bearer ` notice.
fn read_key(ctx: &Ctx, input: &KeyInput) -> anyhow::Result<secrecy::SecretString> {
    let raw = input.read()?;
    let key = store::validate::api_key(&raw).map_err(store_error)?;
    if let Some(notice) = &key.notice {
        note(ctx, notice);
    }
    Ok(key.key)
}

fn warn_base_url(raw: &str) -> anyhow::Result<()> {
    let url = store::validate::base_url(raw).map_err(store_error)?;
    for warning in &url.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

async fn add(ctx: &Ctx, a: AddArgs) -> anyhow::Result<ExitCode> {
    use flows::check::Edge;
    use flows::credential_add::{add_credential, AddCredential, AddError, SaveMode};
    // Validate everything that needs no key first, so a typo fails before the prompt.
    store::validate::name(&a.name).map_err(store_error)?;
    store::validate::description(a.description.as_deref()).map_err(store_error)?;
    store::validate::rate_limit_per_min(a.rate_limit_per_min).map_err(store_error)?;
    drift_writer::scopes::required_scopes(&a.uses.uses).map_err(unknown_use)?;
    warn_base_url(&a.base_url)?;
    let store = open_store(ctx)?;
    if let Ok(existing) = store.credential(&a.name) {
        let taken = AddError::Taken {
            existing: existing.name,
        };
        return Err(fail(exit::USAGE, taken.message_for(Edge::Cli)));
    }
    let oauth = a.oauth.read()?;
    let key = read_key(ctx, &a.key)?;
    let mode = match (a.no_test, a.save_untested) {
        (true, _) => SaveMode::NoTest,
        (false, true) => SaveMode::SaveUntested,
        (false, false) => SaveMode::Test,
    };
    let human = !ctx.json && !ctx.quiet;
    if human && mode != SaveMode::NoTest {
        outln!(
            "Testing credential \"{}\" against {}",
            a.name.trim(),
            a.base_url
        );
    }
    let request = AddCredential {
        new: NewCredential {
            name: a.name,
            description: a.description,
            base_url: Some(a.base_url),
            api_key: key,
            rate_limit_per_min: a.rate_limit_per_min,
        },
        oauth,
        uses: a.uses.uses,
        mode,
    };
    // The CLI is one user's tool: any address, loopback sandbox included.
    let any = flows::AddressPolicy::AllowPrivate;
    let added = match add_credential(&store, request, any, Edge::Cli).await {
        Ok(added) => added,
        Err(AddError::TestFailed { report, failure }) => {
            check::print_steps(ctx, &report);
            if ctx.json {
                print_json(&json!({ "credential": null, "test": report }))?;
            }
            let message = AddError::TestFailed {
                report,
                failure: failure.clone(),
            }
            .message_for(Edge::Cli);
            return Err(fail(check::exit_code(&failure), message));
        }
        Err(e @ AddError::Taken { .. }) => return Err(fail(exit::USAGE, e.message_for(Edge::Cli))),
        Err(AddError::Store(e)) => return Err(store_error(e)),
    };
    let credential = added.credential;
    tracing::info!(credential = %credential.name, id = %credential.id, "credential saved");
    if let Some(report) = &added.report {
        check::print_steps(ctx, report);
    }
    if human {
        let untested = match (&added.report, &added.failure) {
            (None, _) => " (not tested)",
            (Some(_), Some(_)) => " although its test failed (--save-untested)",
            _ => "",
        };
        outln!(
            "Saved credential \"{}\" (key {}){untested}.",
            credential.name,
            credential.key_mask
        );
    }
    if mode == SaveMode::NoTest {
        note(ctx, "not tested (--no-test); the credential stays unverified until `driftbridge credentials test` passes");
    }
    if ctx.json {
        print_json(&json!({ "credential": credential, "test": added.report }))?;
    }
    match added.failure {
        Some(f) => Err(fail(check::exit_code(&f), f.message_for(Edge::Cli))),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// After add/rotate: test unless `--no-test`, then print the credential (JSON mode).
async fn finish_with_test(
    ctx: &Ctx,
    store: &Store,
    credential: Credential,
    no_test: bool,
    uses: &[String],
) -> anyhow::Result<ExitCode> {
    let (report, failure) = if no_test {
        note(ctx, "not tested (--no-test); the credential stays unverified until `driftbridge credentials test` passes");
        (None, None)
    } else {
        let (report, failure) = check::run_test(ctx, store, &credential, uses).await?;
        (Some(report), failure)
    };
    if ctx.json {
        let credential = store.credential(&credential.name).map_err(store_error)?;
        print_json(&json!({ "credential": credential, "test": report }))?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn list(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let credentials = open_store(ctx)?.list_credentials().map_err(store_error)?;
    if ctx.json {
        print_json(&credentials)?;
        return Ok(ExitCode::SUCCESS);
    }
    if credentials.is_empty() {
        outln!("No credentials yet. Add one with `driftbridge credentials add --name NAME`.");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 5]> = credentials
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                c.status.to_string(),
                c.key_mask.clone(),
                c.base_url.clone(),
                c.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(["NAME", "STATUS", "KEY", "BASE URL", "DESCRIPTION"], &rows);
    Ok(ExitCode::SUCCESS)
}

/// `text` on one line for a table cell: line breaks, tabs and other control characters
/// (from descriptions saved before they were refused) become spaces; at most 60 characters.
fn cell(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > 60 {
        format!("{}…", flat.chars().take(59).collect::<String>())
    } else {
        flat
    }
}

fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let rows: Vec<[String; N]> = rows.iter().map(|r| r.clone().map(|c| cell(&c))).collect();
    let rows = &rows;
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        outln!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Epoch milliseconds as RFC 3339 UTC (seconds precision).
pub(crate) fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

async fn show(ctx: &Ctx, name: &str) -> anyhow::Result<ExitCode> {
    let store = open_store(ctx)?;
    let c = store.credential(name).map_err(store_error)?;
    // The shared budget's live use (every process on the credential); a backend that cannot
    // be read (e.g. PostgreSQL down) leaves it out with a warning.
    let budget = match store.budget_use(&c).await {
        Ok(used) => Some(used),
        Err(e) => {
            eprintln!("warning: the budget's use cannot be read: {e}");
            None
        }
    };
    if ctx.json {
        let mut value = serde_json::to_value(&c)?;
        if let (Some(object), Some(used)) = (value.as_object_mut(), budget) {
            object.insert("budget".into(), serde_json::to_value(used)?);
        }
        print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    // Expiry is known only once a test succeeded (which also records the org id).
    let expires = match (c.org_id, c.expires_at) {
        (_, Some(at)) => format_time(at),
        (Some(_), None) => "never".to_string(),
        (None, None) => "-".to_string(),
    };
    let lines = [
        ("name", c.name.clone()),
        ("id", c.id.clone()),
        ("kind", c.kind.clone()),
        ("description", opt(c.description.clone())),
        ("base url", c.base_url.clone()),
        ("api key", c.key_mask.clone()),
        (
            "refresh",
            match &c.oauth_client_id {
                Some(id) => format!("OAuth app {id} (an expired access token is refreshed)"),
                None => "none (install token)".into(),
            },
        ),
        (
            "rate limit",
            format!("{} requests/minute", c.rate_limit_per_min),
        ),
        ("status", c.status.to_string()),
        ("tested at", opt(c.tested_at.map(format_time))),
        ("org id", opt(c.org_id.map(|o| o.to_string()))),
        (
            "scopes",
            if c.scopes.is_empty() {
                "-".into()
            } else {
                c.scopes.join(" ")
            },
        ),
        ("expires", expires),
        (
            "budget use",
            match budget {
                Some(used) => {
                    let paused = used
                        .paused_until
                        .filter(|t| *t > chrono::Utc::now().timestamp_millis())
                        .map(|t| format!("; paused by Drift until {}", format_time(t)))
                        .unwrap_or_default();
                    format!(
                        "{} requests in the last minute (all processes){paused}",
                        used.requests_last_minute
                    )
                }
                None => "-".into(),
            },
        ),
        ("last error", opt(c.last_error.clone())),
        ("created", format_time(c.created_at)),
        ("updated", format_time(c.updated_at)),
    ];
    for (label, value) in lines {
        outln!("{:<12} {value}", format!("{label}:"));
    }
    Ok(ExitCode::SUCCESS)
}

async fn test(ctx: &Ctx, name: &str, uses: &[String]) -> anyhow::Result<ExitCode> {
    let store = open_store(ctx)?;
    let credential = store.credential(name).map_err(store_error)?;
    let (report, failure) = check::run_test(ctx, &store, &credential, uses).await?;
    if ctx.json {
        print_json(&report)?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

async fn rotate(ctx: &Ctx, a: RotateArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(ctx)?;
    let before = store.credential(&a.name).map_err(store_error)?;
    drift_writer::scopes::required_scopes(&a.uses.uses).map_err(unknown_use)?;
    let change = match a.oauth.read()? {
        Some(oauth) => OAuthChange::Set(oauth),
        None if a.no_oauth => OAuthChange::Remove,
        None => OAuthChange::Keep,
    };
    let key = read_key(ctx, &a.key)?;
    let credential = store
        .rotate_credential(&a.name, &key, &change)
        .map_err(store_error)?;
    if !ctx.json && !ctx.quiet {
        outln!("{}", rotated_text(&before, &credential, &change));
    }
    finish_with_test(ctx, &store, credential, a.no_test, &a.uses.uses).await
}

/// What `credentials rotate` did, for people: the key, and what became of the OAuth app.
fn rotated_text(before: &Credential, after: &Credential, change: &OAuthChange) -> String {
    let key = format!(
        "Replaced the API key of \"{}\" (now {})",
        after.name, after.key_mask
    );
    match (change, &before.oauth_client_id) {
        (OAuthChange::Set(_), _) => format!(
            "{key} and its OAuth app settings (client id {}).",
            after.oauth_client_id.as_deref().unwrap_or("-")
        ),
        (OAuthChange::Remove, Some(id)) => {
            format!("{key} and removed its OAuth app {id}: the key is no longer refreshed.")
        }
        (OAuthChange::Keep, Some(id)) => {
            format!("{key}; kept its OAuth app {id} (--no-oauth removes it).")
        }
        (_, None) => format!("{key}."),
    }
}

fn update(ctx: &Ctx, a: UpdateArgs) -> anyhow::Result<ExitCode> {
    if a.new_name.is_none()
        && a.description.is_none()
        && a.base_url.is_none()
        && a.rate_limit_per_min.is_none()
    {
        return Err(fail(
            exit::USAGE,
            "nothing to update; pass --name, --description, --base-url or --rate-limit-per-min (use `credentials rotate` to replace the key)",
        ));
    }
    if let Some(url) = &a.base_url {
        warn_base_url(url)?;
    }
    let store = open_store(ctx)?;
    let before = store.credential(&a.name).map_err(store_error)?;
    let update = CredentialUpdate {
        name: a.new_name,
        description: a.description.map(Some),
        base_url: a.base_url,
        rate_limit_per_min: a.rate_limit_per_min,
    };
    let after = store
        .update_credential(&a.name, &update)
        .map_err(store_error)?;
    if ctx.json {
        print_json(&after)?;
    } else {
        outln!("Updated credential \"{}\".", after.name);
    }
    if before.status != after.status {
        note(ctx, &format!("the base URL changed, so the credential is unverified; run `driftbridge credentials test {}`", after.name));
    }
    Ok(ExitCode::SUCCESS)
}

fn delete(ctx: &Ctx, name: &str, force: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(ctx)?;
    let users = store.credential_users(name).map_err(store_error)?;
    let deleted = store.delete_credential(name, force).map_err(|e| match e {
        store::StoreError::InUse { name, users } => fail(exit::USAGE, in_use(&name, &users)),
        other => store_error(other),
    })?;
    if !users.is_empty() {
        let names: Vec<String> = users.iter().map(ToString::to_string).collect();
        eprintln!(
            "warning: --force: {} no longer have a credential; give them one before they run",
            names.join(", ")
        );
    }
    if ctx.json {
        print_json(&json!({ "deleted": deleted.name, "id": deleted.id }))?;
    } else {
        outln!("Deleted credential \"{}\".", deleted.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// Why credential `name` cannot be deleted, with the commands that free it: each user
/// (`data source "crm"`, `destination "leads"`) deleted or pointed at another credential.
fn in_use(name: &str, users: &[String]) -> String {
    let mut fixes = Vec::new();
    for user in users {
        let quoted = |kind: &str| {
            user.strip_prefix(kind)
                .map(|rest| rest.trim().trim_matches('"').to_string())
        };
        if let Some(source) = quoted("data source") {
            fixes.push(format!(
                "`driftbridge sources update {source} --credential OTHER` or `driftbridge sources delete {source}`"
            ));
        } else if let Some(dest) = quoted("destination") {
            fixes.push(format!("`driftbridge destinations delete {dest}`"));
        }
    }
    let fixes = if fixes.is_empty() {
        String::new()
    } else {
        format!("; free it with {}", fixes.join(", then "))
    };
    format!(
        "credential \"{name}\" is used by {}{fixes}; or pass --force to delete it anyway (they then have no credential until given one)",
        users.join(", ")
    )
}

/// Arguments of `driftbridge vault`.
#[derive(Debug, clap::Args)]
pub struct VaultArgs {
    #[command(subcommand)]
    command: VaultCommand,
}

#[derive(Debug, Subcommand)]
enum VaultCommand {
    /// Re-encrypt every secret under a new master key. With the key file, a new key is
    /// generated and the file replaced; with DRIFTBRIDGE_MASTER_KEY, give the new key with
    /// --new-key-env.
    RotateKey {
        /// Environment variable holding the new master key (base64 of 32 bytes).
        #[arg(long, value_name = "VAR")]
        new_key_env: Option<String>,
    },
}

/// Run `driftbridge vault`.
pub async fn run_vault(ctx: &Ctx, args: VaultArgs) -> anyhow::Result<ExitCode> {
    let VaultCommand::RotateKey { new_key_env } = args.command;
    let new_key = match &new_key_env {
        None => None,
        Some(var) => {
            let text = std::env::var(var).map_err(|_| {
                fail(
                    exit::USAGE,
                    format!("new_key: the environment variable {var} (from --new-key-env) is not set; export the new master key (base64 of 32 bytes, e.g. `openssl rand -base64 32`)"),
                )
            })?;
            Some(
                store::MasterKey::from_base64(&text, var)
                    .map_err(|e| fail(exit::USAGE, e.to_string()))?,
            )
        }
    };
    let store = open_store(ctx)?;
    let rotation = store.rotate_master_key(new_key).map_err(store_error)?;
    let origin = match &rotation.origin {
        store::KeyOrigin::File(p) => format!("key file {}", p.display()),
        other => other.to_string(),
    };
    if ctx.json {
        print_json(&json!({
            "from_version": rotation.from_version,
            "to_version": rotation.to_version,
            "secrets": rotation.secrets,
            "key_origin": origin,
        }))?;
    } else {
        outln!(
            "Re-encrypted {} secret(s): master key version {} -> {}.",
            rotation.secrets,
            rotation.from_version,
            rotation.to_version
        );
    }
    match rotation.origin {
        store::KeyOrigin::File(p) => note(ctx, &format!("{} now holds the new key", p.display())),
        store::KeyOrigin::Env => eprintln!(
            "warning: set {} to the new key (the value of {}) before the next command; the old key no longer opens the vault",
            store::vault::MASTER_KEY_ENV,
            new_key_env.unwrap_or_default()
        ),
        store::KeyOrigin::Given => {}
    }
    Ok(ExitCode::SUCCESS)
}
