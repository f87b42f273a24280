//! Retention of finished jobs and dead workers (issue 14), on SQLite and MySQL: batches,
//! unfinished jobs untouched, and a worker row never deleted while a job refers to it
//! (`jobs.lock_by` cascades on MySQL, so that would delete the job).

mod queue_support;

use std::time::Duration;

use moocard::db::DbPool;
use moocard::maintenance::{retention_once, Retention};
use queue_support::*;

async fn worker_rows(db: &TestDb) -> i64 {
    match db.queue.pool() {
        DbPool::Sqlite(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM workers")
                .fetch_one(p)
                .await
        }
        DbPool::MySql(p) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM workers")
                .fetch_one(p)
                .await
        }
    }
    .expect("count workers")
}

/// Moves every finished job's `done_at` two hours back.
async fn age_finished_jobs(db: &TestDb) {
    match db.queue.pool() {
        DbPool::Sqlite(p) => {
            sqlx::query("UPDATE jobs SET done_at = done_at - 7200")
                .execute(p)
                .await
                .expect("age jobs");
        }
        DbPool::MySql(p) => {
            sqlx::query("UPDATE jobs SET done_at = done_at - INTERVAL 2 HOUR")
                .execute(p)
                .await
                .expect("age jobs");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_and_dead_workers_are_deleted_in_batches() {
    for db in databases(test_config()).await {
        let label = db.label();
        for i in 0..5 {
            db.queue.enqueue(job(i)).await.expect("enqueue");
        }
        let r = start(&db.queue, options("retention", 2), |_, _| async { Ok(()) });
        wait_until(Duration::from_secs(20), "five done", || async {
            db.queue.counts().await.expect("counts").done == 5
        })
        .await;
        r.stop().await;
        // One job that has not run yet must survive everything below.
        let pending = db.queue.enqueue(job(9)).await.expect("enqueue");
        assert_eq!(worker_rows(&db).await, 1, "{label}");

        // The stopped worker is retired (heartbeat backdated) but its done jobs refer to it.
        let gone = Duration::ZERO;
        assert_eq!(
            db.queue.purge_dead_workers(gone, 10).await.expect("purge"),
            0,
            "{label}"
        );
        // Recent jobs are kept by the loop's floor (killed jobs are reconciled for an hour).
        let r = Retention {
            finished_jobs: gone,
            dead_workers: gone,
            batch: 2,
        };
        assert_eq!(retention_once(&db.queue, r).await, (0, 0), "{label}");
        age_finished_jobs(&db).await;
        // Batches of two: 2 + 2 + 1, then the worker nobody refers to any more.
        assert_eq!(retention_once(&db.queue, r).await, (5, 1), "{label}");
        let c = db.queue.counts().await.expect("counts");
        assert_eq!((c.done, c.pending), (0, 1), "{label}");
        assert_eq!(worker_rows(&db).await, 0, "{label}");
        assert!(
            db.queue.state(&pending).await.expect("state").is_some(),
            "{label}"
        );
        // Metrics count only unfinished jobs.
        let live = db.queue.live_counts().await.expect("live counts");
        assert_eq!((live.pending, live.done), (1, 0), "{label}");
    }
}
