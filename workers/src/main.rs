//! The `moocard` binary: API server with embedded workers (the default), standalone
//! workers, migrations, dev tokens, key rotation and the thumbnail CLI.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use moocard::{config::Config, App, Migrations};

mod admin_cli;

// mimalloc: small allocations (request heads, header maps, futures) are most of the
// allocator's work on the hot avatar path, where it measured cheaper than glibc's malloc
// (bench/SERVING.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "moocard",
    version,
    about = "Profile and avatar server for identity sign-in"
)]
struct Cli {
    /// Configuration file (default: ./moocard.toml if present; env MOOCARD_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (and, by default, an embedded worker pool).
    Serve {
        /// Listen address (overrides server.listen).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Don't run migrations at start-up; refuse to start if the schema is behind.
        #[arg(long)]
        no_migrate: bool,
        /// Embedded worker slots (0 = API only). Default: queue.embedded_workers, else cores.
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Run a worker pool only (scale out: any machine with the database URL).
    Worker {
        /// Jobs processed at once. Default: number of cores.
        #[arg(long)]
        concurrency: Option<usize>,
    },
    /// Make the avatar sizes of one image file: OUTDIR/{512,256,128,64,32}.{jpg|png}
    /// (the same work as shared/bench's anchors), OUTDIR/{size}.{webp,avif} with
    /// `--formats webp,avif`, and OUTDIR/master.webp with `--master`.
    Thumbnail {
        /// Input image.
        input: PathBuf,
        /// Output directory (created).
        outdir: PathBuf,
        /// Extra formats, comma-separated (`webp`, `avif`).
        #[arg(long, value_delimiter = ',')]
        formats: Vec<String>,
        /// Quality of WebP variants (default: the production setting).
        #[arg(long)]
        webp_quality: Option<u8>,
        /// Quality of AVIF variants (default: the production setting).
        #[arg(long)]
        avif_quality: Option<u8>,
        /// rav1e speed of AVIF variants, 1..=10 (default: the production setting).
        #[arg(long)]
        avif_speed: Option<u8>,
        /// Also make the sanitized master (OUTDIR/master.webp, `avatars.master_size`) and
        /// derive the sizes from it, as a worker does for an upload.
        #[arg(long)]
        master: bool,
        /// The default since `--master` exists; accepted so older scripts still run.
        #[arg(long, hide = true, conflicts_with = "master")]
        no_master: bool,
        /// Run the pipeline this many times in this process and print each run's wall time
        /// (`run_ms=`): later runs are warm, as in a long-running worker (benchmarks).
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
    /// Run the database migrations and exit.
    Migrate,
    /// Print a 1-hour dev-mode token for an email.
    Token {
        /// The email the token is for.
        email: String,
    },
    /// Rewrap every data key under the active key-encryption key (resumable, online).
    RotateKeys {
        /// Rows per batch.
        #[arg(long, default_value_t = 500)]
        batch: u32,
    },
    /// Re-derive avatars whose sizes, formats or pipeline version differ from this
    /// configuration, from their kept masters (online, resumable; uploads go first).
    Reprocess {
        /// Only count the avatars and estimate the worker CPU time.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the default configuration, every key documented with its env var.
    Config,
    /// Operator actions on the database: takedown, restore, list, new-token.
    Admin {
        #[command(subcommand)]
        command: admin_cli::AdminCommand,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Thumbnail {
        input,
        outdir,
        formats,
        master,
        no_master: _,
        webp_quality,
        avif_quality,
        avif_speed,
        repeat,
    }) = &cli.command
    {
        // No configuration or database: a pure file-to-files run (benchmarks use it).
        let mut cfg = moocard_worker::pipeline::PipelineConfig::default();
        if !*master {
            cfg = cfg.sizes_only();
        }
        for f in formats {
            cfg.formats.push(
                moocard::domain::derivation::ExtraFormat::parse(f)
                    .with_context(|| format!("unknown format {f:?} (known: webp, avif)"))?,
            );
        }
        cfg.webp_quality = webp_quality.unwrap_or(cfg.webp_quality).clamp(1, 100);
        cfg.avif_quality = avif_quality.unwrap_or(cfg.avif_quality).clamp(1, 100);
        cfg.avif_speed = avif_speed.unwrap_or(cfg.avif_speed).clamp(1, 10);
        return moocard_worker::pipeline::cli::thumbnail_with(input, outdir, &cfg, *repeat);
    }
    // The runtime only for commands that use it: `thumbnail` is one process per image in
    // the benchmarks, and starting two runtime threads is part of every run.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    moocard::telemetry::init_logging(config.server.log_format == "json");
    let default = Command::Serve {
        listen: None,
        no_migrate: false,
        workers: None,
    };
    match cli.command.unwrap_or(default) {
        Command::Serve {
            listen,
            no_migrate,
            workers,
        } => serve(config, listen, no_migrate, workers).await,
        Command::Worker { concurrency } => {
            let app = App::build(config, Migrations::Require).await?;
            let n = concurrency.unwrap_or_else(cores);
            moocard_worker::pool::run_pool(&app, n, shutdown_signal()).await?;
            app.pool.close().await;
            Ok(())
        }
        Command::Thumbnail { .. } => Ok(()),
        Command::Migrate => {
            App::build(config, Migrations::Run).await?;
            println!("migrations are up to date");
            Ok(())
        }
        Command::Token { email } => {
            anyhow::ensure!(
                config.dev_mode(),
                "`moocard token` only works in dev mode (no auth.issuer configured)"
            );
            let app = App::build(config, Migrations::Run).await?;
            let signer = app.dev.context("dev signer missing")?;
            let email = moocard::domain::email::Email::parse(&email).map_err(anyhow::Error::msg)?;
            println!(
                "{}",
                signer
                    .token(email.as_str(), 3600, true)
                    .map_err(anyhow::Error::msg)?
            );
            Ok(())
        }
        Command::RotateKeys { batch } => {
            let app = App::build(config, Migrations::Require).await?;
            let mut total = 0;
            loop {
                let (seen, changed) = app.profiles.rotate_batch(batch).await?;
                total += changed;
                if seen == 0 {
                    break;
                }
            }
            println!(
                "rewrapped {total} data keys under {:?}",
                app.profiles.ring().active_id()
            );
            let mut e = moocard::audit::Event::new(moocard::audit::EventKind::KeyRotation, true);
            e.count = Some(total as u64);
            e.reason = Some(format!("active key {}", app.profiles.ring().active_id()));
            app.audit.record(&e);
            Ok(())
        }
        Command::Admin { command } => admin_cli::run(config, command).await,
        Command::Reprocess { dry_run } => {
            let app = App::build(config, Migrations::Require).await?;
            let summary = moocard_worker::reprocess::run(&app, dry_run).await?;
            println!("{}", moocard_worker::reprocess::report(&summary, dry_run));
            app.pool.close().await;
            Ok(())
        }
        Command::Config => {
            // The documented example; tests/config_example.rs keeps it equal to the defaults.
            print!("{}", include_str!("../../deploy/moocard.example.toml"));
            Ok(())
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

async fn serve(
    mut config: Config,
    listen: Option<std::net::SocketAddr>,
    no_migrate: bool,
    workers: Option<usize>,
) -> anyhow::Result<()> {
    if let Some(addr) = listen {
        config.server.listen = addr;
        // The dev-mode-on-network check depends on the address: run it again.
        config = config.validate()?;
    }
    let migrations = if no_migrate {
        Migrations::Require
    } else {
        Migrations::Run
    };
    let app = App::build(config, migrations).await?;
    if app.config.dev_mode() {
        tracing::warn!(
            "DEV MODE: no auth.issuer configured; tokens are signed by a local key in {} (mint one with `moocard token <email>`). Never run this in production.",
            app.config.data_dir.display()
        );
        let mut e = moocard::audit::Event::new(moocard::audit::EventKind::DevModeStart, true);
        e.reason = Some(format!("listen {}", app.config.server.listen));
        app.audit.record(&e);
    }
    let listener = tokio::net::TcpListener::bind(app.config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", app.config.server.listen))?;
    tracing::info!(listen = %listener.local_addr()?, database = ?app.pool.backend(), "moocard serving");
    let service = moocard::http::HttpService::new(app.state());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let slots = workers
        .or(app.config.queue.embedded_workers)
        .unwrap_or_else(cores);
    let app = std::sync::Arc::new(app);
    let pool = (slots > 0).then(|| {
        let app = app.clone();
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move { moocard_worker::pool::run_pool(&app, slots, stop).await })
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    if let Some(addr) = app.config.server.ops_listen {
        let ops = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (server.ops_listen)"))?;
        tracing::info!(listen = %ops.local_addr()?, "metrics and heartbeat on their own address");
        let service = moocard::http::HttpService::ops(app.state());
        tokio::spawn(moocard::serve(ops, service, stopped(stop_rx.clone())));
    }
    let grace = std::time::Duration::from_secs(app.config.server.shutdown_grace_secs);
    let mut server = tokio::spawn(moocard::serve(listener, service, stopped(stop_rx.clone())));
    let grace_over = async move {
        stopped(stop_rx).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        res = &mut server => res??,
        () = grace_over => {
            tracing::warn!(grace_secs = grace.as_secs(), "shutdown grace expired; closing remaining connections");
            server.abort();
        }
    }
    if let Some(pool) = pool {
        pool.await??;
    }
    app.pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutdown signal received");
}
