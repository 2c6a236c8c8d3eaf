//! One-file pyramids: the `.szi` container `vips dzsave out.szi` writes, a ZIP archive of
//! stored (uncompressed) entries `<name>/<name>_files/<level>/<col>_<row>.<ext>` and then
//! `<name>/<name>.dzi`. Used by `tile-store tile --container szi` and by
//! `GET /pyramids/{id}.szi`.
//!
//! The archive is written by `async_zip`, a maintained streaming ZIP writer over any async
//! writer (a file, a response body): entries go out as tiles arrive, ZIP64 is used past
//! 4 GiB, and only the central directory (about 90 bytes a tile) is held until the end.

use async_zip::tokio::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use tokio::io::AsyncWrite;

/// The entry of a tile, by its path in the pyramid (`{level}/{col}_{row}.{ext}`).
pub fn tile_entry(name: &str, relative: &str) -> String {
    format!("{name}/{name}_files/{relative}")
}

/// The entry of the manifest, written last.
pub fn manifest_entry(name: &str) -> String {
    format!("{name}/{name}.dzi")
}

/// An archive written to `W` entry by entry.
pub struct SziStream<W: AsyncWrite + Unpin> {
    zip: ZipFileWriter<W>,
}

impl<W: AsyncWrite + Unpin> SziStream<W> {
    /// An empty archive on `out`.
    pub fn new(out: W) -> Self {
        SziStream {
            zip: ZipFileWriter::with_tokio(out),
        }
    }

    /// Appends one stored entry.
    pub async fn add(&mut self, entry: String, data: &[u8]) -> std::io::Result<()> {
        let builder = ZipEntryBuilder::new(entry.into(), Compression::Stored);
        self.zip
            .write_entry_whole(builder, data)
            .await
            .map_err(std::io::Error::other)
    }

    /// Writes the central directory; returns the writer.
    pub async fn finish(self) -> std::io::Result<W> {
        let out = self.zip.close().await.map_err(std::io::Error::other)?;
        Ok(out.into_inner())
    }
}

/// Tiles waiting for the archive's writer thread.
const QUEUED_ENTRIES: usize = 64;

/// An archive file fed from any thread (the tiler's), written by a thread of its own.
pub struct SziWriter {
    entries: SyncSender<(String, Vec<u8>)>,
    writer: std::thread::JoinHandle<std::io::Result<()>>,
}

impl SziWriter {
    /// Creates (or truncates) the archive at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::File::create(path)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (entries, queue) = sync_channel::<(String, Vec<u8>)>(QUEUED_ENTRIES);
        let writer = std::thread::spawn(move || {
            runtime.block_on(async move {
                let out =
                    tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
                let mut archive = SziStream::new(out);
                // Ends when the sender is dropped by `finish` (or the tiler failed).
                while let Ok((entry, data)) = queue.recv() {
                    archive.add(entry, &data).await?;
                }
                let mut out = archive.finish().await?;
                tokio::io::AsyncWriteExt::flush(&mut out).await
            })
        });
        Ok(SziWriter { entries, writer })
    }

    /// Queues one stored entry.
    pub fn add(&self, entry: String, data: Vec<u8>) -> std::io::Result<()> {
        self.entries
            .send((entry, data))
            .map_err(|_| std::io::Error::other("the archive's writer stopped"))
    }

    /// Writes the central directory and flushes the file.
    pub fn finish(self) -> std::io::Result<()> {
        drop(self.entries);
        self.writer
            .join()
            .map_err(|_| std::io::Error::other("the archive's writer panicked"))?
    }
}
