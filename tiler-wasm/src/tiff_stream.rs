//! TIFF and BigTIFF sources read strip by strip or tile row by tile row into a
//! [`StreamTiler`], so that a gigapixel orthomosaic is tiled in memory that
//! depends on its width, never on its area.
//!
//! Strips and tiles are decoded by the `tiff` crate (LZW, Deflate, PackBits,
//! JPEG; BigTIFF). Samples become 8-bit sRGB exactly as the whole-image path
//! makes them ([`crate::color::to_srgb8`]: 16-bit keeps the high byte, as `vips
//! dzsave` casts, embedded profiles applied, grey expanded), one band of rows at
//! a time. Variants this reader does not stream (planar, palette, CMYK, float,
//! rotated) are refused with [`Error::Unsupported`], which callers take as the
//! cue to fall back to the whole-image path and its limits.

use crate::color;
use crate::error::{Error, Result};
use crate::layout::TileAddr;
use crate::stream::{stream_bands, StreamTiler};
use crate::{Limits, Options};
use image::{DynamicImage, ImageBuffer, Luma, LumaA, Rgb, Rgba};
use std::io::{Read, Seek};
use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::{PlanarConfiguration, Tag};
use tiff::ColorType;

/// Rows gathered from thin strips before they are converted and pushed, so that the
/// per-call cost of colour conversion is spread over enough pixels.
const MIN_BAND_ROWS: u32 = 64;
/// Largest IFD value read (tile offsets and byte counts of a huge tiled image).
const MAX_IFD_VALUE: usize = 256 << 20;

/// How samples are laid out in each pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Samples {
    Grey,
    GreyAlpha,
    Rgb,
    Rgba,
    /// JPEG-compressed YCbCr, as `vips tiffsave --compression jpeg` writes: converted to RGB.
    YCbCr,
}

impl Samples {
    fn count(self) -> u32 {
        match self {
            Samples::Grey => 1,
            Samples::GreyAlpha => 2,
            Samples::Rgb | Samples::YCbCr => 3,
            Samples::Rgba => 4,
        }
    }
}

/// A TIFF or BigTIFF whose header is read and checked, ready to be streamed.
pub struct TiffSource<R: Read + Seek> {
    decoder: Decoder<R>,
    width: u32,
    height: u32,
    samples: Samples,
    sixteen: bool,
    icc: Option<Vec<u8>>,
    /// Width and height of a full chunk (tile, or strip as wide as the image).
    chunk: (u32, u32),
    tiled: bool,
}

impl<R: Read + Seek> std::fmt::Debug for TiffSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiffSource")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("samples", &self.samples)
            .field("sixteen", &self.sixteen)
            .field("chunk", &self.chunk)
            .field("tiled", &self.tiled)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> TiffSource<R> {
    /// Reads the first image's header. The size is checked against `limits.max_dimension`
    /// only: the area is what streaming makes affordable (see [`TiffSource::tiler`]).
    pub fn open(reader: R, limits: &Limits) -> Result<Self> {
        // As in `bands`: a panic of the decoder on hostile bytes becomes an error.
        crate::error::contain(|| Self::open_unguarded(reader, limits))
    }

    fn open_unguarded(reader: R, limits: &Limits) -> Result<Self> {
        let mut tiff_limits = tiff::decoder::Limits::default();
        let max_alloc = usize::try_from(limits.max_alloc).unwrap_or(usize::MAX);
        tiff_limits.decoding_buffer_size = max_alloc;
        tiff_limits.intermediate_buffer_size = max_alloc;
        tiff_limits.ifd_value_size = MAX_IFD_VALUE;
        let mut decoder = Decoder::new(reader)?.with_limits(tiff_limits);
        let (width, height) = decoder.dimensions()?;
        crate::decode::check_sides(width, height, limits)?;
        let unsupported = |what: String| Err(Error::Unsupported(format!("TIFF {what}")));
        let orientation = decoder
            .find_tag_unsigned::<u16>(Tag::Orientation)?
            .unwrap_or(1);
        if orientation != 1 {
            return unsupported(format!("orientation {orientation} is not streamed"));
        }
        let planar = decoder
            .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)?
            .unwrap_or(1);
        if planar != PlanarConfiguration::Chunky.to_u16() {
            return unsupported("with separate colour planes is not streamed".into());
        }
        let photometric = decoder
            .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)?
            .unwrap_or(1);
        if photometric == 0 {
            return unsupported("WhiteIsZero grey is not streamed".into());
        }
        let (samples, bits) = match decoder.colortype()? {
            ColorType::Gray(b) => (Samples::Grey, b),
            ColorType::GrayA(b) => (Samples::GreyAlpha, b),
            ColorType::Multiband {
                bit_depth,
                num_samples: 2,
            } => (Samples::GreyAlpha, bit_depth),
            ColorType::RGB(b) => (Samples::Rgb, b),
            ColorType::RGBA(b) => (Samples::Rgba, b),
            ColorType::YCbCr(8) => (Samples::YCbCr, 8),
            other => return unsupported(format!("colour type {other:?} is not streamed")),
        };
        let streamed_depth = bits == 8 || (bits == 16 && samples != Samples::YCbCr);
        if !streamed_depth {
            return unsupported(format!("{bits}-bit samples are not streamed"));
        }
        // One value per sample.
        let sample_formats = decoder
            .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)?
            .unwrap_or_default();
        if sample_formats.iter().any(|&f| f != 1) {
            return unsupported("signed or floating-point samples are not streamed".into());
        }
        let tiled = decoder.get_chunk_type() == tiff::decoder::ChunkType::Tile;
        let chunk = if tiled {
            (
                decoder.get_tag_u32(Tag::TileWidth)?,
                decoder.get_tag_u32(Tag::TileLength)?,
            )
        } else {
            let rows = decoder
                .find_tag_unsigned::<u32>(Tag::RowsPerStrip)?
                .unwrap_or(height);
            (width, rows.clamp(1, height))
        };
        if chunk.0 == 0 || chunk.1 == 0 {
            return Err(Error::Decode(format!(
                "TIFF chunks of {}×{}",
                chunk.0, chunk.1
            )));
        }
        // A damaged profile is no reason to refuse the pixels, as in the whole-image path.
        let icc = decoder.get_tag_u8_vec(Tag::IccProfile).ok();
        Ok(TiffSource {
            decoder,
            width,
            height,
            samples,
            sixteen: bits == 16,
            icc,
            chunk,
            tiled,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Whether the image has an alpha channel.
    pub fn has_alpha(&self) -> bool {
        matches!(self.samples, Samples::GreyAlpha | Samples::Rgba)
    }

    /// Rows decoded and converted at once: a tile row, or enough strips to make
    /// [`MIN_BAND_ROWS`].
    fn band_rows(&self) -> u32 {
        if self.tiled {
            self.chunk.1.min(self.height)
        } else {
            let strips = MIN_BAND_ROWS.div_ceil(self.chunk.1);
            self.chunk.1.saturating_mul(strips).min(self.height)
        }
    }

    /// The most bytes one band of rows takes while it is decoded and converted: source
    /// samples, one decoded chunk, and the 8-bit result.
    fn band_bytes(&self) -> u64 {
        let bytes = if self.sixteen { 2 } else { 1 };
        let samples = u64::from(self.samples.count()) * bytes;
        let band = u64::from(self.width) * u64::from(self.band_rows());
        let chunk = u64::from(self.chunk.0) * u64::from(self.chunk.1);
        (band.saturating_mul(samples + 4)).saturating_add(chunk.saturating_mul(samples))
    }

    /// The pyramid this source streams into, with `options`; refuses an image whose rows
    /// need more than `options.limits.max_alloc` bytes at once (a very wide image, or one
    /// stored as a single huge strip).
    pub fn tiler(&self, options: &Options) -> Result<StreamTiler> {
        StreamTiler::new(self.width, self.height, self.has_alpha(), options)?.within(
            self.band_bytes(),
            &options.limits,
            || {
                format!(
                    "this {}×{} TIFF ({}×{} {})",
                    self.width,
                    self.height,
                    self.chunk.0,
                    self.chunk.1,
                    if self.tiled { "tiles" } else { "strips" },
                )
            },
        )
    }

    /// Decodes the image band by band into `tiler` (made by [`TiffSource::tiler`]), which
    /// hands every tile to `f` as it is finished; see [`crate::stream::stream_bands`].
    pub fn stream_into<E, F>(self, tiler: StreamTiler, threads: usize, f: &F) -> Result<(), E>
    where
        R: Send,
        E: From<Error> + Send,
        F: Fn(TileAddr, Vec<u8>) -> Result<(), E> + Sync + ?Sized,
    {
        if (tiler.layout().width(), tiler.layout().height()) != (self.width, self.height) {
            return Err(Error::InvalidOption("the pyramid is not this image's".into()).into());
        }
        stream_bands(self.bands(), tiler, threads, f)
    }

    /// Every band of rows, top to bottom, as 8-bit sRGB(A).
    fn bands(mut self) -> impl Iterator<Item = Result<Vec<u8>>> {
        let band_rows = self.band_rows();
        let mut y = 0;
        std::iter::from_fn(move || {
            if y >= self.height {
                return None;
            }
            let rows = band_rows.min(self.height - y);
            // The `tiff` crate is third-party code fed hostile bytes: a panic becomes an error
            // (the stream stops at it), kept apart from decode errors as the bug it is.
            let band = crate::error::contain(|| self.read_band(y, rows));
            y += rows;
            Some(band)
        })
    }

    /// Rows `y..y + rows` as 8-bit sRGB(A) (`y` and `rows` on chunk boundaries, except at
    /// the bottom).
    fn read_band(&mut self, y: u32, rows: u32) -> Result<Vec<u8>> {
        let spp = self.samples.count() as usize;
        let row_samples = self.width as usize * spp;
        let len = row_samples
            .checked_mul(rows as usize)
            .ok_or_else(|| Error::Limits("a band of rows does not fit in memory".into()))?;
        let (cw, ch) = self.chunk;
        let across = if self.tiled {
            self.width.div_ceil(cw)
        } else {
            1
        };
        let mut band = if self.sixteen {
            DecodingResult::U16(vec![0; len])
        } else {
            DecodingResult::U8(vec![0; len])
        };
        let mut chunk_y = y;
        while chunk_y < y + rows {
            let chunk_row = chunk_y / ch;
            let data_h = ch.min(self.height - chunk_y);
            for across_i in 0..across {
                let index = chunk_row
                    .checked_mul(across)
                    .and_then(|i| i.checked_add(across_i))
                    .ok_or_else(|| Error::Decode("too many TIFF chunks".into()))?;
                let x0 = across_i * cw;
                let data_w = cw.min(self.width - x0);
                let chunk = self.decoder.read_chunk(index)?;
                let at = (chunk_y - y) as usize * row_samples + x0 as usize * spp;
                copy_chunk(&chunk, &mut band, at, data_w, data_h, spp, row_samples)?;
            }
            chunk_y += data_h;
        }
        self.to_srgb(band, rows)
    }

    fn to_srgb(&self, band: DecodingResult, rows: u32) -> Result<Vec<u8>> {
        let w = self.width;
        let wrong = || Error::Decode("TIFF band of an unexpected size".into());
        let image = match (band, self.samples) {
            (DecodingResult::U8(mut v), Samples::YCbCr) => {
                color::YccToRgb::new().convert_in_place(&mut v);
                DynamicImage::ImageRgb8(
                    ImageBuffer::<Rgb<u8>, _>::from_raw(w, rows, v).ok_or_else(wrong)?,
                )
            }
            (DecodingResult::U8(v), Samples::Grey) => DynamicImage::ImageLuma8(
                ImageBuffer::<Luma<u8>, _>::from_raw(w, rows, v).ok_or_else(wrong)?,
            ),
            (DecodingResult::U8(v), Samples::GreyAlpha) => DynamicImage::ImageLumaA8(
                ImageBuffer::<LumaA<u8>, _>::from_raw(w, rows, v).ok_or_else(wrong)?,
            ),
            (DecodingResult::U8(v), Samples::Rgb) => DynamicImage::ImageRgb8(
                ImageBuffer::<Rgb<u8>, _>::from_raw(w, rows, v).ok_or_else(wrong)?,
            ),
            (DecodingResult::U8(v), Samples::Rgba) => DynamicImage::ImageRgba8(
                ImageBuffer::<Rgba<u8>, _>::from_raw(w, rows, v).ok_or_else(wrong)?,
            ),
            (DecodingResult::U16(v), Samples::Grey) => DynamicImage::ImageLuma16(
                ImageBuffer::<Luma<u16>, _>::from_raw(w, rows, v).ok_or_else(wrong)?,
            ),
            (DecodingResult::U16(v), Samples::GreyAlpha) => DynamicImage::ImageLumaA16(
                ImageBuffer::<LumaA<u16>, _>::from_raw(w, rows, v).ok_or_else(wrong)?,
            ),
            (DecodingResult::U16(v), Samples::Rgb) => DynamicImage::ImageRgb16(
                ImageBuffer::<Rgb<u16>, _>::from_raw(w, rows, v).ok_or_else(wrong)?,
            ),
            (DecodingResult::U16(v), Samples::Rgba) => DynamicImage::ImageRgba16(
                ImageBuffer::<Rgba<u16>, _>::from_raw(w, rows, v).ok_or_else(wrong)?,
            ),
            _ => return Err(wrong()),
        };
        Ok(color::to_srgb8(image, self.icc.as_deref())?.into_data())
    }
}

/// Copies a decoded chunk of `w`×`h` pixels into `band` at sample offset `at`, rows
/// `row_samples` apart; refuses a chunk of another size or sample type.
fn copy_chunk(
    chunk: &DecodingResult,
    band: &mut DecodingResult,
    at: usize,
    w: u32,
    h: u32,
    spp: usize,
    row_samples: usize,
) -> Result<()> {
    fn copy<T: Copy>(
        src: &[T],
        dst: &mut [T],
        at: usize,
        line: usize,
        h: usize,
        row_samples: usize,
    ) -> Result<()> {
        if src.len() != line * h {
            return Err(Error::Decode(format!(
                "a TIFF chunk decoded to {} samples instead of {}",
                src.len(),
                line * h
            )));
        }
        for (r, src_row) in src.chunks_exact(line).enumerate() {
            let start = at + r * row_samples;
            let dst_row = dst
                .get_mut(start..start + line)
                .ok_or_else(|| Error::Decode("a TIFF chunk outside the image".into()))?;
            dst_row.copy_from_slice(src_row);
        }
        Ok(())
    }
    let line = w as usize * spp;
    match (chunk, band) {
        (DecodingResult::U8(s), DecodingResult::U8(d)) => {
            copy(s, d, at, line, h as usize, row_samples)
        }
        (DecodingResult::U16(s), DecodingResult::U16(d)) => {
            copy(s, d, at, line, h as usize, row_samples)
        }
        _ => Err(Error::Unsupported(
            "TIFF chunk samples of another type than the header declares".into(),
        )),
    }
}

impl From<tiff::TiffError> for Error {
    fn from(e: tiff::TiffError) -> Self {
        use tiff::TiffError as E;
        match e {
            E::UnsupportedError(u) => Error::Unsupported(format!("TIFF: {u}")),
            E::LimitsExceeded | E::IntSizeError => Error::Limits(format!("TIFF: {e}")),
            E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                Error::Decode("the TIFF is truncated".into())
            }
            other => Error::Decode(format!("TIFF: {other}")),
        }
    }
}
