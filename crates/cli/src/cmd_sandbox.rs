//! `driftbridge sandbox`: run the offline Drift API simulator (DESIGN.md §6, §7).
//!
//! Prints one JSON line `{"base_url": "http://127.0.0.1:PORT", "token": "<full-scope token>"}`
//! on stdout once the port is bound, then serves until Ctrl-C or SIGTERM.

use crate::common::{exit, fail, Ctx};
use drift_sandbox::{Compat, FaultPlan, SandboxConfig, SandboxError};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `driftbridge sandbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1; 0 picks a free port (read it from the start-up line).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// Seed of the generated org (same seed, same data).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Number of conversations to generate (contacts follow from them).
    #[arg(long, default_value_t = 200)]
    conversations: usize,
    /// Messages per generated conversation.
    #[arg(long, default_value_t = 5)]
    messages_per_conversation: usize,
    /// Number of accounts to generate.
    #[arg(long, default_value_t = 50)]
    accounts: usize,
    /// Number of users to generate (one of them is the bot).
    #[arg(long, default_value_t = 12)]
    users: usize,
    /// Requests per minute per token (leaky bucket); 0 turns the limit off.
    #[arg(long, default_value_t = 600)]
    rate_limit_per_min: u32,
    /// Milliseconds added before every Drift API response.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Send no `X-RateLimit-*` headers: the limits are still enforced (429 with
    /// `Retry-After` when exceeded), but a client cannot see its remaining quota.
    #[arg(long)]
    no_rate_limit_headers: bool,
    /// Fault plan: a JSON file, or inline JSON starting with `{` (DESIGN.md §7 shape).
    #[arg(long, value_name = "SPEC")]
    faults: Option<String>,
    /// The full-scope token (default: the documented development token).
    #[arg(long, env = "DRIFT_SANDBOX_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Add a limited token: `TOKEN=scope,scope` (repeatable).
    #[arg(long = "token-scopes", value_name = "TOKEN=SCOPES")]
    token_scopes: Vec<String>,
    /// Load the org from JSON files in DIR instead of generating it.
    #[arg(long, value_name = "DIR")]
    fixtures: Option<PathBuf>,
    /// Off-by-default peer compatibility mode; the only one is `airbyte-0.3`.
    #[arg(long, value_name = "MODE")]
    compat: Option<String>,
    /// Serve records the way a real org's data can arrive, to test a client against it.
    /// About 1 record in 10 varies in ways a tolerant client must accept (ids and epoch-ms
    /// timestamps as strings of digits, optional fields null or left out, unknown fields);
    /// about 1 in 200 per stream is unfit (an object or a non-numeric string where an id or
    /// timestamp belongs). Same seed, same rendering on every request; writes stay faithful.
    /// `GET /__sandbox/counts` then reports the unfit records a full sync receives under
    /// `unfit`.
    #[arg(long)]
    messy: bool,
    /// Send Drift webhook events for every mutation that creates a conversation or a
    /// message or updates a contact (`POST /__sandbox/mutate`, the write API) to this URL
    /// (loopback or public addresses only). Also settable at run time:
    /// `POST /__sandbox/webhooks {"url": ..., "token": ...}`.
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// The verification token sent with each webhook event (body `token` and header
    /// `X-Verification-Token`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "DRIFT_SANDBOX_WEBHOOK_TOKEN",
        hide_env_values = true
    )]
    webhook_token: Option<String>,
    /// Fault: the probability (0 to 1) that a webhook event is delivered twice.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    webhook_duplicates: f64,
    /// Fault: send the webhook events of each mutation in a shuffled order.
    #[arg(long)]
    webhook_reorder: bool,
}

/// Parse `TOKEN=scope,scope`.
fn parse_token_scopes(spec: &str) -> anyhow::Result<(String, Vec<String>)> {
    let (token, scopes) = spec
        .split_once('=')
        .filter(|(t, _)| !t.trim().is_empty())
        .ok_or_else(|| {
            fail(
                exit::USAGE,
                "--token-scopes must look like TOKEN=scope,scope (e.g. ro-token=conversation_read)",
            )
        })?;
    let scopes = scopes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Ok((token.trim().to_string(), scopes))
}

/// Inline JSON (starts with `{`) or a file path. Errors (exit 2) name the file, and for bad
/// content the line/column or the fault's field (`faults[0].status`).
fn load_faults(spec: &str) -> anyhow::Result<FaultPlan> {
    if spec.trim_start().starts_with('{') {
        return FaultPlan::from_json(spec)
            .map_err(|m| fail(exit::USAGE, format!("--faults (inline JSON): {m}")));
    }
    let text = std::fs::read_to_string(spec).map_err(|e| {
        fail(
            exit::USAGE,
            format!(
                "--faults: cannot read the fault plan file {spec}: {e}; give the path of a JSON \
                 file, or inline JSON starting with {{"
            ),
        )
    })?;
    FaultPlan::from_json(&text).map_err(|m| {
        fail(
            exit::USAGE,
            format!("--faults: the fault plan file {spec} is not valid: {m}"),
        )
    })
}

fn config(args: Args) -> anyhow::Result<SandboxConfig> {
    let mut cfg = SandboxConfig {
        port: args.port,
        seed: args.seed,
        conversations: args.conversations,
        messages_per_conversation: args.messages_per_conversation,
        accounts: args.accounts,
        users: args.users,
        rate_limit_per_min: args.rate_limit_per_min,
        latency_ms: args.latency_ms,
        rate_limit_headers: !args.no_rate_limit_headers,
        fixtures: args.fixtures,
        messy: args.messy,
        webhooks: drift_sandbox::webhooks::WebhookSettings {
            url: args.webhook_url.clone(),
            token: args.webhook_token.clone().unwrap_or_default(),
            duplicates: args.webhook_duplicates,
            reorder: args.webhook_reorder,
        },
        ..SandboxConfig::default()
    };
    if args.webhook_url.is_some() && args.webhook_token.as_deref().unwrap_or("").is_empty() {
        return Err(fail(
            exit::USAGE,
            "--webhook-url needs --webhook-token TOKEN (the verification token of the real-time data source)",
        ));
    }
    if let Some(t) = args.token {
        cfg.token = t;
    }
    cfg.limited_tokens = args
        .token_scopes
        .iter()
        .map(|s| parse_token_scopes(s))
        .collect::<anyhow::Result<_>>()?;
    if let Some(spec) = args.faults {
        cfg.faults = load_faults(&spec)?.faults;
    }
    if let Some(mode) = args.compat {
        cfg.compat = Some(
            mode.parse::<Compat>()
                .map_err(|m| fail(exit::USAGE, format!("--compat: {m}")))?,
        );
    }
    Ok(cfg)
}

/// Run the subcommand.
pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let cfg = config(args)?;
    let handle = drift_sandbox::start(cfg).await.map_err(|e| match e {
        SandboxError::Config { .. } | SandboxError::Fixtures { .. } => {
            fail(exit::USAGE, e.to_string())
        }
        SandboxError::Bind { .. } => fail(exit::FAILURE, e.to_string()),
    })?;
    let line = serde_json::json!({"base_url": handle.base_url(), "token": handle.token()});
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    drop(out);
    if !ctx.quiet {
        eprintln!(
            "Drift sandbox serving at {} (admin routes under /__sandbox/); Ctrl-C stops it",
            handle.base_url()
        );
    }
    crate::common::stop_signal().await;
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
