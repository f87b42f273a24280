//! Which accepted connections are served: at most `server.max_connections` at once and
//! `server.max_connections_per_ip` from one address. A connection over a cap is not left
//! waiting in the kernel's backlog (where a load balancer's health check would time out
//! behind it): it gets one short answer and is closed, `200` for `/__lbheartbeat__` and a
//! JSON error for anything else. Those answers have a small bound of their own; past it
//! a connection is closed unanswered.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::IpAddr,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    body::Body,
    http::{Request, StatusCode},
    response::{IntoResponse, Response},
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::ApiError;
use crate::config::ServerConfig;

/// How long a refused connection may take to send its request and get the answer.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

/// The connection caps of one listener.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_ip: usize,
    max_refusals: usize,
    open: AtomicUsize,
    refusing: Arc<AtomicUsize>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `server.max_connections` are open.
    Full(usize),
    /// `server.max_connections_per_ip` are open from this address.
    PerIp(usize),
}

/// A served connection's place under the caps, given back on drop.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    /// Caps from the server settings.
    pub fn new(config: &ServerConfig) -> Arc<Self> {
        Arc::new(Self {
            max_total: config.max_connections,
            max_per_ip: config.max_connections_per_ip,
            max_refusals: (config.max_connections / 16).max(16),
            open: AtomicUsize::new(0),
            refusing: Arc::new(AtomicUsize::new(0)),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a place for a connection from `ip`, or says which cap it hit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refusal> {
        if self.open.fetch_add(1, Relaxed) >= self.max_total {
            self.open.fetch_sub(1, Relaxed);
            return Err(Refusal::Full(self.max_total));
        }
        if self.max_per_ip > 0 {
            let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                drop(map);
                self.open.fetch_sub(1, Relaxed);
                return Err(Refusal::PerIp(self.max_per_ip));
            }
            *n += 1;
        }
        Ok(Admitted {
            admission: self.clone(),
            ip,
        })
    }

    /// Connections being served now.
    pub fn open(&self) -> usize {
        self.open.load(Relaxed)
    }

    /// Answers a refused connection once and closes it, unless too many refusals are
    /// already being answered (then it is closed at once).
    pub fn refuse(&self, tcp: TcpStream, why: Refusal) {
        metrics::counter!("moocard_connections_refused_total", "cap" => why.label()).increment(1);
        if self.refusing.fetch_add(1, Relaxed) >= self.max_refusals {
            self.refusing.fetch_sub(1, Relaxed);
            return;
        }
        let refusing = self.refusing.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                std::future::ready(Ok::<_, Infallible>(refusal_answer(req.uri().path(), why)))
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.keep_alive(false).max_buf_size(8192);
            let conn = http.serve_connection(TokioIo::new(tcp), svc);
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, conn).await;
            refusing.fetch_sub(1, Relaxed);
        });
    }
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::Full(_) => "total",
            Self::PerIp(_) => "per_ip",
        }
    }
}

/// The one answer a refused connection gets.
fn refusal_answer(path: &str, why: Refusal) -> Response<Body> {
    if path == "/__lbheartbeat__" {
        return StatusCode::OK.into_response();
    }
    match why {
        Refusal::Full(n) => ApiError::Unavailable(format!(
            "the server is at its limit of {n} connections (server.max_connections); try again shortly"
        ))
        .into_response(),
        Refusal::PerIp(n) => ApiError::RateLimited(
            1,
            format!(
                "too many connections from your address: at most {n} at once (server.max_connections_per_ip)"
            ),
        )
        .into_response(),
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let a = &self.admission;
        if a.max_per_ip > 0 {
            let mut map = a.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.ip);
                }
            }
        }
        a.open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_address() {
        let config = ServerConfig {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..ServerConfig::default()
        };
        let a = Admission::new(&config);
        let (x, y): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let x1 = a.admit(x).expect("first");
        let _x2 = a.admit(x).expect("second");
        assert_eq!(a.admit(x).unwrap_err(), Refusal::PerIp(2));
        let _y1 = a.admit(y).expect("other address");
        assert_eq!(a.admit(y).unwrap_err(), Refusal::Full(3));
        drop(x1);
        assert_eq!(a.open(), 2);
        let _x3 = a.admit(x).expect("place given back");
    }
}
