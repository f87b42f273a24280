//! The filter of known aliases: lets a node answer "no avatar for this hash" without a
//! database round trip, which is what most `/avatar` requests ask (most people signing in
//! never uploaded a picture).
//!
//! A Bloom filter of every alias in the database (about 12 bits per alias, under 1% false
//! positives). "Not in the filter" means no profile has that hash. "Maybe" goes on to the
//! cache and the database, which stay the source of truth. A background task loads
//! every alias at start-up, then reads the aliases logged since (`alias_log`) every
//! `avatars.filter_refresh_ms`, so an avatar added on another node shows here within that
//! time; this node's own new aliases go in at once. Deleted profiles stay "maybe" until
//! the next rebuild, which happens when the filter outgrows its sizing.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, RwLock, Weak,
    },
    time::Duration,
};

use crate::{db::DbPool, store::alias_feed};

const HASHES: u64 = 7;
/// Sequence numbers re-read on each refresh: a MySQL insert can commit after one with a
/// higher number, and re-reading (inserts are idempotent) catches it.
const REREAD: i64 = 256;
const PAGE: u32 = 10_000;

struct Bloom {
    words: Box<[AtomicU64]>,
    mask: u64,
    capacity: u64,
    count: AtomicU64,
}

impl Bloom {
    fn with_capacity(capacity: u64) -> Self {
        let bits = (capacity.max(1 << 12) * 12).next_power_of_two();
        Self {
            words: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            mask: bits - 1,
            capacity: bits / 12,
            count: AtomicU64::new(0),
        }
    }

    /// Bit positions of an alias: it is an HMAC output already, so its bytes are uniform
    /// and serve as the two hashes of double hashing directly.
    fn positions(&self, alias: &[u8; 32]) -> impl Iterator<Item = u64> + '_ {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&alias[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let (h1, h2) = (word(0), word(8) | 1);
        (0..HASHES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & self.mask)
    }

    fn insert(&self, alias: &[u8; 32]) {
        for p in self.positions(alias) {
            self.words[(p / 64) as usize].fetch_or(1 << (p % 64), Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn contains(&self, alias: &[u8; 32]) -> bool {
        self.positions(alias)
            .all(|p| self.words[(p / 64) as usize].load(Ordering::Relaxed) & (1 << (p % 64)) != 0)
    }

    fn full(&self) -> bool {
        self.count.load(Ordering::Relaxed) > self.capacity
    }
}

/// The filter of one node.
pub struct AliasFilter {
    bloom: RwLock<Arc<Bloom>>,
    ready: AtomicBool,
}

impl std::fmt::Debug for AliasFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AliasFilter")
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for AliasFilter {
    fn default() -> Self {
        Self {
            bloom: RwLock::new(Arc::new(Bloom::with_capacity(0))),
            ready: AtomicBool::new(false),
        }
    }
}

impl AliasFilter {
    fn current(&self) -> Arc<Bloom> {
        self.bloom
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// False only when no profile has `alias` (as of the last refresh); true until the
    /// first load has finished.
    pub fn may_contain(&self, alias: &[u8; 32]) -> bool {
        !self.ready.load(Ordering::Acquire) || self.current().contains(alias)
    }

    /// Adds aliases this node just wrote.
    pub fn insert(&self, alias: &[u8; 32]) {
        self.current().insert(alias);
    }

    /// Whether the first load has finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Loads every alias into a new filter and swaps it in; returns the sequence number
    /// the refresh continues from.
    async fn rebuild(&self, pool: &DbPool) -> Result<i64, crate::store::StoreError> {
        // The log head is read first: aliases added during the scan are read again by the
        // next refresh rather than missed.
        let head = alias_feed::head(pool).await?;
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = alias_feed::scan(pool, after, PAGE).await?;
            after = page.last().copied();
            let done = page.len() < PAGE as usize;
            all.extend(page);
            if done {
                break;
            }
        }
        let bloom = Bloom::with_capacity(all.len() as u64 * 2);
        for a in &all {
            bloom.insert(a);
        }
        *self
            .bloom
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(bloom);
        self.ready.store(true, Ordering::Release);
        tracing::info!(aliases = all.len(), "loaded the filter of known aliases");
        Ok(head)
    }

    /// Reads the aliases logged after `cursor`; returns the new cursor.
    async fn refresh(&self, pool: &DbPool, cursor: i64) -> Result<i64, crate::store::StoreError> {
        let bloom = self.current();
        let mut from = cursor.saturating_sub(REREAD).max(0);
        let mut cursor = cursor;
        loop {
            let rows = alias_feed::since(pool, from, PAGE).await?;
            for (seq, alias) in &rows {
                bloom.insert(alias);
                cursor = cursor.max(*seq);
                from = *seq;
            }
            if rows.len() < PAGE as usize {
                return Ok(cursor);
            }
        }
    }
}

/// Keeps `filter` current from `pool` every `every` until the filter is dropped. Errors
/// (the database is down) are retried on the next tick; the filter keeps what it had.
pub fn spawn_refresh(filter: Weak<AliasFilter>, pool: DbPool, every: Duration) {
    tokio::spawn(async move {
        let mut cursor: Option<i64> = None;
        loop {
            let Some(f) = filter.upgrade() else { return };
            let rebuild = cursor.is_none() || f.current().full();
            let step = match (rebuild, cursor) {
                (false, Some(c)) => f.refresh(&pool, c).await,
                _ => f.rebuild(&pool).await,
            };
            match step {
                Ok(c) => cursor = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "could not refresh the filter of known aliases")
                }
            }
            drop(f);
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bloom_has_no_false_negatives_and_few_false_positives() {
        let b = Bloom::with_capacity(10_000);
        let alias = |i: u32| {
            use sha2::Digest as _;
            let d: [u8; 32] = sha2::Sha256::digest(i.to_le_bytes()).into();
            d
        };
        for i in 0..10_000 {
            b.insert(&alias(i));
        }
        assert!((0..10_000).all(|i| b.contains(&alias(i))));
        let fp = (10_000..110_000).filter(|&i| b.contains(&alias(i))).count();
        assert!(fp < 1_500, "{fp} false positives in 100000");
    }
}
