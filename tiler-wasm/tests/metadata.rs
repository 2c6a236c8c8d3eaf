//! Metadata: EXIF fields for the side panel, read before any pixel is decoded.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tiler_wasm::{probe, Limits, Options, SourceFormat, Tiler};

fn plain_jpeg(w: u32, h: u32) -> Vec<u8> {
    let dir = scratch("metadata");
    let png = dir.join("photo.png");
    write_png(&png, w, h, 3, &photo_like(w, h, 9));
    let jpg = dir.join("photo.jpg");
    // Stripped: vips would otherwise write an EXIF block of its own.
    vips(&[
        "copy",
        png.to_str().expect("path"),
        &format!("{}[strip]", jpg.display()),
    ]);
    std::fs::read(jpg).expect("fixture")
}

fn camera_exif(orientation: u16) -> Vec<u8> {
    exif_tiff(
        vec![
            (0x010F, Value::Ascii("SurveyCam")),
            (0x0110, Value::Ascii("Bridge X100")),
            (0x0112, Value::Short(orientation)),
        ],
        vec![
            (0x9003, Value::Ascii("2024:05:17 09:41:07")),
            (0x920A, Value::Rationals(vec![(245, 10)])),
            (0xA002, Value::Long(6000)),
            (0xA003, Value::Long(4000)),
            (0xA405, Value::Short(36)),
        ],
        vec![
            (0x0001, Value::Ascii("S")),
            (
                0x0002,
                Value::Rationals(vec![(33, 1), (51, 1), (3180, 100)]),
            ),
            (0x0003, Value::Ascii("W")),
            (
                0x0004,
                Value::Rationals(vec![(151, 1), (12, 1), (3600, 100)]),
            ),
        ],
    )
}

#[test]
fn exif_fields_from_a_camera_jpeg() {
    let source = with_exif(&plain_jpeg(120, 80), &camera_exif(6));
    let meta = probe(&source, &Limits::default()).expect("probes");
    assert_eq!(meta.format, SourceFormat::Jpeg);
    assert_eq!((meta.width, meta.height), (80, 120), "oriented size");
    assert_eq!(meta.orientation, 6);
    assert!(!meta.has_alpha);
    let e = &meta.exif;
    assert_eq!(e.make.as_deref(), Some("SurveyCam"));
    assert_eq!(e.model.as_deref(), Some("Bridge X100"));
    assert_eq!(e.date_time_original.as_deref(), Some("2024:05:17 09:41:07"));
    assert_eq!(e.focal_length, Some(24.5));
    assert_eq!(e.focal_length_in_35mm_film, Some(36));
    assert_eq!(
        (e.pixel_x_dimension, e.pixel_y_dimension),
        (Some(6000), Some(4000))
    );
    let lat = e.gps_latitude.expect("latitude");
    let lon = e.gps_longitude.expect("longitude");
    assert!(
        (lat - -(33.0 + 51.0 / 60.0 + 31.8 / 3600.0)).abs() < 1e-9,
        "{lat}"
    );
    assert!(
        (lon - -(151.0 + 12.0 / 60.0 + 36.0 / 3600.0)).abs() < 1e-9,
        "{lon}"
    );

    // Opening gives the same metadata as probing.
    let tiler = Tiler::open(&source, &Options::default()).expect("opens");
    assert_eq!(tiler.metadata(), &meta);

    let json = serde_json::to_value(&meta).expect("serialises");
    assert_eq!(json["format"], "jpeg");
    assert_eq!(json["width"], 80);
    assert_eq!(json["hasAlpha"], false);
    assert_eq!(json["exif"]["make"], "SurveyCam");
    assert_eq!(json["exif"]["dateTimeOriginal"], "2024:05:17 09:41:07");
    assert_eq!(json["exif"]["focalLengthIn35mmFilm"], 36);
    assert_eq!(json["exif"]["pixelXDimension"], 6000);
    assert!(json["exif"]["gpsLatitude"].as_f64().expect("number") < 0.0);
}

#[test]
fn no_exif_means_empty_fields_and_upright() {
    let meta = probe(&plain_jpeg(120, 80), &Limits::default()).expect("probes");
    assert_eq!((meta.width, meta.height, meta.orientation), (120, 80, 1));
    assert_eq!(meta.exif, tiler_wasm::Exif::default());
}

#[test]
fn broken_exif_is_tolerated_as_upright() {
    let jpeg = plain_jpeg(60, 40);
    let mut tiff = camera_exif(6);
    // Point IFD0 past the end of the block.
    tiff[4..8].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    let source = with_exif(&jpeg, &tiff);
    let meta = probe(&source, &Limits::default()).expect("probes");
    assert_eq!((meta.width, meta.height, meta.orientation), (60, 40, 1));
    Tiler::open(&source, &Options::default()).expect("opens");

    // An orientation outside 1..=8 means upright.
    let odd = with_orientation(&jpeg, 42);
    let meta = probe(&odd, &Limits::default()).expect("probes");
    assert_eq!((meta.width, meta.height, meta.orientation), (60, 40, 1));
}

#[test]
fn probe_reports_each_format() {
    let dir = scratch("metadata-formats");
    let png = dir.join("a.png");
    write_png(&png, 30, 20, 4, &vec![128; 30 * 20 * 4]);
    let png_meta = probe(&std::fs::read(&png).expect("png"), &Limits::default()).expect("png");
    assert_eq!(png_meta.format, SourceFormat::Png);
    assert!(png_meta.has_alpha);
    for (ext, format) in [("webp", SourceFormat::Webp), ("tif", SourceFormat::Tiff)] {
        let out = dir.join(format!("a.{ext}"));
        vips(&[
            "copy",
            png.to_str().expect("path"),
            out.to_str().expect("path"),
        ]);
        let bytes = std::fs::read(&out).expect("converted");
        let meta = probe(&bytes, &Limits::default()).expect("probes");
        assert_eq!(
            (meta.format, meta.width, meta.height),
            (format, 30, 20),
            "{ext}"
        );
        let mut tiler = Tiler::open(&bytes, &Options::default()).expect("opens");
        let tile = tiler.tile(tiler.layout().max_level(), 0, 0).expect("tile");
        let (w, h, _) = decode_rgba(&tile);
        assert_eq!((w, h), (30, 20), "{ext}");
    }
}
