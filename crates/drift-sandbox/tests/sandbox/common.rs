//! Shared helpers: start a sandbox, send requests, read JSON.
#![allow(dead_code)]

use drift_sandbox::{SandboxConfig, SandboxHandle};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;

/// A sandbox plus an HTTP client.
pub struct Sbx {
    pub handle: SandboxHandle,
    pub http: reqwest::Client,
}

/// One response, body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn header_u64(&self, name: &str) -> u64 {
        self.header(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("header {name} missing or not a number: {:?}", self.headers))
    }
    /// `error.type` of a Drift error body.
    pub fn error_type(&self) -> &str {
        self.body["error"]["type"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {}", self.text))
    }
}

/// Defaults for tests: small org, no rate limit (tests of the limit turn it on).
pub fn config() -> SandboxConfig {
    SandboxConfig {
        conversations: 60,
        accounts: 23,
        users: 5,
        rate_limit_per_min: 0,
        ..SandboxConfig::default()
    }
}

impl Sbx {
    pub async fn start(cfg: SandboxConfig) -> Sbx {
        let handle = drift_sandbox::start(cfg).await.expect("sandbox starts");
        Sbx {
            handle,
            http: reqwest::Client::new(),
        }
    }

    pub async fn default() -> Sbx {
        Sbx::start(config()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.handle.base_url(), path)
    }

    pub async fn send_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(path)
        };
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send_as(Some(&self.handle.token()), Method::GET, path, None)
            .await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Resp {
        self.send_as(Some(token), Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send_as(Some(&self.handle.token()), Method::POST, path, Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send_as(Some(&self.handle.token()), Method::PATCH, path, Some(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send_as(Some(&self.handle.token()), Method::DELETE, path, None)
            .await
    }

    /// Admin routes need no token.
    pub async fn admin_get(&self, route: &str) -> Value {
        let r = self
            .send_as(None, Method::GET, &format!("/__sandbox/{route}"), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    pub async fn admin_post(&self, route: &str, body: Value) -> Resp {
        self.send_as(
            None,
            Method::POST,
            &format!("/__sandbox/{route}"),
            Some(body),
        )
        .await
    }

    pub async fn counts(&self) -> Value {
        self.admin_get("counts").await
    }

    /// Every conversation of a full pass over the current generation, following `links.next`.
    pub async fn all_conversations(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut url = self.url(&format!("/conversations/list?{query}"));
        for _ in 0..10_000 {
            let r = self.get(&url).await;
            assert_eq!(r.status, 200, "{}", r.text);
            out.extend(
                r.body["data"]
                    .as_array()
                    .expect("data array")
                    .iter()
                    .cloned(),
            );
            match r.body["links"]["next"].as_str() {
                Some(next) => url = next.to_string(),
                None => return out,
            }
        }
        panic!("pagination did not end");
    }
}

/// `(updatedAt, id)` of a conversation row.
pub fn key(c: &Value) -> (i64, i64) {
    (
        c["updatedAt"].as_i64().unwrap_or(0),
        c["id"].as_i64().expect("id"),
    )
}
