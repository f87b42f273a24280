//! A worker pool on its own `App` (a separate worker node) for the worker crate's tests:
//! started on a test's configuration, stopped by `stop` (which checks it ran cleanly) or,
//! if a test ends early, when dropped.

use moocard::{config::Config, App, Migrations};
use tokio::sync::watch;

pub struct Pool {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Pool {
    /// `concurrency` jobs at a time over the database of `config`.
    pub async fn start(config: &Config, concurrency: usize) -> Self {
        let app = App::build(config.clone(), Migrations::Require)
            .await
            .expect("worker app");
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            moocard_worker::pool::run_pool(&app, concurrency, shutdown).await
        });
        Self {
            stop,
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("pool ran cleanly");
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
