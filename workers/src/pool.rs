//! A worker pool over an [`App`]: the avatar handler on the job runner, plus the cleanup
//! loop. Used by `moocard worker` and by the pool embedded in `moocard serve`.

use std::{future::Future, time::Duration};

use moocard::{domain::derivation::ExtraFormat, App};

use crate::{
    handler::AvatarHandler,
    pipeline::PipelineConfig,
    runner::{self, default_worker_name, RunnerOptions},
};

/// The pipeline settings from the configuration.
pub fn pipeline_config(app: &App) -> PipelineConfig {
    PipelineConfig::from_config(&app.config)
}

/// Runs `concurrency` job slots until `shutdown`, then drains (see [`runner::run`]).
pub async fn run_pool(
    app: &App,
    concurrency: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let handler = AvatarHandler::new(
        app.profiles.clone(),
        app.uploads.clone(),
        pipeline_config(app),
        app.avatar_cache.clone(),
    );
    let q = &app.config.queue;
    let opts = RunnerOptions {
        concurrency,
        job_timeout: Duration::from_secs(q.job_timeout_secs),
        worker_name: default_worker_name(),
        reap_interval: Duration::from_secs((q.orphan_after_secs / 4).clamp(1, 10)),
    };
    let cleanup = tokio::spawn(moocard::maintenance::cleanup_loop(
        app.uploads.clone(),
        app.profiles.clone(),
        Duration::from_secs(q.cleanup_after_secs),
        Duration::from_secs(q.cleanup_after_secs.clamp(5, 300)),
        moocard::maintenance::Retention::from(q),
    ));
    tracing::info!(worker = %opts.worker_name, concurrency, "worker pool started");
    if app.config.avatars.formats.contains(&ExtraFormat::Avif) && !crate::pipeline::avif::SIMD {
        tracing::warn!(
            "AVIF variants are on but this build has no rav1e assembly: encodes take about 3x \
             longer (build with `--features avif-asm`, which needs nasm)"
        );
    }
    let result = runner::run(
        &app.queue,
        opts,
        move |job, ctx| {
            let handler = handler.clone();
            async move { handler.run(job, ctx).await }
        },
        shutdown,
    )
    .await;
    cleanup.abort();
    result
}
