//! Sealing and opening sanitized masters (issue 15). A master is the oriented, cropped,
//! sRGB, metadata-free square of a live avatar, kept so that new sizes, formats or a
//! better pipeline can be derived later without the user. It is sealed exactly like a
//! record (its own data key, wrapped under the active KEK) with an AAD that binds it to
//! its owner and generation, so a master copied to another owner or generation fails to
//! open.

use crate::{
    crypto::Sealed,
    domain::{avatar::AvatarRecord, ids::OwnerKey, record::RecordKey},
    profiles::{cas_backoff, now_ms, ProfileError, Profiles, CAS_RETRIES},
    store::StoreError,
};

/// The AAD of one generation's master.
pub fn master_aad(owner: &OwnerKey, generation: i64) -> Vec<u8> {
    [
        b"master.v1:".as_slice(),
        &owner.0,
        b":",
        generation.to_string().as_bytes(),
    ]
    .concat()
}

/// Seals the master of `generation`; the avatar commit stores it with the set it belongs
/// to (`Staged::master`).
pub fn seal_master(
    profiles: &Profiles,
    owner: &OwnerKey,
    generation: i64,
    encoded: &[u8],
) -> Sealed {
    profiles
        .ring()
        .seal(encoded, &master_aad(owner, generation))
}

/// Opens the master of `generation`: `Ok(None)` when none is kept, an error when it
/// fails its integrity check (tampering, or a row moved to another owner).
pub async fn open_master(
    profiles: &Profiles,
    owner: &OwnerKey,
    generation: i64,
) -> Result<Option<Vec<u8>>, ProfileError> {
    let Some(sealed) = profiles.store().get_master(owner, generation).await? else {
        return Ok(None);
    };
    Ok(Some(
        profiles
            .ring()
            .open(&sealed, &master_aad(owner, generation))?,
    ))
}

/// Compare-and-set loop on the avatar record that also makes exactly the images of the
/// new live set live, in one transaction (`MasterStore::commit_avatar_images`): a
/// re-derived set switches at once, never half. `f` sees the current record and returns
/// the next one, or `None` to stop (superseded meanwhile).
pub async fn commit_rederived<F>(
    profiles: &Profiles,
    owner: &OwnerKey,
    mut f: F,
) -> Result<Option<AvatarRecord>, ProfileError>
where
    F: FnMut(AvatarRecord) -> Option<AvatarRecord>,
{
    for attempt in 0..CAS_RETRIES {
        let Some((current, version)) = profiles
            .read::<AvatarRecord>(owner, RecordKey::Avatar)
            .await?
        else {
            return Ok(None);
        };
        let Some(next) = f(current) else {
            return Ok(None);
        };
        let ids = next
            .current
            .as_ref()
            .map(|live| live.image_ids())
            .unwrap_or_default();
        let sealed = profiles.seal_avatar(owner, &next)?;
        match profiles
            .store()
            .commit_avatar_images(owner, &sealed, version, &ids, now_ms())
            .await
        {
            Ok(()) => return Ok(Some(next)),
            Err(StoreError::Conflict) => cas_backoff(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ProfileError::Busy)
}
