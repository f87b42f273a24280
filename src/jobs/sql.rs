//! Our own statements against apalis' `jobs` and `workers` tables, one flavour per backend.
//!
//! Table names are written lower-case: MySQL names are case-sensitive on Linux and apalis
//! created them lower-case there, while SQLite (which has `Jobs`) ignores case.
//! Time is always the database's clock (`NOW()` / `strftime('%s','now')`), the same clock
//! apalis writes `workers.last_seen` with, so workers on other machines cannot skew it.
//! Every `UPDATE` only assigns from the row's old values, because MySQL evaluates
//! assignments left to right and MariaDB's SIMULTANEOUS_ASSIGNMENT mode does not.

use std::time::Duration;

use sqlx::Row;

use super::QueueCounts;
use crate::db::DbPool;

const SQLITE_NOW: &str = "CAST(strftime('%s','now') AS INTEGER)";
const REAPED: &str = r#"{"Err":"moocard reaper: worker heartbeat lost"}"#;
const KILLED: &str = r#"{"Err":"moocard reaper: worker heartbeat lost on the last attempt"}"#;

/// Which workers' jobs count as orphaned.
#[derive(Debug, Clone)]
pub(super) enum OrphanScope {
    /// Workers whose heartbeat is at least this old.
    StaleFor(Duration),
    /// One named worker that is known to be gone (its in-flight jobs were aborted).
    Worker(String),
}

pub(super) fn whole_secs(d: Duration) -> i64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Runs `sql` (one `?` for the queue, then the scope's bind) and returns rows changed.
async fn exec_scoped(
    pool: &DbPool,
    sql: &str,
    queue: &str,
    scope: &OrphanScope,
) -> Result<u64, sqlx::Error> {
    macro_rules! run {
        ($pool:expr) => {{
            let q = sqlx::query(sql).bind(queue);
            let q = match scope {
                OrphanScope::StaleFor(d) => q.bind(whole_secs(*d)),
                OrphanScope::Worker(w) => q.bind(w.clone()),
            };
            q.execute($pool).await?.rows_affected()
        }};
    }
    Ok(match pool {
        DbPool::Sqlite(p) => run!(p),
        DbPool::MySql(p) => run!(p),
    })
}

/// Reaper: see [`super::JobQueue::reap_orphans`]. Three single-purpose statements instead
/// of one `CASE` soup so that no assignment depends on another's evaluation order.
pub(super) async fn requeue_orphans(
    pool: &DbPool,
    queue: &str,
    scope: &OrphanScope,
) -> Result<u64, sqlx::Error> {
    let (now, owner) = match (pool, scope) {
        (DbPool::Sqlite(_), OrphanScope::StaleFor(_)) => (
            SQLITE_NOW,
            format!("lock_by IN (SELECT id FROM workers WHERE last_seen <= {SQLITE_NOW} - ?)"),
        ),
        (DbPool::MySql(_), OrphanScope::StaleFor(_)) => (
            "NOW()",
            "lock_by IN (SELECT id FROM workers WHERE last_seen <= NOW() - INTERVAL ? SECOND)"
                .to_owned(),
        ),
        (DbPool::Sqlite(_), OrphanScope::Worker(_)) => (SQLITE_NOW, "lock_by = ?".to_owned()),
        (DbPool::MySql(_), OrphanScope::Worker(_)) => ("NOW()", "lock_by = ?".to_owned()),
    };
    // A job that was running when its worker died used up an attempt; if that was its last
    // one it is killed, so a job that crashes the process cannot loop forever.
    let kill = format!(
        "UPDATE jobs SET status = 'Killed', attempts = attempts + 1, done_at = {now}, \
         lock_at = NULL, last_result = '{KILLED}' \
         WHERE job_type = ? AND status = 'Running' AND attempts + 1 >= max_attempts AND {owner}"
    );
    let retry = format!(
        "UPDATE jobs SET status = 'Pending', attempts = attempts + 1, lock_by = NULL, \
         lock_at = NULL, done_at = NULL, last_result = '{REAPED}' \
         WHERE job_type = ? AND status = 'Running' AND {owner}"
    );
    // A fetched-but-never-started job used no attempt.
    let unqueue = format!(
        "UPDATE jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL \
         WHERE job_type = ? AND status = 'Queued' AND {owner}"
    );
    let mut moved = 0;
    for sql in [kill, retry, unqueue] {
        moved += exec_scoped(pool, &sql, queue, scope).await?;
    }
    Ok(moved)
}

/// Puts `worker`'s `Queued` jobs back to `Pending`: all but the ids in `skip`, or only
/// the job `only`.
pub(super) async fn release_queued(
    pool: &DbPool,
    worker: &str,
    skip: &[String],
    only: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let mut sql = String::from(
        "UPDATE jobs SET status = 'Pending', lock_by = NULL, lock_at = NULL \
         WHERE lock_by = ? AND status = 'Queued'",
    );
    if !skip.is_empty() {
        let marks = vec!["?"; skip.len()].join(", ");
        sql.push_str(&format!(" AND id NOT IN ({marks})"));
    }
    if only.is_some() {
        sql.push_str(" AND id = ?");
    }
    macro_rules! run {
        ($pool:expr) => {{
            let mut q = sqlx::query(&sql).bind(worker);
            for id in skip.iter().map(String::as_str).chain(only) {
                q = q.bind(id);
            }
            q.execute($pool).await?.rows_affected()
        }};
    }
    Ok(match pool {
        DbPool::Sqlite(p) => run!(p),
        DbPool::MySql(p) => run!(p),
    })
}

/// Writes a job's final state in place of apalis' ack, if `worker` still runs it.
pub(super) async fn finish_running(
    pool: &DbPool,
    job_id: &str,
    worker: &str,
    status: &str,
    attempts: u32,
) -> Result<u64, sqlx::Error> {
    let now = match pool {
        DbPool::Sqlite(_) => SQLITE_NOW,
        DbPool::MySql(_) => "NOW()",
    };
    let sql = format!(
        "UPDATE jobs SET status = ?, attempts = ?, done_at = {now} \
         WHERE id = ? AND lock_by = ? AND status = 'Running'"
    );
    let attempts = i64::from(attempts);
    Ok(match pool {
        DbPool::Sqlite(p) => sqlx::query(&sql)
            .bind(status)
            .bind(attempts)
            .bind(job_id)
            .bind(worker)
            .execute(p)
            .await?
            .rows_affected(),
        DbPool::MySql(p) => sqlx::query(&sql)
            .bind(status)
            .bind(attempts)
            .bind(job_id)
            .bind(worker)
            .execute(p)
            .await?
            .rows_affected(),
    })
}

/// Backdates a worker's heartbeat so any leftovers are reapable on the next reaper pass.
pub(super) async fn retire_worker(pool: &DbPool, worker: &str) -> Result<(), sqlx::Error> {
    match pool {
        DbPool::Sqlite(p) => {
            sqlx::query("UPDATE workers SET last_seen = 0 WHERE id = ?")
                .bind(worker)
                .execute(p)
                .await?;
        }
        DbPool::MySql(p) => {
            // TIMESTAMP's range starts in 1970; the session time zone is UTC (db.rs).
            sqlx::query("UPDATE workers SET last_seen = '1971-01-01 00:00:00' WHERE id = ?")
                .bind(worker)
                .execute(p)
                .await?;
        }
    }
    Ok(())
}

/// Sets a job's `run_at` to now + `delay` (whole seconds: SQLite stores epoch seconds).
pub(super) async fn set_run_at_in(
    pool: &DbPool,
    job_id: &str,
    delay: Duration,
) -> Result<(), sqlx::Error> {
    let secs = whole_secs(delay);
    match pool {
        DbPool::Sqlite(p) => {
            sqlx::query(&format!(
                "UPDATE jobs SET run_at = {SQLITE_NOW} + ? WHERE id = ?"
            ))
            .bind(secs)
            .bind(job_id)
            .execute(p)
            .await?;
        }
        DbPool::MySql(p) => {
            sqlx::query("UPDATE jobs SET run_at = NOW() + INTERVAL ? SECOND WHERE id = ?")
                .bind(secs)
                .bind(job_id)
                .execute(p)
                .await?;
        }
    }
    Ok(())
}

/// Two counts, each on the (job_type, status) index. One WHERE with an OR across statuses
/// makes SQLite read every row of the queue, finished ones included: 40-50 ms per upload
/// with 200,000 retained jobs (a day of retention at a busy site), against 0.1 ms.
pub(super) const DEPTH: &str = "SELECT \
     (SELECT COUNT(*) FROM jobs WHERE job_type = ? AND status IN ('Pending', 'Queued', 'Running')) + \
     (SELECT COUNT(*) FROM jobs WHERE job_type = ? AND status = 'Failed' AND attempts < max_attempts)";
const COUNTS: &str = "SELECT status, COUNT(*) FROM jobs WHERE job_type = ? GROUP BY status";
/// Only the unfinished statuses: served by the status index however many finished rows
/// retention still keeps, so a `/metrics` scrape does not scan them.
const LIVE_COUNTS: &str = "SELECT status, COUNT(*) FROM jobs WHERE job_type = ? AND \
     status IN ('Pending', 'Queued', 'Running', 'Failed') GROUP BY status";

pub(super) async fn depth(pool: &DbPool, queue: &str) -> Result<u64, sqlx::Error> {
    // The queue once per count.
    macro_rules! run {
        ($pool:expr) => {
            sqlx::query_scalar(DEPTH)
                .bind(queue)
                .bind(queue)
                .fetch_one($pool)
                .await?
        };
    }
    let n: i64 = match pool {
        DbPool::Sqlite(p) => run!(p),
        DbPool::MySql(p) => run!(p),
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) async fn counts(
    pool: &DbPool,
    queue: &str,
    live_only: bool,
) -> Result<QueueCounts, sqlx::Error> {
    let sql = if live_only { LIVE_COUNTS } else { COUNTS };
    let rows: Vec<(String, i64)> = match pool {
        DbPool::Sqlite(p) => sqlx::query(sql)
            .bind(queue)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?,
        DbPool::MySql(p) => sqlx::query(sql)
            .bind(queue)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()?,
    };
    let mut c = QueueCounts::default();
    for (status, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match status.as_str() {
            "Pending" => c.pending += n,
            "Queued" => c.queued += n,
            "Running" => c.running += n,
            "Done" => c.done += n,
            "Failed" => c.failed += n,
            // "Killed" and anything a future apalis adds: terminal, never retried by us.
            _ => c.killed += n,
        }
    }
    Ok(c)
}

pub(super) async fn status_of(pool: &DbPool, id: &str) -> Result<Option<String>, sqlx::Error> {
    const SQL: &str = "SELECT status FROM jobs WHERE id = ?";
    match pool {
        DbPool::Sqlite(p) => sqlx::query_scalar(SQL).bind(id).fetch_optional(p).await,
        DbPool::MySql(p) => sqlx::query_scalar(SQL).bind(id).fetch_optional(p).await,
    }
}

pub(super) async fn ping(pool: &DbPool) -> Result<(), sqlx::Error> {
    const PING: &str = "SELECT COUNT(*) FROM jobs WHERE 1 = 0";
    match pool {
        DbPool::Sqlite(p) => sqlx::query(PING).fetch_one(p).await.map(drop),
        DbPool::MySql(p) => sqlx::query(PING).fetch_one(p).await.map(drop),
    }
}

/// Payloads of jobs of `queue` that ended `Killed` within the last `within`.
pub(super) async fn killed_since(
    pool: &DbPool,
    queue: &str,
    within: Duration,
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    let secs = whole_secs(within);
    match pool {
        DbPool::Sqlite(p) => {
            let sql = format!(
                "SELECT job FROM jobs WHERE job_type = ? AND status = 'Killed' AND done_at >= {SQLITE_NOW} - ?"
            );
            sqlx::query_scalar(&sql)
                .bind(queue)
                .bind(secs)
                .fetch_all(p)
                .await
        }
        DbPool::MySql(p) => {
            const SQL: &str = "SELECT job FROM jobs WHERE job_type = ? AND status = 'Killed' \
                               AND done_at >= NOW() - INTERVAL ? SECOND";
            sqlx::query_scalar(SQL)
                .bind(queue)
                .bind(secs)
                .fetch_all(p)
                .await
        }
    }
}
