//! One-file pyramids: the `.szi` container `vips dzsave out.szi` writes, a ZIP archive of stored
//! (uncompressed) entries `<name>/<name>.dzi` and `<name>/<name>_files/<level>/<col>_<row>.<ext>`.
//!
//! Tiles are already compressed, so entries are stored as they are; every entry carries ZIP64
//! sizes and offsets (as vips writes them), so that archives past 4 GiB and 65,535 entries are
//! valid. Entries are written as tiles arrive, from any thread, so the archive never needs the
//! whole pyramid in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

/// "Version needed to extract" and "made by" for ZIP64: 4.5.
const ZIP64_VERSION: u16 = 45;
/// General-purpose flag: names are UTF-8.
const UTF8_NAMES: u16 = 1 << 11;
/// 1980-01-01 00:00, the earliest DOS date: fixed, so that the same pyramid gives the same bytes.
const DOS_DATE: u16 = (1 << 5) | 1;

/// An entry written, for the central directory.
struct Entry {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
}

struct Inner {
    out: BufWriter<File>,
    written: u64,
    entries: Vec<Entry>,
}

/// A `.szi` archive being written; [`SziWriter::finish`] completes it.
pub struct SziWriter {
    inner: Mutex<Inner>,
}

impl SziWriter {
    /// Creates (or truncates) the archive at `path`.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(SziWriter {
            inner: Mutex::new(Inner {
                out: BufWriter::with_capacity(1 << 20, File::create(path)?),
                written: 0,
                entries: Vec::new(),
            }),
        })
    }

    /// Appends one stored entry.
    pub fn add(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        let name_len = u16::try_from(name.len())
            .map_err(|_| std::io::Error::other(format!("entry name too long: {name}")))?;
        let crc = crc32fast::hash(data);
        let size = data.len() as u64;
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let offset = inner.written;
        let mut header = Vec::with_capacity(30 + name.len() + 20);
        header.extend(0x0403_4b50u32.to_le_bytes());
        header.extend(ZIP64_VERSION.to_le_bytes());
        header.extend(UTF8_NAMES.to_le_bytes());
        header.extend(0u16.to_le_bytes()); // stored
        header.extend(0u16.to_le_bytes()); // time
        header.extend(DOS_DATE.to_le_bytes());
        header.extend(crc.to_le_bytes());
        header.extend(u32::MAX.to_le_bytes()); // sizes in the ZIP64 field
        header.extend(u32::MAX.to_le_bytes());
        header.extend(name_len.to_le_bytes());
        header.extend(20u16.to_le_bytes());
        header.extend(name.as_bytes());
        header.extend(1u16.to_le_bytes()); // ZIP64 extended information
        header.extend(16u16.to_le_bytes());
        header.extend(size.to_le_bytes());
        header.extend(size.to_le_bytes());
        inner.out.write_all(&header)?;
        inner.out.write_all(data)?;
        inner.written += header.len() as u64 + size;
        inner.entries.push(Entry {
            name: name.to_owned(),
            crc,
            size,
            offset,
        });
        Ok(())
    }

    /// Writes the central directory and the ZIP64 end records, and flushes the file.
    pub fn finish(self) -> std::io::Result<()> {
        let mut inner = self
            .inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let start = inner.written;
        let mut directory = Vec::new();
        for e in &inner.entries {
            directory.extend(0x0201_4b50u32.to_le_bytes());
            directory.extend(ZIP64_VERSION.to_le_bytes());
            directory.extend(ZIP64_VERSION.to_le_bytes());
            directory.extend(UTF8_NAMES.to_le_bytes());
            directory.extend(0u16.to_le_bytes());
            directory.extend(0u16.to_le_bytes());
            directory.extend(DOS_DATE.to_le_bytes());
            directory.extend(e.crc.to_le_bytes());
            directory.extend(u32::MAX.to_le_bytes());
            directory.extend(u32::MAX.to_le_bytes());
            // Names were checked to fit a u16 when added.
            directory.extend((e.name.len() as u16).to_le_bytes());
            directory.extend(28u16.to_le_bytes());
            directory.extend(0u16.to_le_bytes()); // comment
            directory.extend(0u16.to_le_bytes()); // disk
            directory.extend(0u16.to_le_bytes()); // internal attributes
            directory.extend(0u32.to_le_bytes()); // external attributes
            directory.extend(u32::MAX.to_le_bytes()); // offset in the ZIP64 field
            directory.extend(e.name.as_bytes());
            directory.extend(1u16.to_le_bytes());
            directory.extend(24u16.to_le_bytes());
            directory.extend(e.size.to_le_bytes());
            directory.extend(e.size.to_le_bytes());
            directory.extend(e.offset.to_le_bytes());
        }
        let count = inner.entries.len() as u64;
        let size = directory.len() as u64;
        let end64 = start + size;
        let mut tail = Vec::with_capacity(56 + 20 + 22);
        tail.extend(0x0606_4b50u32.to_le_bytes());
        tail.extend(44u64.to_le_bytes());
        tail.extend(ZIP64_VERSION.to_le_bytes());
        tail.extend(ZIP64_VERSION.to_le_bytes());
        tail.extend(0u32.to_le_bytes());
        tail.extend(0u32.to_le_bytes());
        tail.extend(count.to_le_bytes());
        tail.extend(count.to_le_bytes());
        tail.extend(size.to_le_bytes());
        tail.extend(start.to_le_bytes());
        tail.extend(0x0706_4b50u32.to_le_bytes());
        tail.extend(0u32.to_le_bytes());
        tail.extend(end64.to_le_bytes());
        tail.extend(1u32.to_le_bytes());
        tail.extend(0x0605_4b50u32.to_le_bytes());
        tail.extend(0u16.to_le_bytes());
        tail.extend(0u16.to_le_bytes());
        tail.extend(u16::MAX.to_le_bytes());
        tail.extend(u16::MAX.to_le_bytes());
        tail.extend(u32::MAX.to_le_bytes());
        tail.extend(u32::MAX.to_le_bytes());
        tail.extend(0u16.to_le_bytes());
        inner.out.write_all(&directory)?;
        inner.out.write_all(&tail)?;
        inner.out.flush()
    }
}
