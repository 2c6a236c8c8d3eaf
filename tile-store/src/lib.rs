//! tile-store: content-addressed Deep Zoom pyramids on local disk or S3, served so
//! that stock OpenSeadragon opens `/pyramids/{id}.dzi` by URL.
//!
//! [`app`] builds the whole HTTP service from an [`AppState`]; `main` only parses
//! flags, picks the store and runs it, so tests drive [`app`] in process.

pub mod auth;
pub mod commit;
pub mod config;
pub mod conn;
pub mod error;
pub mod fetch;
pub mod gate;
pub mod routes;
pub mod serve;
pub mod staging;
pub mod store;
pub mod szi;
pub mod tile;
pub mod tiling;

use auth::Auth;
use axum::Router;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use store::{PyramidId, Store};

pub use error::{AppError, Result};

/// Size limits on uploads.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Largest tile, in bytes.
    pub max_tile_bytes: usize,
    /// Largest request body, in bytes.
    pub max_request_bytes: usize,
    /// Most tiles one pyramid may have: on commit, on every upload, on server jobs.
    pub max_tiles_per_pyramid: u64,
}

/// Default of `--max-tiles-per-pyramid`.
pub const DEFAULT_MAX_TILES_PER_PYRAMID: u64 = 1_000_000;

impl Default for UploadLimits {
    fn default() -> Self {
        UploadLimits {
            max_tile_bytes: 4 << 20,
            max_request_bytes: 32 << 20,
            max_tiles_per_pyramid: DEFAULT_MAX_TILES_PER_PYRAMID,
        }
    }
}

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Where pyramids live.
    pub store: Arc<dyn Store>,
    /// Who may read and write.
    pub auth: Arc<Auth>,
    /// Upload size limits.
    pub limits: UploadLimits,
    /// Origins allowed by CORS (`*` for any); empty for no CORS headers.
    pub cors_origins: Vec<String>,
    /// The built web app served at `/`, if any.
    pub web_dir: Option<PathBuf>,
    /// Whether the web app is served with COOP `same-origin` and COEP `require-corp`.
    pub cross_origin_isolation: bool,
    /// Ids known to be committed, so tile reads need no manifest lookup.
    pub committed: Arc<CommittedIds>,
    /// Server-side tiling: jobs, fetching, the S3 source.
    pub tiling: Arc<tiling::Tiling>,
    /// Caps the uploads handled at once.
    pub uploads: Arc<gate::UploadGate>,
    /// Serialises commits and deletes of one id within this instance.
    pub id_locks: Arc<IdLocks>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store.describe())
            .field("auth", &self.auth)
            .field("limits", &self.limits)
            .field("cors_origins", &self.cors_origins)
            .field("web_dir", &self.web_dir)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// A state with default limits, no CORS and no web app.
    pub fn new(store: Arc<dyn Store>, auth: Auth) -> Self {
        AppState {
            store,
            auth: Arc::new(auth),
            limits: UploadLimits::default(),
            cors_origins: Vec::new(),
            web_dir: None,
            cross_origin_isolation: true,
            committed: Arc::new(CommittedIds::default()),
            tiling: Arc::new(tiling::Tiling::with_defaults()),
            uploads: Arc::new(gate::UploadGate::default()),
            id_locks: Arc::new(IdLocks::default()),
        }
    }
}

/// A short, bounded memory of committed pyramid ids, so that tile reads need no
/// manifest lookup each.
///
/// An id is remembered for its time to live (`--committed-ttl`, default
/// [`DEFAULT_COMMITTED_TTL`]): a `DELETE` through another instance on the same store is
/// seen here within that time. Only the `Cache-Control` of tile reads relies on it;
/// answers that say whether a pyramid exists (`POST /pyramids`, uploads, commits) ask
/// the store each time ([`commit::is_committed_now`]).
#[derive(Debug)]
pub struct CommittedIds {
    ttl: std::time::Duration,
    seen: Mutex<std::collections::HashMap<PyramidId, std::time::Instant>>,
}

/// Default of `--committed-ttl`.
pub const DEFAULT_COMMITTED_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Ids remembered before the memory is cleared and starts again.
const COMMITTED_IDS_REMEMBERED: usize = 100_000;

impl Default for CommittedIds {
    fn default() -> Self {
        CommittedIds::new(DEFAULT_COMMITTED_TTL)
    }
}

impl CommittedIds {
    /// A memory keeping ids for `ttl` (zero: every tile read asks the store).
    pub fn new(ttl: std::time::Duration) -> Self {
        CommittedIds {
            ttl,
            seen: Mutex::default(),
        }
    }

    /// Whether `id` was seen committed less than the time to live ago.
    pub fn contains(&self, id: &PyramidId) -> bool {
        self.seen
            .lock()
            .is_ok_and(|map| map.get(id).is_some_and(|seen| seen.elapsed() < self.ttl))
    }
    /// Remembers that `id` is committed, as of now.
    pub fn insert(&self, id: &PyramidId) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.seen.lock() {
            if map.len() >= COMMITTED_IDS_REMEMBERED {
                map.retain(|_, seen| seen.elapsed() < self.ttl);
                if map.len() >= COMMITTED_IDS_REMEMBERED {
                    map.clear();
                }
            }
            map.insert(id.clone(), std::time::Instant::now());
        }
    }
    /// Forgets `id` (after a delete).
    pub fn remove(&self, id: &PyramidId) {
        if let Ok(mut map) = self.seen.lock() {
            map.remove(id);
        }
    }
}

/// One async lock per pyramid id, held by a commit or a delete of that id (only
/// while some request holds it: unused entries are dropped).
#[derive(Debug, Default)]
pub struct IdLocks(
    Mutex<std::collections::HashMap<PyramidId, std::sync::Weak<tokio::sync::Mutex<()>>>>,
);

impl IdLocks {
    /// Waits for `id`'s turn; the guard releases it.
    pub async fn lock(&self, id: &PyramidId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            map.retain(|_, weak| weak.strong_count() > 0);
            match map.get(id).and_then(std::sync::Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(id.clone(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

/// The whole HTTP service.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn committed_ids_are_forgotten_after_their_time_to_live() {
        let id = PyramidId::parse(&"ab".repeat(32)).expect("valid");
        let never = CommittedIds::new(Duration::ZERO);
        never.insert(&id);
        assert!(!never.contains(&id), "a zero TTL remembers nothing");

        let brief = CommittedIds::new(Duration::from_millis(200));
        brief.insert(&id);
        assert!(brief.contains(&id));
        std::thread::sleep(Duration::from_millis(250));
        assert!(!brief.contains(&id), "seen 250 ms ago with a 200 ms TTL");
        brief.insert(&id);
        brief.remove(&id);
        assert!(!brief.contains(&id));
    }
}
