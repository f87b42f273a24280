//! Real databases for the queue tests: a SQLite file per test, and a throw-away MariaDB/MySQL
//! database per test when `MOOCARD_TEST_MYSQL_URL` is set (unreachable server = failure).

#![allow(dead_code)]

use std::{
    future::Future,
    hash::{BuildHasher, Hasher},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use moocard::{
    db::{DbOptions, DbPool},
    jobs::{JobQueue, ProcessAvatar, QueueConfig},
};
use moocard_worker::runner::{self, JobContext, JobError, RunnerOptions};
use sqlx::Row;
use tokio::{sync::oneshot, task::JoinHandle};

pub const MYSQL_ENV: &str = "MOOCARD_TEST_MYSQL_URL";

/// Short timings so the tests stay fast.
pub fn test_config() -> QueueConfig {
    QueueConfig {
        keep_alive: Duration::from_millis(400),
        orphan_after: Duration::from_secs(2),
        buffer_size: 1,
        poll_interval: Duration::from_millis(50),
        max_attempts: 3,
        retry_base: Duration::from_secs(1),
        retry_max: Duration::from_secs(2),
    }
}

pub fn options(name: &str, concurrency: usize) -> RunnerOptions {
    RunnerOptions {
        concurrency,
        job_timeout: Duration::from_secs(10),
        worker_name: format!("{name}-{}", random_hex(6)),
        reap_interval: Duration::from_millis(500),
    }
}

pub fn random_hex(n: usize) -> String {
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{r:016x}")[..n].to_owned()
}

pub fn job(n: usize) -> ProcessAvatar {
    ProcessAvatar {
        upload_id: format!("{n:08x}"),
        owner: "0f".repeat(20),
        generation: i64::try_from(n).unwrap_or_default(),
        crop: None,
    }
}

/// One test database; a MySQL one is dropped when this is.
pub struct TestDb {
    pub url: String,
    pub queue: JobQueue,
    _dir: Option<tempfile::TempDir>,
    mysql_drop: Option<(String, String)>,
}

impl TestDb {
    pub fn label(&self) -> &'static str {
        match self.queue.pool() {
            DbPool::Sqlite(_) => "sqlite",
            DbPool::MySql(_) => "mysql",
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.mysql_drop.take() else {
            return;
        };
        // Drop is sync: use a private runtime on a plain thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let pool = DbPool::connect(&admin, &DbOptions::default())
                    .await
                    .expect("mysql admin connect for cleanup");
                if let DbPool::MySql(p) = &pool {
                    sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
                        .execute(p)
                        .await
                        .expect("drop test database");
                }
                pool.close().await;
            });
        })
        .join();
    }
}

pub async fn sqlite_db(cfg: QueueConfig) -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("queue.db").display());
    let pool = DbPool::connect(&url, &DbOptions::default())
        .await
        .expect("sqlite connect");
    let queue = JobQueue::new(pool, cfg);
    queue.migrate().await.expect("migrate sqlite");
    TestDb {
        url,
        queue,
        _dir: Some(dir),
        mysql_drop: None,
    }
}

/// `None` when the env var is unset; panics (never skips) when it is set but unusable.
pub async fn mysql_db(cfg: QueueConfig) -> Option<TestDb> {
    let admin = std::env::var(MYSQL_ENV).ok()?;
    let pool = DbPool::connect(&admin, &DbOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{MYSQL_ENV} is set but the server is unreachable: {e}"));
    let name = format!("moocard_t_{}", random_hex(12));
    if let DbPool::MySql(p) = &pool {
        sqlx::query(&format!("CREATE DATABASE `{name}`"))
            .execute(p)
            .await
            .expect("create test database");
    }
    pool.close().await;
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin.as_str(), String::new()),
    };
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    let url = format!("{server}/{name}{query}");
    let pool = DbPool::connect(&url, &DbOptions::default())
        .await
        .expect("connect test database");
    let queue = JobQueue::new(pool, cfg);
    let db = TestDb {
        url,
        queue,
        _dir: None,
        mysql_drop: Some((admin, name)),
    };
    db.queue.migrate().await.expect("migrate mysql");
    db.queue.migrate().await.expect("migrate mysql again");
    Some(db)
}

/// SQLite always, MySQL when configured.
pub async fn databases(cfg: QueueConfig) -> Vec<TestDb> {
    let mut dbs = vec![sqlite_db(cfg.clone()).await];
    dbs.extend(mysql_db(cfg).await);
    dbs
}

/// One handler call, as the test handler saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub upload_id: String,
    pub ctx: JobContext,
    pub at: Instant,
}

pub type Calls = Arc<Mutex<Vec<Call>>>;

pub fn record(calls: &Calls, job: &ProcessAvatar, ctx: &JobContext) {
    calls.lock().expect("calls").push(Call {
        upload_id: job.upload_id.clone(),
        ctx: ctx.clone(),
        at: Instant::now(),
    });
}

/// A runner in the background with a handle to stop it.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<anyhow::Result<()>>,
}

pub fn start<H, Fut>(queue: &JobQueue, opts: RunnerOptions, handler: H) -> Running
where
    H: Fn(ProcessAvatar, JobContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel::<()>();
    let queue = queue.clone();
    let handle = tokio::spawn(async move {
        runner::run(&queue, opts, handler, async move {
            let _ = rx.await;
        })
        .await
    });
    Running {
        stop: Some(tx),
        handle,
    }
}

impl Running {
    /// Signals shutdown and waits for the runner to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.handle)
            .await
            .expect("runner stops within 30 s")
            .expect("runner task")
            .expect("runner result");
    }
}

/// Polls `cond` every 50 ms until it holds; panics after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(id, status, attempts, lock_by)` of every job.
pub async fn rows(queue: &JobQueue) -> Vec<(String, String, i64, Option<String>)> {
    const SQL: &str = "SELECT id, status, attempts, lock_by FROM jobs ORDER BY id";
    match queue.pool() {
        DbPool::Sqlite(p) => sqlx::query(SQL)
            .fetch_all(p)
            .await
            .expect("rows")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<i64, _>(2), r.get(3)))
            .collect(),
        DbPool::MySql(p) => sqlx::query(SQL)
            .fetch_all(p)
            .await
            .expect("rows")
            .iter()
            .map(|r| (r.get(0), r.get(1), i64::from(r.get::<i32, _>(2)), r.get(3)))
            .collect(),
    }
}

/// Status and attempts of one job.
pub async fn job_row(queue: &JobQueue, id: &str) -> (String, i64) {
    let all = rows(queue).await;
    let (_, status, attempts, _) = all.into_iter().find(|r| r.0 == id).expect("job row exists");
    (status, attempts)
}

/// Registers a worker whose heartbeat is an hour old and makes it own `job_id` as `status`.
pub async fn give_to_dead_worker(queue: &JobQueue, worker: &str, job_id: &str, status: &str) {
    let (insert, lock) = match queue.pool() {
        DbPool::Sqlite(_) => (
            "INSERT INTO workers (id, worker_type, storage_name, layers, last_seen) \
             VALUES (?, ?, 'SqliteStorage', '', strftime('%s','now') - 3600)",
            "UPDATE jobs SET status = ?, lock_by = ?, lock_at = strftime('%s','now') WHERE id = ?",
        ),
        DbPool::MySql(_) => (
            "INSERT INTO workers (id, worker_type, storage_name, layers, last_seen) \
             VALUES (?, ?, 'MySqlStorage', '', NOW() - INTERVAL 1 HOUR)",
            "UPDATE jobs SET status = ?, lock_by = ?, lock_at = NOW() WHERE id = ?",
        ),
    };
    macro_rules! go {
        ($p:expr) => {{
            sqlx::query(insert)
                .bind(worker)
                .bind(moocard::jobs::AVATAR_QUEUE)
                .execute($p)
                .await
                .expect("insert dead worker");
            let r = sqlx::query(lock)
                .bind(status)
                .bind(worker)
                .bind(job_id)
                .execute($p)
                .await
                .expect("lock job");
            assert_eq!(r.rows_affected(), 1);
        }};
    }
    match queue.pool() {
        DbPool::Sqlite(p) => go!(p),
        DbPool::MySql(p) => go!(p),
    }
}
