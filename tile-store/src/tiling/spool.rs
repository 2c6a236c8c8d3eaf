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
}

fn spool_error(what: &str, e: std::io::Error) -> AppError {
    AppError::Internal(format!("spooling the source: {what}: {e}"))
}

impl Spool {
    /// A new, empty file in `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        let named = tempfile::Builder::new()
            .prefix("tessera-source-")
            .tempfile_in(dir)
            .map_err(|e| spool_error(&format!("create a file in {}", dir.display()), e))?;
        let (file, path) = named.into_parts();
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
}
