//! The HTTP entry point that `moocard::serve` runs and the tests drive: plain public reads
//! (`GET|HEAD /avatar/{hash}`, `/images/{id}`) go straight to their handlers, everything
//! else through the axum router.
//!
//! Why: answering a hot avatar or a 304 is well under a microsecond of our own work, while
//! the router's per-request machinery (cloning the boxed route stack, matched path and URL
//! params stored in extensions, boxed middleware futures) cost several times that, and it
//! decided whether 304s kept up with nginx (bench/SERVING.md). The short cut keeps what the
//! router's layers give these routes: request metrics under the route template, a panic
//! boundary, HEAD without a body. Anything unusual (another method, an empty or nested
//! segment, percent-escapes) is left to the router, which has the same routes, so both
//! paths give the same answers.

use std::{
    convert::Infallible,
    panic::AssertUnwindSafe,
    sync::OnceLock,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    body::{Body, HttpBody as _},
    extract::Request,
    http::{header, request::Parts, HeaderValue, Method},
    response::Response,
    Router,
};
use futures::{future::BoxFuture, FutureExt as _};

use crate::{
    http::{
        error::ApiError,
        routes::{avatar, images},
        AppState,
    },
    telemetry,
};

/// Every route: [`super::router`] plus the direct dispatch of public reads.
#[derive(Clone)]
pub struct HttpService {
    state: AppState,
    router: Router,
    /// Whether plain public reads take the short cut (not on the ops listener).
    public: bool,
}

/// The client address of a request (from the TCP peer), for per-address limits. Absent
/// when a test drives the router without a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

impl HttpService {
    /// Every route of the main listener.
    pub fn new(state: AppState) -> Self {
        Self {
            router: super::router(state.clone()),
            state,
            public: true,
        }
    }

    /// The Dockerflow routes and `/metrics` only, for `server.ops_listen`.
    pub fn ops(state: AppState) -> Self {
        Self {
            router: super::ops_router(state.clone()),
            state,
            public: false,
        }
    }

    /// The configuration the service runs with.
    pub fn config(&self) -> &crate::config::Config {
        &self.state.config
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PublicRoute {
    Avatar,
    Image,
}

impl PublicRoute {
    /// The template metrics are labelled with, as the router names it.
    fn template(self) -> &'static str {
        match self {
            Self::Avatar => "/avatar/{hash}",
            Self::Image => "/images/{id}",
        }
    }

    /// The route's request figures, looked up once per process.
    fn stats(self) -> &'static telemetry::http::RouteStats {
        static AVATAR: OnceLock<&'static telemetry::http::RouteStats> = OnceLock::new();
        static IMAGE: OnceLock<&'static telemetry::http::RouteStats> = OnceLock::new();
        let cell = match self {
            Self::Avatar => &AVATAR,
            Self::Image => &IMAGE,
        };
        cell.get_or_init(|| telemetry::http::route(self.template()))
    }
}

/// The public route and its one path segment, if the request can take the short cut.
fn public_route<'a>(method: &Method, path: &'a str) -> Option<(PublicRoute, &'a str)> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let (route, segment) = if let Some(s) = path.strip_prefix("/avatar/") {
        (PublicRoute::Avatar, s)
    } else if let Some(s) = path.strip_prefix("/images/") {
        (PublicRoute::Image, s)
    } else {
        return None;
    };
    let plain = !segment.is_empty() && !segment.bytes().any(|b| b == b'/' || b == b'%');
    plain.then_some((route, segment))
}

impl HttpService {
    /// Answers one request with any body type: hyper's `Incoming` from [`crate::serve`],
    /// axum's `Body` from tests. A public read never touches (or boxes) the body.
    pub fn dispatch<B>(&self, req: axum::http::Request<B>) -> HttpFuture
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        self.dispatch_inner(req, None)
    }

    /// [`Self::dispatch`] for a request from `peer`; routes other than the public reads
    /// see it as a [`ClientAddr`] extension.
    pub fn dispatch_from<B>(
        &self,
        req: axum::http::Request<B>,
        peer: std::net::IpAddr,
    ) -> HttpFuture
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        self.dispatch_inner(req, Some(peer))
    }

    fn dispatch_inner<B>(
        &self,
        mut req: axum::http::Request<B>,
        peer: Option<std::net::IpAddr>,
    ) -> HttpFuture
    where
        B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let short_cut = if self.public {
            public_route(req.method(), req.uri().path())
        } else {
            None
        };
        match short_cut {
            Some((route, _)) => {
                let state = self.state.clone();
                // Only the head is kept across awaits: a request body is not `Sync`.
                let (parts, _body) = req.into_parts();
                Box::pin(async move { Ok(public(&state, route, parts).await) })
            }
            // Boxed too, so that the future type is one `Unpin` box (`http::server`
            // wraps it); this path is not the hot one.
            None => {
                if let Some(ip) = peer {
                    req.extensions_mut().insert(ClientAddr(ip));
                }
                Box::pin(tower::Service::call(
                    &mut self.router.clone(),
                    req.map(Body::new),
                ))
            }
        }
    }
}

/// The future of [`HttpService::dispatch`].
pub type HttpFuture = BoxFuture<'static, Result<Response, Infallible>>;

impl tower::Service<Request> for HttpService {
    type Response = Response;
    type Error = Infallible;
    type Future = HttpFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both paths are always ready (axum's Router is).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        self.dispatch(req)
    }
}

async fn public(state: &AppState, route: PublicRoute, parts: Parts) -> Response {
    let started = Instant::now();
    let segment = public_route(&parts.method, parts.uri.path()).map_or("", |(_, s)| s);
    let answer = async {
        match route {
            PublicRoute::Avatar => avatar::respond(state, segment, &parts, started).await,
            PublicRoute::Image => images::respond(state, segment, &parts, started).await,
        }
    };
    let mut res = AssertUnwindSafe(answer)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| avatar::public_error(ApiError::Internal("handler panicked".into())));
    if parts.method == Method::HEAD {
        without_body(&mut res);
    }
    telemetry::observe_in(
        route.stats(),
        route.template(),
        &parts.method,
        started,
        &res,
    );
    res
}

/// A HEAD answer: the GET's headers, including its length, and no body (as axum does).
fn without_body(res: &mut Response) {
    if !res.headers().contains_key(header::CONTENT_LENGTH) {
        if let Some(n) = res.body().size_hint().exact() {
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
    }
    *res.body_mut() = Body::empty();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_public_reads_take_the_short_cut() {
        let get = Method::GET;
        assert_eq!(
            public_route(&get, "/avatar/abc.jpg"),
            Some((PublicRoute::Avatar, "abc.jpg"))
        );
        assert_eq!(
            public_route(&Method::HEAD, "/images/x_1"),
            Some((PublicRoute::Image, "x_1"))
        );
        for path in [
            "/avatar/",
            "/avatar",
            "/avatar/a/b",
            "/avatar/a/",
            "/avatar/a%2Fb",
            "/images/",
            "/v1/limits",
            "/avatarx/a",
        ] {
            assert_eq!(public_route(&get, path), None, "{path}");
        }
        assert_eq!(public_route(&Method::POST, "/avatar/abc"), None);
        assert_eq!(public_route(&Method::OPTIONS, "/images/abc"), None);
    }
}
