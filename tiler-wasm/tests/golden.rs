//! Golden tests: our pyramids against the ones `vips dzsave` writes for the same
//! source — the same `.dzi` bytes, levels, tile grid and tile sizes, and pixels
//! within the PSNR bounds of the brief.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use tiler_wasm::{Options, TileAddr, TileFormat, Tiler};

/// Our pyramid for `source` in `format`, after checking the `.dzi`, the grid and
/// tile sizes against vips's pyramid at `vips_base` with tiles in `vips_ext`.
fn ours_matching_vips_geometry(
    source: &[u8],
    format: TileFormat,
    vips_base: &Path,
    vips_ext: &str,
) -> (Tiler, BTreeMap<TileAddr, Vec<u8>>) {
    let options = Options {
        format: Some(format),
        ..Options::default()
    };
    let mut tiler = Tiler::open(source, &options).expect("opens");
    let vips_dzi =
        std::fs::read_to_string(vips_base.with_extension("dzi")).expect("vips wrote a .dzi");
    let mut dzi = tiler.dzi();
    // Compare the XML that vips would write for the tiles we compare with.
    dzi.format = TileFormat::from_extension(vips_ext).expect("known extension");
    assert_eq!(dzi.to_xml(), vips_dzi, ".dzi differs from vips's");

    let ours = walk_all(&mut tiler);
    let theirs = read_vips_tiles(vips_base, vips_ext);
    let levels = |t: &BTreeMap<TileAddr, Vec<u8>>| {
        t.keys()
            .map(|a| a.level)
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(levels(&ours), levels(&theirs), "level count differs");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "tile grid differs"
    );
    for (addr, bytes) in &ours {
        let (w, h, _) = decode_rgba(bytes);
        let (vw, vh, _) = decode_rgba(&theirs[addr]);
        assert_eq!((w, h), (vw, vh), "tile size differs at {addr:?}");
    }
    (tiler, ours)
}

/// Per level: (sum of squared errors, samples) of `a` against `b`.
fn level_errors(
    a: &BTreeMap<TileAddr, Vec<u8>>,
    b: &BTreeMap<TileAddr, Vec<u8>>,
    alpha: bool,
) -> BTreeMap<u32, (f64, u64)> {
    let mut per_level: BTreeMap<u32, (f64, u64)> = BTreeMap::new();
    for (addr, bytes) in a {
        let (_, _, pa) = decode_rgba(bytes);
        let (_, _, pb) = decode_rgba(&b[addr]);
        let (s, n) = squared_error(&pa, &pb, alpha);
        let e = per_level.entry(addr.level).or_default();
        e.0 += s;
        e.1 += n;
    }
    per_level
}

fn total(errors: &BTreeMap<u32, (f64, u64)>) -> f64 {
    let (s, n) = errors
        .values()
        .fold((0.0, 0), |(s, n), (ls, ln)| (s + ls, n + ln));
    psnr(s, n)
}

fn bytes(tiles: &BTreeMap<TileAddr, Vec<u8>>) -> usize {
    tiles.values().map(Vec::len).sum()
}

fn assert_png_levels_close(
    ours: &BTreeMap<TileAddr, Vec<u8>>,
    reference: &BTreeMap<TileAddr, Vec<u8>>,
    alpha: bool,
    what: &str,
) {
    for (level, (s, n)) in level_errors(ours, reference, alpha) {
        let db = psnr(s, n);
        println!("{what}: level {level:2} PNG PSNR {db:.2} dB");
        assert!(db >= 45.0, "{what}: level {level} PSNR {db:.2} dB < 45 dB");
    }
}

#[test]
fn photo_png_source_png_and_jpeg_tiles_match_vips() {
    let dir = scratch("golden-photo");
    let (w, h) = (1500, 1000);
    let src = dir.join("photo.png");
    write_png(&src, w, h, 3, &photo_like(w, h, 7));
    let source = std::fs::read(&src).expect("fixture");
    let src_arg = src.to_str().expect("utf-8 path");

    let png_base = dir.join("vips_png");
    vips(&[
        "dzsave",
        src_arg,
        png_base.to_str().expect("path"),
        "--suffix",
        ".png",
    ]);
    let jpeg_base = dir.join("vips_jpeg");
    vips(&["dzsave", src_arg, jpeg_base.to_str().expect("path")]);

    // Lossless tiles against vips's lossless tiles.
    let (_, ours_png) = ours_matching_vips_geometry(&source, TileFormat::Png, &png_base, "png");
    let vips_png = read_vips_tiles(&png_base, "png");
    assert_png_levels_close(&ours_png, &vips_png, false, "photo");

    // Q75 tiles: our loss against the lossless reference, compared with vips's own.
    let (tiler, ours_jpeg) =
        ours_matching_vips_geometry(&source, TileFormat::Jpeg, &jpeg_base, "jpeg");
    assert_eq!(tiler.format(), TileFormat::Jpeg);
    let vips_jpeg = read_vips_tiles(&jpeg_base, "jpeg");
    let ours_err = level_errors(&ours_jpeg, &vips_png, false);
    let vips_err = level_errors(&vips_jpeg, &vips_png, false);
    for level in ours_err.keys() {
        let (o, v) = (ours_err[level], vips_err[level]);
        println!(
            "photo: level {level:2} JPEG Q75 PSNR ours {:.2} dB, vips {:.2} dB",
            psnr(o.0, o.1),
            psnr(v.0, v.1)
        );
    }
    let (ours_db, vips_db) = (total(&ours_err), total(&vips_err));
    let (ours_bytes, vips_bytes) = (bytes(&ours_jpeg), bytes(&vips_jpeg));
    println!(
        "photo: JPEG Q75 whole pyramid PSNR ours {ours_db:.2} dB, vips {vips_db:.2} dB; \
         bytes ours {ours_bytes}, vips {vips_bytes} ({:.3}×)",
        ours_bytes as f64 / vips_bytes as f64
    );
    assert!(
        ours_db >= vips_db - 0.5,
        "JPEG PSNR {ours_db:.2} dB is more than 0.5 dB below vips's {vips_db:.2} dB"
    );
    let top = *ours_err.keys().max().expect("levels");
    let (o, v) = (ours_err[&top], vips_err[&top]);
    assert!(
        psnr(o.0, o.1) >= psnr(v.0, v.1) - 0.5,
        "full-resolution JPEG PSNR more than 0.5 dB below vips's"
    );
    assert!(
        ours_bytes as f64 <= 1.1 * vips_bytes as f64,
        "JPEG tiles take {ours_bytes} bytes, more than 1.1 × vips's {vips_bytes}"
    );
    // And the tiles themselves: decoded, ours against vips's. The same shrink and libjpeg's
    // chroma averaging leave only the two encoders' rounding between them: 58.7 dB over the
    // pyramid, 58.1 at full resolution (top-left chroma samples instead: 53.5 and 53.7).
    let apart = level_errors(&ours_jpeg, &vips_jpeg, false);
    for (level, e) in &apart {
        println!(
            "photo: level {level:2} JPEG Q75 ours against vips's {:.2} dB",
            psnr(e.0, e.1)
        );
    }
    let (whole, full) = (total(&apart), psnr(apart[&top].0, apart[&top].1));
    println!("photo: JPEG Q75 ours against vips's: whole pyramid {whole:.2} dB, full resolution {full:.2} dB");
    assert!(
        whole >= 57.0,
        "JPEG tiles {whole:.2} dB from vips's over the pyramid, under 57 dB"
    );
    assert!(
        full >= 56.0,
        "full-resolution JPEG tiles {full:.2} dB from vips's, under 56 dB"
    );
}

#[test]
fn jpeg_source_png_tiles_match_vips() {
    let dir = scratch("golden-jpeg-source");
    let (w, h) = (700, 450);
    let png = dir.join("photo.png");
    write_png(&png, w, h, 3, &photo_like(w, h, 11));
    let jpg = dir.join("photo.jpg");
    vips(&[
        "copy",
        png.to_str().expect("path"),
        &format!("{}[Q=92]", jpg.display()),
    ]);
    let source = std::fs::read(&jpg).expect("fixture");
    let base = dir.join("vips");
    vips(&[
        "dzsave",
        jpg.to_str().expect("path"),
        base.to_str().expect("path"),
        "--suffix",
        ".png",
    ]);
    let (_, ours) = ours_matching_vips_geometry(&source, TileFormat::Png, &base, "png");
    assert_png_levels_close(&ours, &read_vips_tiles(&base, "png"), false, "jpeg source");
}

#[test]
fn alpha_png_source_png_tiles_match_vips() {
    let dir = scratch("golden-alpha");
    let (w, h) = (301, 203);
    let rgb = photo_like(w, h, 3);
    let mut rng = Rng::new(5);
    let mut rgba = Vec::with_capacity((w * h * 4) as usize);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        let (x, y) = (i as u32 % w, i as u32 / w);
        // Opaque, transparent and ramped regions, with speckled partial alpha.
        let alpha = if x < 60 {
            255
        } else if y < 40 {
            0
        } else if rng.next().is_multiple_of(7) {
            (rng.next() % 256) as u8
        } else {
            ((x * 255) / w) as u8
        };
        rgba.extend_from_slice(&[px[0], px[1], px[2], alpha]);
    }
    let src = dir.join("alpha.png");
    write_png(&src, w, h, 4, &rgba);
    let source = std::fs::read(&src).expect("fixture");
    let base = dir.join("vips");
    vips(&[
        "dzsave",
        src.to_str().expect("path"),
        base.to_str().expect("path"),
        "--suffix",
        ".png",
    ]);

    // The default format for an image with alpha is PNG.
    let auto = Tiler::open(&source, &Options::default()).expect("opens");
    assert_eq!(auto.format(), TileFormat::Png);
    assert!(auto.metadata().has_alpha);

    let (_, ours) = ours_matching_vips_geometry(&source, TileFormat::Png, &base, "png");
    let theirs = read_vips_tiles(&base, "png");
    assert_png_levels_close(&ours, &theirs, true, "alpha");
    // The shrink is vips's exactly, so every tile is identical pixel for pixel.
    for (addr, bytes) in &ours {
        assert_eq!(
            decode_rgba(bytes).2,
            decode_rgba(&theirs[addr]).2,
            "alpha pixels differ at {addr:?}"
        );
    }
}

#[test]
fn odd_sizes_and_small_images_match_vips_exactly() {
    let dir = scratch("golden-odd");
    for (w, h) in [(1, 1), (3, 1), (255, 256), (509, 17)] {
        let src = dir.join(format!("odd_{w}x{h}.png"));
        write_png(&src, w, h, 3, &photo_like(w, h, u64::from(w * h)));
        let source = std::fs::read(&src).expect("fixture");
        let base = dir.join(format!("vips_{w}x{h}"));
        vips(&[
            "dzsave",
            src.to_str().expect("path"),
            base.to_str().expect("path"),
            "--suffix",
            ".png",
        ]);
        let (_, ours) = ours_matching_vips_geometry(&source, TileFormat::Png, &base, "png");
        let theirs = read_vips_tiles(&base, "png");
        for (addr, bytes) in &ours {
            assert_eq!(
                decode_rgba(bytes).2,
                decode_rgba(&theirs[addr]).2,
                "{w}×{h}: pixels differ at {addr:?}"
            );
        }
    }
}

/// Every hue at full and half saturation and value, over a photo-like texture: the colours a CMYK
/// conversion gets wrong first (saturated blues) as well as neutrals.
fn colour_sweep(w: u32, h: u32) -> Vec<u8> {
    let texture = photo_like(w, h, 29);
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let hue = 6.0 * x as f32 / w as f32;
            let band = (4 * y / h) as usize;
            let (s, v) = [(1.0, 1.0), (0.5, 1.0), (1.0, 0.5), (0.0, 1.0)][band];
            let i = ((y * w + x) * 3) as usize;
            let shade = f32::from(texture[i]) / 255.0;
            let f = hue.fract();
            let (r, g, b) = match hue as u32 {
                0 => (1.0, f, 0.0),
                1 => (1.0 - f, 1.0, 0.0),
                2 => (0.0, 1.0, f),
                3 => (0.0, 1.0 - f, 1.0),
                4 => (f, 0.0, 1.0),
                _ => (1.0, 0.0, 1.0 - f),
            };
            // Neutral rows take the texture's shading; coloured ones a little of it.
            let v = if s == 0.0 {
                shade
            } else {
                v * (0.85 + 0.15 * shade)
            };
            for c in [r, g, b] {
                out.push(((1.0 - s + s * c) * v * 255.0).round() as u8);
            }
        }
    }
    out
}

/// A CMYK JPEG without a profile is converted with vips's default CMYK profile: every level
/// against the pyramid vips makes of `vips icc_transform … srgb` (which applies that profile).
#[test]
fn cmyk_jpeg_without_profile_matches_vips_default_profile() {
    let dir = scratch("golden-cmyk");
    let (w, h) = (600, 400);
    let png = dir.join("colours.png");
    write_png(&png, w, h, 3, &colour_sweep(w, h));
    let jpg = dir.join("cmyk.jpg");
    vips(&[
        "icc_export",
        png.to_str().expect("path"),
        &format!("{}[Q=95,strip]", jpg.display()),
        "--output-profile",
        "cmyk",
    ]);
    let source = std::fs::read(&jpg).expect("fixture");
    assert!(
        !source.windows(11).any(|w| w == b"ICC_PROFILE"),
        "the fixture must have no profile"
    );
    let srgb = dir.join("srgb.png");
    vips(&[
        "icc_transform",
        jpg.to_str().expect("path"),
        srgb.to_str().expect("path"),
        "srgb",
    ]);
    let base = dir.join("vips");
    vips(&[
        "dzsave",
        srgb.to_str().expect("path"),
        base.to_str().expect("path"),
        "--suffix",
        ".png",
    ]);
    let (_, ours) = ours_matching_vips_geometry(&source, TileFormat::Png, &base, "png");
    let theirs = read_vips_tiles(&base, "png");
    let errors = level_errors(&ours, &theirs, false);
    let largest = ours
        .iter()
        .flat_map(|(addr, bytes)| {
            let (a, b) = (decode_rgba(bytes).2, decode_rgba(&theirs[addr]).2);
            a.iter().zip(b).map(|(x, y)| x.abs_diff(y)).max()
        })
        .max()
        .unwrap_or(0);
    println!(
        "cmyk: whole pyramid {:.2} dB, largest difference {largest} levels",
        total(&errors)
    );
    // Measured (moxcms against lcms2, the same profile): 56.7 dB or more on every level, no
    // sample more than 5 levels off. The plain (1−C)(1−K) formula gives 16.2 dB at full
    // resolution and 128 levels (blues far too light).
    for (level, (s, n)) in errors {
        let db = psnr(s, n);
        println!("cmyk: level {level:2} PNG PSNR {db:.2} dB");
        assert!(db >= 54.0, "cmyk: level {level} PSNR {db:.2} dB < 54 dB");
    }
    assert!(largest <= 6, "cmyk: a sample {largest} levels from vips's");
}
