//! `moocard reprocess` (issue 15): finds the live avatars whose set differs from what the
//! running configuration makes (pipeline version, sizes, formats) and enqueues one
//! re-derivation job for each on the same queue the workers serve, below uploads'
//! priority, at `reprocess.rate_per_sec` with at most `reprocess.max_in_flight` waiting.
//!
//! Online (the old set is served until the new one is committed whole), resumable and
//! idempotent (a re-run rescans; done avatars are up to date, a duplicate job is a no-op).
//! Avatars made before masters existed are counted as not re-derivable and left served.

use std::{
    io::{IsTerminal as _, Write as _},
    time::{Duration, Instant},
};

use moocard::{
    domain::{avatar::AvatarRecord, derivation::Derivation, ids::OwnerKey, record::RecordKey},
    jobs::{JobId, JobState, ProcessAvatar},
    masters::open_master,
    App,
};

use crate::{pipeline::rederive, pool::pipeline_config, rederive::missing};

/// What a scan found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// (owner, live generation) of each avatar to re-derive.
    pub to_do: Vec<(OwnerKey, i64)>,
    /// Sets that already are what the configuration makes.
    pub up_to_date: u64,
    /// Sets without a master (made before masters existed): left as served.
    pub not_rederivable: u64,
    /// Owners with an avatar record but no live set.
    pub no_avatar: u64,
}

/// How a run ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The scan.
    pub plan: Plan,
    /// Jobs that finished.
    pub done: u64,
    /// Jobs that failed for good.
    pub failed: u64,
    /// Dry run: sampled CPU time of one re-derivation.
    pub sample_cpu: Option<Duration>,
}

/// Scans every avatar record (in owner-key pages) against the running configuration.
pub async fn scan(app: &App) -> anyhow::Result<Plan> {
    let wanted = wanted(app);
    let mut plan = Plan::default();
    let mut after: Option<OwnerKey> = None;
    loop {
        let page = app
            .profiles
            .store()
            .avatar_owners(after.as_ref(), 500)
            .await?;
        let Some(last) = page.last().copied() else {
            break;
        };
        for owner in page {
            let rec = app
                .profiles
                .read::<AvatarRecord>(&owner, RecordKey::Avatar)
                .await?;
            match rec.and_then(|(r, _)| r.current) {
                None => plan.no_avatar += 1,
                Some(live) => match &live.made_by {
                    Some(m) if m.satisfies(&wanted) => plan.up_to_date += 1,
                    Some(m) if m.master => plan.to_do.push((owner, live.generation)),
                    _ => plan.not_rederivable += 1,
                },
            }
        }
        after = Some(last);
    }
    Ok(plan)
}

fn wanted(app: &App) -> Derivation {
    Derivation::wanted(&app.config.limits.sizes, &app.config.avatars.formats)
}

/// Times one re-derivation in this process (decrypt, decode, resize, encode) for the dry
/// run's estimate; `None` when there is nothing to sample.
async fn sample(app: &App, plan: &Plan) -> anyhow::Result<Option<Duration>> {
    let Some((owner, generation)) = plan.to_do.first().copied() else {
        return Ok(None);
    };
    let Some(master) = open_master(&app.profiles, &owner, generation).await? else {
        return Ok(None);
    };
    let live = app
        .profiles
        .read::<AvatarRecord>(&owner, RecordKey::Avatar)
        .await?
        .and_then(|(r, _)| r.current);
    let Some(live) = live else { return Ok(None) };
    let want = missing(&live, &wanted(app));
    let cfg = pipeline_config(app);
    let took = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        rederive(&master, &want, &cfg).map(|_| started.elapsed())
    })
    .await??;
    Ok(Some(took))
}

/// Scans, then (unless `dry_run`) enqueues and waits for every job, showing progress.
pub async fn run(app: &App, dry_run: bool) -> anyhow::Result<Summary> {
    let plan = scan(app).await?;
    tracing::info!(
        to_do = plan.to_do.len(),
        up_to_date = plan.up_to_date,
        not_rederivable = plan.not_rederivable,
        "reprocess scan"
    );
    let mut summary = Summary {
        plan,
        ..Summary::default()
    };
    if dry_run {
        summary.sample_cpu = sample(app, &summary.plan).await?;
        return Ok(summary);
    }
    let r = &app.config.reprocess;
    let interval = Duration::from_secs_f64(1.0 / r.rate_per_sec);
    let max_in_flight = usize::try_from(r.max_in_flight).unwrap_or(usize::MAX);
    let total = summary.plan.to_do.len();
    let mut next_at = Instant::now();
    let mut last_log = Instant::now();
    let mut in_flight: Vec<JobId> = Vec::new();
    let mut queue = summary.plan.to_do.iter();
    let mut pending = queue.next();
    let bar = std::io::stderr().is_terminal();
    while pending.is_some() || !in_flight.is_empty() {
        let mut still = Vec::with_capacity(in_flight.len());
        for id in in_flight.drain(..) {
            match app.queue.state(&id).await? {
                Some(JobState::Done) => summary.done += 1,
                Some(JobState::Killed) | None => summary.failed += 1,
                Some(_) => still.push(id),
            }
        }
        in_flight = still;
        let now = Instant::now();
        if let Some(&(owner, generation)) = pending {
            if in_flight.len() < max_in_flight && now >= next_at {
                let job = ProcessAvatar {
                    upload_id: String::new(),
                    owner: owner.to_hex(),
                    generation,
                    crop: None,
                    rederive: true,
                };
                in_flight.push(app.queue.enqueue(job).await?);
                metrics::counter!("moocard_reprocess_enqueued_total").increment(1);
                next_at = next_at.max(now) + interval;
                pending = queue.next();
                continue;
            }
        }
        let finished = summary.done + summary.failed;
        if bar {
            let width = 30;
            let filled = (finished as usize * width)
                .checked_div(total)
                .unwrap_or(width)
                .min(width);
            eprint!(
                "\rreprocess [{}{}] {finished}/{total} ({} in flight)",
                "#".repeat(filled),
                ".".repeat(width - filled),
                in_flight.len()
            );
            let _ = std::io::stderr().flush();
        }
        if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            tracing::info!(
                done = summary.done,
                failed = summary.failed,
                total,
                "reprocess progress"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if bar {
        eprintln!();
    }
    Ok(summary)
}

/// The command's closing report, one paragraph.
pub fn report(s: &Summary, dry_run: bool) -> String {
    let p = &s.plan;
    let n = p.to_do.len();
    let mut out = if dry_run {
        let cpu = s.sample_cpu.map_or_else(
            || "no sample".to_owned(),
            |d| {
                format!(
                    "about {:.0} s of worker CPU ({:.0} ms per avatar, sampled)",
                    d.as_secs_f64() * n as f64,
                    d.as_secs_f64() * 1000.0
                )
            },
        );
        format!("dry run: {n} avatars would be re-derived, {cpu}")
    } else {
        format!("re-derived {} avatars ({} failed)", s.done, s.failed)
    };
    out.push_str(&format!(
        "; {} already up to date; {} not re-derivable (made before masters were kept; left as served); {} without an avatar",
        p.up_to_date, p.not_rederivable, p.no_avatar
    ));
    out
}
