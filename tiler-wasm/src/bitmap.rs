//! An 8-bit sRGB image in memory: RGB or RGBA, rows packed without padding.

use crate::error::{Error, Result};
use crate::layout::Rect;

/// A packed 8-bit RGB (3 channels) or RGBA (4 channels) image.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitmap {
    width: u32,
    height: u32,
    channels: usize,
    data: Vec<u8>,
}

impl std::fmt::Debug for Bitmap {
    // The pixels are left out: they can be hundreds of megabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitmap")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl Bitmap {
    /// Wraps packed pixels; `data` must hold exactly `width × height × channels` bytes.
    pub fn new(width: u32, height: u32, channels: usize, data: Vec<u8>) -> Result<Self> {
        if !(channels == 3 || channels == 4) {
            return Err(Error::Unsupported(format!("{channels} channels")));
        }
        let expected = (width as usize)
            .checked_mul(height as usize)
            .and_then(|n| n.checked_mul(channels));
        if expected != Some(data.len()) || width == 0 || height == 0 {
            return Err(Error::Decode(format!(
                "{} bytes do not make a {width}×{height}×{channels} image",
                data.len()
            )));
        }
        Ok(Bitmap {
            width,
            height,
            channels,
            data,
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
    /// 3 for RGB, 4 for RGBA.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Whether the last channel is alpha.
    pub fn has_alpha(&self) -> bool {
        self.channels == 4
    }
    /// The packed pixels, row by row.
    pub fn data(&self) -> &[u8] {
        &self.data
    }
    /// Bytes per row.
    pub fn stride(&self) -> usize {
        self.width as usize * self.channels
    }
    /// Takes the packed pixels.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// A copy of the pixels inside `rect`, which must lie within the image.
    pub fn crop(&self, rect: Rect) -> Result<Bitmap> {
        crop_rows(&self.data, self.width, self.height, 0, self.channels, rect)
    }
}

/// A copy of the pixels inside `rect` from packed rows `first_row..first_row + height` of an
/// image `width` pixels wide: the whole image ([`Bitmap::crop`]) or the band of rows a
/// streaming pyramid level still holds ([`crate::stream`]). `rect` is in image coordinates.
pub(crate) fn crop_rows(
    data: &[u8],
    width: u32,
    height: u32,
    first_row: u32,
    channels: usize,
    rect: Rect,
) -> Result<Bitmap> {
    let fits = |start: u32, len: u32, origin: u32, extent: u32| {
        len > 0
            && start >= origin
            && start
                .checked_add(len)
                .is_some_and(|end| u64::from(end) <= u64::from(origin) + u64::from(extent))
    };
    let stride = width as usize * channels;
    if !fits(rect.x, rect.width, 0, width)
        || !fits(rect.y, rect.height, first_row, height)
        || data.len() < stride * height as usize
    {
        return Err(Error::InvalidOption(format!(
            "crop {rect:?} outside rows {first_row}..+{height} of a {width}-pixel-wide image"
        )));
    }
    let row_bytes = rect.width as usize * channels;
    let mut out = Vec::with_capacity(row_bytes * rect.height as usize);
    for y in rect.y - first_row..rect.y - first_row + rect.height {
        let start = y as usize * stride + rect.x as usize * channels;
        out.extend_from_slice(&data[start..start + row_bytes]);
    }
    Bitmap::new(rect.width, rect.height, channels, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_copies_the_rectangle() {
        let data: Vec<u8> = (0..4 * 3 * 3).map(|v| v as u8).collect();
        let b = Bitmap::new(4, 3, 3, data).expect("valid");
        let c = b
            .crop(Rect {
                x: 1,
                y: 1,
                width: 2,
                height: 2,
            })
            .expect("inside");
        assert_eq!(c.data(), &[15, 16, 17, 18, 19, 20, 27, 28, 29, 30, 31, 32]);
        let outside = Rect {
            x: 3,
            y: 0,
            width: 2,
            height: 1,
        };
        assert!(b.crop(outside).is_err());
    }

    #[test]
    fn size_must_match() {
        assert!(Bitmap::new(2, 2, 3, vec![0; 11]).is_err());
        assert!(Bitmap::new(2, 2, 2, vec![0; 8]).is_err());
        assert!(Bitmap::new(0, 2, 3, vec![]).is_err());
    }
}
