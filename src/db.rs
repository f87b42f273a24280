//! The database connection: SQLite (embedded default) or MySQL/MariaDB, chosen by the URL scheme.
//!
//! An enum of typed pools rather than `sqlx::Any`: Any cannot decode MySQL binary or
//! timestamp columns (DEPENDENCIES.md Q6), and apalis needs the concrete pool types.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions},
    sqlite::{
        SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
        SqliteSynchronous,
    },
    ConnectOptions, Connection,
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

/// With background checkpoints, the WAL size (pages) at which a commit checkpoints anyway.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_384;
/// The size SQLite truncates the WAL file back to after a checkpoint reset it.
const WAL_SIZE_LIMIT_BYTES: u64 = 64 << 20;

/// Copies the WAL into the database file every `every`, until the pool is closed. PASSIVE:
/// it never waits for or blocks readers and writers (other processes' included), and
/// copies what it can; frames still in use by a reader are taken next time.
///
/// On its own connection, never a pooled one: the pragma loads the schema, and a pooled
/// connection that loaded it halfway through migrations kept it stale, so an INSERT later
/// prepared on it failed ("table Jobs has 12 columns but 14 values were supplied"; SQLite
/// does not re-check the schema for that error). queue_bench hit it in 2 runs of 14.
fn spawn_checkpointer(pool: SqlitePool, options: SqliteConnectOptions, every: Duration) {
    tokio::spawn(async move {
        let mut conn: Option<SqliteConnection> = None;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                if let Some(c) = conn.take() {
                    let _ = c.close().await;
                }
                return;
            }
            if conn.is_none() {
                match options.connect().await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::debug!(error = %e, "background WAL checkpoint: no connection");
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut *c)
                .await
            {
                tracing::debug!(error = %e, "background WAL checkpoint failed");
                conn = None;
            }
        }
    });
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a connection before answering `unavailable`.
    pub acquire_timeout: Duration,
    /// SQLite: the interval of background WAL checkpoints; `None` leaves them to SQLite.
    pub sqlite_checkpoint: Option<Duration>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            sqlite_checkpoint: Some(Duration::from_millis(500)),
        }
    }
}

impl DbPool {
    /// Connects to `url`. A relative SQLite path has its parent directories created.
    pub async fn connect(url: &str, opts: &DbOptions) -> Result<Self, sqlx::Error> {
        match Backend::from_url(url)? {
            Backend::Sqlite => {
                let mut options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    // WAL lets API and worker processes read while one writes; busy_timeout
                    // makes a writer wait instead of failing with SQLITE_BUSY.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    .disable_statement_logging();
                if opts.sqlite_checkpoint.is_some() {
                    // SQLite's own checkpoint runs inside the commit that crosses 1000 pages
                    // (4 MB, a few uploads' originals): that upload or job waited for the
                    // copy and its fsyncs (issue 14). The background task does it instead;
                    // this higher threshold is the fallback if it falls behind.
                    options = options
                        .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
                        .pragma("journal_size_limit", WAL_SIZE_LIMIT_BYTES.to_string());
                }
                create_private_file(options.get_filename()).map_err(sqlx::Error::Io)?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(opts.max_connections)
                    .acquire_timeout(opts.acquire_timeout)
                    .connect_with(options.clone())
                    .await?;
                if let Some(every) = opts.sqlite_checkpoint {
                    spawn_checkpointer(pool.clone(), options, every);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Size of the database file (not its WAL) after writing 2 MiB and waiting `wait`.
    async fn main_file_after_write(checkpoint: Option<Duration>, wait: Duration) -> u64 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let opts = DbOptions {
            sqlite_checkpoint: checkpoint,
            ..DbOptions::default()
        };
        let DbPool::Sqlite(pool) = DbPool::connect(&format!("sqlite://{}", path.display()), &opts)
            .await
            .expect("connect")
        else {
            unreachable!("a sqlite URL")
        };
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(&pool)
            .await
            .expect("create");
        sqlx::query("INSERT INTO t VALUES (?)")
            .bind(vec![7u8; 2 << 20])
            .execute(&pool)
            .await
            .expect("insert");
        tokio::time::sleep(wait).await;
        let len = std::fs::metadata(&path).expect("db file").len();
        pool.close().await;
        len
    }

    #[tokio::test]
    async fn checkpoints_never_leave_a_pooled_connection_with_a_stale_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let opts = DbOptions {
            sqlite_checkpoint: Some(Duration::from_millis(1)),
            max_connections: 2,
            ..DbOptions::default()
        };
        let DbPool::Sqlite(pool) = DbPool::connect(&url, &opts).await.expect("connect") else {
            unreachable!("a sqlite URL")
        };
        // Another process migrates in two steps while checkpoints run.
        let mut other = SqliteConnectOptions::from_str(&url)
            .expect("url")
            .connect()
            .await
            .expect("other");
        sqlx::query("CREATE TABLE t (a INTEGER)")
            .execute(&mut other)
            .await
            .expect("create");
        tokio::time::sleep(Duration::from_millis(50)).await;
        sqlx::query("ALTER TABLE t ADD COLUMN b INTEGER")
            .execute(&mut other)
            .await
            .expect("alter");
        for i in 0..20 {
            sqlx::query("INSERT INTO t VALUES (?, ?)")
                .bind(i)
                .bind(i)
                .execute(&pool)
                .await
                .expect("every pooled connection sees both columns");
        }
        pool.close().await;
    }

    #[tokio::test]
    async fn background_checkpoints_copy_the_wal_into_the_database_file() {
        // SQLite's own checkpoint waits for 1000 pages (4 MiB): 2 MiB stay in the WAL.
        let own = main_file_after_write(None, Duration::from_millis(300)).await;
        assert!(
            own < 1 << 20,
            "no checkpoint yet without the task: {own} bytes"
        );
        // The task copies them without any further commit.
        let background =
            main_file_after_write(Some(Duration::from_millis(50)), Duration::from_millis(300))
                .await;
        assert!(
            background >= 2 << 20,
            "the background checkpoint wrote the blob: {background} bytes"
        );
    }
}
