//! The SQL of takedowns, upload blocks and the shared upload counts, over either backend.
//! Statements are the same in both dialects except "insert unless present".

use crate::{db::DbPool, domain::ids::OwnerKey, store::StoreError};

/// Runs `$body` with `$p` bound to the concrete pool (the statements are generic over it).
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            DbPool::Sqlite($p) => $body,
            DbPool::MySql($p) => $body,
        }
    };
}

/// A stored takedown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TakedownRow {
    /// Takedown id.
    pub id: String,
    /// Short keyed id of the owner (or of the hash, when no profile had it).
    pub subject: String,
    /// How it was named: `email`, `md5`, `sha256` or `public_id`.
    pub target_kind: String,
    /// The operator's reason.
    pub reason: String,
    /// The operator's name (`cli` from the command line).
    pub actor: String,
    /// Milliseconds since the epoch.
    pub created_at_ms: i64,
    /// Uploads refused until then (milliseconds since the epoch), if blocked.
    pub blocked_until_ms: Option<i64>,
}

fn insert_ignore(pool: &DbPool) -> &'static str {
    match pool {
        DbPool::Sqlite(_) => "INSERT OR IGNORE",
        DbPool::MySql(_) => "INSERT IGNORE",
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The owner an alias belongs to, ignoring takedowns (the public lookup hides them).
pub async fn owner_of_alias(
    pool: &DbPool,
    alias: &[u8; 32],
) -> Result<Option<OwnerKey>, StoreError> {
    let owner: Option<Vec<u8>> = on_pool!(pool, p => sqlx::query_scalar("SELECT owner_key FROM aliases WHERE alias = ?")
        .bind(&alias[..])
        .fetch_optional(p)
        .await?);
    Ok(owner
        .and_then(|o| <[u8; 32]>::try_from(o.as_slice()).ok())
        .map(OwnerKey))
}

/// Every alias registered for an owner.
pub async fn aliases_of(pool: &DbPool, owner: &OwnerKey) -> Result<Vec<[u8; 32]>, StoreError> {
    let rows: Vec<Vec<u8>> = on_pool!(pool, p => sqlx::query_scalar("SELECT alias FROM aliases WHERE owner_key = ?")
        .bind(&owner.0[..])
        .fetch_all(p)
        .await?);
    Ok(rows
        .into_iter()
        .filter_map(|a| <[u8; 32]>::try_from(a.as_slice()).ok())
        .collect())
}

/// Ids of the takedowns covering any of `aliases`.
async fn takedowns_covering(
    pool: &DbPool,
    aliases: &[[u8; 32]],
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT DISTINCT takedown_id FROM takedown_aliases WHERE alias IN ({})",
        placeholders(aliases.len())
    );
    Ok(on_pool!(pool, p => {
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for a in aliases {
            q = q.bind(&a[..]);
        }
        q.fetch_all(p).await?
    }))
}

/// Records (or updates) the takedown covering `aliases`; returns its id.
pub async fn put_takedown(
    pool: &DbPool,
    aliases: &[[u8; 32]],
    row: &TakedownRow,
) -> Result<String, StoreError> {
    let existing = takedowns_covering(pool, aliases).await?;
    let id = existing.first().cloned().unwrap_or_else(|| row.id.clone());
    let link = format!(
        "{} INTO takedown_aliases (alias, takedown_id) VALUES (?, ?)",
        insert_ignore(pool)
    );
    on_pool!(pool, p => {
        let mut tx = p.begin().await?;
        if existing.is_empty() {
            sqlx::query(
                "INSERT INTO takedowns (id, subject, target_kind, reason, actor, created_at, blocked_until) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(&row.subject)
            .bind(&row.target_kind)
            .bind(&row.reason)
            .bind(&row.actor)
            .bind(row.created_at_ms)
            .bind(row.blocked_until_ms)
            .execute(&mut *tx)
            .await?;
        } else {
            // Taken down again: the latest reason, operator and block apply.
            sqlx::query("UPDATE takedowns SET reason = ?, actor = ?, created_at = ?, blocked_until = ? WHERE id = ?")
                .bind(&row.reason)
                .bind(&row.actor)
                .bind(row.created_at_ms)
                .bind(row.blocked_until_ms)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        for a in aliases {
            sqlx::query(&link).bind(&a[..]).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(id)
}

/// Lifts every takedown covering `aliases`; how many there were.
pub async fn delete_takedowns(pool: &DbPool, aliases: &[[u8; 32]]) -> Result<u64, StoreError> {
    let ids = takedowns_covering(pool, aliases).await?;
    on_pool!(pool, p => {
        let mut tx = p.begin().await?;
        for id in &ids {
            sqlx::query("DELETE FROM takedown_aliases WHERE takedown_id = ?").bind(id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM takedowns WHERE id = ?").bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(ids.len() as u64)
}

type RawRow = (String, String, String, String, String, i64, Option<i64>);

/// Every takedown, newest first.
pub async fn list_takedowns(pool: &DbPool) -> Result<Vec<TakedownRow>, StoreError> {
    let rows: Vec<RawRow> = on_pool!(pool, p => sqlx::query_as(
        "SELECT id, subject, target_kind, reason, actor, created_at, blocked_until FROM takedowns \
         ORDER BY created_at DESC",
    )
    .fetch_all(p)
    .await?);
    Ok(rows
        .into_iter()
        .map(
            |(id, subject, target_kind, reason, actor, created_at_ms, blocked_until_ms)| {
                TakedownRow {
                    id,
                    subject,
                    target_kind,
                    reason,
                    actor,
                    created_at_ms,
                    blocked_until_ms,
                }
            },
        )
        .collect())
}

/// The latest end of an upload block covering any of `aliases`, if any.
pub async fn blocked_until(pool: &DbPool, aliases: &[[u8; 32]]) -> Result<Option<i64>, StoreError> {
    let sql = format!(
        "SELECT MAX(t.blocked_until) FROM takedowns t JOIN takedown_aliases a ON a.takedown_id = t.id \
         WHERE a.alias IN ({})",
        placeholders(aliases.len())
    );
    Ok(on_pool!(pool, p => {
        let mut q = sqlx::query_scalar::<_, Option<i64>>(&sql);
        for a in aliases {
            q = q.bind(&a[..]);
        }
        q.fetch_one(p).await?
    }))
}

/// Counts an upload of `owner` at `now_ms` unless that makes more than a `(limit,
/// window_ms)` pair allows: inserted first and counted after, so concurrent uploads on any
/// number of nodes can never all pass. On refusal the row is removed again and the answer
/// is which pair refused and the milliseconds until one more fits. Two statements in the
/// common case (an insert and one read of the owner's rows), so an upload holds a pooled
/// connection briefly.
pub async fn count_upload(
    pool: &DbPool,
    owner: &OwnerKey,
    id: &str,
    now_ms: i64,
    windows: &[(u32, i64)],
) -> Result<Result<(), (usize, i64)>, StoreError> {
    const DAY_MS: i64 = 86_400_000;
    on_pool!(pool, p => {
        sqlx::query("INSERT INTO upload_events (owner_key, created_at, id) VALUES (?, ?, ?)")
            .bind(&owner.0[..])
            .bind(now_ms)
            .bind(id)
            .execute(p)
            .await?;
        let times: Vec<i64> = sqlx::query_scalar(
            "SELECT created_at FROM upload_events WHERE owner_key = ? ORDER BY created_at",
        )
        .bind(&owner.0[..])
        .fetch_all(p)
        .await?;
        // Rows older than a day count for nothing; they go as the owner uploads (the
        // primary key starts with owner_key, so this touches only this owner's rows).
        if times.first().is_some_and(|&t| t < now_ms - DAY_MS) {
            sqlx::query("DELETE FROM upload_events WHERE owner_key = ? AND created_at < ?")
                .bind(&owner.0[..])
                .bind(now_ms - DAY_MS)
                .execute(p)
                .await?;
        }
        for (i, &(limit, window_ms)) in windows.iter().enumerate() {
            let inside: Vec<i64> = times.iter().copied().filter(|&t| t > now_ms - window_ms).collect();
            if limit == 0 || inside.len() <= limit as usize {
                continue;
            }
            sqlx::query("DELETE FROM upload_events WHERE owner_key = ? AND id = ?")
                .bind(&owner.0[..])
                .bind(id)
                .execute(p)
                .await?;
            // The upload that has to age out before one more fits.
            let oldest = inside[inside.len() - limit as usize - 1];
            return Ok(Err((i, oldest + window_ms - now_ms)));
        }
        Ok(Ok(()))
    })
}
