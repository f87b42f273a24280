//! The storage boundary: generic key/value rows of opaque ciphertext, image blobs and
//! staged uploads. Backends never see an email or a plaintext value; encryption and
//! HMAC ids live above this trait (`crate::profiles`, `crate::crypto`).

pub mod alias_feed;
pub mod masters;
pub mod mysql;
mod sql;
pub mod sqlite;

use async_trait::async_trait;

use crate::{
    crypto::Sealed, db::DbPool, domain::avatar::VariantRef, domain::ids::OwnerKey,
    domain::record::RecordKey,
};

/// The SQL condition body "this owner (a column expression) is under a takedown": one of
/// its lookup aliases is listed in `takedown_aliases` (migrations 0013-0014).
#[macro_export]
#[doc(hidden)]
macro_rules! taken_down_owner_sql {
    ($owner:literal) => {
        concat!(
            "SELECT 1 FROM aliases tda JOIN takedown_aliases tdt ON tdt.alias = tda.alias WHERE tda.owner_key = ",
            $owner
        )
    };
}
pub use taken_down_owner_sql;

/// Storage failures, typed so the HTTP layer can map them (conflicts, outages).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A compare-and-set lost a race (or an insert found the row already there).
    #[error("the record was changed concurrently")]
    Conflict,
    /// The database could not be reached or timed out.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A migration failed or the schema is behind the code.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row names a record key this build does not know.
    #[error("stored row has an unknown record key {0:?}")]
    UnknownKey(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => Self::Unavailable(e),
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            _ => Self::Database(e),
        }
    }
}

/// A stored record: the sealed value plus its version for compare-and-set.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// The sealed value.
    pub sealed: Sealed,
    /// Incremented by every update.
    pub version: i64,
    /// Milliseconds since the epoch.
    pub updated_at_ms: i64,
}

/// What an avatar job writes with its commit: one transaction instead of three, and a set
/// never goes live without its master.
#[derive(Debug, Default, Clone, Copy)]
pub struct Staged<'a> {
    /// Variants of the generation made live (idempotent by id).
    pub images: &'a [NewImage],
    /// The sealed master of the generation made live.
    pub master: Option<&'a Sealed>,
}

/// A variant to store.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// Content id.
    pub id: String,
    /// Owner.
    pub owner: OwnerKey,
    /// Avatar generation it belongs to.
    pub generation: i64,
    /// Square size in pixels.
    pub size: u32,
    /// `image/jpeg` or `image/png`.
    pub content_type: String,
    /// Encoded bytes.
    pub bytes: Vec<u8>,
}

impl NewImage {
    /// How the avatar record refers to this variant.
    pub fn variant_ref(&self) -> VariantRef {
        VariantRef {
            id: self.id.clone(),
            content_type: self.content_type.clone(),
        }
    }
}

/// A stored variant as served.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// `image/jpeg` or `image/png`.
    pub content_type: String,
    /// Encoded bytes.
    pub bytes: Vec<u8>,
}

/// A row whose data key may need rewrapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrappedRow {
    /// A `records` row.
    Record(OwnerKey, String),
    /// An `uploads` row.
    Upload(String),
    /// A `masters` row (owner, generation).
    Master(OwnerKey, i64),
}

pub use masters::MasterStore;

/// Everything the server and workers need from a database (masters: [`MasterStore`]).
#[async_trait]
pub trait ProfileStore: MasterStore {
    /// Runs this backend's migrations (idempotent).
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Fails when the schema is behind this build (workers refuse to run then).
    async fn check_schema(&self) -> Result<(), StoreError>;
    /// Cheap round trip for `__heartbeat__`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// One record.
    async fn get_record(
        &self,
        owner: &OwnerKey,
        key: RecordKey,
    ) -> Result<Option<StoredRecord>, StoreError>;
    /// Inserts a record that must not exist yet (`Conflict` otherwise), with the owner's
    /// lookup aliases (idempotent), in one transaction.
    async fn insert_record(
        &self,
        owner: &OwnerKey,
        key: RecordKey,
        sealed: &Sealed,
        aliases: &[[u8; 32]],
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Replaces a record if its version is still `expected` (`Conflict` otherwise).
    async fn update_record(
        &self,
        owner: &OwnerKey,
        key: RecordKey,
        sealed: &Sealed,
        expected: i64,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Deletes one record; whether it existed.
    async fn delete_record(&self, owner: &OwnerKey, key: RecordKey) -> Result<bool, StoreError>;
    /// Whether the owner has any record.
    async fn owner_exists(&self, owner: &OwnerKey) -> Result<bool, StoreError>;

    /// Adds lookup aliases for an owner (idempotent).
    async fn add_aliases(&self, owner: &OwnerKey, aliases: &[[u8; 32]]) -> Result<(), StoreError>;
    /// Finds the owner of an alias.
    async fn resolve_alias(&self, alias: &[u8; 32]) -> Result<Option<OwnerKey>, StoreError>;
    /// Deletes every record, alias, upload and image of an owner in one transaction.
    async fn delete_owner(&self, owner: &OwnerKey) -> Result<(), StoreError>;

    /// Stages an encrypted original.
    async fn put_upload(
        &self,
        id: &str,
        owner: &OwnerKey,
        sealed: &Sealed,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// A staged original and its owner.
    async fn get_upload(&self, id: &str) -> Result<Option<(OwnerKey, Sealed)>, StoreError>;
    /// Deletes a staged original; whether it existed.
    async fn delete_upload(&self, id: &str) -> Result<bool, StoreError>;

    /// Stores variants, not yet live (idempotent by id: a retried job rewrites nothing).
    async fn put_images(&self, images: &[NewImage], now_ms: i64) -> Result<(), StoreError>;
    /// In one transaction: replace the avatar record (compare-and-set on `expected`), store
    /// what the job `staged` (not yet live), and make exactly the images of
    /// `live_generation` live (none when `None`), keeping only its master.
    async fn commit_avatar(
        &self,
        owner: &OwnerKey,
        sealed: &Sealed,
        expected: i64,
        live_generation: Option<i64>,
        staged: &Staged<'_>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// One live variant by content id; `None` once it is replaced or deleted, or while its
    /// owner is taken down.
    async fn get_image(&self, id: &str) -> Result<Option<StoredImage>, StoreError>;
    /// Deletes images that are not live and older than the cutoff; how many.
    async fn purge_dead_images(&self, created_before_ms: i64) -> Result<u64, StoreError>;
    /// Deletes staged uploads older than the cutoff (abandoned); how many.
    async fn purge_stale_uploads(&self, created_before_ms: i64) -> Result<u64, StoreError>;

    /// Each KEK id in use with one of its wrapped data keys (start-up key check).
    async fn kek_samples(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Up to `limit` rows wrapped under a KEK other than `active`.
    async fn rows_to_rewrap(
        &self,
        active: &str,
        limit: u32,
    ) -> Result<Vec<(WrappedRow, String, Vec<u8>)>, StoreError>;
    /// Swaps a row's wrapped data key if it still holds `old` (false if it changed meanwhile).
    async fn swap_wrapped(
        &self,
        row: &WrappedRow,
        old: &[u8],
        new: &[u8],
        new_kek: &str,
    ) -> Result<bool, StoreError>;
}

/// Opens the store for a pool.
pub fn for_pool(pool: &DbPool) -> std::sync::Arc<dyn ProfileStore> {
    match pool {
        DbPool::Sqlite(p) => std::sync::Arc::new(sqlite::SqliteStore::new(p.clone())),
        DbPool::MySql(p) => std::sync::Arc::new(mysql::MySqlStore::new(p.clone())),
    }
}

#[cfg(test)]
mod tests {
    fn versions(dir: &str) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .expect("migrations dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
        v.sort();
        v
    }

    #[test]
    fn migration_versions_pair_up() {
        assert_eq!(versions("sqlite"), versions("mysql"));
        assert!(!versions("sqlite").is_empty());
    }
}
