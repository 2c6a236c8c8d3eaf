//! The whole pyramid, level by level, in the memory of the full-size image.
//!
//! For a caller that wants every tile once (the CLI, server-side jobs) rather
//! than random access: each level's tiles are encoded on every thread, then the
//! level is shrunk in place into the next one, so the peak is the decoded image
//! plus a few tiles, where caching every level costs a third more and a
//! separate buffer per level more again. Tile bytes are those of the lazy path.

use crate::bitmap::{crop_rows, Bitmap};
use crate::dzi::TileFormat;
use crate::encode;
use crate::error::Error;
use crate::layout::{Layout, Rect, TileAddr};
use crate::pyramid::shrink_in_place;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// How tiles are encoded.
pub(crate) struct Encoding {
    pub format: TileFormat,
    pub quality: u8,
}

/// Hands every tile of the pyramid over `top` to `f`, largest level first,
/// row by row within a level but from up to `threads` threads at once; stops
/// at the first error.
pub(crate) fn walk<E, F>(
    top: Bitmap,
    layout: &Layout,
    encoding: &Encoding,
    threads: usize,
    f: &F,
) -> Result<(), E>
where
    E: From<Error> + Send,
    F: Fn(TileAddr, Vec<u8>) -> Result<(), E> + Sync + ?Sized,
{
    let mut level = layout.max_level();
    let mut pixels = top;
    loop {
        let (_, rows) = layout.grid(level).ok_or(Error::NoSuchTile {
            level,
            col: 0,
            row: 0,
        })?;
        let band = Band {
            data: pixels.data(),
            width: pixels.width(),
            first_row: 0,
            height: pixels.height(),
            channels: pixels.channels(),
        };
        encode_rows(&band, level, 0..rows, layout, encoding, threads, f)?;
        if level == 0 {
            return Ok(());
        }
        pixels = shrink_in_place(pixels)?;
        level -= 1;
    }
}

/// Packed rows `first_row..first_row + height` of one level: the whole level, or the rows a
/// streaming level still holds.
pub(crate) struct Band<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub first_row: u32,
    pub height: u32,
    pub channels: usize,
}

impl Band<'_> {
    /// A copy of the pixels inside `rect` (in level coordinates), which the band must hold.
    pub(crate) fn crop(&self, rect: Rect) -> crate::error::Result<Bitmap> {
        crop_rows(
            self.data,
            self.width,
            self.height,
            self.first_row,
            self.channels,
            rect,
        )
    }
}

/// Encodes every tile in rows `tile_rows` of `level`, whose pixels `band` must hold, on up to
/// `threads` threads, handing each to `f`; stops at the first error.
pub(crate) fn encode_rows<E, F>(
    band: &Band<'_>,
    level: u32,
    tile_rows: std::ops::Range<u32>,
    layout: &Layout,
    encoding: &Encoding,
    threads: usize,
    f: &F,
) -> Result<(), E>
where
    E: From<Error> + Send,
    F: Fn(TileAddr, Vec<u8>) -> Result<(), E> + Sync + ?Sized,
{
    let (cols, _) = layout.grid(level).ok_or(Error::NoSuchTile {
        level,
        col: 0,
        row: 0,
    })?;
    let count = cols as usize * tile_rows.len();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let work = || {
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return;
            }
            let addr = TileAddr {
                level,
                col: (i % cols as usize) as u32,
                row: tile_rows.start + (i / cols as usize) as u32,
            };
            let outcome = layout
                .tile_rect(level, addr.col, addr.row)
                .and_then(|rect| band.crop(rect))
                .and_then(|tile| encode::encode(&tile, encoding.format, encoding.quality))
                .map_err(E::from)
                .and_then(|bytes| f(addr, bytes));
            if let Err(e) = outcome {
                stop.store(true, Ordering::Relaxed);
                let mut first = first_error.lock().unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert(e);
                return;
            }
        }
    };
    let helpers = threads.min(count).saturating_sub(1);
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            // A thread that cannot be started leaves its share to the others.
            let _ = std::thread::Builder::new().spawn_scoped(scope, work);
        }
        work();
    });
    match first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
