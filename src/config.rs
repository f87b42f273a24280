//! Configuration: defaults, then `moocard.toml` (or `--config`/`MOOCARD_CONFIG`), then
//! `MOOCARD_<SECTION>__<KEY>` environment variables (and `DATABASE_URL`), then `validate()`.
//! Unknown keys fail start-up, so a typo never silently falls back to a default.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{domain::derivation::ExtraFormat, limits::ImageLimits};

mod derived;
pub use derived::{ReprocessSettings, MAX_MASTER_SIZE};

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_secs: 30,
            idle_timeout_secs: 75,
            shutdown_grace_secs: 30,
            log_format: "text".into(),
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
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 16,
            acquire_timeout_secs: 5,
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
    /// Clock skew tolerated on `exp`, in seconds.
    pub leeway_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audience: "moocard".into(),
            pem_files: vec![],
            jwks_file: None,
            leeway_secs: 30,
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
    /// libwebp quality 1..=100 of lossy WebP variants.
    pub webp_quality: u8,
    /// libwebp quality 1..=100 of opaque masters (transparent ones are lossless).
    pub master_quality: u8,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            jpeg_quality: 80,
            trellis: true,
            png_preset: 2,
            webp_quality: 75,
            master_quality: 90,
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
            master_size: 1024,
            formats: Vec::new(),
            negotiate_format: false,
        }
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
    /// Seconds before replaced images and abandoned uploads are deleted.
    pub cleanup_after_secs: u64,
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
            cleanup_after_secs: 600,
        }
    }
}

/// A configuration problem, reported at start-up.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

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
                doc = text
                    .parse()
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
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
        }
        let config: Config = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(e.to_string()))?;
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
        if !self.auth.issuer.is_empty()
            && self.auth.pem_files.is_empty()
            && self.auth.jwks_file.is_none()
        {
            return Err(ConfigError(
                "auth.issuer is set, so auth.pem_files or auth.jwks_file is required".into(),
            ));
        }
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

    /// Whether tokens are minted locally (no issuer configured).
    pub fn dev_mode(&self) -> bool {
        self.auth.issuer.is_empty()
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.server.request_timeout_secs)
    }
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
        let doc: toml::Table = "[server]\nlisten = \"0.0.0.0:9000\"\n[limits]\nmax_dimension = 100"
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
        let d = Config::from_table(toml::Table::new(), env(&[])).expect("defaults");
        assert_eq!(d.database.url, "sqlite://moocard-data/moocard.db");
        assert_eq!(d.limits.sizes, vec![512, 256, 128, 64, 32]);
        let s = Config::from_table(
            toml::Table::new(),
            env(&[("MOOCARD_AUTH__ISSUER", "https://idp")]),
        );
        assert!(s.is_err(), "issuer without keys");
    }
}
