//! A simulated subject authorizer (the CRŽP role + IČO check) speaking the gateway's HTTP
//! JSON contract: `POST /authorize` `{"user","ico","operation","app"}` →
//! `{"allowed": bool, "roles": [..]}`. Grants are (user, IČO) → roles; every call is
//! counted, and knobs make it slow, down (503) or answer garbage, so tests can prove the
//! gateway's cache, timeout and fail-closed behaviour.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Value};

/// How the simulator answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// By the grants.
    Normal = 0,
    /// 503 to everything.
    Down = 1,
    /// `200` with a body that is not the contract's JSON.
    Malformed = 2,
    /// By the grants, after a delay of [`SLOW`].
    Slow = 3,
}

/// The delay of [`Mode::Slow`].
pub const SLOW: Duration = Duration::from_secs(5);

/// Roles by (user, IČO).
type Grants = HashMap<(String, String), Vec<String>>;

/// Shared state and handles of a running simulator.
#[derive(Clone, Default)]
pub struct AuthorizerSim {
    grants: Arc<Mutex<Grants>>,
    calls: Arc<AtomicU64>,
    mode: Arc<AtomicU8>,
    last: Arc<Mutex<Option<Value>>>,
}

impl AuthorizerSim {
    /// Lets `user` act for `ico` (8 digits) with `roles`.
    pub fn grant(&self, user: &str, ico: &str, roles: &[&str]) {
        if let Ok(mut g) = self.grants.lock() {
            g.insert((user.to_owned(), ico.to_owned()), roles.iter().map(|r| (*r).to_owned()).collect());
        }
    }

    /// Calls received so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The last request body received.
    pub fn last_request(&self) -> Option<Value> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    /// Switches how the simulator answers.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            1 => Mode::Down,
            2 => Mode::Malformed,
            3 => Mode::Slow,
            _ => Mode::Normal,
        }
    }
}

/// Starts the simulator on `addr`; returns its state and the endpoint URL.
pub async fn start(addr: SocketAddr) -> std::io::Result<(AuthorizerSim, String)> {
    let sim = AuthorizerSim::default();
    let router = Router::new().route("/authorize", post(authorize)).with_state(sim.clone());
    let bound = super::serve(addr, router, "simulated authorizer").await?;
    Ok((sim, format!("http://{bound}/authorize")))
}

fn json(value: &Value) -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

async fn authorize(State(sim): State<AuthorizerSim>, body: bytes::Bytes) -> Response {
    sim.calls.fetch_add(1, Ordering::SeqCst);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    if let Ok(mut last) = sim.last.lock() {
        *last = Some(body.clone());
    }
    match sim.mode() {
        Mode::Down => return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response(),
        Mode::Malformed => return json(&json!({"allowed": "yes"})),
        Mode::Slow => tokio::time::sleep(SLOW).await,
        Mode::Normal => {}
    }
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let roles = sim.grants.lock().ok().and_then(|g| g.get(&(field("user"), field("ico"))).cloned());
    match roles {
        Some(roles) => json(&json!({"allowed": true, "roles": roles})),
        None => json(&json!({"allowed": false, "roles": []})),
    }
}
