//! Per-core workers: which worker thread the current code runs on, and values kept per worker.
//!
//! The public listener runs one single-threaded runtime per core (like nginx's worker
//! processes): a connection, its request futures and the upstream connections they use stay on
//! one thread, so a proxied request costs no cross-thread wake-ups. Values that own I/O, such as
//! the upstream connection pool, are kept per worker for the same reason.

use std::cell::Cell;
use std::sync::OnceLock;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Number of worker threads (one per available core), fixed at first use.
pub fn count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 64))
}

/// Marks the current thread as worker `index` (1-based; 0 is "not a worker").
pub fn enter(index: usize) {
    WORKER.with(|w| w.set(index));
}

/// One value per worker, plus one for threads that are not workers (ops, tests).
#[derive(Clone)]
pub struct PerWorker<T>(Vec<T>);

impl<T> PerWorker<T> {
    /// Builds `count() + 1` values.
    pub fn new(mut make: impl FnMut() -> T) -> PerWorker<T> {
        PerWorker((0..=count()).map(|_| make()).collect())
    }

    /// Builds `count() + 1` values, failing on the first error.
    pub fn try_new<E>(mut make: impl FnMut() -> Result<T, E>) -> Result<PerWorker<T>, E> {
        Ok(PerWorker((0..=count()).map(|_| make()).collect::<Result<_, _>>()?))
    }

    /// The current thread's value.
    pub fn get(&self) -> &T {
        let index = WORKER.with(Cell::get);
        // Never empty: `new` builds at least one value.
        &self.0[index.min(self.0.len() - 1)]
    }
}
