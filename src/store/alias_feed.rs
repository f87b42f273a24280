//! Reads of the alias tables for the in-memory filter of known aliases
//! (`http::alias_filter`): a paged scan of every alias (start-up and rebuilds) and the
//! aliases logged since a sequence number (the incremental refresh). Plain `?` statements
//! over the pool, valid in both dialects.

use sqlx::Row as _;

use crate::{db::DbPool, store::StoreError};

/// One page of aliases in key order, after `after` (exclusive).
pub async fn scan(
    pool: &DbPool,
    after: Option<[u8; 32]>,
    limit: u32,
) -> Result<Vec<[u8; 32]>, StoreError> {
    let after = after.map_or_else(Vec::new, |a| a.to_vec());
    let sql = "SELECT alias FROM aliases WHERE alias > ? ORDER BY alias LIMIT ?";
    let rows: Vec<Vec<u8>> = match pool {
        DbPool::Sqlite(p) => {
            sqlx::query_scalar(sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
        }
        DbPool::MySql(p) => {
            sqlx::query_scalar(sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
        }
    };
    Ok(rows
        .iter()
        .filter_map(|r| r.as_slice().try_into().ok())
        .collect())
}

/// The highest sequence number logged so far (0 when none).
pub async fn head(pool: &DbPool) -> Result<i64, StoreError> {
    let sql = "SELECT COALESCE(MAX(seq), 0) FROM alias_log";
    Ok(match pool {
        DbPool::Sqlite(p) => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await?,
        DbPool::MySql(p) => sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await?,
    })
}

/// Up to `limit` aliases logged after sequence number `after`, oldest first.
pub async fn since(
    pool: &DbPool,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, [u8; 32])>, StoreError> {
    let sql = "SELECT seq, alias FROM alias_log WHERE seq > ? ORDER BY seq LIMIT ?";
    let pick = |seq: i64, alias: Vec<u8>| Some((seq, <[u8; 32]>::try_from(alias).ok()?));
    Ok(match pool {
        DbPool::Sqlite(p) => sqlx::query(sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            .into_iter()
            .filter_map(|r| pick(r.try_get(0).ok()?, r.try_get(1).ok()?))
            .collect(),
        DbPool::MySql(p) => sqlx::query(sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
            .into_iter()
            .filter_map(|r| pick(r.try_get(0).ok()?, r.try_get(1).ok()?))
            .collect(),
    })
}
