//! The process-wide memory budget of the pipeline (issue 14).
//!
//! Every job estimates its peak allocation from the header (decode buffers at the chosen
//! shrink-on-load scale, bounded metadata, resize and encode) and reserves that many bytes
//! here before decoding, so N concurrent jobs never hold more than the budget together. A
//! job that alone needs more than the whole budget fails at once with `image_too_large`,
//! stating both figures. The reservation is released when the pipeline call returns, i.e.
//! when the blocking work really ends, even if the job's future already timed out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use moocard::ErrorCode;

use super::PipelineError;

/// Bytes shared by the concurrent jobs of one process.
#[derive(Debug)]
pub struct Budget {
    total: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

/// Bytes held by one job until dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    /// A budget of `total` bytes.
    pub fn new(total: u64) -> Self {
        Self {
            total,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// The configured total.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes reserved right now.
    pub fn reserved(&self) -> u64 {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `bytes` fit beside the other jobs' reservations, then holds them.
    /// Errors at once when `bytes` exceed the whole budget, or when `cancel` is set while
    /// waiting. Blocks the calling thread: call it from the pipeline's blocking thread.
    pub fn reserve(
        &self,
        bytes: u64,
        cancel: &AtomicBool,
    ) -> Result<Reservation<'_>, PipelineError> {
        if bytes > self.total {
            return Err(PipelineError::new(
                ErrorCode::ImageTooLarge,
                format!(
                    "processing this image needs about {} MiB of memory; the worker's memory \
                     budget is {} MiB (pipeline.memory_budget_bytes)",
                    bytes.div_ceil(1 << 20),
                    self.total >> 20
                ),
            ));
        }
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used + bytes > self.total {
            if cancel.load(Ordering::Relaxed) {
                return Err(cancelled());
            }
            // Woken by every release; the timeout re-checks `cancel`.
            used = self
                .freed
                .wait_timeout(used, std::time::Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *used += bytes;
        metrics::gauge!("moocard_pipeline_memory_reserved_bytes").set(*used as f64);
        Ok(Reservation {
            budget: self,
            bytes,
        })
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut used = self
            .budget
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *used = used.saturating_sub(self.bytes);
        metrics::gauge!("moocard_pipeline_memory_reserved_bytes").set(*used as f64);
        self.budget.freed.notify_all();
    }
}

/// The error of a job whose caller gave up (timeout or shutdown) before it finished.
pub(crate) fn cancelled() -> PipelineError {
    PipelineError::internal("processing was cancelled (the job timed out or the worker stopped)")
}

/// Returns [`cancelled`] once `cancel` is set; checked between pipeline stages.
pub(crate) fn check(cancel: &AtomicBool) -> Result<(), PipelineError> {
    if cancel.load(Ordering::Relaxed) {
        Err(cancelled())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn reservations_wait_for_room_and_refuse_what_never_fits() {
        let b = Arc::new(Budget::new(100));
        let never = AtomicBool::new(false);
        let e = b.reserve(101, &never).expect_err("too big");
        assert_eq!(e.code, ErrorCode::ImageTooLarge);
        assert!(e.message.contains("memory budget"), "{}", e.message);
        let first = b.reserve(60, &never).expect("fits");
        let b2 = b.clone();
        let waiter = std::thread::spawn(move || {
            let flag = AtomicBool::new(false);
            let r = b2.reserve(60, &flag).expect("fits after release");
            b2.reserved() == 60 && r.bytes == 60
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(b.reserved(), 60, "the second job waits");
        drop(first);
        assert!(waiter.join().expect("thread"));
        assert_eq!(b.reserved(), 0);
        let cancel = AtomicBool::new(true);
        let _held = b.reserve(60, &never).expect("fits");
        assert!(b.reserve(60, &cancel).is_err(), "a cancelled wait gives up");
    }
}
