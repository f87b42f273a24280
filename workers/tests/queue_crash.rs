//! Crash and failure paths of the job runner against real databases: a worker process
//! killed with SIGKILL, a failed apalis ack, a fetch outage. SQLite always, MariaDB/MySQL
//! when `MOOCARD_TEST_MYSQL_URL` is set.

mod queue_support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use moocard_worker::runner::{self, JobContext};
use queue_support::*;

/// MySQL only: a lock held past `innodb_lock_wait_timeout` (5 s) makes apalis' ack fail;
/// the runner records the result itself instead of leaving the job `Running` forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_ack_is_repaired() {
    let Some(db) = mysql_db(test_config()).await else {
        return; // SQLite has no row locks to provoke this with
    };
    let moocard::db::DbPool::MySql(pool) = db.queue.pool().clone() else {
        unreachable!()
    };
    let id = db.queue.enqueue(job(1)).await.expect("enqueue");
    let calls = Calls::default();
    let c2 = calls.clone();
    let handler = move |job: moocard::jobs::ProcessAvatar, ctx: JobContext| {
        let (calls, pool) = (c2.clone(), pool.clone());
        async move {
            record(&calls, &job, &ctx);
            let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let mut tx = pool.begin().await.expect("begin");
                sqlx::query("SELECT id FROM jobs WHERE id = ? FOR UPDATE")
                    .bind(&ctx.job_id)
                    .fetch_one(&mut *tx)
                    .await
                    .expect("lock row");
                let _ = locked_tx.send(());
                tokio::time::sleep(Duration::from_millis(6500)).await;
                tx.commit().await.expect("commit");
            });
            let _ = locked_rx.await;
            Ok(())
        }
    };
    let r = start(&db.queue, options("ackfix", 1), handler);
    wait_until(
        Duration::from_secs(20),
        "done despite the failed ack",
        || async { db.queue.counts().await.expect("counts").done == 1 },
    )
    .await;
    r.stop().await;
    assert_eq!(job_row(&db.queue, &id.0).await, ("Done".to_owned(), 1));
    assert_eq!(calls.lock().expect("calls").len(), 1);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkilled_worker_process_job_is_finished_by_another() {
    for db in databases(test_config()).await {
        let id = db.queue.enqueue(job(1)).await.expect("enqueue");
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("started");
        let mut child = KillOnDrop(
            std::process::Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "child_worker_process",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                ])
                .env("MOOCARD_CHILD_DB_URL", &db.url)
                .env("MOOCARD_CHILD_MARKER", &marker)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn child worker"),
        );
        wait_until(Duration::from_secs(20), "child started the job", || async {
            marker.exists()
        })
        .await;
        assert_eq!(job_row(&db.queue, &id.0).await.0, "Running");
        child.0.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
        child.0.wait().expect("reap child");
        let killed = Instant::now();

        let calls = Calls::default();
        let r = start(
            &db.queue,
            options("rescuer", 1),
            recording(&calls, Duration::ZERO, ok()),
        );
        wait_until(Duration::from_secs(15), "job redone", || async {
            db.queue.counts().await.expect("counts").done == 1
        })
        .await;
        let took = killed.elapsed();
        eprintln!("{}: job redone {took:?} after SIGKILL", db.label());
        r.stop().await;
        // orphan_after (2 s) + reap interval (0.5 s) + heartbeat and second rounding.
        assert!(
            took < Duration::from_secs(6),
            "{}: took {took:?}",
            db.label()
        );
        assert_eq!(per_upload(&calls)[&job(1).upload_id], [2], "{}", db.label());
        assert_eq!(job_row(&db.queue, &id.0).await, ("Done".to_owned(), 2));
    }
}

/// Not a test: the worker process the SIGKILL test starts (and kills).
#[test]
#[ignore = "helper process for sigkilled_worker_process_job_is_finished_by_another"]
fn child_worker_process() {
    let (Ok(url), Ok(marker)) = (
        std::env::var("MOOCARD_CHILD_DB_URL"),
        std::env::var("MOOCARD_CHILD_MARKER"),
    ) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let pool = moocard::db::DbPool::connect(&url, &moocard::db::DbOptions::default())
            .await
            .expect("child connect");
        let queue = moocard::jobs::JobQueue::new(pool, test_config());
        let marker = Arc::new(Mutex::new(marker));
        let handler = move |_job, ctx: JobContext| {
            let marker = marker.lock().expect("marker").clone();
            async move {
                std::fs::write(marker, ctx.job_id).expect("marker");
                tokio::time::sleep(Duration::from_secs(600)).await;
                Ok(())
            }
        };
        runner::run(&queue, options("child", 1), handler, std::future::pending())
            .await
            .expect("child runner");
    });
}

/// A short database outage (here: the jobs table vanishes for 1.2 s) makes fetches fail;
/// the runner reopens its fetch stream instead of restarting the worker, and carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetch_outage_does_not_restart_the_worker() {
    for db in databases(test_config()).await {
        let calls = Calls::default();
        let opts = options("outage", 1);
        let name = opts.worker_name.clone();
        let r = start(&db.queue, opts, recording(&calls, Duration::ZERO, ok()));
        db.queue.enqueue(job(1)).await.expect("enqueue");
        wait_until(Duration::from_secs(10), "first job", || async {
            db.queue.counts().await.expect("counts").done == 1
        })
        .await;
        rename_jobs_table(&db.queue, "jobs", "jobs_away").await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        rename_jobs_table(&db.queue, "jobs_away", "jobs").await;
        db.queue.enqueue(job(2)).await.expect("enqueue");
        wait_until(Duration::from_secs(10), "job after the outage", || async {
            db.queue.counts().await.expect("counts").done == 2
        })
        .await;
        r.stop().await;
        // Same incarnation throughout: a restart would have added a `-1` suffix.
        let owners: Vec<_> = rows(&db.queue).await.into_iter().map(|r| r.3).collect();
        assert_eq!(owners, [Some(name.clone()), Some(name)], "{}", db.label());
    }
}
