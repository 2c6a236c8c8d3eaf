//! A job's work from source to committed pyramid: fetch (spooled to a file, hashed on
//! the way: the pyramid id, as the browser computes it) → tile on every core → store
//! the tiles under their final keys → the one commit ([`crate::commit::commit`]), which
//! writes the `.dzi` last.

use super::jobs::{Job, JobError, JobState};
use super::spool::{Spool, Spooled};
use super::{shrink, Source};
use crate::commit::{self, check_tile_cap, is_committed_now, TileSource};
use crate::error::{AppError, Result};
use crate::store::{Key, PyramidId, TileName};
use crate::AppState;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tiler_wasm::{Dzi, Options, TileAddr, Walk};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

/// Tiles written to the store at once by one job.
const STORE_CONCURRENCY: usize = 32;
/// Encoded tiles waiting for the store, per job (bounds memory when the store is slow).
const TILES_IN_FLIGHT: usize = 128;

/// Runs `job` to its end, recording success or the error; never panics on bad input.
/// `budget` is the source budget the job's bytes hold (reserved by the caller for a
/// request body; reserved here for fetched sources). `committer` is the subject of
/// the caller who asked for the job, recorded as the pyramid's committer.
pub async fn run(
    state: AppState,
    job: Arc<Job>,
    source: Source,
    options: Options,
    budget: Option<OwnedSemaphorePermit>,
    committer: String,
) {
    let outcome = match work(&state, &job, source, options, budget, &committer).await {
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
    committer: &str,
) -> Result<Done> {
    let tiling = &state.tiling;
    let mut budget = match budget {
        Some(permit) => permit,
        None => tiling.wait_for_source(tiling.max_source_bytes).await?,
    };
    let started = Instant::now();
    // Only bytes in hand are known by their id already (hashed when posted, and
    // checked against their digest when read back from the store); a URL or an S3
    // object may have changed since another attempt hashed it.
    let known_id = match &source {
        Source::Bytes(_) => job.status().pyramid,
        Source::Url(_) | Source::S3Key(_) => None,
    };
    let progress = |received: u64, expected: Option<u64>| {
        job.bytes.store(received, Ordering::Relaxed);
        job.bytes_total
            .store(expected.unwrap_or(0), Ordering::Relaxed);
    };
    let held = match source {
        Source::Url(url) => {
            job.set_state(JobState::Fetching);
            let fetcher = tiling.fetcher()?;
            let mut spool = Spool::create(&tiling.spool_dir)?;
            fetcher.fetch_into(&url, progress, &mut spool).await?;
            Held::Spooled(spool.finish().await?)
        }
        Source::S3Key(key) => {
            job.set_state(JobState::Fetching);
            tiling.check_s3_key(&key)?;
            let s3 = tiling.s3.as_ref().ok_or_else(|| {
                AppError::bad_request("no_s3", "s3Key needs the S3 store (--store s3)")
            })?;
            let mut spool = Spool::create(&tiling.spool_dir)?;
            s3.get_source(&key, tiling.max_source_bytes, progress, &mut spool)
                .await?;
            Held::Spooled(spool.finish().await?)
        }
        Source::Bytes(bytes) => Held::Bytes(bytes),
    };
    let len = match &held {
        Held::Bytes(bytes) => bytes.len(),
        Held::Spooled(spooled) => usize::try_from(spooled.len).unwrap_or(usize::MAX),
    };
    shrink(&mut budget, len);
    // A spooled source's size is checked once the tiler has read its header (a TIFF's
    // may be anywhere in the file).
    if let Held::Bytes(bytes) = &held {
        check_tile_count(bytes, &options, state.limits.max_tiles_per_pyramid)?;
    }
    let fetched = started.elapsed();
    let id = match (known_id, &held) {
        (Some(id), _) => id,
        (None, held) => {
            let id = match held {
                Held::Bytes(bytes) => hash(bytes.clone(), options).await?,
                // Hashed as it was spooled.
                Held::Spooled(spooled) => PyramidId::parse(&spooled.pyramid_id(&options))?,
            };
            tracing::info!(
                job = job.id(), %id, bytes = len,
                fetch_ms = fetched.as_millis(),
                hash_ms = (started.elapsed() - fetched).as_millis(),
                "source read and hashed"
            );
            if let Some(leader) = tiling.jobs.set_pyramid(job, &id) {
                job.set_state(JobState::Queued);
                return Ok(Done::Followed(leader));
            }
            id
        }
    };
    make_pyramid(state, job, id, held, options, committer).await?;
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
    check_tile_cap(layout.tile_count(), max_tiles)
}

/// The pyramid id of `bytes` tiled with `options`, hashed off the async threads.
async fn hash(bytes: Bytes, options: Options) -> Result<PyramidId> {
    let id = tokio::task::spawn_blocking(move || tiler_wasm::pyramid_id(&bytes, &options))
        .await
        .map_err(|e| AppError::Internal(format!("hashing task: {e}")))?;
    PyramidId::parse(&id)
}

/// A job's source in hand: a request body in memory, or a fetched source in a file.
enum Held {
    Bytes(Bytes),
    Spooled(Spooled),
}

/// What the tiler reads a source through (a body in memory, a spooled file).
trait SourceReader: std::io::Read + std::io::Seek + Send {}
impl<R: std::io::Read + std::io::Seek + Send> SourceReader for R {}

impl Held {
    /// The walk of the source: TIFF, BigTIFF and non-interlaced PNG streamed from it in
    /// memory bounded by the width; anything else decoded whole (a spooled one read into memory first,
    /// within `--max-source-bytes`, and its size checked against `max_tiles` from its
    /// header before it is decoded).
    fn walk(self, options: &Options, max_tiles: u64) -> Result<Walk<Box<dyn SourceReader>>> {
        let reader: Box<dyn SourceReader> = match &self {
            Held::Bytes(bytes) => Box::new(std::io::Cursor::new(bytes.clone())),
            Held::Spooled(spooled) => Box::new(std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(&spooled.path)
                    .map_err(|e| AppError::Internal(format!("reading the spooled source: {e}")))?,
            )),
        };
        if let Some(streamed) = Walk::streamed(reader, options)? {
            // The spooled file goes when the walk ends (Linux keeps an open file readable).
            return Ok(streamed);
        }
        let bytes = match self {
            Held::Bytes(bytes) => bytes,
            Held::Spooled(spooled) => {
                let bytes = std::fs::read(&spooled.path)
                    .map_err(|e| AppError::Internal(format!("reading the spooled source: {e}")))?;
                check_tile_count(&bytes, options, max_tiles)?;
                Bytes::from(bytes)
            }
        };
        Ok(Walk::whole(&bytes, options)?)
    }
}

/// Tiles, stores and commits, unless the pyramid is committed already.
async fn make_pyramid(
    state: &AppState,
    job: &Arc<Job>,
    id: PyramidId,
    held: Held,
    options: Options,
    committer: &str,
) -> Result<()> {
    if is_committed_now(state, &id).await? {
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
    if is_committed_now(state, &id).await? {
        return Ok(());
    }
    job.set_state(JobState::Tiling);
    let tiling_started = Instant::now();
    // A job taken over from a lost instance finds the tiles that one stored: the
    // same bytes under the same keys (tiles are a function of the pyramid id), so
    // they are not written again.
    let stored: HashSet<TileName> = if job.snapshot().attempts > 1 {
        state.store.list_tiles(&id).await?.into_iter().collect()
    } else {
        HashSet::new()
    };
    let dzi = tile_and_store(state, job, &id, held, options, stored).await?;
    tracing::info!(
        job = job.id(), %id, tiles = job.tiles.load(Ordering::Relaxed),
        tile_and_store_ms = tiling_started.elapsed().as_millis(),
        "tiles stored"
    );
    job.set_state(JobState::Storing);
    let outcome = commit::commit(state, &id, &dzi, committer, TileSource::Final).await?;
    if outcome.created {
        tracing::info!(job = job.id(), %id, tiles = outcome.tile_count, "pyramid tiled and committed");
    }
    Ok(())
}

/// Tiles on a blocking thread (which starts one more per core) while this task writes
/// the tiles to the store as they come; returns the manifest to commit.
async fn tile_and_store(
    state: &AppState,
    job: &Arc<Job>,
    id: &PyramidId,
    held: Held,
    options: Options,
    stored: HashSet<TileName>,
) -> Result<Dzi> {
    let (sender, mut receiver) = mpsc::channel::<(TileName, Vec<u8>)>(TILES_IN_FLIGHT);
    let tiling_job = Arc::clone(job);
    let max_tiles = state.limits.max_tiles_per_pyramid;
    let tiler = tokio::task::spawn_blocking(move || -> Result<Dzi> {
        let tiler = held.walk(&options, max_tiles)?;
        check_tile_cap(tiler.layout().tile_count(), max_tiles)?;
        tiling_job
            .tiles_total
            .store(tiler.layout().tile_count(), Ordering::Relaxed);
        let format = tiler.format();
        let dzi = tiler.dzi();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Tiles as they are finished: the server holds no second copy of the pixels.
        tiler.run(threads, |addr: TileAddr, tile| {
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
    let stored = Arc::new(stored);
    let written: futures::future::BoxFuture<'static, Result<()>> = Box::pin(
        tiles.try_for_each_concurrent(STORE_CONCURRENCY, move |(name, tile)| {
            let (store, key, job, stored) = (
                Arc::clone(&store),
                Key::Tile(id.clone(), name),
                Arc::clone(&job),
                Arc::clone(&stored),
            );
            async move {
                if !stored.contains(&name) {
                    store.put(&key, Bytes::from(tile)).await?;
                }
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
