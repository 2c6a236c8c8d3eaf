//! [`TileBand`]: some whole tile rows of one pyramid level, held apart from the [`crate::Tiler`]
//! that decoded the image, so that another worker can encode those tiles.
//!
//! In the browser, wasm instances in different workers share no memory (wasm threads need a
//! nightly toolchain), so a helper worker gets a copy of the pixel rows its tiles cover
//! ([`crate::Tiler::band_rows`], [`crate::Tiler::level_rows`]) and encodes them here. A tile is a
//! crop of its level and an encoding of that crop, both pure functions of the pixels, so the
//! bytes are those [`crate::Tiler::tile`] makes.

use crate::bitmap::crop_rows;
use crate::dzi::TileFormat;
use crate::encode;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::Options;

/// Pixel rows `first_row..first_row + rows` of level `level` of a pyramid, encoding the tiles
/// that lie wholly within them.
#[derive(Debug)]
pub struct TileBand {
    layout: Layout,
    level: u32,
    level_width: u32,
    first_row: u32,
    rows: u32,
    channels: usize,
    format: TileFormat,
    quality: u8,
    data: Vec<u8>,
}

impl TileBand {
    /// A band of the pyramid of a `width`×`height` (upright, full-resolution) image tiled with
    /// `options`: rows `first_row..` of `level`, packed with `channels` (3 or 4) bytes per pixel.
    pub fn new(
        width: u32,
        height: u32,
        level: u32,
        first_row: u32,
        channels: usize,
        data: Vec<u8>,
        options: &Options,
    ) -> Result<TileBand> {
        if !(channels == 3 || channels == 4) {
            return Err(Error::InvalidOption(format!("{channels} channels")));
        }
        let layout = Layout::new(width, height, options.tile_size, options.overlap)?;
        let (level_width, level_height) = layout.level_size(level).ok_or(Error::NoSuchTile {
            level,
            col: 0,
            row: 0,
        })?;
        let stride = level_width as usize * channels;
        let rows = u32::try_from(data.len() / stride).unwrap_or(u32::MAX);
        let fits = first_row
            .checked_add(rows)
            .is_some_and(|end| end <= level_height);
        if data.is_empty() || !data.len().is_multiple_of(stride) || !fits {
            return Err(Error::InvalidOption(format!(
                "{} bytes are not whole rows from row {first_row} of level {level} ({level_width}×{level_height}×{channels})",
                data.len()
            )));
        }
        let encoding = options.encoding(channels == 4)?;
        Ok(TileBand {
            layout,
            level,
            level_width,
            first_row,
            rows,
            channels,
            format: encoding.format,
            quality: encoding.quality,
            data,
        })
    }

    /// The tile at `col`, `row` of the band's level, which must lie within the band's rows.
    pub fn tile(&self, col: u32, row: u32) -> Result<Vec<u8>> {
        let rect = self.layout.tile_rect(self.level, col, row)?;
        let pixels = crop_rows(
            &self.data,
            self.level_width,
            self.rows,
            self.first_row,
            self.channels,
            rect,
        )?;
        encode::encode(&pixels, self.format, self.quality)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bitmap, Tiler};

    /// A PNG of seeded noise over gradients (lossless, so the decoded pixels are known).
    fn png(width: u32, height: u32, channels: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9u32;
        let mut data = Vec::with_capacity(width as usize * height as usize * channels);
        for y in 0..height {
            for x in 0..width {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let n = (state >> 26) as u8;
                data.extend_from_slice(&[(x % 256) as u8 ^ n, (y % 256) as u8, n.wrapping_mul(3)]);
                if channels == 4 {
                    data.push(if x % 7 == 0 { 0 } else { 200 });
                }
            }
        }
        let bitmap = Bitmap::new(width, height, channels, data).expect("bitmap");
        encode::encode(&bitmap, TileFormat::Png, 75).expect("png")
    }

    fn assert_bands_match(source: &[u8], options: &Options) {
        let mut tiler = Tiler::open(source, options).expect("opens");
        let layout = *tiler.layout();
        let channels = tiler.channels();
        for level in (0..=layout.max_level()).rev() {
            let (cols, rows) = layout.grid(level).expect("grid");
            // Every split of the level's tile rows into two bands.
            for split in 1..rows.max(2) {
                for (row0, row1) in [(0, split.min(rows)), (split.min(rows), rows)] {
                    if row0 >= row1 {
                        continue;
                    }
                    let (y0, y1) = tiler.band_rows(level, row0, row1).expect("rows");
                    let data = tiler.level_rows(level, y0, y1).expect("pixels").to_vec();
                    let (w, h) = (layout.width(), layout.height());
                    let band =
                        TileBand::new(w, h, level, y0, channels, data, options).expect("band");
                    for row in row0..row1 {
                        for col in 0..cols {
                            let want = tiler.tile(level, col, row).expect("tile");
                            assert_eq!(band.tile(col, row).expect("band tile"), want);
                        }
                    }
                    // The next row's tile is refused when its pixels are not all in the
                    // band, and right when they are (a short last row inside the overlap).
                    if row1 < rows {
                        if let Ok(bytes) = band.tile(0, row1) {
                            assert_eq!(bytes, tiler.tile(level, 0, row1).expect("tile"));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn band_tiles_are_the_tilers_tiles() {
        let options = Options {
            tile_size: 64,
            ..Options::default()
        };
        assert_bands_match(&png(301, 203, 3), &options);
        assert_bands_match(&png(130, 257, 4), &options);
        let no_overlap = Options {
            tile_size: 50,
            overlap: 0,
            ..Options::default()
        };
        assert_bands_match(&png(201, 151, 3), &no_overlap);
    }

    #[test]
    fn a_tile_past_the_band_is_refused() {
        let options = Options {
            tile_size: 64,
            ..Options::default()
        };
        let mut tiler = Tiler::open(&png(300, 300, 3), &options).expect("opens");
        let top = tiler.layout().max_level();
        let (y0, y1) = tiler.band_rows(top, 0, 2).expect("rows");
        assert_eq!((y0, y1), (0, 129));
        let data = tiler.level_rows(top, y0, y1).expect("pixels").to_vec();
        let band = TileBand::new(300, 300, top, y0, 3, data, &options).expect("band");
        assert!(band.tile(0, 1).is_ok());
        assert!(band.tile(0, 2).is_err());
        assert!(tiler.band_rows(top, 2, 2).is_err());
        assert!(tiler.level_rows(top, 0, 301).is_err());
    }

    #[test]
    fn rows_must_fit_the_level() {
        let options = Options::default();
        let row = vec![0u8; 100 * 3];
        assert!(TileBand::new(100, 50, 7, 0, 3, row.clone(), &options).is_ok());
        assert!(TileBand::new(100, 50, 7, 50, 3, row.clone(), &options).is_err());
        assert!(TileBand::new(100, 50, 7, 0, 3, row[..299].to_vec(), &options).is_err());
        assert!(TileBand::new(100, 50, 7, 0, 2, row, &options).is_err());
        assert!(TileBand::new(100, 50, 7, 0, 3, Vec::new(), &options).is_err());
    }
}
