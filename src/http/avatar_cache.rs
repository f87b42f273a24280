//! In-memory caches behind the public reads (`/avatar/{hash}`, `/images/{id}`), so that a
//! hot 200 or 304 does no database round trip and no per-request formatting.
//!
//! - `hot`: (request hash, size) -> the live variant's bytes and header values (or "no
//!   avatar"), so a hit is one lookup; bounded by `avatars.cache_bytes` (weighed by size),
//!   expiring after `avatars.cache_ttl_secs` (checked against the request's start time).
//! - `images`: content id -> the same shared entries for `/images/{id}`, a quarter of the
//!   budget, same TTL so that a deleted profile's images leave memory on every node
//!   within the TTL.
//! - default graphics: rendered once per (kind, size); identicons in a bounded cache.
//!
//! Invalidation is synchronous and lock-free: entries carry the value of a stamp bucket
//! (by owner, or by request hash for "no avatar" entries) read *before* the database was
//! asked; `invalidate_*` bumps the buckets, and a hit whose stamp moved counts as a miss.
//! This node sees its own changes at once; other nodes within the TTL (the database stays
//! the source of truth).
//!
//! The caches are `quick_cache` (sharded, CLOCK-Pro eviction): a hit is a shard read lock
//! and one probe. moka's hits (read-op log, housekeeping, its own clock read) cost about
//! three times as much and were the largest share of our own code on a hot 304
//! (bench/SERVING.md).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, OnceLock,
    },
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    http::{header, HeaderMap, HeaderValue},
};
use quick_cache::{sync::Cache, Weighter};
use sha2::{Digest as _, Sha256};

use crate::{
    config::Config,
    defaults::{self, DefaultKind, RenderError},
    domain::derivation::ExtraFormat,
    domain::{
        avatar::AvatarRecord, email::Email, ids::AvatarHash, ids::OwnerKey, record::RecordKey,
    },
    http::error::ApiError,
    http::formats::Wanted,
    profiles::{ProfileError, Profiles},
    store::StoreError,
};

/// A response body with its header values, built once and shared.
#[derive(Debug)]
pub struct Served {
    /// The image bytes (cloning is a reference-count bump).
    pub body: Bytes,
    /// `image/jpeg` or `image/png`.
    pub content_type: HeaderValue,
    /// Strong entity tag, quoted.
    pub etag: HeaderValue,
    /// The headers of `/avatar/...`'s 200 and 304 (indexed by "not modified"): cloning a
    /// built map costs a fraction of building it, on the hottest path there is.
    pub avatar_headers: [HeaderMap; 2],
}

/// Memory a [`Served`] takes besides its body (its header maps), for the cache weighers.
const SERVED_OVERHEAD: usize = 1536;

impl Served {
    /// The headers of a public image answer: a 200 (with `Content-Type`) or a 304.
    pub fn headers(&self, cache_control: &HeaderValue, not_modified: bool) -> HeaderMap {
        image_headers(&self.content_type, &self.etag, cache_control, not_modified)
    }
}

fn image_headers(
    content_type: &HeaderValue,
    etag: &HeaderValue,
    cache_control: &HeaderValue,
    not_modified: bool,
) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(6);
    if !not_modified {
        h.insert(header::CONTENT_TYPE, content_type.clone());
    }
    h.insert(header::ETAG, etag.clone());
    h.insert(header::CACHE_CONTROL, cache_control.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h
}

/// The resolved answer for one (request hash, size).
struct Resolved {
    /// The variant served, or `None` when there is no avatar.
    served: Option<Arc<Served>>,
    bucket: usize,
    stamp: u64,
    /// When the entry stops being used (`avatars.cache_ttl_secs` after it was loaded).
    expires: Instant,
}

/// An `/images/{id}` entry and when it expires.
type ImageEntry = (Arc<Served>, Instant);

/// Weighs entries by the bytes they hold, so `avatars.cache_bytes` bounds memory.
#[derive(Clone, Copy)]
struct ByBytes;

impl Weighter<HotKey, Arc<Resolved>> for ByBytes {
    fn weight(&self, _: &HotKey, v: &Arc<Resolved>) -> u64 {
        (v.served.as_ref().map_or(0, |s| s.body.len()) + SERVED_OVERHEAD) as u64
    }
}

impl Weighter<String, ImageEntry> for ByBytes {
    fn weight(&self, k: &String, v: &ImageEntry) -> u64 {
        (v.0.body.len() + k.len() + SERVED_OVERHEAD) as u64
    }
}

impl Weighter<(u128, u32), Arc<Served>> for ByBytes {
    fn weight(&self, _: &(u128, u32), v: &Arc<Served>) -> u64 {
        (v.body.len() + SERVED_OVERHEAD) as u64
    }
}

type HotKey = ([u8; 33], u32);

/// The caches' hasher: randomly seeded per cache, so clients (who choose the hash bytes)
/// cannot aim at one bucket; several times cheaper than SipHash on these short keys.
type Hasher = foldhash::quality::RandomState;

type LruCache<K, V> = Cache<K, V, ByBytes, Hasher>;

/// Assumed mean entry size, for sizing the caches' tables (the byte bound is exact).
const TYPICAL_ENTRY: u64 = 16 << 10;

fn cache<K: Eq + std::hash::Hash, V: Clone>(bytes: u64) -> LruCache<K, V>
where
    ByBytes: Weighter<K, V>,
{
    let items = usize::try_from((bytes / TYPICAL_ENTRY).clamp(64, 1 << 20)).unwrap_or(1 << 20);
    Cache::with(
        items,
        bytes.max(1),
        ByBytes,
        Hasher::default(),
        Default::default(),
    )
}

const BUCKETS: usize = 4096;

/// The caches of one node. Shared by every handler through `AppState`.
pub struct AvatarCache {
    hot: LruCache<HotKey, Arc<Resolved>>,
    images: LruCache<String, ImageEntry>,
    identicons: LruCache<(u128, u32), Arc<Served>>,
    ttl: Duration,
    drawn: Vec<OnceLock<Arc<Served>>>,
    stamps: Box<[AtomicU64]>,
    /// Configured sizes, ascending.
    sizes: Vec<u32>,
    /// `Cache-Control` of `/avatar/...` (`public, max-age=<avatars.max_age_secs>`).
    pub max_age: HeaderValue,
    /// Bound on a cache miss's database work (the public routes have no timeout layer).
    db_timeout: Duration,
}

/// A miss that outlived `server.request_timeout_secs`: reported like a pool timeout (503).
fn timed_out() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolTimedOut)
}

impl std::fmt::Debug for AvatarCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvatarCache").finish_non_exhaustive()
    }
}

/// The cache key of a request hash: its kind and bytes (never stored, never logged).
fn key_of(hash: &AvatarHash) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = match hash {
        AvatarHash::Md5(_) => 1,
        AvatarHash::Sha256(_) => 2,
        AvatarHash::Public(_) => 3,
    };
    let b = hash.bytes();
    k[1..1 + b.len()].copy_from_slice(b);
    k
}

fn bucket_of(bytes: &[u8]) -> usize {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    (u64::from_le_bytes(b) % BUCKETS as u64) as usize
}

/// A strong ETag: the content id when it is a plain token, else a digest of the bytes.
fn etag_for(id: Option<&str>, bytes: &[u8]) -> HeaderValue {
    let token = match id {
        Some(id)
            if !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            id.to_owned()
        }
        _ => hex::encode(&Sha256::digest(bytes)[..12]),
    };
    HeaderValue::from_str(&format!("\"{token}\"")).unwrap_or(HeaderValue::from_static("\"x\""))
}

fn served(
    bytes: Vec<u8>,
    content_type: &str,
    id: Option<&str>,
    max_age: &HeaderValue,
) -> Arc<Served> {
    let etag = etag_for(id, &bytes);
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let avatar_headers = [false, true].map(|nm| image_headers(&content_type, &etag, max_age, nm));
    Arc::new(Served {
        body: Bytes::from(bytes),
        content_type,
        etag,
        avatar_headers,
    })
}

impl AvatarCache {
    /// Builds empty caches sized from `avatars.*` and `limits.sizes`.
    pub fn new(config: &Config) -> Self {
        let a = &config.avatars;
        let ttl = Duration::from_secs(a.cache_ttl_secs.max(1));
        let mut sizes = config.limits.sizes.clone();
        sizes.sort_unstable();
        sizes.dedup();
        Self {
            hot: cache(a.cache_bytes),
            images: cache(a.cache_bytes / 4),
            identicons: cache((a.cache_bytes / 8).max(1 << 20)),
            ttl,
            drawn: (0..DefaultKind::ALL.len() * sizes.len())
                .map(|_| OnceLock::new())
                .collect(),
            stamps: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sizes,
            max_age: HeaderValue::from_str(&format!("public, max-age={}", a.max_age_secs))
                .unwrap_or(HeaderValue::from_static("public, max-age=300")),
            db_timeout: config.request_timeout(),
        }
    }

    /// The smallest configured size >= `requested`, or the largest (API.md §Public reads).
    pub fn snap(&self, requested: u32) -> u32 {
        self.sizes
            .iter()
            .copied()
            .find(|&s| s >= requested)
            .or_else(|| self.sizes.last().copied())
            .unwrap_or(requested)
    }

    fn stamp(&self, bucket: usize) -> u64 {
        self.stamps[bucket].load(Ordering::Acquire)
    }

    fn bump(&self, bucket: usize) {
        self.stamps[bucket].fetch_add(1, Ordering::AcqRel);
    }

    /// The live avatar behind `hash` at `size` (already snapped), or `None` when there is
    /// none. Only the live set of variants is read, so queued, processing and failed
    /// uploads keep serving the previous avatar. `now` is when the request started.
    pub async fn avatar(
        &self,
        profiles: &Profiles,
        hash: &AvatarHash,
        size: u32,
        now: Instant,
    ) -> Result<Option<Arc<Served>>, ApiError> {
        self.avatar_as(profiles, hash, size, Wanted::BASE, now)
            .await
    }

    /// [`Self::avatar`] in one of the `wanted` extra formats when the set has it, else
    /// JPEG/PNG (issue 15). The formats ride in the key's high bits (sizes fit in 16).
    pub async fn avatar_as(
        &self,
        profiles: &Profiles,
        hash: &AvatarHash,
        size: u32,
        wanted: Wanted,
        now: Instant,
    ) -> Result<Option<Arc<Served>>, ApiError> {
        let key = (key_of(hash), (size & 0xFFFF) | (u32::from(wanted.0) << 16));
        if let Some(hit) = self.hot.get(&key) {
            if self.stamp(hit.bucket) == hit.stamp && now < hit.expires {
                return Ok(hit.served.clone());
            }
            self.hot.remove(&key);
        }
        // Boxed: inline, the miss path's state (database futures) would make the future of
        // every request, hits included, kilobytes that are copied when it is spawned.
        Box::pin(self.load_avatar(profiles, hash, key, now)).await
    }

    async fn load_avatar(
        &self,
        profiles: &Profiles,
        hash: &AvatarHash,
        key: HotKey,
        now: Instant,
    ) -> Result<Option<Arc<Served>>, ApiError> {
        // Concurrent misses on one key (a hot avatar whose entry just expired) share one
        // database read: the first holds the key's placeholder, the others wait for it.
        // The timeout covers the wait too, so no request waits longer than a database
        // read may take, whoever is doing it.
        let load = async {
            match self.hot.get_value_or_guard_async(&key).await {
                Ok(filled) => Ok(filled),
                Err(guard) => {
                    let r = self.resolve(profiles, hash, &key, now).await?;
                    let _ = guard.insert(r.clone());
                    Ok(r)
                }
            }
        };
        let res: Result<Arc<Resolved>, ProfileError> = tokio::time::timeout(self.db_timeout, load)
            .await
            .unwrap_or_else(|_| Err(ProfileError::Store(timed_out())));
        match res {
            Ok(r) => Ok(r.served.clone()),
            Err(ProfileError::Store(StoreError::Unavailable(_))) => Err(ApiError::Unavailable(
                "the database is unavailable; try again shortly".into(),
            )),
            Err(other) => Err(ApiError::Internal(other.to_string())),
        }
    }

    async fn resolve(
        &self,
        profiles: &Profiles,
        hash: &AvatarHash,
        key: &HotKey,
        now: Instant,
    ) -> Result<Arc<Resolved>, ProfileError> {
        let expires = now + self.ttl;
        // Stamps are read before the database so that a change committed meanwhile
        // (which bumps the stamp after writing) makes this entry stale at once.
        let hash_bucket = bucket_of(&key.0[1..]);
        let hash_stamp = self.stamp(hash_bucket);
        let none = |bucket, stamp| {
            Arc::new(Resolved {
                served: None,
                bucket,
                stamp,
                expires,
            })
        };
        let store = profiles.store();
        let Some(owner) = store.resolve_alias(&hash.alias(profiles.ids())).await? else {
            return Ok(none(hash_bucket, hash_stamp));
        };
        let bucket = bucket_of(&owner.0);
        let stamp = self.stamp(bucket);
        let live = profiles
            .read::<AvatarRecord>(&owner, RecordKey::Avatar)
            .await?
            .and_then(|(rec, _)| rec.current);
        // The variant for the size, or the nearest larger one (else the largest) if the
        // configured sizes changed after this avatar was processed.
        let (size, wanted) = (key.1 & 0xFFFF, Wanted((key.1 >> 16) as u8));
        let id = live.and_then(|live| {
            let extra = ExtraFormat::ALL
                .into_iter()
                .filter(|f| wanted.accepts(*f))
                .find_map(|f| live.formats.get(f.extension()));
            let v = extra.unwrap_or(&live.variants);
            let pick = v.range(size..).next().or_else(|| v.iter().next_back());
            pick.map(|(_, v)| v.id.clone())
        });
        let served = match id {
            Some(id) => self.fetch_image(profiles, &id, now).await?,
            None => None,
        };
        Ok(Arc::new(Resolved {
            served,
            bucket,
            stamp,
            expires,
        }))
    }

    /// One stored variant by content id (immutable content, cached by id). `now` is when
    /// the request started.
    pub async fn image(
        &self,
        profiles: &Profiles,
        id: &str,
        now: Instant,
    ) -> Result<Option<Arc<Served>>, StoreError> {
        if let Some(hit) = self.cached_image(id, now) {
            return Ok(Some(hit));
        }
        // Boxed for the reason given in `avatar`.
        Box::pin(tokio::time::timeout(
            self.db_timeout,
            self.fetch_image(profiles, id, now),
        ))
        .await
        .map_err(|_| timed_out())?
    }

    fn cached_image(&self, id: &str, now: Instant) -> Option<Arc<Served>> {
        let (served, expires) = self.images.get(id)?;
        (now < expires).then_some(served)
    }

    async fn fetch_image(
        &self,
        profiles: &Profiles,
        id: &str,
        now: Instant,
    ) -> Result<Option<Arc<Served>>, StoreError> {
        if let Some(hit) = self.cached_image(id, now) {
            return Ok(Some(hit));
        }
        let Some(img) = profiles.store().get_image(id).await? else {
            return Ok(None);
        };
        let s = served(img.bytes, &img.content_type, Some(id), &self.max_age);
        self.images
            .insert(id.to_owned(), (s.clone(), now + self.ttl));
        Ok(Some(s))
    }

    /// A default graphic at `size` (a configured size), rendered on first use.
    /// `seed` (16+ bytes of the request hash) picks the identicon.
    pub async fn default_graphic(
        &self,
        kind: DefaultKind,
        size: u32,
        seed: &[u8],
    ) -> Result<Arc<Served>, RenderError> {
        if kind == DefaultKind::Identicon {
            let mut s = [0u8; 16];
            let n = seed.len().min(16);
            s[..n].copy_from_slice(&seed[..n]);
            let key = (u128::from_le_bytes(s), size);
            if let Some(hit) = self.identicons.get(&key) {
                return Ok(hit);
            }
            let v = served(
                defaults::render(kind, size, &s)?,
                "image/png",
                None,
                &self.max_age,
            );
            self.identicons.insert(key, v.clone());
            return Ok(v);
        }
        let k = DefaultKind::ALL
            .iter()
            .position(|&d| d == kind)
            .unwrap_or(0);
        let slot = self
            .sizes
            .iter()
            .position(|&s| s == size)
            .and_then(|i| self.drawn.get(k * self.sizes.len() + i));
        if let Some(hit) = slot.and_then(OnceLock::get) {
            return Ok(hit.clone());
        }
        // Two racing first requests may both render; one result is kept. Cheaper than
        // making every later request go through a lock. The drawing takes up to ~100 ms
        // at 512 px, so it runs off the async workers (once per kind and size).
        Box::pin(self.draw(kind, size, seed.to_vec(), slot)).await
    }

    async fn draw(
        &self,
        kind: DefaultKind,
        size: u32,
        seed: Vec<u8>,
        slot: Option<&OnceLock<Arc<Served>>>,
    ) -> Result<Arc<Served>, RenderError> {
        let png = tokio::task::spawn_blocking(move || defaults::render(kind, size, &seed))
            .await
            .map_err(|e| RenderError::Panicked(e.to_string()))??;
        let v = served(png, "image/png", None, &self.max_age);
        Ok(match slot {
            Some(cell) => cell.get_or_init(|| v).clone(),
            None => v,
        })
    }

    /// Forgets everything cached about an email's avatar on this node: the answers for
    /// its three lookup hashes and anything resolved through its owner key.
    pub fn invalidate_email(&self, profiles: &Profiles, email: &Email) {
        for hash in AvatarHash::all_for(profiles.ids(), email) {
            self.bump(bucket_of(&key_of(&hash)[1..]));
        }
        self.invalidate_owner(&profiles.owner(email));
    }

    /// Forgets what was resolved through an owner key (for callers that only know the
    /// owner, such as a worker embedded in this process).
    pub fn invalidate_owner(&self, owner: &OwnerKey) {
        self.bump(bucket_of(&owner.0));
    }
}
