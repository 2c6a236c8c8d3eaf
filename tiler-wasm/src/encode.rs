//! Tile pixels to file bytes: JPEG as libjpeg does by default for `vips dzsave`
//! (4:2:0, standard tables, no metadata), PNG, and lossless WebP.

use crate::bitmap::Bitmap;
use crate::dzi::TileFormat;
use crate::error::{Error, Result};
use image::ImageEncoder;

/// Encodes `tile` in `format`; `quality` (1..=100) applies to JPEG.
///
/// JPEG has no alpha, so an RGBA tile is flattened onto black first, truncating
/// as `vips flatten` does. WebP tiles are lossless (the `image` crate has no
/// lossy WebP encoder), so `quality` does not apply to them.
pub fn encode(tile: &Bitmap, format: TileFormat, quality: u8) -> Result<Vec<u8>> {
    match format {
        TileFormat::Jpeg => encode_jpeg(tile, quality),
        TileFormat::Png => encode_png(tile),
        TileFormat::Webp => encode_webp(tile),
    }
}

fn encode_jpeg(tile: &Bitmap, quality: u8) -> Result<Vec<u8>> {
    let (width, height) = jpeg_size(tile)?;
    let flattened;
    let rgb = if tile.has_alpha() {
        flattened = flatten_on_black(tile.data());
        &flattened
    } else {
        tile.data()
    };
    let mut out = Vec::with_capacity(rgb.len() / 8);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    // Chroma averaged over each 2×2 block, with libjpeg's alternating rounding bias, as vips's
    // libjpeg does; the crate's default takes the top-left sample, which left full-resolution tiles
    // 47 dB from vips's and small levels under 30 dB (now 87 dB, and several levels identical).
    encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    encoder
        .encode(rgb, width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(out)
}

fn jpeg_size(tile: &Bitmap) -> Result<(u16, u16)> {
    let too_big = || {
        Error::Encode(format!(
            "a {}×{} tile is too large for JPEG",
            tile.width(),
            tile.height()
        ))
    };
    Ok((
        u16::try_from(tile.width()).map_err(|_| too_big())?,
        u16::try_from(tile.height()).map_err(|_| too_big())?,
    ))
}

/// RGBA → RGB composited on black: `c·a/255`, truncated.
fn flatten_on_black(rgba: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    for px in rgba.chunks_exact(4) {
        let a = u32::from(px[3]);
        rgb.extend(px[..3].iter().map(|&c| (u32::from(c) * a / 255) as u8));
    }
    rgb
}

fn color_type(tile: &Bitmap) -> image::ExtendedColorType {
    if tile.has_alpha() {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    }
}

fn encode_png(tile: &Bitmap) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    // fdeflate's fast mode: on photo tiles about 50× quicker than zlib level 6 (which took 90% of
    // a PNG pyramid's time) for files about the size libvips writes; the pixels are the same.
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(tile.data(), tile.width(), tile.height(), color_type(tile))
    .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(out)
}

fn encode_webp(tile: &Bitmap) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(tile.data(), tile.width(), tile.height(), color_type(tile))
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(channels: usize) -> Bitmap {
        let data = (0..7 * 5 * channels).map(|v| (v * 7) as u8).collect();
        Bitmap::new(7, 5, channels, data).expect("valid")
    }

    #[test]
    fn every_format_has_its_signature() {
        for format in [TileFormat::Jpeg, TileFormat::Png, TileFormat::Webp] {
            for channels in [3, 4] {
                let bytes = encode(&sample(channels), format, 75).expect("encodes");
                assert!(format.matches_magic(&bytes), "{format} {channels}");
            }
        }
    }

    #[test]
    fn png_round_trips_exactly() {
        let tile = sample(4);
        let bytes = encode(&tile, TileFormat::Png, 75).expect("encodes");
        let back = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
            .expect("decodes")
            .into_rgba8();
        assert_eq!(back.as_raw(), tile.data());
    }

    #[test]
    fn flattening_truncates_like_vips() {
        // Values read back from `vips flatten` of (201, 3, 254, 128).
        assert_eq!(flatten_on_black(&[201, 3, 254, 128]), [100, 1, 127]);
    }
}
