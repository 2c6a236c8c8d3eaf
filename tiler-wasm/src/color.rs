//! Decoded samples → 8-bit sRGB(A): embedded ICC profiles applied with `moxcms`,
//! CMYK converted, 16-bit and float reduced to 8 bits, grey expanded to RGB;
//! alpha kept.
//!
//! A profile that cannot be parsed or used is ignored, as libvips does, so a
//! broken profile never stops an image from being tiled.

use crate::bitmap::Bitmap;
use crate::error::Result;
use image::DynamicImage;
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

/// Converts a decoded image and its embedded ICC profile (if any) to 8-bit sRGB.
pub fn to_srgb8(image: DynamicImage, icc: Option<&[u8]>) -> Result<Bitmap> {
    let (width, height) = (image.width(), image.height());
    let (samples, layout) = to_8bit(image);
    let profile = icc.and_then(|bytes| ColorProfile::new_from_slice(bytes).ok());
    let has_alpha = matches!(layout, Layout::GrayAlpha | Layout::Rgba);
    let out_layout = if has_alpha { Layout::Rgba } else { Layout::Rgb };
    let out_channels = if has_alpha { 4 } else { 3 };
    if let Some(converted) = profile
        .as_ref()
        .and_then(|p| transform(p, &samples, layout, out_layout))
    {
        return Bitmap::new(width, height, out_channels, converted);
    }
    let data = match layout {
        Layout::Gray => samples.iter().flat_map(|&v| [v, v, v]).collect(),
        Layout::GrayAlpha => samples
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        _ => samples,
    };
    Bitmap::new(width, height, out_channels, data)
}

/// Ink-value CMYK (0 = no ink) → sRGB, through `icc` when it is a usable CMYK
/// profile and otherwise with the plain `(1−C)(1−K)` formula.
pub fn cmyk_to_srgb8(width: u32, height: u32, cmyk: &[u8], icc: Option<&[u8]>) -> Result<Bitmap> {
    let profile = icc
        .and_then(|bytes| ColorProfile::new_from_slice(bytes).ok())
        .filter(|p| p.color_space == DataColorSpace::Cmyk);
    if let Some(converted) = profile
        .as_ref()
        .and_then(|p| transform(p, cmyk, Layout::Rgba, Layout::Rgb))
    {
        return Bitmap::new(width, height, 3, converted);
    }
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let white = 255 - u32::from(px[3]);
        rgb.extend(
            px[..3]
                .iter()
                .map(|&ink| (((255 - u32::from(ink)) * white + 127) / 255) as u8),
        );
    }
    Bitmap::new(width, height, 3, rgb)
}

fn transform(profile: &ColorProfile, src: &[u8], from: Layout, to: Layout) -> Option<Vec<u8>> {
    let expected = match from {
        Layout::Gray | Layout::GrayAlpha => DataColorSpace::Gray,
        _ if profile.color_space == DataColorSpace::Cmyk => DataColorSpace::Cmyk,
        _ => DataColorSpace::Rgb,
    };
    if profile.color_space != expected {
        return None;
    }
    let srgb = ColorProfile::new_srgb();
    let t = profile
        .create_transform_8bit(from, &srgb, to, TransformOptions::default())
        .ok()?;
    let pixels = src.len() / from.channels();
    let mut out = vec![0u8; pixels * to.channels()];
    t.transform(src, &mut out).ok()?;
    Some(out)
}

/// 8-bit samples and their layout; 16-bit is shifted right by 8 as libvips does.
fn to_8bit(image: DynamicImage) -> (Vec<u8>, Layout) {
    let high = |v: &u16| (v >> 8) as u8;
    let float = |v: &f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    match image {
        DynamicImage::ImageLuma8(b) => (b.into_raw(), Layout::Gray),
        DynamicImage::ImageLumaA8(b) => (b.into_raw(), Layout::GrayAlpha),
        DynamicImage::ImageRgb8(b) => (b.into_raw(), Layout::Rgb),
        DynamicImage::ImageRgba8(b) => (b.into_raw(), Layout::Rgba),
        DynamicImage::ImageLuma16(b) => (b.iter().map(high).collect(), Layout::Gray),
        DynamicImage::ImageLumaA16(b) => (b.iter().map(high).collect(), Layout::GrayAlpha),
        DynamicImage::ImageRgb16(b) => (b.iter().map(high).collect(), Layout::Rgb),
        DynamicImage::ImageRgba16(b) => (b.iter().map(high).collect(), Layout::Rgba),
        DynamicImage::ImageRgb32F(b) => (b.iter().map(float).collect(), Layout::Rgb),
        DynamicImage::ImageRgba32F(b) => (b.iter().map(float).collect(), Layout::Rgba),
        other => (other.into_rgba8().into_raw(), Layout::Rgba),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, LumaA, Rgb};

    #[test]
    fn grey_expands_to_rgb_and_keeps_alpha() {
        let grey = DynamicImage::ImageLuma8(ImageBuffer::from_raw(2, 1, vec![7, 9]).expect("raw"));
        let out = to_srgb8(grey, None).expect("converts");
        assert_eq!(out.data(), &[7, 7, 7, 9, 9, 9]);
        let grey_alpha: ImageBuffer<LumaA<u8>, _> =
            ImageBuffer::from_raw(1, 1, vec![7, 200]).expect("raw");
        let out = to_srgb8(DynamicImage::ImageLumaA8(grey_alpha), None).expect("converts");
        assert_eq!(out.data(), &[7, 7, 7, 200]);
    }

    #[test]
    fn sixteen_bit_keeps_the_high_byte() {
        let deep: ImageBuffer<Rgb<u16>, _> =
            ImageBuffer::from_raw(1, 1, vec![0xFFFF, 0x80FF, 0x0100]).expect("raw");
        let out = to_srgb8(DynamicImage::ImageRgb16(deep), None).expect("converts");
        assert_eq!(out.data(), &[255, 128, 1]);
        let grey16: ImageBuffer<Luma<u16>, _> =
            ImageBuffer::from_raw(1, 1, vec![0x1234]).expect("raw");
        let out = to_srgb8(DynamicImage::ImageLuma16(grey16), None).expect("converts");
        assert_eq!(out.data(), &[0x12, 0x12, 0x12]);
    }

    #[test]
    fn broken_profile_is_ignored() {
        let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_raw(1, 1, vec![1, 2, 3]).expect("raw"));
        let out = to_srgb8(rgb, Some(b"not a profile")).expect("converts");
        assert_eq!(out.data(), &[1, 2, 3]);
    }

    #[test]
    fn cmyk_without_profile_uses_the_plain_formula() {
        let out = cmyk_to_srgb8(2, 1, &[0, 0, 0, 0, 255, 0, 128, 64], None).expect("converts");
        // (255−255)·191/255 = 0; 191; (127·191)/255 = 95.1 → 95.
        assert_eq!(out.data(), &[255, 255, 255, 0, 191, 95]);
    }
}
