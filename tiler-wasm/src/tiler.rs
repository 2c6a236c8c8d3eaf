//! [`Tiler`]: one opened image and its pyramid, tiles made on demand.

use crate::bitmap::Bitmap;
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

    /// Tiles upright 8-bit sRGB RGBA `pixels` that another decoder made of the image `metadata`
    /// describes ([`crate::probe`] of its source): in the browser, an AVIF the browser decoded.
    ///
    /// The pixels are checked against the metadata's size and the limits. The alpha channel is
    /// kept only if the source declares one, as [`Tiler::open`] does for every format (a PNG
    /// with an alpha channel keeps it, however opaque): the decoder's RGBA for an image without
    /// alpha is opaque, and its pyramid is the RGB one `vips dzsave` makes.
    pub fn from_pixels(
        metadata: Metadata,
        mut pixels: Vec<u8>,
        options: &Options,
    ) -> Result<Tiler> {
        options.encoding(false)?;
        let (width, height) = (metadata.width, metadata.height);
        decode::check_size(width, height, 4, &options.limits)?;
        let expected = u64::from(width) * u64::from(height) * 4;
        if pixels.len() as u64 != expected {
            return Err(Error::Decode(format!(
                "the decoder gave {} bytes for a {width}×{height} RGBA image",
                pixels.len()
            )));
        }
        let channels = if metadata.has_alpha { 4 } else { 3 };
        if channels == 3 {
            // In place, front to back: pixel i's RGB moves to 3i, which is never past 4i.
            for i in 0..pixels.len() / 4 {
                pixels.copy_within(4 * i..4 * i + 3, 3 * i);
            }
            pixels.truncate(pixels.len() / 4 * 3);
            pixels.shrink_to_fit();
        }
        let bitmap = Bitmap::new(width, height, channels, pixels)?;
        let layout = Layout::new(width, height, options.tile_size, options.overlap)?;
        let encoding = options.encoding(bitmap.has_alpha())?;
        Ok(Tiler {
            metadata,
            format: encoding.format,
            quality: encoding.quality,
            channels,
            pyramid: Pyramid::new(bitmap, layout)?,
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

    use crate::meta::SourceFormat;

    /// A `width`×`height` PNG of a pattern with every channel varying, with alpha if `alpha`.
    fn png(width: u32, height: u32, alpha: bool) -> Vec<u8> {
        let pixel = |x: u32, y: u32| {
            let v = |k: u32| ((x * k + y * (k + 3) + x * y) % 251) as u8;
            [v(3), v(5), v(7), 255 - v(11) / 2]
        };
        let mut out = Vec::new();
        let encoder = image::codecs::png::PngEncoder::new(&mut out);
        let (data, color): (Vec<u8>, _) = if alpha {
            let data = (0..height)
                .flat_map(|y| (0..width).flat_map(move |x| pixel(x, y)))
                .collect();
            (data, image::ExtendedColorType::Rgba8)
        } else {
            let data = (0..height)
                .flat_map(|y| (0..width).flat_map(move |x| pixel(x, y)[..3].to_vec()))
                .collect();
            (data, image::ExtendedColorType::Rgb8)
        };
        image::ImageEncoder::write_image(encoder, &data, width, height, color).expect("encodes");
        out
    }

    /// RGBA as a browser's canvas gives it: opaque where the image has no alpha.
    fn as_rgba(bitmap: &Bitmap) -> Vec<u8> {
        match bitmap.channels() {
            4 => bitmap.data().to_vec(),
            _ => bitmap
                .data()
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
        }
    }

    fn all_tiles(tiler: &mut Tiler) -> Vec<(TileAddr, Vec<u8>)> {
        let mut tiles = Vec::new();
        tiler
            .walk::<Error>(|addr, bytes| {
                tiles.push((addr, bytes));
                Ok(())
            })
            .expect("tiles");
        tiles
    }

    /// Pixels handed over raw make the pyramid, byte for byte, that decoding the same pixels
    /// makes: JPEG tiles from RGB, PNG tiles from RGBA.
    #[test]
    fn raw_pixels_tile_as_the_decoded_image() {
        for alpha in [false, true] {
            let source = png(700, 300, alpha);
            let options = Options {
                tile_size: 254,
                overlap: 1,
                ..Options::default()
            };
            let (metadata, bitmap) = decode::decode(&source, &options.limits).expect("decodes");
            let mut decoded = Tiler::open(&source, &options).expect("opens");
            let mut raw =
                Tiler::from_pixels(metadata.clone(), as_rgba(&bitmap), &options).expect("raw");
            assert_eq!(raw.channels(), if alpha { 4 } else { 3 });
            assert_eq!(raw.format(), decoded.format());
            assert_eq!(raw.dzi().to_xml(), decoded.dzi().to_xml());
            assert_eq!(raw.metadata(), &metadata);
            let (a, b) = (all_tiles(&mut raw), all_tiles(&mut decoded));
            assert_eq!(a.len(), b.len());
            for ((addr, x), (_, y)) in a.iter().zip(&b) {
                assert!(x == y, "alpha {alpha}: tile {addr:?} differs");
            }
        }
    }

    #[test]
    fn raw_pixels_are_checked() {
        let metadata = Metadata {
            format: SourceFormat::Avif,
            width: 30,
            height: 20,
            orientation: 1,
            has_alpha: false,
            exif: crate::meta::Exif::default(),
        };
        let options = Options::default();
        assert!(Tiler::from_pixels(metadata.clone(), vec![0; 30 * 20 * 4], &options).is_ok());
        assert!(matches!(
            Tiler::from_pixels(metadata.clone(), vec![0; 30 * 20 * 3], &options),
            Err(Error::Decode(_))
        ));
        let small = Options {
            limits: crate::Limits {
                max_pixels: 599,
                ..crate::Limits::default()
            },
            ..Options::default()
        };
        assert!(matches!(
            Tiler::from_pixels(metadata.clone(), vec![0; 30 * 20 * 4], &small),
            Err(Error::Limits(_))
        ));
        let huge = Metadata {
            width: u32::MAX,
            height: u32::MAX,
            ..metadata
        };
        assert!(matches!(
            Tiler::from_pixels(huge, Vec::new(), &options),
            Err(Error::Limits(_))
        ));
    }

    #[test]
    fn tiler_can_move_between_threads() {
        fn assert_send<T: Send + Sync>() {}
        assert_send::<Tiler>();
    }
}
