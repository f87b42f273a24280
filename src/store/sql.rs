//! One implementation of [`ProfileStore`] for both SQL backends.
//!
//! SQLite and MySQL accept the same `?`-placeholder statements for everything here except
//! "insert unless present", so the body is written once and instantiated per backend by
//! `sql_store!`; only that keyword and the migrator differ.

/// Implements `ProfileStore` for `$store { pool: $pool }`.
macro_rules! sql_store {
    ($store:ident, $pool:ty, $db:ty, $migrator:expr, $insert_ignore:literal) => {
        /// The store over this backend's pool.
        #[derive(Debug, Clone)]
        pub struct $store {
            pool: $pool,
        }

        impl $store {
            /// Wraps a pool.
            pub fn new(pool: $pool) -> Self {
                Self { pool }
            }

            /// Compare-and-set of one record on its version.
            fn cas_update<'q>(
                owner: &'q OwnerKey,
                key: RecordKey,
                sealed: &'q Sealed,
                expected: i64,
                now_ms: i64,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                sqlx::query(
                    "UPDATE records SET ciphertext = ?, wrapped_dek = ?, kek_id = ?, version = version + 1, \
                     updated_at = ? WHERE owner_key = ? AND record_key = ? AND version = ?",
                )
                .bind(&sealed.ciphertext)
                .bind(&sealed.wrapped_dek)
                .bind(&sealed.kek_id)
                .bind(now_ms)
                .bind(&owner.0[..])
                .bind(key.as_str())
                .bind(expected)
            }

            /// A transaction in which the avatar record's compare-and-set already
            /// succeeded (`Conflict` otherwise); the caller switches images and commits.
            async fn begin_avatar_cas(
                &self,
                owner: &OwnerKey,
                sealed: &Sealed,
                expected: i64,
                now_ms: i64,
            ) -> Result<sqlx::Transaction<'static, $db>, StoreError> {
                let mut tx = self.pool.begin().await?;
                let done = Self::cas_update(owner, RecordKey::Avatar, sealed, expected, now_ms)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
                Ok(tx)
            }

            /// The aliases and their feed rows, two multi-row statements (one round trip
            /// each, whatever the number of aliases).
            async fn insert_aliases(
                conn: &mut <$db as sqlx::Database>::Connection,
                owner: &OwnerKey,
                aliases: &[[u8; 32]],
            ) -> Result<(), StoreError> {
                if aliases.is_empty() {
                    return Ok(());
                }
                sqlx::QueryBuilder::<$db>::new(concat!($insert_ignore, " INTO aliases (alias, owner_key) "))
                    .push_values(aliases, |mut row, alias| {
                        row.push_bind(&alias[..]).push_bind(&owner.0[..]);
                    })
                    .build()
                    .execute(&mut *conn)
                    .await?;
                // The feed of new aliases that API nodes' filters follow (alias_feed.rs).
                sqlx::QueryBuilder::<$db>::new(concat!($insert_ignore, " INTO alias_log (alias) "))
                    .push_values(aliases, |mut row, alias| {
                        row.push_bind(&alias[..]);
                    })
                    .build()
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            /// One generation's sealed master (`REPLACE` is MySQL's and an SQLite alias of
            /// `INSERT OR REPLACE`: a retried job replaces its own copy).
            async fn replace_master(
                conn: &mut <$db as sqlx::Database>::Connection,
                owner: &OwnerKey,
                generation: i64,
                sealed: &Sealed,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "REPLACE INTO masters (owner_key, generation, ciphertext, wrapped_dek, kek_id, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(&owner.0[..])
                .bind(generation)
                .bind(&sealed.ciphertext)
                .bind(&sealed.wrapped_dek)
                .bind(&sealed.kek_id)
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Variants, not yet live, in one multi-row statement (idempotent by id).
            async fn insert_images(
                conn: &mut <$db as sqlx::Database>::Connection,
                images: &[NewImage],
                now_ms: i64,
            ) -> Result<(), StoreError> {
                if images.is_empty() {
                    return Ok(());
                }
                sqlx::QueryBuilder::<$db>::new(concat!(
                    $insert_ignore,
                    " INTO images (id, owner_key, generation, size, content_type, bytes, live, created_at) "
                ))
                .push_values(images, |mut row, img| {
                    row.push_bind(&img.id)
                        .push_bind(&img.owner.0[..])
                        .push_bind(img.generation)
                        .push_bind(i64::from(img.size))
                        .push_bind(&img.content_type)
                        .push_bind(&img.bytes)
                        .push_bind(0_i64)
                        .push_bind(now_ms);
                })
                .build()
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            fn migrator() -> sqlx::migrate::Migrator {
                let mut m = $migrator;
                // apalis' migrations share `_sqlx_migrations` (DEPENDENCIES.md pitfall 6).
                m.set_ignore_missing(true);
                m
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ProfileStore for $store {
            async fn migrate(&self) -> Result<(), StoreError> {
                Self::migrator().run(&self.pool).await?;
                Ok(())
            }

            async fn check_schema(&self) -> Result<(), StoreError> {
                let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                    .fetch_all(&self.pool)
                    .await
                    .unwrap_or_default();
                let missing: Vec<i64> =
                    Self::migrator().iter().map(|m| m.version).filter(|v| !applied.contains(v)).collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(StoreError::Migrate(sqlx::migrate::MigrateError::VersionMissing(missing[0])))
                }
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn get_record(&self, owner: &OwnerKey, key: RecordKey) -> Result<Option<StoredRecord>, StoreError> {
                let row: Option<(Vec<u8>, Vec<u8>, String, i64, i64)> = sqlx::query_as(
                    "SELECT ciphertext, wrapped_dek, kek_id, version, updated_at FROM records \
                     WHERE owner_key = ? AND record_key = ?",
                )
                .bind(&owner.0[..])
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(ciphertext, wrapped_dek, kek_id, version, updated_at_ms)| StoredRecord {
                    sealed: Sealed { ciphertext, wrapped_dek, kek_id },
                    version,
                    updated_at_ms,
                }))
            }

            async fn insert_record(
                &self,
                owner: &OwnerKey,
                key: RecordKey,
                sealed: &Sealed,
                aliases: &[[u8; 32]],
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                Self::insert_aliases(&mut tx, owner, aliases).await?;
                sqlx::query(
                    "INSERT INTO records (owner_key, record_key, ciphertext, wrapped_dek, kek_id, version, \
                     created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
                )
                .bind(&owner.0[..])
                .bind(key.as_str())
                .bind(&sealed.ciphertext)
                .bind(&sealed.wrapped_dek)
                .bind(&sealed.kek_id)
                .bind(now_ms)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn update_record(
                &self,
                owner: &OwnerKey,
                key: RecordKey,
                sealed: &Sealed,
                expected: i64,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let done = Self::cas_update(owner, key, sealed, expected, now_ms).execute(&self.pool).await?;
                if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict) }
            }

            async fn delete_record(&self, owner: &OwnerKey, key: RecordKey) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM records WHERE owner_key = ? AND record_key = ?")
                    .bind(&owner.0[..])
                    .bind(key.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn owner_exists(&self, owner: &OwnerKey) -> Result<bool, StoreError> {
                let n: Option<i64> = sqlx::query_scalar("SELECT 1 FROM records WHERE owner_key = ? LIMIT 1")
                    .bind(&owner.0[..])
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(n.is_some())
            }

            async fn add_aliases(&self, owner: &OwnerKey, aliases: &[[u8; 32]]) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                Self::insert_aliases(&mut tx, owner, aliases).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn resolve_alias(&self, alias: &[u8; 32]) -> Result<Option<OwnerKey>, StoreError> {
                // An owner under an operator takedown (any of its aliases listed in
                // takedown_aliases) resolves to nobody: the default is served.
                let owner: Option<Vec<u8>> = sqlx::query_scalar(concat!(
                    "SELECT a.owner_key FROM aliases a WHERE a.alias = ? AND NOT EXISTS (",
                    $crate::store::taken_down_owner_sql!("a.owner_key"),
                    ")"
                ))
                    .bind(&alias[..])
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(owner.and_then(|o| <[u8; 32]>::try_from(o.as_slice()).ok()).map(OwnerKey))
            }

            async fn delete_owner(&self, owner: &OwnerKey) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM alias_log WHERE alias IN (SELECT alias FROM aliases WHERE owner_key = ?)")
                    .bind(&owner.0[..])
                    .execute(&mut *tx)
                    .await?;
                for table in ["records", "aliases", "uploads", "images", "masters"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE owner_key = ?"))
                        .bind(&owner.0[..])
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn put_upload(
                &self,
                id: &str,
                owner: &OwnerKey,
                sealed: &Sealed,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO uploads (id, owner_key, ciphertext, wrapped_dek, kek_id, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(&owner.0[..])
                .bind(&sealed.ciphertext)
                .bind(&sealed.wrapped_dek)
                .bind(&sealed.kek_id)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get_upload(&self, id: &str) -> Result<Option<(OwnerKey, Sealed)>, StoreError> {
                let row: Option<(Vec<u8>, Vec<u8>, Vec<u8>, String)> =
                    sqlx::query_as("SELECT owner_key, ciphertext, wrapped_dek, kek_id FROM uploads WHERE id = ?")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.and_then(|(owner, ciphertext, wrapped_dek, kek_id)| {
                    let owner = OwnerKey(<[u8; 32]>::try_from(owner.as_slice()).ok()?);
                    Some((owner, Sealed { ciphertext, wrapped_dek, kek_id }))
                }))
            }

            async fn delete_upload(&self, id: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM uploads WHERE id = ?").bind(id).execute(&self.pool).await?;
                Ok(done.rows_affected() > 0)
            }

            async fn put_images(&self, images: &[NewImage], now_ms: i64) -> Result<(), StoreError> {
                let mut conn = self.pool.acquire().await?;
                Self::insert_images(&mut conn, images, now_ms).await
            }

            async fn commit_avatar(
                &self,
                owner: &OwnerKey,
                sealed: &Sealed,
                expected: i64,
                live_generation: Option<i64>,
                staged: &$crate::store::Staged<'_>,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_avatar_cas(owner, sealed, expected, now_ms).await?;
                if let (Some(master), Some(generation)) = (staged.master, live_generation) {
                    Self::replace_master(&mut tx, owner, generation, master, now_ms).await?;
                }
                Self::insert_images(&mut tx, staged.images, now_ms).await?;
                // -1 never matches a generation, so `None` turns every image dead.
                sqlx::query("UPDATE images SET live = CASE WHEN generation = ? THEN 1 ELSE 0 END WHERE owner_key = ?")
                    .bind(live_generation.unwrap_or(-1))
                    .bind(&owner.0[..])
                    .execute(&mut *tx)
                    .await?;
                // A master is kept for the live generation only (issue 15).
                sqlx::query("DELETE FROM masters WHERE owner_key = ? AND generation <> ?")
                    .bind(&owner.0[..])
                    .bind(live_generation.unwrap_or(-1))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_image(&self, id: &str) -> Result<Option<StoredImage>, StoreError> {
                let row: Option<(String, Vec<u8>)> =
                    // Only live images of owners not taken down (API.md §Public reads: a
                    // replaced, deleted or taken-down image answers 404).
                    sqlx::query_as(concat!(
                        "SELECT i.content_type, i.bytes FROM images i WHERE i.id = ? AND i.live = 1 AND NOT EXISTS (",
                        $crate::store::taken_down_owner_sql!("i.owner_key"),
                        ")"
                    ))
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(|(content_type, bytes)| StoredImage { content_type, bytes }))
            }

            async fn purge_dead_images(&self, created_before_ms: i64) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM images WHERE live = 0 AND created_at < ?")
                    .bind(created_before_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn purge_stale_uploads(&self, created_before_ms: i64) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM uploads WHERE created_at < ?")
                    .bind(created_before_ms)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn kek_samples(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
                let mut out: Vec<(String, Vec<u8>)> = Vec::new();
                for table in ["records", "uploads", "masters"] {
                    let ids: Vec<String> = sqlx::query_scalar(&format!("SELECT DISTINCT kek_id FROM {table}"))
                        .fetch_all(&self.pool)
                        .await?;
                    for id in ids {
                        if out.iter().any(|(k, _)| *k == id) {
                            continue;
                        }
                        let wrapped: Vec<u8> =
                            sqlx::query_scalar(&format!("SELECT wrapped_dek FROM {table} WHERE kek_id = ? LIMIT 1"))
                                .bind(&id)
                                .fetch_one(&self.pool)
                                .await?;
                        out.push((id, wrapped));
                    }
                }
                Ok(out)
            }

            async fn rows_to_rewrap(
                &self,
                active: &str,
                limit: u32,
            ) -> Result<Vec<(WrappedRow, String, Vec<u8>)>, StoreError> {
                let records: Vec<(Vec<u8>, String, String, Vec<u8>)> = sqlx::query_as(
                    "SELECT owner_key, record_key, kek_id, wrapped_dek FROM records WHERE kek_id <> ? LIMIT ?",
                )
                .bind(active)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                let mut out: Vec<(WrappedRow, String, Vec<u8>)> = records
                    .into_iter()
                    .filter_map(|(owner, key, kek, wrapped)| {
                        let owner = OwnerKey(<[u8; 32]>::try_from(owner.as_slice()).ok()?);
                        Some((WrappedRow::Record(owner, key), kek, wrapped))
                    })
                    .collect();
                let uploads: Vec<(String, String, Vec<u8>)> =
                    sqlx::query_as("SELECT id, kek_id, wrapped_dek FROM uploads WHERE kek_id <> ? LIMIT ?")
                        .bind(active)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                out.extend(uploads.into_iter().map(|(id, kek, wrapped)| (WrappedRow::Upload(id), kek, wrapped)));
                let masters: Vec<(Vec<u8>, i64, String, Vec<u8>)> = sqlx::query_as(
                    "SELECT owner_key, generation, kek_id, wrapped_dek FROM masters WHERE kek_id <> ? LIMIT ?",
                )
                .bind(active)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                out.extend(masters.into_iter().filter_map(|(owner, generation, kek, wrapped)| {
                    let owner = OwnerKey(<[u8; 32]>::try_from(owner.as_slice()).ok()?);
                    Some((WrappedRow::Master(owner, generation), kek, wrapped))
                }));
                Ok(out)
            }

            async fn swap_wrapped(
                &self,
                row: &WrappedRow,
                old: &[u8],
                new: &[u8],
                new_kek: &str,
            ) -> Result<bool, StoreError> {
                // Compare-and-set on the old wrapped key: a concurrent write (which seals a
                // fresh data key under the active KEK) wins and this row is simply skipped.
                let done = match row {
                    WrappedRow::Record(owner, key) => sqlx::query(
                        "UPDATE records SET wrapped_dek = ?, kek_id = ? \
                         WHERE owner_key = ? AND record_key = ? AND wrapped_dek = ?",
                    )
                    .bind(new)
                    .bind(new_kek)
                    .bind(&owner.0[..])
                    .bind(key)
                    .bind(old)
                    .execute(&self.pool)
                    .await?,
                    WrappedRow::Upload(id) => {
                        sqlx::query("UPDATE uploads SET wrapped_dek = ?, kek_id = ? WHERE id = ? AND wrapped_dek = ?")
                            .bind(new)
                            .bind(new_kek)
                            .bind(id)
                            .bind(old)
                            .execute(&self.pool)
                            .await?
                    }
                    WrappedRow::Master(owner, generation) => sqlx::query(
                        "UPDATE masters SET wrapped_dek = ?, kek_id = ? \
                         WHERE owner_key = ? AND generation = ? AND wrapped_dek = ?",
                    )
                    .bind(new)
                    .bind(new_kek)
                    .bind(&owner.0[..])
                    .bind(generation)
                    .bind(old)
                    .execute(&self.pool)
                    .await?,
                };
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use sql_store;
