//! In-memory caches behind the public reads (`/avatar/{hash}`, `/images/{id}`), so that a
//! hot 200 or 304 does no database round trip and no per-request formatting.
//!
//! - `hot`: (request hash, size) -> the live variant's bytes and header values (or "no
//!   avatar"), so a hit is one lookup; bounded by `avatars.cache_bytes` (weighed by size),
//!   expiring after `avatars.cache_ttl_secs` (checked against the request's start time).
//! - `images`: content id -> the same shared entries for `/images/{id}`, a quarter of the
//!   budget, same TTL so that a deleted profile's images leave memory on every node
//!   within the TTL.
//! - default graphics: in `graphics` (by design and size, its own bound).
//!
//! A lookup that misses goes through the chain of API.md §Public reads: the filter of
//! known aliases (most unknown hashes stop there, without a database round trip), the
//! circuit breaker, then the database bounded by `avatars.store_timeout_ms`. When the
//! store fails or is slow the last entry this node knew is served (stale-if-error), else
//! the caller serves a default with a short `max-age`.
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
        Arc,
    },
    time::{Duration, Instant},
};

use axum::http::HeaderValue;
use quick_cache::{sync::Cache, Weighter};

pub use super::served::Served;
pub(crate) use super::served::{served, SERVED_OVERHEAD};

use crate::{
    config::Config,
    defaults::Design,
    domain::derivation::ExtraFormat,
    domain::{
        avatar::AvatarRecord, email::Email, ids::AvatarHash, ids::OwnerKey, record::RecordKey,
    },
    http::{
        alias_filter::AliasFilter,
        breaker::{Breaker, Gate},
        formats::Wanted,
        graphics::Graphics,
    },
    profiles::{ProfileError, Profiles},
    store::StoreError,
};

/// The resolved answer for one (request hash, size).
struct Resolved {
    /// The variant served, or `None` when there is no avatar.
    served: Option<Arc<Served>>,
    bucket: usize,
    stamp: u64,
    /// When the entry stops being used (`avatars.cache_ttl_secs` after it was loaded).
    expires: Instant,
}

/// An `/images/{id}` entry, when it expires, and the image epoch it was loaded under.
type ImageEntry = (Arc<Served>, Instant, u64);

/// Weighs entries by the bytes they hold, so `avatars.cache_bytes` bounds memory.
#[derive(Clone, Copy)]
pub(crate) struct ByBytes;

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

impl Weighter<(Design, u32), Arc<Served>> for ByBytes {
    fn weight(&self, _: &(Design, u32), v: &Arc<Served>) -> u64 {
        (v.body.len() + SERVED_OVERHEAD) as u64
    }
}

type HotKey = ([u8; 33], u32);

/// The caches' hasher: randomly seeded per cache, so clients (who choose the hash bytes)
/// cannot aim at one bucket; several times cheaper than SipHash on these short keys.
type Hasher = foldhash::quality::RandomState;

/// A byte-bounded cache of this module's kind (also used by `http::graphics`).
pub(crate) type LruCache<K, V> = Cache<K, V, ByBytes, Hasher>;

/// Assumed mean entry size, for sizing the caches' tables (the byte bound is exact).
const TYPICAL_ENTRY: u64 = 16 << 10;

/// An empty cache bounded by `bytes`.
pub(crate) fn lru<K: Eq + std::hash::Hash, V: Clone>(bytes: u64) -> LruCache<K, V>
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
    /// Rendered default graphics.
    pub graphics: Graphics,
    /// Which aliases exist (kept current by `alias_filter::spawn_refresh`).
    pub filter: Arc<AliasFilter>,
    breaker: Arc<Breaker>,
    store_timeout: Duration,
    ttl: Duration,
    stamps: Box<[AtomicU64]>,
    /// Bumped by every invalidation: an `/images/{id}` entry loaded under an older epoch
    /// is asked for again, so an image this node replaced, deleted or took down answers
    /// 404 at once (the entries don't know their owner; writes are rare next to reads).
    image_epoch: AtomicU64,
    /// Configured sizes, ascending.
    sizes: Vec<u32>,
    /// `Cache-Control` of `/avatar/...` (`public, max-age=<avatars.max_age_secs>`).
    pub max_age: HeaderValue,
    /// `Cache-Control` of answers given while the store is down or slow.
    pub degraded_max_age: HeaderValue,
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The live variant.
    Found(Arc<Served>),
    /// No avatar for this hash.
    Missing,
    /// The store did not answer in time (or the breaker is open): the last variant this
    /// node knew for the hash, if any.
    Degraded(Option<Arc<Served>>),
}

/// A miss that outlived its time bound: reported like a pool timeout.
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

fn found(r: &Resolved) -> Lookup {
    match &r.served {
        Some(s) => Lookup::Found(s.clone()),
        None => Lookup::Missing,
    }
}

fn bucket_of(bytes: &[u8]) -> usize {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    (u64::from_le_bytes(b) % BUCKETS as u64) as usize
}

impl AvatarCache {
    /// Builds empty caches sized from `avatars.*` and `limits.sizes`.
    pub fn new(config: &Config) -> Self {
        let a = &config.avatars;
        let ttl = Duration::from_secs(a.cache_ttl_secs.max(1));
        let mut sizes = config.limits.sizes.clone();
        sizes.sort_unstable();
        sizes.dedup();
        let max_age = HeaderValue::from_str(&format!("public, max-age={}", a.max_age_secs))
            .unwrap_or(HeaderValue::from_static("public, max-age=300"));
        Self {
            hot: lru(a.cache_bytes),
            images: lru(a.cache_bytes / 4),
            graphics: Graphics::new(a.default_cache_bytes, &sizes, max_age.clone()),
            filter: Arc::new(AliasFilter::default()),
            breaker: Arc::new(Breaker::new(
                a.breaker_failures,
                Duration::from_millis(a.breaker_open_ms),
            )),
            store_timeout: Duration::from_millis(a.store_timeout_ms.max(1)),
            ttl,
            stamps: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            image_epoch: AtomicU64::new(0),
            sizes,
            max_age,
            degraded_max_age: HeaderValue::from_str(&format!(
                "public, max-age={}",
                a.degraded_max_age_secs
            ))
            .unwrap_or(HeaderValue::from_static("public, max-age=10")),
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

    /// The live avatar behind `hash` at `size` (already snapped). Only the live set of
    /// variants is read, so queued, processing and failed uploads keep serving the
    /// previous avatar. `now` is when the request started.
    pub async fn avatar(
        &self,
        profiles: &Profiles,
        hash: &AvatarHash,
        size: u32,
        now: Instant,
    ) -> Lookup {
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
    ) -> Lookup {
        let key = (key_of(hash), (size & 0xFFFF) | (u32::from(wanted.0) << 16));
        let mut stale = None;
        if let Some(hit) = self.hot.get(&key) {
            if self.stamp(hit.bucket) == hit.stamp {
                if now < hit.expires {
                    return found(&hit);
                }
                // Expired but not invalidated: kept in case the store fails now.
                stale = Some(hit);
            }
            self.hot.remove(&key);
        } else if !self.filter.may_contain(&hash.alias(profiles.ids())) {
            // No profile has this hash: no database round trip, nothing cached. While the
            // store is down the filter may be behind, so the answer is degraded (short
            // max-age) like every other answer given then.
            return if self.breaker.is_open() {
                Lookup::Degraded(None)
            } else {
                Lookup::Missing
            };
        }
        // Boxed: inline, the miss path's state (database futures) would make the future of
        // every request, hits included, kilobytes that are copied when it is spawned.
        Box::pin(self.load_avatar(profiles, hash, key, now, stale)).await
    }

    async fn load_avatar(
        &self,
        profiles: &Profiles,
        hash: &AvatarHash,
        key: HotKey,
        now: Instant,
        stale: Option<Arc<Resolved>>,
    ) -> Lookup {
        let degraded = |stale: Option<Arc<Resolved>>| {
            let served = stale.as_ref().and_then(|s| s.served.clone());
            // Put it back so the next request finds it too.
            if let Some(s) = stale {
                self.hot.insert(key, s);
            }
            metrics::counter!("moocard_avatar_degraded_total").increment(1);
            Lookup::Degraded(served)
        };
        if !self.store_open(profiles, now) {
            return degraded(stale);
        }
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
        let res: Result<Arc<Resolved>, ProfileError> =
            tokio::time::timeout(self.store_timeout, load)
                .await
                .unwrap_or_else(|_| Err(ProfileError::Store(timed_out())));
        match res {
            Ok(r) => {
                self.breaker.success();
                found(&r)
            }
            Err(ProfileError::Store(StoreError::Unavailable(_))) => {
                self.breaker.failure(now);
                degraded(stale)
            }
            Err(other) => {
                tracing::warn!(error = %other, "avatar lookup failed; serving a fallback");
                degraded(stale)
            }
        }
    }

    /// Whether a read may go to the store now: the breaker is closed. When it is open and a
    /// probe is due, the probe runs in the background and this read still does not wait.
    fn store_open(&self, profiles: &Profiles, now: Instant) -> bool {
        match self.breaker.gate(now) {
            Gate::Closed => true,
            Gate::Open => false,
            Gate::Probe => {
                self.probe(profiles);
                false
            }
        }
    }

    /// Checks in the background whether the store answers again, for the open breaker.
    fn probe(&self, profiles: &Profiles) {
        let (store, breaker, limit) = (
            profiles.store().clone(),
            self.breaker.clone(),
            self.store_timeout,
        );
        tokio::spawn(async move {
            match tokio::time::timeout(limit, store.ping()).await {
                Ok(Ok(())) => breaker.success(),
                _ => breaker.failure(Instant::now()),
            }
        });
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
        // The breaker that guards `/avatar` guards this too: a dead store costs a
        // 503 at once, not a pool timeout per request.
        if !self.store_open(profiles, now) {
            return Err(timed_out());
        }
        // Boxed for the reason given in `avatar`.
        let res = Box::pin(tokio::time::timeout(
            self.store_timeout,
            self.fetch_image(profiles, id, now),
        ))
        .await
        .unwrap_or_else(|_| Err(timed_out()));
        match &res {
            Ok(_) => self.breaker.success(),
            Err(StoreError::Unavailable(_)) => self.breaker.failure(now),
            Err(_) => {}
        }
        res
    }

    fn cached_image(&self, id: &str, now: Instant) -> Option<Arc<Served>> {
        let (served, expires, epoch) = self.images.get(id)?;
        (now < expires && epoch == self.image_epoch.load(Ordering::Acquire)).then_some(served)
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
        // Read before the database, like the stamps in `resolve`.
        let epoch = self.image_epoch.load(Ordering::Acquire);
        let Some(img) = profiles.store().get_image(id).await? else {
            return Ok(None);
        };
        let s = served(img.bytes, &img.content_type, Some(id), &self.max_age);
        self.images
            .insert(id.to_owned(), (s.clone(), now + self.ttl, epoch));
        Ok(Some(s))
    }

    /// Forgets everything cached about an email's avatar on this node: the answers for
    /// its three lookup hashes and anything resolved through its owner key.
    pub fn invalidate_email(&self, profiles: &Profiles, email: &Email) {
        for hash in AvatarHash::all_for(profiles.ids(), email) {
            self.bump(bucket_of(&key_of(&hash)[1..]));
        }
        self.learn_email(profiles, email);
        self.invalidate_owner(&profiles.owner(email));
    }

    /// Tells the filter of known aliases about an email's profile at once (it may be
    /// new), rather than at the next refresh. Called on every change made through this
    /// node; callers that write profiles some other way call it themselves.
    pub fn learn_email(&self, profiles: &Profiles, email: &Email) {
        for hash in AvatarHash::all_for(profiles.ids(), email) {
            self.filter.insert(&hash.alias(profiles.ids()));
        }
    }

    /// Forgets what was resolved through an owner key (for callers that only know the
    /// owner, such as a worker embedded in this process).
    pub fn invalidate_owner(&self, owner: &OwnerKey) {
        self.bump(bucket_of(&owner.0));
        self.image_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets the answers cached for one request hash (an operator takedown by hash).
    pub fn invalidate_hash(&self, hash: &AvatarHash) {
        self.bump(bucket_of(&key_of(hash)[1..]));
        self.image_epoch.fetch_add(1, Ordering::AcqRel);
    }
}
