//! Deep Zoom geometry exactly as `vips dzsave` lays it out by default.
//!
//! Level `max_level()` is the full-resolution image; each lower level is the
//! one above halved with rounding up, down to a 1×1 level 0. Tile `(c, r)` of a
//! level covers `[c·size − overlap, c·size + size + overlap)` on each axis,
//! clipped to the level.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// `vips dzsave`'s default tile size.
pub const DEFAULT_TILE_SIZE: u32 = 254;
/// `vips dzsave`'s default overlap.
pub const DEFAULT_OVERLAP: u32 = 1;
/// Largest tile size accepted (vips allows up to 8192).
pub const MAX_TILE_SIZE: u32 = 8192;
/// Smallest tile size accepted: smaller tiles only multiply the tile count (a 1-pixel
/// tile size turns one image into billions of objects).
pub const MIN_TILE_SIZE: u32 = 16;

/// A rectangle in the pixel space of one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// The geometry of one pyramid: image size, tile size and overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    width: u32,
    height: u32,
    tile_size: u32,
    overlap: u32,
    max_level: u32,
}

impl Layout {
    /// The geometry for an image of `width`×`height` pixels.
    pub fn new(width: u32, height: u32, tile_size: u32, overlap: u32) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidOption(format!(
                "image size {width}×{height} is empty"
            )));
        }
        if !(MIN_TILE_SIZE..=MAX_TILE_SIZE).contains(&tile_size) {
            return Err(Error::InvalidOption(format!(
                "tile size {tile_size} is outside {MIN_TILE_SIZE}..={MAX_TILE_SIZE}"
            )));
        }
        if overlap >= tile_size {
            return Err(Error::InvalidOption(format!(
                "overlap {overlap} is not smaller than the tile size {tile_size}"
            )));
        }
        // Counted by halving, as vips does, rather than with floating-point log2.
        let (mut w, mut h, mut max_level) = (width, height, 0);
        while w > 1 || h > 1 {
            w = w.div_ceil(2);
            h = h.div_ceil(2);
            max_level += 1;
        }
        Ok(Layout {
            width,
            height,
            tile_size,
            overlap,
            max_level,
        })
    }

    /// Full-resolution width.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Full-resolution height.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Tile size without overlap.
    pub fn tile_size(&self) -> u32 {
        self.tile_size
    }
    /// Pixels each tile shares with its neighbours on each side.
    pub fn overlap(&self) -> u32 {
        self.overlap
    }
    /// The full-resolution level; levels run `0..=max_level()`.
    pub fn max_level(&self) -> u32 {
        self.max_level
    }
    /// Number of levels.
    pub fn level_count(&self) -> u32 {
        self.max_level + 1
    }

    /// Size of `level` in pixels, or `None` past the top level.
    pub fn level_size(&self, level: u32) -> Option<(u32, u32)> {
        if level > self.max_level {
            return None;
        }
        let (mut w, mut h) = (self.width, self.height);
        for _ in level..self.max_level {
            w = w.div_ceil(2);
            h = h.div_ceil(2);
        }
        Some((w, h))
    }

    /// Columns and rows of tiles at `level`.
    pub fn grid(&self, level: u32) -> Option<(u32, u32)> {
        let (w, h) = self.level_size(level)?;
        Some((w.div_ceil(self.tile_size), h.div_ceil(self.tile_size)))
    }

    /// The pixels of `level` that tile `(col, row)` covers, overlap included.
    pub fn tile_rect(&self, level: u32, col: u32, row: u32) -> Result<Rect> {
        let no_tile = || Error::NoSuchTile { level, col, row };
        let (w, h) = self.level_size(level).ok_or_else(no_tile)?;
        let (cols, rows) = self.grid(level).ok_or_else(no_tile)?;
        if col >= cols || row >= rows {
            return Err(no_tile());
        }
        // In u64: `index · tile_size` can pass u32::MAX on the last column of a
        // 2³²-pixel level. `start < extent` because `index < ceil(extent / size)`.
        let span = |index: u32, extent: u32| {
            let origin = u64::from(index) * u64::from(self.tile_size);
            let start = origin.saturating_sub(u64::from(self.overlap));
            let end = (origin + u64::from(self.tile_size) + u64::from(self.overlap))
                .min(u64::from(extent));
            let start32 = u32::try_from(start).unwrap_or(extent);
            let len = u32::try_from(end.saturating_sub(start)).unwrap_or(0);
            (start32, len)
        };
        let (x, width) = span(col, w);
        let (y, height) = span(row, h);
        Ok(Rect {
            x,
            y,
            width,
            height,
        })
    }

    /// Number of tiles in the whole pyramid, saturating at `u64::MAX` (a 2³²×2³²
    /// image with 16-pixel tiles has more than fit): never wraps, so comparing it
    /// with a cap is always right.
    pub fn tile_count(&self) -> u64 {
        self.checked_tile_count().unwrap_or(u64::MAX)
    }

    /// Number of tiles in the whole pyramid, or `None` if it does not fit a `u64`.
    pub fn checked_tile_count(&self) -> Option<u64> {
        (0..=self.max_level)
            .filter_map(|l| self.grid(l))
            .try_fold(0u64, |sum, (c, r)| {
                sum.checked_add(u64::from(c).checked_mul(u64::from(r))?)
            })
    }

    /// Every tile address, level 0 first, row-major within a level.
    pub fn tiles(&self) -> impl Iterator<Item = TileAddr> + '_ {
        (0..=self.max_level).flat_map(move |level| {
            let (cols, rows) = self.grid(level).unwrap_or((0, 0));
            (0..rows).flat_map(move |row| (0..cols).map(move |col| TileAddr { level, col, row }))
        })
    }
}

/// The address of one tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TileAddr {
    /// Pyramid level (0 is 1×1).
    pub level: u32,
    /// Column.
    pub col: u32,
    /// Row.
    pub row: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vips_default(w: u32, h: u32) -> Layout {
        Layout::new(w, h, DEFAULT_TILE_SIZE, DEFAULT_OVERLAP).expect("valid layout")
    }

    #[test]
    fn levels_halve_with_rounding_up_to_one_pixel() {
        let l = vips_default(600, 400);
        assert_eq!(l.max_level(), 10);
        assert_eq!(l.level_size(10), Some((600, 400)));
        assert_eq!(l.level_size(9), Some((300, 200)));
        assert_eq!(l.level_size(6), Some((38, 25)));
        assert_eq!(l.level_size(0), Some((1, 1)));
        assert_eq!(l.level_size(11), None);
    }

    #[test]
    fn level_count_is_ceil_log2_plus_one() {
        for (w, h, levels) in [(1, 1, 1), (2, 1, 2), (3, 3, 3), (256, 10, 9), (257, 1, 10)] {
            assert_eq!(vips_default(w, h).level_count(), levels, "{w}×{h}");
        }
    }

    #[test]
    fn tile_rects_match_vips_dzsave() {
        // Sizes read off `vips dzsave` output for a 600×400 image.
        let l = vips_default(600, 400);
        let size = |lv, c, r| {
            let t = l.tile_rect(lv, c, r).expect("tile exists");
            (t.width, t.height)
        };
        assert_eq!(size(10, 0, 0), (255, 255));
        assert_eq!(size(10, 1, 0), (256, 255));
        assert_eq!(size(10, 2, 0), (93, 255));
        assert_eq!(size(10, 0, 1), (255, 147));
        assert_eq!(size(10, 1, 1), (256, 147));
        assert_eq!(size(9, 0, 0), (255, 200));
        assert_eq!(size(9, 1, 0), (47, 200));
        assert_eq!(size(0, 0, 0), (1, 1));
        let t = l.tile_rect(10, 2, 1).expect("tile exists");
        assert_eq!((t.x, t.y), (507, 253));
    }

    #[test]
    fn tiles_outside_the_grid_are_errors() {
        let l = vips_default(600, 400);
        assert!(l.tile_rect(10, 3, 0).is_err());
        assert!(l.tile_rect(10, 0, 2).is_err());
        assert!(l.tile_rect(11, 0, 0).is_err());
    }

    #[test]
    fn tile_count_and_walk_agree() {
        let l = vips_default(1000, 777);
        assert_eq!(l.tiles().count() as u64, l.tile_count());
        let first = l.tiles().next().expect("one tile");
        assert_eq!(
            first,
            TileAddr {
                level: 0,
                col: 0,
                row: 0
            }
        );
    }

    #[test]
    fn custom_tile_size_and_overlap() {
        let l = Layout::new(1024, 1024, 256, 0).expect("valid");
        assert_eq!(l.grid(10), Some((4, 4)));
        let t = l.tile_rect(10, 1, 1).expect("tile");
        assert_eq!((t.x, t.y, t.width, t.height), (256, 256, 256, 256));
        assert!(Layout::new(10, 10, 0, 0).is_err());
        assert!(Layout::new(0, 10, 254, 1).is_err());
        assert!(Layout::new(10, 10, 4, 5).is_err());
        assert!(Layout::new(10, 10, 15, 0).is_err(), "tile size under 16");
        assert!(Layout::new(10, 10, 16, 0).is_ok());
        assert!(Layout::new(10, 10, 16, 16).is_err(), "overlap = tile size");
        assert!(Layout::new(10, 10, 16, 15).is_ok());
    }

    #[test]
    fn huge_layouts_neither_wrap_nor_overflow() {
        // The manifest of issue 13: with TileSize=1 its tile count wrapped a u64.
        assert!(Layout::new(4_294_965_248, 3_221_227_008, 1, 0).is_err());
        let l = Layout::new(u32::MAX, u32::MAX, MIN_TILE_SIZE, MIN_TILE_SIZE - 1).expect("valid");
        let top = l.max_level();
        let (cols, rows) = l.grid(top).expect("top level");
        assert_eq!(l.checked_tile_count(), Some(l.tile_count()));
        assert!(l.tile_count() > u64::from(cols) * u64::from(rows));
        // The last tile of the top level: index · size passes u32::MAX.
        let t = l.tile_rect(top, cols - 1, rows - 1).expect("last tile");
        assert_eq!(u64::from(t.x) + u64::from(t.width), u64::from(u32::MAX));
        assert_eq!(u64::from(t.y) + u64::from(t.height), u64::from(u32::MAX));
        assert!(l.tile_rect(top, cols, 0).is_err());
    }
}
