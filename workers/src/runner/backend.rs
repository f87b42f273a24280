//! A wrapper around an apalis storage that makes its worker stoppable and resilient.
//!
//! - Stoppable: after `stop()`, apalis stops polling the fetch stream but keeps it alive
//!   until every in-flight job is acked. On MySQL a fetch caught mid-transaction then holds
//!   its `FOR UPDATE` gap locks, the acks wait on them and time out, and jobs stay
//!   `Running` (DEPENDENCIES.md pitfall 3). The runner empties [`Stoppable::slot`] on
//!   shutdown, which drops the stream and rolls that transaction back at once.
//! - Resilient: in apalis any heartbeat or fetch error ends the whole worker and drops its
//!   in-flight jobs. A 5 s lock wait (apalis' MySQL reclaim query takes shared locks on
//!   `jobs`) or a connection blip should not throw away minutes of image work, so fetch
//!   errors pause and reopen the stream, and heartbeat errors are tolerated for as long
//!   as other workers would still consider us alive (`orphan_after`).

use std::{
    fmt::Display,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use apalis_core::{backend::Backend, task::Task, worker::context::WorkerContext};
use futures::{future::ready, stream::BoxStream, Future, Stream, StreamExt};

use super::service::{lock, HandedOut};

/// Pause before reopening a fetch stream that failed.
const REOPEN_AFTER: Duration = Duration::from_secs(1);

/// The runner's handle on a worker's fetch stream.
pub(super) struct StreamControl<S> {
    slot: Mutex<Option<S>>,
    stopped: AtomicBool,
}

impl<S> StreamControl<S> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            slot: Mutex::new(None),
            stopped: AtomicBool::new(false),
        })
    }

    /// Ends the stream for good and drops it (and any fetch in flight) now.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        drop(lock(&self.slot).take());
    }
}

/// See the module docs.
pub(super) struct Stoppable<B: Backend> {
    pub inner: B,
    /// Builds a fresh storage for reopening: not a clone of `inner`, whose poll strategy
    /// was drained by the first fetcher (apalis' `MultiStrategy` is shared by clones).
    pub make: Arc<dyn Fn() -> B + Send + Sync>,
    pub control: Arc<StreamControl<B::Stream>>,
    pub handed_out: HandedOut,
    /// How long heartbeat errors are tolerated.
    pub tolerate: Duration,
}

impl<B> Backend for Stoppable<B>
where
    B: Backend + Send + 'static,
    B::Stream: Unpin + Send + 'static,
    B::Beat: Send + 'static,
    B::Error: Display + Send + 'static,
    B::IdType: Display,
{
    type Args = B::Args;
    type IdType = B::IdType;
    type Context = B::Context;
    type Error = B::Error;
    type Stream = StopStream<B::Stream>;
    type Beat = BoxStream<'static, Result<(), B::Error>>;
    type Layer = B::Layer;

    fn heartbeat(&self, worker: &WorkerContext) -> Self::Beat {
        let tolerate = self.tolerate;
        let mut last_ok = Instant::now();
        let name = worker.name().clone();
        self.inner
            .heartbeat(worker)
            .filter_map(move |beat| {
                ready(match beat {
                    Ok(()) => {
                        last_ok = Instant::now();
                        Some(Ok(()))
                    }
                    Err(e) if last_ok.elapsed() < tolerate => {
                        tracing::warn!(worker = %name, error = %e, "heartbeat failed; tolerated");
                        None
                    }
                    Err(e) => Some(Err(e)),
                })
            })
            .boxed()
    }

    fn middleware(&self) -> Self::Layer {
        self.inner.middleware()
    }

    fn poll(self, worker: &WorkerContext) -> Self::Stream {
        *lock(&self.control.slot) = Some(self.inner.poll(worker));
        let (make, worker) = (self.make, worker.clone());
        StopStream {
            control: self.control,
            handed_out: self.handed_out,
            reopen: Box::new(move || make().poll(&worker)),
            pause: None,
        }
    }
}

/// The stream half of [`Stoppable`].
pub(super) struct StopStream<S> {
    control: Arc<StreamControl<S>>,
    handed_out: HandedOut,
    reopen: Box<dyn FnMut() -> S + Send>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S, T, C, Id, E> Stream for StopStream<S>
where
    S: Stream<Item = Result<Option<Task<T, C, Id>>, E>> + Unpin,
    Id: Display,
    E: Display,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.control.stopped.load(Ordering::SeqCst) {
                return Poll::Ready(None);
            }
            if let Some(pause) = this.pause.as_mut() {
                if pause.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.pause = None;
                let fresh = (this.reopen)();
                *lock(&this.control.slot) = Some(fresh);
            }
            let mut slot = lock(&this.control.slot);
            let Some(inner) = slot.as_mut() else {
                return Poll::Ready(None);
            };
            match inner.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(Some(task)))) => {
                    if let Some(id) = &task.parts.task_id {
                        lock(&this.handed_out).insert(id.to_string());
                    }
                    return Poll::Ready(Some(Ok(Some(task))));
                }
                Poll::Ready(Some(Err(e))) => {
                    // apalis' fetchers end after an error: drop this one, reopen later.
                    tracing::warn!(error = %e, "job fetch failed; retrying in {REOPEN_AFTER:?}");
                }
                Poll::Ready(None) => tracing::warn!("job fetch stream ended; reopening"),
                other => return other,
            }
            *slot = None;
            drop(slot);
            this.pause = Some(Box::pin(tokio::time::sleep(REOPEN_AFTER)));
        }
    }
}
