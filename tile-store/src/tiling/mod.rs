//! Server-side tiling: `POST /pyramids` turns a source image (URL, S3 object or
//! request body) into a committed pyramid. [`jobs`] is the registry of jobs,
//! [`pipeline`] a job's work (fetch → hash → tile → store → commit, through
//! [`crate::commit`], the same commit as uploads); this module holds the shared
//! state: the fetcher, the S3 source, the source-byte budget and the tiling slots.
//!
//! Nothing here knows about HTTP: the routes call in, never the other way round.

pub mod jobs;
pub mod pipeline;

use crate::error::{AppError, Result};
use crate::fetch::{FetchSettings, Fetcher};
use crate::store::s3::S3Store;
use bytes::Bytes;
use jobs::Jobs;
use reqwest::Url;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Images tiled at once: each tiling already uses every core, and holds its decoded
/// pixels (3 bytes a pixel plus the smaller levels) until done.
const IMAGES_AT_ONCE: usize = 1;

/// Settings of server-side tiling.
#[derive(Debug, Clone)]
pub struct TilingSettings {
    /// How URLs are fetched (allow-list, size limit, timeouts).
    pub fetch: FetchSettings,
    /// Most unfinished jobs; more get `503` with `Retry-After`.
    pub max_jobs: usize,
    /// Key prefixes `s3Key` sources must start with; none refuses every `s3Key`.
    pub s3_source_prefixes: Vec<String>,
    /// Bytes of source images held at once by queued and running jobs.
    pub max_queued_source_bytes: u64,
}

/// Default of `--max-queued-source-bytes`: 1 GiB.
pub const DEFAULT_MAX_QUEUED_SOURCE_BYTES: u64 = 1 << 30;

impl Default for TilingSettings {
    fn default() -> Self {
        TilingSettings {
            fetch: FetchSettings::default(),
            max_jobs: 16,
            s3_source_prefixes: Vec::new(),
            max_queued_source_bytes: DEFAULT_MAX_QUEUED_SOURCE_BYTES,
        }
    }
}

/// Where a job's source image comes from.
#[derive(Debug)]
pub enum Source {
    /// An `http`/`https` URL, already checked by [`Fetcher::check`].
    Url(Url),
    /// An object in the store's bucket, read with the store's credentials.
    S3Key(String),
    /// The request body.
    Bytes(Bytes),
}

/// The jobs, the fetcher, the S3 source and the tiling slots.
#[derive(Debug)]
pub struct Tiling {
    /// All jobs.
    pub jobs: Jobs,
    fetcher: std::result::Result<Fetcher, String>,
    s3: Option<S3Store>,
    max_source_bytes: u64,
    s3_source_prefixes: Vec<String>,
    /// One permit per byte of source held (request bodies, fetched images).
    source_budget: Arc<Semaphore>,
    /// Images tiled at once ([`IMAGES_AT_ONCE`]).
    slots: Semaphore,
}

impl Tiling {
    /// Server-side tiling with `settings`; `s3` is the S3 store, when pyramids live in S3,
    /// whose bucket and credentials `s3Key` sources are read with.
    pub fn new(settings: &TilingSettings, s3: Option<S3Store>) -> Result<Self> {
        if settings.s3_source_prefixes.iter().any(String::is_empty) {
            return Err(AppError::Config(
                "--s3-source-prefix must not be empty (it would open the whole bucket)".into(),
            ));
        }
        if settings.max_queued_source_bytes < settings.fetch.max_bytes {
            return Err(AppError::Config(format!(
                "--max-queued-source-bytes ({}) is smaller than --max-source-bytes ({}): \
                 the largest source could never be queued",
                settings.max_queued_source_bytes, settings.fetch.max_bytes
            )));
        }
        Ok(Tiling {
            source_budget: budget(settings.max_queued_source_bytes),
            s3_source_prefixes: settings.s3_source_prefixes.clone(),
            jobs: Jobs::new(settings.max_jobs),
            fetcher: Ok(Fetcher::new(&settings.fetch)?),
            s3,
            max_source_bytes: settings.fetch.max_bytes,
            slots: Semaphore::new(IMAGES_AT_ONCE),
        })
    }

    /// Default settings, no S3 source; a fetcher that cannot be built (no TLS roots)
    /// leaves URL sources answering 500 rather than failing the whole service.
    pub fn with_defaults() -> Self {
        let settings = TilingSettings::default();
        Tiling {
            jobs: Jobs::new(settings.max_jobs),
            fetcher: Fetcher::new(&settings.fetch).map_err(|e| e.to_string()),
            s3: None,
            max_source_bytes: settings.fetch.max_bytes,
            s3_source_prefixes: Vec::new(),
            source_budget: budget(settings.max_queued_source_bytes),
            slots: Semaphore::new(IMAGES_AT_ONCE),
        }
    }

    /// Reserves `bytes` of the source budget now, or `503` when it is spent.
    pub fn reserve_source(&self, bytes: u64) -> Result<OwnedSemaphorePermit> {
        let n = budget_permits(bytes)?;
        Arc::clone(&self.source_budget)
            .try_acquire_many_owned(n)
            .map_err(|_| AppError::Busy {
                message: "too many source bytes are queued for tiling; retry later".into(),
                retry_after_secs: crate::error::RETRY_AFTER_BUSY_QUEUE_SECS,
            })
    }

    /// Reserves `bytes` of the source budget, waiting for it (a queued job).
    pub(crate) async fn wait_for_source(&self, bytes: u64) -> Result<OwnedSemaphorePermit> {
        let n = budget_permits(bytes)?;
        Arc::clone(&self.source_budget)
            .acquire_many_owned(n)
            .await
            .map_err(|e| AppError::Internal(format!("source budget: {e}")))
    }

    /// The fetcher, or why there is none.
    pub fn fetcher(&self) -> Result<&Fetcher> {
        self.fetcher
            .as_ref()
            .map_err(|e| AppError::Internal(format!("no HTTP client: {e}")))
    }

    /// Largest source image, in bytes (URL, S3 object or request body).
    pub fn max_source_bytes(&self) -> u64 {
        self.max_source_bytes
    }

    /// Checks that `s3Key` sources can be read, and that `key` is a plausible key.
    pub fn check_s3_key(&self, key: &str) -> Result<()> {
        if self.s3.is_none() {
            return Err(AppError::bad_request(
                "no_s3",
                "s3Key needs the S3 store (tile-store serve --store s3); this one keeps pyramids on disk — send src or the image itself",
            ));
        }
        if key.is_empty() || key.len() > 1024 || key.starts_with('/') {
            return Err(AppError::bad_request(
                "invalid_s3_key",
                "s3Key is an object key of 1 to 1024 bytes, without a leading '/'",
            ));
        }
        // Refused here, before any S3 call: a refused key's answer must not depend on
        // whether it exists or how large it is.
        if self.s3_source_prefixes.is_empty() {
            return Err(AppError::Forbidden {
                code: "s3_key_refused",
                message:
                    "s3Key sources are off: the server allows none without --s3-source-prefix \
                          (TILE_STORE_S3_SOURCE_PREFIX)"
                        .into(),
            });
        }
        // Dot segments, empty segments and backslashes are refused even inside a
        // prefix: some S3-compatible servers map keys to file paths.
        let odd = key.contains('\\')
            || key.chars().any(char::is_control)
            || key
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..");
        let inside = self
            .s3_source_prefixes
            .iter()
            .any(|p| key.starts_with(p.as_str()));
        if odd || !inside {
            return Err(AppError::Forbidden {
                code: "s3_key_refused",
                message: "s3Key is outside the prefixes allowed by --s3-source-prefix".into(),
            });
        }
        Ok(())
    }
}

fn budget(bytes: u64) -> Arc<Semaphore> {
    let permits = usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS);
    Arc::new(Semaphore::new(permits))
}

fn budget_permits(bytes: u64) -> Result<u32> {
    u32::try_from(bytes.max(1)).map_err(|_| {
        AppError::PayloadTooLarge(format!("a source of {bytes} bytes is over any budget"))
    })
}

/// Gives back the part of `permit` over `used` bytes.
pub(crate) fn shrink(permit: &mut OwnedSemaphorePermit, used: usize) {
    let excess = permit.num_permits().saturating_sub(used.max(1));
    drop(permit.split(excess));
}
