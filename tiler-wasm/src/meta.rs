//! What the viewer's side panel shows about a source image: format, upright size,
//! orientation and a few EXIF fields, read with `kamadak-exif`.

use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// The JPEG XL container's signature box.
const JXL_BOX: &[u8] = b"\0\0\0\x0cJXL \r\n\x87\n";

/// AVIF's name in errors that refuse it where no decoder for it is at hand.
pub(crate) const AVIF: &str = "AVIF";
/// HEIC's (HEIF with HEVC) name in errors: no decoder for it anywhere, browsers' included.
const HEIC: &str = "HEIC";

/// The container format of a source image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// JPEG / JFIF / EXIF.
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy or lossless).
    Webp,
    /// TIFF or BigTIFF.
    Tiff,
    /// JPEG XL, bare codestream or container; decoded only where the `jxl` feature is built in.
    Jxl,
    /// AVIF: its header is read here, its pixels only by a browser's own decoder
    /// ([`crate::Tiler::from_pixels`]); refused elsewhere.
    Avif,
}

impl SourceFormat {
    /// Recognises the format from the first bytes, without trusting any file name.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(SourceFormat::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(SourceFormat::Png)
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(SourceFormat::Webp)
        } else if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(JXL_BOX) {
            Some(SourceFormat::Jxl)
        } else if [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
            .iter()
            .any(|magic| bytes.starts_with(*magic))
        {
            // Classic TIFF and BigTIFF.
            Some(SourceFormat::Tiff)
        } else if heif_brand(bytes) == Some(AVIF) {
            Some(SourceFormat::Avif)
        } else {
            None
        }
    }

    /// The name of an image format recognised from its first bytes only to be refused, because
    /// no decoder for it is built in (HEIC, JPEG 2000, GIF), so that the error can name it
    /// rather than call the file unknown.
    pub fn refused(bytes: &[u8]) -> Option<&'static str> {
        const JP2_BOX: &[u8] = b"\0\0\0\x0cjP  \r\n\x87\n";
        if bytes.starts_with(JP2_BOX) || bytes.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
            return Some("JPEG 2000");
        }
        if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            return Some("GIF");
        }
        heif_brand(bytes).filter(|&name| name == HEIC)
    }

    /// Whether tile-store (the native build, with its default features) decodes this format: all
    /// but AVIF, whose pixels only a browser's own decoder gives.
    pub fn decoded_natively(self) -> bool {
        self != SourceFormat::Avif
    }

    /// The `image` crate's name for this format; `None` for JPEG XL, which it does not decode.
    pub(crate) fn image_format(self) -> Option<image::ImageFormat> {
        match self {
            SourceFormat::Jpeg => Some(image::ImageFormat::Jpeg),
            SourceFormat::Png => Some(image::ImageFormat::Png),
            SourceFormat::Webp => Some(image::ImageFormat::WebP),
            SourceFormat::Tiff => Some(image::ImageFormat::Tiff),
            SourceFormat::Jxl | SourceFormat::Avif => None,
        }
    }
}

/// Which HEIF image an ISO base media file is, `"AVIF"` or `"HEIC"`, from the major and
/// compatible brands of its `ftyp` box; `None` for anything else.
fn heif_brand(bytes: &[u8]) -> Option<&'static str> {
    if bytes.get(4..8) != Some(b"ftyp") {
        return None;
    }
    let size = bytes
        .get(..4)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let brands: Vec<&[u8]> = bytes
        .get(8..size.min(bytes.len()).max(8))
        .unwrap_or_default()
        .chunks_exact(4)
        .collect();
    let has = |names: &[&[u8; 4]]| brands.iter().any(|b| names.iter().any(|n| b == n));
    if has(&[b"avif", b"avis"]) {
        Some(AVIF)
    } else if has(&[
        b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
    ]) {
        Some(HEIC)
    } else {
        None
    }
}

/// EXIF fields shown next to the image; each is `None` when absent or unreadable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// `null` for `None` in TypeScript, as the bindings serialize (and accept) it.
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify), tsify(missing_as_null))]
#[serde(rename_all = "camelCase")]
pub struct Exif {
    /// Camera maker.
    pub make: Option<String>,
    /// Camera model.
    pub model: Option<String>,
    /// When the photo was taken, as EXIF writes it (`YYYY:MM:DD HH:MM:SS`).
    pub date_time_original: Option<String>,
    /// Focal length in millimetres.
    pub focal_length: Option<f64>,
    /// Focal length equivalent on 35 mm film, in millimetres.
    pub focal_length_in_35mm_film: Option<u32>,
    /// Width the camera recorded.
    pub pixel_x_dimension: Option<u32>,
    /// Height the camera recorded.
    pub pixel_y_dimension: Option<u32>,
    /// Latitude in degrees, negative south of the equator.
    pub gps_latitude: Option<f64>,
    /// Longitude in degrees, negative west of Greenwich.
    pub gps_longitude: Option<f64>,
}

/// A source image's description, available before any pixel is decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", derive(tsify::Tsify))]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Container format.
    pub format: SourceFormat,
    /// Width of the upright (oriented) image.
    pub width: u32,
    /// Height of the upright (oriented) image.
    pub height: u32,
    /// EXIF orientation, 1..=8 (1 when absent or invalid).
    pub orientation: u16,
    /// Whether the image has an alpha channel.
    pub has_alpha: bool,
    /// EXIF fields.
    pub exif: Exif,
}

/// Parsed EXIF of a source image; empty when it has none or it is broken.
#[derive(Default)]
pub(crate) struct ExifData(Option<exif::Exif>);

impl ExifData {
    /// Reads the EXIF block of `bytes` in whatever container it is.
    pub(crate) fn read(bytes: &[u8]) -> Self {
        let parsed = exif::Reader::new()
            .read_from_container(&mut Cursor::new(bytes))
            .ok();
        ExifData(parsed)
    }

    /// Parses an EXIF block found by the caller (a PNG's eXIf chunk, read from a file).
    pub(crate) fn from_raw(raw: Vec<u8>) -> Self {
        ExifData(exif::Reader::new().read_raw(raw).ok())
    }

    fn field(&self, tag: exif::Tag) -> Option<&exif::Field> {
        self.0.as_ref()?.get_field(tag, exif::In::PRIMARY)
    }

    fn text(&self, tag: exif::Tag) -> Option<String> {
        match &self.field(tag)?.value {
            exif::Value::Ascii(parts) => {
                let raw = parts.first()?;
                let text = String::from_utf8_lossy(raw);
                let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
                (!text.is_empty()).then(|| text.to_owned())
            }
            _ => None,
        }
    }

    fn uint(&self, tag: exif::Tag) -> Option<u32> {
        self.field(tag)?.value.get_uint(0)
    }

    fn rational(&self, tag: exif::Tag, index: usize) -> Option<f64> {
        match &self.field(tag)?.value {
            exif::Value::Rational(v) => v.get(index).filter(|r| r.denom != 0).map(|r| r.to_f64()),
            exif::Value::SRational(v) => v.get(index).filter(|r| r.denom != 0).map(|r| r.to_f64()),
            _ => None,
        }
    }

    /// Degrees from a GPS degrees/minutes/seconds triple and its N/S or E/W reference.
    fn coordinate(&self, tag: exif::Tag, reference: exif::Tag, negative: u8) -> Option<f64> {
        let degrees = self.rational(tag, 0)?;
        let minutes = self.rational(tag, 1).unwrap_or(0.0);
        let seconds = self.rational(tag, 2).unwrap_or(0.0);
        let value = degrees + minutes / 60.0 + seconds / 3600.0;
        if !value.is_finite() {
            return None;
        }
        let sign = match self.text(reference) {
            Some(r) if r.as_bytes().first() == Some(&negative) => -1.0,
            _ => 1.0,
        };
        Some(sign * value)
    }

    /// The raw Orientation value, if the tag is there.
    pub(crate) fn orientation(&self) -> Option<u32> {
        self.uint(exif::Tag::Orientation)
    }

    /// The fields the metadata panel shows.
    pub(crate) fn fields(&self) -> Exif {
        use exif::Tag;
        Exif {
            make: self.text(Tag::Make),
            model: self.text(Tag::Model),
            date_time_original: self.text(Tag::DateTimeOriginal),
            focal_length: self.rational(Tag::FocalLength, 0),
            focal_length_in_35mm_film: self.uint(Tag::FocalLengthIn35mmFilm),
            pixel_x_dimension: self.uint(Tag::PixelXDimension),
            pixel_y_dimension: self.uint(Tag::PixelYDimension),
            gps_latitude: self.coordinate(Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S'),
            gps_longitude: self.coordinate(Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_format() {
        assert_eq!(
            SourceFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE1]),
            Some(SourceFormat::Jpeg)
        );
        assert_eq!(
            SourceFormat::sniff(b"\x89PNG\r\n\x1a\n"),
            Some(SourceFormat::Png)
        );
        assert_eq!(
            SourceFormat::sniff(b"RIFF\0\0\0\0WEBPVP8L"),
            Some(SourceFormat::Webp)
        );
        assert_eq!(
            SourceFormat::sniff(b"II*\0\x08\0\0\0"),
            Some(SourceFormat::Tiff)
        );
        assert_eq!(
            SourceFormat::sniff(b"MM\0*\0\0\0\x08"),
            Some(SourceFormat::Tiff)
        );
        assert_eq!(SourceFormat::sniff(b"<!doctype html>"), None);
        let avif = crate::avif::tests::avif(2, 2, None, false);
        assert_eq!(SourceFormat::sniff(&avif), Some(SourceFormat::Avif));
        assert!(!SourceFormat::Avif.decoded_natively());
        assert!(SourceFormat::Jxl.decoded_natively());
        assert_eq!(SourceFormat::sniff(b""), None);
    }

    #[test]
    fn metadata_serialises_camel_case() {
        let m = Metadata {
            format: SourceFormat::Webp,
            width: 3,
            height: 2,
            orientation: 6,
            has_alpha: true,
            exif: Exif {
                focal_length_in_35mm_film: Some(28),
                ..Exif::default()
            },
        };
        let json = serde_json::to_value(&m).expect("serialises");
        assert_eq!(json["format"], "webp");
        assert_eq!(json["hasAlpha"], true);
        assert_eq!(json["exif"]["focalLengthIn35mmFilm"], 28);
        assert!(json["exif"]["dateTimeOriginal"].is_null());
    }

    #[test]
    fn broken_exif_is_empty() {
        let e = ExifData::read(b"\xFF\xD8\xFF\xE1\x00\x10Exif\0\0garbage!");
        assert_eq!(e.orientation(), None);
        assert_eq!(e.fields(), Exif::default());
    }
}
