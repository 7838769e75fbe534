//! `driftbridge serve`: the REST API under `/api/v1` and the web UI at `/` (DESIGN.md §6).
//!
//! On the first start the admin token is created and printed once (only its hash is kept,
//! in the metadata store); `--print-token` makes a new one, prints it and exits: the old
//! token and every session stop working at once, in every `serve` on that data directory. Binds 127.0.0.1 by default; binding
//! another address prints a warning, since the server speaks plain HTTP. Credentials may
//! point only at public addresses unless `--allow-private-base-urls` is given
//! (`server::addresses`).

use crate::common::{exit, fail, Ctx};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Arguments of `driftbridge serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Make a new admin token, print it and exit. The old token and every web UI session
    /// stop working at once, also in a `serve` already running on this data directory.
    #[arg(long)]
    print_token: bool,
    /// Log format on stderr: `text` or `json` (one JSON object per event). Logs never hold
    /// an API key or the admin token.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    /// Let credentials point at loopback, private (10/8, 172.16/12, 192.168/16), link-local
    /// (169.254/16, fe80::/10), unique-local (fc00::/7), CGNAT (100.64/10) and unspecified
    /// addresses, e.g. a local sandbox. Off by default: the server then never sends a
    /// request (or a token) to such an address, checked on the resolved addresses when it
    /// connects, so a user of the API or web UI cannot reach the server's own network.
    #[arg(long)]
    allow_private_base_urls: bool,
}

impl Args {
    /// True with `--log-format json` (read by `main` before logging starts).
    pub fn json_logs(&self) -> bool {
        self.log_format == "json"
    }
}

/// Run the subcommand.
pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<ExitCode> {
    let store = crate::common::open_store(ctx)?;
    if args.print_token {
        let token = server::auth::regenerate_admin_token(&store)
            .map_err(|e| fail(exit::FAILURE, e.to_string()))?;
        print_token(ctx, None, Some(token.expose_secret()));
        if !ctx.quiet {
            eprintln!("note: the previous admin token and every web UI session no longer work (in a running serve too); log in again with this one");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let new_token =
        server::auth::ensure_admin_token(&store).map_err(|e| fail(exit::FAILURE, e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| {
            fail(
                exit::USAGE,
                format!(
                    "bind: cannot listen on {}: {e}; choose another address with --bind HOST:PORT",
                    args.bind
                ),
            )
        })?;
    let addr = listener.local_addr()?;
    if !server::is_loopback(&addr) {
        eprintln!("warning: listening on {addr}, which is not a loopback address: the server speaks plain HTTP, so put TLS (a reverse proxy) in front before other machines use it");
    }
    let url = format!("http://{addr}/");
    tracing::info!(address = %addr, "serving the REST API and the web UI");
    print_token(
        ctx,
        Some(&url),
        new_token.as_ref().map(|t| t.expose_secret()),
    );
    if args.allow_private_base_urls {
        tracing::warn!(
            "--allow-private-base-urls: credentials may point at loopback and private addresses"
        );
    }
    let state =
        server::AppState::new(store).allowing_private_base_urls(args.allow_private_base_urls);
    let shutdown = crate::common::stop_signal();
    server::serve(listener, state, shutdown)
        .await
        .map_err(|e| fail(exit::FAILURE, format!("server stopped: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// Print where the server listens and, once, the admin token.
fn print_token(ctx: &Ctx, url: Option<&str>, token: Option<&str>) {
    if ctx.json {
        outln!(
            "{}",
            serde_json::json!({ "url": url, "admin_token": token })
        );
        return;
    }
    if let Some(url) = url {
        outln!("driftbridge is serving the web UI at {url} and the REST API at {url}api/v1");
    }
    match token {
        Some(token) => {
            outln!("admin token (shown only now; keep it): {token}");
            outln!("log in to the web UI with it, or send `Authorization: Bearer <token>` to the API");
        }
        None => outln!("log in with the admin token printed on the first start (`driftbridge serve --print-token` makes a new one)"),
    }
}
