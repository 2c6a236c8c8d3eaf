//! Decoded samples → 8-bit sRGB(A): embedded ICC profiles applied with `moxcms`,
//! CMYK converted, 16-bit and float reduced to 8 bits, grey expanded to RGB;
//! alpha kept.
//!
//! A profile that cannot be parsed or used is ignored, as libvips does, so a
//! broken profile never stops an image from being tiled.
//!
//! Tiles must be byte-identical natively and in wasm, but `moxcms` picks
//! AVX/SSE fixed-point kernels natively and float ones in wasm. So matrix/TRC
//! profiles (nearly every RGB and grey profile) are applied here in integer
//! arithmetic from tables `moxcms` builds; other profiles (CMYK, LUT-based RGB)
//! go through `moxcms`'s `f64` pipeline, whose platform differences are far
//! below the 8-bit rounding step. A profile that matches sRGB is skipped, which
//! also keeps such images' pixels exactly as libvips reads them.

use crate::bitmap::Bitmap;
use crate::error::{Error, Result};
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
    // RGB(A) through a matrix/TRC profile, the usual camera case, is converted in place.
    let same_layout = matches!(layout, Layout::Rgb | Layout::Rgba);
    if let Some(shaper) = profile
        .as_ref()
        .filter(|p| same_layout && p.color_space == DataColorSpace::Rgb && p.is_matrix_shaper())
        .and_then(MatrixShaper::new)
    {
        let mut samples = samples;
        shaper.apply_in_place(&mut samples, layout.channels());
        return Bitmap::new(width, height, out_channels, samples);
    }
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

/// libvips's built-in CMYK profile (Argyll CMS's "Chemical proof", public domain), which vips
/// applies to CMYK images without a usable profile of their own: cut to the header and the tags a
/// CMYK → sRGB conversion reads (`scripts/cmyk-profile.py`).
pub const DEFAULT_CMYK_PROFILE: &[u8] = include_bytes!("../profiles/cmyk.icc");

/// Ink-value CMYK (0 = no ink) → sRGB, through `icc` when it is a usable CMYK profile and
/// otherwise through [`DEFAULT_CMYK_PROFILE`], as libvips does.
pub fn cmyk_to_srgb8(width: u32, height: u32, cmyk: &[u8], icc: Option<&[u8]>) -> Result<Bitmap> {
    let embedded = icc
        .and_then(|bytes| ColorProfile::new_from_slice(bytes).ok())
        .filter(|p| p.color_space == DataColorSpace::Cmyk)
        .and_then(|p| transform(&p, cmyk, Layout::Rgba, Layout::Rgb));
    let converted = match embedded {
        Some(converted) => converted,
        None => ColorProfile::new_from_slice(DEFAULT_CMYK_PROFILE)
            .ok()
            .and_then(|p| transform(&p, cmyk, Layout::Rgba, Layout::Rgb))
            .ok_or_else(|| Error::Decode("the default CMYK profile cannot be applied".into()))?,
    };
    Bitmap::new(width, height, 3, converted)
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
    match expected {
        DataColorSpace::Gray => GreyCurve::new(profile).map(|c| c.apply(src, from, to)),
        DataColorSpace::Rgb if profile.is_matrix_shaper() => {
            MatrixShaper::new(profile).map(|m| m.apply(src, from, to))
        }
        _ => transform_f64(profile, src, from, to),
    }
}

/// Linear light in Q16: 0 ..= `LINEAR_ONE`.
const LINEAR_ONE: i64 = 1 << 16;
/// Fraction bits of the fixed-point matrix.
const MATRIX_BITS: u32 = 14;

/// An 8-bit transfer curve as a table of Q16 linear values.
fn linear_table(profile: &ColorProfile, trc: &Option<moxcms::ToneReprCurve>) -> Option<[i64; 256]> {
    let table = profile.build_8bit_lin_table(trc).ok()?;
    let mut out = [0i64; 256];
    for (o, &v) in out.iter_mut().zip(table.iter()) {
        if !v.is_finite() {
            return None;
        }
        *o = (f64::from(v).clamp(0.0, 1.0) * LINEAR_ONE as f64).round() as i64;
    }
    Some(out)
}

/// Q16 linear → 8-bit sRGB, one entry per linear step.
fn srgb_encode_table() -> Vec<u8> {
    (0..=LINEAR_ONE)
        .map(|i| {
            let l = i as f64 / LINEAR_ONE as f64;
            let s = if l <= 0.003_130_8 {
                12.92 * l
            } else {
                1.055 * l.powf(1.0 / 2.4) - 0.055
            };
            (s * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

fn sample_out(encode: &[u8], linear: i64) -> u8 {
    encode[linear.clamp(0, LINEAR_ONE) as usize]
}

/// A matrix/TRC RGB profile → sRGB in integer arithmetic.
struct MatrixShaper {
    linear: [[i64; 256]; 3],
    matrix: [[i64; 3]; 3],
    encode: Vec<u8>,
}

impl MatrixShaper {
    /// `None` when the profile is unusable or already sRGB.
    fn new(profile: &ColorProfile) -> Option<Self> {
        let linear = [
            linear_table(profile, &profile.red_trc)?,
            linear_table(profile, &profile.green_trc)?,
            linear_table(profile, &profile.blue_trc)?,
        ];
        let m = profile.transform_matrix(&ColorProfile::new_srgb()).v;
        if m.iter().flatten().any(|v| !v.is_finite()) {
            return None;
        }
        let srgb = ColorProfile::new_srgb();
        let srgb_linear = linear_table(&srgb, &srgb.red_trc)?;
        // Within 0.1% on every curve and matrix entry: treat as sRGB, leave untouched.
        let curves_match = linear
            .iter()
            .all(|t| t.iter().zip(&srgb_linear).all(|(a, b)| (a - b).abs() <= 64));
        let matrix_is_identity = (0..3)
            .all(|i| (0..3).all(|j| (m[i][j] - if i == j { 1.0 } else { 0.0 }).abs() <= 0.001));
        if curves_match && matrix_is_identity {
            return None;
        }
        let scale = f64::from(1u32 << MATRIX_BITS);
        let matrix = m.map(|row| row.map(|v| (v * scale).round() as i64));
        Some(MatrixShaper {
            linear,
            matrix,
            encode: srgb_encode_table(),
        })
    }

    fn convert(&self, px: &[u8]) -> [u8; 3] {
        let half = 1i64 << (MATRIX_BITS - 1);
        let rgb = [
            self.linear[0][usize::from(px[0])],
            self.linear[1][usize::from(px[1])],
            self.linear[2][usize::from(px[2])],
        ];
        self.matrix.map(|row| {
            let acc = row[0] * rgb[0] + row[1] * rgb[1] + row[2] * rgb[2];
            sample_out(&self.encode, (acc + half) >> MATRIX_BITS)
        })
    }

    fn apply(&self, src: &[u8], from: Layout, to: Layout) -> Vec<u8> {
        let (cin, cout) = (from.channels(), to.channels());
        let mut out = Vec::with_capacity(src.len() / cin * cout);
        for px in src.chunks_exact(cin) {
            out.extend(self.convert(px));
            if cout == 4 {
                out.push(if cin == 4 { px[3] } else { 255 });
            }
        }
        out
    }

    /// The same conversion over packed RGB (3) or RGBA (4) samples, alpha untouched.
    fn apply_in_place(&self, samples: &mut [u8], channels: usize) {
        for px in samples.chunks_exact_mut(channels) {
            let rgb = self.convert(px);
            px[..3].copy_from_slice(&rgb);
        }
    }
}

/// A grey profile's curve → sRGB grey, in integer arithmetic.
struct GreyCurve {
    table: [u8; 256],
}

impl GreyCurve {
    fn new(profile: &ColorProfile) -> Option<Self> {
        let linear = linear_table(profile, &profile.gray_trc)?;
        let encode = srgb_encode_table();
        let mut table = [0u8; 256];
        for (t, &l) in table.iter_mut().zip(linear.iter()) {
            *t = sample_out(&encode, l);
        }
        Some(GreyCurve { table })
    }

    fn apply(&self, src: &[u8], from: Layout, to: Layout) -> Vec<u8> {
        let cin = from.channels();
        let mut out = Vec::with_capacity(src.len() / cin * to.channels());
        for px in src.chunks_exact(cin) {
            let v = self.table[usize::from(px[0])];
            out.extend([v, v, v]);
            if to == Layout::Rgba {
                out.push(if cin == 2 { px[1] } else { 255 });
            }
        }
        out
    }
}

/// Any other profile through `moxcms` in `f64`, a bounded run of pixels at a time.
fn transform_f64(profile: &ColorProfile, src: &[u8], from: Layout, to: Layout) -> Option<Vec<u8>> {
    const RUN: usize = 4096;
    let t = profile
        .create_transform_f64(
            from,
            &ColorProfile::new_srgb(),
            to,
            TransformOptions::default(),
        )
        .ok()?;
    let (cin, cout) = (from.channels(), to.channels());
    let mut out = Vec::with_capacity(src.len() / cin * cout);
    let mut input = vec![0f64; RUN * cin];
    let mut output = vec![0f64; RUN * cout];
    for run in src.chunks(RUN * cin) {
        let pixels = run.len() / cin;
        let (input, output) = (&mut input[..pixels * cin], &mut output[..pixels * cout]);
        for (i, &v) in input.iter_mut().zip(run) {
            *i = f64::from(v) / 255.0;
        }
        t.transform(input, output).ok()?;
        out.extend(
            output
                .iter()
                .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8),
        );
    }
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

/// JFIF YCbCr → RGB (full range) in libjpeg's fixed point (`ycc_rgb_convert`: tables of 16
/// fraction bits, halves rounded up), so that JPEG-compressed TIFFs and YCCK JPEGs get libvips's
/// values. Built once per image (or band) and applied by table lookups.
pub(crate) struct YccToRgb {
    cr_r: [i32; 256],
    cb_b: [i32; 256],
    /// Green's Cb and Cr terms, still scaled by 2¹⁶ (the half is in `cr_g`).
    cb_g: [i32; 256],
    cr_g: [i32; 256],
}

impl YccToRgb {
    pub(crate) fn new() -> Self {
        const HALF: i32 = 1 << 15;
        let fix = |v: f64| (v * 65536.0 + 0.5) as i32;
        let mut t = YccToRgb {
            cr_r: [0; 256],
            cb_b: [0; 256],
            cb_g: [0; 256],
            cr_g: [0; 256],
        };
        for i in 0..256 {
            let x = i as i32 - 128;
            t.cr_r[i] = (fix(1.402) * x + HALF) >> 16;
            t.cb_b[i] = (fix(1.772) * x + HALF) >> 16;
            t.cb_g[i] = -fix(0.344_14) * x;
            t.cr_g[i] = -fix(0.714_14) * x + HALF;
        }
        t
    }

    /// One pixel.
    pub(crate) fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let (y, cb, cr) = (i32::from(y), usize::from(cb), usize::from(cr));
        let clamp = |v: i32| v.clamp(0, 255) as u8;
        [
            clamp(y + self.cr_r[cr]),
            clamp(y + ((self.cb_g[cb] + self.cr_g[cr]) >> 16)),
            clamp(y + self.cb_b[cb]),
        ]
    }

    /// Packed YCbCr samples → RGB, in place.
    pub(crate) fn convert_in_place(&self, samples: &mut [u8]) {
        for px in samples.chunks_exact_mut(3) {
            let rgb = self.rgb(px[0], px[1], px[2]);
            px.copy_from_slice(&rgb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, LumaA, Rgb};

    #[test]
    fn ycc_grey_and_primaries() {
        let t = YccToRgb::new();
        assert_eq!(t.rgb(128, 128, 128), [128, 128, 128]);
        assert_eq!(t.rgb(76, 85, 255), [254, 0, 0]);
        assert_eq!(t.rgb(150, 44, 21), [0, 255, 1]);
    }

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

    fn rgb(data: Vec<u8>) -> DynamicImage {
        let w = (data.len() / 3) as u32;
        DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, 1, data).expect("raw"))
    }

    #[test]
    fn srgb_profile_is_left_alone() {
        let icc = ColorProfile::new_srgb().encode().expect("encodes");
        let data: Vec<u8> = (0..=255).flat_map(|v| [v, 255 - v, v / 2]).collect();
        let out = to_srgb8(rgb(data.clone()), Some(&icc)).expect("converts");
        assert_eq!(out.data(), &data[..]);
    }

    #[test]
    fn display_p3_maps_into_srgb() {
        let icc = ColorProfile::new_display_p3().encode().expect("encodes");
        let out = to_srgb8(
            rgb(vec![0, 0, 0, 255, 255, 255, 128, 128, 128, 0, 200, 0]),
            Some(&icc),
        )
        .expect("converts");
        let px = out.data();
        // Same white point and curve: neutrals stay neutral.
        assert_eq!(&px[..9], &[0, 0, 0, 255, 255, 255, 128, 128, 128]);
        // P3 green is outside sRGB: clipped, with red pulled to 0 and green raised.
        assert_eq!(px[9], 0);
        assert!(px[10] > 200, "{:?}", &px[9..]);
    }

    #[test]
    fn grey_profile_curve_is_applied() {
        let icc = ColorProfile::new_gray_with_gamma(1.0)
            .encode()
            .expect("encodes");
        let grey =
            DynamicImage::ImageLuma8(ImageBuffer::from_raw(3, 1, vec![0, 128, 255]).expect("raw"));
        let out = to_srgb8(grey, Some(&icc)).expect("converts");
        // Linear 0.502 is sRGB 188.
        assert_eq!(out.data(), &[0, 0, 0, 188, 188, 188, 255, 255, 255]);
    }

    #[test]
    fn default_cmyk_profile_is_used_without_a_usable_one() {
        let profile = ColorProfile::new_from_slice(DEFAULT_CMYK_PROFILE).expect("parses");
        assert_eq!(profile.color_space, DataColorSpace::Cmyk);
        // Ink values and the sRGB `vips icc_transform … srgb --input-profile cmyk` makes of them
        // (libvips 8.14, lcms2): paper, black ink only, cyan, cyan + magenta.
        let cmyk = [0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0, 255, 255, 0, 0];
        let vips = [255, 255, 255, 41, 35, 43, 0, 156, 228, 48, 36, 123];
        let none = cmyk_to_srgb8(4, 1, &cmyk, None).expect("converts");
        for (ours, theirs) in none.data().iter().zip(vips) {
            assert!(
                ours.abs_diff(theirs) <= 1,
                "{:?} against {vips:?}",
                none.data()
            );
        }
        // A broken or non-CMYK profile is not used: the default is.
        let broken = cmyk_to_srgb8(4, 1, &cmyk, Some(b"not a profile")).expect("converts");
        let rgb = ColorProfile::new_srgb().encode().expect("encodes");
        let wrong = cmyk_to_srgb8(4, 1, &cmyk, Some(&rgb)).expect("converts");
        assert_eq!(none.data(), broken.data());
        assert_eq!(none.data(), wrong.data());
    }
}
