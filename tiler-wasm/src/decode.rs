//! Source bytes → upright 8-bit sRGB pixels.
//!
//! The format is sniffed from the bytes; the declared size is read from the
//! header and checked against [`Limits`] before any pixel is decoded; the
//! `image` crate's own limits are always set as well. CMYK and YCCK JPEGs are
//! decoded with `zune-jpeg` directly, because `image` converts them to RGB
//! without their colour profile.

use crate::bitmap::Bitmap;
use crate::color;
use crate::error::{Error, Result};
use crate::meta::{ExifData, Metadata, SourceFormat, AVIF};
use crate::orient;
use crate::Limits;
use image::{DynamicImage, ImageDecoder};
use std::io::Cursor;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Reads the metadata of `bytes` from its header and EXIF, decoding no pixels.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Metadata> {
    Ok(Header::read(bytes, limits)?.metadata)
}

/// Decodes `bytes` to upright 8-bit sRGB(A) pixels, with their metadata.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<(Metadata, Bitmap)> {
    // Decoders are third-party code fed hostile bytes: a panic in one becomes an
    // error rather than taking the service down (natively; wasm aborts anyway). It stays
    // `Error::Panic`, never a decode error, so tests and fuzzers count it as the bug it is.
    crate::error::contain(|| decode_unguarded(bytes, limits))
}

fn decode_unguarded(bytes: &[u8], limits: &Limits) -> Result<(Metadata, Bitmap)> {
    if SourceFormat::sniff(bytes) == Some(SourceFormat::Avif) {
        // No AV1 decoder is built in; a browser decodes AVIF itself ([`crate::Tiler::from_pixels`]).
        return Err(Error::UnsupportedFormat(AVIF));
    }
    let header = Header::read(bytes, limits)?;
    // zune-jpeg (like libjpeg) and image-webp's lossy decoder fill missing data
    // with grey; a truncated upload must fail rather than become a half-grey pyramid.
    let complete = match header.metadata.format {
        SourceFormat::Jpeg => jpeg_has_end(bytes),
        SourceFormat::Webp => riff_is_complete(bytes),
        // jxl-oxide refuses a truncated file itself (no complete frame).
        SourceFormat::Png | SourceFormat::Tiff | SourceFormat::Jxl | SourceFormat::Avif => true,
    };
    if !complete {
        return Err(Error::Decode("the image file is truncated".into()));
    }
    if header.metadata.format == SourceFormat::Png {
        // Only the palette is checked here; the decode below reports any other damage.
        let max_alloc = usize::try_from(limits.max_alloc).unwrap_or(usize::MAX);
        let decoder =
            png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: max_alloc });
        if let Ok(reader) = decoder.read_info() {
            crate::png_stream::check_palette(reader.info())?;
        }
    }
    #[cfg(feature = "jxl")]
    if header.metadata.format == SourceFormat::Jxl {
        // Decoded upright: JPEG XL's orientation is in its header, applied by jxl-oxide.
        return Ok((header.metadata, crate::jxl::decode(bytes, limits)?));
    }
    let stored = match header.jpeg_space {
        Some(space @ (ColorSpace::CMYK | ColorSpace::YCCK)) => {
            decode_cmyk_jpeg(bytes, space, limits)?
        }
        // JPEGs with alpha are rare enough to leave to `image`.
        Some(ColorSpace::RGBA | ColorSpace::LumaA) | None => {
            decode_with_image(bytes, header.metadata.format, limits)?
        }
        Some(ColorSpace::Luma) => decode_jpeg(bytes, ColorSpace::Luma, limits)?,
        Some(_) => decode_jpeg(bytes, ColorSpace::RGB, limits)?,
    };
    let upright = orient::apply(stored, header.metadata.orientation)?;
    Ok((header.metadata, upright))
}

/// What the header says, checked against the limits.
struct Header {
    metadata: Metadata,
    /// A JPEG's colour space as stored; `None` for other formats.
    jpeg_space: Option<ColorSpace>,
}

impl Header {
    fn read(bytes: &[u8], limits: &Limits) -> Result<Self> {
        let format = SourceFormat::sniff(bytes).ok_or_else(|| {
            SourceFormat::refused(bytes).map_or(Error::UnknownFormat, Error::UnsupportedFormat)
        })?;
        match format {
            SourceFormat::Jxl => return Self::read_jxl(bytes, limits),
            SourceFormat::Avif => return Self::read_avif(bytes, limits),
            _ => {}
        }
        let (width, height, has_alpha, jpeg_space) = match jpeg_header(bytes, format, limits)? {
            Some((w, h, space)) => (
                w,
                h,
                matches!(space, ColorSpace::RGBA | ColorSpace::LumaA),
                Some(space),
            ),
            None => {
                let decoder = image_decoder(bytes, format, limits)?;
                let (w, h) = decoder.dimensions();
                (w, h, decoder.color_type().has_alpha(), None)
            }
        };
        check_size(width, height, 4, limits)?;
        let exif = ExifData::read(bytes);
        let orientation = orient::normalise(exif.orientation().unwrap_or(1));
        let (width, height) = orient::oriented_size(width, height, orientation);
        Ok(Header {
            metadata: Metadata {
                format,
                width,
                height,
                orientation,
                has_alpha,
                exif: exif.fields(),
            },
            jpeg_space,
        })
    }
}

impl Header {
    /// An AVIF header, its size checked as that of the RGBA pixels a browser's decoder gives.
    /// The decoder applies `irot` itself, so the size is the turned one; EXIF is read for the
    /// panel only, its orientation ignored (HEIF turns images with `irot`, never with EXIF).
    fn read_avif(bytes: &[u8], limits: &Limits) -> Result<Self> {
        let avif = crate::avif::header(bytes)?;
        check_size(avif.width, avif.height, 4, limits)?;
        // `irot` turns anticlockwise; EXIF's 8, 3 and 6 name a quarter, half and three-quarter turn.
        let orientation = [1, 8, 3, 6][usize::from(avif.quarter_turns & 3)];
        let (width, height) = orient::oriented_size(avif.width, avif.height, orientation);
        Ok(Header {
            metadata: Metadata {
                format: SourceFormat::Avif,
                width,
                height,
                orientation,
                has_alpha: avif.has_alpha,
                exif: ExifData::read(bytes).fields(),
            },
            jpeg_space: None,
        })
    }

    /// A JPEG XL header, checked against the limits before anything is decoded or allocated.
    #[cfg(feature = "jxl")]
    fn read_jxl(bytes: &[u8], limits: &Limits) -> Result<Self> {
        let jxl = crate::jxl::header(bytes)?;
        check_size(
            jxl.width,
            jxl.height,
            jxl.channels * crate::jxl::BYTES_PER_SAMPLE,
            limits,
        )?;
        Ok(Header {
            metadata: Metadata {
                format: SourceFormat::Jxl,
                width: jxl.width,
                height: jxl.height,
                orientation: jxl.orientation,
                has_alpha: jxl.has_alpha,
                exif: crate::meta::Exif::default(),
            },
            jpeg_space: None,
        })
    }

    /// Without the `jxl` feature (the browser's build), JPEG XL is left to the server.
    #[cfg(not(feature = "jxl"))]
    fn read_jxl(_bytes: &[u8], _limits: &Limits) -> Result<Self> {
        Err(Error::ServerOnly("JPEG XL"))
    }
}

/// Refuses an empty size or a side past `limits.max_dimension`: the check every path makes,
/// the streamed one included (whose area is not limited).
pub(crate) fn check_sides(width: u32, height: u32, limits: &Limits) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::Decode(format!("image is {width}×{height}")));
    }
    if width > limits.max_dimension || height > limits.max_dimension {
        return Err(Error::Limits(format!(
            "{width}×{height} exceeds the largest side of {} pixels",
            limits.max_dimension
        )));
    }
    Ok(())
}

/// Refuses a declared size past the limits, before anything is allocated for it.
pub(crate) fn check_size(
    width: u32,
    height: u32,
    bytes_per_pixel: u64,
    limits: &Limits,
) -> Result<()> {
    check_sides(width, height, limits)?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(Error::Limits(format!(
            "{width}×{height} = {pixels} pixels exceeds the limit of {}",
            limits.max_pixels
        )));
    }
    if pixels * bytes_per_pixel > limits.max_alloc {
        return Err(Error::Limits(format!(
            "{width}×{height} needs more than the {} bytes allowed",
            limits.max_alloc
        )));
    }
    Ok(())
}

fn image_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_dimension);
    l.max_image_height = Some(limits.max_dimension);
    l.max_alloc = Some(limits.max_alloc);
    l
}

/// An `image` decoder that has read the header only.
fn image_decoder<'a>(
    bytes: &'a [u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<impl ImageDecoder + 'a> {
    let format = format
        .image_format()
        .ok_or_else(|| Error::Unsupported(format!("{format:?} is not decoded here")))?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(image_limits(limits));
    Ok(reader.into_decoder()?)
}

fn decode_with_image(bytes: &[u8], format: SourceFormat, limits: &Limits) -> Result<Bitmap> {
    let mut decoder = image_decoder(bytes, format, limits)?;
    if decoder.total_bytes() > limits.max_alloc {
        return Err(Error::Limits(format!(
            "decoding needs {} bytes, more than the {} allowed",
            decoder.total_bytes(),
            limits.max_alloc
        )));
    }
    // A damaged profile is no reason to refuse the pixels.
    let icc = decoder.icc_profile().ok().flatten();
    let image = DynamicImage::from_decoder(decoder)?;
    color::to_srgb8(image, icc.as_deref())
}

fn zune_options(limits: &Limits, out: ColorSpace) -> DecoderOptions {
    DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(limits.max_dimension as usize)
        .set_max_height(limits.max_dimension as usize)
        .jpeg_set_out_colorspace(out)
}

/// For a JPEG, its stored size and colour space; `None` for other formats.
fn jpeg_header(
    bytes: &[u8],
    format: SourceFormat,
    limits: &Limits,
) -> Result<Option<(u32, u32, ColorSpace)>> {
    if format != SourceFormat::Jpeg {
        return Ok(None);
    }
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        ZCursor::new(bytes),
        zune_options(limits, ColorSpace::RGB),
    );
    decoder.decode_headers()?;
    match (decoder.input_colorspace(), decoder.dimensions()) {
        (Some(space), Some((w, h))) => {
            let dim = |v: usize| u32::try_from(v).map_err(|_| Error::Decode("bad size".into()));
            Ok(Some((dim(w)?, dim(h)?, space)))
        }
        _ => Err(Error::Decode("JPEG header without a size".into())),
    }
}

/// Decodes a JPEG to `out` (RGB or grey) straight from `bytes`, with the same
/// zune-jpeg settings `image` uses, but without `image`'s copy of the input.
fn decode_jpeg(bytes: &[u8], out: ColorSpace, limits: &Limits) -> Result<Bitmap> {
    let mut decoder =
        zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), zune_options(limits, out));
    decoder.decode_headers()?;
    let (Some((w, h)), Some(size)) = (decoder.dimensions(), decoder.output_buffer_size()) else {
        return Err(Error::Decode("JPEG header without a size".into()));
    };
    if size as u64 > limits.max_alloc {
        return Err(Error::Limits(format!(
            "decoding needs {size} bytes, more than the {} allowed",
            limits.max_alloc
        )));
    }
    let mut pixels = vec![0u8; size];
    decoder.decode_into(&mut pixels)?;
    let icc = decoder.icc_profile();
    let dim = |v: usize| u32::try_from(v).map_err(|_| Error::Decode("bad size".into()));
    let (width, height) = (dim(w)?, dim(h)?);
    let wrong_size = || Error::Decode("JPEG decoded to an unexpected size".into());
    let image = if out == ColorSpace::Luma {
        DynamicImage::ImageLuma8(
            image::ImageBuffer::from_raw(width, height, pixels).ok_or_else(wrong_size)?,
        )
    } else {
        DynamicImage::ImageRgb8(
            image::ImageBuffer::from_raw(width, height, pixels).ok_or_else(wrong_size)?,
        )
    };
    color::to_srgb8(image, icc.as_deref())
}

/// Decodes a CMYK or YCCK JPEG to sRGB with its embedded profile, or without a usable one
/// with libvips's default CMYK profile ([`color::DEFAULT_CMYK_PROFILE`]).
///
/// Like libjpeg and Photoshop, CMYK JPEGs are taken to store inverted values
/// (255 = no ink), which is what every Adobe-marked file does.
fn decode_cmyk_jpeg(bytes: &[u8], space: ColorSpace, limits: &Limits) -> Result<Bitmap> {
    let Some((width, height, _)) = jpeg_header(bytes, SourceFormat::Jpeg, limits)? else {
        return Err(Error::Decode("not a JPEG".into()));
    };
    // Ask for the colour space as stored, so that zune-jpeg hands over raw samples.
    let mut decoder =
        zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), zune_options(limits, space));
    let mut raw = decoder.decode()?;
    if raw.len() != width as usize * height as usize * 4 {
        return Err(Error::Decode(
            "CMYK JPEG decoded to an unexpected size".into(),
        ));
    }
    let icc = decoder.icc_profile();
    let ycc = color::YccToRgb::new();
    for px in raw.chunks_exact_mut(4) {
        if space == ColorSpace::YCCK {
            // libjpeg's YCCK → CMYK gives C = 255 − R; inverted storage makes ink = R.
            let [r, g, b] = ycc.rgb(px[0], px[1], px[2]);
            px[0] = r;
            px[1] = g;
            px[2] = b;
        } else {
            px[0] = 255 - px[0];
            px[1] = 255 - px[1];
            px[2] = 255 - px[2];
        }
        px[3] = 255 - px[3];
    }
    color::cmyk_to_srgb8(width, height, &raw, icc.as_deref())
}

/// Whether an end-of-image marker follows the last start-of-scan marker.
///
/// Entropy-coded data cannot contain `FF DA` or `FF D9` (an `FF` byte there is
/// always followed by `00` or a restart marker), so the last `FF DA` is the final
/// scan of the last image in the file, whose end must follow it.
pub(crate) fn jpeg_has_end(bytes: &[u8]) -> bool {
    // Searched from the back: an end marker normally sits within the last few
    // bytes, so this touches almost none of a large file. An end follows the
    // last scan exactly when no scan starts after the last end.
    let last_end = bytes.windows(2).rposition(|w| w == [0xFF, 0xD9]);
    last_end.is_some_and(|at| !bytes[at..].windows(2).any(|w| w == [0xFF, 0xDA]))
        && bytes.windows(2).any(|w| w == [0xFF, 0xDA])
}

/// Whether a RIFF (WebP) file holds all the bytes its header declares.
fn riff_is_complete(bytes: &[u8]) -> bool {
    match bytes.get(4..8) {
        Some(size) => {
            let declared = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
            u64::from(declared) + 8 <= bytes.len() as u64
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_checks() {
        let limits = Limits {
            max_pixels: 100,
            max_dimension: 20,
            max_alloc: 1000,
        };
        assert!(check_size(10, 10, 4, &limits).is_ok());
        assert!(matches!(
            check_size(21, 1, 4, &limits),
            Err(Error::Limits(_))
        ));
        assert!(matches!(
            check_size(11, 10, 4, &limits),
            Err(Error::Limits(_))
        ));
        assert!(matches!(
            check_size(10, 10, 11, &limits),
            Err(Error::Limits(_))
        ));
        assert!(matches!(
            check_size(0, 10, 4, &limits),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn refused_formats_are_named() {
        let limits = Limits::default();
        let ftyp = |brands: &[u8]| {
            let mut b = ((8 + brands.len()) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(b"ftyp");
            b.extend_from_slice(brands);
            b.extend_from_slice(&[0; 64]);
            b
        };
        for (bytes, name) in [
            (ftyp(b"heic\0\0\0\0mif1heic"), "HEIC"),
            (ftyp(b"mif1\0\0\0\0mif1avif"), "AVIF"),
            (ftyp(b"avif\0\0\0\0"), "AVIF"),
            (b"\0\0\0\x0cjP  \r\n\x87\n\0\0".to_vec(), "JPEG 2000"),
            (b"GIF89a\x01\0\x01\0".to_vec(), "GIF"),
        ] {
            match decode(&bytes, &limits) {
                Err(Error::UnsupportedFormat(n)) => assert_eq!(n, name),
                other => panic!("{name}: {:?}", other.map(|_| ())),
            }
        }
        // An MP4 video is not an image at all.
        assert!(matches!(
            decode(&ftyp(b"isom\0\0\0\0mp41"), &limits),
            Err(Error::UnknownFormat)
        ));
        assert_eq!(Error::UnsupportedFormat("HEIC").code(), "unsupported");
    }

    /// JPEG XL is decoded where `jxl-oxide` is built in and left to the server elsewhere; either
    /// way a broken file is a typed error.
    #[test]
    fn jpeg_xl_is_decoded_or_left_to_the_server() {
        let limits = Limits::default();
        for bytes in [
            b"\xff\x0a\xfa\x7f".to_vec(),
            b"\0\0\0\x0cJXL \r\n\x87\n\0\0".to_vec(),
        ] {
            assert_eq!(SourceFormat::sniff(&bytes), Some(SourceFormat::Jxl));
            match decode(&bytes, &limits) {
                #[cfg(feature = "jxl")]
                Err(Error::Decode(_)) => {}
                #[cfg(not(feature = "jxl"))]
                Err(Error::ServerOnly(name)) => assert_eq!(name, "JPEG XL"),
                other => panic!("{:?}", other.map(|_| ())),
            }
        }
        assert_eq!(Error::ServerOnly("JPEG XL").code(), "server_only");
    }

    #[test]
    fn jpeg_end_marker() {
        assert!(jpeg_has_end(&[
            0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 0xFF, 0x00, 0xFF, 0xD9
        ]));
        assert!(jpeg_has_end(&[
            0xFF, 0xDA, 1, 0xFF, 0xD9, b't', b'r', b'a', b'i', b'l'
        ]));
        assert!(!jpeg_has_end(&[0xFF, 0xD8, 0xFF, 0xDA, 1, 2, 3]));
        // A thumbnail's end before the main scan does not count.
        assert!(!jpeg_has_end(&[0xFF, 0xDA, 0xFF, 0xD9, 0xFF, 0xDA, 1, 2]));
        assert!(!jpeg_has_end(&[0xFF, 0xD8]));
    }

    /// An AVIF's header is read (size turned by `irot`, alpha, limits) though its pixels are not.
    #[test]
    fn avif_is_probed_but_not_decoded() {
        use crate::avif::tests::avif;
        let limits = Limits::default();
        let meta = probe(&avif(300, 200, Some(1), true), &limits).expect("probes");
        assert_eq!(meta.format, SourceFormat::Avif);
        assert_eq!((meta.width, meta.height, meta.orientation), (200, 300, 8));
        assert!(meta.has_alpha);
        let meta = probe(&avif(300, 200, None, false), &limits).expect("probes");
        assert_eq!((meta.width, meta.height, meta.orientation), (300, 200, 1));
        assert!(!meta.has_alpha);
        let small = Limits {
            max_pixels: 300 * 200 - 1,
            ..limits
        };
        assert!(matches!(
            probe(&avif(300, 200, None, false), &small),
            Err(Error::Limits(_))
        ));
        match decode(&avif(300, 200, None, false), &limits) {
            Err(e @ Error::UnsupportedFormat("AVIF")) => assert_eq!(e.code(), "unsupported"),
            other => panic!("AVIF decoded natively: {other:?}"),
        }
    }

    #[test]
    fn riff_size() {
        assert!(riff_is_complete(b"RIFF\x04\0\0\0WEBP"));
        assert!(riff_is_complete(b"RIFF\x04\0\0\0WEBPtrailer"));
        assert!(!riff_is_complete(b"RIFF\x05\0\0\0WEBP"));
        assert!(!riff_is_complete(b"RIFF\xff\xff\xff\xffWEBP"));
        assert!(!riff_is_complete(b"RIFF"));
    }
}
