//! JPEG XL sources (`jxl` feature, jxl-oxide) against `vips dzsave` on files `vips jxlsave`
//! writes at test time (libjxl): lossless ones tile pixel for pixel as vips tiles them; damaged
//! and forged ones give typed errors, never a panic, and a forged size is refused from the header.
#![cfg(feature = "jxl")]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use tiler_wasm::{Error, Limits, Options, SourceFormat, TileFormat, Tiler};

fn png_options() -> Options {
    Options {
        format: Some(TileFormat::Png),
        ..Options::default()
    }
}

/// `vips dzsave` of `src` with PNG tiles against our pyramid of the same file: the same `.dzi`
/// (for PNG tiles), tile grid and sizes; returns, per level, the PSNR and whether every pixel
/// (with alpha) is identical.
fn against_vips(src: &Path, dir: &Path, name: &str) -> BTreeMap<u32, (f64, bool)> {
    let base = dir.join(format!("vips_{name}"));
    vips(&[
        "dzsave",
        src.to_str().unwrap(),
        base.to_str().unwrap(),
        "--suffix",
        ".png",
    ]);
    let bytes = std::fs::read(src).unwrap();
    let mut tiler = Tiler::open(&bytes, &png_options()).expect("opens");
    assert_eq!(tiler.metadata().format, SourceFormat::Jxl);
    let vips_dzi = std::fs::read_to_string(base.with_extension("dzi")).unwrap();
    assert_eq!(tiler.dzi().to_xml(), vips_dzi, "{name}: .dzi");
    let ours = walk_all(&mut tiler);
    let theirs = read_vips_tiles(&base, "png");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{name}: tile grid"
    );
    let mut levels = BTreeMap::<u32, (f64, u64, bool)>::new();
    for (addr, tile) in &ours {
        let (a, b) = (decode_high_byte(tile), decode_high_byte(&theirs[addr]));
        assert_eq!((a.0, a.1), (b.0, b.1), "{name}: tile size at {addr:?}");
        let (s, n) = squared_error(&a.2, &b.2, true);
        let level = levels.entry(addr.level).or_insert((0.0, 0, true));
        level.0 += s;
        level.1 += n;
        level.2 &= a.2 == b.2;
    }
    levels
        .into_iter()
        .map(|(l, (s, n, same))| (l, (psnr(s, n), same)))
        .collect()
}

/// The worst level's PSNR.
fn worst(levels: &BTreeMap<u32, (f64, bool)>) -> f64 {
    levels.values().map(|v| v.0).fold(f64::INFINITY, f64::min)
}

/// A PNG tile as 8-bit RGBA with its size; 16-bit tiles (vips keeps 16 bits in PNG tiles) keep
/// the high byte, as `vips dzsave` casts 16-bit sources for 8-bit tile formats.
fn decode_high_byte(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let image = image::load_from_memory(bytes)
        .expect("tile decodes")
        .into_rgba16();
    let (w, h) = image.dimensions();
    (
        w,
        h,
        image.into_raw().iter().map(|v| (v >> 8) as u8).collect(),
    )
}

struct Sources {
    dir: std::path::PathBuf,
    rgb: std::path::PathBuf,
    rgba: std::path::PathBuf,
}

fn sources(name: &str) -> Sources {
    let dir = scratch(name);
    let (w, h) = (613, 397);
    let pixels = photo_like(w, h, 23);
    let rgb = dir.join("rgb.png");
    write_png(&rgb, w, h, 3, &pixels);
    let with_alpha: Vec<u8> = pixels
        .chunks_exact(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], ((i as u32 % w) * 255 / w) as u8])
        .collect();
    let rgba = dir.join("rgba.png");
    write_png(&rgba, w, h, 4, &with_alpha);
    Sources { dir, rgb, rgba }
}

/// `vips <op> src out[opts] args…`, returning the path of `out`.
fn vips_to(dir: &Path, op: &str, src: &Path, out: &str, args: &[&str]) -> std::path::PathBuf {
    let name = out.split('[').next().unwrap();
    let target = format!(
        "{}{}",
        dir.join(name).display(),
        out.find('[').map_or("", |i| &out[i..])
    );
    let mut all = vec![op, src.to_str().unwrap(), target.as_str()];
    all.extend(args);
    vips(&all);
    dir.join(name)
}

#[test]
fn lossless_jxl_tiles_exactly_as_vips() {
    let s = sources("jxl-lossless");
    let grey = vips_to(&s.dir, "colourspace", &s.rgb, "grey.png", &["b-w"]);
    let rgb16 = vips_to(&s.dir, "colourspace", &s.rgb, "rgb16.png", &["rgb16"]);
    let cases = [
        ("rgb", &s.rgb),
        ("rgba", &s.rgba),
        ("grey", &grey),
        ("rgb16", &rgb16),
    ];
    for (name, src) in cases {
        let jxl = vips_to(&s.dir, "copy", src, &format!("{name}.jxl[lossless]"), &[]);
        let levels = against_vips(&jxl, &s.dir, name);
        let top = levels.keys().max().copied().unwrap();
        let identical = levels.values().all(|v| v.1);
        println!(
            "lossless {name}: worst level {:.2} dB, full resolution identical {}, all identical {identical}",
            worst(&levels),
            levels[&top].1
        );
        if name == "rgb16" {
            // The high byte at full resolution, as vips casts; below it vips shrinks in 16 bits
            // and casts each tile, we cast first (as for 16-bit PNG and TIFF): ≥ 40 dB.
            assert!(
                levels[&top].1,
                "{name}: full resolution differs from vips's"
            );
            assert!(worst(&levels) >= 40.0, "{name}: {:.2} dB", worst(&levels));
        } else {
            assert!(identical, "{name}: pixels differ from vips's");
        }
    }
}

#[test]
fn lossy_jxl_is_close_to_vips() {
    let s = sources("jxl-lossy");
    let jxl = vips_to(&s.dir, "copy", &s.rgb, "q90.jxl[Q=90]", &[]);
    let worst = worst(&against_vips(&jxl, &s.dir, "q90"));
    println!("lossy Q90: worst level {worst:.2} dB");
    // jxl-oxide's and libjxl's float pipelines round differently: measured 71.3 dB.
    assert!(worst >= 60.0, "lossy: {worst:.2} dB");
}

/// Bits, least significant first, as JPEG XL packs them.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    used: usize,
}

impl Bits {
    fn put(&mut self, value: u64, count: usize) {
        for i in 0..count {
            if self.used.is_multiple_of(8) {
                self.bytes.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            *self.bytes.last_mut().unwrap() |= bit << (self.used % 8);
            self.used += 1;
        }
    }
}

/// A bare codestream whose header declares `width` × `height` (each 1..=2³⁰) with default
/// metadata, followed by `tail`.
fn codestream_declaring(width: u32, height: u32, tail: &[u8]) -> Vec<u8> {
    let mut b = Bits::default();
    b.put(0x0AFF, 16); // signature FF 0A
    b.put(0, 1); // div8: no
    b.put(3, 2); // height: U32 selector 3, 1 + u(30)
    b.put(u64::from(height - 1), 30);
    b.put(0, 3); // ratio 0: width follows
    b.put(3, 2);
    b.put(u64::from(width - 1), 30);
    b.put(1, 1); // ImageMetadata all_default
    let mut bytes = b.bytes;
    bytes.extend_from_slice(tail);
    bytes
}

#[test]
fn a_forged_size_is_refused_from_the_header() {
    let s = sources("jxl-forged");
    let real = std::fs::read(vips_to(&s.dir, "copy", &s.rgb, "rgb.jxl[lossless]", &[])).unwrap();
    for (w, h) in [(1 << 30, 1 << 30), (1 << 20, 1 << 20), (20_000, 20_000)] {
        // The rest of a real file after the forged header: whatever a decoder would read next.
        let forged = codestream_declaring(w, h, &real[12..]);
        let limits = Limits::default();
        match tiler_wasm::probe(&forged, &limits) {
            Err(Error::Limits(m)) => println!("{w}×{h}: {m}"),
            other => panic!("{w}×{h}: {:?}", other.map(|m| (m.width, m.height))),
        }
        assert!(matches!(
            Tiler::open(&forged, &png_options()),
            Err(Error::Limits(_))
        ));
    }
    // Within the limits the same forged header is read as declared, then fails to decode.
    let forged = codestream_declaring(300, 200, &real[12..]);
    let meta = tiler_wasm::probe(&forged, &Limits::default()).expect("header reads");
    assert_eq!((meta.width, meta.height), (300, 200));
    if let Err(e) = Tiler::open(&forged, &png_options()) {
        assert!(!matches!(e, Error::Panic), "{e}");
    }
}

#[test]
fn damaged_jxl_gives_typed_errors_never_a_panic() {
    let s = sources("jxl-damaged");
    let files = [
        vips_to(&s.dir, "copy", &s.rgb, "rgb.jxl[lossless]", &[]),
        vips_to(&s.dir, "copy", &s.rgba, "lossy.jxl[Q=80]", &[]),
    ];
    let limits = Limits {
        max_pixels: 4_000_000,
        max_dimension: 1 << 16,
        max_alloc: 256 << 20,
    };
    let options = Options {
        limits,
        ..png_options()
    };
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut record = |what: &str, result: Result<(), Error>| {
        let key = match result {
            Ok(()) => "tiles".to_string(),
            Err(Error::Panic) => panic!("{what}: a decoder panicked"),
            Err(e) => e.code().to_string(),
        };
        *outcomes.entry(key).or_default() += 1;
    };
    let tile_all = |bytes: &[u8]| -> Result<(), Error> {
        let mut tiler = Tiler::open(bytes, &options)?;
        let top = tiler.layout().max_level();
        tiler.tile(top, 0, 0)?;
        tiler.tile(0, 0, 0)?;
        Ok(())
    };
    for file in &files {
        let good = std::fs::read(file).unwrap();
        // Truncated anywhere: a file cut short never becomes a pyramid.
        for cut in (0..good.len()).step_by(97).chain([good.len() - 1]) {
            let result = tile_all(&good[..cut]);
            assert!(result.is_err(), "{} cut at {cut} tiled", file.display());
            record("truncated", result);
        }
        // Bit flips past the signature: a typed error or a pyramid, never a panic.
        let mut rng = Rng::new(99);
        for _ in 0..300 {
            let mut bad = good.clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = 2 + (rng.next() as usize) % (bad.len() - 2);
                bad[at] ^= 1 << (rng.next() % 8);
            }
            record("bit flip", tile_all(&bad));
        }
    }
    println!("damaged JPEG XL: {outcomes:?}");
    assert!(outcomes.contains_key("decode"));
}
