//! The service that runs the user's handler for one apalis task: panic boundary, timeout,
//! durable backoff, metrics.

use std::{
    collections::HashSet,
    fmt::Display,
    future::Future,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use apalis_core::{
    error::{AbortError, BoxDynError},
    layers::Service,
    task::Task,
};
use apalis_sql::context::SqlContext;
use futures::{future::BoxFuture, FutureExt};
use moocard::jobs::{FinalStatus, JobQueue, ProcessAvatar};

use super::{guard::OutcomeSlot, JobContext, JobError};

/// Job ids handed to the worker whose handler has not started yet. They may be about to be
/// locked (`Queued` -> `Running`), so a shutdown must not release them to other workers:
/// apalis' lock statement does not check `lock_by`, and the job would run twice.
pub(super) type HandedOut = Arc<Mutex<HashSet<String>>>;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these small locks cannot leave the data half-written.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An error the handler returned (or caused) that apalis should retry.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Retryable(String);

/// Runs the user's handler for one apalis task.
pub(super) struct HandlerService<H> {
    pub handler: H,
    pub queue: JobQueue,
    pub job_timeout: Duration,
    pub handed_out: HandedOut,
}

impl<H: Clone> Clone for HandlerService<H> {
    fn clone(&self) -> Self {
        Self {
            handler: self.handler.clone(),
            queue: self.queue.clone(),
            job_timeout: self.job_timeout,
            handed_out: self.handed_out.clone(),
        }
    }
}

/// Aborts the spawned handler if the job future is dropped (timeout, worker torn down).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Outcome {
    Success,
    Permanent(String),
    Transient(&'static str, String),
}

impl<H, Fut, P, Id> Service<Task<ProcessAvatar, SqlContext<P>, Id>> for HandlerService<H>
where
    H: Fn(ProcessAvatar, JobContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    Id: Display,
{
    type Response = ();
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<(), BoxDynError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, task: Task<ProcessAvatar, SqlContext<P>, Id>) -> Self::Future {
        let this = self.clone();
        let job_id = task
            .parts
            .task_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let attempt = task.parts.attempt.clone();
        let max_attempts = u32::try_from(task.parts.ctx.max_attempts()).unwrap_or(1);
        let slot = task
            .parts
            .data
            .get::<OutcomeSlot>()
            .cloned()
            .unwrap_or_default();
        let args = task.args;
        async move {
            // Read inside the future: apalis bumps the attempt on first poll.
            let attempt = u32::try_from(attempt.current()).unwrap_or(u32::MAX);
            this.execute(job_id, attempt, max_attempts, args, slot)
                .await
        }
        .boxed()
    }
}

impl<H, Fut> HandlerService<H>
where
    H: Fn(ProcessAvatar, JobContext) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    async fn execute(
        self,
        job_id: String,
        attempt: u32,
        max_attempts: u32,
        args: ProcessAvatar,
        slot: OutcomeSlot,
    ) -> Result<(), BoxDynError> {
        lock(&self.handed_out).remove(&job_id);
        metrics::counter!("moocard_jobs_started_total").increment(1);
        self.queue.note_job_started();
        let started = Instant::now();
        let ctx = JobContext {
            job_id: job_id.clone(),
            attempt,
            max_attempts,
        };
        let handler = self.handler.clone();
        // A task of its own: handlers run in parallel on the runtime (the apalis worker
        // polls every job from one task), and a panic ends up in the JoinError instead of
        // unwinding through the worker. The handler is called inside, so even a panic
        // before its first await is contained.
        let mut handle = AbortOnDrop(tokio::spawn(async move { handler(args, ctx).await }));
        let outcome = match tokio::time::timeout(self.job_timeout, &mut handle.0).await {
            Ok(Ok(Ok(()))) => Outcome::Success,
            Ok(Ok(Err(JobError::Permanent(m)))) => Outcome::Permanent(m),
            Ok(Ok(Err(JobError::Transient(m)))) => Outcome::Transient("transient", m),
            Ok(Err(e)) if e.is_panic() => {
                Outcome::Transient("panic", format!("handler panicked: {}", panic_text(e)))
            }
            Ok(Err(e)) => Outcome::Transient("transient", format!("handler task ended: {e}")),
            // Dropping `handle` below aborts the task at its next await point. CPU work the
            // handler moved to spawn_blocking cannot be interrupted and finishes on its own.
            Err(_) => Outcome::Transient(
                "timeout",
                format!("job exceeded its {:?} timeout", self.job_timeout),
            ),
        };
        drop(handle);
        metrics::histogram!("moocard_job_duration_seconds").record(started.elapsed().as_secs_f64());
        match outcome {
            Outcome::Success => {
                metrics::counter!("moocard_jobs_completed_total", "outcome" => "success")
                    .increment(1);
                tracing::debug!(job.id = %job_id, attempt, "job done");
                slot.set(FinalStatus::Done);
                Ok(())
            }
            Outcome::Permanent(msg) => {
                metrics::counter!("moocard_jobs_completed_total", "outcome" => "permanent")
                    .increment(1);
                tracing::info!(job.id = %job_id, attempt, error = %msg, "job failed permanently");
                // AbortError makes apalis ack the job `Killed`: never retried.
                slot.set(FinalStatus::Killed);
                Err(AbortError::new(msg).into())
            }
            Outcome::Transient(kind, msg) => {
                metrics::counter!("moocard_jobs_completed_total", "outcome" => kind).increment(1);
                if attempt >= max_attempts {
                    // apalis acks it `Killed` (attempts exhausted).
                    slot.set(FinalStatus::Killed);
                    tracing::warn!(job.id = %job_id, attempt, error = %msg, "job out of attempts");
                } else {
                    slot.set(FinalStatus::Failed);
                    tracing::info!(job.id = %job_id, attempt, error = %msg, "job will be retried");
                    if let Err(e) = self.queue.schedule_retry(&job_id, attempt).await {
                        // Without the delay the retry simply comes sooner.
                        tracing::warn!(job.id = %job_id, error = %e, "could not set retry delay");
                    }
                }
                Err(Retryable(msg).into())
            }
        }
    }
}

fn panic_text(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
