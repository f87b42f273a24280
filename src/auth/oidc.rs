//! OpenID discovery and the issuer's key set (API.md §Identity, v1.1): fetch
//! `{issuer}/.well-known/openid-configuration`, then its `jwks_uri`; cache the keys as the
//! answer's `Cache-Control` says (within a floor and a ceiling); refetch at once when a
//! token names an unknown `kid` (one fetch at a time, at most once per interval); refresh
//! in the background; keep the last good set while the provider is down or answers
//! garbage, and say so in the logs and in `/__heartbeat__`.

use std::{
    sync::{Arc, Mutex, RwLock, Weak},
    time::{Duration, Instant},
};

use super::jwt::{keys_from_jwks, Key};
use crate::config::AuthConfig;

/// Fetch and cache tuning, from `[auth]`.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// Shortest time a key set is trusted before it is fetched again.
    pub min_ttl: Duration,
    /// Longest time a key set is trusted before it is fetched again.
    pub max_ttl: Duration,
    /// Least time between two fetches caused by unknown `kid`s.
    pub unknown_kid_interval: Duration,
    /// Whole-request timeout of one fetch.
    pub timeout: Duration,
    /// Largest discovery or JWKS document accepted.
    pub max_bytes: usize,
}

impl OidcSettings {
    /// From the configuration.
    pub fn from_config(auth: &AuthConfig) -> Self {
        Self {
            min_ttl: Duration::from_secs(auth.jwks_min_ttl_secs),
            max_ttl: Duration::from_secs(auth.jwks_max_ttl_secs),
            unknown_kid_interval: Duration::from_millis(auth.jwks_refetch_interval_ms),
            timeout: Duration::from_millis(auth.fetch_timeout_ms),
            max_bytes: usize::try_from(auth.max_document_bytes).unwrap_or(usize::MAX),
        }
    }
}

/// What the last fetches did, for logs and `/__heartbeat__`.
#[derive(Debug, Clone, Default)]
struct Status {
    jwks_uri: Option<String>,
    /// When the current set was fetched; `None` until the first success.
    fetched_at: Option<Instant>,
    /// When the current set should be fetched again.
    refresh_at: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    /// Bumped on every successful fetch, so waiters can tell a peer already refetched.
    generation: u64,
}

/// The key set of one issuer, shared by every request.
pub struct RemoteKeys {
    issuer: String,
    client: reqwest::Client,
    settings: OidcSettings,
    keys: RwLock<Arc<Vec<Key>>>,
    status: Mutex<Status>,
    /// Single flight: one fetch at a time; others wait for its result.
    fetching: tokio::sync::Mutex<()>,
}

/// The `__heartbeat__` view of the key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysHealth {
    /// The set is fresh.
    Ok,
    /// Cached keys still serve, but the last refresh failed (the reason).
    Degraded(String),
    /// No key set was ever fetched (the reason).
    Failing(String),
}

/// Whether an issuer URL may be fetched: `https://`, or `http://` on a loopback host.
pub fn issuer_url_allowed(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host_port = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RemoteKeys {
    /// Builds the client and tries the first fetch. A provider that is down at start-up
    /// does not stop the server: the set stays empty (tokens get 401, the heartbeat fails)
    /// until a background retry succeeds.
    pub async fn start(issuer: &str, settings: OidcSettings) -> Result<Arc<Self>, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!issuer.starts_with("http://"))
            .user_agent(concat!("moocard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let me = Arc::new(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client,
            settings,
            keys: RwLock::new(Arc::new(Vec::new())),
            status: Mutex::new(Status::default()),
            fetching: tokio::sync::Mutex::new(()),
        });
        me.fetch_now().await;
        tokio::spawn(refresh_loop(Arc::downgrade(&me)));
        Ok(me)
    }

    /// The keys now.
    pub fn current(&self) -> Arc<Vec<Key>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Health for `/__heartbeat__`.
    pub fn health(&self) -> KeysHealth {
        let s = lock(&self.status).clone();
        match (s.fetched_at, s.last_error) {
            (None, err) => KeysHealth::Failing(
                err.unwrap_or_else(|| "the issuer's keys have not been fetched yet".into()),
            ),
            (Some(_), Some(err)) => KeysHealth::Degraded(err),
            (Some(_), None) => KeysHealth::Ok,
        }
    }

    /// Called when a token names a `kid` the cached set lacks: fetch again unless a fetch
    /// ran within `unknown_kid_interval` (so forged kids cannot make us hammer the
    /// provider). Returns the new set when it changed.
    pub async fn refresh_for_unknown_kid(&self, kid: Option<&str>) -> Option<Arc<Vec<Key>>> {
        let seen = lock(&self.status).generation;
        let _flight = self.fetching.lock().await;
        let (generation, last) = {
            let s = lock(&self.status);
            (s.generation, s.last_attempt)
        };
        if generation != seen {
            // A peer fetched while we waited: use its result.
            return Some(self.current());
        }
        if last.is_some_and(|t| t.elapsed() < self.settings.unknown_kid_interval) {
            return None;
        }
        tracing::info!(
            auth.kid = kid.unwrap_or("-"),
            "unknown key id: fetching the issuer's keys again"
        );
        self.fetch_locked().await.then(|| self.current())
    }

    /// One fetch, serialized with the others.
    async fn fetch_now(&self) -> bool {
        let _flight = self.fetching.lock().await;
        self.fetch_locked().await
    }

    async fn fetch_locked(&self) -> bool {
        lock(&self.status).last_attempt = Some(Instant::now());
        match self.fetch_keys().await {
            Ok((keys, ttl)) => {
                let n = keys.len();
                *self
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
                let mut s = lock(&self.status);
                let now = Instant::now();
                if s.last_error.take().is_some() {
                    tracing::info!("the issuer's keys are reachable again");
                }
                s.fetched_at = Some(now);
                s.refresh_at = Some(now + ttl);
                s.generation += 1;
                tracing::info!(
                    auth.keys = n,
                    ttl_secs = ttl.as_secs(),
                    "fetched the issuer's signing keys"
                );
                true
            }
            Err(e) => {
                let mut s = lock(&self.status);
                if s.fetched_at.is_some() {
                    tracing::warn!(error = %e, "cannot refresh the issuer's keys; still using the last good set");
                } else {
                    tracing::error!(error = %e, "cannot fetch the issuer's keys; tokens are refused until this works");
                }
                s.last_error = Some(e);
                false
            }
        }
    }

    async fn fetch_keys(&self) -> Result<(Vec<Key>, Duration), String> {
        let known = lock(&self.status).jwks_uri.clone();
        let jwks_uri = match known {
            Some(u) => u,
            None => {
                let uri = self.discover().await?;
                lock(&self.status).jwks_uri = Some(uri.clone());
                uri
            }
        };
        let (body, max_age) = self.get(&jwks_uri).await.inspect_err(|_| {
            // The provider may have moved its keys: ask discovery again next time.
            lock(&self.status).jwks_uri = None;
        })?;
        let keys = keys_from_jwks(&body).map_err(|e| format!("{jwks_uri}: {e}"))?;
        let ttl = max_age
            .unwrap_or(Duration::from_secs(3600))
            .clamp(self.settings.min_ttl, self.settings.max_ttl);
        Ok((keys, ttl))
    }

    /// Reads the discovery document and returns its `jwks_uri`.
    async fn discover(&self) -> Result<String, String> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let (body, _) = self.get(&url).await?;
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| format!("{url}: the discovery document is not JSON"))?;
        // OpenID Connect Discovery §4.3: the document must name the same issuer.
        let issuer = doc
            .get("issuer")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if issuer.trim_end_matches('/') != self.issuer {
            return Err(format!(
                "{url}: the discovery document names issuer {issuer:?}, not the configured one"
            ));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{url}: the discovery document has no jwks_uri"))?;
        if !issuer_url_allowed(jwks_uri) {
            return Err(format!(
                "{url}: jwks_uri must be https:// (or http:// on loopback)"
            ));
        }
        Ok(jwks_uri.to_owned())
    }

    /// GET with the size limit; returns the body and `Cache-Control: max-age`.
    async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<Duration>), String> {
        let mut res = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", describe(&e)))?;
        if !res.status().is_success() {
            return Err(format!("{url}: answered {}", res.status()));
        }
        let max_age = res
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(cache_lifetime);
        let limit = self.settings.max_bytes;
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| format!("{url}: {}", describe(&e)))?
        {
            if body.len() + chunk.len() > limit {
                return Err(format!(
                    "{url}: the document is larger than {limit} bytes (auth.max_document_bytes)"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }
}

/// `max-age` of a `Cache-Control` value; `no-store`/`no-cache` mean "as soon as allowed".
fn cache_lifetime(value: &str) -> Duration {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            age = n.trim_matches('"').parse::<u64>().ok();
        }
    }
    age.map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(3600))
}

/// A short, secret-free reason for a failed request.
fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirects are not followed"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    }
}

/// Refreshes before the set expires; after a failure, retries every `min_ttl`.
async fn refresh_loop(keys: Weak<RemoteKeys>) {
    loop {
        let wait = {
            let Some(k) = keys.upgrade() else { return };
            let s = lock(&k.status).clone();
            match (s.last_error.is_some(), s.refresh_at) {
                (false, Some(at)) => at.saturating_duration_since(Instant::now()),
                _ => k.settings.min_ttl,
            }
        };
        tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
        let Some(k) = keys.upgrade() else { return };
        k.fetch_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_urls() {
        for ok in [
            "https://accounts.google.com",
            "http://127.0.0.1:4000",
            "http://localhost:3000/oidc",
            "http://[::1]:80",
        ] {
            assert!(issuer_url_allowed(ok), "{ok}");
        }
        for bad in [
            "http://idp.example",
            "http://10.0.0.1",
            "ftp://x",
            "idp",
            "http://localhost.evil.com",
        ] {
            assert!(!issuer_url_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn cache_control() {
        assert_eq!(
            cache_lifetime("public, max-age=600"),
            Duration::from_secs(600)
        );
        assert_eq!(cache_lifetime("no-store"), Duration::ZERO);
        assert_eq!(cache_lifetime("public"), Duration::from_secs(3600));
    }
}
