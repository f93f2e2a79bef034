//! Connection lifetime: the cap on open connections and the deadlines that reap connections
//! doing nothing useful.
//!
//! Every accepted socket holds a file descriptor and some memory until it closes. hyper bounds
//! only the HTTP/1 request *head* once a request has started, so without the rules below a
//! client could hold sockets forever by sending nothing (hyper-util's protocol detection
//! waits without a limit), only the HTTP/2 preface, or by idling on a keep-alive connection;
//! a few hundred such sockets exhaust the descriptors and real users time out.
//!
//! * **Cap.** At most `max_connections` connections are open per process; the excess is closed
//!   right after accept, before any TLS or HTTP work, and counted. Upgraded (WebSocket)
//!   connections keep their slot until the tunnel closes.
//! * **First request.** A connection must deliver a complete first request head (HTTP/1) or
//!   request (HTTP/2: HEADERS of a stream) within `first_request` of being accepted, TLS
//!   handshake and protocol detection included; otherwise it is dropped.
//! * **Idle.** A connection with no request in flight for `idle` is dropped (HTTP/1 keep-alive
//!   and HTTP/2 alike). A request is in flight from its head until its response body has been
//!   sent or abandoned, so long downloads and slow uploads are never idle.
//!
//! * **Next head (HTTP/1).** After a response, the next request head must be complete within
//!   `next_head` (the header-read timeout), or the connection is dropped: the idle rule
//!   with the shorter limit, which also bounds a slowly dripped head (slowloris).
//!
//! Dropping the connection future closes the socket; for an idle connection that is the usual
//! keep-alive race every server has (a request crossing the close is retried by clients).
//!
//! Cost per request: the rules above are checked by one timer per connection that is *not*
//! re-armed per request. Requests only record their start and end ([`Activity`]: two atomic
//! stores and a clock read); the watchdog wakes at the deadline it last computed, recomputes it
//! from the recorded activity, and sleeps again if the connection was busy meanwhile. hyper's
//! own header-read timer, which allocated and registered a timer per request, is not used for
//! HTTP/1 (see `listen::builder`).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::Instant;

use crate::ops::metrics::{CounterHandle, GaugeHandle, Metrics};

/// The connection metrics, registered once with the gateway's [`Metrics`].
#[derive(Clone)]
pub struct ConnMetrics {
    /// `aisgate_open_connections`.
    open: GaugeHandle,
    /// `aisgate_connections_refused_total`.
    refused: CounterHandle,
    /// `aisgate_connections_reaped_total{reason="first_request"}`.
    reaped_first_request: CounterHandle,
    /// `aisgate_connections_reaped_total{reason="idle"}`.
    reaped_idle: CounterHandle,
}

impl ConnMetrics {
    /// Registers the series.
    pub fn register(metrics: &mut Metrics) -> ConnMetrics {
        let reaped = |m: &mut Metrics, reason| {
            m.register_counter(
                "aisgate_connections_reaped_total",
                "Client connections closed by the gateway for sending no complete first request in time (first_request) or for idling (idle).",
                &[("reason", reason)],
            )
        };
        ConnMetrics {
            open: metrics.register_gauge(
                "aisgate_open_connections",
                "Client connections open now (upgraded ones included).",
                &[],
            ),
            refused: metrics.register_counter(
                "aisgate_connections_refused_total",
                "Client connections closed right after accept because max_connections were open.",
                &[],
            ),
            reaped_first_request: reaped(metrics, "first_request"),
            reaped_idle: reaped(metrics, "idle"),
        }
    }
}

/// Why the gateway closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaped {
    /// No complete first request within the first-request deadline.
    FirstRequest,
    /// No request in flight for the idle timeout.
    Idle,
}

impl Reaped {
    /// Label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reaped::FirstRequest => "no complete first request in time",
            Reaped::Idle => "idle",
        }
    }
}

/// Counts open connections against the cap; shared by every worker of one listener set.
pub struct ConnTracker {
    open: AtomicUsize,
    max: usize,
    metrics: ConnMetrics,
}

impl ConnTracker {
    /// A tracker allowing `max` open connections.
    pub fn new(max: usize, metrics: ConnMetrics) -> Arc<ConnTracker> {
        Arc::new(ConnTracker { open: AtomicUsize::new(0), max, metrics })
    }

    /// Takes a slot for a new connection, or `None` (counted as refused) when the cap is reached.
    pub fn try_acquire(self: &Arc<Self>) -> Option<ConnSlot> {
        let taken = self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1));
        match taken {
            Ok(n) => {
                self.metrics.open.set((n + 1) as f64);
                Some(ConnSlot(Arc::new(SlotInner(self.clone()))))
            }
            Err(_) => {
                self.metrics.refused.inc();
                None
            }
        }
    }

    /// Counts a connection closed by a deadline.
    pub fn reaped(&self, reason: Reaped) {
        match reason {
            Reaped::FirstRequest => self.metrics.reaped_first_request.inc(),
            Reaped::Idle => self.metrics.reaped_idle.inc(),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

struct SlotInner(Arc<ConnTracker>);

impl Drop for SlotInner {
    fn drop(&mut self) {
        let before = self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.open.set(before.saturating_sub(1) as f64);
    }
}

/// One open connection's place under the cap; freed when the last clone drops. A clone rides
/// in each request's extensions so an upgraded tunnel, which outlives the HTTP connection,
/// keeps the slot until it closes.
#[derive(Clone)]
pub struct ConnSlot(#[allow(dead_code)] Arc<SlotInner>);

impl std::fmt::Debug for ConnSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnSlot")
    }
}

/// Request activity on one connection, fed by the service and read by [`watchdog`].
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    served: AtomicBool,
    /// Whether the requests are HTTP/1 (the next-head rule applies); set by the first request.
    http1: AtomicBool,
    /// Last request start or end, milliseconds after `start`.
    last_ms: AtomicU64,
}

impl Activity {
    /// Activity of a connection accepted at `start`.
    pub fn new(start: Instant) -> Arc<Activity> {
        Arc::new(Activity {
            start,
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            http1: AtomicBool::new(false),
            last_ms: 0.into(),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// A request head of `version` arrived; the request is in flight until the guard drops.
    pub fn begin(self: &Arc<Self>, version: http::Version) -> InFlight {
        if !self.served.load(Ordering::Relaxed) {
            self.http1.store(version < http::Version::HTTP_2, Ordering::Release);
            self.served.store(true, Ordering::Release);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        InFlight(self.clone())
    }
}

/// A request in flight; dropping it (with the response body) ends the request.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's deadlines (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// From accept to a complete first request head (TLS handshake included).
    pub first_request: Duration,
    /// No request in flight for this long closes the connection.
    pub idle: Duration,
    /// HTTP/1: from the end of a request to the next complete request head.
    pub next_head: Duration,
}

/// Resolves when the connection should be closed: no first request by `first_deadline`, no
/// request in flight for `deadlines.idle`, or (HTTP/1) no complete next request head within
/// `deadlines.next_head` of the last request's end. Never resolves while a request is in
/// flight.
///
/// One timer, not re-armed per request: it sleeps to the deadline computed from the activity
/// it saw, and at that instant recomputes it from the activity recorded since (a request in
/// flight looks again one idle period later; a request that ended moved the deadline on).
pub async fn watchdog(activity: &Activity, first_deadline: Instant, deadlines: Deadlines) -> Reaped {
    let sleep = tokio::time::sleep_until(first_deadline);
    tokio::pin!(sleep);
    loop {
        let now = Instant::now();
        let deadline = if !activity.served.load(Ordering::Acquire) {
            Some((first_deadline, Reaped::FirstRequest))
        } else if activity.in_flight.load(Ordering::Acquire) > 0 {
            None
        } else {
            let last = activity.start + Duration::from_millis(activity.last_ms.load(Ordering::Acquire));
            let idle = if activity.http1.load(Ordering::Acquire) {
                deadlines.idle.min(deadlines.next_head)
            } else {
                deadlines.idle
            };
            Some((last + idle, Reaped::Idle))
        };
        let period = deadlines.idle.min(deadlines.next_head);
        let wake = match deadline {
            Some((at, reason)) if at <= now => return reason,
            // Not served yet: a first request that ends before the first-request deadline
            // starts the (possibly shorter) idle clock, which runs out no earlier than one idle
            // period from now, so look again then rather than at the first-request deadline.
            Some((at, Reaped::FirstRequest)) => at.min(now + period),
            Some((at, _)) => at,
            // Busy: look again one idle period from now (the deadline cannot be earlier).
            None => now + period,
        };
        sleep.as_mut().reset(wake);
        sleep.as_mut().await;
    }
}

/// A response body that keeps its request in flight until it is finished or dropped.
pub struct TrackedBody<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> TrackedBody<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, in_flight: InFlight) -> TrackedBody<B> {
        TrackedBody { inner, _in_flight: in_flight }
    }
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for TrackedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(max: usize) -> (Arc<ConnTracker>, Metrics) {
        let mut metrics = Metrics::new(&[], &[]);
        let conn = ConnMetrics::register(&mut metrics);
        (ConnTracker::new(max, conn), metrics)
    }

    #[test]
    fn the_cap_refuses_the_excess_and_frees_slots_on_drop() {
        let (t, metrics) = tracker(2);
        let a = t.try_acquire().unwrap();
        let b = t.try_acquire().unwrap();
        assert!(t.try_acquire().is_none());
        let tunnel = b.clone();
        drop(b);
        assert!(t.try_acquire().is_none(), "a clone (an upgraded tunnel) keeps the slot");
        drop(tunnel);
        assert_eq!(t.open(), 1);
        let _c = t.try_acquire().unwrap();
        drop(a);
        let text = metrics.render();
        assert!(text.contains("aisgate_connections_refused_total 2\n"), "{text}");
        assert!(text.contains("aisgate_open_connections 1\n"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_a_first_request_is_reaped_at_the_deadline() {
        let activity = Activity::new(Instant::now());
        let started = Instant::now();
        let limits = Deadlines {
            first_request: Duration::from_millis(300),
            idle: Duration::from_secs(60),
            next_head: Duration::from_secs(30),
        };
        let reason = watchdog(&activity, started + limits.first_request, limits).await;
        assert_eq!(reason, Reaped::FirstRequest);
        assert_eq!(started.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn an_http1_connection_must_deliver_its_next_head_within_the_header_read_timeout() {
        let activity = Activity::new(Instant::now());
        let limits = Deadlines {
            first_request: Duration::from_secs(5),
            idle: Duration::from_secs(60),
            next_head: Duration::from_secs(2),
        };
        let watch = watchdog(&activity, Instant::now() + limits.first_request, limits);
        tokio::pin!(watch);
        // Requests keep coming for 10 s, each a second after the last one ended: never reaped.
        for _ in 0..10 {
            let request = activity.begin(http::Version::HTTP_11);
            drop(request);
            assert!(tokio::time::timeout(Duration::from_secs(1), &mut watch).await.is_err());
        }
        // Then nothing: reaped `next_head` after the last request ended, long before `idle`.
        let ended = Instant::now() - Duration::from_secs(1);
        assert_eq!(watch.await, Reaped::Idle);
        let waited = ended.elapsed();
        assert!(waited >= Duration::from_secs(2) && waited < Duration::from_millis(2100), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_end_of_the_last_request_and_never_during_one() {
        let activity = Activity::new(Instant::now());
        let started = Instant::now();
        let request = activity.begin(http::Version::HTTP_2);
        let limits = Deadlines {
            first_request: Duration::from_millis(300),
            idle: Duration::from_secs(1),
            next_head: Duration::from_secs(30),
        };
        let watch = watchdog(&activity, started + limits.first_request, limits);
        tokio::pin!(watch);
        // A request lasting 5 s is never idle.
        assert!(tokio::time::timeout(Duration::from_secs(5), &mut watch).await.is_err());
        drop(request);
        let ended = Instant::now();
        assert_eq!(watch.await, Reaped::Idle);
        let idle = ended.elapsed();
        assert!(idle >= Duration::from_secs(1) && idle < Duration::from_millis(1100), "{idle:?}");
    }
}
