//! Connection and request limits of `serve` (issue 17: slow or idle clients must not hold
//! memory and connections without bound).
//!
//! [`serve_connections`] accepts connections itself instead of `axum::serve`, so it can:
//! - cap the connections open at once ([`Limits::max_connections`]): at the cap, new
//!   connections wait in the kernel's accept queue until one closes;
//! - close a connection that does not deliver a whole request head within
//!   [`Limits::header_read_timeout`] (counted from its opening, or from the first byte of a
//!   following request), or that stays idle between requests longer than
//!   [`Limits::idle_timeout`];
//! - pass the client's address to handlers (`ConnectInfo<SocketAddr>`, used by the login
//!   rate limit).
//!
//! [`body_timeout`] (middleware) answers 408 when a request body stops arriving for
//! [`Limits::body_timeout`].

use crate::problem::ApiError;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// The limits of `serve`; [`Limits::default`] holds the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time a connection has to send a whole request head (request line and headers), from
    /// its opening or from the first byte of a following request: 10 s.
    pub header_read_timeout: Duration,
    /// Longest wait for the next chunk of a request body (each chunk restarts it): 30 s.
    pub body_timeout: Duration,
    /// Longest time a kept-alive connection may sit idle between requests: 60 s.
    pub idle_timeout: Duration,
    /// Most connections open at once: 512. More wait to be accepted until one closes.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// What a connection is doing, for its timeouts.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Reading a request head, since then.
    Head(Instant),
    /// A request is being handled (its body has its own timeout).
    Request,
    /// Between requests, since the last activity.
    Idle(Instant),
}

/// The clock of one connection, shared by its I/O, its service and its watchdog.
#[derive(Debug)]
struct Clock {
    phase: Mutex<Phase>,
    in_flight: AtomicUsize,
}

impl Clock {
    fn new() -> Self {
        Clock {
            phase: Mutex::new(Phase::Head(Instant::now())),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn set(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        *phase = f(*phase);
    }

    fn read_bytes(&self) {
        self.set(|p| match p {
            Phase::Idle(_) => Phase::Head(Instant::now()),
            other => other,
        });
    }

    fn wrote_bytes(&self) {
        self.set(|p| match p {
            Phase::Idle(_) => Phase::Idle(Instant::now()),
            other => other,
        });
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.set(|_| Phase::Request);
    }

    fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.set(|_| Phase::Idle(Instant::now()));
        }
    }

    /// Why the connection should be closed now, if it should.
    fn expired(&self, limits: &Limits) -> Option<&'static str> {
        match *self.phase.lock().unwrap_or_else(|e| e.into_inner()) {
            Phase::Head(since) if since.elapsed() > limits.header_read_timeout => {
                Some("no complete request head within the header-read timeout")
            }
            Phase::Idle(since) if since.elapsed() > limits.idle_timeout => {
                Some("idle longer than the keep-alive idle timeout")
            }
            _ => None,
        }
    }
}

/// A TCP stream that tells its [`Clock`] when bytes move.
struct Timed {
    inner: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Timed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.read_bytes();
        }
        polled
    }
}

impl AsyncWrite for Timed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.clock.wrote_bytes();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serve `app` on `listener` within `limits` until `shutdown` resolves; then stop accepting,
/// let the requests in progress finish and close the connections.
pub async fn serve_connections(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = limits.max_connections.max(1);
    let slots = Arc::new(tokio::sync::Semaphore::new(max));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            serve_one(stream, peer, app, limits, &mut stop).await;
        });
    }
    let _ = stop_tx.send(true);
    // Every permit back: every connection has closed.
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}

async fn serve_one(
    stream: TcpStream,
    peer: SocketAddr,
    app: axum::Router,
    limits: Limits,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let clock = Arc::new(Clock::new());
    let io = TokioIo::new(Timed {
        inner: stream,
        clock: clock.clone(),
    });
    let service_clock = clock.clone();
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            service_clock.request_started();
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let clock = service_clock.clone();
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await;
                clock.request_finished();
                response
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let check_every = (limits.header_read_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(check_every);
    let mut stopping = *stop.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tick.tick() => {
                if let Some(why) = clock.expired(&limits) {
                    tracing::debug!(peer = %peer, reason = why, "closing a connection");
                    return;
                }
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Error of a request body that stopped arriving.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body stopped arriving")
    }
}

impl std::error::Error for BodyTimedOut {}

/// Middleware: a request body that sends nothing for `limit` fails, and the request is
/// answered 408 (a problem naming the limit) and its connection closed, whatever the
/// handler made of the broken body.
pub async fn body_timeout(
    limit: Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::header;
    let has_body = request.headers().contains_key(header::CONTENT_LENGTH)
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return next.run(request).await;
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let flag = timed_out.clone();
    let stream = futures::stream::unfold(
        (body.into_data_stream(), flag, false),
        move |(mut stream, flag, done)| async move {
            if done {
                return None;
            }
            match tokio::time::timeout(limit, stream.next()).await {
                Ok(Some(item)) => Some((item, (stream, flag, false))),
                Ok(None) => None,
                Err(_) => {
                    flag.store(true, Ordering::SeqCst);
                    Some((Err(axum::Error::new(BodyTimedOut)), (stream, flag, true)))
                }
            }
        },
    );
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from_stream(stream));
    let response = next.run(request).await;
    if !timed_out.load(Ordering::SeqCst) {
        return response;
    }
    let mut response = ApiError::RequestTimeout(format!(
        "the request body stopped arriving for {} s; send it again without pausing",
        limit.as_secs()
    ))
    .into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}
