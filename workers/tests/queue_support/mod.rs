//! Real databases for the queue tests: a SQLite file per test, and a throw-away MariaDB/MySQL
//! database per test when `MOOCARD_TEST_MYSQL_URL` is set (unreachable server = failure).

#![allow(dead_code)]

use std::{
    collections::HashMap,
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

#[path = "../../../tests/support/mod.rs"]
mod support;

/// Short timings so the tests stay fast.
pub fn test_config() -> QueueConfig {
    QueueConfig {
        keep_alive: Duration::from_millis(400),
        orphan_after: Duration::from_secs(2),
        buffer_size: 1,
        poll_interval: Duration::from_millis(50),
        busy_poll_interval: Duration::from_millis(10),
        busy_window: Duration::from_secs(10),
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
        rederive: false,
    }
}

/// One test database (from the shared harness, which creates and drops MySQL ones) and
/// a queue over it.
pub struct TestDb {
    pub url: String,
    pub queue: JobQueue,
    _db: support::TestDb,
}

impl TestDb {
    pub fn label(&self) -> &'static str {
        match self.queue.pool() {
            DbPool::Sqlite(_) => "sqlite",
            DbPool::MySql(_) => "mysql",
        }
    }

    async fn over(db: support::TestDb, cfg: QueueConfig) -> Self {
        let pool = DbPool::connect(&db.url, &DbOptions::default())
            .await
            .expect("connect test database");
        let queue = JobQueue::new(pool, cfg);
        queue.migrate().await.expect("migrate");
        queue.migrate().await.expect("migrations are idempotent");
        Self {
            url: db.url.clone(),
            queue,
            _db: db,
        }
    }
}

pub async fn sqlite_db(cfg: QueueConfig) -> TestDb {
    TestDb::over(support::TestDb::sqlite(), cfg).await
}

/// `None` when the env var is unset; panics (never skips) when it is set but unusable.
pub async fn mysql_db(cfg: QueueConfig) -> Option<TestDb> {
    Some(TestDb::over(support::TestDb::mysql().await?, cfg).await)
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

pub type Handler = Arc<dyn Fn(&JobContext) -> Result<(), JobError> + Send + Sync>;

/// A recording handler; `decide` picks each call's result (and may sleep or panic).
pub fn recording(
    calls: &Calls,
    delay: Duration,
    decide: Handler,
) -> impl Fn(
    moocard::jobs::ProcessAvatar,
    JobContext,
) -> futures::future::BoxFuture<'static, Result<(), JobError>>
       + Clone
       + Send
       + Sync
       + 'static {
    let calls = calls.clone();
    move |job, ctx| {
        let calls = calls.clone();
        let decide = decide.clone();
        Box::pin(async move {
            record(&calls, &job, &ctx);
            tokio::time::sleep(delay).await;
            decide(&ctx)
        })
    }
}

pub fn ok() -> Handler {
    Arc::new(|_| Ok(()))
}

pub fn per_upload(calls: &Calls) -> HashMap<String, Vec<u32>> {
    let mut m: HashMap<String, Vec<u32>> = HashMap::new();
    for c in calls.lock().expect("calls").iter() {
        m.entry(c.upload_id.clone())
            .or_default()
            .push(c.ctx.attempt);
    }
    m
}

/// Renames the jobs table (both dialects accept `ALTER TABLE .. RENAME TO ..`).
pub async fn rename_jobs_table(queue: &JobQueue, from: &str, to: &str) {
    let sql = format!("ALTER TABLE {from} RENAME TO {to}");
    match queue.pool() {
        DbPool::Sqlite(p) => sqlx::query(&sql).execute(p).await.map(drop),
        DbPool::MySql(p) => sqlx::query(&sql).execute(p).await.map(drop),
    }
    .expect("rename jobs table");
}
