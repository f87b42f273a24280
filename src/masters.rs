//! Sealing and opening sanitized masters (issue 15). A master is the oriented, cropped,
//! sRGB, metadata-free square of a live avatar, kept so that new sizes, formats or a
//! better pipeline can be derived later without the user. It is sealed exactly like a
//! record (its own data key, wrapped under the active KEK) with an AAD that binds it to
//! its owner and generation, so a master copied to another owner or generation fails to
//! open.

use crate::{
    domain::ids::OwnerKey,
    profiles::{now_ms, ProfileError, Profiles},
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

/// Seals and stores the master of `generation` (not yet tied to the live set: the
/// avatar commit keeps only the live generation's master).
pub async fn put_master(
    profiles: &Profiles,
    owner: &OwnerKey,
    generation: i64,
    encoded: &[u8],
) -> Result<(), ProfileError> {
    let sealed = profiles
        .ring()
        .seal(encoded, &master_aad(owner, generation));
    Ok(profiles
        .store()
        .put_master(owner, generation, &sealed, now_ms())
        .await?)
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
