//! Driving Debian's chromium through chromedriver (both from `scripts/install-browser-deps`).

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a wait for the page may take before the test fails (a bound, not an assertion).
pub const WAIT: Duration = Duration::from_secs(20);

/// A chromedriver process and a headless chromium session on it; both end on drop/close.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn find_binary(names: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([
        PathBuf::from("/usr/bin"),
        PathBuf::from("/usr/lib/chromium"),
    ]) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("{names:?} not found: install Debian's chromium and chromium-driver with scripts/install-browser-deps");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Start chromedriver on a free port and open a headless chromium at 1280x800.
    pub async fn start() -> Browser {
        let driver_bin = find_binary(&["chromedriver"]);
        let chromium = find_binary(&["chromium", "chromium-browser"]);
        let port = free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,800".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"binary": chromium, "args": args}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    let browser = Browser {
                        client,
                        driver,
                        _profile: profile,
                    };
                    browser.set_viewport(1280, 800).await;
                    return browser;
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not start a chromium session through chromedriver: {last_error}");
    }

    /// Size the window so that the page itself (the viewport) is `width` x `height`.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        let chrome = self
            .client
            .execute("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];", vec![])
            .await
            .unwrap();
        let extra = |i: usize| chrome[i].as_u64().unwrap_or(0) as u32;
        self.client
            .set_window_size(width + extra(0), height + extra(1))
            .await
            .unwrap();
    }

    pub async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no element {selector}: {e}"))
    }

    pub async fn xpath(&self, path: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(path))
            .await
            .unwrap_or_else(|e| panic!("no element {path}: {e}"))
    }

    /// Wait until the text of `selector` contains `needle`; returns the text.
    pub async fn wait_text(&self, selector: &str, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            if let Ok(el) = self.client.find(Locator::Css(selector)).await {
                last = el.text().await.unwrap_or_default();
                if last.contains(needle) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{selector} never contained {needle:?}; last text: {last:?}");
    }

    /// Scroll the first element matching `selector` to the top of the viewport.
    pub async fn scroll_to(&self, selector: &str) {
        let script = "document.querySelector(arguments[0]).scrollIntoView();";
        self.client
            .execute(script, vec![serde_json::json!(selector)])
            .await
            .unwrap();
    }

    /// Wait for the styled confirmation dialog (never the browser's `confirm()`), check its
    /// text, and press its confirm button.
    pub async fn accept_confirm(&self, needle: &str) {
        let text = self
            .wait_text("#confirm-dialog[open] #confirm-text", needle)
            .await;
        assert!(
            self.client.get_alert_text().await.is_err(),
            "a native confirm() dialog is open"
        );
        assert!(text.contains(needle), "confirm says {text:?}");
        self.css("#confirm-ok").await.click().await.unwrap();
        self.wait_gone("#confirm-dialog[open]").await;
    }

    /// Screenshots of the page at 1400 px and 390 px wide (`NAME-1400.png`, `NAME-390.png`)
    /// and, at 390 px, a check that the page itself never scrolls sideways (wide tables
    /// scroll inside their own container). The viewport goes back to 1280 x 800.
    pub async fn screenshots(&self, name: &str) {
        self.set_viewport(1400, 900).await;
        self.screenshot(&format!("{name}-1400")).await;
        self.set_viewport(390, 844).await;
        let overflow = self
            .client
            .execute(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                vec![],
            )
            .await
            .unwrap();
        let (scroll, client) = (overflow[0].as_u64().unwrap(), overflow[1].as_u64().unwrap());
        self.screenshot(&format!("{name}-390")).await;
        assert!(
            scroll <= client,
            "{name}: at 390 px the page is {scroll} px wide (viewport {client} px)"
        );
        self.set_viewport(1280, 800).await;
    }

    /// Wait until the element with id `id` has the keyboard focus.
    pub async fn wait_focus(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            last = self
                .client
                .active_element()
                .await
                .unwrap()
                .attr("id")
                .await
                .unwrap();
            if last.as_deref() == Some(id) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("#{id} never got the focus; it is on {last:?}");
    }

    /// Wait until no element matches `selector`.
    pub async fn wait_gone(&self, selector: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if self
                .client
                .find_all(Locator::Css(selector))
                .await
                .unwrap()
                .is_empty()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{selector} is still on the page");
    }

    /// Save a screenshot under `target/screenshots/NAME.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Everything a user agent holds for the page: the serialised DOM plus the value of every
    /// form field (a password field's value is not in the serialised DOM).
    pub async fn dom_and_values(&self) -> String {
        let script = "return document.documentElement.outerHTML + '\\n' + Array.from(document.querySelectorAll('input, textarea')).map(e => e.value).join('\\n');";
        self.client
            .execute(script, vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// `target/screenshots` of this workspace (or of `CARGO_TARGET_DIR`).
pub fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}
