//! Profile records above the store: sealing and opening values, deriving ids, and the
//! read-modify-write loops (compare-and-set on the record version) that keep concurrent
//! writers from losing each other's changes.

use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};

use crate::{
    crypto::{CryptoError, IdKeys, KeyRing},
    domain::{
        avatar::{AvatarRecord, AvatarStatus, LiveAvatar},
        email::Email,
        ids::{AvatarHash, OwnerKey, PublicId},
        record::{validate_display_name, RecordKey},
    },
    store::{ProfileStore, Staged, StoreError},
};

/// Why a profile operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value failed to open: tampering, or the wrong keys.
    #[error("stored data failed its integrity check: {0}")]
    Crypto(#[from] CryptoError),
    /// A stored value opened but is not what this build expects.
    #[error("stored record could not be decoded: {0}")]
    Corrupt(String),
    /// A value broke its key's rules.
    #[error("{0}")]
    Invalid(String),
    /// Too many concurrent writers to the same record.
    #[error("the record is being changed concurrently; try again")]
    Busy,
}

/// The profile as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProfileView {
    /// Normalized email.
    pub email: String,
    /// Opaque public id (40 hex), usable at `/avatar/{id}`.
    pub public_id: String,
    /// Display name or null.
    pub display_name: Option<String>,
    /// Avatar status.
    pub avatar: AvatarStatus,
}

/// Profile operations. Cheap to clone.
#[derive(Clone)]
pub struct Profiles {
    store: Arc<dyn ProfileStore>,
    ring: Arc<KeyRing>,
    ids: IdKeys,
}

/// Compare-and-set attempts before 503 `unavailable`. With N writers on one record, the
/// last one can lose N - 1 rounds, so lost rounds back off (`cas_backoff`) to spread them.
pub(crate) const CAS_RETRIES: u32 = 16;

/// A jittered wait after losing a compare-and-set round: up to 2^min(attempt, 5) ms.
pub(crate) async fn cas_backoff(attempt: u32) {
    let cap = 1u64 << attempt.min(5);
    let jitter = u64::from(u16::from_le_bytes(crate::crypto::random_bytes::<2>()));
    tokio::time::sleep(std::time::Duration::from_micros(jitter % (cap * 1000))).await;
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 UTC timestamp with seconds precision.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn aad(owner: &OwnerKey, key: RecordKey) -> Vec<u8> {
    [
        b"record.v1:".as_slice(),
        &owner.0,
        b":",
        key.as_str().as_bytes(),
    ]
    .concat()
}

/// The AAD of a staged upload.
pub fn upload_aad(owner: &OwnerKey, upload_id: &str) -> Vec<u8> {
    [
        b"upload.v1:".as_slice(),
        &owner.0,
        b":",
        upload_id.as_bytes(),
    ]
    .concat()
}

impl Profiles {
    /// Builds the service.
    pub fn new(store: Arc<dyn ProfileStore>, ring: Arc<KeyRing>, ids: IdKeys) -> Self {
        Self { store, ring, ids }
    }

    /// The store below.
    pub fn store(&self) -> &Arc<dyn ProfileStore> {
        &self.store
    }

    /// The key ring.
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The id keys.
    pub fn ids(&self) -> &IdKeys {
        &self.ids
    }

    /// The owner key of an email.
    pub fn owner(&self, email: &Email) -> OwnerKey {
        OwnerKey::of(&self.ids, email)
    }

    /// Reads and opens a record.
    pub async fn read<T: DeserializeOwned>(
        &self,
        owner: &OwnerKey,
        key: RecordKey,
    ) -> Result<Option<(T, i64)>, ProfileError> {
        let Some(rec) = self.store.get_record(owner, key).await? else {
            return Ok(None);
        };
        let plain = self.ring.open(&rec.sealed, &aad(owner, key))?;
        let value =
            serde_json::from_slice(&plain).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
        Ok(Some((value, rec.version)))
    }

    /// Seals and writes a record: insert when `expected` is `None`, else compare-and-set.
    /// Registers the owner's lookup aliases on insert.
    pub async fn write<T: Serialize>(
        &self,
        email: Option<&Email>,
        owner: &OwnerKey,
        key: RecordKey,
        value: &T,
        expected: Option<i64>,
    ) -> Result<(), ProfileError> {
        let plain = serde_json::to_vec(value).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
        let sealed = self.ring.seal(&plain, &aad(owner, key));
        match expected {
            None => {
                let aliases = email
                    .map(|email| AvatarHash::all_for(&self.ids, email).map(|h| h.alias(&self.ids)));
                let aliases = aliases.as_ref().map_or(&[][..], |a| &a[..]);
                self.store
                    .insert_record(owner, key, &sealed, aliases, now_ms())
                    .await?
            }
            Some(v) => {
                self.store
                    .update_record(owner, key, &sealed, v, now_ms())
                    .await?
            }
        }
        Ok(())
    }

    /// Applies `f` to a record with compare-and-set retries. `f` returns `None` for "no change".
    pub async fn update<T, F>(
        &self,
        email: Option<&Email>,
        owner: &OwnerKey,
        key: RecordKey,
        f: F,
    ) -> Result<T, ProfileError>
    where
        T: Serialize + DeserializeOwned + Default + Clone,
        F: FnMut(T) -> Result<Option<T>, ProfileError>,
    {
        self.update_from(email, owner, key, None, f).await
    }

    /// [`Profiles::update`] whose first turn starts from a record and version the caller
    /// has just read (one read fewer); a conflict re-reads as usual.
    pub async fn update_from<T, F>(
        &self,
        email: Option<&Email>,
        owner: &OwnerKey,
        key: RecordKey,
        mut known: Option<(T, i64)>,
        mut f: F,
    ) -> Result<T, ProfileError>
    where
        T: Serialize + DeserializeOwned + Default + Clone,
        F: FnMut(T) -> Result<Option<T>, ProfileError>,
    {
        for attempt in 0..CAS_RETRIES {
            let read = match known.take() {
                Some(k) => Some(k),
                None => self.read::<T>(owner, key).await?,
            };
            let (current, version) = match read {
                Some((v, ver)) => (v, Some(ver)),
                None => (T::default(), None),
            };
            let Some(next) = f(current.clone())? else {
                return Ok(current);
            };
            match self.write(email, owner, key, &next, version).await {
                Ok(()) => return Ok(next),
                Err(ProfileError::Store(StoreError::Conflict)) => cas_backoff(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(ProfileError::Busy)
    }

    /// Compare-and-set loop on the avatar record that also stores what a job `staged` and
    /// switches which images are live, in one transaction (`ProfileStore::commit_avatar`).
    /// `f` sees the current record and returns the next one plus the generation to make
    /// live, or `None` to stop (then nothing is written).
    pub async fn commit_avatar<F>(
        &self,
        owner: &OwnerKey,
        staged: &Staged<'_>,
        mut f: F,
    ) -> Result<Option<AvatarRecord>, ProfileError>
    where
        F: FnMut(AvatarRecord) -> Option<(AvatarRecord, Option<i64>)>,
    {
        for attempt in 0..CAS_RETRIES {
            let Some((current, version)) =
                self.read::<AvatarRecord>(owner, RecordKey::Avatar).await?
            else {
                return Ok(None);
            };
            let Some((next, live)) = f(current) else {
                return Ok(None);
            };
            let plain =
                serde_json::to_vec(&next).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
            let sealed = self.ring.seal(&plain, &aad(owner, RecordKey::Avatar));
            match self
                .store
                .commit_avatar(owner, &sealed, version, live, staged, now_ms())
                .await
            {
                Ok(()) => return Ok(Some(next)),
                Err(StoreError::Conflict) => cas_backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ProfileError::Busy)
    }

    /// Seals an avatar record for a compare-and-set write done outside this type (the
    /// re-derivation commit, `crate::masters`).
    pub fn seal_avatar(
        &self,
        owner: &OwnerKey,
        rec: &AvatarRecord,
    ) -> Result<crate::crypto::Sealed, ProfileError> {
        let plain = serde_json::to_vec(rec).map_err(|e| ProfileError::Corrupt(e.to_string()))?;
        Ok(self.ring.seal(&plain, &aad(owner, RecordKey::Avatar)))
    }

    /// The profile of an email (an email with no records has an empty profile).
    pub async fn get(&self, email: &Email) -> Result<ProfileView, ProfileError> {
        let owner = self.owner(email);
        let display_name = self
            .read::<String>(&owner, RecordKey::DisplayName)
            .await?
            .map(|(v, _)| v);
        let avatar = self
            .read::<AvatarRecord>(&owner, RecordKey::Avatar)
            .await?
            .map(|(v, _)| v)
            .unwrap_or_default();
        Ok(ProfileView {
            email: email.as_str().to_owned(),
            public_id: PublicId::of(&self.ids, email).0,
            display_name,
            avatar: avatar.status(),
        })
    }

    /// Sets (`Some`) or clears (`None`) the display name.
    pub async fn set_display_name(
        &self,
        email: &Email,
        value: Option<&str>,
    ) -> Result<(), ProfileError> {
        let owner = self.owner(email);
        match value {
            Some(raw) => {
                let name = validate_display_name(raw).map_err(ProfileError::Invalid)?;
                self.update::<String, _>(Some(email), &owner, RecordKey::DisplayName, |old| {
                    Ok((old != name).then(|| name.clone()))
                })
                .await?;
            }
            None => {
                self.store
                    .delete_record(&owner, RecordKey::DisplayName)
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes every record, alias, upload and image of an email.
    pub async fn delete(&self, email: &Email) -> Result<(), ProfileError> {
        Ok(self.store.delete_owner(&self.owner(email)).await?)
    }

    /// The live avatar behind a public hash, if any.
    pub async fn live_avatar(&self, hash: &AvatarHash) -> Result<Option<LiveAvatar>, ProfileError> {
        let Some(owner) = self.store.resolve_alias(&hash.alias(&self.ids)).await? else {
            return Ok(None);
        };
        Ok(self
            .read::<AvatarRecord>(&owner, RecordKey::Avatar)
            .await?
            .and_then(|(rec, _)| rec.current))
    }

    /// Checks at start-up that every KEK id in use is configured and actually unwraps its
    /// data keys, so a wrong key fails loudly instead of on the first read.
    pub async fn check_keys(&self) -> Result<(), String> {
        let samples = self.store.kek_samples().await.map_err(|e| e.to_string())?;
        for (kek_id, wrapped) in samples {
            self.ring.unwrap_dek(&kek_id, &wrapped).map_err(|e| {
                format!("{e}; the data was written with key id {kek_id:?}: configure that key (keys.keks) or restore the right key file")
            })?;
        }
        Ok(())
    }

    /// Rewraps up to `batch` data keys under the active KEK; returns (rows seen, rows
    /// changed). Safe while the server runs, and resumable: it only looks at rows still
    /// under other KEKs, so `seen == 0` means done.
    pub async fn rotate_batch(&self, batch: u32) -> Result<(usize, usize), ProfileError> {
        let rows = self
            .store
            .rows_to_rewrap(self.ring.active_id(), batch)
            .await?;
        let seen = rows.len();
        let mut changed = 0;
        for (row, kek_id, wrapped) in rows {
            if let Some((new, new_kek)) = self.ring.rewrap(&kek_id, &wrapped)? {
                if self
                    .store
                    .swap_wrapped(&row, &wrapped, &new, &new_kek)
                    .await?
                {
                    changed += 1;
                }
            }
        }
        Ok((seen, changed))
    }
}
