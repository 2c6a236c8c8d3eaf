//! Server-side tiling: `POST /pyramids` turns a source image (URL, S3 object or
//! request body) into a committed pyramid. [`record`] is a job as stored, shared by
//! every instance on the store; [`board`] claims and leases records; [`runner`] runs
//! the jobs this instance holds (and finds unclaimed ones); [`jobs`] is this
//! instance's registry of jobs; [`pipeline`] a job's work (fetch → hash → tile →
//! store → commit, through [`crate::commit`], the same commit as uploads). This
//! module holds the shared state: the fetcher, the S3 source, the source-byte budget
//! and the tiling slots.
//!
//! Nothing here knows about HTTP: the routes call in, never the other way round.

pub mod board;
pub mod jobs;
pub mod pipeline;
pub mod record;
pub mod runner;
pub mod spool;

use crate::error::{AppError, Result};
use crate::fetch::{FetchSettings, Fetcher};
use crate::store::s3::S3Store;
use board::{Board, BoardSettings};
use bytes::Bytes;
use jobs::Jobs;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tiler_wasm::{Layout, Options, TileFormat};
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
    /// This instance's name, the job lease and how long ended jobs are kept.
    pub board: BoardSettings,
    /// Where fetched sources are written while their jobs run ([`spool`]).
    pub spool_dir: std::path::PathBuf,
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
            board: BoardSettings::default(),
            spool_dir: std::env::temp_dir(),
        }
    }
}

/// Tiling settings, in the JSON body or (for an image sent as the body) the query.
/// Every field is optional; the defaults are `vips dzsave`'s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// `auto` (PNG for images with alpha, JPEG otherwise), `jpeg`, `png` or `webp`.
    pub format: Option<String>,
    /// JPEG / WebP quality, 1..=100.
    pub quality: Option<u8>,
    /// Tile size without overlap.
    pub tile_size: Option<u32>,
    /// Overlap on each side.
    pub overlap: Option<u32>,
}

impl Settings {
    /// The core's options, checked.
    pub fn options(&self) -> Result<Options> {
        let defaults = Options::default();
        let format = match self.format.as_deref() {
            None | Some("auto") => None,
            Some(name) => Some(name.parse::<TileFormat>()?),
        };
        let options = Options {
            format,
            quality: self.quality.unwrap_or(defaults.quality),
            tile_size: self.tile_size.unwrap_or(defaults.tile_size),
            overlap: self.overlap.unwrap_or(defaults.overlap),
            ..defaults
        };
        if !(1..=100).contains(&options.quality) {
            return Err(AppError::bad_request(
                "invalid_option",
                "quality must be 1..=100",
            ));
        }
        Layout::new(1, 1, options.tile_size, options.overlap)?;
        Ok(options)
    }
}

/// The settings as they enter the pyramid id, to tell jobs apart.
pub fn recipe(options: &Options) -> String {
    format!(
        "{}/{}/{}/{}",
        options.format.map_or("auto", |f| f.extension()),
        options.quality,
        options.tile_size,
        options.overlap
    )
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
    /// This instance's jobs.
    pub jobs: Jobs,
    /// The jobs of every instance, in the store.
    pub board: Board,
    fetcher: std::result::Result<Fetcher, String>,
    s3: Option<S3Store>,
    max_source_bytes: u64,
    s3_source_prefixes: Vec<String>,
    /// One permit per byte of source held (request bodies, fetched images).
    source_budget: Arc<Semaphore>,
    /// Images tiled at once ([`IMAGES_AT_ONCE`]).
    slots: Semaphore,
    spool_dir: std::path::PathBuf,
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
        let instance = &settings.board.instance;
        if instance.is_empty()
            || instance.len() > 128
            || !instance.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(AppError::Config(
                "--instance-id is 1 to 128 printable ASCII characters without spaces".into(),
            ));
        }
        if settings.max_queued_source_bytes < settings.fetch.max_bytes {
            return Err(AppError::Config(format!(
                "--max-queued-source-bytes ({}) is smaller than --max-source-bytes ({}): \
                 the largest source could never be queued",
                settings.max_queued_source_bytes, settings.fetch.max_bytes
            )));
        }
        std::fs::create_dir_all(&settings.spool_dir).map_err(|e| {
            AppError::Config(format!(
                "--spool-dir {} cannot be made: {e}",
                settings.spool_dir.display()
            ))
        })?;
        // Sources left by a process killed mid-job (orthomosaics can be gigabytes).
        match spool::sweep_orphans(&settings.spool_dir) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(removed = n, dir = %settings.spool_dir.display(), "removed spooled sources of dead processes")
            }
            Err(e) => {
                tracing::warn!(error = %e, dir = %settings.spool_dir.display(), "could not sweep the spool folder")
            }
        }
        Ok(Tiling {
            source_budget: budget(settings.max_queued_source_bytes),
            s3_source_prefixes: settings.s3_source_prefixes.clone(),
            jobs: Jobs::new(settings.max_jobs, settings.board.retention),
            board: Board::new(settings.board.clone()),
            fetcher: Ok(Fetcher::new(&settings.fetch)?),
            s3,
            max_source_bytes: settings.fetch.max_bytes,
            slots: Semaphore::new(IMAGES_AT_ONCE),
            spool_dir: settings.spool_dir.clone(),
        })
    }

    /// Default settings, no S3 source; a fetcher that cannot be built (no TLS roots)
    /// leaves URL sources answering 500 rather than failing the whole service.
    pub fn with_defaults() -> Self {
        let settings = TilingSettings::default();
        Tiling {
            jobs: Jobs::new(settings.max_jobs, settings.board.retention),
            board: Board::new(settings.board.clone()),
            fetcher: Fetcher::new(&settings.fetch).map_err(|e| e.to_string()),
            s3: None,
            max_source_bytes: settings.fetch.max_bytes,
            s3_source_prefixes: Vec::new(),
            source_budget: budget(settings.max_queued_source_bytes),
            slots: Semaphore::new(IMAGES_AT_ONCE),
            spool_dir: settings.spool_dir,
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
