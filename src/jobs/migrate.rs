//! apalis' schema, applied our way (DEPENDENCIES.md Q6 and pitfalls 4 and 6).
//!
//! - Never apalis' `setup()`: the app and apalis share `_sqlx_migrations` in sqlx 0.8, so
//!   apalis' migrator must ignore the app's rows (`set_ignore_missing`) and vice versa.
//!   `setup()` would also set PRAGMAs, which `db.rs` already does in the connect options.
//! - On MySQL the apalis SQL names MySQL 8's `utf8mb4_0900_ai_ci`, which MariaDB lacks. We
//!   run the same migrations with that collation rewritten to `utf8mb4_unicode_ci`, but keep
//!   apalis' original checksums so a database migrated by stock apalis on MySQL 8 still
//!   validates (and ours validates against it).

use std::borrow::Cow;

use sqlx::migrate::{Migration, Migrator};

use super::QueueError;
use crate::db::DbPool;

const MYSQL8_COLLATION: &str = "utf8mb4_0900_ai_ci";
const PORTABLE_COLLATION: &str = "utf8mb4_unicode_ci";

/// The rows apalis-sqlite's fetch can take, indexed apart (its `fetch_next.sql` has this
/// exact OR as a term, which is what lets SQLite use a partial index). Without it every
/// fetch, each poll of an idle worker included, reads every job of the queue, finished
/// ones too: 28-37 ms per fetch with 200,000 retained jobs, against 0.7 ms with it.
/// MySQL needs none: apalis-mysql's `idx_jobs_fetch` starts (job_type, status).
pub(super) const SQLITE_FETCHABLE_INDEX: &str = "CREATE INDEX IF NOT EXISTS \
     moocard_jobs_fetchable ON Jobs(job_type, priority DESC, run_at, id) WHERE \
     (status = 'Pending' AND lock_by IS NULL) OR (status = 'Failed' AND attempts < max_attempts)";

pub(super) async fn run(pool: &DbPool) -> Result<(), QueueError> {
    match pool {
        DbPool::Sqlite(p) => {
            let mut m = apalis_sqlite::SqliteStorage::migrations();
            m.set_ignore_missing(true);
            m.run(p).await?;
            sqlx::query(SQLITE_FETCHABLE_INDEX).execute(p).await?;
        }
        DbPool::MySql(p) => {
            let mut m = patched_mysql_migrator();
            m.set_ignore_missing(true);
            m.run(p).await?;
        }
    }
    Ok(())
}

/// apalis-mysql's migrations with the collation made MariaDB-compatible.
pub(super) fn patched_mysql_migrator() -> Migrator {
    let mut m = apalis_mysql::MySqlStorage::migrations();
    let patched: Vec<Migration> = m
        .migrations
        .iter()
        .map(|mig| {
            let mut mig = mig.clone();
            if mig.sql.contains(MYSQL8_COLLATION) {
                // Checksum intentionally left as apalis computed it (see module docs).
                mig.sql = Cow::Owned(mig.sql.replace(MYSQL8_COLLATION, PORTABLE_COLLATION));
            }
            mig
        })
        .collect();
    m.migrations = Cow::Owned(patched);
    m
}
