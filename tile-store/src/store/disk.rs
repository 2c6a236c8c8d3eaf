//! The local-disk store (the default): objects are files under one folder, laid out
//! exactly as `vips dzsave` writes a pyramid.
//!
//! Writes go to a temporary file in the target folder and are then renamed into
//! place, so readers never see a partial tile, even if the process dies mid-write
//! (the temporary names are hidden and never parse as tiles). Tiles are not synced
//! one by one; the commit syncs them all, then writes the manifest synced. The commit uses a hard link, which
//! fails when the target exists: create-new semantics without a check-then-act race.

use super::{tiles_prefix, Key, PutOutcome, PyramidId, Store, TileName};
use crate::error::{AppError, Result};
use async_trait::async_trait;
use bytes::Bytes;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Objects stored as files under `root`.
#[derive(Debug)]
pub struct DiskStore {
    root: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl DiskStore {
    /// A store rooted at `root`, which is created if missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(DiskStore { root })
    }

    /// The folder objects are kept in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.root.join(key.path())
    }
}

/// A unique hidden name next to `target`; hidden names never parse as tiles.
fn temp_path(target: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes `bytes` to a fresh temporary file beside `target` and returns its path.
fn write_temp(target: &Path, bytes: &[u8], durable: bool) -> std::io::Result<PathBuf> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let temp = temp_path(target);
    let written = std::fs::File::create_new(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        Ok(())
    });
    match written {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Flushes a folder's entries (new names, renames) to disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Flushes every file and folder under `dir` (absent is fine) to disk.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    let Some(entries) = absent_is_none(std::fs::read_dir(dir))? else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        // A concurrent upload's temporary file (hidden, never a tile) may be renamed
        // away while we walk: it is not ours to sync, and its tile is synced by name.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.path())?;
        } else if let Some(file) = absent_is_none(std::fs::File::open(entry.path()))? {
            file.sync_all()?;
        }
    }
    sync_dir(dir)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(format!("disk task failed: {e}")))?
        .map_err(AppError::from)
}

fn absent_is_none<T>(result: std::io::Result<T>) -> std::io::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Store for DiskStore {
    #[tracing::instrument(level = "debug", skip(self), fields(key = %key.path()))]
    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        let path = self.path(key);
        blocking(move || absent_is_none(std::fs::read(path)).map(|b| b.map(Bytes::from))).await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key.path()))]
    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        let path = self.path(key);
        blocking(move || absent_is_none(std::fs::metadata(path)).map(|m| m.map(|m| m.len()))).await
    }

    #[tracing::instrument(level = "debug", skip(self, bytes), fields(key = %key.path(), len = bytes.len()))]
    async fn put(&self, key: &Key, bytes: Bytes) -> Result<()> {
        let target = self.path(key);
        blocking(move || {
            let temp = write_temp(&target, &bytes, false)?;
            std::fs::rename(&temp, &target).inspect_err(|_| {
                let _ = std::fs::remove_file(&temp);
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, bytes), fields(key = %key.path(), len = bytes.len()))]
    async fn put_if_absent(&self, key: &Key, bytes: Bytes) -> Result<PutOutcome> {
        let target = self.path(key);
        let root = self.root.clone();
        let tiles = match key {
            Key::Dzi(id) => Some(self.root.join(tiles_prefix(id))),
            Key::Tile(..) | Key::Committer(_) => None,
        };
        blocking(move || {
            // Tiles are written without fsync (rename alone keeps them whole across a
            // process crash); before a manifest declares them complete they are synced,
            // so that a committed pyramid also survives a power cut whole.
            if let Some(tiles) = tiles {
                sync_tree(&tiles)?;
            }
            let temp = write_temp(&target, &bytes, true)?;
            let linked = std::fs::hard_link(&temp, &target);
            let _ = std::fs::remove_file(&temp);
            match linked {
                Ok(()) => {
                    sync_dir(&root)?;
                    Ok(PutOutcome::Created)
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(PutOutcome::Exists),
                Err(e) => Err(e),
            }
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_tiles(&self, id: &PyramidId) -> Result<Vec<TileName>> {
        let dir = self.root.join(tiles_prefix(id));
        blocking(move || {
            let mut tiles = Vec::new();
            let Some(levels) = absent_is_none(std::fs::read_dir(&dir))? else {
                return Ok(tiles);
            };
            for level in levels {
                let level = level?;
                let Some(level_name) = level.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let Some(files) = absent_is_none(std::fs::read_dir(level.path()))? else {
                    continue;
                };
                for file in files {
                    let file = file?;
                    if let Some(name) = file.file_name().to_str() {
                        if let Some(tile) =
                            TileName::parse_relative(&format!("{level_name}/{name}"))
                        {
                            tiles.push(tile);
                        }
                    }
                }
            }
            tiles.sort();
            Ok(tiles)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key.path()))]
    async fn delete(&self, key: &Key) -> Result<()> {
        let path = self.path(key);
        blocking(move || absent_is_none(std::fs::remove_file(path)).map(|_| ())).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn delete_tiles(&self, id: &PyramidId) -> Result<u64> {
        let count = self.list_tiles(id).await?.len() as u64;
        let dir = self.root.join(tiles_prefix(id));
        // Renamed away first so that readers and listers see all tiles or none.
        let doomed = self.root.join(format!(
            ".{id}_files.deleting-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        blocking(move || {
            if absent_is_none(std::fs::rename(&dir, &doomed))?.is_some() {
                std::fs::remove_dir_all(&doomed)?;
            }
            Ok(count)
        })
        .await
    }

    fn describe(&self) -> String {
        format!("disk store at {}", self.root.display())
    }
}
