//! The `.dzi` manifest: written byte for byte as `vips dzsave` writes it, and parsed
//! leniently (any attribute order, `jpg`/`jpeg`, other whitespace) so that pyramids
//! from other tools open too.

use crate::error::{Error, Result};
use crate::layout::Layout;
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};

/// The Deep Zoom XML namespace vips writes.
pub const NAMESPACE: &str = "http://schemas.microsoft.com/deepzoom/2008";

/// Largest `.dzi` document [`Dzi::parse`] reads.
pub const MAX_DZI_BYTES: usize = 64 * 1024;

/// The image format of a pyramid's tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum TileFormat {
    /// Baseline JPEG, `.jpeg` files (vips's default).
    Jpeg,
    /// PNG, `.png` files; used for images with alpha.
    Png,
    /// WebP, `.webp` files.
    Webp,
}

impl TileFormat {
    /// The file extension and `Format` attribute vips uses.
    pub fn extension(self) -> &'static str {
        match self {
            TileFormat::Jpeg => "jpeg",
            TileFormat::Png => "png",
            TileFormat::Webp => "webp",
        }
    }

    /// The MIME type served for tiles of this format.
    pub fn mime(self) -> &'static str {
        match self {
            TileFormat::Jpeg => "image/jpeg",
            TileFormat::Png => "image/png",
            TileFormat::Webp => "image/webp",
        }
    }

    /// The format named by a file extension or `Format` attribute.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(TileFormat::Jpeg),
            "png" => Some(TileFormat::Png),
            "webp" => Some(TileFormat::Webp),
            _ => None,
        }
    }

    /// Whether `bytes` start with this format's signature.
    pub fn matches_magic(self, bytes: &[u8]) -> bool {
        match self {
            TileFormat::Jpeg => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
            TileFormat::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            TileFormat::Webp => {
                bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP"
            }
        }
    }
}

impl std::fmt::Display for TileFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

impl std::str::FromStr for TileFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        TileFormat::from_extension(s)
            .ok_or_else(|| Error::InvalidOption(format!("unknown tile format {s:?}")))
    }
}

/// A pyramid's Deep Zoom geometry with what follows from it (levels, tile count, MIME type), so
/// no JavaScript recomputes it: what tiler-wasm's `Tiler.geometry()` and `parseDzi` return, and
/// what tile-store answers `GET /pyramids/{id}.json` with (JSON, camelCase).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct Geometry {
    /// Width of the full-resolution (upright) image.
    pub width: u32,
    /// Height of the full-resolution image.
    pub height: u32,
    /// Tile size without overlap.
    pub tile_size: u32,
    /// Overlap on each side of a tile.
    pub overlap: u32,
    /// The full-resolution level; level 0 is 1×1.
    pub max_level: u32,
    /// Number of tiles in the whole pyramid; a JavaScript number (layouts are capped far below 2^53
    /// tiles), and a whole number in JSON.
    pub tile_count: u64,
    /// The tiles' format.
    pub format: TileFormat,
    /// The tiles' MIME type.
    pub mime: String,
}

impl Geometry {
    /// The geometry of `layout` with tiles in `format`.
    pub fn new(layout: &Layout, format: TileFormat) -> Self {
        Geometry {
            width: layout.width(),
            height: layout.height(),
            tile_size: layout.tile_size(),
            overlap: layout.overlap(),
            max_level: layout.max_level(),
            tile_count: layout.tile_count(),
            format,
            mime: format.mime().to_owned(),
        }
    }

    /// The geometry a `.dzi` document describes; `Error::Dzi` for one that is not a valid pyramid's.
    pub fn from_dzi(xml: &[u8]) -> Result<Self> {
        let dzi = Dzi::parse(xml)?;
        Ok(Geometry::new(&dzi.layout()?, dzi.format))
    }
}

/// The contents of a `.dzi` manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dzi {
    /// Tile format.
    pub format: TileFormat,
    /// Overlap in pixels.
    pub overlap: u32,
    /// Tile size in pixels.
    pub tile_size: u32,
    /// Full-resolution width.
    pub width: u32,
    /// Full-resolution height.
    pub height: u32,
}

impl Dzi {
    /// The manifest for `layout` with tiles in `format`.
    pub fn new(layout: &Layout, format: TileFormat) -> Self {
        Dzi {
            format,
            overlap: layout.overlap(),
            tile_size: layout.tile_size(),
            width: layout.width(),
            height: layout.height(),
        }
    }

    /// The pyramid geometry this manifest describes.
    pub fn layout(&self) -> Result<Layout> {
        Layout::new(self.width, self.height, self.tile_size, self.overlap)
            .map_err(|e| Error::Dzi(e.to_string()))
    }

    /// The XML exactly as `vips dzsave` 8.14 writes it.
    pub fn to_xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Image xmlns=\"{NAMESPACE}\"\n  \
             Format=\"{}\"\n  \
             Overlap=\"{}\"\n  \
             TileSize=\"{}\"\n  \
             >\n  \
             <Size \n    \
             Height=\"{}\"\n    \
             Width=\"{}\"\n  \
             />\n\
             </Image>\n",
            self.format, self.overlap, self.tile_size, self.height, self.width
        )
    }

    /// Parses a `.dzi` document; the geometry must be valid.
    pub fn parse(xml: &[u8]) -> Result<Self> {
        if xml.len() > MAX_DZI_BYTES {
            return Err(Error::Dzi(format!(
                "document is larger than {MAX_DZI_BYTES} bytes"
            )));
        }
        let text = std::str::from_utf8(xml).map_err(|_| Error::Dzi("not UTF-8".into()))?;
        let mut reader = quick_xml::Reader::from_str(text);
        let (mut format, mut overlap, mut tile_size, mut width, mut height) =
            (None, None, None, None, None);
        let mut seen_image = false;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| Error::Dzi(format!("malformed XML: {e}")))?;
            let element = match &event {
                Event::Start(e) | Event::Empty(e) => e,
                Event::Eof => break,
                _ => continue,
            };
            let name = element.local_name();
            let is_image = name.as_ref() == b"Image";
            let is_size = name.as_ref() == b"Size";
            if !is_image && !is_size {
                continue;
            }
            seen_image |= is_image;
            for attr in element.attributes() {
                let attr = attr.map_err(|e| Error::Dzi(format!("malformed attribute: {e}")))?;
                let value = attr
                    .unescape_value()
                    .map_err(|e| Error::Dzi(format!("malformed attribute: {e}")))?;
                let value = value.trim();
                let number = || {
                    value
                        .parse::<u32>()
                        .map_err(|_| Error::Dzi(format!("not a number: {value:?}")))
                };
                match (is_image, attr.key.local_name().as_ref()) {
                    (true, b"Format") => {
                        format = Some(TileFormat::from_extension(value).ok_or_else(|| {
                            Error::Dzi(format!("unsupported tile format {value:?}"))
                        })?)
                    }
                    (true, b"Overlap") => overlap = Some(number()?),
                    (true, b"TileSize") => tile_size = Some(number()?),
                    (false, b"Width") => width = Some(number()?),
                    (false, b"Height") => height = Some(number()?),
                    _ => {}
                }
            }
        }
        if !seen_image {
            return Err(Error::Dzi("no <Image> element".into()));
        }
        let missing = |what: &str| Error::Dzi(format!("missing {what}"));
        let dzi = Dzi {
            format: format.ok_or_else(|| missing("Format"))?,
            overlap: overlap.ok_or_else(|| missing("Overlap"))?,
            tile_size: tile_size.ok_or_else(|| missing("TileSize"))?,
            width: width.ok_or_else(|| missing("Size Width"))?,
            height: height.ok_or_else(|| missing("Size Height"))?,
        };
        dzi.layout()?;
        Ok(dzi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIPS_600X400: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Image xmlns="http://schemas.microsoft.com/deepzoom/2008"
  Format="jpeg"
  Overlap="1"
  TileSize="254"
  >
  <Size 
    Height="400"
    Width="600"
  />
</Image>
"#;

    fn sample() -> Dzi {
        Dzi {
            format: TileFormat::Jpeg,
            overlap: 1,
            tile_size: 254,
            width: 600,
            height: 400,
        }
    }

    #[test]
    fn writes_what_vips_writes() {
        assert_eq!(sample().to_xml(), VIPS_600X400);
    }

    #[test]
    fn parses_vips_and_other_writers() {
        assert_eq!(
            Dzi::parse(VIPS_600X400.as_bytes()).expect("parses"),
            sample()
        );
        let other = r#"<Image TileSize="254" Overlap="1" Format="jpg" xmlns="http://schemas.microsoft.com/deepzoom/2008"><Size Width="600" Height="400"/></Image>"#;
        assert_eq!(Dzi::parse(other.as_bytes()).expect("parses"), sample());
    }

    #[test]
    fn refuses_broken_documents() {
        for bad in [
            "",
            "<Image/>",
            "not xml at all",
            r#"<Image Format="gif" Overlap="1" TileSize="254"><Size Width="1" Height="1"/></Image>"#,
            r#"<Image Format="png" Overlap="1" TileSize="0"><Size Width="1" Height="1"/></Image>"#,
            r#"<Image Format="png" Overlap="1" TileSize="254"><Size Width="-1" Height="1"/></Image>"#,
            r#"<Image Format="png" Overlap="1" TileSize="254"><Size Width="0" Height="1"/></Image>"#,
            r#"<Image Format="png" Overlap="1" TileSize="254"><Size Width="1"/></Image>"#,
        ] {
            assert!(Dzi::parse(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
        assert!(Dzi::parse(&vec![b' '; MAX_DZI_BYTES + 1]).is_err());
    }

    #[test]
    fn magic_bytes() {
        assert!(TileFormat::Jpeg.matches_magic(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(!TileFormat::Jpeg.matches_magic(b"\x89PNG\r\n\x1a\n"));
        assert!(TileFormat::Png.matches_magic(b"\x89PNG\r\n\x1a\n...."));
        assert!(TileFormat::Webp.matches_magic(b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(!TileFormat::Webp.matches_magic(b"RIFF"));
    }
}
