//! Configuration: defaults, then `moocard.toml` (or `--config`/`MOOCARD_CONFIG`), then
//! `MOOCARD_<SECTION>__<KEY>` environment variables (and `DATABASE_URL`), then `validate()`.
//! Unknown keys fail start-up, so a typo never silently falls back to a default.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{domain::derivation::ExtraFormat, limits::ImageLimits};

mod derived;
pub use derived::{ReprocessSettings, MAX_MASTER_SIZE};

pub mod operators;

/// The whole configuration. `deploy/moocard.example.toml` documents every key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where generated keys and the SQLite file live.
    pub data_dir: PathBuf,
    /// HTTP server.
    pub server: ServerConfig,
    /// Database.
    pub database: DatabaseConfig,
    /// Key-encryption keys and the index secret.
    pub keys: KeysConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// Upload and image limits.
    pub limits: ImageLimits,
    /// Image encoding.
    pub pipeline: PipelineSettings,
    /// Public avatar serving.
    pub avatars: AvatarConfig,
    /// Queue, workers and backpressure.
    pub queue: QueueSettings,
    /// Operator credentials (`/v1/admin/...`).
    pub admin: operators::AdminConfig,
    /// The audit log of operator actions and security events.
    pub audit: operators::AuditConfig,
    /// Limits shared by every API node (in the database) and per client address.
    pub quotas: operators::QuotaConfig,
    /// `moocard reprocess` pacing.
    pub reprocess: ReprocessSettings,
}

/// HTTP server settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Seconds a request may take before 503.
    pub request_timeout_secs: u64,
    /// Seconds a connection may go without a request in flight and without finishing one
    /// (a silent client, headers sent a byte at a time, idle keep-alive) before it is
    /// closed; it is closed after between 1 and 1.5 times this. Keep it above the idle
    /// timeout of any load balancer in front (60 s is common), or the balancer may send
    /// a request on a connection as it is being closed.
    pub idle_timeout_secs: u64,
    /// Seconds to wait for in-flight requests on shutdown.
    pub shutdown_grace_secs: u64,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// Origins (`https://host[:port]`) whose pages may call the owner endpoints from a
    /// browser (CORS, API.md §Owner endpoints). Empty: none.
    pub cors_origins: Vec<String>,
    /// Connections served at once; beyond it a connection gets a short 503 (or 200 for
    /// `/__lbheartbeat__`) and is closed. Keep it below the process's file limit.
    pub max_connections: usize,
    /// Connections served at once from one client address (0: no cap). Behind a load
    /// balancer every connection comes from its address: raise it or set 0 there.
    pub max_connections_per_ip: usize,
    /// Bytes a request head (request line and headers) may take; larger is answered 431.
    /// At least 8192.
    pub max_header_bytes: usize,
    /// A second address that serves `/metrics` and `/__heartbeat__` (and the other
    /// Dockerflow routes); when set, the main address no longer serves those two.
    pub ops_listen: Option<SocketAddr>,
    /// Seconds between drains of the recorded job and pipeline durations into their
    /// histogram buckets (without a drain, a node nobody scrapes keeps every sample).
    pub metrics_upkeep_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_secs: 30,
            idle_timeout_secs: 75,
            shutdown_grace_secs: 30,
            log_format: "text".into(),
            cors_origins: Vec::new(),
            max_connections: 1024,
            max_connections_per_ip: 256,
            max_header_bytes: 16 * 1024,
            ops_listen: None,
            metrics_upkeep_secs: 5,
        }
    }
}

/// Database settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` or `mysql://user:pass@host/db`. Empty: `sqlite://<data_dir>/moocard.db`.
    /// `DATABASE_URL` overrides it.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection before answering 503.
    pub acquire_timeout_secs: u64,
    /// SQLite only: milliseconds between background WAL checkpoints, so that no upload or
    /// job commit pays for copying the log into the database file (0: SQLite's own
    /// checkpoint inside the committing request, every 1000 pages).
    pub sqlite_checkpoint_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 16,
            acquire_timeout_secs: 5,
            sqlite_checkpoint_ms: 500,
        }
    }
}

/// One key-encryption key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KekConfig {
    /// Stable id stored with every wrapped data key.
    pub id: String,
    /// 32 bytes, base64.
    pub key: String,
}

impl std::fmt::Debug for KekConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KekConfig")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Keys. When `keks` is empty, a key file is generated in `data_dir` (mode 0600).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Key-encryption keys; old ones stay listed until `moocard rotate-keys` has run.
    pub keks: Vec<KekConfig>,
    /// The id new data keys are wrapped under. Empty: the last listed KEK.
    pub active_kek: String,
    /// 32 bytes, base64: the HMAC secret behind owner keys, public ids and lookup aliases.
    /// Cannot be rotated without re-indexing; keep it safe.
    pub index_secret: String,
}

impl std::fmt::Debug for KeysConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeysConfig")
            .field("keks", &self.keks)
            .field("active_kek", &self.active_kek)
            .field("index_secret", &"[redacted]")
            .finish()
    }
}

/// Token verification. No issuer means dev mode (a local signing key in `data_dir`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Expected `iss`. Empty: dev mode.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// PEM files of verification keys (RSA, EC P-256 or Ed25519 public keys).
    pub pem_files: Vec<PathBuf>,
    /// A JWKS document on disk (refreshed on SIGHUP-free restart).
    pub jwks_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// The page's OAuth client id at the issuer (a public client: code flow with PKCE).
    /// Empty: the audience.
    pub client_id: String,
    /// Floor on how long a fetched key set is trusted, whatever its `Cache-Control` says;
    /// also the retry interval while the issuer is unreachable.
    pub jwks_min_ttl_secs: u64,
    /// Ceiling on how long a fetched key set is trusted.
    pub jwks_max_ttl_secs: u64,
    /// Least milliseconds between two key fetches caused by tokens with an unknown `kid`.
    pub jwks_refetch_interval_ms: u64,
    /// Timeout of one discovery or key-set request, in milliseconds.
    pub fetch_timeout_ms: u64,
    /// Largest discovery or key-set document accepted, in bytes.
    pub max_document_bytes: u64,
    /// Allow dev mode (no issuer) on a listen address other than loopback. Never in production.
    pub allow_dev_mode_on_network: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: "moocard".into(),
            pem_files: vec![],
            jwks_file: None,
            leeway_secs: 30,
            client_id: String::new(),
            jwks_min_ttl_secs: 60,
            jwks_max_ttl_secs: 86_400,
            jwks_refetch_interval_ms: 5_000,
            fetch_timeout_ms: 5_000,
            max_document_bytes: 256 * 1024,
            allow_dev_mode_on_network: false,
        }
    }
}

/// Output encoding.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSettings {
    /// mozjpeg quality 1..=100.
    pub jpeg_quality: u8,
    /// mozjpeg trellis quantisation.
    pub trellis: bool,
    /// oxipng preset 0..=6.
    pub png_preset: u8,
    /// Bytes the concurrent jobs of one worker process may reserve together.
    pub memory_budget_bytes: u64,
    /// Upper bound on an image's metadata chunks (inflated PNG `iCCP` included).
    pub max_metadata_bytes: u64,
    /// libwebp quality 1..=100 of lossy WebP variants.
    pub webp_quality: u8,
    /// libwebp quality 1..=100 of opaque masters (transparent ones are lossless).
    pub master_quality: u8,
    /// ravif quality 1..=100 of AVIF variants (colour and alpha).
    pub avif_quality: u8,
    /// rav1e speed 1..=10 of AVIF variants (10 fastest).
    pub avif_speed: u8,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            jpeg_quality: 80,
            trellis: true,
            png_preset: 2,
            memory_budget_bytes: 256 << 20,
            max_metadata_bytes: 4 << 20,
            webp_quality: 82,
            master_quality: 90,
            avif_quality: 85,
            avif_speed: 10,
        }
    }
}

/// Public avatar serving.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AvatarConfig {
    /// Answer MD5/SHA-256 lookups; when false only opaque public ids work.
    pub hash_lookup: bool,
    /// In-memory cache of hot avatars, in bytes.
    pub cache_bytes: u64,
    /// Seconds a cached lookup may be served before the database is asked again (other
    /// API nodes' changes become visible within this time).
    pub cache_ttl_secs: u64,
    /// `Cache-Control` max-age for `/avatar/...`.
    pub max_age_secs: u64,
    /// Milliseconds a public read may wait for the store before it serves the last known
    /// variant (stale) or the requested default.
    pub store_timeout_ms: u64,
    /// Store failures (timeouts, connection errors) in a row that open the circuit breaker.
    pub breaker_failures: u32,
    /// Milliseconds the open breaker serves without asking the store before one probe.
    pub breaker_open_ms: u64,
    /// `Cache-Control` max-age of answers given while the store is down or slow.
    pub degraded_max_age_secs: u64,
    /// Bytes of rendered default graphics kept per node (apart from `cache_bytes`).
    pub default_cache_bytes: u64,
    /// Milliseconds between reads of newly added aliases into the filter of known aliases.
    pub filter_refresh_ms: u64,
    /// The graphic served when `d` is absent or not understood (a `d=` value, or `404`).
    pub default: String,
    /// Hosts that `d=<absolute URL>` may redirect to (exact, lowercase); empty: none.
    pub default_url_hosts: Vec<String>,
    /// `none`, or `gravatar`: redirect MD5/SHA-256 hashes this server has no avatar for
    /// to Gravatar with the same parameters (tells Gravatar which hashes are looked up).
    pub fallback: String,
    /// Side of the kept sanitized master, in pixels; `limits.sizes` may not exceed it.
    pub master_size: u32,
    /// Formats stored besides JPEG/PNG (`webp`), each at every size.
    pub formats: Vec<ExtraFormat>,
    /// Pick the format of `/avatar/{hash}` without a suffix from `Accept` (`Vary: Accept`).
    pub negotiate_format: bool,
}

impl Default for AvatarConfig {
    fn default() -> Self {
        Self {
            hash_lookup: true,
            cache_bytes: 256 * 1024 * 1024,
            cache_ttl_secs: 10,
            max_age_secs: 300,
            store_timeout_ms: 100,
            breaker_failures: 3,
            breaker_open_ms: 1000,
            degraded_max_age_secs: 10,
            default_cache_bytes: 32 * 1024 * 1024,
            filter_refresh_ms: 1000,
            default: "moocard".into(),
            default_url_hosts: Vec::new(),
            fallback: "none".into(),
            master_size: 1024,
            formats: Vec::new(),
            negotiate_format: false,
        }
    }
}

impl AvatarConfig {
    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.default != "404"
            && crate::defaults::DefaultKind::from_param(&self.default).is_none()
        {
            return Err(ConfigError(format!(
                "avatars.default must be 404 or one of: {}",
                crate::defaults::DefaultKind::ALL
                    .map(|k| k.as_str())
                    .join(", ")
            )));
        }
        if !matches!(self.fallback.as_str(), "none" | "gravatar") {
            return Err(ConfigError(
                "avatars.fallback must be \"none\" or \"gravatar\"".into(),
            ));
        }
        if self.store_timeout_ms == 0 || self.filter_refresh_ms == 0 || self.breaker_open_ms == 0 {
            return Err(ConfigError(
                "avatars.store_timeout_ms, filter_refresh_ms and breaker_open_ms must be positive"
                    .into(),
            ));
        }
        for h in &mut self.default_url_hosts {
            *h = h.trim().to_ascii_lowercase();
        }
        Ok(())
    }
}

/// Queue, workers and backpressure.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    /// Worker tasks embedded in `moocard serve` (0 = API only). Default: number of cores.
    pub embedded_workers: Option<usize>,
    /// Uploads accepted while this many jobs wait; beyond it 503 `unavailable`.
    pub max_depth: u64,
    /// Uploads per owner per window.
    pub uploads_per_window: u32,
    /// The rate-limit window in seconds.
    pub window_secs: u64,
    /// Seconds one job may run.
    pub job_timeout_secs: u64,
    /// Attempts before a transiently failing job is given up.
    pub max_attempts: u32,
    /// Seconds before a dead worker's jobs are handed to others.
    pub orphan_after_secs: u64,
    /// Milliseconds an idle worker waits between polls (bounds upload-to-start latency).
    pub poll_interval_ms: u64,
    /// Milliseconds between polls for `busy_window_secs` after a worker started a job.
    pub busy_poll_interval_ms: u64,
    /// Seconds a worker keeps polling at `busy_poll_interval_ms` after starting a job
    /// (0: always `poll_interval_ms`).
    pub busy_window_secs: u64,
    /// Seconds before replaced images and abandoned uploads are deleted.
    pub cleanup_after_secs: u64,
    /// Seconds finished (done or killed) job rows are kept.
    pub retain_finished_jobs_secs: u64,
    /// Seconds a silent worker's row is kept (once no job refers to it).
    pub retain_dead_workers_secs: u64,
    /// Rows deleted per retention statement.
    pub retention_batch: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            embedded_workers: None,
            max_depth: 10_000,
            uploads_per_window: 10,
            window_secs: 60,
            job_timeout_secs: 60,
            max_attempts: 5,
            orphan_after_secs: 30,
            poll_interval_ms: 50,
            busy_poll_interval_ms: 10,
            busy_window_secs: 10,
            cleanup_after_secs: 600,
            retain_finished_jobs_secs: 86_400,
            retain_dead_workers_secs: 86_400,
            retention_batch: 500,
        }
    }
}

/// A configuration problem, reported at start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// A parser's message with every quoted value replaced: serde and toml quote the
    /// offending value ("invalid type: string \"...\""), which may be a key (issue 12: a
    /// malformed `MOOCARD_KEYS__KEKS` must not print key material). Key names, which
    /// serde quotes with backticks, stay.
    pub fn redacted(message: &str) -> Self {
        let mut out = String::with_capacity(message.len());
        let (mut quoted, mut ticked, mut escaped) = (false, false, false);
        for c in message.chars() {
            if quoted {
                // Inside a quoted value (Debug-escaped): skip to its closing quote.
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        quoted = false;
                        out.push_str("<redacted>\"");
                    }
                    _ => escaped = false,
                }
            } else if c == '`' {
                ticked = !ticked;
                out.push(c);
            } else if c == '"' && !ticked {
                quoted = true;
                out.push(c);
            } else {
                out.push(c);
            }
        }
        // toml parse errors also quote the source line after a `|` gutter: drop those lines.
        let kept: Vec<&str> = out
            .lines()
            .filter(|l| {
                !l.trim_start().starts_with(|c: char| c.is_ascii_digit()) || !l.contains('|')
            })
            .filter(|l| !l.trim_start().starts_with('|'))
            .collect();
        Self(
            kept.join(" ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

impl Config {
    /// Loads defaults, the TOML file (if any) and the environment, then validates.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut doc = toml::Table::new();
        let explicit = file
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("MOOCARD_CONFIG").map(PathBuf::from));
        let path = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from("moocard.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                doc = text.parse().map_err(|e: toml::de::Error| {
                    let e = ConfigError::redacted(&e.to_string());
                    ConfigError(format!("{}: {}", path.display(), e.0))
                })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {}
            Err(e) => return Err(ConfigError(format!("{}: {e}", path.display()))),
        }
        Self::from_table(doc, std::env::vars())
    }

    /// Builds from a TOML table overlaid with `MOOCARD_<SECTION>__<KEY>` variables.
    pub fn from_table(
        mut doc: toml::Table,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let file_issuer = doc
            .get("auth")
            .and_then(|a| a.get("issuer"))
            .and_then(toml::Value::as_str)
            .is_some_and(|s| !s.trim().is_empty());
        // (key, variable) of every setting taken from the environment, to name the variable
        // when its key is refused (every MOOCARD_* variable is read as a setting).
        let mut from_env: Vec<(String, String)> = Vec::new();
        for (name, value) in env {
            if name == "DATABASE_URL" {
                set_path(&mut doc, &["database", "url"], toml::Value::String(value));
                continue;
            }
            let Some(rest) = name.strip_prefix("MOOCARD_") else {
                continue;
            };
            if rest == "CONFIG" {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            set_path(&mut doc, &path, parse_env_value(&value));
            if let Some(key) = path.last() {
                from_env.push((format!("`{key}`"), name.clone()));
            }
        }
        let config: Config = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| refused(&e, &from_env))?;
        // API.md §Identity: an issuer emptied by the environment must not silently turn
        // a configured deployment into dev mode.
        if file_issuer && config.auth.issuer.trim().is_empty() {
            return Err(ConfigError(
                "the config file sets auth.issuer but MOOCARD_AUTH__ISSUER empties it; refusing to start in dev mode by accident (remove the variable or the file's issuer)".into(),
            ));
        }
        config.validate()
    }

    /// Fills derived defaults and checks ranges.
    pub fn validate(mut self) -> Result<Self, ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            self.data_dir = PathBuf::from("moocard-data");
        }
        if self.database.url.is_empty() {
            self.database.url = format!("sqlite://{}/moocard.db", self.data_dir.display());
        }
        let l = &self.limits;
        if l.sizes.is_empty() || l.sizes.iter().any(|&s| s == 0 || s > 2048) {
            return Err(ConfigError(
                "limits.sizes must list sizes in 1..=2048".into(),
            ));
        }
        if l.max_upload_bytes == 0 || l.max_dimension == 0 || l.max_megapixels <= 0.0 {
            return Err(ConfigError("limits must be positive".into()));
        }
        self.limits.sizes.sort_unstable_by(|a, b| b.cmp(a));
        self.limits.sizes.dedup();
        if !(1..=100).contains(&self.pipeline.jpeg_quality) || self.pipeline.png_preset > 6 {
            return Err(ConfigError(
                "pipeline.jpeg_quality must be 1..=100 and png_preset 0..=6".into(),
            ));
        }
        if !matches!(self.server.log_format.as_str(), "text" | "json") {
            return Err(ConfigError(
                "server.log_format must be \"text\" or \"json\"".into(),
            ));
        }
        if self.server.idle_timeout_secs == 0 {
            // hyper would wait for headers forever, which is what this setting prevents.
            return Err(ConfigError(
                "server.idle_timeout_secs must be positive".into(),
            ));
        }
        self.validate_auth()?;
        if self.server.max_connections == 0 || self.server.max_header_bytes < 8192 {
            return Err(ConfigError(
                "server.max_connections must be positive and server.max_header_bytes at least 8192"
                    .into(),
            ));
        }
        self.admin.validate()?;
        self.audit.validate()?;
        self.avatars.validate()?;
        if self.queue.window_secs == 0
            || self.queue.job_timeout_secs == 0
            || self.queue.max_attempts == 0
        {
            return Err(ConfigError(
                "queue.window_secs, job_timeout_secs and max_attempts must be positive".into(),
            ));
        }
        derived::validate(&self)?;
        Ok(self)
    }

    /// Dev mode only on purpose, issuer URLs, key-set tuning and CORS origins.
    fn validate_auth(&mut self) -> Result<(), ConfigError> {
        let a = &mut self.auth;
        a.issuer = a.issuer.trim().to_owned();
        let has_key_files = !a.pem_files.is_empty() || a.jwks_file.is_some();
        if a.issuer.is_empty() && has_key_files {
            return Err(ConfigError(
                "auth.pem_files or auth.jwks_file is set without auth.issuer; set the issuer (dev mode never starts with key files)".into(),
            ));
        }
        if !a.issuer.is_empty() && !crate::auth::oidc::issuer_url_allowed(&a.issuer) {
            return Err(ConfigError(
                "auth.issuer must be an https:// URL (http:// only on a loopback host)".into(),
            ));
        }
        if a.issuer.is_empty()
            && !self.server.listen.ip().is_loopback()
            && !a.allow_dev_mode_on_network
        {
            return Err(ConfigError(format!(
                "dev mode (no auth.issuer) on {} would accept locally minted tokens from the network; set auth.issuer, listen on 127.0.0.1, or set auth.allow_dev_mode_on_network = true",
                self.server.listen
            )));
        }
        if a.jwks_min_ttl_secs == 0
            || a.jwks_max_ttl_secs < a.jwks_min_ttl_secs
            || a.fetch_timeout_ms == 0
            || a.max_document_bytes == 0
        {
            return Err(ConfigError(
                "auth.jwks_min_ttl_secs must be positive and at most auth.jwks_max_ttl_secs; auth.fetch_timeout_ms and auth.max_document_bytes must be positive".into(),
            ));
        }
        for origin in &self.server.cors_origins {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let ok = rest.is_some_and(|r| {
                !r.is_empty()
                    && !r.contains('/')
                    && r.is_ascii()
                    && !r.contains(char::is_whitespace)
            });
            if !ok {
                return Err(ConfigError(format!(
                    "server.cors_origins: {origin:?} is not an origin like https://idp.example.com (scheme and host, no path)"
                )));
            }
        }
        Ok(())
    }

    /// Whether tokens are minted locally (no issuer configured).
    pub fn dev_mode(&self) -> bool {
        self.auth.issuer.is_empty()
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.server.request_timeout_secs)
    }
}

/// The deserializer's refusal, naming the environment variable when the refused key came
/// from one (`from_env`: quoted key, variable name): every MOOCARD_* variable is read as a
/// setting.
fn refused(e: &toml::de::Error, from_env: &[(String, String)]) -> ConfigError {
    let mut msg = ConfigError::redacted(&e.to_string()).0;
    if let Some((_, var)) = from_env.iter().find(|(key, _)| msg.contains(key.as_str())) {
        msg.push_str(&format!(
            " (from the environment variable {var}: every MOOCARD_* variable is read as a \
             setting, MOOCARD_<SECTION>__<KEY>)"
        ));
    }
    ConfigError(msg)
}

/// Env values are TOML literals when they parse as one (numbers, booleans, arrays), else strings.
fn parse_env_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(doc: &mut toml::Table, path: &[&str], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut table = doc;
    for p in parents {
        let entry = table
            .entry((*p).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(t) = entry else { return };
        table = t;
    }
    table.insert((*last).to_owned(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn layers_and_unknown_keys() {
        let doc: toml::Table = "[server]\nlisten = \"0.0.0.0:9000\"\n[limits]\nmax_dimension = 100\n[auth]\nallow_dev_mode_on_network = true"
            .parse()
            .expect("toml");
        let c = Config::from_table(
            doc,
            env(&[
                ("MOOCARD_LIMITS__MAX_UPLOAD_BYTES", "1234"),
                ("DATABASE_URL", "mysql://x/y"),
                ("HOME", "/"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.limits.max_dimension, 100);
        assert_eq!(c.limits.max_upload_bytes, 1234);
        assert_eq!(c.database.url, "mysql://x/y");
        let bad: toml::Table = "[server]\nlisten_on = \"x\"".parse().expect("toml");
        assert!(Config::from_table(bad, env(&[]))
            .unwrap_err()
            .0
            .contains("listen_on"));
        assert!(
            Config::from_table(toml::Table::new(), env(&[("MOOCARD_SERVER__NOPE", "1")])).is_err()
        );
        // A variable that is not a setting is refused by name, not only by its key.
        let e = Config::from_table(
            toml::Table::new(),
            env(&[("MOOCARD_WORKER_CONCURRENCY", "2")]),
        )
        .unwrap_err()
        .0;
        assert!(e.contains("MOOCARD_WORKER_CONCURRENCY"), "{e}");
        let d = Config::from_table(toml::Table::new(), env(&[])).expect("defaults");
        assert_eq!(d.database.url, "sqlite://moocard-data/moocard.db");
        assert_eq!(d.limits.sizes, vec![512, 256, 128, 64, 32]);
        let s = Config::from_table(
            toml::Table::new(),
            env(&[("MOOCARD_AUTH__ISSUER", "https://idp")]),
        );
        assert!(s.is_ok(), "an issuer alone uses discovery");
    }

    #[test]
    fn dev_mode_never_by_accident() {
        let err = |doc: &str, vars: &[(&str, &str)]| {
            Config::from_table(doc.parse().expect("toml"), env(vars))
                .expect_err("must be refused")
                .0
        };
        let m = err("[auth]\npem_files = [\"/k.pem\"]", &[]);
        assert!(m.contains("without auth.issuer"), "{m}");
        let m = err("[auth]\njwks_file = \"/k.json\"", &[]);
        assert!(m.contains("without auth.issuer"), "{m}");
        let m = err(
            "[auth]\nissuer = \"https://idp.example\"",
            &[("MOOCARD_AUTH__ISSUER", "")],
        );
        assert!(m.contains("MOOCARD_AUTH__ISSUER"), "{m}");
        let m = err("[server]\nlisten = \"0.0.0.0:8080\"", &[]);
        assert!(m.contains("allow_dev_mode_on_network"), "{m}");
        let m = err("", &[("MOOCARD_AUTH__ISSUER", "http://idp.example")]);
        assert!(m.contains("https://"), "{m}");
        let m = err("[server]\ncors_origins = [\"https://a.example/path\"]", &[]);
        assert!(m.contains("cors_origins"), "{m}");
        // Explicitly allowed, or on loopback, dev mode starts.
        let ok = |doc: &str| Config::from_table(doc.parse().expect("toml"), env(&[]));
        assert!(ok(
            "[server]\nlisten = \"0.0.0.0:8080\"\n[auth]\nallow_dev_mode_on_network = true"
        )
        .is_ok());
        assert!(ok("").expect("defaults").dev_mode());
        assert!(ok("[auth]\nissuer = \"http://127.0.0.1:4000\"").is_ok());
    }

    #[test]
    fn avif_settings_are_checked_and_the_format_accepted() {
        let load = |doc: &str| Config::from_table(doc.parse().expect("toml"), env(&[]));
        let c = load("[avatars]\nformats = [\"webp\", \"avif\"]").expect("AVIF is built in");
        assert_eq!(c.avatars.formats.len(), 2);
        let e = load("[pipeline]\navif_speed = 11").expect_err("speed 11");
        assert!(e.0.contains("avif_speed must be 1..=10"), "{e}");
        let e = load("[pipeline]\navif_quality = 0").expect_err("quality 0");
        assert!(e.0.contains("avif_quality"), "{e}");
        let c = Config::from_table(
            toml::Table::new(),
            env(&[("MOOCARD_PIPELINE__AVIF_SPEED", "8")]),
        )
        .expect("env");
        assert_eq!(c.pipeline.avif_speed, 8);
    }

    #[test]
    fn errors_never_echo_key_material() {
        let secret = "c2VjcmV0LWtleS1tYXRlcmlhbC1kby1ub3QtcHJpbnQ=";
        for value in [
            format!("[{{id = \"k1\", key = \"{secret}\"}}"),
            format!("{{id = \"k1\", key = \"{secret}\"}}"),
            secret.to_owned(),
            format!("[{{id = \"k1\", key = \"{secret}\", extra = 1}}]"),
            format!("[{{id = \"k1\", key = {secret}}}]"),
        ] {
            let e = Config::from_table(
                toml::Table::new(),
                env(&[("MOOCARD_KEYS__KEKS", value.as_str())]),
            )
            .expect_err("malformed keks");
            assert!(!e.0.contains("c2VjcmV0"), "{e}");
        }
        let doc = format!("[keys]\nindex_secret = {secret}\n");
        let e = doc.parse::<toml::Table>().expect_err("bare value");
        let redacted = ConfigError::redacted(&e.to_string());
        assert!(!redacted.0.contains("c2VjcmV0"), "{}", redacted.0);
    }
}
