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
//! takes the connection out of the pool for good. Unlike the legacy client's default, the
//! idle list is bounded ([`MAX_IDLE_PER_HOST`]): after a burst, the connections beyond the
//! bound are closed when they come back instead of staying open until they expire.

use std::collections::VecDeque;
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

/// Idle connections kept per upstream by one worker's pool; a connection coming back to a
/// full list closes the oldest idle one (each holds a socket, a task and its buffers on both
/// sides). Busy connections are not limited: one per request in flight.
pub(crate) const MAX_IDLE_PER_HOST: usize = 256;

/// One worker's upstream connections for one trust setting (the connector carries the TLS
/// configuration), grouped by upstream.
pub struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// Per upstream; entries are never removed, so an index names an upstream for good.
    hosts: Mutex<Vec<Host>>,
    /// Idle connections kept per upstream ([`MAX_IDLE_PER_HOST`] but in tests).
    max_idle: usize,
}

struct Host {
    scheme: Scheme,
    authority: Authority,
    /// Idle connections, most recently used last, with the time they became idle; at most
    /// [`MAX_IDLE_PER_HOST`].
    idle: VecDeque<(SendRequest<Body>, Instant)>,
}

impl Pool {
    /// A pool connecting through `connector`.
    pub(crate) fn new(connector: HttpsConnector<HttpConnector>) -> Arc<Pool> {
        Pool::keeping(connector, MAX_IDLE_PER_HOST)
    }

    /// A pool keeping at most `max_idle` idle connections per upstream.
    fn keeping(connector: HttpsConnector<HttpConnector>, max_idle: usize) -> Arc<Pool> {
        Arc::new(Pool { connector, hosts: Mutex::new(Vec::new()), max_idle })
    }

    fn hosts(&self) -> std::sync::MutexGuard<'_, Vec<Host>> {
        // The lists stay consistent whatever panicked while holding the lock.
        self.hosts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The upstream's index, and its most recently idled live connection, if any.
    fn checkout(&self, scheme: &Scheme, authority: &Authority) -> (usize, Option<SendRequest<Body>>) {
        let mut hosts = self.hosts();
        // Exact bytes, not `Authority`'s case-insensitive `==`: every request for an app
        // passes the authority compiled from its config, so spellings never vary per request
        // (two apps spelling one upstream differently get a list each, which is harmless).
        let same = |h: &Host| h.authority.as_str() == authority.as_str() && h.scheme == *scheme;
        let index = match hosts.iter().position(same) {
            Some(index) => index,
            None => {
                hosts.push(Host { scheme: scheme.clone(), authority: authority.clone(), idle: VecDeque::new() });
                hosts.len() - 1
            }
        };
        let idle = &mut hosts[index].idle;
        let now = Instant::now();
        while let Some((sender, since)) = idle.pop_back() {
            if !sender.is_closed() && now.saturating_duration_since(since) < IDLE_TIMEOUT {
                return (index, Some(sender));
            }
        }
        (index, None)
    }

    /// Puts a connection whose response has ended back; drops the oldest idle one if it has
    /// expired meanwhile (the upstream side closes such connections anyway) or if the list
    /// is full. Dropping a sender closes its connection (its task ends).
    fn give_back(&self, index: usize, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut hosts = self.hosts();
        if let Some(host) = hosts.get_mut(index) {
            let expired =
                |(_, since): &(SendRequest<Body>, Instant)| now.saturating_duration_since(*since) >= IDLE_TIMEOUT;
            if host.idle.len() >= self.max_idle || host.idle.front().is_some_and(expired) {
                host.idle.pop_front();
            }
            host.idle.push_back((sender, now));
        }
    }

    /// Idle connections kept for `scheme://authority` now.
    #[cfg(test)]
    fn idle_count(&self, scheme: &Scheme, authority: &Authority) -> usize {
        let hosts = self.hosts();
        hosts.iter().find(|h| h.scheme == *scheme && h.authority == *authority).map_or(0, |h| h.idle.len())
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
        let (sender, connection) = http1::Builder::new()
            .writev(false)
            .handshake(io)
            .await
            .map_err(|e| UpstreamError::Connect(crate::error_chain(&e)))?;
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
                // Boxed: the connect future (TCP, TLS handshake, HTTP/1 handshake) is
                // several times the size of the rest of this one, which the request's future
                // contains and moves around on every request, reused connection or not.
                None => Box::pin(self.connect(scheme, authority)).await?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;
    use tokio::sync::{mpsc, watch, Semaphore};

    /// An upstream holding every response until `release` says so; reports each request's
    /// arrival (a permit on `arrived`) and each connection's end (a message on `closed`).
    async fn held_upstream(
        arrived: Arc<Semaphore>,
        release: watch::Receiver<bool>,
        closed: mpsc::UnboundedSender<()>,
    ) -> (Authority, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = Authority::try_from(listener.local_addr().unwrap().to_string()).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let (arrived, release, closed) = (arrived.clone(), release.clone(), closed.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
                        let (arrived, mut release) = (arrived.clone(), release.clone());
                        async move {
                            arrived.add_permits(1);
                            let _ = release.wait_for(|go| *go).await;
                            Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                    let _ = closed.send(());
                });
            }
        });
        (authority, accepted)
    }

    #[tokio::test]
    async fn connections_beyond_the_idle_bound_are_closed_when_they_come_back() {
        let arrived = Arc::new(Semaphore::new(0));
        let (release, release_rx) = watch::channel(false);
        let (closed_tx, mut closed) = mpsc::unbounded_channel();
        let (authority, accepted) = held_upstream(arrived.clone(), release_rx, closed_tx).await;
        let pool =
            Pool::keeping(super::super::connector(crate::tls::insecure_client_config(), Duration::from_secs(5)), 2);
        let scheme = Scheme::HTTP;

        // Five requests in flight at once: five connections, none of them idle to reuse.
        let mut sent = Vec::new();
        for _ in 0..5 {
            let (pool, scheme, authority) = (pool.clone(), scheme.clone(), authority.clone());
            sent.push(tokio::spawn(async move {
                let req = Request::builder().uri("/").header("host", authority.as_str()).body(Body::empty()).unwrap();
                let resp = pool.send(req, &scheme, &authority).await.unwrap();
                resp.into_body().collect().await.unwrap().to_bytes()
            }));
        }
        let all_there = tokio::time::timeout(Duration::from_secs(10), arrived.acquire_many(5)).await;
        all_there.expect("five requests reach the upstream").unwrap().forget();
        release.send(true).unwrap();
        for s in sent {
            assert_eq!(s.await.unwrap(), "ok");
        }

        // All five came back; two stay idle and the pool closed the other three.
        assert_eq!(pool.idle_count(&scheme, &authority), 2);
        for n in 1..=3 {
            let ended = tokio::time::timeout(Duration::from_secs(10), closed.recv()).await;
            assert!(matches!(ended, Ok(Some(()))), "connection {n} of 3 beyond the bound was not closed");
        }
        assert!(closed.try_recv().is_err(), "an idle connection within the bound was closed");

        // The two kept are reused: two more requests open no connection.
        for _ in 0..2 {
            let req = Request::builder().uri("/").header("host", authority.as_str()).body(Body::empty()).unwrap();
            let resp = pool.send(req, &scheme, &authority).await.unwrap();
            assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "ok");
        }
        assert_eq!(pool.idle_count(&scheme, &authority), 2);
        assert_eq!(arrived.available_permits(), 2, "every request reached the upstream");
        assert_eq!(accepted.load(Ordering::SeqCst), 5, "the idle connections were reused");
    }
}
