//! `driftbridge serve`: the REST API under `/api/v1` and the web UI at `/` (DESIGN.md §6).
//!
//! On the first start the admin token is created and printed once (only its hash is kept,
//! in the metadata store); `--print-token` makes a new one, prints it and exits: the old
//! token and every session stop working at once, in every `serve` on that data directory. Binds 127.0.0.1 by default; binding
//! another address prints a warning, since the server speaks plain HTTP. Credentials may
//! point only at public addresses unless `--allow-private-base-urls` is given
//! (`flows::addresses`). The timeouts, the connection cap, the retention of uploads and
//! results, the `Host` allow-list and `/metrics` access have flags (see `--help` and
//! the README's `serve` sections).

use crate::common::{exit, fail, Ctx};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `driftbridge serve`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  driftbridge serve --print-token
  driftbridge serve --bind 127.0.0.1:8080
  driftbridge serve --bind 0.0.0.0:8080 --allow-private-base-urls   # a local sandbox")]
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
    /// Seconds a connection has to send a whole request head (request line and headers),
    /// from its opening or from the first byte of a following request; then it is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
    /// Seconds a request body may pause between chunks; then the request is answered 408.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_timeout: u64,
    /// Seconds a kept-alive connection may stay idle between requests; then it is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout: u64,
    /// Most connections open at once; further ones wait to be accepted until one closes.
    #[arg(long, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=65536))]
    max_connections: u64,
    /// Hours an uploaded CSV file is kept when no run uses it (an upload is deleted as soon
    /// as a real, not dry, run of it is recorded).
    #[arg(long, value_name = "HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=8760))]
    upload_retention_hours: u64,
    /// Days a push run's results file (downloadable from the API and the web UI) is kept;
    /// 0 keeps them.
    #[arg(long, value_name = "DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=36500))]
    results_retention_days: u64,
    /// The URL people reach the server at, e.g. `https://driftbridge.example.com` behind a
    /// TLS reverse proxy: its host name is accepted as `Host`, its origin as `Origin`, and
    /// with https the session cookie gets `Secure`; real-time sources' webhook URLs are
    /// built on it. Also read from DRIFTBRIDGE_PUBLIC_URL, which `sources show` reads too.
    #[arg(long, value_name = "URL", env = "DRIFTBRIDGE_PUBLIC_URL")]
    public_url: Option<String>,
    /// A further host name the server answers to (repeatable). By default only the bind
    /// address, loopback addresses and localhost are: a request naming another host gets
    /// 421, so a web page that re-points its own name at this server (DNS rebinding)
    /// cannot read the UI, the API or /metrics.
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Serve /metrics without the admin token (e.g. for a Prometheus that cannot send one).
    /// By default /metrics needs `Authorization: Bearer <admin token>`.
    #[arg(long)]
    public_metrics: bool,
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
    let public_url = args
        .public_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .map(parse_public_url)
        .transpose()?;
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
    let behind_tls = public_url.as_ref().is_some_and(|u| u.scheme() == "https");
    if !server::is_loopback(&addr) && !behind_tls {
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
    let options = server::ServeOptions {
        limits: server::limits::Limits {
            header_read_timeout: Duration::from_secs(args.header_timeout),
            body_timeout: Duration::from_secs(args.body_timeout),
            idle_timeout: Duration::from_secs(args.idle_timeout),
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        },
        retention: flows::uploads::Retention {
            uploads: Duration::from_secs(args.upload_retention_hours * 3600),
            results: (args.results_retention_days > 0)
                .then(|| Duration::from_secs(args.results_retention_days * 24 * 3600)),
        },
        bind: Some(addr),
        public_url,
        allowed_hosts: args.allowed_hosts.clone(),
        public_metrics: args.public_metrics,
    };
    let state = server::AppState::new(store)
        .allowing_private_base_urls(args.allow_private_base_urls)
        .with_options(options);
    let shutdown = crate::common::stop_signal();
    server::serve(listener, state, shutdown)
        .await
        .map_err(|e| fail(exit::FAILURE, format!("server stopped: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// `--public-url`: an http(s) URL with a host.
pub(crate) fn parse_public_url(text: &str) -> anyhow::Result<url::Url> {
    let fix = "give the URL people open, e.g. --public-url https://driftbridge.example.com";
    let url = url::Url::parse(text.trim()).map_err(|e| {
        fail(
            exit::USAGE,
            format!("--public-url {text}: not a URL ({e}); {fix}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(fail(
            exit::USAGE,
            format!("--public-url {text}: use an http:// or https:// URL with a host; {fix}"),
        ));
    }
    Ok(url)
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
