//! Host pinning / SSRF: the token goes only to the credential's base URL. Next-page links
//! and redirects to another host (or another port of the same host) are refused with a
//! clear error, and the other host receives no request at all, so no token either.
//! `serve` without `--allow-private-base-urls` sends nothing to a loopback or private
//! address, even for a credential the CLI stored; with the flag it does (the server's own
//! tests in crates/server/tests/server/ssrf.rs cover every route).

use crate::common::{Env, Out};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A tiny HTTP server that records every request and answers with `respond`.
pub(crate) struct Fake {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<(String, bool)>>>,
}

pub(crate) type Respond = Arc<dyn Fn(&Uri) -> Response + Send + Sync>;

impl Fake {
    pub(crate) async fn start(ip: &str, respond: Respond) -> Fake {
        let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let h = hits.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let respond = respond.clone();
            let h = h.clone();
            async move {
                let auth = headers.contains_key("authorization");
                h.lock().unwrap().push((uri.to_string(), auth));
                respond(&uri)
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fake { addr, hits }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> Vec<(String, bool)> {
        self.hits.lock().unwrap().clone()
    }
}

/// The attacker's host: a second loopback address, so "another host" is real.
async fn evil() -> Fake {
    Fake::start(
        "127.0.0.2",
        Arc::new(|_| (StatusCode::OK, "{\"data\": []}").into_response()),
    )
    .await
}

fn page_with_next(next: String) -> Respond {
    Arc::new(move |uri: &Uri| {
        if uri.path().ends_with("/conversations/list") {
            axum::Json(json!({"data": [{"id": 1, "updatedAt": 1_700_000_000_000_i64, "contactId": 5}], "links": {"next": next}}))
                .into_response()
        } else {
            (StatusCode::NOT_FOUND, "{\"error\": {\"message\": \"no\"}}").into_response()
        }
    })
}

fn redirect_to(target: String) -> Respond {
    Arc::new(move |_uri: &Uri| {
        (StatusCode::FOUND, [("location", target.clone())], "").into_response()
    })
}

/// An env whose credential `t` points at `fake` (the sandbox is unused but harmless).
pub(crate) async fn env_for(fake: &Fake) -> Env {
    let env = Env::bare(crate::common::small(1)).await;
    env.store()
        .add_credential(&store::NewCredential {
            name: "t".into(),
            description: None,
            base_url: Some(fake.url()),
            api_key: SecretString::from("tok-ssrf-canary-0123456789"),
            rate_limit_per_min: 60_000,
        })
        .unwrap();
    env
}

async fn sync_conversations(env: &Env) -> Out {
    let db = format!("sqlite:{}", env.path("out.db").display());
    env.run(&[
        "sync",
        "--credential",
        "t",
        "--streams",
        "conversations",
        "--destination",
        &db,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_links_to_another_host_or_port_are_refused_and_never_requested() {
    let evil = evil().await;
    let other_port = Fake::start(
        "127.0.0.1",
        Arc::new(|_| (StatusCode::OK, "{}").into_response()),
    )
    .await;
    for (what, next) in [
        (
            "other host",
            format!("{}/conversations/list?page_token=2", evil.url()),
        ),
        (
            "other port",
            format!("{}/conversations/list?page_token=2", other_port.url()),
        ),
        (
            "scheme-relative",
            format!("//{}/conversations/list?page_token=2", evil.addr),
        ),
        (
            "https downgrade to other host",
            format!("https://{}/x", evil.addr),
        ),
    ] {
        let drift = Fake::start("127.0.0.1", page_with_next(next)).await;
        let env = env_for(&drift).await;
        let out = sync_conversations(&env).await;
        out.expect(1, what);
        assert!(
            out.stderr.contains("refused") || out.stderr.contains("not the credential"),
            "{what}: {}",
            out.stderr
        );
        assert!(!drift.hits().is_empty(), "{what}: the first page was read");
    }
    assert_eq!(evil.hits(), vec![], "the other host got requests");
    assert_eq!(other_port.hits(), vec![], "the other port got requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_another_host_are_not_followed() {
    let evil = evil().await;
    let drift = Fake::start("127.0.0.1", redirect_to(format!("{}/steal", evil.url()))).await;
    let env = env_for(&drift).await;
    let out = sync_conversations(&env).await;
    out.expect(1, "redirected sync");
    assert!(out.stderr.contains("redirect"), "{}", out.stderr);
    let test = env.run(&["credentials", "test", "t"]).await;
    crate::common::assert_no_panic(&test, "redirected credential test");
    assert_ne!(test.code, 0, "a redirect is not a verified credential");
    let input = env.write("in.csv", "email\nssrf@example.com\n");
    let push = env
        .run(&[
            "push",
            "contacts",
            "--credential",
            "t",
            "--from",
            &input,
            "--results",
            "r.csv",
        ])
        .await;
    crate::common::assert_no_panic(&push, "redirected push");
    assert_ne!(push.code, 0);
    assert_eq!(
        evil.hits(),
        vec![],
        "a redirect was followed to another host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_link_header_to_another_host_is_refused() {
    let evil = evil().await;
    let next = format!("<{}/contacts?email=a&page=2>; rel=\"next\"", evil.url());
    let drift = Fake::start(
        "127.0.0.1",
        Arc::new(move |uri: &Uri| {
            if uri.path().ends_with("/contacts") {
                (StatusCode::OK, [("link", next.clone())], "{\"data\": []}").into_response()
            } else {
                (StatusCode::NOT_FOUND, "{}").into_response()
            }
        }),
    )
    .await;
    let env = env_for(&drift).await;
    let input = env.write("in.csv", "email\nlink@example.com\n");
    let out = env
        .run(&[
            "push",
            "contacts",
            "--credential",
            "t",
            "--from",
            &input,
            "--results",
            "r.csv",
        ])
        .await;
    crate::common::assert_no_panic(&out, "push with a foreign Link header");
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(!drift.hits().is_empty());
    assert_eq!(
        evil.hits(),
        vec![],
        "the Link header was followed to another host"
    );
}

/// `driftbridge serve` (the real binary) on a free loopback port with `extra` flags:
/// (child, base URL, admin token; empty after the first start).
async fn serve(env: &Env, extra: &[&str]) -> (tokio::process::Child, String, String) {
    serve_with_proxy(env, extra, None).await
}

/// [`serve`] with `HTTP_PROXY`/`HTTPS_PROXY` set to `proxy`, when given.
async fn serve_with_proxy(
    env: &Env,
    extra: &[&str],
    proxy: Option<&str>,
) -> (tokio::process::Child, String, String) {
    use tokio::io::AsyncBufReadExt;
    let mut args = vec!["--json", "serve", "--bind", "127.0.0.1:0"];
    args.extend(extra);
    let mut cmd = env.command(&args);
    for var in ["NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"] {
        cmd.env_remove(var);
    }
    if let Some(proxy) = proxy {
        for var in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"] {
            cmd.env(var, proxy);
        }
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::io::BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .unwrap()
        .expect("serve printed its address");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = v["url"].as_str().unwrap().trim_end_matches('/').to_string();
    let admin = v["admin_token"].as_str().unwrap_or_default().to_string();
    (child, url, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_contacts_private_addresses_only_with_the_flag() {
    let drift = Fake::start(
        "127.0.0.1",
        Arc::new(|_| {
            (
                StatusCode::UNAUTHORIZED,
                "{\"error\": {\"message\": \"no\"}}",
            )
                .into_response()
        }),
    )
    .await;
    // Stored by the CLI's side (any address is fine there).
    let env = env_for(&drift).await;
    let http = reqwest::Client::new();
    let (mut child, url, admin) = serve(&env, &[]).await;
    let created = http
        .post(format!("{url}/api/v1/credentials"))
        .bearer_auth(&admin)
        .json(&json!({"name": "meta", "api_key": "tok-abcdefgh12345678",
            "base_url": "http://169.254.169.254"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 422);
    let body: serde_json::Value = created.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "base_url", "{body}");
    assert!(
        body.to_string().contains("--allow-private-base-urls"),
        "{body}"
    );
    let tested: serde_json::Value = http
        .post(format!("{url}/api/v1/credentials/t/test"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["test"]["status"], "failed", "{tested}");
    assert!(
        tested["test"]["error"]
            .as_str()
            .unwrap()
            .contains("--allow-private-base-urls"),
        "{tested}"
    );
    assert_eq!(
        drift.hits(),
        vec![],
        "the server contacted a loopback address"
    );
    child.start_kill().unwrap();
    let _ = child.wait().await;

    // The admin token printed on the first start still holds.
    let (mut child, url, _) = serve(&env, &["--allow-private-base-urls"]).await;
    let tested: serde_json::Value = http
        .post(format!("{url}/api/v1/credentials/t/test"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tested["test"]["host_reached"], true, "{tested}");
    assert!(
        !drift.hits().is_empty(),
        "with the flag the server reaches it"
    );
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_does_not_carry_the_server_to_a_private_address() {
    let ok: Respond = Arc::new(|_| (StatusCode::OK, "{}").into_response());
    let drift = Fake::start("127.0.0.1", ok.clone()).await;
    let proxy = Fake::start("127.0.0.2", ok).await;
    let env = Env::bare(crate::common::small(1)).await;
    // A host name (not a literal address) that resolves to loopback, stored by the CLI's
    // side: only the connect-time check can refuse it.
    let port = drift.url().rsplit(':').next().unwrap().to_string();
    env.store()
        .add_credential(&store::NewCredential {
            name: "local".into(),
            description: None,
            base_url: Some(format!("http://localhost:{port}")),
            api_key: SecretString::from("tok-proxy-canary-0123456789"),
            rate_limit_per_min: 60_000,
        })
        .unwrap();
    let (mut child, url, admin) = serve_with_proxy(&env, &[], Some(&proxy.url())).await;
    let tested: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/api/v1/credentials/local/test"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.start_kill().unwrap();
    let _ = child.wait().await;
    assert_eq!(tested["test"]["status"], "failed", "{tested}");
    assert_eq!(proxy.hits(), vec![], "the request went through the proxy");
    assert_eq!(
        drift.hits(),
        vec![],
        "the server reached a loopback address"
    );
}
