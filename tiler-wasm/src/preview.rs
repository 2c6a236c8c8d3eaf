//! A small picture of a JPEG for the first view, decoded at 1/2–1/8 scale.
//!
//! JPEG's DCT lets a decoder make a reduced image while skipping most of the
//! inverse transform, the upsampling and the colour conversion (the entropy
//! decoding is still paid), which is what makes this quicker than the full
//! decode. The preview is only ever shown beneath the pyramid until its tiles
//! arrive: it never feeds the pyramid, whose pixels all come from the full
//! decode, so tiles stay byte-identical to those made without it. It is
//! approximate on purpose: no colour profile is applied.

use crate::bitmap::Bitmap;
use crate::decode;
use crate::dzi::TileFormat;
use crate::encode;
use crate::error::{Error, Result};
use crate::meta::SourceFormat;
use crate::orient;
use crate::Limits;
use std::io::Cursor;

/// JPEG quality of the preview's own encoding.
const PREVIEW_QUALITY: u8 = 85;

/// A JPEG of `bytes` (upright) whose longer side is at least `min_side` pixels
/// or the image's own, at the smallest DCT scale that gives that; `None` for
/// other formats and for JPEG colour spaces a preview does not handle (CMYK).
pub fn preview_jpeg(bytes: &[u8], min_side: u32, limits: &Limits) -> Result<Option<Vec<u8>>> {
    crate::error::contain(|| preview_unguarded(bytes, min_side, limits))
}

fn preview_unguarded(bytes: &[u8], min_side: u32, limits: &Limits) -> Result<Option<Vec<u8>>> {
    // The same header checks and limits as the full decode, before any pixel.
    let metadata = decode::probe(bytes, limits)?;
    // Below twice the size asked for, no DCT scale applies and the full decode is quick anyway.
    let longer = metadata.width.max(metadata.height);
    if metadata.format != SourceFormat::Jpeg || metadata.has_alpha || longer < 2 * min_side {
        return Ok(None);
    }
    // As the full decode does, rather than show a half-grey picture.
    if !decode::jpeg_has_end(bytes) {
        return Err(Error::Decode("the image file is truncated".into()));
    }
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc).unwrap_or(usize::MAX));
    decoder.read_info().map_err(jpeg_error)?;
    let side = u16::try_from(min_side).unwrap_or(u16::MAX);
    let (width, height) = decoder.scale(side, side).map_err(jpeg_error)?;
    let pixels = decoder.decode().map_err(jpeg_error)?;
    let format = decoder.info().map(|i| i.pixel_format);
    let rgb = match format {
        Some(jpeg_decoder::PixelFormat::RGB24) => pixels,
        Some(jpeg_decoder::PixelFormat::L8) => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        _ => return Ok(None),
    };
    let stored = Bitmap::new(u32::from(width), u32::from(height), 3, rgb)?;
    let upright = orient::apply(stored, metadata.orientation)?;
    encode::encode(&upright, TileFormat::Jpeg, PREVIEW_QUALITY).map(Some)
}

fn jpeg_error(e: jpeg_decoder::Error) -> Error {
    Error::Decode(e.to_string())
}
