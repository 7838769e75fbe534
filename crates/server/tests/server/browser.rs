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
