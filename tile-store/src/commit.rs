//! The one commit of a pyramid, used by uploads (`PUT /pyramids/{id}.dzi`) and by
//! server-side tiling jobs alike: enforce the tile cap, promote the committing
//! writer's staged tiles (uploads), check every tile of the layout is stored, remove
//! stray tiles, record the committer, then write the manifest exactly once
//! (`put_if_absent`), all under the id's lock.
//!
//! Promotion copies every tile of the layout from the writer's staging to its final
//! key, replacing whatever is there: final keys of an uncommitted id hold nothing
//! trusted (the leftovers of an interrupted commit or tiling job), and a byte-identical
//! tile is replaced by the same bytes. The staged copies are removed only once the
//! manifest is written, so a commit that fails can be retried as is.
//!
//! Layering: routes → tiling → commit → store. Nothing here knows about HTTP.

use crate::error::{AppError, Missing, Result, MAX_MISSING_LISTED};
use crate::store::{Key, PutOutcome, PyramidId, TileName, Version, WriterId};
use crate::AppState;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tiler_wasm::{Dzi, Layout, TileFormat};

/// Store calls made at once by one commit.
const STORE_CONCURRENCY: usize = 32;

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Tiles in the pyramid.
    pub tile_count: u64,
    /// `false` when the same manifest was committed before (nothing was written).
    pub created: bool,
}

/// Where a commit's tiles are.
#[derive(Debug, Clone, Copy)]
pub enum TileSource<'a> {
    /// Staged by this writer (uploads): every tile of the layout must be there, and
    /// only these are promoted; another writer's staged tiles are never used.
    Staged(&'a WriterId),
    /// Already under their final keys (server-side tiling computed them).
    Final,
}

/// Whether `id` has a committed manifest, as remembered for a moment
/// ([`crate::CommittedIds`]): for the `Cache-Control` of tile reads.
pub async fn is_committed(state: &AppState, id: &PyramidId) -> Result<bool> {
    if state.committed.contains(id) {
        return Ok(true);
    }
    is_committed_now(state, id).await
}

/// Whether `id` has a committed manifest, asking the store: another instance may have
/// deleted it a moment ago.
pub async fn is_committed_now(state: &AppState, id: &PyramidId) -> Result<bool> {
    let committed = state.store.head(&Key::Dzi(id.clone())).await?.is_some();
    if committed {
        state.committed.insert(id);
    }
    Ok(committed)
}

/// `400 too_many_tiles` when a pyramid of `count` tiles is over the cap
/// (`--max-tiles-per-pyramid`).
pub fn check_tile_cap(count: u64, max: u64) -> Result<()> {
    if count > max {
        return Err(AppError::bad_request(
            "too_many_tiles",
            format!("{count} tiles; at most {max} per pyramid (--max-tiles-per-pyramid)"),
        ));
    }
    Ok(())
}

/// The tiles `layout` in `format` has, in listing order.
fn layout_tiles(layout: &Layout, format: TileFormat) -> impl Iterator<Item = TileName> + '_ {
    layout.tiles().map(move |a| TileName {
        level: a.level,
        col: a.col,
        row: a.row,
        format,
    })
}

/// `409 missing_tiles` listing the tiles of the layout that `stored` lacks.
fn check_complete(layout: &Layout, format: TileFormat, stored: &HashSet<TileName>) -> Result<()> {
    let mut missing = Missing {
        count: 0,
        tiles: Vec::new(),
    };
    for tile in layout_tiles(layout, format) {
        if !stored.contains(&tile) {
            missing.count = missing.count.saturating_add(1);
            if missing.tiles.len() < MAX_MISSING_LISTED {
                missing.tiles.push(tile.relative());
            }
        }
    }
    if missing.count == 0 {
        return Ok(());
    }
    Err(AppError::Conflict {
        code: "missing_tiles",
        message: format!(
            "{} of {} tiles are missing",
            missing.count,
            layout.tile_count()
        ),
        missing: Some(missing),
    })
}

/// Commits `dzi` as pyramid `id`, recording `committer` (a caller's subject), with
/// the tiles from `source`.
///
/// Every tile of the layout must be staged by the writer (or, for [`TileSource::Final`],
/// stored under its final key), else `409` with the missing tiles; stored tiles outside the layout are removed; the manifest is
/// written only if absent, so of any number of commits of one id — in this instance
/// or in others sharing the store — exactly one answers `created: true`. A manifest
/// already committed answers `created: false` when it is the same, `409` otherwise.
pub async fn commit(
    state: &AppState,
    id: &PyramidId,
    dzi: &Dzi,
    committer: &str,
    source: TileSource<'_>,
) -> Result<CommitOutcome> {
    let layout = dzi.layout()?;
    let tile_count = layout.tile_count();
    check_tile_cap(tile_count, state.limits.max_tiles_per_pyramid)?;
    // One commit or delete of this id at a time in this instance.
    let _turn = state.id_locks.lock(id).await;
    let key = Key::Dzi(id.clone());
    let done = |created: bool| {
        state.committed.insert(id);
        Ok(CommitOutcome {
            tile_count,
            created,
        })
    };
    if let Some(existing) = state.store.get(&key).await? {
        same_manifest(id, &existing, dzi)?;
        return done(false);
    }
    // One commit of this id at a time across instances too: two writers' tiles must
    // never be promoted into one pyramid at once.
    let lock = StoreLock::acquire(state, id).await?;
    if let Some(existing) = state.store.get(&key).await? {
        lock.release().await;
        same_manifest(id, &existing, dzi)?;
        return done(false);
    }
    let outcome = commit_new(state, id, dzi, committer, source, &layout).await;
    lock.release().await;
    match outcome {
        Ok(created) => done(created),
        // Another instance may have committed meanwhile, and (the same writer there)
        // taken the staged tiles this commit was promoting: that is no failure.
        Err(e) => match state.store.get(&key).await? {
            Some(existing) if same_manifest(id, &existing, dzi).is_ok() => done(false),
            _ => Err(e),
        },
    }
}

/// How long a commit lock may stand unchanged before another instance breaks it: a
/// commit is a listing, one copy per tile and a few small writes, so one this old
/// belongs to an instance that died mid-commit.
const COMMIT_LOCK_STALE: Duration = Duration::from_secs(60);
/// How long a commit waits for another instance's commit of the same id.
const COMMIT_LOCK_WAIT: Duration = Duration::from_secs(20);
/// How often a waiting commit looks at the lock again.
const COMMIT_LOCK_POLL: Duration = Duration::from_millis(50);

/// The store's lock on committing one pyramid id (`locks/{id}.json`), taken with
/// `If-None-Match` and broken, with `If-Match`, only once it has stood unchanged for
/// [`COMMIT_LOCK_STALE`]. On a server that ignores conditional writes it excludes
/// nothing, and commits across instances are as without it.
struct StoreLock {
    store: std::sync::Arc<dyn crate::store::Store>,
    key: Key,
    held: bool,
}

impl StoreLock {
    async fn acquire(state: &AppState, id: &PyramidId) -> Result<Self> {
        let key = Key::CommitLock(id.clone());
        let body = Bytes::from(
            serde_json::json!({
                "instance": state.tiling.board.instance(),
                "since": crate::tiling::record::now_ms(),
            })
            .to_string(),
        );
        let deadline = Instant::now() + COMMIT_LOCK_WAIT;
        let mut seen: Option<(Version, Instant)> = None;
        loop {
            if state.store.put_if_absent(&key, body.clone()).await? == PutOutcome::Created {
                return Ok(StoreLock::held(state, key));
            }
            if let Some((_, version)) = state.store.get_versioned(&key).await? {
                match &seen {
                    Some((v, since)) if *v == version => {
                        if since.elapsed() >= COMMIT_LOCK_STALE
                            && state
                                .store
                                .put_if_version(&key, body.clone(), &version)
                                .await?
                                .is_some()
                        {
                            tracing::warn!(%id, "broke a stale commit lock");
                            return Ok(StoreLock::held(state, key));
                        }
                    }
                    _ => seen = Some((version, Instant::now())),
                }
            }
            if Instant::now() >= deadline {
                return Err(AppError::Busy {
                    message: format!("another instance is committing pyramid {id}; retry"),
                    retry_after_secs: crate::error::RETRY_AFTER_UNAVAILABLE_SECS,
                });
            }
            tokio::time::sleep(COMMIT_LOCK_POLL).await;
        }
    }

    fn held(state: &AppState, key: Key) -> Self {
        StoreLock {
            store: std::sync::Arc::clone(&state.store),
            key,
            held: true,
        }
    }

    async fn release(mut self) {
        self.held = false;
        if let Err(e) = self.store.delete(&self.key).await {
            // Broken as stale after COMMIT_LOCK_STALE.
            tracing::warn!(key = %self.key.path(), error = %e, "commit lock not released");
        }
    }
}

impl Drop for StoreLock {
    /// A commit dropped midway (its client went, its request timed out) still gives
    /// the lock back, rather than leave the id uncommittable until it goes stale.
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, key) = (std::sync::Arc::clone(&self.store), self.key.clone());
            runtime.spawn(async move {
                let _ = store.delete(&key).await;
            });
        }
    }
}

/// The commit of a pyramid found uncommitted: whether this call wrote the manifest.
async fn commit_new(
    state: &AppState,
    id: &PyramidId,
    dzi: &Dzi,
    committer: &str,
    source: TileSource<'_>,
    layout: &Layout,
) -> Result<bool> {
    let key = Key::Dzi(id.clone());
    let tile_count = layout.tile_count();
    if let TileSource::Staged(writer) = source {
        let staged: HashSet<TileName> = state
            .store
            .list_staged(writer, id)
            .await?
            .into_iter()
            .collect();
        check_complete(layout, dzi.format, &staged)?;
        promote(state, writer, id, layout_tiles(layout, dzi.format)).await?;
    }
    let stored: HashSet<TileName> = state.store.list_tiles(id).await?.into_iter().collect();
    check_complete(layout, dzi.format, &stored)?;

    // Tiles outside the geometry (or of another format) were stored before any
    // geometry was known; they are removed so that a committed pyramid holds
    // exactly its own tiles and no stray object is ever served as part of it.
    let strays: Vec<TileName> = stored
        .iter()
        .filter(|t| t.format != dzi.format || layout.tile_rect(t.level, t.col, t.row).is_err())
        .copied()
        .collect();
    remove_tiles(state, id, &strays).await?;
    if !strays.is_empty() {
        tracing::info!(%id, strays = strays.len(), "removed tiles outside the committed geometry");
    }

    // Who committed: recorded before the manifest, so a committed pyramid always has it.
    record_committer(state, id, committer).await?;
    // Stored in the exact form vips writes, whatever spelling the client sent.
    let canonical = Bytes::from(dzi.to_xml());
    match state.store.put_if_absent(&key, canonical).await? {
        PutOutcome::Created => {
            // A DELETE through another instance may have removed tiles between the
            // check above and the manifest: look again, and take the manifest back
            // rather than leave a pyramid without its tiles.
            let now: HashSet<TileName> = state.store.list_tiles(id).await?.into_iter().collect();
            let lost = layout_tiles(layout, dzi.format)
                .filter(|t| !now.contains(t))
                .count();
            if lost > 0 {
                state.store.delete(&key).await?;
                state.committed.remove(id);
                tracing::warn!(%id, lost, "commit raced a delete; manifest taken back");
                return Err(AppError::Conflict {
                    code: "commit_race",
                    message: format!(
                        "{lost} tiles were deleted during the commit; upload them again"
                    ),
                    missing: None,
                });
            }
            tracing::info!(%id, tile_count, %committer, "pyramid committed");
            clear_staging(state, id, source).await;
            Ok(true)
        }
        PutOutcome::Exists => {
            let existing = state
                .store
                .get(&key)
                .await?
                .ok_or_else(|| AppError::Conflict {
                    code: "commit_race",
                    message: "the pyramid was committed and deleted meanwhile; retry".into(),
                    missing: None,
                })?;
            same_manifest(id, &existing, dzi)?;
            clear_staging(state, id, source).await;
            Ok(false)
        }
    }
}

/// Copies `writer`'s staged `tiles` of `id` to their final keys.
async fn promote(
    state: &AppState,
    writer: &WriterId,
    id: &PyramidId,
    tiles: impl Iterator<Item = TileName>,
) -> Result<()> {
    futures::stream::iter(tiles)
        .map(|tile| {
            let store = state.store.clone();
            let from = Key::Staged(*writer, id.clone(), tile);
            let to = Key::Tile(id.clone(), tile);
            async move { store.copy(&from, &to).await }
        })
        .buffer_unordered(STORE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Removes the committing writer's staged copies once the pyramid is committed; a
/// failure only leaves them to the sweeper (`--upload-ttl`).
async fn clear_staging(state: &AppState, id: &PyramidId, source: TileSource<'_>) {
    if let TileSource::Staged(writer) = source {
        if let Err(e) = state.store.delete_staged(writer, id).await {
            tracing::warn!(%id, error = %e, "staged tiles left for the sweeper");
        }
    }
}

/// The record of who committed a pyramid.
#[derive(Debug, Serialize, Deserialize)]
struct CommitterRecord {
    subject: String,
}

async fn record_committer(state: &AppState, id: &PyramidId, subject: &str) -> Result<()> {
    let record = serde_json::to_vec(&CommitterRecord {
        subject: subject.to_owned(),
    })
    .map_err(|e| AppError::Internal(format!("committer record: {e}")))?;
    match state
        .store
        .put_if_absent(&Key::Committer(id.clone()), Bytes::from(record))
        .await?
    {
        // The first committer stays recorded (an identical re-commit changes nothing).
        PutOutcome::Created | PutOutcome::Exists => Ok(()),
    }
}

/// The subject recorded as `id`'s committer, if any.
pub async fn committer_of(state: &AppState, id: &PyramidId) -> Result<Option<String>> {
    let Some(bytes) = state.store.get(&Key::Committer(id.clone())).await? else {
        return Ok(None);
    };
    let record: CommitterRecord = serde_json::from_slice(&bytes)
        .map_err(|e| AppError::Internal(format!("committer record of {id}: {e}")))?;
    Ok(Some(record.subject))
}

async fn remove_tiles(state: &AppState, id: &PyramidId, tiles: &[TileName]) -> Result<()> {
    let keys: Vec<Key> = tiles.iter().map(|t| Key::Tile(id.clone(), *t)).collect();
    futures::stream::iter(keys)
        .map(|key| {
            let store = state.store.clone();
            async move { store.delete(&key).await }
        })
        .buffer_unordered(STORE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

fn same_manifest(id: &PyramidId, existing: &[u8], dzi: &Dzi) -> Result<()> {
    let existing =
        Dzi::parse(existing).map_err(|e| AppError::Internal(format!("stored {id}.dzi: {e}")))?;
    if existing == *dzi {
        Ok(())
    } else {
        Err(AppError::Conflict {
            code: "already_committed",
            message: format!("pyramid {id} is committed with a different manifest"),
            missing: None,
        })
    }
}
