//! Per-worker pools of upstream HTTP/1 connections, built on hyper's `client::conn::http1`.
//!
//! hyper-util's legacy client did the same job with more machinery per request: a pool behind
//! a shared lock keyed by a cloned `(scheme, authority)`, a race between checkout and a lazy
//! connect future, a rewrite of the URI to origin form, and a task spawned per request to
//! wait for the connection to become idle again before returning it to the pool. Here each
//! worker thread owns its pool (see [`crate::listen::worker`]), the request arrives already
//! in origin form, and the connection goes back to the pool from the response body itself
//! once the body has ended (see [`PooledBody`]) — no task, no wake-up of its own.
//!
//! Semantics kept from the legacy client: connections are reused LIFO, a connection idle for
//! longer than [`IDLE_TIMEOUT`] is closed instead of reused, a request that never left the
//! gateway because a *reused* connection turned out closed (the keep-alive race: the upstream
//! closed it while it sat idle) is sent again on another connection, and an upgrade (101)
//! takes the connection out of the pool for good.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::ServiceExt;

use super::UpstreamError;

/// An idle connection older than this is closed rather than reused (hyper-util's
/// `pool_idle_timeout` as configured before).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// One worker's upstream connections for one trust setting (the connector carries the TLS
/// configuration), grouped by upstream.
pub struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// Per upstream; entries are never removed, so an index names an upstream for good.
    hosts: Mutex<Vec<Host>>,
}

struct Host {
    scheme: Scheme,
    authority: Authority,
    /// Idle connections, most recently used last, with the time they became idle.
    idle: Vec<(SendRequest<Body>, Instant)>,
}

impl Pool {
    /// A pool connecting through `connector`.
    pub(crate) fn new(connector: HttpsConnector<HttpConnector>) -> Arc<Pool> {
        Arc::new(Pool { connector, hosts: Mutex::new(Vec::new()) })
    }

    fn hosts(&self) -> std::sync::MutexGuard<'_, Vec<Host>> {
        // The lists stay consistent whatever panicked while holding the lock.
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The upstream's index, and its most recently idled live connection, if any.
    fn checkout(&self, scheme: &Scheme, authority: &Authority) -> (usize, Option<SendRequest<Body>>) {
        let mut hosts = self.hosts();
        let index = match hosts.iter().position(|h| h.scheme == *scheme && h.authority == *authority) {
            Some(index) => index,
            None => {
                hosts.push(Host { scheme: scheme.clone(), authority: authority.clone(), idle: Vec::new() });
                hosts.len() - 1
            }
        };
        let idle = &mut hosts[index].idle;
        let now = Instant::now();
        while let Some((sender, since)) = idle.pop() {
            if !sender.is_closed() && now.saturating_duration_since(since) < IDLE_TIMEOUT {
                return (index, Some(sender));
            }
        }
        (index, None)
    }

    /// Puts a connection whose response has ended back; drops the oldest idle one if it has
    /// expired meanwhile (the upstream side closes such connections anyway).
    fn give_back(&self, index: usize, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut hosts = self.hosts();
        if let Some(host) = hosts.get_mut(index) {
            if host.idle.first().is_some_and(|(_, since)| now.saturating_duration_since(*since) >= IDLE_TIMEOUT) {
                host.idle.remove(0);
            }
            host.idle.push((sender, now));
        }
    }

    /// Opens a connection (TCP, TLS for `https`) and starts its task on the current runtime.
    async fn connect(&self, scheme: &Scheme, authority: &Authority) -> Result<SendRequest<Body>, UpstreamError> {
        let uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| UpstreamError::Connect(crate::error_chain(&e)))?;
        let io = self
            .connector
            .clone()
            .oneshot(uri)
            .await
            .map_err(|e| UpstreamError::Connect(crate::error_chain(e.as_ref())))?;
        let (sender, connection) =
            http1::handshake(io).await.map_err(|e| UpstreamError::Connect(crate::error_chain(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %crate::error_chain(&e), "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Sends `req` (origin-form URI, `Host` set) to `scheme://authority` on an idle connection
    /// or a new one, and returns the response head; the connection goes back to the pool when
    /// the response body ends.
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut req: Request<Body>,
        scheme: &Scheme,
        authority: &Authority,
    ) -> Result<Response<Body>, UpstreamError> {
        loop {
            let (index, idle) = self.checkout(scheme, authority);
            let reused = idle.is_some();
            let mut sender = match idle {
                Some(sender) => sender,
                None => self.connect(scheme, authority).await?,
            };
            // A connection given back at the end of a body may not have polled for its next
            // request yet; `ready` waits for that (or reports it closed).
            if sender.ready().await.is_err() {
                if reused {
                    continue;
                }
                return Err(UpstreamError::Connect("upstream closed the new connection".to_owned()));
            }
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let back = (resp.status() != StatusCode::SWITCHING_PROTOCOLS).then(|| GiveBack {
                        pool: self.clone(),
                        index,
                        sender,
                    });
                    return Ok(resp.map(|body| Body::new(PooledBody { inner: body, back })));
                }
                Err(mut e) => match e.take_message() {
                    // Never sent: a reused connection closed under it. Another one may do.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(UpstreamError::Protocol(crate::error_chain(&e.into_error()))),
                },
            }
        }
    }
}

/// What returns a connection to its pool.
struct GiveBack {
    pool: Arc<Pool>,
    index: usize,
    sender: SendRequest<Body>,
}

/// An upstream response body that returns its connection to the pool once it has ended. A
/// body dropped before its end takes the connection with it (hyper closes it: the rest of
/// the response would still be on the wire).
pub struct PooledBody {
    inner: Incoming,
    back: Option<GiveBack>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(back) = self.back.take() {
            back.pool.give_back(back.index, back.sender);
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Err(_))) => self.back = None,
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body nobody polled to its end may still be complete (`Content-Length: 0`, a
        // response to HEAD, the last frame read and `is_end_stream` seen by the server).
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}
