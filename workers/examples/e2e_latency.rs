//! Measures upload-to-ready latency and throughput through the real upload service, queue
//! and worker pool (no HTTP), against `DATABASE_URL` (default: a temp SQLite file).
//!
//! ```sh
//! cargo run --release -p moocard-worker --example e2e_latency -- WORKERS UPLOADS IMAGE [MODE]
//! ```
//! MODE `separate` (default): the workers run on their own `App`, as a separate worker
//! process does, so they learn of a job by polling; `embedded`: one `App` accepts and
//! processes, as `moocard serve` does, so the in-process wake-up applies.
//! Prints p50/p99 upload-to-ready latency for sequential uploads, the in-process pipeline
//! time of the same image, timed once after each of them (so latency minus pipeline = queue
//! overhead), and the drain rate
//! of a burst (uploads per minute per core). The overhead is then split (means over the
//! sequential uploads): `accept` (the upload service: seal and store the original, enqueue),
//! the job's `prepare` (read the record, mark processing, read and open the upload), its
//! `pipeline` as run by the worker, its `store` (master, variants, commit, delete the upload),
//! the runner around the handler, and `wait` = the rest: from enqueue until a worker starts
//! the job. Readiness is taken from the worker's "avatar ready" event (examples/support),
//! not from polling the status, whose reads would load the cores the pipeline runs on.
//! `latency_minus_own_pipeline` subtracts each upload's own pipeline run in the worker.

mod support;

use std::time::{Duration, Instant};

use moocard::{config::Config, domain::email::Email, App, Migrations};
use support::{burst as upload_burst, next_ready, pct, ready_count, watch_ready_events};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The global recorder, so the worker's stage histograms can be read back below.
    let metrics = moocard::telemetry::metrics_handle();
    watch_ready_events();
    let args: Vec<String> = std::env::args().collect();
    let workers: usize = args.get(1).map_or(Ok(1), |s| s.parse())?;
    let uploads: usize = args.get(2).map_or(Ok(30), |s| s.parse())?;
    let image = std::fs::read(
        args.get(3)
            .map_or("fixtures/images/photo-hubble.jpg", String::as_str),
    )?;
    let embedded = match args.get(4).map(String::as_str) {
        None | Some("separate") => false,
        Some("embedded") => true,
        Some(other) => anyhow::bail!("MODE is separate or embedded, not {other}"),
    };
    let dir = tempfile::tempdir()?;
    // Defaults plus MOOCARD_* variables (e.g. MOOCARD_QUEUE__POLL_INTERVAL_MS), in a temp dir.
    let mut config = Config::load(None)?;
    config.data_dir = dir.path().to_owned();
    if std::env::var("DATABASE_URL").is_err() {
        config.database.url = format!("sqlite://{}/moocard.db", dir.path().display());
    }
    config.queue.uploads_per_window = 1_000_000;
    let config = config.validate()?;
    let api = std::sync::Arc::new(App::build(config.clone(), Migrations::Run).await?);
    let worker = if embedded {
        api.clone()
    } else {
        std::sync::Arc::new(App::build(config, Migrations::Require).await?)
    };

    // Pipeline time alone, same image, same settings: warmed up here, then timed once after
    // each sequential upload is ready, so both figures see the same state of a shared
    // machine (timed back to back beforehand, its p50 moved by 20 ms between runs).
    let cfg = moocard_worker::pool::pipeline_config(&worker);
    let pipeline_alone = || -> anyhow::Result<f64> {
        let t = Instant::now();
        moocard_worker::pipeline::process(&image, None, &cfg)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    };
    for _ in 0..3 {
        pipeline_alone()?;
    }
    let mut pipeline = Vec::new();

    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let pool = tokio::spawn(async move {
        moocard_worker::pool::run_pool(&worker, workers, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Sequential: one upload at a time, latency from accept to ready.
    let mut latency = Vec::new();
    let mut accept = Vec::new();
    // Each upload's latency minus its own pipeline run in the worker: the queue's cost
    // without the run-to-run spread of the pipeline on a shared machine.
    let mut paired = Vec::new();
    let pipeline_sum = || {
        metric(&metrics.render(), "moocard_pipeline_duration_seconds_sum").unwrap_or(0.0) * 1000.0
    };
    for i in 0..uploads {
        let before = pipeline_sum();
        let email = Email::parse(&format!("seq{i}@bench.test")).map_err(anyhow::Error::msg)?;
        let seen = ready_count();
        let t = Instant::now();
        let accepted = api.uploads.accept(&email, &image, None).await?;
        accept.push(t.elapsed().as_secs_f64() * 1000.0);
        let ready = next_ready(&api, &email, &accepted.job, seen).await?;
        latency.push(ready.duration_since(t).as_secs_f64() * 1000.0);
        paired.push(latency[i] - (pipeline_sum() - before));
        pipeline.push(pipeline_alone()?);
    }
    let rendered = metrics.render();
    // `name` may carry labels: `metric{stage="x"}` is rendered `metric_sum{stage="x"} v`.
    let mean = |name: &str| -> f64 {
        let (base, labels) = name.split_at(name.find('{').unwrap_or(name.len()));
        let get = |suffix: &str| {
            metric(&rendered, &format!("{base}_{suffix}{labels}")).unwrap_or(f64::NAN)
        };
        get("sum") / get("count") * 1000.0
    };
    let stages = [
        (
            "prepare",
            mean("moocard_job_stage_seconds{stage=\"prepare\"}"),
        ),
        ("pipeline", mean("moocard_pipeline_duration_seconds")),
        ("store", mean("moocard_job_stage_seconds{stage=\"store\"}")),
    ];
    let job = mean("moocard_job_duration_seconds");
    let accept_mean = accept.iter().sum::<f64>() / accept.len() as f64;
    let latency_mean = latency.iter().sum::<f64>() / latency.len() as f64;
    let split = stages
        .iter()
        .map(|(n, v)| format!("{n}={v:.1}"))
        .collect::<Vec<_>>()
        .join(" ");
    let runner = job - stages.iter().map(|s| s.1).sum::<f64>();

    // Burst: all at once from distinct owners, time until the last is ready.
    let burst = uploads * 2;
    let t = Instant::now();
    upload_burst(&api, "burst", burst, &image).await?;
    let drain = t.elapsed().as_secs_f64();
    let _ = stop.send(true);
    pool.await??;

    let backend = format!("{:?}", api.pool.backend());
    let (p50, p99) = (pct(&latency, 0.5), pct(&latency, 0.99));
    let pipe50 = pct(&pipeline, 0.5);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "backend={backend} mode={} workers={workers} uploads={uploads} latency_ms p50={p50:.1} p99={p99:.1} \
         pipeline_ms p50={pipe50:.1} overhead_ms p50={:.1} burst={burst} drain_s={drain:.2} \
         uploads_per_min={:.0} per_core={:.0}\n\
         split_ms (means) latency={latency_mean:.1} accept={accept_mean:.1} {split} \
         runner={runner:.1} wait={:.1}\n\
         accept_ms p50={:.1} p90={:.1} max={:.1} latency_minus_own_pipeline_ms p50={:.1} p90={:.1}",
        if embedded { "embedded" } else { "separate" },
        p50 - pipe50,
        burst as f64 / drain * 60.0,
        burst as f64 / drain * 60.0 / cores,
        latency_mean - accept_mean - job,
        pct(&accept, 0.5),
        pct(&accept, 0.9),
        pct(&accept, 1.0),
        pct(&paired, 0.5),
        pct(&paired, 0.9),
    );
    Ok(())
}

/// The value of the series `name` (with its labels, if any) in Prometheus text.
fn metric(rendered: &str, name: &str) -> Option<f64> {
    rendered
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
