//! The HTTP/1.1 accept loop: hyper's connection driver under our own listener, instead of
//! `axum::serve`.
//!
//! Why not `axum::serve`: it sets no timeout at all, so a client that opens a connection
//! and sends its headers slowly (or never) holds it forever; and its version-sniffing
//! connection (the `hyper_util` auto builder with upgrades, for an HTTP/2 that axum's
//! features here do not enable) plus a tower adapter cost about 1,000 instructions per
//! request on the hot avatar path (bench/SERVING.md).
//!
//! Slow or silent clients: a connection with no request in flight that has not finished
//! one for `server.idle_timeout_secs` is closed (after between 1 and 1.5 times
//! that). This covers headers sent byte by byte, a connection opened and left silent, and
//! idle keep-alive. It is a watchdog task per connection that looks at two counters every
//! half period, rather than hyper's own header timer, which arms and disarms a timer (and
//! allocates) on every request: measured ~600 instructions per hot request.
//!
//! Caps: `http::admission` decides which accepted connections are served
//! (`server.max_connections`, `server.max_connections_per_ip`); the request head is
//! bounded by `server.max_header_bytes`.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{http::Request, response::Response};
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown};
use tokio::{net::TcpListener, task::JoinHandle};

use super::{admission::Admission, service::HttpFuture, HttpService};

/// Serves `service` on `listener` until `shutdown` resolves, then stops accepting, lets
/// in-flight requests finish (idle connections close at once) and returns when every
/// connection is done. The caller bounds that wait (`server.shutdown_grace_secs`).
pub async fn serve(
    listener: TcpListener,
    service: HttpService,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = &service.config().server;
    let idle_after = Duration::from_secs(config.idle_timeout_secs);
    let admission = Admission::new(config);
    let mut http = hyper::server::conn::http1::Builder::new();
    // The head budget bounds what a slow client can make us buffer (hyper's default is
    // about 400 KB per connection).
    http.keep_alive(true).max_buf_size(config.max_header_bytes);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Backoff::default();
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => {
                    backoff.reset();
                    pair
                }
                Err(e) => {
                    backoff.after(&e).await;
                    continue;
                }
            },
        };
        let place = match admission.admit(peer.ip()) {
            Ok(place) => place,
            Err(why) => {
                admission.refuse(tcp, why);
                continue;
            }
        };
        // Responses go out in one write; Nagle would only hold back the next small write
        // (a 304, a pipelined answer) for an ACK, which shows up as tail latency.
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let svc = ConnService {
            inner: service.clone(),
            activity: activity.clone(),
            peer: peer.ip(),
        };
        let conn = graceful.watch(http.serve_connection(TokioIo::new(tcp), svc));
        let task = tokio::spawn(async move {
            if let Err(e) = conn.await {
                // Peers resetting is routine; not worth more than debug.
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(place);
        });
        tokio::spawn(watchdog(task, activity, idle_after));
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Waiting after a failed accept. Per-connection errors (the peer reset before we took
/// it) are routine; running out of file descriptors is not, and retrying at once would
/// spin. The wait starts short and doubles to 1 s, so that the listener (and with it
/// `/__lbheartbeat__`) is back within milliseconds once descriptors are free again.
#[derive(Default)]
struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    async fn after(&mut self, e: &std::io::Error) {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
        if matches!(
            e.kind(),
            ConnectionAborted | ConnectionRefused | ConnectionReset
        ) {
            return;
        }
        let wait = self.next.unwrap_or(Duration::from_millis(5));
        self.next = Some((wait * 2).min(Duration::from_secs(1)));
        tracing::error!(error = %e, wait_ms = wait.as_millis() as u64, "accept failed; backing off");
        metrics::counter!("moocard_accept_errors_total").increment(1);
        tokio::time::sleep(wait).await;
    }

    fn reset(&mut self) {
        self.next = None;
    }
}

/// What the watchdog reads of one connection. A request counts as finished when its
/// response is handed to hyper; with the default sizes every body (at most a 512 px
/// avatar) fits in the socket's send buffer, so only a reader stalled for a whole idle
/// period is cut off (larger configured sizes make a very slow reader reachable too).
#[derive(Default)]
struct Activity {
    /// Requests whose headers have arrived and whose answer is not finished.
    in_flight: AtomicU64,
    /// Requests answered (or dropped) so far.
    finished: AtomicU64,
}

/// Ends `conn` once it has had no request in flight and finished none for two
/// consecutive checks, half of `idle_after` apart; returns when the connection ends.
async fn watchdog(conn: JoinHandle<()>, activity: Arc<Activity>, idle_after: Duration) {
    let period = idle_after / 2;
    let mut seen = activity.finished.load(Relaxed);
    let mut quiet_checks = 0;
    loop {
        tokio::time::sleep(period).await;
        if conn.is_finished() {
            return;
        }
        let finished = activity.finished.load(Relaxed);
        if activity.in_flight.load(Relaxed) == 0 && finished == seen {
            quiet_checks += 1;
            if quiet_checks == 2 {
                // No request is being answered, so dropping the connection loses at most
                // a request head that was still arriving.
                tracing::debug!(
                    idle_secs = idle_after.as_secs(),
                    "closing a connection that sent no complete request"
                );
                conn.abort();
                return;
            }
        } else {
            quiet_checks = 0;
            seen = finished;
        }
    }
}

/// [`HttpService`] as hyper calls it on one connection, counting requests for the
/// watchdog.
struct ConnService {
    inner: HttpService,
    activity: Arc<Activity>,
    peer: std::net::IpAddr,
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Counted;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Counted {
        self.activity.in_flight.fetch_add(1, Relaxed);
        Counted {
            inner: self.inner.dispatch_from(req, self.peer),
            activity: self.activity.clone(),
        }
    }
}

/// A request's answer; marks the request finished when it completes or is dropped.
struct Counted {
    inner: HttpFuture,
    activity: Arc<Activity>,
}

impl Future for Counted {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.activity.finished.fetch_add(1, Relaxed);
        self.activity.in_flight.fetch_sub(1, Relaxed);
    }
}
