//! All eight EXIF orientations against `vips dzsave in.jpg[autorotate]`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tiler_wasm::{Options, TileFormat, Tiler};

/// An asymmetric 90×60 image: red rises left to right, green top to bottom, and
/// a white block marks the top-left corner.
fn asymmetric(w: u32, h: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            if x < 20 && y < 10 {
                data.extend([255, 255, 255]);
            } else {
                data.extend([(x * 255 / w) as u8, (y * 255 / h) as u8, 60]);
            }
        }
    }
    data
}

#[test]
fn all_eight_orientations_match_vips_autorotate() {
    let dir = scratch("orientation");
    let (w, h) = (90, 60);
    let png = dir.join("upright.png");
    write_png(&png, w, h, 3, &asymmetric(w, h));
    let plain = dir.join("plain.jpg");
    // 4:4:4 at Q100 so that libjpeg and zune-jpeg decode to nearly the same pixels.
    vips(&[
        "copy",
        png.to_str().expect("path"),
        &format!("{}[Q=100,subsample_mode=off]", plain.display()),
    ]);
    let plain = std::fs::read(&plain).expect("fixture");

    let mut upright_tiles = Vec::new();
    for orientation in 1..=8u16 {
        let source = with_orientation(&plain, orientation);
        let path = dir.join(format!("o{orientation}.jpg"));
        std::fs::write(&path, &source).expect("write fixture");
        let base = dir.join(format!("vips_o{orientation}"));
        vips(&[
            "dzsave",
            &format!("{}[autorotate]", path.display()),
            base.to_str().expect("path"),
            "--suffix",
            ".png",
        ]);

        let options = Options {
            format: Some(TileFormat::Png),
            ..Options::default()
        };
        let mut tiler = Tiler::open(&source, &options).expect("opens");
        let meta = tiler.metadata().clone();
        assert_eq!(meta.orientation, orientation);
        let expected_size = if orientation >= 5 { (h, w) } else { (w, h) };
        assert_eq!(
            (meta.width, meta.height),
            expected_size,
            "orientation {orientation}"
        );
        assert_eq!(
            tiler_wasm::probe(&source, &options.limits).expect("probes"),
            meta,
            "probe and open disagree"
        );
        let vips_dzi = std::fs::read_to_string(base.with_extension("dzi")).expect("dzi");
        assert_eq!(tiler.dzi().to_xml(), vips_dzi, "orientation {orientation}");

        let top = tiler.layout().max_level();
        let ours = decode_rgba(&tiler.tile(top, 0, 0).expect("tile"));
        let theirs = read_vips_tiles(&base, "png");
        let theirs = decode_rgba(
            &theirs[&tiler_wasm::TileAddr {
                level: top,
                col: 0,
                row: 0,
            }],
        );
        assert_eq!(
            (ours.0, ours.1),
            (theirs.0, theirs.1),
            "orientation {orientation}"
        );
        let (s, n) = squared_error(&ours.2, &theirs.2, false);
        let db = psnr(s, n);
        println!(
            "orientation {orientation}: {}×{}, PSNR vs vips {db:.2} dB",
            ours.0, ours.1
        );
        assert!(
            db >= 40.0,
            "orientation {orientation}: PSNR {db:.2} dB against vips"
        );
        upright_tiles.push(ours);
    }
    // The image is asymmetric, so every wrong orientation would be far off: check
    // that the comparison above tells all eight apart.
    for (i, a) in upright_tiles.iter().enumerate() {
        for b in upright_tiles.iter().skip(i + 1) {
            if (a.0, a.1) == (b.0, b.1) {
                let (s, n) = squared_error(&a.2, &b.2, false);
                assert!(
                    psnr(s, n) < 20.0,
                    "the fixture is too symmetric to test orientation"
                );
            }
        }
    }
}
