//! The MySQL/MariaDB backend (production; workers on other machines share it).

use sqlx::MySqlPool;

use super::{
    masters::master_store, sql::sql_store, NewImage, StoreError, StoredImage, StoredRecord,
    WrappedRow,
};
use crate::{crypto::Sealed, domain::ids::OwnerKey, domain::record::RecordKey};

sql_store!(
    MySqlStore,
    MySqlPool,
    sqlx::MySql,
    sqlx::migrate!("migrations/mysql"),
    "INSERT IGNORE"
);
master_store!(MySqlStore);
