//! Server-side tiling: a job's work from source to committed pyramid —
//! fetch → hash (the pyramid id, as the browser computes it) → tile on every core →
//! store the tiles → commit the `.dzi` last.

use crate::error::{AppError, Result};
use crate::fetch::{FetchSettings, Fetcher};
use crate::jobs::{Job, JobError, JobState, Jobs};
use crate::routes::read::is_committed;
use crate::store::s3::S3Store;
use crate::store::{Key, PutOutcome, PyramidId, TileName};
use crate::AppState;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use reqwest::Url;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tiler_wasm::{Dzi, Options, TileAddr, Tiler};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Tiles written to the store at once by one job.
const STORE_CONCURRENCY: usize = 32;
/// Encoded tiles waiting for the store, per job (bounds memory when the store is slow).
const TILES_IN_FLIGHT: usize = 128;
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
                retry_after_secs: crate::jobs::RETRY_AFTER_SECS,
            })
    }

    /// Reserves `bytes` of the source budget, waiting for it (a queued job).
    async fn wait_for_source(&self, bytes: u64) -> Result<OwnedSemaphorePermit> {
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
fn shrink(permit: &mut OwnedSemaphorePermit, used: usize) {
    let excess = permit.num_permits().saturating_sub(used.max(1));
    drop(permit.split(excess));
}

/// Runs `job` to its end, recording success or the error; never panics on bad input.
/// `budget` is the source budget the job's bytes hold (reserved by the caller for a
/// request body; reserved here for fetched sources).
pub async fn run(
    state: AppState,
    job: Arc<Job>,
    source: Source,
    options: Options,
    budget: Option<OwnedSemaphorePermit>,
) {
    let outcome = match work(&state, &job, source, options, budget).await {
        Ok(Done::Made) => Ok(()),
        Ok(Done::Followed(leader)) => match leader.finished().await.error {
            None => Ok(()),
            Some(e) => Err(e),
        },
        Err(e) => {
            if e.status().is_server_error() {
                tracing::error!(job = job.id(), error = %e, "tiling job failed");
            } else {
                tracing::info!(job = job.id(), error = %e, "tiling job failed");
            }
            Err(JobError::from(&e))
        }
    };
    state.tiling.jobs.finish(&job, outcome);
}

/// How a job's work ended well.
enum Done {
    /// The pyramid is committed (by this job, or before it).
    Made,
    /// Another job is making the same pyramid (the same bytes under another name):
    /// this one ends as that one does.
    Followed(Arc<Job>),
}

async fn work(
    state: &AppState,
    job: &Arc<Job>,
    source: Source,
    options: Options,
    budget: Option<OwnedSemaphorePermit>,
) -> Result<Done> {
    let tiling = &state.tiling;
    let mut budget = match budget {
        Some(permit) => permit,
        None => tiling.wait_for_source(tiling.max_source_bytes).await?,
    };
    let started = Instant::now();
    let progress = |received: u64, expected: Option<u64>| {
        job.bytes.store(received, Ordering::Relaxed);
        job.bytes_total
            .store(expected.unwrap_or(0), Ordering::Relaxed);
    };
    let bytes = match source {
        Source::Url(url) => {
            job.set_state(JobState::Fetching);
            tiling.fetcher()?.fetch(&url, progress).await?
        }
        Source::S3Key(key) => {
            job.set_state(JobState::Fetching);
            tiling.check_s3_key(&key)?;
            let s3 = tiling.s3.as_ref().ok_or_else(|| {
                AppError::bad_request("no_s3", "s3Key needs the S3 store (--store s3)")
            })?;
            s3.get_source(&key, tiling.max_source_bytes, progress)
                .await?
        }
        Source::Bytes(bytes) => bytes,
    };
    shrink(&mut budget, bytes.len());
    check_tile_count(&bytes, &options, state.limits.max_tiles_per_pyramid)?;
    let fetched = started.elapsed();
    let (id, bytes) = match job.status().pyramid {
        Some(id) => (id, bytes),
        None => {
            let (id, bytes) = hash(bytes, options).await?;
            tracing::info!(
                job = job.id(), %id, bytes = bytes.len(),
                fetch_ms = fetched.as_millis(),
                hash_ms = (started.elapsed() - fetched).as_millis(),
                "source read and hashed"
            );
            if let Some(leader) = tiling.jobs.set_pyramid(job, &id) {
                job.set_state(JobState::Queued);
                return Ok(Done::Followed(leader));
            }
            (id, bytes)
        }
    };
    make_pyramid(state, job, id, bytes, options).await?;
    Ok(Done::Made)
}

/// Reads the image's size from its header (no pixels decoded) and refuses a pyramid of
/// more than `max_tiles` tiles before any hashing, decoding or tiling.
///
/// A header that cannot be read is let through: decoding then fails with the core's
/// own error (and the count is checked again once the image is open).
pub fn check_tile_count(bytes: &[u8], options: &Options, max_tiles: u64) -> Result<()> {
    let Ok(meta) = tiler_wasm::probe(bytes, &options.limits) else {
        return Ok(());
    };
    let layout =
        tiler_wasm::Layout::new(meta.width, meta.height, options.tile_size, options.overlap)?;
    crate::routes::write::check_tile_cap(layout.tile_count(), max_tiles)
}

/// The pyramid id of `bytes` tiled with `options`, hashed off the async threads.
async fn hash(bytes: Bytes, options: Options) -> Result<(PyramidId, Bytes)> {
    let (id, bytes) =
        tokio::task::spawn_blocking(move || (tiler_wasm::pyramid_id(&bytes, &options), bytes))
            .await
            .map_err(|e| AppError::Internal(format!("hashing task: {e}")))?;
    Ok((PyramidId::parse(&id)?, bytes))
}

/// Tiles, stores and commits, unless the pyramid is committed already.
async fn make_pyramid(
    state: &AppState,
    job: &Arc<Job>,
    id: PyramidId,
    bytes: Bytes,
    options: Options,
) -> Result<()> {
    if is_committed(state, &id).await? {
        return Ok(());
    }
    job.set_state(JobState::Queued);
    let _slot = state
        .tiling
        .slots
        .acquire()
        .await
        .map_err(|e| AppError::Internal(format!("tiling slots: {e}")))?;
    // Committed meanwhile (by a browser upload, another instance)?
    if is_committed(state, &id).await? {
        return Ok(());
    }
    job.set_state(JobState::Tiling);
    let tiling_started = Instant::now();
    let dzi = tile_and_store(state, job, &id, bytes, options).await?;
    tracing::info!(
        job = job.id(), %id, tiles = job.tiles.load(Ordering::Relaxed),
        tile_and_store_ms = tiling_started.elapsed().as_millis(),
        "tiles stored"
    );
    job.set_state(JobState::Storing);
    commit(state, &id, &dzi).await
}

/// Tiles on a blocking thread (which starts one more per core) while this task writes
/// the tiles to the store as they come; returns the manifest to commit.
async fn tile_and_store(
    state: &AppState,
    job: &Arc<Job>,
    id: &PyramidId,
    bytes: Bytes,
    options: Options,
) -> Result<Dzi> {
    let (sender, mut receiver) = mpsc::channel::<(TileName, Vec<u8>)>(TILES_IN_FLIGHT);
    let tiling_job = Arc::clone(job);
    let max_tiles = state.limits.max_tiles_per_pyramid;
    let tiler = tokio::task::spawn_blocking(move || -> Result<Dzi> {
        let tiler = Tiler::open(&bytes, &options)?;
        drop(bytes);
        crate::routes::write::check_tile_cap(tiler.layout().tile_count(), max_tiles)?;
        tiling_job
            .tiles_total
            .store(tiler.layout().tile_count(), Ordering::Relaxed);
        let format = tiler.format();
        let dzi = tiler.dzi();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Level by level in the decoded image's own memory: the server holds no second copy.
        tiler.into_walk_parallel(threads, |addr: TileAddr, tile| {
            let name = TileName {
                level: addr.level,
                col: addr.col,
                row: addr.row,
                format,
            };
            sender
                .blocking_send((name, tile))
                .map_err(|_| AppError::Internal("the tile writer stopped".into()))
        })?;
        Ok(dzi)
    });
    // The stream owns the receiver: when a write fails the stream is dropped, so the
    // tiler's next send fails and it stops.
    let tiles = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).map(Ok);
    // Boxed as `dyn Send`: left as a combinator type inside this async fn, its
    // closure's lifetimes turn the spawned future's `Send` bound higher-ranked, which
    // the compiler cannot prove (rust-lang/rust#102211).
    let (store, id, job) = (Arc::clone(&state.store), id.clone(), Arc::clone(job));
    let written: futures::future::BoxFuture<'static, Result<()>> = Box::pin(
        tiles.try_for_each_concurrent(STORE_CONCURRENCY, move |(name, tile)| {
            let (store, key, job) = (
                Arc::clone(&store),
                Key::Tile(id.clone(), name),
                Arc::clone(&job),
            );
            async move {
                store.put(&key, Bytes::from(tile)).await?;
                job.tiles.fetch_add(1, Ordering::Relaxed);
                Ok::<(), AppError>(())
            }
        }),
    );
    let (tiled, written) = tokio::join!(tiler, written);
    let tiled = tiled.map_err(|e| AppError::Internal(format!("tiling task: {e}")))?;
    match (tiled, written) {
        (Ok(dzi), Ok(())) => Ok(dzi),
        (_, Err(store_error)) => Err(store_error),
        (Err(tiler_error), Ok(())) => Err(tiler_error),
    }
}

/// Writes the manifest if absent; an existing one must be the same.
async fn commit(state: &AppState, id: &PyramidId, dzi: &Dzi) -> Result<()> {
    let key = Key::Dzi(id.clone());
    match state
        .store
        .put_if_absent(&key, Bytes::from(dzi.to_xml()))
        .await?
    {
        PutOutcome::Created => {
            tracing::info!(%id, tiles = dzi.layout()?.tile_count(), "pyramid tiled and committed");
        }
        PutOutcome::Exists => {
            let existing = state.store.get(&key).await?.unwrap_or_default();
            let same = Dzi::parse(&existing).is_ok_and(|stored| stored == *dzi);
            if !same {
                return Err(AppError::Conflict {
                    code: "already_committed",
                    message: format!("pyramid {id} is committed with a different manifest"),
                    missing: None,
                });
            }
        }
    }
    state.committed.insert(id);
    Ok(())
}
