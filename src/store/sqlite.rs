//! The embedded SQLite backend (the zero-config default).

use sqlx::SqlitePool;

use super::{
    masters::master_store, sql::sql_store, NewImage, StoreError, StoredImage, StoredRecord,
    WrappedRow,
};
use crate::{crypto::Sealed, domain::ids::OwnerKey, domain::record::RecordKey};

sql_store!(
    SqliteStore,
    SqlitePool,
    sqlx::Sqlite,
    sqlx::migrate!("migrations/sqlite"),
    "INSERT OR IGNORE"
);
master_store!(SqliteStore);
