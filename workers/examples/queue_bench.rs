//! Queue overhead with a no-op handler: enqueue rate, backlog drain rate, and
//! enqueue-to-start latency of an idle runner, at concurrency 1 and 4.
//!
//! ```text
//! cargo run --release -p moocard-worker --example queue_bench -- sqlite [N] [BUFFER]
//! cargo run --release -p moocard-worker --example queue_bench -- mysql://root@127.0.0.1:3306/test [N] [BUFFER]
//! ```
//! Each run uses a fresh database (a temp SQLite file, or a `moocard_b_*` MySQL database that
//! is dropped afterwards) and the default `QueueConfig` (poll 100 ms, buffer 1 unless given).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context;
use moocard::{
    db::{DbOptions, DbPool},
    jobs::{JobQueue, ProcessAvatar, QueueConfig},
};
use moocard_worker::runner::{self, JobContext, JobError, RunnerOptions};

// The `moocard` binary's allocator (workers/src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Starts = Arc<Mutex<HashMap<String, Instant>>>;

fn job(n: usize) -> ProcessAvatar {
    ProcessAvatar {
        upload_id: format!("{n:08x}"),
        owner: "0f".repeat(20),
        generation: 1,
        crop: None,
        rederive: false,
    }
}

async fn fresh_db(
    target: &str,
    tag: &str,
    buffer: usize,
) -> anyhow::Result<(JobQueue, Option<String>)> {
    let (url, drop_db) = if target == "sqlite" {
        let path =
            std::env::temp_dir().join(format!("moocard-bench-{tag}-{}.db", std::process::id()));
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
        (format!("sqlite://{}", path.display()), None)
    } else {
        let admin = DbPool::connect(target, &DbOptions::default()).await?;
        let name = format!("moocard_b_{tag}_{}", std::process::id());
        if let DbPool::MySql(p) = &admin {
            sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
                .execute(p)
                .await?;
            sqlx::query(&format!("CREATE DATABASE `{name}`"))
                .execute(p)
                .await?;
        }
        admin.close().await;
        let server = target.rsplit_once('/').map_or(target, |(s, _)| s);
        (format!("{server}/{name}"), Some(name))
    };
    let pool = DbPool::connect(&url, &DbOptions::default()).await?;
    let cfg = QueueConfig {
        buffer_size: buffer,
        ..QueueConfig::default()
    };
    let queue = JobQueue::new(pool, cfg);
    queue.migrate().await?;
    Ok((queue, drop_db))
}

fn start(
    queue: &JobQueue,
    concurrency: usize,
    starts: &Starts,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let starts = starts.clone();
    let handler = move |job: ProcessAvatar, _ctx: JobContext| {
        let starts = starts.clone();
        async move {
            starts
                .lock()
                .map_err(|_| JobError::Transient("poisoned".into()))?
                .insert(job.upload_id, Instant::now());
            Ok(())
        }
    };
    let opts = RunnerOptions {
        concurrency,
        worker_name: format!("bench-{concurrency}-{}", std::process::id()),
        ..RunnerOptions::default()
    };
    let queue = queue.clone();
    let handle = tokio::spawn(async move {
        runner::run(&queue, opts, handler, async move {
            let _ = rx.await;
        })
        .await
    });
    (tx, handle)
}

async fn wait_done(queue: &JobQueue, n: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while queue.counts().await?.done < n {
        anyhow::ensure!(Instant::now() < deadline, "timed out draining");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn bench(target: &str, n: usize, concurrency: usize, buffer: usize) -> anyhow::Result<()> {
    let (queue, drop_db) = fresh_db(target, &format!("c{concurrency}"), buffer).await?;
    let starts = Starts::default();

    // 1. Backlog: enqueue n one at a time, then drain with a fresh runner.
    let t = Instant::now();
    for i in 0..n {
        queue.enqueue(job(i)).await?;
    }
    let enqueue_rate = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (stop, handle) = start(&queue, concurrency, &starts);
    wait_done(&queue, n as u64).await?;
    let drain = t.elapsed();

    // 2. Latency: the runner is idle; enqueue one job every 20 ms and time enqueue -> start.
    let m = (n / 2).max(1);
    let mut enqueued = HashMap::new();
    for i in n..n + m {
        let j = job(i);
        enqueued.insert(j.upload_id.clone(), Instant::now());
        queue.enqueue(j).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_done(&queue, (n + m) as u64).await?;
    let _ = stop.send(());
    handle.await??;
    let starts = starts
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    let mut lat: Vec<Duration> = enqueued
        .iter()
        .map(|(id, at)| {
            starts
                .get(id)
                .map(|s| s.duration_since(*at))
                .context("job never started")
        })
        .collect::<anyhow::Result<_>>()?;
    lat.sort();
    println!(
        "{:<6} concurrency={concurrency} buffer={buffer} n={n}: enqueue {:>6.0}/s  drain {:>6.0} jobs/s ({:.2} s)  \
         enqueue->start (idle runner, {m} jobs) p50 {:>5.1} ms  p99 {:>5.1} ms  max {:>5.1} ms",
        if target == "sqlite" { "sqlite" } else { "mysql" },
        enqueue_rate,
        n as f64 / drain.as_secs_f64(),
        drain.as_secs_f64(),
        pct(&lat, 0.5).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        pct(&lat, 1.0).as_secs_f64() * 1e3,
    );
    let counts = queue.counts().await?;
    anyhow::ensure!(
        counts.done == (n + m) as u64 && counts.killed == 0,
        "bad end state {counts:?}"
    );
    if let Some(name) = drop_db {
        if let DbPool::MySql(p) = queue.pool() {
            sqlx::query(&format!("DROP DATABASE `{name}`"))
                .execute(p)
                .await?;
        }
    }
    queue.pool().close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "sqlite".to_owned());
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(500);
    let buffer: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    for concurrency in [1, 4] {
        bench(&target, n, concurrency, buffer).await?;
    }
    Ok(())
}
