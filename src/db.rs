//! The database connection: SQLite (embedded default) or MySQL/MariaDB, chosen by the URL scheme.
//!
//! An enum of typed pools rather than `sqlx::Any`: Any cannot decode MySQL binary or
//! timestamp columns (DEPENDENCIES.md Q6), and apalis needs the concrete pool types.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
    ConnectOptions,
};

/// A connection pool to one of the supported backends.
#[derive(Debug, Clone)]
pub enum DbPool {
    /// Embedded SQLite file (WAL), shared by the server and worker processes on one machine.
    Sqlite(SqlitePool),
    /// MySQL 8 or MariaDB 10.11+, for production and scaled-out workers.
    MySql(MySqlPool),
}

/// Which backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite:` URLs.
    Sqlite,
    /// `mysql:` or `mariadb:` URLs.
    MySql,
}

impl Backend {
    /// Picks the backend from a `DATABASE_URL`'s scheme.
    pub fn from_url(url: &str) -> Result<Self, sqlx::Error> {
        match url.split(':').next().unwrap_or_default() {
            "sqlite" => Ok(Self::Sqlite),
            "mysql" | "mariadb" => Ok(Self::MySql),
            other => Err(sqlx::Error::Configuration(
                format!("unsupported database scheme {other:?}: use sqlite:// or mysql://").into(),
            )),
        }
    }
}

/// Creates a missing SQLite file (and its directories, 0700) empty with mode 0600 before
/// SQLite opens it: SQLite gives its `-wal` and `-shm` files the database file's mode,
/// so none of them is readable by other users. An existing file is left as it is.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    if path.as_os_str().is_empty() || path == Path::new(":memory:") || path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        crate::keys::create_private_dir(parent)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        // Another process created it meanwhile.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a connection before answering `unavailable`.
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl DbPool {
    /// Connects to `url`. A relative SQLite path has its parent directories created.
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Self, sqlx::Error> {
        match Backend::from_url(url)? {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    // WAL lets API and worker processes read while one writes; busy_timeout
                    // makes a writer wait instead of failing with SQLITE_BUSY.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .disable_statement_logging();
                create_private_file(options.get_filename()).map_err(sqlx::Error::Io)?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(opts.max_connections)
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(options)
                    .await?;
                Ok(Self::Sqlite(pool))
            }
            Backend::MySql => {
                let url = url.replacen("mariadb:", "mysql:", 1);
                let options = MySqlConnectOptions::from_str(&url)?
                    .charset("utf8mb4")
                    .disable_statement_logging();
                let pool = MySqlPoolOptions::new()
                    .max_connections(opts.max_connections)
                    .acquire_timeout(opts.acquire_timeout)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // A stuck apalis fetch transaction otherwise stalls acks for the
                            // default 50 s (DEPENDENCIES.md pitfall 3); fail fast and retry.
                            sqlx::query("SET SESSION innodb_lock_wait_timeout = 5")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("SET SESSION time_zone = '+00:00'")
                                .execute(&mut *conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                Ok(Self::MySql(pool))
            }
        }
    }

    /// Which backend this pool talks to.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::MySql(_) => Backend::MySql,
        }
    }

    /// Closes every connection (graceful shutdown).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::MySql(p) => p.close().await,
        }
    }
}
