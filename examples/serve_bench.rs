//! Benchmark mode for `/work/shared/bench/serve-baseline.sh`: seeds one avatar from
//! `<root>/a/avatar.jpg` into a fresh SQLite database (every configured size gets those
//! bytes, so the response is byte-for-byte the file nginx serves) and serves exactly what
//! `moocard serve` serves (`http::HttpService`: every route and layer, metrics recorder
//! installed as on a scraped node).
//!
//! ```sh
//! cargo build --profile production -p moocard --example serve_bench
//! EXTRA_NAME=moocard EXTRA_PATH=/avatar/$(./target/production/examples/serve_bench --print-path) \
//!   EXTRA_CMD="$PWD/target/production/examples/serve_bench --listen 127.0.0.1:{port} --root {root}" \
//!   /work/shared/bench/serve-baseline.sh
//! ```
//! `--runtime current` runs tokio's single-threaded scheduler (for the pinned one-core
//! case); the default is the multi-threaded runtime that `moocard serve` uses.
//! `--users N` seeds N more profiles with the same avatar (`--print-path --users N` prints
//! every path); `MOOCARD_*` and `DATABASE_URL` apply as for `moocard serve`
//! (bench/mbench/reads.py uses them for a MariaDB store and the audit log).

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use anyhow::Context as _;
use moocard::{
    config::Config,
    domain::{
        avatar::{AvatarRecord, AvatarState, LiveAvatar, VariantRef},
        email::Email,
        ids::{random_id, AvatarHash},
        record::RecordKey,
    },
    profiles::{now_ms, now_rfc3339},
    store::NewImage,
    App, Migrations,
};

// The allocator `moocard` itself uses (workers/src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EMAIL: &str = "bench@moocard.invalid";

struct Args {
    listen: SocketAddr,
    root: PathBuf,
    current_thread: bool,
    /// Profiles seeded besides [`EMAIL`], each with the same avatar.
    users: usize,
}

fn args() -> anyhow::Result<Option<Args>> {
    let mut listen = None;
    let mut root = None;
    let mut current_thread = false;
    let mut users = 0;
    let mut print = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--listen" => listen = Some(it.next().context("--listen ADDR")?.parse()?),
            "--root" => root = Some(PathBuf::from(it.next().context("--root DIR")?)),
            "--runtime" => current_thread = it.next().as_deref() == Some("current"),
            "--users" => users = it.next().context("--users N")?.parse()?,
            "--print-path" => print = true,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    if print {
        // One MD5 path per seeded profile, [`EMAIL`]'s first.
        for email in emails(users)? {
            let md5 = AvatarHash::all_for(&moocard::crypto::IdKeys::new([0; 32]), &email)[0];
            println!("{}", hex::encode(md5.bytes()));
        }
        return Ok(None);
    }
    Ok(Some(Args {
        listen: listen.context("--listen is required")?,
        root: root.context("--root is required")?,
        current_thread,
        users,
    }))
}

/// [`EMAIL`], then `users` more.
fn emails(users: usize) -> anyhow::Result<Vec<Email>> {
    std::iter::once(EMAIL.to_owned())
        .chain((1..=users).map(|i| format!("bench-{i}@moocard.invalid")))
        .map(|e| Email::parse(&e).map_err(anyhow::Error::msg))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let Some(args) = args()? else {
        return Ok(());
    };
    let rt = if args.current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    moocard::telemetry::init_logging(false);
    // Installed up front, as on a node that Prometheus scrapes, so metrics cost what
    // they cost in production.
    moocard::telemetry::metrics_handle();
    let bytes = std::fs::read(args.root.join("a/avatar.jpg")).context("root/a/avatar.jpg")?;
    let dir = tempfile::tempdir()?;
    // Defaults plus `MOOCARD_*` / `DATABASE_URL` from the environment (e.g. a MariaDB store,
    // the audit log, quotas), as `moocard serve` reads them; the data dir is always fresh.
    let mut table = toml::Table::new();
    table.insert(
        "data_dir".into(),
        toml::Value::String(dir.path().display().to_string()),
    );
    let tuned = std::env::var_os("MOOCARD_AVATARS__FILTER_REFRESH_MS").is_some();
    let mut config = Config::from_table(table, std::env::vars())?;
    if !tuned {
        // The alias filter's refresh is a database read per second whatever the traffic;
        // under callgrind (bench/gate) how many fall inside a measured window follows wall
        // time, and it moved the per-request count by 19%. Requests are what the gate counts.
        config.avatars.filter_refresh_ms = 3_600_000;
    }
    let config = config.validate()?;
    let app = App::build(config, Migrations::Run).await?;
    for email in emails(args.users)? {
        seed(&app, &email, &bytes).await?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let service = moocard::http::HttpService::new(app.state());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let quit = async {
        // serve-baseline.sh stops servers with SIGQUIT (nginx's graceful stop).
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::quit()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    moocard::serve(listener, service, async {
        tokio::select! { () = shutdown => {}, () = quit => {} }
    })
    .await?;
    Ok(())
}

/// Makes `bytes` the live avatar of `email` at every configured size.
async fn seed(app: &App, email: &Email, bytes: &[u8]) -> anyhow::Result<()> {
    let owner = app.profiles.owner(email);
    let images: Vec<NewImage> = app
        .config
        .limits
        .sizes
        .iter()
        .map(|&size| NewImage {
            id: random_id(),
            owner,
            generation: 1,
            size,
            content_type: "image/jpeg".into(),
            bytes: bytes.to_vec(),
        })
        .collect();
    app.profiles.store().put_images(&images, now_ms()).await?;
    let variants: BTreeMap<u32, VariantRef> =
        images.iter().map(|i| (i.size, i.variant_ref())).collect();
    let record = AvatarRecord {
        state: AvatarState::Ready,
        generation: 1,
        current: Some(LiveAvatar {
            generation: 1,
            variants,
            updated_at: now_rfc3339(),
            formats: Default::default(),
            made_by: None,
        }),
        updated_at: Some(now_rfc3339()),
        ..AvatarRecord::default()
    };
    app.profiles
        .write(Some(email), &owner, RecordKey::Avatar, &record, None)
        .await?;
    // Only live images are served: switch them live as a worker's commit does.
    app.profiles
        .commit_avatar(&owner, &Default::default(), |rec| Some((rec, Some(1))))
        .await?;
    // Written around the handlers, so tell this node's filter of known aliases itself.
    app.avatar_cache.learn_email(&app.profiles, email);
    Ok(())
}
