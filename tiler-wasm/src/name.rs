//! Tile names inside a pyramid's `{id}_files/` folder: `level/col_row.ext`, as `vips dzsave`
//! writes them. The one definition: tile-store's keys and listings, the browser's upload and the
//! tests all name tiles through [`TileName`].

use crate::dzi::TileFormat;
use crate::layout::TileAddr;
use serde::{Deserialize, Serialize};

/// One tile of a pyramid: its address and its format (which gives the extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
pub struct TileName {
    /// Pyramid level.
    pub level: u32,
    /// Column.
    pub col: u32,
    /// Row.
    pub row: u32,
    /// Tile format.
    pub format: TileFormat,
}

/// Ordered by level, column, row, then extension: the order of a listing.
impl Ord for TileName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.level, self.col, self.row, self.format.extension()).cmp(&(
            other.level,
            other.col,
            other.row,
            other.format.extension(),
        ))
    }
}

impl PartialOrd for TileName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl TileName {
    /// The tile at `addr` in `format`.
    pub fn new(addr: TileAddr, format: TileFormat) -> Self {
        TileName {
            level: addr.level,
            col: addr.col,
            row: addr.row,
            format,
        }
    }

    /// The name inside `{id}_files/`: `level/col_row.ext`.
    pub fn relative(&self) -> String {
        format!(
            "{}/{}_{}.{}",
            self.level,
            self.col,
            self.row,
            self.format.extension()
        )
    }

    /// Parses `level/col_row.ext`; `None` for anything else (temporary files included).
    pub fn parse_relative(name: &str) -> Option<Self> {
        let (level, file) = name.split_once('/')?;
        let (col, rest) = file.split_once('_')?;
        let (row, ext) = rest.split_once('.')?;
        Some(TileName {
            level: parse_decimal(level)?,
            col: parse_decimal(col)?,
            row: parse_decimal(row)?,
            format: canonical_format(ext)?,
        })
    }
}

/// A `u32` written in plain decimal digits (no sign, no leading zeros but "0").
pub fn parse_decimal(text: &str) -> Option<u32> {
    let plain = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if plain {
        text.parse().ok()
    } else {
        None
    }
}

/// The format whose canonical extension (as vips writes it) is `ext`: names are strict, unlike
/// the lenient `.dzi` `Format` attribute, so one tile has exactly one name.
pub fn canonical_format(ext: &str) -> Option<TileFormat> {
    [TileFormat::Jpeg, TileFormat::Png, TileFormat::Webp]
        .into_iter()
        .find(|f| f.extension() == ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_names_round_trip_and_refuse_odd_spellings() {
        let t = TileName {
            level: 10,
            col: 2,
            row: 0,
            format: TileFormat::Jpeg,
        };
        assert_eq!(t.relative(), "10/2_0.jpeg");
        assert_eq!(TileName::parse_relative("10/2_0.jpeg"), Some(t));
        assert_eq!(
            TileName::parse_relative("0/0_13.webp"),
            Some(TileName::new(
                TileAddr {
                    level: 0,
                    col: 0,
                    row: 13
                },
                TileFormat::Webp
            ))
        );
        for bad in [
            "10/2_0.jpg",
            "10/02_0.jpeg",
            "10/+2_0.jpeg",
            "10/2_0.jpeg.tmp",
            "a/2_0.jpeg",
            "10/2_0",
            ".10/2_0.jpeg",
            "10/.2_0.jpeg.tmp-1",
            "10/2_0.JPEG",
            "4294967296/0_0.png",
        ] {
            assert_eq!(TileName::parse_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_sort_as_a_listing() {
        let n = |level, col, row| TileName {
            level,
            col,
            row,
            format: TileFormat::Png,
        };
        let mut names = vec![n(1, 0, 1), n(0, 0, 0), n(1, 1, 0), n(1, 0, 0)];
        names.sort();
        assert_eq!(names, vec![n(0, 0, 0), n(1, 0, 0), n(1, 0, 1), n(1, 1, 0)]);
    }
}
