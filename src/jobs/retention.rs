//! Retention of finished jobs and dead workers (issue 14): apalis never deletes `jobs` or
//! `workers` rows, so without this both tables grow by one row per upload and per worker
//! start forever. Deleted in batches (`LIMIT`) so a long backlog never holds a big lock.
//!
//! `jobs.lock_by` references `workers.id` (MySQL: `ON DELETE CASCADE`), so a worker row is
//! only deleted once no job refers to it: deleting it earlier would delete its jobs.

use std::time::Duration;

use super::{sql::whole_secs, JobQueue, QueueError, AVATAR_QUEUE};
use crate::db::DbPool;

const SQLITE_NOW: &str = "CAST(strftime('%s','now') AS INTEGER)";

impl JobQueue {
    /// Deletes up to `batch` jobs of this queue that ended (`Done` or `Killed`) at least
    /// `older_than` ago; returns how many. Call until it returns less than `batch`.
    pub async fn purge_finished(
        &self,
        older_than: Duration,
        batch: u32,
    ) -> Result<u64, QueueError> {
        const FINISHED: &str = "job_type = ? AND status IN ('Done', 'Killed')";
        let sqlite = format!(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE {FINISHED} AND \
             done_at <= {SQLITE_NOW} - ? LIMIT ?)"
        );
        let mysql = format!(
            "DELETE FROM jobs WHERE {FINISHED} AND done_at <= NOW() - INTERVAL ? SECOND LIMIT ?"
        );
        let statements = [sqlite.as_str(), mysql.as_str()];
        Ok(delete(
            &self.pool,
            statements,
            Some(AVATAR_QUEUE),
            older_than,
            batch,
        )
        .await?)
    }

    /// Deletes up to `batch` worker rows silent for at least `older_than` that no job
    /// refers to any more; returns how many.
    pub async fn purge_dead_workers(
        &self,
        older_than: Duration,
        batch: u32,
    ) -> Result<u64, QueueError> {
        const UNREFERENCED: &str = "id NOT IN (SELECT lock_by FROM jobs WHERE lock_by IS NOT NULL)";
        let sqlite = format!(
            "DELETE FROM workers WHERE id IN (SELECT id FROM workers WHERE \
             last_seen <= {SQLITE_NOW} - ? AND {UNREFERENCED} LIMIT ?)"
        );
        let mysql = format!(
            "DELETE FROM workers WHERE last_seen <= NOW() - INTERVAL ? SECOND \
             AND {UNREFERENCED} LIMIT ?"
        );
        Ok(delete(&self.pool, [&sqlite, &mysql], None, older_than, batch).await?)
    }
}

/// Runs the backend's statement with binds (`queue`?, age in seconds, batch).
async fn delete(
    pool: &DbPool,
    [sqlite, mysql]: [&str; 2],
    queue: Option<&str>,
    older_than: Duration,
    batch: u32,
) -> Result<u64, sqlx::Error> {
    let secs = whole_secs(older_than);
    macro_rules! run {
        ($pool:expr, $sql:expr) => {{
            let mut q = sqlx::query($sql);
            if let Some(name) = queue {
                q = q.bind(name);
            }
            q.bind(secs)
                .bind(i64::from(batch))
                .execute($pool)
                .await?
                .rows_affected()
        }};
    }
    Ok(match pool {
        DbPool::Sqlite(p) => run!(p, sqlite),
        DbPool::MySql(p) => run!(p, mysql),
    })
}
