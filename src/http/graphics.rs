//! Rendered default graphics for `/avatar/...`, cached by what determines them (a
//! [`Design`] and a size, never the request hash) in their own bounded cache, so a flood of
//! unknown hashes can neither make a node draw without end nor evict real avatars from
//! `avatar_cache`'s hot cache.
//!
//! Cells and plain cards (identicon, retro, color: one bit per pixel, fast deflate) take
//! microseconds and are drawn in place. The shaded drawings take milliseconds (a monster
//! at 512 px, tens), so they run on the blocking pool, at most one per core at a time: the
//! async workers keep answering cache hits and `__lbheartbeat__` while a flood of new
//! designs is drawn.
//! The fixed graphics (moocard, mp, blank) are drawn once per size and kept outside the
//! cache.

use std::sync::{Arc, OnceLock};

use axum::http::HeaderValue;
use tokio::sync::Semaphore;

use crate::{
    defaults::{self, DefaultKind, Design, RenderError},
    http::avatar_cache::{lru, served, LruCache, Served},
};

/// The cache of rendered defaults of one node.
pub struct Graphics {
    cache: LruCache<(Design, u32), Arc<Served>>,
    fixed: Vec<OnceLock<Arc<Served>>>,
    sizes: Vec<u32>,
    drawing: Semaphore,
    max_age: HeaderValue,
}

impl std::fmt::Debug for Graphics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graphics").finish_non_exhaustive()
    }
}

impl Graphics {
    /// An empty cache of at most `bytes` of renderings for the configured `sizes`.
    pub fn new(bytes: u64, sizes: &[u32], max_age: HeaderValue) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            cache: lru(bytes),
            fixed: (0..DefaultKind::ALL.len() * sizes.len())
                .map(|_| OnceLock::new())
                .collect(),
            sizes: sizes.to_vec(),
            drawing: Semaphore::new(cores),
            max_age,
        }
    }

    fn fixed_slot(&self, design: &Design, size: u32) -> Option<&OnceLock<Arc<Served>>> {
        if !design.kind.is_fixed() {
            return None;
        }
        let k = DefaultKind::ALL.iter().position(|&d| d == design.kind)?;
        let i = self.sizes.iter().position(|&s| s == size)?;
        self.fixed.get(k * self.sizes.len() + i)
    }

    /// The rendering of `design` at `size` (a configured size).
    pub async fn get(&self, design: Design, size: u32) -> Result<Arc<Served>, RenderError> {
        let slot = self.fixed_slot(&design, size);
        if let Some(hit) = slot.and_then(OnceLock::get) {
            return Ok(hit.clone());
        }
        let key = (design, size);
        if slot.is_none() {
            if let Some(hit) = self.cache.get(&key) {
                return Ok(hit);
            }
            if design.kind.is_cheap() {
                // Microseconds of drawing: cheaper here than a hand-off to the blocking
                // pool and back, and no worse for the other requests on this thread.
                let v = served(
                    defaults::render(&design, size)?,
                    "image/png",
                    None,
                    &self.max_age,
                );
                self.cache.insert(key, v.clone());
                return Ok(v);
            }
        }
        // Boxed: the miss path's state would otherwise bloat every request's future.
        Box::pin(self.draw(key, slot)).await
    }

    async fn draw(
        &self,
        key: (Design, u32),
        slot: Option<&OnceLock<Arc<Served>>>,
    ) -> Result<Arc<Served>, RenderError> {
        // Concurrent requests for one design wait for one drawing.
        let guard = match slot {
            Some(_) => None,
            None => match self.cache.get_value_or_guard_async(&key).await {
                Ok(hit) => return Ok(hit),
                Err(g) => Some(g),
            },
        };
        let permit = self
            .drawing
            .acquire()
            .await
            .map_err(|e| RenderError::Panicked(e.to_string()))?;
        let (design, size) = key;
        let png = tokio::task::spawn_blocking(move || defaults::render(&design, size))
            .await
            .map_err(|e| RenderError::Panicked(e.to_string()))??;
        drop(permit);
        let v = served(png, "image/png", None, &self.max_age);
        if let Some(g) = guard {
            let _ = g.insert(v.clone());
        }
        Ok(match slot {
            Some(cell) => cell.get_or_init(|| v).clone(),
            None => v,
        })
    }

    /// Renderings held and the bytes they weigh (for tests and metrics).
    pub fn usage(&self) -> (usize, u64) {
        (self.cache.len(), self.cache.weight())
    }
}
