//! `moocard admin ...`: the CLI twin of `/v1/admin/...`, working on the database directly
//! (run it with the server's configuration, like `rotate-keys`). Other nodes see a change
//! within `avatars.cache_ttl_secs`; every action goes to the audit log with actor
//! `cli:<user>`.

use clap::Subcommand;
use moocard::{
    admin::{parse_duration, rfc3339_ms, TakedownRow, Target},
    audit::{Event, EventKind},
    config::Config,
    App, Migrations,
};

/// The admin subcommands.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// Take an avatar down: the default is served and its images answer 404.
    Takedown {
        /// Email, MD5, SHA-256 or public id.
        target: String,
        /// Why (shown by `list` and in the audit log).
        #[arg(long, default_value = "")]
        reason: String,
        /// Also refuse the owner's uploads for this long (90s, 30m, 12h, 7d, 2w).
        #[arg(long)]
        block_uploads: Option<String>,
    },
    /// Lift the takedown (and upload block) of a target.
    Restore {
        /// Email, MD5, SHA-256 or public id.
        target: String,
    },
    /// List takedowns, newest first (tab-separated; `--json` for one object per line).
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Print a new operator token and the `admin.tokens` entry that accepts it.
    NewToken {
        /// The operator's name (the audit log's actor).
        name: String,
    },
}

fn actor() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

fn print_row(row: &TakedownRow, json: bool) {
    let until = row.blocked_until_ms.map(rfc3339_ms);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "id": row.id, "subject": row.subject, "target_kind": row.target_kind,
                "reason": row.reason, "actor": row.actor,
                "created_at": rfc3339_ms(row.created_at_ms), "uploads_blocked_until": until,
            })
        );
    } else {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            row.id,
            row.subject,
            row.target_kind,
            row.actor,
            rfc3339_ms(row.created_at_ms),
            until.as_deref().unwrap_or("-"),
            row.reason
        );
    }
}

/// Runs one admin subcommand.
pub async fn run(config: Config, command: AdminCommand) -> anyhow::Result<()> {
    if let AdminCommand::NewToken { name } = &command {
        let token = moocard::keys::generate_b64()
            .replace(['+', '/'], "-")
            .trim_end_matches('=')
            .to_owned();
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
        println!("token: {token}");
        println!("config: tokens = [{{ name = {name:?}, sha256 = \"{digest}\" }}]");
        return Ok(());
    }
    let app = App::build(config, Migrations::Require).await?;
    let ops = &app.operators;
    match command {
        AdminCommand::Takedown {
            target,
            reason,
            block_uploads,
        } => {
            let target = Target::parse(&target).map_err(anyhow::Error::msg)?;
            let until = match block_uploads {
                Some(d) => {
                    let d = parse_duration(&d).map_err(anyhow::Error::msg)?;
                    Some(moocard::profiles::now_ms().saturating_add(d.as_millis() as i64))
                }
                None => None,
            };
            let (row, _) = ops
                .takedown(&target, reason.trim(), &actor(), until)
                .await?;
            let mut e = Event::new(EventKind::Takedown, true);
            e.actor = Some(row.actor.clone());
            e.owner = Some(row.subject.clone());
            e.reason = Some(row.reason.clone());
            e.until = until.map(rfc3339_ms);
            app.audit.record(&e);
            eprintln!(
                "taken down: id {} subject {} (other nodes within {} s)",
                row.id, row.subject, app.config.avatars.cache_ttl_secs
            );
        }
        AdminCommand::Restore { target } => {
            let target = Target::parse(&target).map_err(anyhow::Error::msg)?;
            let (n, resolved) = ops.restore(&target).await?;
            anyhow::ensure!(n > 0, "no takedown covers this target");
            let mut e = Event::new(EventKind::Restore, true);
            e.actor = Some(actor());
            e.owner = resolved.owner.as_ref().map(|o| app.audit.owner_id(o));
            app.audit.record(&e);
            eprintln!("restored {n} takedown(s)");
        }
        AdminCommand::List { json } => {
            for row in ops.list().await? {
                print_row(&row, json);
            }
        }
        AdminCommand::NewToken { .. } => {}
    }
    app.pool.close().await;
    Ok(())
}
