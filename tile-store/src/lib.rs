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
use std::collections::HashSet;
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
            committed: Arc::new(CommittedIds::default()),
            tiling: Arc::new(tiling::Tiling::with_defaults()),
            uploads: Arc::new(gate::UploadGate::default()),
            id_locks: Arc::new(IdLocks::default()),
        }
    }
}

/// A bounded memory of committed pyramid ids.
///
/// Only positive answers are kept: a commit is permanent until a `DELETE`, which
/// forgets the id here. (A `DELETE` through another instance is not seen; its tiles
/// are gone from the store, so they answer 404 anyway.)
#[derive(Debug, Default)]
pub struct CommittedIds(Mutex<HashSet<PyramidId>>);

/// Ids remembered before the memory is cleared and starts again.
const COMMITTED_IDS_REMEMBERED: usize = 100_000;

impl CommittedIds {
    /// Whether `id` is known to be committed.
    pub fn contains(&self, id: &PyramidId) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(id))
    }
    /// Remembers that `id` is committed.
    pub fn insert(&self, id: &PyramidId) {
        if let Ok(mut set) = self.0.lock() {
            if set.len() >= COMMITTED_IDS_REMEMBERED {
                set.clear();
            }
            set.insert(id.clone());
        }
    }
    /// Forgets `id` (after a delete).
    pub fn remove(&self, id: &PyramidId) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(id);
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
