//! Every source variant decodes to the pixels libvips reads from it: PNG 8/16-bit,
//! grey, palette and alpha; JPEG baseline, progressive, greyscale and CMYK;
//! WebP lossy, lossless and alpha; TIFF 8/16-bit; embedded ICC profiles.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use tiler_wasm::{Options, TileAddr, TileFormat, Tiler};

/// Width, height and packed RGBA.
type Pixels = (u32, u32, Vec<u8>);

/// The full-resolution pixels (RGBA) of our pyramid and of vips's for `path`.
fn top_level_pixels(path: &Path, dir: &Path, name: &str) -> (Pixels, Pixels) {
    let base = dir.join(format!("vips_{name}"));
    vips(&[
        "dzsave",
        path.to_str().expect("path"),
        base.to_str().expect("path"),
        "--suffix",
        ".png",
        "--tile-size",
        "8192",
    ]);
    let theirs = read_vips_tiles(&base, "png");
    let bytes = std::fs::read(path).expect("fixture");
    let options = Options {
        format: Some(TileFormat::Png),
        tile_size: 8192,
        ..Options::default()
    };
    let mut tiler = Tiler::open(&bytes, &options).expect("opens");
    let top = tiler.layout().max_level();
    let ours = decode_rgba(&tiler.tile(top, 0, 0).expect("tile"));
    (
        ours,
        decode_rgba(
            &theirs[&TileAddr {
                level: top,
                col: 0,
                row: 0,
            }],
        ),
    )
}

fn psnr_of(a: &Pixels, b: &Pixels, alpha: bool) -> f64 {
    assert_eq!((a.0, a.1), (b.0, b.1), "sizes differ");
    let (s, n) = squared_error(&a.2, &b.2, alpha);
    psnr(s, n)
}

struct Fixture {
    dir: PathBuf,
    rgb: PathBuf,
    rgba: PathBuf,
}

fn fixture(name: &str) -> Fixture {
    let dir = scratch(name);
    let (w, h) = (203, 151);
    let rgb = dir.join("rgb.png");
    let pixels = photo_like(w, h, 17);
    write_png(&rgb, w, h, 3, &pixels);
    let rgba = dir.join("rgba.png");
    let with_alpha: Vec<u8> = pixels
        .chunks_exact(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], ((i as u32 % w) * 255 / w) as u8])
        .collect();
    write_png(&rgba, w, h, 4, &with_alpha);
    Fixture { dir, rgb, rgba }
}

/// `vips <op> src out[opts] args...`, returning `out`.
fn convert(f: &Fixture, src: &Path, op: &str, out: &str, args: &[&str]) -> PathBuf {
    let path = f.dir.join(out.split('[').next().expect("name"));
    let target = format!(
        "{}{}",
        f.dir.join(out.split('[').next().expect("name")).display(),
        out.find('[').map_or("", |i| &out[i..])
    );
    let mut all = vec![op, src.to_str().expect("path"), target.as_str()];
    all.extend(args);
    vips(&all);
    path
}

#[test]
fn lossless_variants_decode_exactly_as_vips() {
    let f = fixture("formats-lossless");
    let cases = [
        (
            "png16",
            convert(&f, &f.rgb, "colourspace", "rgb16.png", &["rgb16"]),
            false,
        ),
        (
            "grey",
            convert(&f, &f.rgb, "colourspace", "grey.png", &["b-w"]),
            false,
        ),
        (
            "grey16",
            convert(&f, &f.rgb, "colourspace", "grey16.png", &["grey16"]),
            false,
        ),
        (
            "palette",
            convert(&f, &f.rgb, "copy", "palette.png[palette]", &[]),
            false,
        ),
        ("rgba", f.rgba.clone(), true),
        // An sRGB profile is left alone, as vips leaves it.
        (
            "srgb-tagged",
            convert(&f, &f.rgb, "icc_transform", "srgb.png", &["srgb"]),
            false,
        ),
        (
            "grey-alpha",
            convert(&f, &f.rgba, "colourspace", "greya.png", &["b-w"]),
            true,
        ),
        (
            "webp-lossless",
            convert(&f, &f.rgb, "copy", "lossless.webp[lossless]", &[]),
            false,
        ),
        (
            "webp-lossless-alpha",
            convert(&f, &f.rgba, "copy", "alpha.webp[lossless]", &[]),
            true,
        ),
        ("tiff", convert(&f, &f.rgb, "copy", "rgb.tif", &[]), false),
        (
            "tiff16",
            convert(&f, &f.rgb, "colourspace", "rgb16.tif", &["rgb16"]),
            false,
        ),
        (
            "tiff-alpha",
            convert(&f, &f.rgba, "copy", "rgba.tif[compression=deflate]", &[]),
            true,
        ),
    ];
    for (name, path, alpha) in cases {
        let (ours, theirs) = top_level_pixels(&path, &f.dir, name);
        let db = psnr_of(&ours, &theirs, alpha);
        println!("{name}: PSNR vs vips {db:.2} dB");
        // 16-bit sources: vips keeps 16 bits through the PNG tile, we keep the high byte.
        assert!(db >= 45.0, "{name}: PSNR {db:.2} dB");
        if !name.ends_with("16") {
            assert_eq!(ours.2, theirs.2, "{name}: pixels differ from vips's");
        }
    }
}

#[test]
fn lossy_variants_decode_close_to_vips() {
    let f = fixture("formats-lossy");
    let cases = [
        (
            "jpeg-baseline",
            convert(&f, &f.rgb, "copy", "base.jpg[Q=90]", &[]),
        ),
        (
            "jpeg-progressive",
            convert(&f, &f.rgb, "copy", "prog.jpg[Q=90,interlace]", &[]),
        ),
        (
            "jpeg-444",
            convert(&f, &f.rgb, "copy", "full.jpg[Q=90,subsample_mode=off]", &[]),
        ),
        (
            "jpeg-grey",
            convert(&f, &f.rgb, "colourspace", "grey.jpg[Q=90]", &["b-w"]),
        ),
        (
            "webp-lossy",
            convert(&f, &f.rgb, "copy", "lossy.webp[Q=90]", &[]),
        ),
        (
            "webp-lossy-alpha",
            convert(&f, &f.rgba, "copy", "lossya.webp[Q=90]", &[]),
        ),
    ];
    for (name, path) in cases {
        let (ours, theirs) = top_level_pixels(&path, &f.dir, name);
        let db = psnr_of(&ours, &theirs, name.ends_with("alpha"));
        println!("{name}: PSNR vs vips {db:.2} dB");
        assert!(db >= 40.0, "{name}: PSNR {db:.2} dB");
    }
}

/// The sRGB pixels vips makes from `path` with its embedded profile (lcms2).
fn vips_srgb(f: &Fixture, path: &Path, name: &str) -> Pixels {
    let out = convert(
        f,
        path,
        "icc_transform",
        &format!("{name}_srgb.png"),
        &["srgb", "--embedded"],
    );
    decode_rgba(&std::fs::read(out).expect("converted"))
}

fn ours(path: &Path) -> Pixels {
    let bytes = std::fs::read(path).expect("fixture");
    let options = Options {
        format: Some(TileFormat::Png),
        tile_size: 8192,
        ..Options::default()
    };
    let mut tiler = Tiler::open(&bytes, &options).expect("opens");
    decode_rgba(&tiler.tile(tiler.layout().max_level(), 0, 0).expect("tile"))
}

#[test]
fn embedded_rgb_profiles_are_converted_to_srgb() {
    let f = fixture("formats-icc");
    let original = decode_rgba(&std::fs::read(&f.rgb).expect("png"));
    for (name, out) in [("p3-png", "p3.png"), ("p3-jpeg", "p3.jpg[Q=95]")] {
        let p3 = convert(&f, &f.rgb, "icc_transform", out, &["p3"]);
        let raw = decode_rgba(&std::fs::read(&p3).expect("p3"));
        let converted = ours(&p3);
        let reference = vips_srgb(&f, &p3, name);
        let vs_vips = psnr_of(&converted, &reference, false);
        let unconverted = psnr_of(&raw, &reference, false);
        let vs_original = psnr_of(&converted, &original, false);
        println!(
            "{name}: vs vips icc_transform {vs_vips:.2} dB (unconverted {unconverted:.2} dB), \
             vs original sRGB {vs_original:.2} dB"
        );
        assert!(vs_vips >= 38.0, "{name}: {vs_vips:.2} dB against lcms2");
        assert!(vs_vips > unconverted + 5.0, "{name}: profile not applied");
    }
}

#[test]
fn cmyk_jpeg_is_converted_with_its_profile() {
    let f = fixture("formats-cmyk");
    let cmyk = convert(
        &f,
        &f.rgb,
        "icc_export",
        "cmyk.jpg[Q=95]",
        &["--output-profile", "cmyk"],
    );
    let converted = ours(&cmyk);
    let reference = vips_srgb(&f, &cmyk, "cmyk");
    let original = decode_rgba(&std::fs::read(&f.rgb).expect("png"));
    let vs_vips = psnr_of(&converted, &reference, false);
    let vs_original = psnr_of(&converted, &original, false);
    println!("cmyk: vs vips icc_transform {vs_vips:.2} dB, vs original {vs_original:.2} dB");
    assert!(vs_vips >= 30.0, "CMYK: {vs_vips:.2} dB against lcms2");

    // The same JPEG data without the profile gets vips's default one, which is the same profile:
    // the same pixels.
    let stripped = convert(
        &f,
        &f.rgb,
        "icc_export",
        "cmyk_noprofile.jpg[Q=95,strip]",
        &["--output-profile", "cmyk"],
    );
    assert_eq!(ours(&stripped).2, converted.2, "default CMYK profile");
}

/// The ICC tags of a profile, by signature.
fn icc_tags(profile: &[u8]) -> std::collections::BTreeMap<[u8; 4], &[u8]> {
    let be = |at: usize| u32::from_be_bytes(profile[at..at + 4].try_into().unwrap()) as usize;
    (0..be(128))
        .map(|i| {
            let entry = 132 + 12 * i;
            let sig = profile[entry..entry + 4].try_into().unwrap();
            let (offset, size) = (be(entry + 4), be(entry + 8));
            (sig, &profile[offset..offset + size])
        })
        .collect()
}

/// The built-in CMYK profile is libvips's own, cut to the tags a conversion from CMYK reads.
#[test]
fn default_cmyk_profile_is_vips_own() {
    let f = fixture("formats-cmyk-profile");
    let tif = convert(&f, &f.rgb, "icc_transform", "cmyk.tif", &["cmyk"]);
    let file = std::io::BufReader::new(std::fs::File::open(&tif).unwrap());
    let mut decoder = image::codecs::tiff::TiffDecoder::new(file).unwrap();
    let vips = image::ImageDecoder::icc_profile(&mut decoder)
        .unwrap()
        .expect("vips attaches its profile");
    let ours = tiler_wasm::color::DEFAULT_CMYK_PROFILE;
    println!("vips's profile {} bytes, ours {}", vips.len(), ours.len());
    assert_eq!(&ours[4..128], &vips[4..128], "header");
    assert_eq!(
        u32::from_be_bytes(ours[..4].try_into().unwrap()) as usize,
        ours.len()
    );
    let (ours, vips) = (icc_tags(ours), icc_tags(&vips));
    let kept: Vec<&[u8; 4]> = ours.keys().collect();
    assert_eq!(
        kept,
        [b"A2B0", b"A2B1", b"A2B2", b"bkpt", b"cprt", b"desc", b"wtpt"],
        "tags"
    );
    for (sig, bytes) in &ours {
        assert_eq!(
            Some(bytes),
            vips.get(sig),
            "{}",
            String::from_utf8_lossy(sig)
        );
    }
}
