//! A layer outside apalis' lock/ack that repairs a failed lock or ack.
//!
//! apalis reports a failed ack (on MySQL typically a lock wait timeout, DEPENDENCIES.md
//! pitfall 3) as a task error and moves on, leaving the job `Running` under a worker that
//! is alive and heartbeating, so no reaper ever takes it: it would be stuck until the
//! process restarts. The handler service leaves its verdict in an [`OutcomeSlot`]; when the
//! result that comes back is not one of the handler's own errors, apalis' SQL failed and
//! we write the verdict ourselves, retrying for a while.

use std::{
    fmt::Display,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use apalis_core::{
    error::{AbortError, BoxDynError},
    layers::{Layer, Service},
    task::Task,
};
use apalis_sql::context::SqlContext;
use futures::{future::BoxFuture, FutureExt};
use moocard::jobs::{FinalStatus, JobQueue, ProcessAvatar};

use super::service::{lock, HandedOut, Retryable};

/// The handler's verdict on one job, handed from the handler service to the guard.
#[derive(Clone, Default)]
pub(super) struct OutcomeSlot(pub Arc<Mutex<Option<FinalStatus>>>);

impl OutcomeSlot {
    pub fn set(&self, status: FinalStatus) {
        *lock(&self.0) = Some(status);
    }
}

/// Wraps apalis' lock/ack middleware (see the module docs).
#[derive(Clone)]
pub(super) struct GuardLayer {
    pub queue: JobQueue,
    pub worker: String,
    pub handed_out: HandedOut,
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            queue: self.queue.clone(),
            worker: self.worker.clone(),
            handed_out: self.handed_out.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Guard<S> {
    inner: S,
    queue: JobQueue,
    worker: String,
    handed_out: HandedOut,
}

impl<S, P, Id> Service<Task<ProcessAvatar, SqlContext<P>, Id>> for Guard<S>
where
    S: Service<Task<ProcessAvatar, SqlContext<P>, Id>, Response = (), Error = BoxDynError>,
    S::Future: Send + 'static,
    Id: Display,
{
    type Response = ();
    type Error = BoxDynError;
    type Future = BoxFuture<'static, Result<(), BoxDynError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut task: Task<ProcessAvatar, SqlContext<P>, Id>) -> Self::Future {
        let slot = OutcomeSlot::default();
        task.parts.data.insert(slot.clone());
        let job_id = task
            .parts
            .task_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let attempt = task.parts.attempt.clone();
        let queue = self.queue.clone();
        let worker = self.worker.clone();
        let handed_out = self.handed_out.clone();
        let fut = self.inner.call(task);
        async move {
            let res = fut.await;
            let Err(e) = &res else { return res };
            if e.is::<Retryable>() || e.is::<AbortError>() {
                return res; // the handler's own verdict, acked by apalis
            }
            let verdict = *lock(&slot.0);
            if verdict.is_none() {
                // Never started, so the handler did not take it off the hand-out list.
                lock(&handed_out).remove(&job_id);
            }
            let attempts = u32::try_from(attempt.current()).unwrap_or(u32::MAX);
            repair(&queue, &worker, &job_id, verdict, attempts, e).await;
            res
        }
        .boxed()
    }
}

async fn repair(
    queue: &JobQueue,
    worker: &str,
    job_id: &str,
    verdict: Option<FinalStatus>,
    attempts: u32,
    cause: &BoxDynError,
) {
    let Some(status) = verdict else {
        // apalis could not lock the job, so the handler never ran. If it is still ours
        // and `Queued`, give it back; if someone else has it, this changes nothing.
        tracing::warn!(job.id = %job_id, error = %cause, "job lock failed; releasing it");
        if let Err(e) = queue.release_job(job_id, worker).await {
            tracing::warn!(job.id = %job_id, error = %e, "could not release job");
        }
        return;
    };
    tracing::warn!(job.id = %job_id, error = %cause, ?status, "job ack failed; recording it ourselves");
    let mut delay = Duration::from_millis(200);
    for _ in 0..8 {
        match queue.finish_job(job_id, worker, status, attempts).await {
            Ok(true) => return,
            // Not ours or not Running any more (reaped, or the ack went through after all).
            Ok(false) => return,
            Err(e) => tracing::warn!(job.id = %job_id, error = %e, "ack repair failed; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    // Out of luck: the row stays `Running`; our graceful stop or the reaper (after a
    // restart) hands it back, and the idempotent handler runs it again.
    tracing::error!(job.id = %job_id, "could not record job result");
}
