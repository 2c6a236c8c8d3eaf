//! JPEG XL sources through `jxl-oxide` (pure Rust), behind the `jxl` feature.
//!
//! The size is read from the codestream's image header alone, so that [`crate::decode`] can
//! refuse it against the limits before `jxl-oxide` allocates anything for it; decoding then
//! runs with an allocation tracker capped at `max_alloc` as well. The first frame is decoded
//! (as libvips loads page 0), upright as the header's orientation says, and converted to sRGB
//! through [`color`] from the profile `jxl-oxide` describes its output with.

use crate::bitmap::Bitmap;
use crate::color;
use crate::error::{Error, Result};
use crate::Limits;
use image::{DynamicImage, ImageBuffer};
use jxl_bitstream::{Bitstream, ContainerParser, ParseEvent};
use jxl_oxide::{AllocTracker, ExtraChannelType, ImageHeader, JxlImage, JxlThreadPool};
use jxl_oxide_common::Bundle;

/// Codestream bytes read for the header: its size and metadata take a few dozen bytes (more
/// with extensions), far below this.
const HEADER_BYTES: usize = 64 << 10;

/// What the codestream's header says.
pub(crate) struct Header {
    /// Upright width and height.
    pub width: u32,
    pub height: u32,
    /// Orientation, 1..=8, which decoding applies.
    pub orientation: u16,
    pub has_alpha: bool,
    /// Samples per pixel as decoded (colour, black and alpha).
    pub channels: u64,
}

/// Reads the image header of a bare codestream or an ISO BMFF container, decoding nothing.
pub(crate) fn header(bytes: &[u8]) -> Result<Header> {
    let mut parser = ContainerParser::new();
    let mut codestream = Vec::new();
    for event in parser.feed_bytes(bytes) {
        match event.map_err(|e| Error::Decode(format!("JPEG XL container: {e}")))? {
            ParseEvent::Codestream(chunk) => {
                let room = HEADER_BYTES - codestream.len();
                codestream.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if codestream.len() == HEADER_BYTES {
                    break;
                }
            }
            _ => continue,
        }
    }
    let header = ImageHeader::parse(&mut Bitstream::new(&codestream), ())
        .map_err(|e| Error::Decode(format!("JPEG XL header: {e}")))?;
    let metadata = &header.metadata;
    let has_alpha = metadata.ec_info.iter().any(|ec| ec.is_alpha());
    if metadata
        .ec_info
        .iter()
        .any(|ec| ec.ty == ExtraChannelType::Black)
    {
        return Err(Error::Unsupported("CMYK JPEG XL".into()));
    }
    let colour = if metadata.grayscale() { 1 } else { 3 };
    Ok(Header {
        width: header.width_with_orientation(),
        height: header.height_with_orientation(),
        orientation: metadata.orientation.clamp(1, 8) as u16,
        has_alpha,
        channels: colour + u64::from(has_alpha),
    })
}

/// Bytes `jxl-oxide` holds per decoded sample (32-bit planes), plus ours (up to 16 bits).
pub(crate) const BYTES_PER_SAMPLE: u64 = 4 + 2;

/// Decodes the first frame to upright 8-bit sRGB(A).
pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<Bitmap> {
    let tracker = AllocTracker::with_limit(usize::try_from(limits.max_alloc).unwrap_or(usize::MAX));
    let image = JxlImage::builder()
        .pool(JxlThreadPool::none())
        .alloc_tracker(tracker)
        .read(bytes)
        .map_err(|e| Error::Decode(format!("JPEG XL: {e}")))?;
    let render = image
        .render_frame(0)
        .map_err(|e| Error::Decode(format!("JPEG XL: {e}")))?;
    let mut stream = render.stream();
    let (width, height, channels) = (stream.width(), stream.height(), stream.channels());
    let samples = u64::from(width)
        .checked_mul(u64::from(height))
        .and_then(|p| p.checked_mul(u64::from(channels)))
        .filter(|&n| n.saturating_mul(2) <= limits.max_alloc)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::Limits(format!("{width}×{height} JPEG XL needs too much memory")))?;
    let wrong = || Error::Decode("JPEG XL decoded to an unexpected size".into());
    let deep = image.image_header().metadata.bit_depth.bits_per_sample() > 8;
    let decoded = if deep {
        let mut buf = vec![0u16; samples];
        if stream.write_to_buffer(&mut buf) != samples {
            return Err(wrong());
        }
        match channels {
            1 => DynamicImage::ImageLuma16(
                ImageBuffer::from_raw(width, height, buf).ok_or_else(wrong)?,
            ),
            2 => DynamicImage::ImageLumaA16(
                ImageBuffer::from_raw(width, height, buf).ok_or_else(wrong)?,
            ),
            3 => DynamicImage::ImageRgb16(
                ImageBuffer::from_raw(width, height, buf).ok_or_else(wrong)?,
            ),
            4 => DynamicImage::ImageRgba16(
                ImageBuffer::from_raw(width, height, buf).ok_or_else(wrong)?,
            ),
            _ => return Err(wrong()),
        }
    } else {
        let mut buf = vec![0u8; samples];
        if stream.write_to_buffer(&mut buf) != samples {
            return Err(wrong());
        }
        match channels {
            1 => DynamicImage::ImageLuma8(
                ImageBuffer::from_raw(width, height, buf).ok_or_else(wrong)?,
            ),
            2 => DynamicImage::ImageLumaA8(
                ImageBuffer::from_raw(width, height, buf).ok_or_else(wrong)?,
            ),
            3 => DynamicImage::ImageRgb8(
                ImageBuffer::from_raw(width, height, buf).ok_or_else(wrong)?,
            ),
            4 => DynamicImage::ImageRgba8(
                ImageBuffer::from_raw(width, height, buf).ok_or_else(wrong)?,
            ),
            _ => return Err(wrong()),
        }
    };
    // The profile of the pixels as rendered: the embedded one, or the header's colour encoding
    // as a profile (sRGB ones are left alone by `color`).
    color::to_srgb8(decoded, Some(&image.rendered_icc()))
}
