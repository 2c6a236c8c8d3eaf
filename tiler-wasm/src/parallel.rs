//! The whole pyramid on several threads (natively; wasm has none).
//!
//! Tiles are handed out largest level first from one shared counter. The
//! calling thread first shrinks the missing levels one after another, so that
//! building them overlaps with the other threads encoding the full-size level,
//! then encodes tiles as well. Tile bytes are the same as the sequential walk's;
//! only the order in which they reach the callback differs.

use crate::bitmap::Bitmap;
use crate::dzi::TileFormat;
use crate::encode;
use crate::error::{Error, Result};
use crate::layout::{Layout, TileAddr};
use crate::pyramid::{shrink, Pyramid};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// What the tiles are made of and how.
pub(crate) struct Job<'a> {
    pub pyramid: &'a Pyramid,
    pub format: TileFormat,
    pub quality: u8,
}

/// Encodes every tile of `job` on `threads` threads (the caller's among them),
/// handing each to `f` from whichever thread made it; stops at the first error.
///
/// Returns the outcome and the levels built on the way, for the caller to keep.
pub(crate) fn walk<E, F>(
    job: &Job<'_>,
    threads: usize,
    f: &F,
) -> (Result<(), E>, Vec<(u32, Bitmap)>)
where
    E: From<Error> + Send,
    F: Fn(TileAddr, Vec<u8>) -> Result<(), E> + Sync,
{
    let layout = *job.pyramid.layout();
    let slots: Vec<Slot<'_>> = (0..layout.level_count())
        .map(|level| match job.pyramid.held(level) {
            Some(bitmap) => Slot::Held(bitmap),
            None => Slot::Pending(OnceLock::new()),
        })
        .collect();
    let mut tiles: Vec<TileAddr> = layout.tiles().collect();
    tiles.sort_by_key(|t| std::cmp::Reverse(t.level));
    let shared = Shared {
        job,
        layout,
        slots: &slots,
        tiles: &tiles,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        first_error: Mutex::new(None),
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            // A thread that cannot be started leaves its share to the others.
            let _ = std::thread::Builder::new().spawn_scoped(scope, || shared.encode_tiles(f));
        }
        shared.build_levels();
        shared.encode_tiles(f);
    });
    let outcome = match shared
        .first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        Some(e) => Err(e),
        None => Ok(()),
    };
    let built = slots
        .into_iter()
        .zip(0..)
        .filter_map(|(slot, level)| match slot {
            Slot::Pending(cell) => cell.into_inner().flatten().map(|b| (level, b)),
            Slot::Held(_) => None,
        })
        .collect();
    (outcome, built)
}

/// One level's pixels: already held by the pyramid, or built during the walk.
enum Slot<'a> {
    Held(&'a Bitmap),
    /// Set once built: `None` if building it failed.
    Pending(OnceLock<Option<Bitmap>>),
}

impl Slot<'_> {
    /// The level's pixels, waiting until they are built; `None` if that failed.
    fn wait(&self) -> Option<&Bitmap> {
        match self {
            Slot::Held(bitmap) => Some(bitmap),
            Slot::Pending(cell) => cell.wait().as_ref(),
        }
    }
}

/// Settles every level still pending as failed, so that no thread waits for
/// ever, even if building a level panicked.
struct SettleOnDrop<'s>(&'s [Slot<'s>]);

impl Drop for SettleOnDrop<'_> {
    fn drop(&mut self) {
        for slot in self.0 {
            if let Slot::Pending(cell) = slot {
                let _ = cell.set(None);
            }
        }
    }
}

struct Shared<'s, E> {
    job: &'s Job<'s>,
    layout: Layout,
    slots: &'s [Slot<'s>],
    /// Largest level first.
    tiles: &'s [TileAddr],
    next: AtomicUsize,
    stop: AtomicBool,
    first_error: Mutex<Option<E>>,
}

impl<E: From<Error>> Shared<'_, E> {
    /// Builds each pending level from the one above it, largest first.
    fn build_levels(&self) {
        let _settle = SettleOnDrop(self.slots);
        for level in (0..self.slots.len().saturating_sub(1)).rev() {
            let Slot::Pending(cell) = &self.slots[level] else {
                continue;
            };
            let built = match self.slots[level + 1].wait().map(shrink) {
                Some(Ok(bitmap)) => Some(bitmap),
                Some(Err(e)) => {
                    self.fail(e.into());
                    None
                }
                None => None,
            };
            let _ = cell.set(built);
        }
    }

    /// Takes tiles off the shared list until none are left or one fails.
    fn encode_tiles<F>(&self, f: &F)
    where
        F: Fn(TileAddr, Vec<u8>) -> Result<(), E>,
    {
        while !self.stop.load(Ordering::Relaxed) {
            let Some(&addr) = self.tiles.get(self.next.fetch_add(1, Ordering::Relaxed)) else {
                return;
            };
            // A level that failed to build has already recorded its error.
            let Some(level) = self.slots[addr.level as usize].wait() else {
                return;
            };
            let outcome = self
                .encode(level, addr)
                .map_err(E::from)
                .and_then(|bytes| f(addr, bytes));
            if let Err(e) = outcome {
                self.fail(e);
                return;
            }
        }
    }

    fn encode(&self, level: &Bitmap, addr: TileAddr) -> Result<Vec<u8>> {
        let rect = self.layout.tile_rect(addr.level, addr.col, addr.row)?;
        encode::encode(&level.crop(rect)?, self.job.format, self.job.quality)
    }

    fn fail(&self, e: E) {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        first.get_or_insert(e);
    }
}
