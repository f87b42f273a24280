//! Operator actions on the database, shared by `/v1/admin/...` and the `moocard admin`
//! CLI: takedowns (the default is served, the images answer 404), upload blocks, restore
//! and list; plus the per-owner upload counts that every API node shares.
//!
//! A takedown is recorded against the owner's keyed lookup aliases (`takedown_aliases`),
//! never against an email or a hash. The aliases are derived from the email, so they are
//! the same after the profile is deleted and created again, and a re-upload changes
//! nothing: the public lookup (`store::resolve_alias`) and `/images/{id}`
//! (`store::get_image`) skip owners under a takedown.

pub mod store;

use crate::{
    db::DbPool,
    domain::{
        email::Email,
        ids::{random_id, AvatarHash, OwnerKey},
    },
    profiles::{now_ms, Profiles},
    store::StoreError,
};

pub use store::TakedownRow;

/// What an operator names: an email, or a public lookup hash or id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A normalized email.
    Email(Email),
    /// An MD5, SHA-256 or public id.
    Hash(AvatarHash),
}

impl Target {
    /// Parses `md5 | sha256 | public-id | email` (hex is case-insensitive).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.contains('@') {
            return Email::parse(s).map(Self::Email).map_err(|e| e.to_string());
        }
        AvatarHash::parse(s).map(Self::Hash).ok_or_else(|| {
            "the target must be an email, an MD5 (32 hex), a SHA-256 (64 hex) or a public id (40 hex)"
                .to_owned()
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Hash(AvatarHash::Md5(_)) => "md5",
            Self::Hash(AvatarHash::Sha256(_)) => "sha256",
            Self::Hash(AvatarHash::Public(_)) => "public_id",
        }
    }
}

/// The aliases and owner a target covers.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Every keyed alias to record or look up.
    pub aliases: Vec<[u8; 32]>,
    /// The owner, when known (an email, or a hash some profile has).
    pub owner: Option<OwnerKey>,
    /// The hashes whose cached answers must be dropped on this node.
    pub hashes: Vec<AvatarHash>,
}

/// Operator actions. Cheap to clone.
#[derive(Clone)]
pub struct Operators {
    pool: DbPool,
    profiles: Profiles,
}

impl Operators {
    /// Builds the service.
    pub fn new(pool: DbPool, profiles: Profiles) -> Self {
        Self { pool, profiles }
    }

    /// The aliases, owner and hashes of a target.
    pub async fn resolve(&self, target: &Target) -> Result<Resolved, StoreError> {
        let ids = self.profiles.ids();
        match target {
            Target::Email(email) => {
                let hashes = AvatarHash::all_for(ids, email).to_vec();
                Ok(Resolved {
                    aliases: hashes.iter().map(|h| h.alias(ids)).collect(),
                    owner: Some(self.profiles.owner(email)),
                    hashes,
                })
            }
            Target::Hash(hash) => {
                let alias = hash.alias(ids);
                let owner = store::owner_of_alias(&self.pool, &alias).await?;
                let mut aliases = vec![alias];
                if let Some(owner) = &owner {
                    for a in store::aliases_of(&self.pool, owner).await? {
                        if !aliases.contains(&a) {
                            aliases.push(a);
                        }
                    }
                }
                Ok(Resolved {
                    aliases,
                    owner,
                    hashes: vec![*hash],
                })
            }
        }
    }

    /// The short keyed id a takedown is listed under.
    fn subject(&self, r: &Resolved) -> String {
        let ids = self.profiles.ids();
        let mac = match &r.owner {
            Some(owner) => ids.mac("audit.owner.v1", &owner.0),
            None => ids.mac("audit.alias.v1", &r.aliases[0]),
        };
        hex::encode(&mac[..6])
    }

    /// Takes a target down, blocking its uploads until `blocked_until_ms` if given.
    pub async fn takedown(
        &self,
        target: &Target,
        reason: &str,
        actor: &str,
        blocked_until_ms: Option<i64>,
    ) -> Result<(TakedownRow, Resolved), StoreError> {
        let resolved = self.resolve(target).await?;
        let mut row = TakedownRow {
            id: random_id(),
            subject: self.subject(&resolved),
            target_kind: target.kind().into(),
            reason: reason.to_owned(),
            actor: actor.to_owned(),
            created_at_ms: now_ms(),
            blocked_until_ms,
        };
        row.id = store::put_takedown(&self.pool, &resolved.aliases, &row).await?;
        Ok((row, resolved))
    }

    /// Lifts the takedowns of a target; how many there were.
    pub async fn restore(&self, target: &Target) -> Result<(u64, Resolved), StoreError> {
        let resolved = self.resolve(target).await?;
        let n = store::delete_takedowns(&self.pool, &resolved.aliases).await?;
        Ok((n, resolved))
    }

    /// Every takedown, newest first.
    pub async fn list(&self) -> Result<Vec<TakedownRow>, StoreError> {
        store::list_takedowns(&self.pool).await
    }

    /// Until when (ms since the epoch) uploads of this email are blocked, if they are now.
    pub async fn upload_block(&self, email: &Email) -> Result<Option<i64>, StoreError> {
        let ids = self.profiles.ids();
        let aliases = AvatarHash::all_for(ids, email).map(|h| h.alias(ids));
        let until = store::blocked_until(&self.pool, &aliases).await?;
        Ok(until.filter(|&t| t > now_ms()))
    }

    /// Counts one upload of `owner` against `(limit, window_ms)` pairs shared by every
    /// node; on refusal, which pair and the milliseconds until one more fits.
    pub async fn count_upload(
        &self,
        owner: &OwnerKey,
        windows: &[(u32, i64)],
    ) -> Result<Result<(), (usize, i64)>, StoreError> {
        store::count_upload(&self.pool, owner, &random_id(), now_ms(), windows).await
    }
}

/// Parses a duration such as `90s`, `30m`, `12h`, `7d` or `2w` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m, 12h, 7d or 2w"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{s:?}: the unit must be s, m, h, d or w")),
    };
    n.checked_mul(secs)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// Milliseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_targets() {
        assert_eq!(parse_duration("90").map(|d| d.as_secs()), Ok(90));
        assert_eq!(parse_duration("7d").map(|d| d.as_secs()), Ok(604_800));
        assert!(parse_duration("7y").is_err());
        assert!(parse_duration("").is_err());
        assert!(matches!(Target::parse("A@b.c"), Ok(Target::Email(_))));
        assert!(matches!(
            Target::parse("0bc83cb571cd1c50ba6f3e8a78ef1346"),
            Ok(Target::Hash(AvatarHash::Md5(_)))
        ));
        assert!(Target::parse("nope").is_err());
    }
}
