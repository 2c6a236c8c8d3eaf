//! [`Tiler`]: one opened image and its pyramid, tiles made on demand.

use crate::decode;
use crate::dzi::{Dzi, TileFormat};
use crate::encode;
use crate::error::{Error, Result};
use crate::layout::{Layout, TileAddr};
use crate::levelwise;
use crate::meta::Metadata;
use crate::pyramid::Pyramid;
use crate::Options;

/// An image opened for tiling: decoded, upright and in 8-bit sRGB.
///
/// Metadata, geometry and the `.dzi` are known as soon as it is open; tiles are
/// encoded when asked for, and the levels they come from are built on first use
/// and kept.
#[derive(Debug)]
pub struct Tiler {
    metadata: Metadata,
    format: TileFormat,
    quality: u8,
    channels: usize,
    pyramid: Pyramid,
}

impl Tiler {
    /// Decodes, orients and colour-converts `bytes`.
    pub fn open(bytes: &[u8], options: &Options) -> Result<Tiler> {
        // Checked before decoding so that a bad option costs nothing.
        options.encoding(false)?;
        Layout::new(1, 1, options.tile_size, options.overlap)?;
        let (metadata, pixels) = decode::decode(bytes, &options.limits)?;
        let layout = Layout::new(
            pixels.width(),
            pixels.height(),
            options.tile_size,
            options.overlap,
        )?;
        let encoding = options.encoding(pixels.has_alpha())?;
        Ok(Tiler {
            metadata,
            format: encoding.format,
            quality: encoding.quality,
            channels: pixels.channels(),
            pyramid: Pyramid::new(pixels, layout)?,
        })
    }

    /// The source's metadata; width and height are those of the upright image.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The pyramid's geometry.
    pub fn layout(&self) -> &Layout {
        self.pyramid.layout()
    }

    /// The tile format: as asked, or PNG for images with alpha and JPEG otherwise.
    pub fn format(&self) -> TileFormat {
        self.format
    }

    /// The `.dzi` manifest; [`Dzi::to_xml`] gives the bytes `vips dzsave` writes.
    pub fn dzi(&self) -> Dzi {
        Dzi::new(self.layout(), self.format)
    }

    /// The encoded tile at `(level, col, row)`, building its level if needed.
    pub fn tile(&mut self, level: u32, col: u32, row: u32) -> Result<Vec<u8>> {
        let rect = self.layout().tile_rect(level, col, row)?;
        let pixels = self.pyramid.level(level)?.crop(rect)?;
        encode::encode(&pixels, self.format, self.quality)
    }

    /// Bytes per pixel of every level: 3 (RGB) or 4 (RGBA).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The pixel rows `y0..y1` of `level` that tile rows `row0..row1` cover, overlap included:
    /// what a [`crate::TileBand`] needs to make those tiles.
    pub fn band_rows(&self, level: u32, row0: u32, row1: u32) -> Result<(u32, u32)> {
        if row0 >= row1 {
            return Err(Error::InvalidOption(format!(
                "tile rows {row0}..{row1} are empty"
            )));
        }
        let first = self.layout().tile_rect(level, 0, row0)?;
        let last = self.layout().tile_rect(level, 0, row1 - 1)?;
        Ok((first.y, last.y + last.height))
    }

    /// The packed pixel rows `y0..y1` of `level`, building the level if needed.
    pub fn level_rows(&mut self, level: u32, y0: u32, y1: u32) -> Result<&[u8]> {
        let bitmap = self.pyramid.level(level)?;
        if y0 >= y1 || y1 > bitmap.height() {
            return Err(Error::InvalidOption(format!(
                "rows {y0}..{y1} outside level {level} ({} rows)",
                bitmap.height()
            )));
        }
        let stride = bitmap.stride();
        Ok(&bitmap.data()[y0 as usize * stride..y1 as usize * stride])
    }

    /// Produces every tile, level 0 first and row by row within a level, handing
    /// each to `f`; stops at the first error.
    pub fn walk<E: From<Error>>(
        &mut self,
        mut f: impl FnMut(TileAddr, Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let layout = *self.layout();
        for addr in layout.tiles() {
            let bytes = self.tile(addr.level, addr.col, addr.row)?;
            f(addr, bytes)?;
        }
        Ok(())
    }

    /// Produces every tile with the bytes [`Tiler::walk`] gives, on up to
    /// `threads` threads (the caller's included), consuming the tiler: each
    /// level is shrunk into the next in the full-size image's own memory once
    /// its tiles are made, so nothing beyond that image and the tiles in flight
    /// is held. Tiles arrive largest level first, from several threads at once;
    /// stops at the first error. For random access use [`Tiler::tile`] instead.
    pub fn into_walk_parallel<E, F>(self, threads: usize, f: F) -> Result<(), E>
    where
        E: From<Error> + Send,
        F: Fn(TileAddr, Vec<u8>) -> Result<(), E> + Sync,
    {
        let layout = *self.layout();
        let encoding = levelwise::Encoding {
            format: self.format,
            quality: self.quality,
        };
        let top = self.pyramid.into_top()?;
        levelwise::walk(top, &layout, &encoding, threads, &f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiler_can_move_between_threads() {
        fn assert_send<T: Send + Sync>() {}
        assert_send::<Tiler>();
    }
}
