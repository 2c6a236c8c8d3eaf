//! Non-interlaced PNG sources read row by row into a [`StreamTiler`], so that a huge PNG
//! is tiled in memory that depends on its width, never on its area.
//!
//! Rows are decoded by the `png` crate with the transformations the whole-image path
//! (`image`'s PNG decoder) asks for: palettes and tRNS expanded (to RGB, or RGBA when
//! there is a tRNS chunk), low bit depths widened to 8. They become 8-bit sRGB exactly
//! as that path makes them ([`crate::color::to_srgb8`]: 16-bit keeps the high byte, as
//! `vips dzsave` casts; embedded profiles applied; grey expanded), a band at a time.
//!
//! Interlaced (Adam7) PNGs cannot be read in row order: their last pass holds every
//! other row. They, animated PNGs, and PNGs that EXIF says to rotate are refused with
//! [`Error::Unsupported`], which callers take as the cue to fall back to the whole-image
//! path and its limits.

use crate::color;
use crate::error::{Error, Result};
use crate::layout::TileAddr;
use crate::meta::ExifData;
use crate::orient;
use crate::stream::{stream_bands, StreamTiler};
use crate::{Limits, Options};
use image::{DynamicImage, ImageBuffer, Luma, LumaA, Rgb, Rgba};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

/// Rows decoded before they are converted and pushed, so that the per-call cost of colour
/// conversion is spread over enough pixels.
const BAND_ROWS: u32 = 64;
/// Read-ahead over the source.
const READ_BUFFER: usize = 64 << 10;
/// Largest eXIf chunk read while looking for the orientation; a larger one is left to the
/// whole-image path, which reads it from the file in memory.
const MAX_EXIF: u64 = 1 << 20;
/// What the `png` crate holds besides its rows: the inflate window and state.
const INFLATE_BYTES: u64 = 64 << 10;

/// A PNG whose header is read and checked, ready to be streamed.
pub struct PngSource<R: Read + Seek> {
    reader: png::Reader<BufReader<R>>,
    width: u32,
    height: u32,
    /// Samples per pixel of the rows the reader hands over: 1 (grey) to 4 (RGBA).
    samples: u32,
    sixteen: bool,
    icc: Option<Vec<u8>>,
}

impl<R: Read + Seek> std::fmt::Debug for PngSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PngSource")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("samples", &self.samples)
            .field("sixteen", &self.sixteen)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> PngSource<R> {
    /// Looks through the chunk headers for an eXIf chunk (skipping their data), then reads the
    /// header and every chunk before the pixels. The size is checked against
    /// `limits.max_dimension` only: the area is what streaming makes affordable (see
    /// [`PngSource::tiler`]); the decoder's own buffers are held to `limits.max_alloc`.
    pub fn open(reader: R, limits: &Limits) -> Result<Self> {
        // As in `bands`: a panic of the decoder on hostile bytes becomes an error.
        crate::error::contain(|| Self::open_unguarded(reader, limits))
    }

    fn open_unguarded(reader: R, limits: &Limits) -> Result<Self> {
        let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
        let exif = exif_chunk(&mut reader)?.map_or_else(ExifData::default, ExifData::from_raw);
        let orientation = orient::normalise(exif.orientation().unwrap_or(1));
        if orientation != 1 {
            return Err(Error::Unsupported(format!(
                "a PNG with EXIF orientation {orientation} is not streamed"
            )));
        }
        reader.seek(SeekFrom::Start(0)).map_err(read_error)?;
        let max_alloc = usize::try_from(limits.max_alloc).unwrap_or(usize::MAX);
        let mut decoder = png::Decoder::new_with_limits(reader, png::Limits { bytes: max_alloc });
        let header = decoder.read_header_info()?;
        let (width, height) = (header.width, header.height);
        crate::decode::check_sides(width, height, limits)?;
        if header.interlaced {
            return Err(Error::Unsupported(
                "an interlaced (Adam7) PNG is not streamed".into(),
            ));
        }
        // What `image`'s PNG decoder asks for, so that the samples are the same.
        decoder.set_transformations(png::Transformations::EXPAND);
        let reader = decoder.read_info()?;
        check_palette(reader.info())?;
        if reader.info().animation_control.is_some() {
            return Err(Error::Unsupported("an animated PNG is not streamed".into()));
        }
        let (colour, depth) = reader.output_color_type();
        let samples = match colour {
            png::ColorType::Grayscale => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            png::ColorType::Indexed => {
                return Err(Error::Unsupported("PNG palette left unexpanded".into()))
            }
        };
        let sixteen = match depth {
            png::BitDepth::Eight => false,
            png::BitDepth::Sixteen => true,
            other => {
                return Err(Error::Unsupported(format!(
                    "PNG samples of {other:?} bits left unexpanded"
                )))
            }
        };
        // A damaged profile is ignored later, as in the whole-image path.
        let icc = reader.info().icc_profile.as_ref().map(|p| p.to_vec());
        Ok(PngSource {
            reader,
            width,
            height,
            samples,
            sixteen,
            icc,
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

    /// Whether the image has an alpha channel (its own, or from a tRNS chunk).
    pub fn has_alpha(&self) -> bool {
        matches!(self.samples, 2 | 4)
    }

    /// Bytes of one row as the reader hands it over.
    fn row_bytes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.samples) * if self.sixteen { 2 } else { 1 }
    }

    /// The most bytes one band of rows takes while it is decoded and converted: the
    /// decoder's rows (raw, previous, and output), the band's samples and the 8-bit result.
    fn band_bytes(&self) -> u64 {
        let rows = u64::from(BAND_ROWS.min(self.height));
        let eight_bit = u64::from(self.width) * u64::from(self.samples);
        let result = u64::from(self.width) * 4;
        (self.row_bytes().saturating_mul(3))
            .saturating_add(rows.saturating_mul(eight_bit.saturating_add(result)))
            .saturating_add(INFLATE_BYTES + READ_BUFFER as u64)
    }

    /// The pyramid this source streams into, with `options`; refuses an image whose rows
    /// need more than `options.limits.max_alloc` bytes at once (a very wide image).
    pub fn tiler(&self, options: &Options) -> Result<StreamTiler> {
        StreamTiler::new(self.width, self.height, self.has_alpha(), options)?.within(
            self.band_bytes(),
            &options.limits,
            || format!("this {}×{} PNG", self.width, self.height),
        )
    }

    /// Decodes the image band by band into `tiler` (made by [`PngSource::tiler`]), which
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
        let mut y = 0;
        std::iter::from_fn(move || {
            if y >= self.height {
                return None;
            }
            let rows = BAND_ROWS.min(self.height - y);
            // The `png` crate is third-party code fed hostile bytes: a panic becomes an error
            // (the stream stops at it), kept apart from decode errors as the bug it is.
            let band = crate::error::contain(|| self.read_band(y, rows));
            y += rows;
            Some(band)
        })
    }

    /// Rows `y..y + rows` as 8-bit sRGB(A); after the last row, the rest of the image data
    /// is read and checked, as the whole-image decode does.
    fn read_band(&mut self, y: u32, rows: u32) -> Result<Vec<u8>> {
        let row_bytes = usize::try_from(self.row_bytes())
            .map_err(|_| Error::Limits("a PNG row does not fit in memory".into()))?;
        let eight_bit = self.width as usize * self.samples as usize;
        let len = eight_bit
            .checked_mul(rows as usize)
            .ok_or_else(|| Error::Limits("a band of rows does not fit in memory".into()))?;
        let mut band = Vec::with_capacity(len);
        for _ in 0..rows {
            let row = self
                .reader
                .next_row()?
                .ok_or_else(|| Error::Decode("the PNG has fewer rows than it declares".into()))?;
            let data = row.data();
            if data.len() != row_bytes {
                return Err(Error::Decode(format!(
                    "a PNG row of {} bytes instead of {row_bytes}",
                    data.len()
                )));
            }
            if self.sixteen {
                // Big-endian samples: the high byte comes first.
                band.extend(data.iter().step_by(2));
            } else {
                band.extend_from_slice(data);
            }
        }
        if y + rows == self.height && self.reader.next_row()?.is_some() {
            return Err(Error::Decode(
                "the PNG has more rows than it declares".into(),
            ));
        }
        self.to_srgb(band, rows)
    }

    fn to_srgb(&self, band: Vec<u8>, rows: u32) -> Result<Vec<u8>> {
        let w = self.width;
        let wrong = || Error::Decode("PNG band of an unexpected size".into());
        let image = match self.samples {
            1 => DynamicImage::ImageLuma8(
                ImageBuffer::<Luma<u8>, _>::from_raw(w, rows, band).ok_or_else(wrong)?,
            ),
            2 => DynamicImage::ImageLumaA8(
                ImageBuffer::<LumaA<u8>, _>::from_raw(w, rows, band).ok_or_else(wrong)?,
            ),
            3 => DynamicImage::ImageRgb8(
                ImageBuffer::<Rgb<u8>, _>::from_raw(w, rows, band).ok_or_else(wrong)?,
            ),
            _ => DynamicImage::ImageRgba8(
                ImageBuffer::<Rgba<u8>, _>::from_raw(w, rows, band).ok_or_else(wrong)?,
            ),
        };
        Ok(color::to_srgb8(image, self.icc.as_deref())?.into_data())
    }
}

/// Refuses a palette that is not whole RGB entries or holds more than 256 of them, on which the
/// `png` crate's palette expansion panics (found by the `stream_tile` fuzz target).
pub(crate) fn check_palette(info: &png::Info<'_>) -> Result<()> {
    match &info.palette {
        Some(palette) if info.color_type == png::ColorType::Indexed => {
            if palette.len() % 3 != 0 || palette.len() > 3 * 256 {
                return Err(Error::Decode(format!(
                    "a PNG palette of {} bytes",
                    palette.len()
                )));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn read_error(e: std::io::Error) -> Error {
    Error::Decode(format!("cannot read the PNG: {e}"))
}

/// The data of the first eXIf chunk, found as the whole-image path finds it (`kamadak-exif`:
/// chunk by chunk to the end of the file, wherever the chunk is); `None` when there is none
/// or the chunks run past the end. Chunk data is skipped, never read.
fn exif_chunk<R: Read + Seek>(reader: &mut BufReader<R>) -> Result<Option<Vec<u8>>> {
    let mut signature = [0u8; 8];
    if reader.read_exact(&mut signature).is_err() {
        return Ok(None);
    }
    loop {
        if reader.fill_buf().map_err(read_error)?.is_empty() {
            return Ok(None);
        }
        let mut head = [0u8; 8];
        if reader.read_exact(&mut head).is_err() {
            return Ok(None);
        }
        let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        if &head[4..] == b"eXIf" {
            if len > MAX_EXIF {
                return Err(Error::Unsupported(format!(
                    "a PNG eXIf chunk of {len} bytes is not streamed"
                )));
            }
            let mut data = Vec::new();
            let read = reader
                .by_ref()
                .take(len)
                .read_to_end(&mut data)
                .map_err(read_error)?;
            return Ok((read as u64 == len).then_some(data));
        }
        // Data and CRC; a skip past the end finds the end at the next chunk.
        let skip = i64::try_from(len + 4).unwrap_or(i64::MAX);
        reader.seek_relative(skip).map_err(read_error)?;
    }
}

impl From<png::DecodingError> for Error {
    fn from(e: png::DecodingError) -> Self {
        use png::DecodingError as E;
        match e {
            E::LimitsExceeded => Error::Limits(format!("PNG: {e}")),
            E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                Error::Decode("the PNG is truncated".into())
            }
            other => Error::Decode(format!("PNG: {other}")),
        }
    }
}
