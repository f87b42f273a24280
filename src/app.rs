//! Start-up: from a `Config` to a running router. Shared by `moocard serve`, the worker
//! process and the test harness, so all three run the same checks.

use std::sync::Arc;

use crate::{
    auth::{
        dev::DevSigner,
        oidc::{OidcSettings, RemoteKeys},
        Verifier,
    },
    config::Config,
    db::{DbOptions, DbPool},
    http::{avatar_cache::AvatarCache, AppState, SharedState},
    jobs::{JobQueue, QueueConfig},
    keys,
    profiles::Profiles,
    store,
    uploads::Uploads,
};

/// Everything a process needs, built once at start-up.
pub struct App {
    /// Configuration.
    pub config: Arc<Config>,
    /// The database pool.
    pub pool: DbPool,
    /// Profile records over the store.
    pub profiles: Profiles,
    /// Token verification.
    pub verifier: Arc<Verifier>,
    /// The local signer in dev mode.
    pub dev: Option<Arc<DevSigner>>,
    /// The job queue over the same database.
    pub queue: JobQueue,
    /// Upload intake.
    pub uploads: Uploads,
    /// Public-read caches, shared by every router built from this app.
    pub avatar_cache: Arc<AvatarCache>,
    /// Operator actions and shared limits (issue 16).
    pub operators: crate::admin::Operators,
    /// The audit log.
    pub audit: Arc<crate::audit::AuditLog>,
}

/// Whether start-up may migrate the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Run pending migrations (the embedded default).
    Run,
    /// Refuse to start when the schema is behind (workers; `--no-migrate` API nodes).
    Require,
}

impl App {
    /// Connects, migrates or checks the schema, loads keys and checks they open the data.
    pub async fn build(config: Config, migrations: Migrations) -> anyhow::Result<Self> {
        // Install the recorder first: metrics recorded before it exists are lost.
        crate::telemetry::metrics_handle();
        crate::telemetry::spawn_upkeep(config.server.metrics_upkeep_secs);
        let opts = DbOptions {
            max_connections: config.database.max_connections,
            acquire_timeout: std::time::Duration::from_secs(config.database.acquire_timeout_secs),
            sqlite_checkpoint: (config.database.sqlite_checkpoint_ms > 0)
                .then(|| std::time::Duration::from_millis(config.database.sqlite_checkpoint_ms)),
        };
        let pool = DbPool::connect(&config.database.url, &opts)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to the database: {e}"))?;
        let store = store::for_pool(&pool);
        let queue = JobQueue::new(pool.clone(), queue_config(&config));
        match migrations {
            Migrations::Run => {
                store
                    .migrate()
                    .await
                    .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))?;
                queue
                    .migrate()
                    .await
                    .map_err(|e| anyhow::anyhow!("queue migrations failed: {e}"))?;
            }
            Migrations::Require => store.check_schema().await.map_err(|e| {
                anyhow::anyhow!(
                    "the database schema is behind this build ({e}); run `moocard migrate` first"
                )
            })?,
        }
        let secrets = keys::load(&config).map_err(|e| anyhow::anyhow!("keys: {e}"))?;
        tracing::info!(source = %secrets.source, active_kek = secrets.ring.active_id(), "keys loaded");
        let audit = crate::audit::AuditLog::open(&config.audit, secrets.ids.clone())
            .map_err(|e| anyhow::anyhow!("audit.output {:?}: {e}", config.audit.output))?;
        let profiles = Profiles::new(store, Arc::new(secrets.ring), secrets.ids);
        let operators = crate::admin::Operators::new(pool.clone(), profiles.clone());
        profiles
            .check_keys()
            .await
            .map_err(|e| anyhow::anyhow!("key check failed: {e}"))?;
        let (verifier, dev) = if config.dev_mode() {
            let dev = DevSigner::load_or_create(&config.data_dir, &config.auth.audience)
                .map_err(|e| anyhow::anyhow!("dev signing key: {e}"))?;
            (
                dev.verifier(config.auth.leeway_secs)
                    .map_err(|e| anyhow::anyhow!(e))?,
                Some(Arc::new(dev)),
            )
        } else {
            (verifier_for_issuer(&config).await?, None)
        };
        let config = Arc::new(config);
        let uploads = Uploads::new(
            profiles.clone(),
            queue.clone(),
            config.clone(),
            operators.clone(),
        );
        let avatar_cache = Arc::new(AvatarCache::new(&config));
        // Keeps the filter of known aliases current; ends when the cache is dropped.
        crate::http::alias_filter::spawn_refresh(
            Arc::downgrade(&avatar_cache.filter),
            pool.clone(),
            std::time::Duration::from_millis(config.avatars.filter_refresh_ms),
        );
        Ok(Self {
            avatar_cache,
            config,
            pool,
            profiles,
            verifier: Arc::new(verifier),
            dev,
            queue,
            uploads,
            operators,
            audit,
        })
    }

    /// The HTTP state.
    pub fn state(&self) -> AppState {
        AppState::new(SharedState {
            config: self.config.clone(),
            profiles: self.profiles.clone(),
            verifier: self.verifier.clone(),
            uploads: self.uploads.clone(),
            avatar_cache: self.avatar_cache.clone(),
            // The one-click sign-in exists only in dev mode on loopback (API.md §Identity).
            dev_signer: self
                .dev
                .clone()
                .filter(|_| self.config.server.listen.ip().is_loopback()),
            operators: self.operators.clone(),
            audit: self.audit.clone(),
            owner_ip_limit: crate::http::owner_limit::OwnerIpLimit::new(&self.config.quotas),
        })
    }
}

/// Keys from PEM or JWKS files when configured, else from the issuer's discovery.
async fn verifier_for_issuer(config: &Config) -> anyhow::Result<Verifier> {
    let auth = &config.auth;
    if auth.pem_files.is_empty() && auth.jwks_file.is_none() {
        let keys = RemoteKeys::start(&auth.issuer, OidcSettings::from_config(auth))
            .await
            .map_err(|e| anyhow::anyhow!("auth.issuer: {e}"))?;
        return Ok(Verifier::remote(
            &auth.issuer,
            &auth.audience,
            auth.leeway_secs,
            keys,
        ));
    }
    let mut v = Verifier::new(&auth.issuer, &auth.audience, auth.leeway_secs);
    for path in &auth.pem_files {
        v.add_pem_file(path)
            .map_err(|e| anyhow::anyhow!("auth.pem_files: {e}"))?;
    }
    if let Some(path) = &auth.jwks_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        v.add_jwks(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(v)
}

/// Queue tuning from the configuration.
pub fn queue_config(config: &Config) -> QueueConfig {
    QueueConfig {
        orphan_after: std::time::Duration::from_secs(config.queue.orphan_after_secs),
        max_attempts: config.queue.max_attempts,
        poll_interval: std::time::Duration::from_millis(config.queue.poll_interval_ms.max(1)),
        busy_poll_interval: std::time::Duration::from_millis(
            config.queue.busy_poll_interval_ms.max(1),
        ),
        busy_window: std::time::Duration::from_secs(config.queue.busy_window_secs),
        ..QueueConfig::default()
    }
}
