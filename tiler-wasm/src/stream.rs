//! Pyramids in bounded memory: rows of the full-resolution image go in top to
//! bottom, finished tiles come out as soon as the rows they cover are complete.
//!
//! Gigapixel sources (orthomosaics) do not fit in memory whole, so
//! [`StreamTiler`] keeps, for each level, only the rows its current row of tiles
//! still needs (at most `tile_size + 2·overlap`) and one row waiting for its
//! partner in the 2×2 shrink into the level below. Memory therefore depends on
//! the image's width, never its height. Each level is made from the one above
//! with [`crate::pyramid`]'s row shrink, and tiles are cut and encoded as the
//! whole-image walk does, so the tiles are byte for byte those of [`crate::Tiler`].

use crate::bitmap::Bitmap;
use crate::dzi::{Dzi, TileFormat};
use crate::encode;
use crate::error::{Error, Result};
use crate::layout::{Layout, TileAddr};
use crate::levelwise::{encode_rows, Band, Encoding};
use crate::meta::SourceFormat;
use crate::png_stream::PngSource;
use crate::pyramid::shrink_pair;
use crate::tiff_stream::TiffSource;
use crate::{Limits, Options, Tiler};
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Mutex, PoisonError};

/// A pyramid being built from rows pushed top to bottom (see the module documentation).
#[derive(Debug)]
pub struct StreamTiler {
    layout: Layout,
    format: TileFormat,
    quality: u8,
    channels: usize,
    /// Indexed by level.
    levels: Vec<Level>,
}

/// What one level holds while rows stream through it.
#[derive(Debug)]
struct Level {
    width: u32,
    height: u32,
    /// Image row of the first row in `rows`.
    first: u32,
    /// Packed rows `first..received`.
    rows: Vec<u8>,
    /// Rows received so far.
    received: u32,
    /// The first row of tiles not yet emitted.
    next_tile_row: u32,
    /// Rows of tiles in the level.
    tile_rows: u32,
    /// The last even row, waiting for the odd row below it to make one row of the next level.
    pending: Vec<u8>,
}

impl StreamTiler {
    /// A pyramid for an image of `width`×`height` pixels, RGBA when `has_alpha` and RGB
    /// otherwise, tiled with `options` (its decoding limits are the caller's to apply).
    pub fn new(width: u32, height: u32, has_alpha: bool, options: &Options) -> Result<Self> {
        let encoding = options.encoding(has_alpha)?;
        let layout = Layout::new(width, height, options.tile_size, options.overlap)?;
        let channels = if has_alpha { 4 } else { 3 };
        let mut levels = Vec::with_capacity(layout.level_count() as usize);
        for level in 0..layout.level_count() {
            let missing = || Error::NoSuchTile {
                level,
                col: 0,
                row: 0,
            };
            let (w, h) = layout.level_size(level).ok_or_else(missing)?;
            let (_, tile_rows) = layout.grid(level).ok_or_else(missing)?;
            levels.push(Level {
                width: w,
                height: h,
                first: 0,
                rows: Vec::new(),
                received: 0,
                next_tile_row: 0,
                tile_rows,
                pending: Vec::new(),
            });
        }
        Ok(StreamTiler {
            layout,
            format: encoding.format,
            quality: encoding.quality,
            channels,
            levels,
        })
    }

    /// The pyramid's geometry.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The tile format: as asked, or PNG for images with alpha and JPEG otherwise.
    pub fn format(&self) -> TileFormat {
        self.format
    }

    /// The `.dzi` manifest.
    pub fn dzi(&self) -> Dzi {
        Dzi::new(&self.layout, self.format)
    }

    /// Bytes in one full-resolution row: what [`StreamTiler::push_rows`] takes rows of.
    pub fn row_bytes(&self) -> usize {
        self.layout.width() as usize * self.channels
    }

    /// The most pixel memory the levels can hold at once, in bytes (saturating), so that a
    /// caller can refuse an image too wide for its memory before reading any of it.
    pub fn held_bytes(&self) -> u64 {
        let rows = u64::from(self.layout.tile_size()) + 2 * u64::from(self.layout.overlap()) + 1;
        self.levels.iter().fold(0u64, |sum, level| {
            let row = u64::from(level.width).saturating_mul(self.channels as u64);
            sum.saturating_add(row.saturating_mul(rows.min(u64::from(level.height) + 1)))
        })
    }

    /// This tiler, unless the levels' rows and `band_bytes` (what the source holds while it
    /// decodes one band) need more than `limits.max_alloc` bytes at once; `source` names the
    /// source in the refusal.
    pub(crate) fn within(
        self,
        band_bytes: u64,
        limits: &Limits,
        source: impl FnOnce() -> String,
    ) -> Result<Self> {
        let needed = self.held_bytes().saturating_add(band_bytes);
        if needed > limits.max_alloc {
            return Err(Error::Limits(format!(
                "streaming {} needs {needed} bytes at once, more than the {} allowed",
                source(),
                limits.max_alloc
            )));
        }
        Ok(self)
    }

    /// Takes the next whole rows of the full-resolution image (packed, [`Self::row_bytes`]
    /// each) and hands every tile they complete, on any level, to `f`, encoding on up to
    /// `threads` threads (the caller's included); stops at the first error.
    pub fn push_rows<E, F>(&mut self, rows: &[u8], threads: usize, f: &F) -> Result<(), E>
    where
        E: From<Error> + Send,
        F: Fn(TileAddr, Vec<u8>) -> Result<(), E> + Sync + ?Sized,
    {
        let encoding = self.encoding();
        let layout = self.layout;
        self.push_rows_to(rows, &mut |band, level, row| {
            encode_rows(band, level, row..row + 1, &layout, &encoding, threads, f)
        })
    }

    /// How tiles are encoded.
    pub(crate) fn encoding(&self) -> Encoding {
        Encoding {
            format: self.format,
            quality: self.quality,
        }
    }

    /// [`Self::push_rows`], handing each finished row of tiles to `on_band` as the band of
    /// level rows that holds it, with its level and tile row, instead of encoding it.
    pub(crate) fn push_rows_to<E>(
        &mut self,
        rows: &[u8],
        on_band: &mut dyn FnMut(&Band<'_>, u32, u32) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<Error>,
    {
        let row_bytes = self.row_bytes();
        if row_bytes == 0 || !rows.len().is_multiple_of(row_bytes) {
            return Err(Error::Decode(format!(
                "{} bytes are not whole rows of {row_bytes} bytes",
                rows.len()
            ))
            .into());
        }
        for row in rows.chunks_exact(row_bytes) {
            self.push_row(row, on_band)?;
        }
        Ok(())
    }

    /// Checks that every row arrived, which means every tile has been handed over.
    pub fn finish(self) -> Result<()> {
        let top = self.layout.max_level() as usize;
        match self.levels.get(top) {
            Some(level) if level.received == level.height => Ok(()),
            Some(level) => Err(Error::Decode(format!(
                "the image ended after {} of its {} rows",
                level.received, level.height
            ))),
            None => Err(Error::Decode("the pyramid has no levels".into())),
        }
    }

    /// One full-resolution row: stored, its finished tiles emitted, then shrunk into the
    /// levels below as far as rows pair up.
    fn push_row<E>(
        &mut self,
        row: &[u8],
        on_band: &mut dyn FnMut(&Band<'_>, u32, u32) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<Error>,
    {
        let channels = self.channels;
        let mut level = self.layout.max_level() as usize;
        let mut carried: Option<Vec<u8>> = None;
        loop {
            let current: &[u8] = carried.as_deref().unwrap_or(row);
            let lv = &mut self.levels[level];
            if lv.received >= lv.height {
                return Err(Error::Decode(format!(
                    "more than the {} rows the image declares",
                    self.layout.height()
                ))
                .into());
            }
            let y = lv.received;
            if lv.rows.capacity() == 0 {
                // The most this level ever holds, reserved once so that the buffer never doubles.
                let most = (self.layout.tile_size() + 2 * self.layout.overlap()).min(lv.height);
                lv.rows.reserve_exact(most as usize * current.len());
            }
            lv.rows.extend_from_slice(current);
            lv.received += 1;
            emit_finished_rows(lv, level as u32, &self.layout, channels, on_band)?;
            if level == 0 {
                return Ok(());
            }
            let last = y + 1 == lv.height;
            if y.is_multiple_of(2) && !last {
                lv.pending.clear();
                lv.pending.extend_from_slice(current);
                return Ok(());
            }
            // An odd height's last row pairs with itself, as the whole-image shrink replicates it.
            let above: &[u8] = if y.is_multiple_of(2) {
                current
            } else {
                &lv.pending
            };
            let width = lv.width as usize;
            let mut next = vec![0u8; width.div_ceil(2) * channels];
            shrink_pair(above, current, &mut next, width, channels);
            carried = Some(next);
            level -= 1;
        }
    }
}

/// Emits every row of tiles of `lv` whose pixels have all arrived, then drops the rows no
/// later row of tiles covers.
fn emit_finished_rows<E>(
    lv: &mut Level,
    level: u32,
    layout: &Layout,
    channels: usize,
    on_band: &mut dyn FnMut(&Band<'_>, u32, u32) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<Error>,
{
    let stride = lv.width as usize * channels;
    while lv.next_tile_row < lv.tile_rows {
        let r = lv.next_tile_row;
        let rect = layout.tile_rect(level, 0, r)?;
        if lv.received < rect.y + rect.height {
            return Ok(());
        }
        let band = Band {
            data: &lv.rows,
            width: lv.width,
            first_row: lv.first,
            height: lv.received - lv.first,
            channels,
        };
        on_band(&band, level, r)?;
        lv.next_tile_row += 1;
        let keep_from = if lv.next_tile_row < lv.tile_rows {
            layout.tile_rect(level, 0, lv.next_tile_row)?.y
        } else {
            lv.received
        };
        let drop = keep_from.saturating_sub(lv.first) as usize;
        lv.rows.drain(..(drop * stride).min(lv.rows.len()));
        lv.first = lv.first.max(keep_from);
    }
    Ok(())
}

/// Pushes `bands` (packed rows of the full-resolution image, top to bottom) into `tiler`, which
/// hands every tile to `f` as it is finished. With `threads` above one, three stages run at once:
/// a thread decodes the next band, this one shrinks levels and cuts finished tiles, and `threads`
/// workers encode them and call `f`, so no stage waits for a whole band of another. At most two
/// bands and a few dozen cut tiles are held beyond the levels' rows.
pub(crate) fn stream_bands<B, E, F>(
    bands: B,
    mut tiler: StreamTiler,
    threads: usize,
    f: &F,
) -> Result<(), E>
where
    B: Iterator<Item = Result<Vec<u8>>> + Send,
    E: From<Error> + Send,
    F: Fn(TileAddr, Vec<u8>) -> Result<(), E> + Sync + ?Sized,
{
    if threads <= 1 {
        for band in bands {
            tiler.push_rows(&band?, threads, f)?;
        }
        return tiler.finish().map_err(E::from);
    }
    let encoding = tiler.encoding();
    let layout = *tiler.layout();
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let fail = |e: E| {
        stop.store(true, Ordering::Relaxed);
        first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(e);
    };
    let (tile_sender, tiles) = sync_channel::<(TileAddr, Bitmap)>(8 * threads);
    let tiles = Mutex::new(tiles);
    let encode_one = |addr: TileAddr, tile: &Bitmap| {
        let outcome = encode::encode(tile, encoding.format, encoding.quality)
            .map_err(E::from)
            .and_then(|bytes| f(addr, bytes));
        if let Err(e) = outcome {
            fail(e);
        }
    };
    std::thread::scope(|scope| {
        let (band_sender, received) = sync_channel::<Result<Vec<u8>>>(1);
        let reader = std::thread::Builder::new().spawn_scoped(scope, move || {
            for band in bands {
                let failed = band.is_err();
                // A closed channel means the tiler stopped: nothing more to read.
                if band_sender.send(band).is_err() || failed {
                    return;
                }
            }
        });
        if let Err(e) = reader {
            fail(Error::Decode(format!("cannot start the source reader: {e}")).into());
            return;
        }
        let mut workers = 0;
        for _ in 0..threads {
            let spawned = std::thread::Builder::new().spawn_scoped(scope, || loop {
                let next = tiles.lock().unwrap_or_else(PoisonError::into_inner).recv();
                match next {
                    Ok((addr, tile)) if !stop.load(Ordering::Relaxed) => encode_one(addr, &tile),
                    Ok(_) => {} // stopping: drain so that the cutter never blocks
                    Err(_) => return,
                }
            });
            workers += usize::from(spawned.is_ok());
        }
        let mut cut = |band: &Band<'_>, level: u32, row: u32| -> Result<(), E> {
            let (cols, _) = layout
                .grid(level)
                .ok_or(Error::NoSuchTile { level, col: 0, row })?;
            for col in 0..cols {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let addr = TileAddr { level, col, row };
                let rect = layout.tile_rect(level, col, row)?;
                let tile = band.crop(rect)?;
                if workers == 0 {
                    encode_one(addr, &tile);
                } else if tile_sender.send((addr, tile)).is_err() {
                    return Err(Error::Decode("the tile encoders stopped".into()).into());
                }
            }
            Ok(())
        };
        let run = || -> Result<(), E> {
            for band in received.iter() {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                tiler.push_rows_to(&band?, &mut cut)?;
            }
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            tiler.finish().map_err(E::from)
        };
        if let Err(e) = run() {
            fail(e);
        }
        // Dropping the senders and receivers ends the workers and the reader.
        drop(tile_sender);
        drop(received);
    });
    match first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Every tile of one source's pyramid, by whichever path suits it: streamed for the TIFF and
/// BigTIFF variants [`TiffSource`] reads and the PNGs [`PngSource`] reads (memory bounded by the
/// width), decoded whole for everything else (memory bounded by [`crate::Limits`]). The CLI and
/// server jobs use this one choice so that they tile the same source the same way.
#[derive(Debug)]
pub enum Walk<R: Read + Seek> {
    /// A source read band by band.
    Streamed(Box<(Streamed<R>, StreamTiler)>),
    /// Any image decoded whole (boxed too: the variants' sizes differ by hundreds of bytes).
    Whole(Box<Tiler>),
}

/// A source that streams.
#[derive(Debug)]
// Held only inside `Walk::Streamed`'s box: a second box would save nothing.
#[allow(clippy::large_enum_variant)]
pub enum Streamed<R: Read + Seek> {
    /// Read strip by strip or tile row by tile row.
    Tiff(TiffSource<R>),
    /// Read row by row.
    Png(PngSource<R>),
}

impl<R: Read + Seek> Walk<R> {
    /// The streamed walk of `reader` when it is a TIFF or PNG whose variant streams; `None`
    /// when it is another format or a variant to decode whole (then see [`Walk::whole`]).
    pub fn streamed(mut reader: R, options: &Options) -> Result<Option<Self>> {
        let mut magic = [0u8; 8];
        let read = reader
            .read(&mut magic)
            .and_then(|n| reader.seek(SeekFrom::Start(0)).map(|_| n))
            .map_err(|e| Error::Decode(format!("cannot read the source: {e}")))?;
        let opened = match SourceFormat::sniff(&magic[..read]) {
            Some(SourceFormat::Tiff) => TiffSource::open(reader, &options.limits)
                .and_then(|source| Ok((source.tiler(options)?, Streamed::Tiff(source)))),
            Some(SourceFormat::Png) => PngSource::open(reader, &options.limits)
                .and_then(|source| Ok((source.tiler(options)?, Streamed::Png(source)))),
            _ => return Ok(None),
        };
        match opened {
            Ok((tiler, source)) => Ok(Some(Walk::Streamed(Box::new((source, tiler))))),
            Err(Error::Unsupported(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The walk of an image decoded whole from `bytes`.
    pub fn whole(bytes: &[u8], options: &Options) -> Result<Self> {
        Ok(Walk::Whole(Box::new(Tiler::open(bytes, options)?)))
    }

    /// The pyramid's geometry.
    pub fn layout(&self) -> &Layout {
        match self {
            Walk::Streamed(streamed) => streamed.1.layout(),
            Walk::Whole(tiler) => tiler.layout(),
        }
    }

    /// The tile format.
    pub fn format(&self) -> TileFormat {
        match self {
            Walk::Streamed(streamed) => streamed.1.format(),
            Walk::Whole(tiler) => tiler.format(),
        }
    }

    /// The `.dzi` manifest.
    pub fn dzi(&self) -> Dzi {
        Dzi::new(self.layout(), self.format())
    }

    /// Hands every tile to `f` from up to `threads` threads, in no set order; stops at the
    /// first error. See [`Tiler::into_walk_parallel`], [`TiffSource::stream_into`] and
    /// [`PngSource::stream_into`].
    pub fn run<E, F>(self, threads: usize, f: F) -> Result<(), E>
    where
        R: Send,
        E: From<Error> + Send,
        F: Fn(TileAddr, Vec<u8>) -> Result<(), E> + Sync,
    {
        match self {
            Walk::Streamed(streamed) => match *streamed {
                (Streamed::Tiff(source), tiler) => source.stream_into(tiler, threads, &f),
                (Streamed::Png(source), tiler) => source.stream_into(tiler, threads, &f),
            },
            Walk::Whole(tiler) => tiler.into_walk_parallel(threads, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    fn collect(
        push: impl FnOnce(&(dyn Fn(TileAddr, Vec<u8>) -> Result<()> + Sync)) -> Result<()>,
    ) -> BTreeMap<TileAddr, Vec<u8>> {
        let tiles = Mutex::new(BTreeMap::new());
        let f = |addr: TileAddr, bytes: Vec<u8>| -> Result<()> {
            let mut t = tiles.lock().map_err(|_| Error::Panic)?;
            assert!(t.insert(addr, bytes).is_none(), "{addr:?} twice");
            Ok(())
        };
        push(&f).expect("tiles");
        tiles.into_inner().expect("lock")
    }

    /// Tiles of the streaming path, pushing `chunk` rows at a time, against the whole-image
    /// path's, for sizes around tile and level edges and both channel counts.
    #[test]
    fn streaming_tiles_equal_whole_image_tiles() {
        for (w, h, ch, tile, overlap, chunk) in [
            (300, 200, 3, 64, 1, 7),
            (257, 513, 4, 64, 1, 1),
            (129, 130, 3, 32, 0, 64),
            (1, 77, 3, 16, 2, 5),
            (77, 1, 4, 16, 15, 1),
            (1000, 37, 3, 254, 1, 37),
        ] {
            let data: Vec<u8> = (0..w * h * ch).map(|v| ((v * 7919) % 251) as u8).collect();
            let options = Options {
                format: Some(TileFormat::Png),
                tile_size: tile,
                overlap,
                ..Options::default()
            };
            let bitmap = Bitmap::new(w as u32, h as u32, ch, data.clone()).expect("bitmap");
            let layout = Layout::new(w as u32, h as u32, tile, overlap).expect("layout");
            let encoding = options.encoding(ch == 4).expect("encoding");
            let whole = collect(|f| crate::levelwise::walk(bitmap, &layout, &encoding, 2, f));
            let streamed = collect(|f| {
                let mut s = StreamTiler::new(w as u32, h as u32, ch == 4, &options)?;
                for rows in data.chunks(chunk * w * ch) {
                    s.push_rows(rows, 2, f)?;
                }
                s.finish()
            });
            assert_eq!(whole.len() as u64, layout.tile_count());
            assert_eq!(
                whole.keys().collect::<Vec<_>>(),
                streamed.keys().collect::<Vec<_>>()
            );
            for (addr, bytes) in &whole {
                assert!(
                    bytes == &streamed[addr],
                    "{w}×{h}×{ch}: tile {addr:?} differs"
                );
            }
        }
    }

    #[test]
    fn missing_and_extra_rows_are_errors() {
        let options = Options::default();
        let f = |_: TileAddr, _: Vec<u8>| -> Result<()> { Ok(()) };
        let mut s = StreamTiler::new(10, 3, false, &options).expect("tiler");
        s.push_rows(&[0; 60], 1, &f).expect("two rows");
        assert!(s.push_rows(&[0; 29], 1, &f).is_err(), "part of a row");
        let mut short = StreamTiler::new(10, 3, false, &options).expect("tiler");
        short.push_rows(&[0; 60], 1, &f).expect("two rows");
        assert!(short.finish().is_err(), "a row missing");
        let mut long = StreamTiler::new(10, 3, false, &options).expect("tiler");
        assert!(long.push_rows(&[0; 120], 1, &f).is_err(), "a row too many");
    }

    #[test]
    fn memory_depends_on_width_not_height() {
        let options = Options::default();
        let tall = StreamTiler::new(1000, 1_000_000, false, &options).expect("tiler");
        let short = StreamTiler::new(1000, 1000, false, &options).expect("tiler");
        // The top level dominates: 257 rows of 3000 bytes, and at most as much again below;
        // a thousand times the height adds only levels one pixel wide.
        assert!(short.held_bytes() >= 257 * 3000);
        assert!(tall.held_bytes() < 2 * 257 * 3000 + 20 * 257 * 3);
    }
}
