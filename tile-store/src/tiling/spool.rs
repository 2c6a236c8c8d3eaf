//! Fetched sources (URLs, S3 objects) are spooled to a file as they arrive, never
//! held in memory: a TIFF, BigTIFF or non-interlaced PNG then streams from the file in memory
//! bounded by its width, whatever its size. The pyramid id is hashed on the way in,
//! so the bytes are not read a second time for it.

use crate::error::{AppError, Result};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use tempfile::TempPath;
use tiler_wasm::{IdHasher, Options};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A source being written to the spool folder (an [`AsyncWrite`] that hashes what it
/// writes).
pub struct Spool {
    file: tokio::fs::File,
    path: TempPath,
    hasher: IdHasher,
    len: u64,
}

/// A whole source in the spool folder; the file is removed when this is dropped.
pub struct Spooled {
    /// The file.
    pub path: TempPath,
    /// Its length in bytes.
    pub len: u64,
    hasher: IdHasher,
    /// Keeps the file's lock (see [`sweep_orphans`]) until it is removed.
    _locked: std::fs::File,
}

fn spool_error(what: &str, e: std::io::Error) -> AppError {
    AppError::Internal(format!("spooling the source: {what}: {e}"))
}

impl Spool {
    /// A new, empty file in `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        let named = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempfile_in(dir)
            .map_err(|e| spool_error(&format!("create a file in {}", dir.display()), e))?;
        let (file, path) = named.into_parts();
        // Held for the file's life, so a sweep can tell it from one whose process died.
        file.try_lock()
            .map_err(|e| spool_error("lock the new file", std::io::Error::other(e)))?;
        Ok(Spool {
            file: tokio::fs::File::from_std(file),
            path,
            hasher: IdHasher::new(),
            len: 0,
        })
    }

    /// The whole source, flushed to its file.
    pub async fn finish(mut self) -> Result<Spooled> {
        self.file
            .flush()
            .await
            .map_err(|e| spool_error("flush", e))?;
        Ok(Spooled {
            path: self.path,
            len: self.len,
            hasher: self.hasher,
            _locked: self.file.into_std().await,
        })
    }
}

impl AsyncWrite for Spool {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.file).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.hasher.update(&buf[..n]);
            this.len = this.len.saturating_add(n as u64);
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

/// The prefix of every spooled source's file name.
const PREFIX: &str = "tessera-source-";

/// Spooled files younger than this are left alone by a sweep: a file is locked just after
/// it is made, and this leaves that moment out of the question.
const SWEEP_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the spooled sources in `dir` that no live process holds: the files a process
/// killed mid-job left behind (each live one is locked by its owner, and a lock dies with
/// its process). Other instances sharing `dir` keep theirs. Returns how many were removed.
pub fn sweep_orphans(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(PREFIX)) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= SWEEP_MIN_AGE);
        if !meta.is_file() || !old {
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        if file.try_lock().is_ok() && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

impl Spooled {
    /// The pyramid id of these bytes tiled with `options` (hashed as they were written).
    pub fn pyramid_id(&self, options: &Options) -> String {
        self.hasher.clone().finish(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spooled_source_has_the_bytes_and_id_of_the_source_and_goes_when_dropped() {
        let dir = tempfile::tempdir().expect("dir");
        let mut spool = Spool::create(dir.path()).expect("spool");
        let source: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in source.chunks(7_919) {
            spool.write_all(chunk).await.expect("write");
        }
        let spooled = spool.finish().await.expect("finish");
        assert_eq!(spooled.len, source.len() as u64);
        assert_eq!(std::fs::read(&spooled.path).expect("read"), source);
        let options = Options::default();
        assert_eq!(
            spooled.pyramid_id(&options),
            tiler_wasm::pyramid_id(&source, &options)
        );
        let path = spooled.path.to_path_buf();
        drop(spooled);
        assert!(!path.exists(), "the spooled file is removed with it");
    }

    /// Marks `path` as last written an hour ago, past the sweep's minimum age.
    fn age(path: &Path) {
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(hour_ago))
            .expect("set mtime");
    }

    #[tokio::test]
    async fn a_sweep_removes_the_files_of_dead_owners_and_keeps_live_and_young_ones() {
        let dir = tempfile::tempdir().expect("dir");
        // A live job's source, old enough to be considered.
        let mut live = Spool::create(dir.path()).expect("spool");
        live.write_all(b"live").await.expect("write");
        let live = live.finish().await.expect("finish");
        age(&live.path);
        // What a killed process leaves: the file, old, and nobody's lock on it.
        let dead = dir.path().join(format!("{PREFIX}dead"));
        std::fs::write(&dead, b"dead").expect("write");
        age(&dead);
        // Unlocked but just made (the moment between creating a file and locking it).
        let young = dir.path().join(format!("{PREFIX}young"));
        std::fs::write(&young, b"young").expect("write");
        // Not a spooled source at all.
        let other = dir.path().join("someone-elses");
        std::fs::write(&other, b"other").expect("write");
        age(&other);

        assert_eq!(sweep_orphans(dir.path()).expect("sweep"), 1);
        assert!(!dead.exists(), "the dead owner's file is removed");
        assert!(live.path.exists(), "the live job's file stays");
        assert_eq!(std::fs::read(&live.path).expect("read"), b"live");
        assert!(young.exists(), "a young file stays");
        assert!(other.exists(), "another program's file stays");
    }
}
