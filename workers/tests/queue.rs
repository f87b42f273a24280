//! The job runner against real databases: SQLite always, MariaDB/MySQL when
//! `MOOCARD_TEST_MYSQL_URL` is set (e.g. `mysql://root@127.0.0.1:3306/test`).

mod queue_support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use moocard::jobs::QueueConfig;
use moocard_worker::runner::{JobContext, JobError};
use queue_support::*;

async fn assert_idle(db: &TestDb) {
    let c = db.queue.counts().await.expect("counts");
    assert_eq!((c.queued, c.running), (0, 0), "{}: {c:?}", db.label());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drains_every_job_exactly_once() {
    for db in databases(test_config()).await {
        const N: usize = 60;
        for i in 0..N {
            db.queue.enqueue(job(i)).await.expect("enqueue");
        }
        assert_eq!(db.queue.depth().await.expect("depth"), N as u64);
        let calls = Calls::default();
        let r1 = start(
            &db.queue,
            options("drain-a", 4),
            recording(&calls, Duration::ZERO, ok()),
        );
        let r2 = start(
            &db.queue,
            options("drain-b", 2),
            recording(&calls, Duration::ZERO, ok()),
        );
        wait_until(Duration::from_secs(30), "all done", || async {
            db.queue.counts().await.expect("counts").done == N as u64
        })
        .await;
        r1.stop().await;
        r2.stop().await;
        let seen = per_upload(&calls);
        assert_eq!(seen.len(), N, "{}", db.label());
        assert!(seen.values().all(|a| a == &[1]), "{}: {seen:?}", db.label());
        assert_eq!(db.queue.depth().await.expect("depth"), 0);
        assert_idle(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transient_errors_retry_with_backoff_then_exhaust() {
    let cfg = QueueConfig {
        retry_base: Duration::from_secs(2),
        retry_max: Duration::from_secs(2),
        ..test_config()
    };
    for db in databases(cfg).await {
        let flaky = db.queue.enqueue(job(1)).await.expect("enqueue");
        let broken = db.queue.enqueue(job(2)).await.expect("enqueue");
        let calls = Calls::default();
        let broken_id = broken.0.clone();
        let decide: Handler = Arc::new(move |ctx: &JobContext| {
            if ctx.job_id == broken_id || ctx.attempt < 3 {
                Err(JobError::Transient(format!(
                    "busy on attempt {}",
                    ctx.attempt
                )))
            } else {
                Ok(())
            }
        });
        let r = start(
            &db.queue,
            options("retry", 2),
            recording(&calls, Duration::ZERO, decide),
        );
        wait_until(Duration::from_secs(30), "both finished", || async {
            let c = db.queue.counts().await.expect("counts");
            c.done == 1 && c.killed == 1
        })
        .await;
        r.stop().await;
        assert_eq!(job_row(&db.queue, &flaky.0).await, ("Done".to_owned(), 3));
        assert_eq!(
            job_row(&db.queue, &broken.0).await,
            ("Killed".to_owned(), 3)
        );
        let calls = calls.lock().expect("calls").clone();
        for id in [&flaky.0, &broken.0] {
            let mine: Vec<_> = calls.iter().filter(|c| &c.ctx.job_id == id).collect();
            let attempts: Vec<u32> = mine.iter().map(|c| c.ctx.attempt).collect();
            assert_eq!(attempts, [1, 2, 3], "{}", db.label());
            assert!(mine[2].ctx.is_final_attempt() && !mine[1].ctx.is_final_attempt());
            for w in mine.windows(2) {
                // 2 s backoff; SQLite and MySQL keep run_at in whole seconds.
                let gap = w[1].at - w[0].at;
                assert!(
                    gap >= Duration::from_millis(950),
                    "{}: gap {gap:?}",
                    db.label()
                );
            }
        }
        assert_idle(&db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permanent_errors_are_not_retried() {
    for db in databases(test_config()).await {
        let id = db.queue.enqueue(job(1)).await.expect("enqueue");
        let calls = Calls::default();
        let decide: Handler = Arc::new(|_| Err(JobError::Permanent("undecodable_image".into())));
        let r = start(
            &db.queue,
            options("perm", 2),
            recording(&calls, Duration::ZERO, decide),
        );
        wait_until(Duration::from_secs(10), "killed", || async {
            db.queue.counts().await.expect("counts").killed == 1
        })
        .await;
        // Longer than a retry would take.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        r.stop().await;
        assert_eq!(calls.lock().expect("calls").len(), 1, "{}", db.label());
        assert_eq!(job_row(&db.queue, &id.0).await, ("Killed".to_owned(), 1));
        assert_eq!(
            db.queue.state(&id).await.expect("state"),
            Some(moocard::jobs::JobState::Killed)
        );
        assert_eq!(db.queue.depth().await.expect("depth"), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn panics_are_contained_and_retried() {
    for db in databases(test_config()).await {
        let bomb = db.queue.enqueue(job(1)).await.expect("enqueue");
        for i in 2..6 {
            db.queue.enqueue(job(i)).await.expect("enqueue");
        }
        let calls = Calls::default();
        let bomb_id = bomb.0.clone();
        let decide: Handler = Arc::new(move |ctx: &JobContext| {
            assert!(
                !(ctx.job_id == bomb_id && ctx.attempt == 1),
                "boom (expected test panic)"
            );
            Ok(())
        });
        let r = start(
            &db.queue,
            options("panic", 1),
            recording(&calls, Duration::ZERO, decide),
        );
        wait_until(Duration::from_secs(15), "all done", || async {
            db.queue.counts().await.expect("counts").done == 5
        })
        .await;
        r.stop().await;
        assert_eq!(job_row(&db.queue, &bomb.0).await, ("Done".to_owned(), 2));
        let seen = per_upload(&calls);
        assert_eq!(seen[&job(1).upload_id], [1, 2], "{}", db.label());
        assert_eq!(seen.len(), 5);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeouts_count_as_transient() {
    for db in databases(test_config()).await {
        let id = db.queue.enqueue(job(1)).await.expect("enqueue");
        let calls = Calls::default();
        let c2 = calls.clone();
        let handler = move |job: moocard::jobs::ProcessAvatar, ctx: JobContext| {
            let calls = c2.clone();
            async move {
                record(&calls, &job, &ctx);
                if ctx.attempt == 1 {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                Ok(())
            }
        };
        let mut opts = options("timeout", 1);
        opts.job_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let r = start(&db.queue, opts, handler);
        wait_until(Duration::from_secs(10), "done", || async {
            db.queue.counts().await.expect("counts").done == 1
        })
        .await;
        r.stop().await;
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(job_row(&db.queue, &id.0).await, ("Done".to_owned(), 2));
        assert_eq!(per_upload(&calls)[&job(1).upload_id], [1, 2]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_leaves_nothing_queued_or_running() {
    let cfg = QueueConfig {
        buffer_size: 3,
        ..test_config()
    };
    for db in databases(cfg).await {
        const N: usize = 30;
        for i in 0..N {
            db.queue.enqueue(job(i)).await.expect("enqueue");
        }
        let calls = Calls::default();
        let slow = recording(&calls, Duration::from_millis(300), ok());
        let r = start(&db.queue, options("graceful", 3), slow);
        wait_until(Duration::from_secs(20), "some done", || async {
            db.queue.counts().await.expect("counts").done >= 6
        })
        .await;
        let stopping = Instant::now();
        r.stop().await;
        // In-flight jobs were allowed to finish (300 ms each), not cut off or abandoned.
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "{}",
            db.label()
        );
        assert_idle(&db).await;
        let c = db.queue.counts().await.expect("counts");
        let started = calls.lock().expect("calls").len() as u64;
        assert_eq!(
            c.done,
            started,
            "{}: every started job finished",
            db.label()
        );
        assert_eq!(
            c.pending,
            N as u64 - started,
            "{}: the rest is Pending",
            db.label()
        );
        assert!(rows(&db.queue)
            .await
            .iter()
            .all(|r| r.1 == "Done" || r.3.is_none()));

        // Another worker picks up the rest right away (not after a reclaim timeout).
        let r = start(
            &db.queue,
            options("graceful2", 4),
            recording(&calls, Duration::ZERO, ok()),
        );
        wait_until(Duration::from_secs(5), "rest done", || async {
            db.queue.counts().await.expect("counts").done == N as u64
        })
        .await;
        r.stop().await;
        let seen = per_upload(&calls);
        assert_eq!(seen.len(), N);
        assert!(seen.values().all(|a| a == &[1]), "{}: {seen:?}", db.label());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reaper_redoes_jobs_of_dead_workers() {
    for db in databases(test_config()).await {
        let running = db.queue.enqueue(job(1)).await.expect("enqueue");
        let queued = db.queue.enqueue(job(2)).await.expect("enqueue");
        give_to_dead_worker(&db.queue, "ghost-1", &running.0, "Running").await;
        give_to_dead_worker(&db.queue, "ghost-2", &queued.0, "Queued").await;
        let calls = Calls::default();
        let r = start(
            &db.queue,
            options("reaper", 2),
            recording(&calls, Duration::ZERO, ok()),
        );
        wait_until(Duration::from_secs(10), "both redone", || async {
            db.queue.counts().await.expect("counts").done == 2
        })
        .await;
        r.stop().await;
        let seen = per_upload(&calls);
        // The running one lost an attempt with its worker; the queued one never started.
        assert_eq!(seen[&job(1).upload_id], [2], "{}", db.label());
        assert_eq!(seen[&job(2).upload_id], [1], "{}", db.label());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_limit_is_honoured_and_used() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for db in databases(test_config()).await {
        for i in 0..12 {
            db.queue.enqueue(job(i)).await.expect("enqueue");
        }
        let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (n2, m2) = (now.clone(), max.clone());
        let handler = move |_job, _ctx: JobContext| {
            let (now, max) = (n2.clone(), m2.clone());
            async move {
                let here = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(here, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(250)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        };
        let r = start(&db.queue, options("conc", 3), handler);
        wait_until(Duration::from_secs(15), "all done", || async {
            db.queue.counts().await.expect("counts").done == 12
        })
        .await;
        r.stop().await;
        assert_eq!(max.load(Ordering::SeqCst), 3, "{}", db.label());
    }
}

/// The in-process wake-up must win even when the poll interval ticks between jobs (before
/// the fix each tick made apalis skip the next wake-up, so jobs waited for the next tick).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enqueued_jobs_start_without_waiting_for_the_poll() {
    let cfg = QueueConfig {
        poll_interval: Duration::from_millis(400),
        busy_poll_interval: Duration::from_millis(400), // the wake-up alone
        ..test_config()
    };
    for db in databases(cfg).await {
        // 500 ms apart: the 400 ms interval ticks between every two jobs.
        let delays = start_delays(&db, &db.queue, Duration::from_millis(500)).await;
        // Polling alone would give a median near 200 ms (uniform over the interval).
        assert!(
            delays[delays.len() / 2] < Duration::from_millis(100),
            "{}: {delays:?}",
            db.label()
        );
    }
}

/// A worker in another process (here: another queue over the same database, so no
/// in-process wake-up) polls at `busy_poll_interval` while jobs keep coming.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_separate_worker_polls_faster() {
    let cfg = QueueConfig {
        poll_interval: Duration::from_millis(1000),
        busy_poll_interval: Duration::from_millis(20),
        ..test_config()
    };
    for db in databases(cfg.clone()).await {
        let other = moocard::jobs::JobQueue::new(db.queue.pool().clone(), cfg.clone());
        let delays = start_delays(&db, &other, Duration::from_millis(300)).await;
        // The first job meets an idle worker (up to 1 s); the rest find it busy. Polling
        // at 1 s alone would give a median near 500 ms.
        assert!(
            delays[delays.len() / 2] < Duration::from_millis(150),
            "{}: {delays:?}",
            db.label()
        );
    }
    // queue.busy_window_secs = 0 turns it off: every job waits for the 1 s poll.
    let off = QueueConfig {
        busy_window: Duration::ZERO,
        ..cfg
    };
    for db in databases(off.clone()).await {
        let other = moocard::jobs::JobQueue::new(db.queue.pool().clone(), off.clone());
        let delays = start_delays(&db, &other, Duration::from_millis(300)).await;
        assert!(
            delays[delays.len() / 2] > Duration::from_millis(250),
            "{}: {delays:?}",
            db.label()
        );
    }
}

/// Runs a worker on `db.queue`, enqueues six jobs through `via`, `gap` apart, and returns
/// how long each waited to start, sorted.
async fn start_delays(db: &TestDb, via: &moocard::jobs::JobQueue, gap: Duration) -> Vec<Duration> {
    let calls = Calls::default();
    let r = start(
        &db.queue,
        options("poll", 2),
        recording(&calls, Duration::ZERO, ok()),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut delays = Vec::new();
    for i in 0..6 {
        tokio::time::sleep(gap).await;
        let enqueued = Instant::now();
        via.enqueue(job(i)).await.expect("enqueue");
        wait_until(Duration::from_secs(5), "job started", || async {
            calls.lock().expect("calls").len() > i
        })
        .await;
        let at = calls.lock().expect("calls")[i].at;
        delays.push(at.duration_since(enqueued));
    }
    r.stop().await;
    delays.sort();
    delays
}
