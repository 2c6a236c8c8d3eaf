//! The local-disk store (the default): objects are files under one folder, laid out
//! exactly as `vips dzsave` writes a pyramid.
//!
//! Writes go to a temporary file in the target folder and are then renamed into
//! place, so readers never see a partial tile, even if the process dies mid-write
//! (the temporary names are hidden and never parse as tiles). Tiles are not synced
//! one by one; the commit syncs them all, then writes the manifest synced. The commit uses a hard link, which
//! fails when the target exists: create-new semantics without a check-then-act race.

use super::{
    job_of_record_name, staged_prefix, tiles_prefix, JobId, Key, PutOutcome, PyramidId, Store,
    TileName, Version, WriterId, JOBS_PREFIX, STAGING_PREFIX,
};
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

/// Links made again when the source was being replaced (see [`link_retrying`]).
const LINK_ATTEMPTS: usize = 3;

/// `hard_link(source, link)`, made again while `source` still exists: a link to a file
/// that an upload is renaming a new copy over at that moment can fail with "not
/// found" (Linux refuses to link an inode whose last name just went), though the name
/// is there again at once, for the new copy.
fn link_retrying(source: &Path, link: &Path) -> std::io::Result<()> {
    let mut attempt = 1;
    loop {
        match std::fs::hard_link(source, link) {
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && attempt < LINK_ATTEMPTS
                    && source.exists() =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Attempts to create a file whose folder the staging sweeper may remove between
/// `create_dir_all` and the create (it removes empty folders).
const CREATE_ATTEMPTS: usize = 3;

/// Creates `path` new, with its folders; tries again if a folder vanished meanwhile.
fn create_new_with_dirs(path: &Path) -> std::io::Result<std::fs::File> {
    let mut attempt = 0;
    loop {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::File::create_new(path) {
            Err(e) if e.kind() == ErrorKind::NotFound && attempt + 1 < CREATE_ATTEMPTS => {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Writes `bytes` to a fresh temporary file beside `target` and returns its path.
fn write_temp(target: &Path, bytes: &[u8], durable: bool) -> std::io::Result<PathBuf> {
    let temp = temp_path(target);
    let written = create_new_with_dirs(&temp).and_then(|mut file| {
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

/// The tiles under a `{id}_files/` folder (absent: none), sorted.
fn list_tiles_in(dir: &Path) -> std::io::Result<Vec<TileName>> {
    let mut tiles = Vec::new();
    let Some(levels) = absent_is_none(std::fs::read_dir(dir))? else {
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
                if let Some(tile) = TileName::parse_relative(&format!("{level_name}/{name}")) {
                    tiles.push(tile);
                }
            }
        }
    }
    tiles.sort();
    Ok(tiles)
}

/// The version of a file's bytes: their SHA-256 (records are small; a digest, unlike a
/// modification time, changes with every write however close together).
fn version_of(bytes: &[u8]) -> Version {
    use sha2::{Digest, Sha256};
    Version(hex::encode(Sha256::digest(bytes)))
}

/// Runs `f` holding an exclusive lock on `{root}/jobs/.lock`: compare-and-swap writes
/// of records are serialised across every process sharing the folder.
fn with_records_lock<T>(root: &Path, f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    let dir = root.join(JOBS_PREFIX);
    std::fs::create_dir_all(&dir)?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))?;
    lock.lock()?;
    let result = f();
    let _ = lock.unlock();
    result
}

/// Renames `dir` to a hidden name in `parent`, then removes it, so that readers and
/// listers see all of its tiles or none; returns whether it existed.
fn remove_tree_at_once(dir: &Path, parent: &Path, name: &str) -> std::io::Result<bool> {
    let doomed = parent.join(format!(
        ".{name}.deleting-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    if absent_is_none(std::fs::rename(dir, &doomed))?.is_none() {
        return Ok(false);
    }
    std::fs::remove_dir_all(&doomed)?;
    Ok(true)
}

/// Removes the files under `dir` last modified before `cutoff`, then the folders left
/// empty that are older too (a fresh empty folder may be about to get a file).
fn sweep_tree(dir: &Path, cutoff: std::time::SystemTime) -> std::io::Result<u64> {
    let Some(entries) = absent_is_none(std::fs::read_dir(dir))? else {
        return Ok(0);
    };
    let mut removed = 0u64;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let Some(meta) = absent_is_none(std::fs::symlink_metadata(&path))? else {
            continue;
        };
        if meta.is_dir() {
            removed = removed.saturating_add(sweep_tree(&path, cutoff)?);
            let old = std::fs::metadata(&path).and_then(|m| m.modified());
            if old.is_ok_and(|t| t < cutoff) {
                // Fails (and is left) when not empty: a younger file is still inside.
                let _ = std::fs::remove_dir(&path);
            }
        } else if meta.modified()? < cutoff
            && absent_is_none(std::fs::remove_file(&path))?.is_some()
        {
            removed = removed.saturating_add(1);
        }
    }
    Ok(removed)
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
            let mut attempt = 1;
            loop {
                let temp = write_temp(&target, &bytes, false)?;
                match std::fs::rename(&temp, &target) {
                    Ok(()) => return Ok(()),
                    // The folder was moved away meanwhile, with the temporary file in it
                    // (a commit clearing the same writer's staging, a sweep): write again.
                    Err(e) if e.kind() == ErrorKind::NotFound && attempt < CREATE_ATTEMPTS => {
                        let _ = std::fs::remove_file(&temp);
                        attempt += 1;
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(&temp);
                        return Err(e);
                    }
                }
            }
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, bytes), fields(key = %key.path(), len = bytes.len()))]
    async fn put_if_absent(&self, key: &Key, bytes: Bytes) -> Result<PutOutcome> {
        let target = self.path(key);
        let root = self.root.clone();
        let tiles = match key {
            Key::Dzi(id) => Some(self.root.join(tiles_prefix(id))),
            Key::Tile(..)
            | Key::Committer(_)
            | Key::Staged(..)
            | Key::Job(_)
            | Key::Source(_)
            | Key::CommitLock(_) => None,
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
        blocking(move || list_tiles_in(&dir)).await
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
        let root = self.root.clone();
        let name = format!("{id}_files");
        blocking(move || {
            remove_tree_at_once(&dir, &root, &name)?;
            Ok(count)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_staged(&self, writer: &WriterId, id: &PyramidId) -> Result<Vec<TileName>> {
        let dir = self.root.join(staged_prefix(writer, id));
        blocking(move || list_tiles_in(&dir)).await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(from = %from.path(), to = %to.path()))]
    async fn copy(&self, from: &Key, to: &Key) -> Result<()> {
        let (source, target) = (self.path(from), self.path(to));
        blocking(move || {
            // A hard link shares the bytes (stored files are never changed in place:
            // every write renames a new file over the name); renamed over the target,
            // so readers see the old tile or the new one.
            let temp = temp_path(&target);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            link_retrying(&source, &temp)?;
            let renamed = std::fs::rename(&temp, &target);
            // Renaming onto a link of the same file does nothing (POSIX) and leaves
            // the temporary name: remove it whatever happened.
            absent_is_none(std::fs::remove_file(&temp))?;
            renamed
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn delete_staged(&self, writer: &WriterId, id: &PyramidId) -> Result<u64> {
        let count = self.list_staged(writer, id).await?.len() as u64;
        let parent = self.root.join(STAGING_PREFIX).join(writer.to_string());
        let dir = self.root.join(staged_prefix(writer, id));
        let name = format!("{id}_files");
        blocking(move || {
            remove_tree_at_once(&dir, &parent, &name)?;
            // The writer's folder goes too once empty (fails, harmlessly, if not).
            let _ = std::fs::remove_dir(&parent);
            Ok(count)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key.path()))]
    async fn get_versioned(&self, key: &Key) -> Result<Option<(Bytes, Version)>> {
        let path = self.path(key);
        blocking(move || {
            let bytes = absent_is_none(std::fs::read(path))?;
            Ok(bytes.map(|b| {
                let version = version_of(&b);
                (Bytes::from(b), version)
            }))
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self, bytes, version), fields(key = %key.path()))]
    async fn put_if_version(
        &self,
        key: &Key,
        bytes: Bytes,
        version: &Version,
    ) -> Result<Option<Version>> {
        let (target, root, expected) = (self.path(key), self.root.clone(), version.clone());
        blocking(move || {
            with_records_lock(&root, || {
                let current = absent_is_none(std::fs::read(&target))?;
                if current.as_deref().map(version_of) != Some(expected) {
                    return Ok(None);
                }
                let temp = write_temp(&target, &bytes, false)?;
                std::fs::rename(&temp, &target).inspect_err(|_| {
                    let _ = std::fs::remove_file(&temp);
                })?;
                Ok(Some(version_of(&bytes)))
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_jobs(&self) -> Result<Vec<JobId>> {
        let dir = self.root.join(JOBS_PREFIX);
        blocking(move || {
            let Some(entries) = absent_is_none(std::fs::read_dir(dir))? else {
                return Ok(Vec::new());
            };
            let mut jobs = Vec::new();
            for entry in entries {
                if let Some(job) = entry?.file_name().to_str().and_then(job_of_record_name) {
                    jobs.push(job);
                }
            }
            jobs.sort();
            Ok(jobs)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn sweep_staged(&self, cutoff: std::time::SystemTime) -> Result<u64> {
        let dir = self.root.join(STAGING_PREFIX);
        blocking(move || sweep_tree(&dir, cutoff)).await
    }

    fn describe(&self) -> String {
        format!("disk store at {}", self.root.display())
    }
}
