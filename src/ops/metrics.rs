//! Prometheus metrics for the gateway: families, registry and text encoding come from the
//! `prometheus-client` crate; this module fixes the gateway's own families, their labels and
//! HELP texts, and the handles code records through.
//!
//! The proxy records a request on every hop, so recording stays cheap: every series the hot
//! path touches is resolved into a handle before it is needed ([`AppMetrics`],
//! [`ProviderMetrics`], [`CounterHandle`], [`GaugeHandle`], [`HistogramHandle`]). Per-status
//! request counters are resolved on the first response with that status and cached, so
//! recording is an atomic add on the counter and one uncontended mutex on the duration
//! histogram (prometheus-client's). bench/README.md ("Metrics recording cost") has the
//! measurement that decided against keeping a hand-written lock-free histogram.
//!
//! Layout of the built-in families:
//!
//! * `aisgate_build_info{version}` gauge, always 1;
//! * `aisgate_active_sessions` gauge;
//! * `aisgate_session_store_bytes` gauge: what the memory store's sessions cost, bytes
//!   (the store's estimate, `MemoryStore::accounted_bytes`); 0 with a shared store;
//! * `aisgate_requests_total{app,status}` counter, a series per status code seen (codes
//!   outside 100..=599 are counted under `status="other"`);
//! * `aisgate_request_duration_seconds{app}` histogram with fixed buckets
//!   ([`REQUEST_DURATION_BUCKETS`]);
//! * `aisgate_upstream_errors_total{app,kind}` counter;
//! * `aisgate_logins_total{provider,result}` counter;
//! * `aisgate_login_refusals_total{provider,reason}` counter: every failed login by its
//!   bounded reason label (`ProviderError::label`), a series per reason seen;
//! * `aisgate_config_reloads_total{result}` counter (`success`, `failure`);
//! * `aisgate_config_info{hash}` gauge, 1 for the configuration in use (`crate::reload`).
//!
//! A hot reload builds a new gateway with [`Metrics::continuing`] the old one's metrics:
//! every family and series is shared with the previous registry, so counters keep counting
//! across reloads instead of starting again at zero.
//!
//! Requests that match no configured app are recorded on [`Metrics::gateway`] with
//! `app="_gateway"`. The output is the Prometheus text format 0.0.4
//! (`prometheus_client::encoding::prometheus_text`); the order of series inside one family
//! is not fixed.
//!
//! Invalid metric or label names passed to `register_*` are programming errors (registration
//! happens at startup with names fixed in code): they trip a `debug_assert!` in debug builds
//! and tests, and in release builds are sanitised (invalid characters replaced by `_`) so the
//! exposition always stays parseable. A conflicting registration (another type, other buckets,
//! a built-in name) gets a detached handle: it records, but is never rendered.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the `aisgate_request_duration_seconds` buckets;
/// the `+Inf` bucket is implicit.
pub const REQUEST_DURATION_BUCKETS: [f64; 13] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Label value used for requests that were not matched to any configured app.
pub const GATEWAY_APP_LABEL: &str = "_gateway";

/// Lowest HTTP status code that gets its own counter.
const STATUS_MIN: u16 = 100;
/// Highest HTTP status code that gets its own counter.
const STATUS_MAX: u16 = 599;
/// Number of per-status counters per app.
const STATUS_SLOTS: usize = (STATUS_MAX - STATUS_MIN + 1) as usize;

/// Names of the built-in families; `register_*` refuses to reuse them.
const BUILTIN_NAMES: [&str; 10] = [
    "aisgate_build_info",
    "aisgate_active_sessions",
    "aisgate_session_store_bytes",
    "aisgate_requests_total",
    "aisgate_request_duration_seconds",
    "aisgate_upstream_errors_total",
    "aisgate_logins_total",
    "aisgate_login_refusals_total",
    "aisgate_config_reloads_total",
    "aisgate_config_info",
];

/// A series' labels, in rendering order.
type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A counter family name as prometheus-client wants it: without the `_total` it appends.
fn counter_base(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

/// HELP text as prometheus-client wants it: it appends a `.`, so one is taken off first.
fn help_base(help: &str) -> &str {
    help.strip_suffix('.').unwrap_or(help)
}

/// A duration never negative or NaN reaches the sum (it would poison it for good); should one
/// arrive, it counts as 0 s.
fn clamp_seconds(seconds: f64) -> f64 {
    seconds.max(0.0)
}

/// Kind of upstream failure, the `kind` label of `aisgate_upstream_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamErrorKind {
    /// The TCP/TLS connection to the upstream could not be established.
    Connect,
    /// The upstream did not answer in time.
    Timeout,
    /// The upstream answered with something that is not valid HTTP, or the
    /// connection broke mid-response.
    Protocol,
}

impl UpstreamErrorKind {
    /// All kinds, in rendering order.
    pub const ALL: [UpstreamErrorKind; 3] = [Self::Connect, Self::Timeout, Self::Protocol];

    /// The label value: `connect`, `timeout` or `protocol`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Connect => 0,
            Self::Timeout => 1,
            Self::Protocol => 2,
        }
    }
}

/// Outcome of a login attempt, the `result` label of `aisgate_logins_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginResult {
    /// The user was authenticated and a session was created.
    Success,
    /// The identity provider rejected the user (or the user cancelled).
    Failure,
    /// The message the browser delivered failed the gateway's own checks (malformed,
    /// forged, stale, replayed, wrong audience, …): never an outage.
    Refused,
    /// The login could not complete because of a technical error (provider
    /// unreachable, invalid response, signature check failed, ...).
    Error,
}

impl LoginResult {
    /// All results, in rendering order.
    pub const ALL: [LoginResult; 4] = [Self::Success, Self::Failure, Self::Refused, Self::Error];

    /// The label value: `success`, `failure`, `refused` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Refused => 2,
            Self::Error => 3,
        }
    }
}

/// Per-app request metrics; obtained from [`Metrics::app`] or [`Metrics::gateway`].
#[derive(Debug)]
pub struct AppMetrics {
    app: String,
    /// The shared `aisgate_requests_total` family, for resolving a status's series.
    requests: Family<Labels, Counter>,
    /// Index `status - 100` for 100..=599, resolved on first use.
    status: Box<[OnceLock<Counter>]>,
    /// Responses whose status is outside 100..=599.
    status_other: OnceLock<Counter>,
    duration: Histogram,
    upstream_errors: [Counter; 3],
}

impl AppMetrics {
    fn new(app: &str, families: &BuiltinFamilies) -> Self {
        let kind = |k: UpstreamErrorKind| {
            families.upstream_errors.get_or_create_owned(&labels(&[("app", app), ("kind", k.as_str())]))
        };
        AppMetrics {
            app: app.to_owned(),
            requests: families.requests.clone(),
            status: (0..STATUS_SLOTS).map(|_| OnceLock::new()).collect(),
            status_other: OnceLock::new(),
            duration: families.duration.get_or_create_owned(&labels(&[("app", app)])),
            upstream_errors: UpstreamErrorKind::ALL.map(kind),
        }
    }

    /// The cell of `status`'s counter (`other` outside 100..=599).
    fn status_cell(&self, status: u16) -> (&OnceLock<Counter>, Option<u16>) {
        let slot = usize::from(status.wrapping_sub(STATUS_MIN));
        match self.status.get(slot) {
            Some(cell) => (cell, Some(status)),
            None => (&self.status_other, None),
        }
    }

    /// Records one finished request: increments
    /// `aisgate_requests_total{app,status}` and observes `seconds` in
    /// `aisgate_request_duration_seconds{app}`.
    ///
    /// Status codes outside 100..=599 are counted as `status="other"`.
    /// Negative or NaN durations count as 0 s.
    #[inline]
    pub fn observe_request(&self, status: u16, seconds: f64) {
        let (cell, code) = self.status_cell(status);
        cell.get_or_init(|| {
            let status = code.map_or_else(|| "other".to_owned(), |c| c.to_string());
            self.requests.get_or_create_owned(&labels(&[("app", &self.app), ("status", &status)]))
        })
        .inc();
        self.duration.observe(clamp_seconds(seconds));
    }

    /// Increments `aisgate_upstream_errors_total{app,kind}`.
    #[inline]
    pub fn upstream_error(&self, kind: UpstreamErrorKind) {
        self.upstream_errors[kind.index()].inc();
    }

    /// Current value of `aisgate_requests_total` for one status code
    /// (codes outside 100..=599 read the shared `other` counter).
    pub fn requests(&self, status: u16) -> u64 {
        self.status_cell(status).0.get().map_or(0, Counter::get)
    }

    /// Current value of `aisgate_upstream_errors_total` for one kind.
    pub fn upstream_errors(&self, kind: UpstreamErrorKind) -> u64 {
        self.upstream_errors[kind.index()].get()
    }
}

/// Per-identity-provider login metrics; obtained from [`Metrics::provider`].
#[derive(Debug)]
pub struct ProviderMetrics {
    provider: String,
    logins: [Counter; 4],
    /// The shared `aisgate_login_refusals_total` family. Its `reason` labels are a bounded set
    /// of `&'static str` (the reason enums' `label()`), so it cannot grow with input; the
    /// family's lock is fine here, failed logins are not the hot path.
    refusals: Family<Labels, Counter>,
}

impl ProviderMetrics {
    fn new(provider: &str, families: &BuiltinFamilies) -> Self {
        let result = |r: LoginResult| {
            families.logins.get_or_create_owned(&labels(&[("provider", provider), ("result", r.as_str())]))
        };
        ProviderMetrics {
            provider: provider.to_owned(),
            logins: LoginResult::ALL.map(result),
            refusals: families.refusals.clone(),
        }
    }

    fn refusal_labels(&self, reason: &str) -> Labels {
        labels(&[("provider", &self.provider), ("reason", reason)])
    }

    /// Increments `aisgate_login_refusals_total{provider,reason}`; `reason` is a bounded,
    /// static label (`ProviderError::label`), never request data.
    pub fn refusal(&self, reason: &'static str) {
        self.refusals.get_or_create(&self.refusal_labels(reason)).inc();
    }

    /// Current value of `aisgate_login_refusals_total` for one reason.
    pub fn refusals(&self, reason: &str) -> u64 {
        self.refusals.get(&self.refusal_labels(reason)).map_or(0, |c| c.get())
    }

    /// Increments `aisgate_logins_total{provider,result}`.
    #[inline]
    pub fn login(&self, result: LoginResult) {
        self.logins[result.index()].inc();
    }

    /// Current value of `aisgate_logins_total` for one result.
    pub fn logins(&self, result: LoginResult) -> u64 {
        self.logins[result.index()].get()
    }
}

/// Handle to a gauge registered with [`Metrics::register_gauge`]. Cheap to
/// clone; all clones update the same series.
///
/// An `f64` gauge that renders whole values without a fraction (`4`, not `4.0`), as the
/// hand-written exposition did, so dashboards and tests that match `… 4` keep working.
#[derive(Debug, Clone, Default)]
pub struct GaugeHandle(Arc<AtomicU64>);

impl GaugeHandle {
    /// Sets the gauge (stored as the bits of an `f64`).
    #[inline]
    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

impl TypedMetric for GaugeHandle {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for GaugeHandle {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        /// Below 2^53 every whole `f64` is an exact `i64`.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        let v = self.get();
        if v.fract() == 0.0 && v.abs() < EXACT {
            // Exact: |v| < 2^53 and whole.
            #[allow(clippy::cast_possible_truncation)]
            encoder.encode_gauge(&(v as i64))
        } else {
            encoder.encode_gauge(&v)
        }
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Handle to a counter registered with [`Metrics::register_counter`]. Cheap
/// to clone; all clones update the same series.
#[derive(Debug, Clone, Default)]
pub struct CounterHandle(Counter);

impl CounterHandle {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.inc();
    }

    /// Adds `n` (wrapping on overflow).
    #[inline]
    pub fn inc_by(&self, n: u64) {
        self.0.inc_by(n);
    }

    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A counter that exists before the metrics registry does (a component built before the
/// gateway's [`Metrics`], such as the audit writer or the session store): counts into `early`
/// until [`LateCounter::attach`] gives it the registered series, which then gets what was
/// counted so far. Attached once: a reload's registry continues the same series.
#[derive(Debug, Default)]
pub(crate) struct LateCounter {
    early: AtomicU64,
    series: OnceLock<CounterHandle>,
}

impl LateCounter {
    /// Adds one.
    pub(crate) fn inc(&self) {
        match self.series.get() {
            Some(series) => series.inc(),
            None => {
                self.early.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts into `series` from now on (and adds what was counted before); later calls are
    /// ignored.
    pub(crate) fn attach(&self, series: CounterHandle) {
        if self.series.set(series.clone()).is_ok() {
            series.inc_by(self.early.swap(0, Ordering::Relaxed));
        }
    }

    /// What was counted, attached or not.
    pub(crate) fn get(&self) -> u64 {
        self.early.load(Ordering::Relaxed) + self.series.get().map_or(0, CounterHandle::get)
    }
}

/// Handle to a histogram registered with [`Metrics::register_histogram`].
/// Cheap to clone; all clones update the same series.
#[derive(Debug, Clone)]
pub struct HistogramHandle(Histogram);

impl HistogramHandle {
    /// Records one observation, in seconds (negative or NaN count as 0).
    #[inline]
    pub fn observe(&self, seconds: f64) {
        self.0.observe(clamp_seconds(seconds));
    }
}

/// Builds a family's histograms with its bucket bounds.
#[derive(Debug, Clone)]
struct Buckets(Arc<[f64]>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// A family registered through `register_*`.
#[derive(Debug, Clone)]
enum CustomFamily {
    Counter(Family<Labels, Counter>),
    Gauge(Family<Labels, GaugeHandle>),
    Histogram(Family<Labels, Histogram, Buckets>, Arc<[f64]>),
}

/// The built-in families every [`AppMetrics`] / [`ProviderMetrics`] resolves its series in;
/// a clone shares every series (what [`Metrics::continuing`] relies on).
#[derive(Debug, Clone)]
struct BuiltinFamilies {
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, Buckets>,
    upstream_errors: Family<Labels, Counter>,
    logins: Family<Labels, Counter>,
    refusals: Family<Labels, Counter>,
    active_sessions: Gauge<i64, AtomicI64>,
    session_store_bytes: Gauge<i64, AtomicI64>,
    config_reloads: Family<Labels, Counter>,
    config_info: Family<Labels, Gauge>,
    /// `aisgate_api_auth_total{app,scheme,result,reason}`: every label is a bounded static
    /// set (app names from the config, the reason enums' labels).
    api_auth: Family<Labels, Counter>,
}

impl BuiltinFamilies {
    fn new() -> Self {
        BuiltinFamilies {
            requests: Family::default(),
            duration: Family::new_with_constructor(Buckets(REQUEST_DURATION_BUCKETS.into())),
            upstream_errors: Family::default(),
            logins: Family::default(),
            refusals: Family::default(),
            active_sessions: Gauge::default(),
            session_store_bytes: Gauge::default(),
            config_reloads: Family::default(),
            config_info: Family::default(),
            api_auth: Family::default(),
        }
    }
}

/// A family registered through `register_*`, with its name and HELP text.
#[derive(Debug, Clone)]
struct Custom {
    name: String,
    help: String,
    family: CustomFamily,
}

/// Result of a configuration reload, the `result` label of `aisgate_config_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new configuration is in use.
    Success,
    /// The reload was refused; the previous configuration stays in use.
    Failure,
}

impl ReloadResult {
    /// The label value: `success` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// All gateway metrics. Build it once at startup with [`Metrics::new`],
/// register protocol-specific series with the `register_*` methods, then
/// share it in an `Arc`; recording through the handles needs only `&self`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    families: BuiltinFamilies,
    apps: Box<[AppMetrics]>,
    gateway: AppMetrics,
    providers: Box<[ProviderMetrics]>,
    /// Families registered through `register_*`, by their (sanitised) name.
    custom: Vec<Custom>,
}

impl Metrics {
    /// Creates the built-in series for the given apps and identity providers.
    /// The position of a name in `apps` / `providers` is the index later passed
    /// to [`Metrics::app`] / [`Metrics::provider`]. Names are used verbatim as
    /// label values (escaped on output); keep them unique and do not name an
    /// app `_gateway`.
    pub fn new(apps: &[&str], providers: &[&str]) -> Metrics {
        Metrics::with_families(apps, providers, BuiltinFamilies::new(), Vec::new())
    }

    /// Metrics for a gateway that replaces the one `previous` belongs to (a hot reload):
    /// every family and series of `previous` is shared, built-in and registered alike, so
    /// counters, histograms and gauges continue instead of restarting at zero. Series of apps
    /// or providers that are gone keep their last values.
    pub fn continuing(previous: &Metrics, apps: &[&str], providers: &[&str]) -> Metrics {
        Metrics::with_families(apps, providers, previous.families.clone(), previous.custom.clone())
    }

    fn with_families(apps: &[&str], providers: &[&str], families: BuiltinFamilies, custom: Vec<Custom>) -> Metrics {
        let mut registry = Registry::default();
        let build_info = Family::<Labels, Gauge>::default();
        build_info.get_or_create(&labels(&[("version", env!("CARGO_PKG_VERSION"))])).set(1);
        registry.register("aisgate_build_info", "Build information of the running aisgate binary", build_info);
        registry.register("aisgate_active_sessions", "Number of live user sessions", families.active_sessions.clone());
        registry.register(
            "aisgate_session_store_bytes",
            "Memory the session store's sessions take, bytes (estimate; 0 with a shared store)",
            families.session_store_bytes.clone(),
        );
        let counters = [
            ("aisgate_requests", "HTTP requests answered, by app and response status", &families.requests),
            ("aisgate_upstream_errors", "Failed attempts to reach an upstream, by app and kind", &families.upstream_errors),
            ("aisgate_logins", "Login attempts, by identity provider and result", &families.logins),
            ("aisgate_login_refusals", "Failed logins, by identity provider and reason", &families.refusals),
            (
                "aisgate_config_reloads",
                "Configuration reloads (SIGHUP, POST /admin/reload), by result; a failed one left the previous configuration in use",
                &families.config_reloads,
            ),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "aisgate_request_duration_seconds",
            "Time from receiving a request until its response head is ready (bodies stream afterwards), by app",
            families.duration.clone(),
        );
        registry.register(
            "aisgate_config_info",
            "The configuration in use: hash is the first 12 hex digits of the SHA-256 of its files",
            families.config_info.clone(),
        );
        for c in &custom {
            let help = help_base(&c.help);
            match &c.family {
                CustomFamily::Counter(f) => registry.register(counter_base(&c.name), help, f.clone()),
                CustomFamily::Gauge(f) => registry.register(c.name.as_str(), help, f.clone()),
                CustomFamily::Histogram(f, _) => registry.register(c.name.as_str(), help, f.clone()),
            }
        }
        registry.register(
            "aisgate_api_auth",
            "Authentication of API requests (Authorization: Bearer / SAML), by app, scheme, result (success, refused, error, metadata) and reason (cache_hit and cache_miss for successes)",
            families.api_auth.clone(),
        );
        Metrics {
            registry,
            apps: apps.iter().map(|a| AppMetrics::new(a, &families)).collect(),
            gateway: AppMetrics::new(GATEWAY_APP_LABEL, &families),
            providers: providers.iter().map(|p| ProviderMetrics::new(p, &families)).collect(),
            families,
            custom,
        }
    }

    /// Increments `aisgate_api_auth_total{app,scheme,result,reason}`; every value is a static
    /// label or a configured app name, never request data.
    pub fn api_auth(&self, app: &str, scheme: &'static str, result: &'static str, reason: &'static str) {
        self.families
            .api_auth
            .get_or_create(&labels(&[("app", app), ("scheme", scheme), ("result", result), ("reason", reason)]))
            .inc();
    }

    /// Current value of `aisgate_api_auth_total` for one series.
    pub fn api_auths(&self, app: &str, scheme: &str, result: &str, reason: &str) -> u64 {
        self.families
            .api_auth
            .get(&labels(&[("app", app), ("scheme", scheme), ("result", result), ("reason", reason)]))
            .map_or(0, |c| c.get())
    }

    /// Metrics of the app at `index` (its position in the `apps` given to
    /// [`Metrics::new`]).
    ///
    /// An out-of-range index is a programming error: it trips a
    /// `debug_assert!`, and in release builds falls back to
    /// [`Metrics::gateway`] instead of panicking.
    #[inline]
    pub fn app(&self, index: usize) -> &AppMetrics {
        debug_assert!(index < self.apps.len(), "app index {index} out of range");
        self.apps.get(index).unwrap_or(&self.gateway)
    }

    /// Number of apps given to [`Metrics::new`].
    pub fn app_count(&self) -> usize {
        self.apps.len()
    }

    /// Metrics of the identity provider at `index` (its position in the
    /// `providers` given to [`Metrics::new`]).
    ///
    /// An out-of-range index is a programming error: it trips a
    /// `debug_assert!`, and in release builds returns a shared sink whose
    /// values are not rendered, instead of panicking.
    #[inline]
    pub fn provider(&self, index: usize) -> &ProviderMetrics {
        debug_assert!(index < self.providers.len(), "provider index {index} out of range");
        match self.providers.get(index) {
            Some(p) => p,
            None => unknown_provider_sink(),
        }
    }

    /// Number of providers given to [`Metrics::new`].
    pub fn provider_count(&self) -> usize {
        self.providers.len()
    }

    /// Metrics for requests not matched to any app (`app="_gateway"`).
    #[inline]
    pub fn gateway(&self) -> &AppMetrics {
        &self.gateway
    }

    /// Sets the `aisgate_active_sessions` gauge.
    #[inline]
    pub fn set_active_sessions(&self, n: u64) {
        self.families.active_sessions.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets the `aisgate_session_store_bytes` gauge.
    #[inline]
    pub fn set_session_store_bytes(&self, bytes: u64) {
        self.families.session_store_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Counts one configuration reload in `aisgate_config_reloads_total{result}`.
    pub fn config_reloaded(&self, result: ReloadResult) {
        self.families.config_reloads.get_or_create(&labels(&[("result", result.as_str())])).inc();
    }

    /// Current value of `aisgate_config_reloads_total` for one result.
    pub fn config_reloads(&self, result: ReloadResult) -> u64 {
        self.families.config_reloads.get(&labels(&[("result", result.as_str())])).map_or(0, |c| c.get())
    }

    /// Sets `aisgate_config_info{hash}` to 1 for `hash`, the only series of the family.
    pub fn set_config_hash(&self, hash: &str) {
        self.families.config_info.clear();
        self.families.config_info.get_or_create(&labels(&[("hash", hash)])).set(1);
    }

    /// Registers (or, when the same name, kind and label set were registered
    /// before, returns the existing) gauge series `name{labels}`.
    ///
    /// Series sharing a `name` form one family; the `help` of the first
    /// registration is kept. See the module docs for how invalid names and
    /// conflicting registrations are handled.
    pub fn register_gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)]) -> GaugeHandle {
        let Some((name, labels)) = self.checked(name, labels, MetricType::Gauge) else {
            return GaugeHandle::default();
        };
        let family = match self.family(&name) {
            Some(CustomFamily::Gauge(f)) => f.clone(),
            Some(_) => return conflict(&name, GaugeHandle::default()),
            None => {
                let family = Family::<Labels, GaugeHandle>::default();
                self.registry.register(name.as_str(), help_base(help), family.clone());
                self.custom.push(Custom { name, help: help.to_owned(), family: CustomFamily::Gauge(family.clone()) });
                family
            }
        };
        family.get_or_create_owned(&labels)
    }

    /// Registers (or returns the existing) counter series `name{labels}`.
    /// Counter names end in `_total` (appended if missing, as OpenMetrics requires).
    pub fn register_counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)]) -> CounterHandle {
        let Some((name, labels)) = self.checked(name, labels, MetricType::Counter) else {
            return CounterHandle::default();
        };
        let family = match self.family(&name) {
            Some(CustomFamily::Counter(f)) => f.clone(),
            Some(_) => return conflict(&name, CounterHandle::default()),
            None => {
                let family = Family::<Labels, Counter>::default();
                self.registry.register(counter_base(&name), help_base(help), family.clone());
                self.custom.push(Custom { name, help: help.to_owned(), family: CustomFamily::Counter(family.clone()) });
                family
            }
        };
        CounterHandle(family.get_or_create_owned(&labels))
    }

    /// Registers (or returns the existing) histogram series `name{labels}`
    /// with the given finite, strictly increasing bucket upper bounds
    /// (`+Inf` is implicit; a trailing `+Inf` is ignored). All series of one
    /// family must use the same buckets. `le` is reserved and must not appear
    /// in `labels`.
    pub fn register_histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        buckets: &[f64],
    ) -> HistogramHandle {
        let bounds: Arc<[f64]> = normalise_buckets(buckets).into();
        let detached = || HistogramHandle(Histogram::new(bounds.iter().copied()));
        let Some((name, labels)) = self.checked(name, labels, MetricType::Histogram) else {
            return detached();
        };
        let family = match self.family(&name) {
            Some(CustomFamily::Histogram(f, existing)) if **existing == *bounds => f.clone(),
            Some(CustomFamily::Histogram(..)) => {
                debug_assert!(false, "histogram {name} registered with differing buckets");
                return detached();
            }
            Some(_) => return conflict(&name, detached()),
            None => {
                let family = Family::new_with_constructor(Buckets(Arc::clone(&bounds)));
                self.registry.register(name.as_str(), help_base(help), family.clone());
                let family_kind = CustomFamily::Histogram(family.clone(), bounds);
                self.custom.push(Custom { name, help: help.to_owned(), family: family_kind });
                family
            }
        };
        HistogramHandle(family.get_or_create_owned(&labels))
    }

    /// The custom family registered as `name`, if any.
    fn family(&self, name: &str) -> Option<&CustomFamily> {
        self.custom.iter().find(|c| c.name == name).map(|c| &c.family)
    }

    /// Validates and sanitises a registration's name and labels; `None` for one that must
    /// not be rendered (a built-in name, a label named twice).
    fn checked(&self, name: &str, labels: &[(&str, &str)], kind: MetricType) -> Option<(String, Labels)> {
        debug_assert!(is_valid_metric_name(name), "invalid metric name {name:?}");
        let name = sanitise_name(name, true);
        if BUILTIN_NAMES.contains(&name.as_str()) {
            debug_assert!(false, "metric name {name:?} is reserved for a built-in");
            return None;
        }
        let histogram = matches!(kind, MetricType::Histogram);
        let mut pairs: Labels = Vec::with_capacity(labels.len());
        for (k, v) in labels {
            debug_assert!(is_valid_label_name(k), "invalid label name {k:?}");
            debug_assert!(!(histogram && *k == "le"), "label `le` is reserved in histograms");
            let mut k = sanitise_name(k, false);
            if k.starts_with("__") || (histogram && k == "le") {
                k.insert(0, 'x');
            }
            if pairs.iter().any(|(existing, _)| *existing == k) {
                debug_assert!(false, "duplicate label name {k:?} in {name}");
                return None;
            }
            pairs.push((k, (*v).to_owned()));
        }
        Some((name, pairs))
    }

    /// Renders every family in the Prometheus text exposition format 0.0.4
    /// (serve with `Content-Type: text/plain; version=0.0.4; charset=utf-8`).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096 + 2048 * (self.apps.len() + 1));
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// A registration of an existing name as another type: a programming error.
fn conflict<T>(name: &str, detached: T) -> T {
    debug_assert!(false, "metric {name} re-registered with another type");
    detached
}

/// Sink for out-of-range provider indices in release builds: its families are registered
/// nowhere, so nothing recorded there is rendered.
fn unknown_provider_sink() -> &'static ProviderMetrics {
    static SINK: OnceLock<ProviderMetrics> = OnceLock::new();
    SINK.get_or_init(|| ProviderMetrics::new("", &BuiltinFamilies::new()))
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with the reserved `__`.
fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// Replaces characters not allowed in a metric (`allow_colon`) or label name
/// by `_`, and prefixes `_` when the name is empty or starts with a digit.
fn sanitise_name(name: &str, allow_colon: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':') { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Checks bucket bounds (finite, strictly increasing; a trailing `+Inf` is
/// dropped). Invalid input trips a `debug_assert!`; release builds sort,
/// de-duplicate and drop non-finite values.
fn normalise_buckets(buckets: &[f64]) -> Vec<f64> {
    let trimmed = match buckets.split_last() {
        Some((last, rest)) if *last == f64::INFINITY => rest,
        _ => buckets,
    };
    let valid = trimmed.iter().all(|b| b.is_finite()) && trimmed.windows(2).all(|w| w[0] < w[1]);
    debug_assert!(valid, "histogram buckets must be finite and strictly increasing: {buckets:?}");
    if valid {
        return trimmed.to_vec();
    }
    let mut v: Vec<f64> = trimmed.iter().copied().filter(|b| b.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Parses sample lines into `series -> value` (series = everything before
    /// the last space), checking every non-comment line has that shape.
    fn samples(text: &str) -> HashMap<String, String> {
        let mut map = HashMap::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
            assert!(map.insert(series.to_owned(), value.to_owned()).is_none(), "duplicate series {series}");
        }
        map
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    #[test]
    fn requests_total_renders_only_nonzero_status_series() {
        let m = Metrics::new(&["portal", "eshop"], &[]);
        m.app(0).observe_request(200, 0.01);
        m.app(0).observe_request(200, 0.01);
        m.app(0).observe_request(404, 0.01);
        m.gateway().observe_request(502, 0.01);
        let text = m.render();
        let mut req: Vec<&str> = lines(&text).into_iter().filter(|l| l.starts_with("aisgate_requests_total")).collect();
        req.sort_unstable();
        assert_eq!(
            req,
            [
                r#"aisgate_requests_total{app="_gateway",status="502"} 1"#,
                r#"aisgate_requests_total{app="portal",status="200"} 2"#,
                r#"aisgate_requests_total{app="portal",status="404"} 1"#,
            ]
        );
        assert!(text.contains(
            "# HELP aisgate_requests_total HTTP requests answered, by app and response status.\n\
             # TYPE aisgate_requests_total counter\n"
        ));
    }

    #[test]
    fn status_codes_at_range_edges_and_outside_are_counted() {
        let m = Metrics::new(&["a"], &[]);
        let app = m.app(0);
        app.observe_request(100, 0.0);
        app.observe_request(599, 0.0);
        app.observe_request(99, 0.0);
        app.observe_request(600, 0.0);
        app.observe_request(0, 0.0);
        assert_eq!(app.requests(100), 1);
        assert_eq!(app.requests(599), 1);
        assert_eq!(app.requests(600), 3);
        let s = samples(&m.render());
        assert_eq!(s[r#"aisgate_requests_total{app="a",status="100"}"#], "1");
        assert_eq!(s[r#"aisgate_requests_total{app="a",status="599"}"#], "1");
        assert_eq!(s[r#"aisgate_requests_total{app="a",status="other"}"#], "3");
    }

    #[test]
    fn request_duration_histogram_buckets_are_cumulative_with_exact_sum_and_count() {
        let m = Metrics::new(&["portal"], &[]);
        let app = m.app(0);
        app.observe_request(200, 0.001); // le is inclusive: lands in 0.001
        app.observe_request(200, 0.003);
        app.observe_request(200, 0.2);
        app.observe_request(200, 30.0); // only +Inf
        let text = m.render();
        let hist: Vec<&str> = lines(&text)
            .into_iter()
            .filter(|l| l.starts_with("aisgate_request_duration_seconds") && l.contains("portal"))
            .collect();
        assert_eq!(
            hist,
            [
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="0.001"} 1"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="0.0025"} 1"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="0.005"} 2"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="0.01"} 2"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="0.025"} 2"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="0.05"} 2"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="0.1"} 2"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="0.25"} 3"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="0.5"} 3"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="1"} 3"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="2.5"} 3"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="5"} 3"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="10"} 3"#,
                r#"aisgate_request_duration_seconds_bucket{app="portal",le="+Inf"} 4"#,
                r#"aisgate_request_duration_seconds_sum{app="portal"} 30.204"#,
                r#"aisgate_request_duration_seconds_count{app="portal"} 4"#,
            ]
        );
        assert!(text.contains("# TYPE aisgate_request_duration_seconds histogram\n"));
    }

    #[test]
    fn negative_and_nan_durations_do_not_corrupt_the_sum() {
        let mut m = Metrics::new(&["a"], &[]);
        let h = m.register_histogram("h_seconds", "H.", &[], &[1.0]);
        m.app(0).observe_request(200, -1.0);
        m.app(0).observe_request(200, f64::NAN);
        h.observe(f64::NAN);
        h.observe(-2.0);
        let s = samples(&m.render());
        // Both count as 0 s: the sum stays a number, the count is exact.
        assert_eq!(s[r#"aisgate_request_duration_seconds_sum{app="a"}"#].parse::<f64>(), Ok(0.0));
        assert_eq!(s[r#"aisgate_request_duration_seconds_count{app="a"}"#], "2");
        assert_eq!(s[r#"aisgate_request_duration_seconds_bucket{app="a",le="0.001"}"#], "2");
        assert_eq!(s["h_seconds_sum"].parse::<f64>(), Ok(0.0));
        assert_eq!(s[r#"h_seconds_bucket{le="1"}"#], "2");
    }

    #[test]
    fn upstream_errors_logins_sessions_and_build_info_are_rendered() {
        let m = Metrics::new(&["a"], &["nia", "caais"]);
        m.app(0).upstream_error(UpstreamErrorKind::Timeout);
        m.app(0).upstream_error(UpstreamErrorKind::Timeout);
        m.gateway().upstream_error(UpstreamErrorKind::Connect);
        m.provider(1).login(LoginResult::Success);
        m.provider(1).login(LoginResult::Error);
        m.set_active_sessions(42);
        m.set_session_store_bytes(86_016);
        let text = m.render();
        let s = samples(&text);
        assert_eq!(s["aisgate_session_store_bytes"], "86016");
        assert_eq!(s[r#"aisgate_upstream_errors_total{app="a",kind="connect"}"#], "0");
        assert_eq!(s[r#"aisgate_upstream_errors_total{app="a",kind="timeout"}"#], "2");
        assert_eq!(s[r#"aisgate_upstream_errors_total{app="a",kind="protocol"}"#], "0");
        assert_eq!(s[r#"aisgate_upstream_errors_total{app="_gateway",kind="connect"}"#], "1");
        assert_eq!(s[r#"aisgate_logins_total{provider="nia",result="success"}"#], "0");
        assert_eq!(s[r#"aisgate_logins_total{provider="caais",result="success"}"#], "1");
        assert_eq!(s[r#"aisgate_logins_total{provider="caais",result="failure"}"#], "0");
        assert_eq!(s[r#"aisgate_logins_total{provider="caais",result="error"}"#], "1");
        assert_eq!(s["aisgate_active_sessions"], "42");
        let build = format!("aisgate_build_info{{version=\"{}\"}}", env!("CARGO_PKG_VERSION"));
        assert_eq!(s[&build], "1");
        assert!(text.starts_with("# HELP aisgate_build_info "));
        assert!(text.contains("# TYPE aisgate_active_sessions gauge\n"));
        assert!(text.contains("# TYPE aisgate_logins_total counter\n"));
        assert!(text.contains("# TYPE aisgate_upstream_errors_total counter\n"));
    }

    #[test]
    fn label_values_with_quote_backslash_and_newline_are_escaped() {
        let m = Metrics::new(&["we\"ird\\app\nx"], &[]);
        m.app(0).observe_request(200, 0.0);
        let text = m.render();
        assert!(text.lines().any(|l| l == r#"aisgate_requests_total{app="we\"ird\\app\nx",status="200"} 1"#), "{text}");
        // No raw newline leaked into a sample line: every line is a comment
        // or starts with a metric name.
        for line in text.lines() {
            assert!(line.starts_with('#') || line.starts_with("aisgate_"), "{line}");
        }
    }

    #[test]
    fn a_late_counter_keeps_what_it_counted_before_the_metrics_existed() {
        let count = LateCounter::default();
        count.inc();
        count.inc();
        let mut metrics = Metrics::new(&[], &[]);
        let series = metrics.register_counter("aisgate_late_test_total", "test", &[]);
        count.attach(series.clone());
        count.inc();
        // A reload's registry continues the series: attaching again changes nothing.
        count.attach(CounterHandle::default());
        count.inc();
        assert_eq!((series.get(), count.get()), (4, 4));
    }

    #[test]
    fn registered_counter_gauge_and_histogram_render_with_help_and_type() {
        let mut m = Metrics::new(&[], &[]);
        let c = m.register_counter(
            "aisgate_saml_assertions_total",
            "SAML assertions\nvalidated \\ rejected.",
            &[("idp", "nia"), ("outcome", "ok\"")],
        );
        let g = m.register_gauge("aisgate_jwks_keys", "Keys in the cached JWKS.", &[("provider", "caais")]);
        let g2 = m.register_gauge("aisgate_cert_expiry_seconds", "Seconds to expiry.", &[]);
        let h = m.register_histogram(
            "aisgate_idp_latency_seconds",
            "IdP round trip.",
            &[("idp", "nia")],
            &[0.1, 1.0, f64::INFINITY],
        );
        c.inc();
        c.inc_by(4);
        g.set(3.0);
        g2.set(f64::NEG_INFINITY);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(1.5);
        let text = m.render();
        let l = lines(&text);
        let start = l
            .iter()
            .position(|x| x.starts_with("# HELP aisgate_saml_assertions_total"))
            .expect("custom family rendered");
        assert_eq!(
            &l[start..],
            [
                r"# HELP aisgate_saml_assertions_total SAML assertions\nvalidated \\ rejected.",
                "# TYPE aisgate_saml_assertions_total counter",
                r#"aisgate_saml_assertions_total{idp="nia",outcome="ok\""} 5"#,
                "# HELP aisgate_jwks_keys Keys in the cached JWKS.",
                "# TYPE aisgate_jwks_keys gauge",
                r#"aisgate_jwks_keys{provider="caais"} 3"#,
                "# HELP aisgate_cert_expiry_seconds Seconds to expiry.",
                "# TYPE aisgate_cert_expiry_seconds gauge",
                "aisgate_cert_expiry_seconds -Inf",
                "# HELP aisgate_idp_latency_seconds IdP round trip.",
                "# TYPE aisgate_idp_latency_seconds histogram",
                r#"aisgate_idp_latency_seconds_bucket{idp="nia",le="0.1"} 1"#,
                r#"aisgate_idp_latency_seconds_bucket{idp="nia",le="1"} 2"#,
                r#"aisgate_idp_latency_seconds_bucket{idp="nia",le="+Inf"} 3"#,
                r#"aisgate_idp_latency_seconds_sum{idp="nia"} 2.05"#,
                r#"aisgate_idp_latency_seconds_count{idp="nia"} 3"#,
            ]
        );
    }

    #[test]
    fn series_of_one_name_share_a_family_and_reregistration_returns_the_same_series() {
        let mut m = Metrics::new(&[], &[]);
        let a = m.register_counter("x_total", "X.", &[("k", "a")]);
        let b = m.register_counter("x_total", "ignored help", &[("k", "b")]);
        let a2 = m.register_counter("x_total", "X.", &[("k", "a")]);
        a.inc();
        a2.inc();
        b.inc_by(7);
        assert_eq!(a.get(), 2);
        let text = m.render();
        assert_eq!(text.matches("# TYPE x_total counter").count(), 1);
        assert!(text.contains("x_total{k=\"a\"} 2\n") && text.contains("x_total{k=\"b\"} 7\n"), "{text}");
        assert!(!text.contains("ignored help"));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "invalid metric name")]
    fn invalid_metric_name_trips_debug_assert() {
        let mut m = Metrics::new(&[], &[]);
        let _ = m.register_gauge("bad-name", "h", &[]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "invalid label name")]
    fn reserved_label_name_trips_debug_assert() {
        let mut m = Metrics::new(&[], &[]);
        let _ = m.register_counter("ok_total", "h", &[("__name__", "v")]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "reserved for a built-in")]
    fn registering_a_builtin_name_trips_debug_assert() {
        let mut m = Metrics::new(&[], &[]);
        let _ = m.register_counter("aisgate_requests_total", "h", &[]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "another type")]
    fn registering_one_name_as_two_types_trips_debug_assert() {
        let mut m = Metrics::new(&[], &[]);
        let _ = m.register_counter("dup", "h", &[]);
        let _ = m.register_gauge("dup", "h", &[]);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "strictly increasing")]
    fn unsorted_histogram_buckets_trip_debug_assert() {
        let mut m = Metrics::new(&[], &[]);
        let _ = m.register_histogram("h_seconds", "h", &[], &[1.0, 0.5]);
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn release_builds_sanitise_bad_names_and_detach_conflicting_series() {
        let mut m = Metrics::new(&[], &[]);
        let bad = m.register_counter("bad-name", "h", &[("__x", "v"), ("a.b", "w")]);
        let builtin = m.register_counter("aisgate_requests_total", "h", &[]);
        let _ = m.register_counter("dup", "h", &[]);
        let conflict = m.register_gauge("dup", "h", &[]);
        let hist = m.register_histogram("h_seconds", "h", &[], &[1.0, 0.5, f64::NAN]);
        bad.inc();
        builtin.inc();
        conflict.set(5.0);
        hist.observe(0.7);
        m.gateway().observe_request(200, 0.0);
        let text = m.render();
        // A counter's name always ends in `_total` (prometheus-client appends it).
        assert!(text.contains("bad_name_total{x__x=\"v\",a_b=\"w\"} 1\n"), "{text}");
        assert_eq!(text.matches("# TYPE aisgate_requests_total").count(), 1);
        assert!(!text.contains("aisgate_requests_total 1"), "the detached series is not rendered: {text}");
        assert_eq!(text.matches("# TYPE dup").count(), 1);
        assert!(!text.contains("dup 5"), "{text}");
        assert!(text.contains("h_seconds_bucket{le=\"0.5\"} 0\nh_seconds_bucket{le=\"1\"} 1\n"));
    }

    #[test]
    fn name_validation_follows_the_exposition_grammar() {
        assert!(is_valid_metric_name("aisgate:rate_5m"));
        assert!(is_valid_metric_name("_x"));
        assert!(!is_valid_metric_name("5x"));
        assert!(!is_valid_metric_name(""));
        assert!(!is_valid_metric_name("a-b"));
        assert!(is_valid_label_name("app_1"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name("__reserved"));
        assert_eq!(sanitise_name("a-b.c", true), "a_b_c");
        assert_eq!(sanitise_name("9x", false), "_9x");
    }

    #[test]
    fn gauges_render_whole_values_without_a_fraction() {
        let mut m = Metrics::new(&[], &[]);
        let g = m.register_gauge("g", "G.", &[("k", "v")]);
        for (value, rendered) in [
            (4.0, "4"),
            (-3.0, "-3"),
            (0.0, "0"),
            (2.5, "2.5"),
            (1.9e9, "1900000000"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (1e300, "1e300"),
        ] {
            g.set(value);
            let s = samples(&m.render());
            assert_eq!(s[r#"g{k="v"}"#], rendered, "{value}");
        }
    }

    #[test]
    fn concurrent_recording_from_many_threads_sums_exactly() {
        const THREADS: u64 = 8;
        const PER_THREAD: u64 = 20_000;
        let mut m = Metrics::new(&["a", "b"], &["nia"]);
        let counter = m.register_counter("c_total", "c", &[]);
        let m = Arc::new(m);
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let m = Arc::clone(&m);
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        let status = if i % 2 == 0 { 200 } else { 503 };
                        m.app((t % 2) as usize).observe_request(status, 0.002);
                        m.provider(0).login(LoginResult::Failure);
                        m.app(0).upstream_error(UpstreamErrorKind::Protocol);
                        counter.inc();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("worker thread");
        }
        let total = THREADS * PER_THREAD;
        let per_app = total / 2;
        assert_eq!(m.app(0).requests(200) + m.app(0).requests(503), per_app);
        assert_eq!(m.app(1).requests(503), per_app / 2);
        assert_eq!(m.provider(0).logins(LoginResult::Failure), total);
        assert_eq!(m.app(0).upstream_errors(UpstreamErrorKind::Protocol), total);
        assert_eq!(counter.get(), total);
        let s = samples(&m.render());
        assert_eq!(s[r#"aisgate_request_duration_seconds_count{app="a"}"#], per_app.to_string());
        assert_eq!(s[r#"aisgate_request_duration_seconds_bucket{app="a",le="0.0025"}"#], per_app.to_string());
        // 80_000 × 2 ms = 160 s (an f64 sum: equal to within rounding).
        let sum: f64 = s[r#"aisgate_request_duration_seconds_sum{app="a"}"#].parse().expect("sum");
        assert!((sum - 160.0).abs() < 1e-6, "{sum}");
        assert_eq!(s["c_total"], total.to_string());
    }

    #[test]
    fn metrics_and_handles_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Metrics>();
        assert_send_sync::<AppMetrics>();
        assert_send_sync::<ProviderMetrics>();
        assert_send_sync::<GaugeHandle>();
        assert_send_sync::<CounterHandle>();
        assert_send_sync::<HistogramHandle>();
    }

    /// Micro-benchmark: `cargo test --release -- --ignored --nocapture bench_`. The
    /// comparison with the hand-written recording it replaced is `benches/metrics_recording.rs`;
    /// figures in bench/README.md ("Metrics recording cost").
    #[test]
    #[ignore = "micro-benchmark; run in release"]
    fn bench_observe_request_ns_per_op() {
        const N: u64 = 10_000_000;
        let m = Metrics::new(&["a"], &[]);
        let app = m.app(0);
        let start = std::time::Instant::now();
        for i in 0..N {
            let status = std::hint::black_box(if i % 16 == 0 { 404 } else { 200 });
            let secs = std::hint::black_box((i % 1000) as f64 * 1e-4);
            app.observe_request(status, secs);
        }
        let elapsed = start.elapsed();
        let ns = elapsed.as_nanos() as f64 / N as f64;
        println!("observe_request: {ns:.2} ns/op ({N} iterations, {elapsed:?})");
        assert_eq!(app.requests(200) + app.requests(404), N);

        let m = Arc::new(Metrics::new(&["a"], &[]));
        let start = std::time::Instant::now();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for i in 0..N {
                        let secs = std::hint::black_box((i % 1000) as f64 * 1e-4);
                        m.app(0).observe_request(200, secs);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker thread");
        }
        let elapsed = start.elapsed();
        let ns = elapsed.as_nanos() as f64 / N as f64;
        println!("observe_request, 2 threads same app: {ns:.2} ns per op per thread");
    }

    #[test]
    fn metrics_continuing_share_every_series_and_keep_one_config_hash() {
        let mut first = Metrics::new(&["a"], &["p"]);
        let custom = first.register_counter("aisgate_test_events_total", "Test events.", &[("kind", "x")]);
        first.app(0).observe_request(200, 0.01);
        first.provider(0).login(LoginResult::Success);
        custom.inc();
        first.config_reloaded(ReloadResult::Failure);
        first.set_config_hash("aaaaaaaaaaaa");

        // A reload: app "a" stays, "b" is new, provider "p" stays.
        let mut second = Metrics::continuing(&first, &["b", "a"], &["p"]);
        let again = second.register_counter("aisgate_test_events_total", "Test events.", &[("kind", "x")]);
        again.inc();
        second.app(1).observe_request(200, 0.01);
        second.provider(0).login(LoginResult::Success);
        second.config_reloaded(ReloadResult::Success);
        second.set_config_hash("bbbbbbbbbbbb");

        let text = second.render();
        assert!(text.contains("aisgate_requests_total{app=\"a\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("aisgate_logins_total{provider=\"p\",result=\"success\"} 2\n"), "{text}");
        assert!(text.contains("aisgate_test_events_total{kind=\"x\"} 2\n"), "{text}");
        assert!(text.contains("aisgate_config_reloads_total{result=\"failure\"} 1\n"), "{text}");
        assert!(text.contains("aisgate_config_reloads_total{result=\"success\"} 1\n"), "{text}");
        assert!(text.contains("aisgate_config_info{hash=\"bbbbbbbbbbbb\"} 1\n"), "{text}");
        assert!(!text.contains("aaaaaaaaaaaa"), "only the hash in use: {text}");
        assert_eq!(second.config_reloads(ReloadResult::Success), 1);
        // The old registry (still rendering for requests that began before the swap) agrees.
        assert_eq!(first.render(), text);
    }
}
