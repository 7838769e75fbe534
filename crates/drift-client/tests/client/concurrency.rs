//! The in-flight cap, observed by a tiny HTTP server that counts requests it holds open.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use drift_client::clock::ManualClock;
use drift_client::{Client, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::TOKEN;

#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// Serves `GET /users/list`, holding each request until `hold_for` in-flight requests are
/// open at once (or 300 ms pass), and records the most requests seen in flight together.
async fn holding_server(hold_for: usize) -> (String, Arc<Gauge>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let gauge = Arc::new(Gauge::default());
    let g = gauge.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(socket, g.clone(), hold_for));
        }
    });
    (uri, gauge)
}

async fn serve(mut socket: TcpStream, gauge: Arc<Gauge>, hold_for: usize) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        buf.drain(..end);
        let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        gauge.max.fetch_max(now, Ordering::SeqCst);
        for _ in 0..30 {
            if gauge.now.load(Ordering::SeqCst) >= hold_for {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        gauge.now.fetch_sub(1, Ordering::SeqCst);
        let body = r#"{"data":[{"id":1}]}"#;
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if socket.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn max_in_flight(cap: usize, hold_for: usize) -> usize {
    let (uri, gauge) = holding_server(hold_for).await;
    let c = Client::builder(&uri, SecretString::from(TOKEN))
        .clock(ManualClock::new())
        .max_concurrency(cap)
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.users().await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().len(), 1);
    }
    gauge.max.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_never_exceed_the_cap() {
    assert_eq!(max_in_flight(2, 3).await, 2);
    // The gauge does see overlap when the cap allows it.
    assert!(max_in_flight(6, 4).await >= 4);
}
