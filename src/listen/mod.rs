//! Listeners: accept loops for the public and ops ports, TLS termination, graceful shutdown.
//!
//! On shutdown the accept loops stop first (no new connections), then every open connection
//! is asked to finish its in-flight requests and close; after the grace period whatever is
//! left is dropped.

pub mod conn;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::gateway::{self, ConnInfo};
use crate::reload::Live;

/// Connection-level limits of the public listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Maximum request head size, bytes.
    pub max_header_bytes: usize,
    /// Time for a client to send the request head; also the time from accept to a complete
    /// first request (TLS handshake and protocol detection included), HTTP/1 and HTTP/2.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Interval of HTTP/2 PINGs (`None`: no PINGs).
    pub http2_keepalive_interval: Option<Duration>,
    /// Time an HTTP/2 PING may go unanswered before the connection is closed.
    pub http2_keepalive_timeout: Duration,
    /// Open client connections allowed per process; the excess is closed right after accept.
    pub max_connections: usize,
}

/// A bound public listener.
pub struct PublicListener {
    /// The socket.
    pub listener: TcpListener,
    /// TLS termination, if configured.
    pub tls: Option<TlsAcceptor>,
}

fn builder(limits: Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // No `header_read_timeout`: hyper would allocate and register a timer for every request
    // head. The connection watchdog enforces the same limit on HTTP/1 with one timer per
    // connection (`conn::watchdog`, `Deadlines::next_head`). It must be switched off
    // explicitly: with a timer set, hyper applies a default of 30 s otherwise.
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .writev(false)
        .max_buf_size(limits.max_header_bytes.max(8192));
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        // PINGs find peers that vanished without a FIN (the idle rule finds those that idle).
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout);
    b
}

/// Serves the gateway on `public` and the ops endpoints on `ops` until `shutdown` resolves,
/// then drains connections for at most `grace`.
///
/// `gateway` is an `Arc<Gateway>` or a [`Live`] one that a reload replaces: each request is
/// served by the gateway in use when its head arrived, to its end.
///
/// Public connections are served by one single-threaded runtime per core (see
/// [`worker`]); the ops endpoints and background tasks stay on the caller's runtime.
pub async fn serve(
    gateway: impl Into<Live>,
    public: Vec<PublicListener>,
    ops: TcpListener,
    limits: Limits,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let gateway: Live = gateway.into();
    let graceful = Arc::new(GracefulShutdown::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (drained_tx, drained_rx) = watch::channel(false);
    let builder = Arc::new(builder(limits));
    // The connection metrics' series outlive reloads (`Metrics::continuing`).
    let tracker = conn::ConnTracker::new(limits.max_connections, gateway.gateway().conn_metrics.clone());
    let deadlines = conn::Deadlines {
        first_request: limits.header_read_timeout,
        idle: limits.idle_timeout,
        next_head: limits.header_read_timeout,
    };
    let mut sockets = Vec::new();
    for l in public {
        match l.listener.into_std() {
            Ok(std) => sockets.push((std, l.tls)),
            Err(e) => tracing::error!(error = %e, "cannot hand a listener to the workers"),
        }
    }
    let (loops_done_tx, mut loops_done_rx) = tokio::sync::mpsc::channel::<()>(worker::count());
    let mut threads = Vec::new();
    for index in 1..=worker::count() {
        let mut clones = Vec::new();
        for (socket, tls) in &sockets {
            match socket.try_clone() {
                Ok(clone) => clones.push((clone, tls.clone())),
                Err(e) => tracing::error!(error = %e, "cannot clone a listener for a worker"),
            }
        }
        let ctx = WorkerContext {
            gateway: gateway.clone(),
            builder: builder.clone(),
            tracker: tracker.clone(),
            deadlines,
            graceful: graceful.clone(),
            stop: stop_rx.clone(),
            drained: drained_rx.clone(),
            loops_done: loops_done_tx.clone(),
        };
        match std::thread::Builder::new()
            .name(format!("aisgate-worker-{index}"))
            .spawn(move || run_worker(index, clones, ctx))
        {
            Ok(handle) => threads.push(handle),
            Err(e) => tracing::error!(error = %e, "cannot start a worker thread"),
        }
    }
    drop(loops_done_tx);
    let ops_router = crate::ops::router(gateway.clone());
    let mut ops_stop = stop_rx.clone();
    let ops_task = tokio::spawn(async move {
        let serve = axum::serve(ops, ops_router).with_graceful_shutdown(async move {
            let _ = ops_stop.changed().await;
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "ops listener failed");
        }
    });

    shutdown.await;
    tracing::info!(grace_secs = grace.as_secs(), "shutting down: no new connections, draining in-flight requests");
    let _ = stop_tx.send(true);
    // Every worker reports once its accept loops have stopped (channel closes when all did).
    while loops_done_rx.recv().await.is_some() {}
    drop(sockets);
    let graceful = Arc::try_unwrap(graceful).unwrap_or_else(|_| GracefulShutdown::new());
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("grace period over; dropping remaining connections");
    }
    let _ = drained_tx.send(true);
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), ops_task).await;
}

struct WorkerContext {
    gateway: Live,
    builder: Arc<auto::Builder<TokioExecutor>>,
    tracker: Arc<conn::ConnTracker>,
    deadlines: conn::Deadlines,
    graceful: Arc<GracefulShutdown>,
    stop: watch::Receiver<bool>,
    drained: watch::Receiver<bool>,
    loops_done: tokio::sync::mpsc::Sender<()>,
}

fn run_worker(index: usize, sockets: Vec<(std::net::TcpListener, Option<TlsAcceptor>)>, ctx: WorkerContext) {
    worker::enter(index);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a worker runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let mut loops = tokio::task::JoinSet::new();
        for (socket, tls) in sockets {
            match TcpListener::from_std(socket) {
                Ok(listener) => {
                    let public = PublicListener { listener, tls };
                    let watcher_source = ctx.graceful.clone();
                    let shared = Shared {
                        gateway: ctx.gateway.clone(),
                        builder: ctx.builder.clone(),
                        tracker: ctx.tracker.clone(),
                        deadlines: ctx.deadlines,
                    };
                    loops.spawn(accept_loop(shared, public, watcher_source, ctx.stop.clone()));
                }
                Err(e) => tracing::error!(error = %e, "worker cannot use a listener"),
            }
        }
        while loops.join_next().await.is_some() {}
        drop(ctx.graceful);
        let _ = ctx.loops_done.send(()).await;
        drop(ctx.loops_done);
        // Keep serving in-flight connections until the drain is over.
        let mut drained = ctx.drained;
        while !*drained.borrow() {
            if drained.changed().await.is_err() {
                break;
            }
        }
    });
}

/// What every connection of a worker needs.
#[derive(Clone)]
struct Shared {
    gateway: Live,
    builder: Arc<auto::Builder<TokioExecutor>>,
    tracker: Arc<conn::ConnTracker>,
    deadlines: conn::Deadlines,
}

async fn accept_loop(
    shared: Shared,
    public: PublicListener,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = public.listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let accepted_at = tokio::time::Instant::now();
        // The cap comes first: a refused connection costs no TLS handshake, task or buffer.
        let Some(slot) = shared.tracker.try_acquire() else {
            tracing::debug!(%peer, "connection refused: max_connections open");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let shared = shared.clone();
        let tls = public.tls.clone();
        tokio::spawn(async move {
            // The whole way to a complete first request, TLS handshake included, has one deadline.
            let first_deadline = accepted_at + shared.deadlines.first_request;
            let accepted = Accepted { slot, first_deadline, watcher };
            match tls {
                None => {
                    let conn = ConnInfo { peer, tls: false };
                    serve_connection(&shared, TokioIo::new(stream), conn, accepted).await;
                }
                Some(acceptor) => {
                    let handshake_deadline = first_deadline.min(accepted_at + Duration::from_secs(10));
                    match tokio::time::timeout_at(handshake_deadline, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            let conn = ConnInfo { peer, tls: true };
                            serve_connection(&shared, TokioIo::new(tls_stream), conn, accepted).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => {
                            shared.tracker.reaped(conn::Reaped::FirstRequest);
                            tracing::debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
        });
    }
}

/// A connection past the cap, with its deadline and shutdown watcher.
struct Accepted {
    slot: conn::ConnSlot,
    first_deadline: tokio::time::Instant,
    watcher: hyper_util::server::graceful::Watcher,
}

async fn serve_connection<I>(shared: &Shared, io: I, conn: ConnInfo, accepted: Accepted)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = conn::Activity::new(tokio::time::Instant::now());
    let gateway = shared.gateway.cached();
    let service_activity = activity.clone();
    let slot = accepted.slot;
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        // The gateway in use now serves this request to its end, even across a reload.
        let gateway = gateway.gateway();
        let in_flight = service_activity.begin(req.version());
        // An upgraded tunnel outlives this connection's future and keeps the slot (see `conn`).
        // Only a request hyper can upgrade (it carries `OnUpgrade`) may become a tunnel; the
        // others skip the extension map, which the first insert would allocate.
        if req.extensions().get::<hyper::upgrade::OnUpgrade>().is_some() {
            req.extensions_mut().insert(slot.clone());
        }
        async move {
            let resp = gateway::handle(gateway, req, conn).await;
            Ok::<_, std::convert::Infallible>(resp.map(|body| conn::TrackedBody::new(body, in_flight)))
        }
    });
    let connection = shared.builder.serve_connection_with_upgrades(io, service).into_owned();
    let served = accepted.watcher.watch(connection);
    tokio::select! {
        result = served => {
            if let Err(e) = result {
                tracing::debug!(peer = %conn.peer, error = %e, "connection ended with error");
            }
        }
        reason = conn::watchdog(&activity, accepted.first_deadline, shared.deadlines) => {
            // Dropping the connection future closes the socket.
            shared.tracker.reaped(reason);
            tracing::debug!(peer = %conn.peer, reason = reason.as_str(), "connection closed by the gateway");
        }
    }
}

/// Binds every configured public address.
pub async fn bind_public(
    addrs: &[SocketAddr],
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<Vec<PublicListener>> {
    let mut out = Vec::new();
    for addr in addrs {
        let listener = TcpListener::bind(addr).await?;
        out.push(PublicListener { listener, tls: tls.clone().map(TlsAcceptor::from) });
    }
    Ok(out)
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
