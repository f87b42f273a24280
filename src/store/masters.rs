//! Sanitized masters and the re-derivation they allow (issue 15, API.md §Upload rules).
//!
//! A master is one sealed row per live avatar generation in `masters`; its data key is
//! wrapped like a record's, so `rotate-keys` rewraps it and `delete_owner` removes it
//! (`sql.rs`). This trait holds what only masters and `moocard reprocess` need, in its
//! own file so the main store stays readable; every `ProfileStore` also implements it.

use async_trait::async_trait;

use crate::{crypto::Sealed, domain::ids::OwnerKey};

use super::StoreError;

/// Master rows and the live-set switch of a re-derivation.
#[async_trait]
pub trait MasterStore: Send + Sync + 'static {
    /// Stores the sealed master of one generation (a retried job replaces its own copy).
    async fn put_master(
        &self,
        owner: &OwnerKey,
        generation: i64,
        sealed: &Sealed,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// The sealed master of one generation, if kept.
    async fn get_master(
        &self,
        owner: &OwnerKey,
        generation: i64,
    ) -> Result<Option<Sealed>, StoreError>;
    /// Deletes one generation's master (a superseded job's); whether it existed.
    async fn delete_master(&self, owner: &OwnerKey, generation: i64) -> Result<bool, StoreError>;
    /// Deletes masters older than the cutoff whose generation has no live image (left by a
    /// job that crashed between writing its master and committing); how many.
    async fn purge_dead_masters(&self, created_before_ms: i64) -> Result<u64, StoreError>;
    /// In one transaction: replace the avatar record (compare-and-set on `expected`) and
    /// make exactly the images in `live_ids` live, so a re-derived set switches at once.
    async fn commit_avatar_images(
        &self,
        owner: &OwnerKey,
        sealed: &Sealed,
        expected: i64,
        live_ids: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Owners that have an avatar record, in key order after `after`, at most `limit`
    /// (the resumable scan of `moocard reprocess`).
    async fn avatar_owners(
        &self,
        after: Option<&OwnerKey>,
        limit: u32,
    ) -> Result<Vec<OwnerKey>, StoreError>;
}

/// Implements [`MasterStore`] for a store made by `sql_store!` (same statements on both
/// backends).
macro_rules! master_store {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::masters::MasterStore for $store {
            async fn put_master(
                &self,
                owner: &OwnerKey,
                generation: i64,
                sealed: &Sealed,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut conn = self.pool.acquire().await?;
                Self::replace_master(&mut conn, owner, generation, sealed, now_ms).await
            }

            async fn get_master(
                &self,
                owner: &OwnerKey,
                generation: i64,
            ) -> Result<Option<Sealed>, StoreError> {
                let row: Option<(Vec<u8>, Vec<u8>, String)> = sqlx::query_as(
                    "SELECT ciphertext, wrapped_dek, kek_id FROM masters WHERE owner_key = ? AND generation = ?",
                )
                .bind(&owner.0[..])
                .bind(generation)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(ciphertext, wrapped_dek, kek_id)| Sealed {
                    ciphertext,
                    wrapped_dek,
                    kek_id,
                }))
            }

            async fn delete_master(
                &self,
                owner: &OwnerKey,
                generation: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM masters WHERE owner_key = ? AND generation = ?")
                    .bind(&owner.0[..])
                    .bind(generation)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn purge_dead_masters(&self, created_before_ms: i64) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM masters WHERE created_at < ? AND NOT EXISTS \
                     (SELECT 1 FROM images WHERE images.owner_key = masters.owner_key \
                      AND images.generation = masters.generation AND images.live = 1)",
                )
                .bind(created_before_ms)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn commit_avatar_images(
                &self,
                owner: &OwnerKey,
                sealed: &Sealed,
                expected: i64,
                live_ids: &[String],
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_avatar_cas(owner, sealed, expected, now_ms).await?;
                sqlx::query("UPDATE images SET live = 0 WHERE owner_key = ?")
                    .bind(&owner.0[..])
                    .execute(&mut *tx)
                    .await?;
                // One statement per id keeps the SQL static; a set is a few dozen ids.
                for id in live_ids {
                    sqlx::query("UPDATE images SET live = 1 WHERE owner_key = ? AND id = ?")
                        .bind(&owner.0[..])
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn avatar_owners(
                &self,
                after: Option<&OwnerKey>,
                limit: u32,
            ) -> Result<Vec<OwnerKey>, StoreError> {
                let rows: Vec<Vec<u8>> = sqlx::query_scalar(
                    "SELECT owner_key FROM records WHERE record_key = 'avatar' AND owner_key > ? \
                     ORDER BY owner_key LIMIT ?",
                )
                .bind(after.map_or(&[][..], |o| &o.0[..]))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|o| <[u8; 32]>::try_from(o.as_slice()).ok().map(OwnerKey))
                    .collect())
            }
        }
    };
}

pub(crate) use master_store;
