//! A bounded pool for CPU-heavy login work, off the I/O workers.
//!
//! The public listener runs one single-threaded runtime per core ([`crate::listen`]): a task
//! that computes for a second stalls every connection of that core. Login messages arrive
//! unauthenticated (a pre-login cookie is all it takes), and some cost real CPU by design:
//! a SAML Response is canonicalised, its signatures verified and its EncryptedKeys unwrapped
//! with RSA private operations; a big JWT is verified against every fitting key; a big SOAP
//! body is parsed. That work runs here instead, on the pool's own threads, behind two
//! bounds:
//!
//! - at most `workers` jobs compute at once (default: one per core), so logins can never
//!   take more CPU than the cores there are, and proxied traffic keeps its share because the
//!   I/O workers never compute themselves;
//! - at most `queue` jobs wait for a worker. Beyond that a job is refused at once
//!   ([`CpuError::Busy`]): the gateway answers 503 with `Retry-After`, counts it in
//!   `aisgate_login_work_refused_total{work=…}` and logs a WARN. An unbounded queue would only
//!   turn a flood into memory growth and multi-minute latencies for real users.
//!
//! A job keeps its worker until it finishes even if the request that asked for it goes away
//! (a thread cannot be interrupted); the bound counts that CPU honestly.
//!
//! The jobs run on the pool's own threads (`aisgate-login-N`, one per worker) at a lower OS
//! priority ([`NICE`]): the I/O workers share the cores with them, and a proxied request that
//! becomes ready while a login computes should get the core first, not wait for the
//! scheduler's time slice (issue 13 item 4, measured by `bench/saml_load.sh`). The logins
//! still get every core the proxied traffic leaves idle.
//!
//! The pool is process-wide ([`global`]), sized by `Gateway::build` from `[server]
//! login_workers` / `login_queue`, so the protocol code wraps its pure-CPU call where it
//! stands ([`run`]) instead of threading a handle through every layer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::ops::metrics::{CounterHandle, Metrics};

/// Inputs below this many bytes are processed inline: the hand-off to a pool thread
/// would cost more than the work (an ordinary ID token, a KAAS answer of a few KB).
pub const INLINE_BELOW: usize = 16 * 1024;

/// How long a refused client is asked to wait before retrying, seconds (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 5;

/// How much nicer than the process the pool's threads are (at most 19; the I/O workers keep
/// the process's nice): at 10, weight 110 against 1024 when both want a core, so the
/// scheduler lets a woken I/O worker run first.
pub const NICE: i32 = 10;

/// A job for the pool's threads.
type Job = Box<dyn FnOnce() + Send>;

/// What kind of work a job is: the metric label and the log text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// SAML ACS: verify, decrypt and parse a `SAMLResponse`.
    SamlAcs,
    /// SAML single logout: binding checks and signature of a logout message.
    SamlSlo,
    /// JWS verification of an ID token, logout token or userinfo JWT.
    Jws,
    /// Parsing a KAAS SOAP body.
    Soap,
}

impl Work {
    const ALL: [Work; 4] = [Work::SamlAcs, Work::SamlSlo, Work::Jws, Work::Soap];

    /// Metric label (bounded set).
    pub fn label(self) -> &'static str {
        match self {
            Work::SamlAcs => "saml_acs",
            Work::SamlSlo => "saml_slo",
            Work::Jws => "jws",
            Work::Soap => "soap",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a job did not produce a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CpuError {
    /// Every worker is busy and the wait queue is full: refused without waiting.
    #[error("login work pool is full ({}): refused", .0.label())]
    Busy(Work),
    /// The job panicked (a bug); the request fails, the process goes on.
    #[error("login work ({}) failed unexpectedly", .0.label())]
    Failed(Work),
}

/// The pool: `workers` threads, a semaphore of `workers` permits and a bounded count of waiters.
pub struct CpuPool {
    jobs: mpsc::Sender<Job>,
    running: Arc<Semaphore>,
    workers: usize,
    waiting: AtomicUsize,
    queue: usize,
    refused: [AtomicU64; 4],
    metrics: Mutex<Option<Vec<CounterHandle>>>,
}

impl std::fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuPool")
            .field("workers", &self.workers)
            .field("queue", &self.queue)
            .field("available", &self.running.available_permits())
            .finish()
    }
}

impl CpuPool {
    /// A pool running at most `workers` jobs (at least one) with at most `queue` waiting.
    pub fn new(workers: usize, queue: usize) -> CpuPool {
        let workers = workers.max(1);
        let (jobs, receiver) = mpsc::channel::<Job>();
        // The threads end when the pool (the sender) is gone and the jobs sent are done.
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 1..=workers {
            let receiver = Arc::clone(&receiver);
            let spawned =
                std::thread::Builder::new().name(format!("aisgate-login-{index}")).spawn(move || work(&receiver));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a login work thread");
            }
        }
        CpuPool {
            jobs,
            running: Arc::new(Semaphore::new(workers)),
            workers,
            waiting: AtomicUsize::new(0),
            queue,
            refused: Default::default(),
            metrics: Mutex::new(None),
        }
    }

    /// Runs `job` on one of the pool's threads once a worker is free; refuses at once when all
    /// workers are busy and `queue` jobs already wait.
    pub async fn run<T, F>(&self, work: Work, job: F) -> Result<T, CpuError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self.admit(work).await?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // Held until the job is done, even if the caller has gone away.
            let _permit = permit;
            // A panic drops `done`: the caller sees `Failed`, the thread goes on.
            if let Ok(value) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
                let _ = done.send(value);
            }
        });
        // Fails only when no pool thread could be started.
        self.jobs.send(job).map_err(|_| CpuError::Failed(work))?;
        result.await.map_err(|_| CpuError::Failed(work))
    }

    /// Like [`CpuPool::run`], but inputs shorter than [`INLINE_BELOW`] are processed inline.
    pub async fn run_sized<T, F>(&self, work: Work, input_len: usize, job: F) -> Result<T, CpuError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if input_len < INLINE_BELOW {
            return Ok(job());
        }
        self.run(work, job).await
    }

    async fn admit(&self, work: Work) -> Result<OwnedSemaphorePermit, CpuError> {
        match Arc::clone(&self.running).try_acquire_owned() {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => return Err(self.refuse(work)),
            Err(TryAcquireError::NoPermits) => {}
        }
        // Take a place in the queue, or refuse: the count never exceeds `queue`.
        let queued =
            self.waiting.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| (w < self.queue).then_some(w + 1));
        if queued.is_err() {
            return Err(self.refuse(work));
        }
        let _place = QueuePlace(&self.waiting);
        Arc::clone(&self.running).acquire_owned().await.map_err(|_| self.refuse(work))
    }

    fn refuse(&self, work: Work) -> CpuError {
        self.refused[work.index()].fetch_add(1, Ordering::Relaxed);
        if let Some(handles) = self.metrics.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if let Some(h) = handles.get(work.index()) {
                h.inc();
            }
        }
        CpuError::Busy(work)
    }

    /// Jobs of `work` refused so far by this pool.
    pub fn refused(&self, work: Work) -> u64 {
        self.refused[work.index()].load(Ordering::Relaxed)
    }

    /// Registers `aisgate_login_work_refused_total{work}` and counts refusals there.
    pub fn register_metrics(&self, metrics: &mut Metrics) {
        let handles = Work::ALL
            .iter()
            .map(|w| {
                metrics.register_counter(
                    "aisgate_login_work_refused_total",
                    "Login messages refused at once because every CPU worker was busy and the wait queue full, by kind of work.",
                    &[("work", w.label())],
                )
            })
            .collect();
        *self.metrics.lock().unwrap_or_else(|e| e.into_inner()) = Some(handles);
    }

    /// Test hook: occupies every worker and every queue place until the guard is dropped,
    /// so the next job is refused. `None` if a job is running right now.
    #[doc(hidden)]
    pub fn hold(&self) -> Option<Hold<'_>> {
        let permits = Arc::clone(&self.running).try_acquire_many_owned(u32::try_from(self.workers).ok()?).ok()?;
        self.waiting.fetch_add(self.queue, Ordering::AcqRel);
        Some(Hold { pool: self, _permits: permits })
    }
}

/// A pool thread: lowers its own priority, then runs jobs until the pool is dropped.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>) {
    // On Linux the nice value is per thread: this one only, NICE below the process's own.
    // Without it (a sandbox refusing setpriority) the jobs still run, at the I/O workers'
    // priority.
    let me = Some(rustix::thread::gettid());
    let lowered = rustix::process::getpriority_process(me)
        .and_then(|own| rustix::process::setpriority_process(me, own.saturating_add(NICE).min(19)));
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "cannot lower the priority of a login work thread");
    }
    loop {
        let job = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        match job {
            Ok(job) => job(),
            Err(mpsc::RecvError) => return,
        }
    }
}

/// A place in the wait queue, given back when the waiter is admitted or goes away.
struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// See [`CpuPool::hold`].
#[doc(hidden)]
pub struct Hold<'a> {
    pool: &'a CpuPool,
    _permits: OwnedSemaphorePermit,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.pool.waiting.fetch_sub(self.pool.queue, Ordering::AcqRel);
    }
}

/// Default number of workers: the cores this process may use.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Default wait queue: 32 jobs per worker. A real login's ACS costs a few milliseconds of
/// CPU and a hostile one is refused by count after a parse (~2 ms), so a full queue waits
/// ~0.1–0.2 s and holds at most 32 × `max_message_bytes` per worker. Four per worker refused
/// a morning burst: 16 concurrent SAML logins on two cores got 503 (`benches/saml_logins`).
pub fn default_queue(workers: usize) -> usize {
    workers.saturating_mul(32)
}

static GLOBAL: RwLock<Option<Arc<CpuPool>>> = RwLock::new(None);

/// The process-wide pool (created with defaults on first use).
pub fn global() -> Arc<CpuPool> {
    if let Some(pool) = GLOBAL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Arc::clone(pool);
    }
    let mut slot = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    let workers = default_workers();
    Arc::clone(slot.get_or_insert_with(|| Arc::new(CpuPool::new(workers, default_queue(workers)))))
}

/// Replaces the process-wide pool (`Gateway::build`). Jobs already admitted finish on the
/// old one.
pub fn configure(workers: usize, queue: usize) -> Arc<CpuPool> {
    let pool = Arc::new(CpuPool::new(workers, queue));
    *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&pool));
    pool
}

/// Runs `job` on the process-wide pool; see [`CpuPool::run`].
pub async fn run<T, F>(work: Work, job: F) -> Result<T, CpuError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    global().run(work, job).await
}

/// Runs `job` on the process-wide pool unless the input is small; see [`CpuPool::run_sized`].
pub async fn run_sized<T, F>(work: Work, input_len: usize, job: F) -> Result<T, CpuError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    global().run_sized(work, input_len, job).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_runs_on_another_thread_and_returns_its_value() {
        let pool = CpuPool::new(1, 0);
        let here = std::thread::current().id();
        let there = pool.run(Work::SamlAcs, move || std::thread::current().id()).await.unwrap();
        assert_ne!(here, there, "the job must not run on the I/O worker");
    }

    #[tokio::test]
    async fn jobs_run_on_the_pools_named_threads_at_a_lower_priority() {
        let pool = CpuPool::new(1, 0);
        let (name, nice) = pool
            .run(Work::SamlAcs, || {
                let name = std::thread::current().name().map(str::to_owned);
                (name, rustix::process::getpriority_process(Some(rustix::thread::gettid())))
            })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("aisgate-login-1"));
        // Relative to the I/O worker (the test's thread): NICE lower, at most 19.
        let here = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        assert_eq!(
            nice.unwrap(),
            (here + NICE).min(19),
            "the login thread must not compete at the I/O workers' priority"
        );
    }

    #[tokio::test]
    async fn a_full_pool_refuses_at_once_and_counts_it() {
        let pool = CpuPool::new(2, 3);
        let hold = pool.hold().expect("idle pool");
        assert_eq!(pool.run(Work::Jws, || 1).await, Err(CpuError::Busy(Work::Jws)));
        assert_eq!(pool.refused(Work::Jws), 1);
        assert_eq!(pool.refused(Work::SamlAcs), 0);
        drop(hold);
        assert_eq!(pool.run(Work::Jws, || 1).await, Ok(1));
    }

    #[tokio::test]
    async fn waiters_beyond_the_queue_are_refused_and_queued_ones_run() {
        let pool = Arc::new(CpuPool::new(1, 1));
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let busy = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(Work::SamlAcs, move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                })
                .await
            })
        };
        started_rx.await.unwrap();
        // One place in the queue: this job waits there.
        let queued = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.run(Work::SamlAcs, || 7).await })
        };
        while pool.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        // The queue is full: refused without waiting.
        assert_eq!(pool.run(Work::SamlSlo, || 0).await, Err(CpuError::Busy(Work::SamlSlo)));
        assert_eq!(pool.refused(Work::SamlSlo), 1);
        release_tx.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(()));
        assert_eq!(queued.await.unwrap(), Ok(7));
        assert_eq!(pool.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn small_inputs_run_inline_even_when_the_pool_is_full() {
        let pool = CpuPool::new(1, 0);
        let _hold = pool.hold().unwrap();
        assert_eq!(pool.run_sized(Work::Soap, 100, || 3).await, Ok(3));
        assert_eq!(pool.run_sized(Work::Soap, INLINE_BELOW, || 3).await, Err(CpuError::Busy(Work::Soap)));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_request_and_frees_the_worker() {
        let pool = CpuPool::new(1, 0);
        let r: Result<(), _> = pool.run(Work::Soap, || panic!("bug")).await;
        assert_eq!(r, Err(CpuError::Failed(Work::Soap)));
        assert_eq!(pool.run(Work::Soap, || 2).await, Ok(2));
    }
}
