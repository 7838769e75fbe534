//! The web UI in headless chromium: log in, add a credential through the Add New Credential
//! overlay, see its tile, test it against the sandbox; the key never reaches the page.
//! Screenshots of each screen go to `target/screenshots/`.

use crate::common::{sandbox, TestServer};
#[path = "browser_support.rs"]
mod support;
use support::Browser;

async fn log_in(b: &Browser, s: &TestServer) {
    b.client.goto(&s.url("/credentials")).await.unwrap();
    let token = b.css("#token").await;
    b.screenshot("01-login").await;
    token.send_keys(&s.token).await.unwrap();
    b.css("form.login button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.css("#add-tile").await;
}

#[tokio::test]
async fn add_a_credential_through_the_overlay_and_test_it() {
    let sandbox = sandbox().await;
    let key = sandbox.token();
    let s = TestServer::start().await;
    let b = Browser::start().await;
    log_in(&b, &s).await;
    assert!(b
        .client
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/credentials"));
    b.screenshot("02-authenticate-empty").await;

    b.css("#add-tile").await.click().await.unwrap();
    let name = b.css("#f-name").await;
    let base_url = b.css("#f-base_url").await;
    assert_eq!(
        base_url.prop("value").await.unwrap().as_deref(),
        Some("https://driftapi.com")
    );
    assert_eq!(
        b.css("#overlay-title").await.text().await.unwrap(),
        "Add New Credential"
    );
    for label in [
        "Credential Name",
        "Credential Description",
        "API Key Value",
        "Base URL",
    ] {
        b.xpath(&format!("//label[normalize-space()='{label}']"))
            .await;
    }
    b.screenshot("03-add-credential-overlay").await;

    name.send_keys("Sandbox").await.unwrap();
    b.css("#f-description")
        .await
        .send_keys("local Drift sandbox")
        .await
        .unwrap();
    b.css("#f-api_key").await.send_keys(&key).await.unwrap();
    base_url.clear().await.unwrap();
    base_url.send_keys("ftp://sandbox.example").await.unwrap();
    b.css("#credential-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let error = b.wait_text("#err-base_url", "is not supported").await;
    assert!(error.contains("use https://"), "{error}");
    assert!(
        s.store.list_credentials().unwrap().is_empty(),
        "nothing saved while a field is invalid"
    );
    b.screenshot("04-overlay-validation").await;

    base_url.clear().await.unwrap();
    base_url.send_keys(&sandbox.base_url()).await.unwrap();
    b.xpath("//form[@id='credential-form']//button[normalize-space()='Test']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#test-result", "token accepted").await;
    assert_eq!(
        b.css("#err-base_url").await.text().await.unwrap(),
        "",
        "the error is cleared"
    );
    assert!(
        s.store.list_credentials().unwrap().is_empty(),
        "Test does not save"
    );
    b.screenshot("05-overlay-tested").await;

    b.css("#credential-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_gone("#credential-form").await;
    let tile = b.wait_text("article.tile", "Sandbox").await;
    for expected in [
        "local Drift sandbox",
        "••••0000",
        "Verified",
        &sandbox.base_url(),
        "token accepted",
    ] {
        assert!(tile.contains(expected), "tile lacks {expected:?}: {tile}");
    }
    let stored = s.store.credential("Sandbox").unwrap();
    assert!(
        tile.contains(&stored.org_id.unwrap().to_string()),
        "tile shows the org id: {tile}"
    );
    b.screenshot("06-authenticate-with-tile").await;

    let source = b.client.source().await.unwrap();
    assert!(!source.contains(&key), "the key is in the page source");
    assert!(
        !b.dom_and_values().await.contains(&key),
        "the key is in the DOM"
    );

    // The tile survives a reload, and its Test button tests again.
    b.client.goto(&s.url("/credentials")).await.unwrap();
    b.wait_text("article.tile", "Sandbox").await;
    b.xpath("//article[contains(@class,'tile')]//button[normalize-space()='Test']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("article.tile .steps", "org id").await;
    assert!(!b.client.source().await.unwrap().contains(&key));
    assert!(!b.dom_and_values().await.contains(&key));

    b.set_viewport(400, 800).await;
    b.screenshot("07-authenticate-narrow").await;
    b.close().await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn create_a_data_source_in_the_wizard_run_it_and_watch_the_counts() {
    let sandbox = drift_sandbox::start(drift_sandbox::SandboxConfig {
        port: 0,
        conversations: 30,
        messages_per_conversation: 3,
        latency_ms: 40,
        ..Default::default()
    })
    .await
    .unwrap();
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let b = Browser::start().await;
    log_in(&b, &s).await;

    b.xpath("//nav//a[normalize-space()='Data sources']")
        .await
        .click()
        .await
        .unwrap();
    b.css("#new-source").await;
    b.screenshot("08-sources-empty").await;
    b.css("#new-source").await.click().await.unwrap();
    let name = b.css("#s-name").await;
    b.xpath("//legend[normalize-space()='2. Authenticate']")
        .await;
    let picked = b.css("input[name=credential]:checked").await;
    assert_eq!(
        picked.prop("value").await.unwrap().as_deref(),
        Some("Sandbox")
    );
    b.screenshot("09-new-source-wizard").await;

    b.xpath("//button[normalize-space()='Save']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#err-name", "name is empty").await;
    assert!(s.store.list_sources().unwrap().is_empty());

    name.send_keys("crm").await.unwrap();
    b.css("input[name=mode][value=full]")
        .await
        .click()
        .await
        .unwrap();
    // The structured sink form: SQLite is picked; its path, then the Test button.
    let sink = b.css("#s-sink-path").await;
    sink.clear().await.unwrap();
    let db = s.store.data_dir().join("sinks").join("ui.db");
    sink.send_keys(&db.display().to_string()).await.unwrap();
    b.css("#test-sink").await.click().await.unwrap();
    b.wait_text("#sink-test-result", "can be opened and written")
        .await;
    // PostgreSQL shows its own fields; a closed port fails the test with the reason.
    b.css("input[name=sink_kind][value=postgres]")
        .await
        .click()
        .await
        .unwrap();
    b.css("#s-pg-host")
        .await
        .send_keys("127.0.0.1")
        .await
        .unwrap();
    let port = b.css("#s-pg-port").await;
    port.clear().await.unwrap();
    port.send_keys("1").await.unwrap();
    b.css("#s-pg-database")
        .await
        .send_keys("test")
        .await
        .unwrap();
    b.css("#s-pg-password")
        .await
        .send_keys("pg-secret-never-shown")
        .await
        .unwrap();
    b.css("#test-sink").await.click().await.unwrap();
    let failed = b.wait_text("#sink-test-result", "✗").await;
    assert!(!failed.contains("pg-secret-never-shown"), "{failed}");
    b.screenshots("09b-sink-form-postgres").await;
    b.css("input[name=sink_kind][value=sqlite]")
        .await
        .click()
        .await
        .unwrap();
    b.xpath("//button[normalize-space()='Save and run']")
        .await
        .click()
        .await
        .unwrap();
    b.css("#run-figures").await;
    b.screenshot("10-run-in-progress").await;
    b.wait_text("#run-status", "Succeeded").await;
    let counts = crate::common::sandbox_counts(&sandbox).await;
    for stream in ["conversations", "messages"] {
        let written = b
            .css(&format!("tr[data-stream={stream}] td.written"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(written, counts[stream].to_string(), "{stream} written");
    }
    b.wait_text("#run-totals", "requests").await;
    // The run's log panel, polled while it ran, ends with the run's end.
    b.wait_text("#run-log", "sync succeeded").await;
    b.screenshot("11-run-finished").await;

    b.client.goto(&s.url("/runs")).await.unwrap();
    b.wait_text("main table", "Succeeded").await;
    b.screenshot("12-runs-list").await;
    b.client.goto(&s.url("/sources")).await.unwrap();
    b.wait_text("main table", "crm").await;
    b.screenshot("13-sources-list").await;
    b.close().await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn push_an_uploaded_csv_into_drift_with_a_dry_run_first() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let csv = s.store.data_dir().join("people.csv");
    std::fs::write(
        &csv,
        "email,full name\ngrace@example.test,Grace Hopper\nbad-email,Nobody\n",
    )
    .unwrap();
    let before = crate::common::sandbox_counts(&sandbox).await["contacts"]
        .as_u64()
        .unwrap();
    let b = Browser::start().await;
    log_in(&b, &s).await;
    b.xpath("//nav//a[normalize-space()='Data destinations']")
        .await
        .click()
        .await
        .unwrap();
    b.css("#d-file").await;
    b.screenshots("14-new-destination").await;
    // "Match rows on" offers the chosen object's keys only.
    b.css("#d-object")
        .await
        .select_by_value("accounts")
        .await
        .unwrap();
    b.wait_text("#d-key", "domain").await;
    let keys = b.css("#d-key").await.text().await.unwrap();
    assert!(!keys.contains("email"), "{keys}");
    b.css("#d-object")
        .await
        .select_by_value("contacts")
        .await
        .unwrap();
    b.wait_text("#d-key", "email").await;
    let file = b.css("#d-file").await;
    file.send_keys(csv.to_str().unwrap()).await.unwrap();
    b.xpath("//button[normalize-space()='Upload and show columns']")
        .await
        .click()
        .await
        .unwrap();
    let mapped = b.xpath("//label[normalize-space()='full name']").await;
    let input_id = mapped.attr("for").await.unwrap().unwrap();
    let attribute = b.css(&format!("#{input_id}")).await;
    // The picker offers Drift's attributes: `email` is matched, `full name` (not a Drift
    // attribute) is left out until the user picks, never pre-filled with a made-up name.
    assert_eq!(attribute.prop("value").await.unwrap().as_deref(), Some(""));
    let email = b.css("select[name='map:email']").await;
    assert_eq!(email.prop("value").await.unwrap().as_deref(), Some("email"));
    // A new custom attribute is flagged before any run unless allowed.
    attribute.select_by_value("new:fullName").await.unwrap();
    b.css("#dry-run").await.click().await.unwrap();
    let flagged = b
        .wait_text("#err-mapping", "Allow new custom attributes")
        .await;
    assert!(flagged.contains("fullName"), "{flagged}");
    let attribute = b.css(&format!("#{input_id}")).await;
    attribute.select_by_value("name").await.unwrap();
    b.screenshots("15-destination-mapping").await;

    b.css("#dry-run").await.click().await.unwrap();
    b.wait_text("#push-summary", "Dry run preview").await;
    let counts = b.css("#push-counts").await.text().await.unwrap();
    assert!(counts.contains("2 rows"), "{counts}");
    assert!(counts.contains("1 would be rejected"), "{counts}");
    let after_dry = crate::common::sandbox_counts(&sandbox).await["contacts"]
        .as_u64()
        .unwrap();
    assert_eq!(after_dry, before, "the dry run wrote nothing");
    b.scroll_to("#push-summary").await;
    b.screenshot("16-destination-dry-run").await;

    // Run asks first, with the counts a dry run produced; nothing is written until then.
    b.css("#push-run").await.click().await.unwrap();
    let confirm = b.wait_text("#push-confirm", "1 would be created").await;
    assert!(confirm.contains("1 would be rejected"), "{confirm}");
    assert_eq!(
        crate::common::sandbox_counts(&sandbox).await["contacts"]
            .as_u64()
            .unwrap(),
        before,
        "nothing written before the confirmation"
    );
    b.screenshots("16b-destination-confirm").await;
    b.css("#confirm-push").await.click().await.unwrap();
    b.wait_text("#push-summary", "Run finished").await;
    let counts = b.css("#push-counts").await.text().await.unwrap();
    assert!(counts.contains("1 created"), "{counts}");
    let after = crate::common::sandbox_counts(&sandbox).await["contacts"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1);
    b.scroll_to("#push-summary").await;
    b.screenshot("17-destination-run").await;

    let href = b
        .css("#results-link")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let script = "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.text()).then(done);";
    let text = b
        .client
        .execute_async(script, vec![serde_json::json!(href)])
        .await
        .unwrap();
    let text = text.as_str().unwrap();
    assert_eq!(text.lines().count(), 3, "header + 2 rows: {text}");
    assert!(text.contains("grace@example.test") && text.contains("created"));
    assert!(text.contains("rejected"));

    // Save the settings as a destination: it is listed without a reload.
    b.css("#d-save-name")
        .await
        .send_keys("Grace list")
        .await
        .unwrap();
    b.css("#save-destination").await.click().await.unwrap();
    b.wait_text("#save-result", "Saved as data destination")
        .await;
    let listed = b.wait_text("#saved-list", "Grace list").await;
    assert!(
        listed.contains("contacts") && listed.contains("email") && listed.contains("Sandbox"),
        "{listed}"
    );
    assert_eq!(
        s.store.destination("Grace list").unwrap().config["mapping"],
        "email=email,full name=name",
        "the mapping as entered, in the CLI's --map syntax"
    );
    b.scroll_to("#saved-list").await;
    b.screenshot("20-destination-saved").await;

    // Run the saved destination on a new file: upload, dry run preview.
    b.xpath("//a[@aria-label='Run Grace list']")
        .await
        .click()
        .await
        .unwrap();
    let file = b.css("#r-file").await;
    let csv2 = s.store.data_dir().join("more.csv");
    std::fs::write(
        &csv2,
        "email,full name\nkatherine@example.test,Katherine Johnson\n",
    )
    .unwrap();
    file.send_keys(csv2.to_str().unwrap()).await.unwrap();
    b.xpath("//button[normalize-space()='Upload']")
        .await
        .click()
        .await
        .unwrap();
    b.css("#dry-run").await.click().await.unwrap();
    b.wait_text("#push-summary", "Dry run preview").await;
    let counts = b.css("#push-counts").await.text().await.unwrap();
    assert!(counts.contains("1 would be created"), "{counts}");
    b.screenshot("21-saved-destination-dry-run").await;
    // Run first shows what a dry run found; only Write to Drift writes.
    b.css("#push-run").await.click().await.unwrap();
    b.wait_text("#push-confirm", "1 would be created").await;
    assert_eq!(
        crate::common::sandbox_counts(&sandbox).await["contacts"]
            .as_u64()
            .unwrap(),
        before + 1,
        "the saved destination's Run wrote before Write to Drift"
    );
    b.screenshot("21b-saved-destination-confirm").await;
    b.css("#confirm-push").await.click().await.unwrap();
    b.wait_text("#push-summary", "Run finished").await;
    assert_eq!(
        crate::common::sandbox_counts(&sandbox).await["contacts"]
            .as_u64()
            .unwrap(),
        before + 2
    );

    // Delete it from the list.
    b.xpath("//nav//a[normalize-space()='Data destinations']")
        .await
        .click()
        .await
        .unwrap();
    b.xpath("//button[@aria-label='Delete Grace list']")
        .await
        .click()
        .await
        .unwrap();
    b.accept_confirm("Grace list").await;
    b.wait_gone("#saved-list tbody tr").await;
    assert!(s.store.destination("Grace list").is_err());
    b.close().await;
    sandbox.shutdown().await;
}

/// The button `label` on the tile of credential `name`.
fn tile_button(name: &str, label: &str) -> String {
    format!("//article[contains(@class,'tile')][.//h3[normalize-space()='{name}']]//button[normalize-space()='{label}']")
}

#[tokio::test]
async fn tiles_edit_rotate_and_delete_and_the_overlay_works_by_keyboard() {
    use fantoccini::key::Key;
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Used", "tok_used_key_00001111", &sandbox.base_url())
        .await;
    s.create_credential("Spare", "tok_wrong_key_22223333", &sandbox.base_url())
        .await;
    s.store
        .add_source("crm", "Used", &["users".to_string()])
        .unwrap();
    let b = Browser::start().await;
    log_in(&b, &s).await;

    // The Content-Security-Policy (no inline script or style, no eval) lets htmx work:
    // nothing below is reported as a violation.
    b.client
        .execute(
            "window.__csp = []; document.addEventListener('securitypolicyviolation', \
             function (e) { window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });",
            vec![],
        )
        .await
        .unwrap();

    // Keyboard: Enter on the Add Credential tile opens the overlay with the name focused;
    // Escape closes it.
    b.client
        .execute("document.getElementById('add-tile').focus();", vec![])
        .await
        .unwrap();
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(&String::from(char::from(Key::Enter)))
        .await
        .unwrap();
    b.css("#f-name").await;
    b.wait_focus("f-name").await;
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(&String::from(char::from(Key::Escape)))
        .await
        .unwrap();
    b.wait_gone("#credential-form").await;
    let violations = b
        .client
        .execute("return window.__csp;", vec![])
        .await
        .unwrap();
    assert_eq!(violations, serde_json::json!([]), "CSP violations");

    b.xpath(&tile_button("Used", "Edit"))
        .await
        .click()
        .await
        .unwrap();
    let description = b.css("#f-description").await;
    description.send_keys("the CRM org").await.unwrap();
    b.screenshot("18-edit-overlay").await;
    b.css("#credential-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_gone("#credential-form").await;
    let used = s.store.credential("Used").unwrap();
    assert_eq!(used.description.as_deref(), Some("the CRM org"));
    b.wait_text(&format!("#tile-{}", used.id), "the CRM org")
        .await;

    b.xpath(&tile_button("Spare", "Rotate key"))
        .await
        .click()
        .await
        .unwrap();
    b.css("#f-api_key")
        .await
        .send_keys(&sandbox.token())
        .await
        .unwrap();
    b.css("#credential-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_gone("#credential-form").await;
    let spare = s.store.credential("Spare").unwrap();
    let tile = b
        .wait_text(&format!("#tile-{}", spare.id), "Verified")
        .await;
    assert!(tile.contains("••••0000"), "{tile}");
    assert!(!b.dom_and_values().await.contains(&sandbox.token()));

    b.xpath(&tile_button("Used", "Delete"))
        .await
        .click()
        .await
        .unwrap();
    b.accept_confirm("Used").await;
    let tile = b
        .wait_text(&format!("#tile-{}", used.id), "is used by")
        .await;
    assert!(tile.contains("data source \"crm\""), "{tile}");
    b.screenshot("19-delete-refused").await;
    assert!(s.store.credential("Used").is_ok());

    b.xpath(&tile_button("Spare", "Delete"))
        .await
        .click()
        .await
        .unwrap();
    b.accept_confirm("Spare").await;
    b.wait_gone(&format!("#tile-{}", spare.id)).await;
    assert!(s.store.credential("Spare").is_err());
    b.close().await;
    sandbox.shutdown().await;
}

/// Send one key (or a chord ending with the null key) to the focused element.
async fn press(b: &Browser, keys: &str) {
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(keys)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_key_keeps_the_overlay_open_and_the_dialog_keeps_the_keyboard_focus() {
    use fantoccini::key::Key;
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    let b = Browser::start().await;
    log_in(&b, &s).await;
    b.screenshots("22-authenticate").await;

    // Keyboard: the overlay opens from the Add tile and Tab stays inside it both ways.
    b.client
        .execute("document.getElementById('add-tile').focus();", vec![])
        .await
        .unwrap();
    press(&b, &String::from(char::from(Key::Enter))).await;
    b.wait_focus("f-name").await;
    b.client
        .execute("document.getElementById('overlay-cancel').focus();", vec![])
        .await
        .unwrap();
    press(&b, &String::from(char::from(Key::Tab))).await;
    b.wait_focus("f-name").await;
    let back_tab: String = [
        char::from(Key::Shift),
        char::from(Key::Tab),
        char::from(Key::Null),
    ]
    .iter()
    .collect();
    press(&b, &back_tab).await;
    b.wait_focus("overlay-cancel").await;
    // Escape closes it and gives the focus back to the tile that opened it.
    press(&b, &String::from(char::from(Key::Escape))).await;
    b.wait_gone("#credential-form").await;
    b.wait_focus("add-tile").await;

    // A key Drift rejects: nothing saved, the form stays with the error on the key field,
    // and the message names the web UI's own way out (no CLI command).
    b.css("#add-tile").await.click().await.unwrap();
    b.css("#f-name").await.send_keys("Main").await.unwrap();
    b.css("#f-api_key")
        .await
        .send_keys("tok_not_the_sandbox_token_1234")
        .await
        .unwrap();
    let base_url = b.css("#f-base_url").await;
    base_url.clear().await.unwrap();
    base_url.send_keys(&sandbox.base_url()).await.unwrap();
    b.css("#credential-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let error = b.wait_text("#err-api_key", "was not saved").await;
    assert!(
        error.contains("Save even if the test fails") && !error.contains("driftbridge"),
        "{error}"
    );
    b.wait_text("#test-result", "token accepted").await;
    b.css("#credential-form").await;
    assert!(s.store.list_credentials().unwrap().is_empty());
    b.screenshots("23-overlay-test-failed").await;

    // The right key under the same name is saved.
    let key = b.css("#f-api_key").await;
    key.clear().await.unwrap();
    key.send_keys(&sandbox.token()).await.unwrap();
    b.css("#credential-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_gone("#credential-form").await;
    b.wait_text("article.tile", "Main").await;
    assert_eq!(
        s.store.credential("Main").unwrap().status.to_string(),
        "verified"
    );

    // Adding the name again points at the tile's Rotate key button.
    b.css("#add-tile").await.click().await.unwrap();
    b.css("#f-name").await.send_keys("main").await.unwrap();
    b.css("#f-api_key")
        .await
        .send_keys(&sandbox.token())
        .await
        .unwrap();
    let base_url = b.css("#f-base_url").await;
    base_url.clear().await.unwrap();
    base_url.send_keys(&sandbox.base_url()).await.unwrap();
    b.css("#credential-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let taken = b.wait_text("#err-name", "already exists").await;
    assert!(taken.contains("Rotate key button"), "{taken}");
    assert_eq!(s.store.list_credentials().unwrap().len(), 1);
    b.close().await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_data_source_is_edited_paused_reset_run_and_deleted_from_its_page() {
    let sandbox = sandbox().await;
    let s = TestServer::start().await;
    s.create_credential("Sandbox", &sandbox.token(), &sandbox.base_url())
        .await;
    let db = s.store.data_dir().join("sinks").join("crm.db");
    let created = s
        .post("/api/v1/sources")
        .json(&serde_json::json!({"name": "crm", "credential": "Sandbox",
            "streams": ["conversations", "messages"], "sink": format!("sqlite:{}", db.display()),
            "schedule": {"every_minutes": 60}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = s.store.source("crm").unwrap().id;
    let b = Browser::start().await;
    log_in(&b, &s).await;
    b.client.goto(&s.url("/sources")).await.unwrap();
    b.wait_text("main table", "crm").await;
    b.screenshots("24-sources-list").await;
    b.client
        .goto(&s.url(&format!("/sources/{id}")))
        .await
        .unwrap();
    b.css("#next-run time").await;
    b.screenshots("25-source-page").await;

    // Pause: the schedule starts nothing, and the page says so; Resume brings it back.
    b.css("#pause-source").await.click().await.unwrap();
    b.wait_text("#source-status", "Paused").await;
    b.wait_text("#next-run", "none while paused").await;
    let paused = flows::sources::SourceOptions::of(&s.store.source("crm").unwrap());
    assert!(paused.paused);
    b.css("#resume-source").await.click().await.unwrap();
    b.wait_text("#source-status", "Active").await;

    // Edit: a new name and a cron schedule.
    b.css("#edit-source").await.click().await.unwrap();
    let name = b.css("#s-name").await;
    b.screenshots("26-source-edit").await;
    name.clear().await.unwrap();
    name.send_keys("crm-nightly").await.unwrap();
    b.css("input[name=schedule][value=cron]")
        .await
        .click()
        .await
        .unwrap();
    b.css("#s-cron").await.send_keys("0 3 * * *").await.unwrap();
    b.css("#save-source").await.click().await.unwrap();
    b.wait_text("main h1, header h1", "crm-nightly").await;
    let edited = s.store.source(&id).unwrap();
    assert_eq!(edited.name, "crm-nightly");
    assert_eq!(
        flows::sources::SourceOptions::of(&edited)
            .schedule
            .unwrap()
            .cron
            .as_deref(),
        Some("0 3 * * *")
    );

    // Reset one stream (styled confirmation), then run: the reset is used up by the run.
    b.css("#reset-stream")
        .await
        .send_keys("messages")
        .await
        .unwrap();
    b.css("#reset-button").await.click().await.unwrap();
    b.accept_confirm("Read this stream in full").await;
    b.wait_text("#pending-resets", "messages").await;
    b.css("#run-now").await.click().await.unwrap();
    b.wait_text("#run-status", "Succeeded").await;
    assert!(
        flows::sources::SourceOptions::of(&s.store.source(&id).unwrap())
            .reset_streams
            .is_empty()
    );

    // The run's logs panel: search, level filter, download.
    b.wait_text("#run-log", "sync succeeded").await;
    b.screenshots("27-run-with-logs").await;
    let search = b.css("#log-q").await;
    search.send_keys("no-such-text-anywhere").await.unwrap();
    b.css("#log-search").await.click().await.unwrap();
    b.wait_text("#run-log-empty", "No log lines match").await;
    let search = b.css("#log-q").await;
    search.clear().await.unwrap();
    search.send_keys("succeeded").await.unwrap();
    b.css("#log-search").await.click().await.unwrap();
    b.wait_text("#run-log-lines", "sync succeeded").await;
    let download = b
        .client
        .execute(
            "var x = new XMLHttpRequest(); x.open('GET', document.getElementById('log-download').href, false); x.send(); return [x.status, x.getResponseHeader('content-disposition'), x.responseText];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(download[0], 200);
    assert!(download[1].as_str().unwrap().contains(".log"), "{download}");
    let text = download[2].as_str().unwrap();
    assert!(text.contains("sync succeeded"), "{text}");
    assert!(
        text.lines().all(|l| l.to_lowercase().contains("succeeded")),
        "the download is filtered as the panel is: {text}"
    );

    // The runs list filters by type; the source page charts its runs.
    b.client.goto(&s.url("/runs?type=push")).await.unwrap();
    b.wait_text("#runs-empty", "match these filters").await;
    b.client.goto(&s.url("/runs?type=sync")).await.unwrap();
    b.wait_text("main table", "crm-nightly").await;
    b.screenshots("28-runs-filtered").await;
    b.client
        .goto(&s.url(&format!("/sources/{id}")))
        .await
        .unwrap();
    b.css("#records-chart rect").await;
    // The data preview: the last rows of a stream in the SQLite sink.
    b.css("#preview-stream")
        .await
        .select_by_value("conversations")
        .await
        .unwrap();
    b.css("#preview-button").await.click().await.unwrap();
    let preview = b.wait_text("#preview-table", "_extracted_at").await;
    let rows = b
        .client
        .find_all(fantoccini::Locator::Css("#preview-table tbody tr"))
        .await
        .unwrap()
        .len();
    let counts = crate::common::sandbox_counts(&sandbox).await;
    assert_eq!(
        rows as u64,
        counts["conversations"].as_u64().unwrap().min(20),
        "{preview}"
    );
    b.screenshots("29-source-preview").await;

    // Delete, after the styled confirmation: back to the list, which no longer has it.
    b.css("#delete-source").await.click().await.unwrap();
    b.accept_confirm("Delete data source").await;
    b.wait_text("main", "No data sources yet").await;
    assert!(s.store.list_sources().unwrap().is_empty());
    b.close().await;
    sandbox.shutdown().await;
}
