//! Streamed TIFF/BigTIFF sources: pyramids against `vips dzsave` on sources `vips tiffsave`
//! writes at test time (tiled BigTIFF with LZW, Deflate, PackBits and JPEG; striped; 16-bit;
//! grey; alpha), and tiles byte for byte those of the whole-image path.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tiler_wasm::{Error, Options, TiffSource, TileAddr, TileFormat, Tiler};

/// Every tile of `path` streamed with `options`, by address, with the `.dzi`.
fn streamed(path: &Path, options: &Options) -> (String, BTreeMap<TileAddr, Vec<u8>>) {
    let file = BufReader::new(File::open(path).expect("source"));
    let source = TiffSource::open(file, &options.limits).expect("opens for streaming");
    let tiler = source.tiler(options).expect("fits");
    let dzi = tiler.dzi();
    let tiles = Mutex::new(BTreeMap::new());
    source
        .stream_into(tiler, 2, &|addr, bytes| -> Result<(), Error> {
            assert!(tiles.lock().unwrap().insert(addr, bytes).is_none());
            Ok(())
        })
        .expect("streams");
    (dzi.to_xml(), tiles.into_inner().unwrap())
}

/// A PNG tile as 8-bit RGBA; 16-bit tiles (vips keeps 16 bits in PNG tiles) keep the high
/// byte, as `vips dzsave` casts 16-bit sources for 8-bit tile formats.
fn decode_high_byte(bytes: &[u8]) -> Vec<u8> {
    image::load_from_memory(bytes)
        .expect("tile decodes")
        .into_rgba16()
        .into_raw()
        .iter()
        .map(|v| (v >> 8) as u8)
        .collect()
}

struct Sources {
    dir: PathBuf,
    rgb: PathBuf,
    rgba: PathBuf,
}

fn sources(name: &str, w: u32, h: u32) -> Sources {
    let dir = scratch(name);
    // Strongly coloured, so that a colour conversion gone wrong (YCbCr, channel order) shows.
    let pixels: Vec<u8> = photo_like(w, h, 23)
        .chunks_exact(3)
        .enumerate()
        .flat_map(|(i, p)| {
            let (x, y) = (i as u32 % w, i as u32 / w);
            [p[0], 255 - p[1] / 2, ((x / 3 + y / 5) % 256) as u8]
        })
        .collect();
    let rgb = dir.join("rgb.png");
    write_png(&rgb, w, h, 3, &pixels);
    let rgba = dir.join("rgba.png");
    let with_alpha: Vec<u8> = pixels
        .chunks_exact(3)
        .enumerate()
        .flat_map(|(i, p)| {
            let (x, y) = (i as u32 % w, i as u32 / w);
            let a = if x < 100 && y < 100 {
                0
            } else {
                ((x + 2 * y) % 256) as u8
            };
            [p[0], p[1], p[2], a]
        })
        .collect();
    write_png(&rgba, w, h, 4, &with_alpha);
    Sources { dir, rgb, rgba }
}

/// `vips tiffsave` of `src` (through `colourspace` first when given) into `name` with `args`.
fn tiff(s: &Sources, src: &Path, colourspace: Option<&str>, name: &str, args: &[&str]) -> PathBuf {
    let input = match colourspace {
        Some(space) => {
            let converted = s.dir.join(format!("{name}.v"));
            vips(&[
                "colourspace",
                src.to_str().unwrap(),
                converted.to_str().unwrap(),
                space,
            ]);
            converted
        }
        None => src.to_path_buf(),
    };
    let out = s.dir.join(name);
    let mut all = vec!["tiffsave", input.to_str().unwrap(), out.to_str().unwrap()];
    all.extend(args);
    vips(&all);
    out
}

const TILED_BIG: [&str; 6] = [
    "--tile",
    "--tile-width",
    "256",
    "--tile-height",
    "128",
    "--bigtiff",
];

fn with(base: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    base.iter().chain(more).copied().collect()
}

/// The variants, whether they are lossless (tiles must equal vips's exactly) and whether they
/// have alpha.
fn variants(s: &Sources) -> Vec<(&'static str, PathBuf, bool, bool)> {
    let lzw = with(&TILED_BIG, &["--compression", "lzw"]);
    let deflate = with(&TILED_BIG, &["--compression", "deflate"]);
    let packbits = with(&TILED_BIG, &["--compression", "packbits"]);
    // At Q 75 vips writes subsampled YCbCr JPEG tiles; from Q 90 on, RGB ones.
    let jpeg = with(&TILED_BIG, &["--compression", "jpeg"]);
    let jpeg_rgb = with(&TILED_BIG, &["--compression", "jpeg", "--Q", "95"]);
    vec![
        (
            "tiled-lzw",
            tiff(s, &s.rgb, None, "lzw.tif", &lzw),
            true,
            false,
        ),
        (
            "tiled-deflate",
            tiff(s, &s.rgb, None, "deflate.tif", &deflate),
            true,
            false,
        ),
        (
            "tiled-packbits",
            tiff(s, &s.rgb, None, "packbits.tif", &packbits),
            true,
            false,
        ),
        (
            "tiled-jpeg",
            tiff(s, &s.rgb, None, "jpeg.tif", &jpeg),
            false,
            false,
        ),
        (
            "tiled-jpeg-rgb",
            tiff(s, &s.rgb, None, "jpeg-rgb.tif", &jpeg_rgb),
            false,
            false,
        ),
        (
            "striped-lzw",
            tiff(s, &s.rgb, None, "striped.tif", &["--compression", "lzw"]),
            true,
            false,
        ),
        (
            "tiled-16bit",
            tiff(s, &s.rgb, Some("rgb16"), "rgb16.tif", &lzw),
            true,
            false,
        ),
        (
            "tiled-grey",
            tiff(s, &s.rgb, Some("b-w"), "grey.tif", &deflate),
            true,
            false,
        ),
        (
            "tiled-grey16",
            tiff(s, &s.rgb, Some("grey16"), "grey16.tif", &deflate),
            true,
            false,
        ),
        (
            "tiled-rgba",
            tiff(s, &s.rgba, None, "rgba.tif", &lzw),
            true,
            true,
        ),
    ]
}

fn png_options() -> Options {
    Options {
        format: Some(TileFormat::Png),
        ..Options::default()
    }
}

#[test]
fn streamed_tiffs_match_vips_dzsave() {
    let s = sources("tiff-golden", 1700, 1100);
    for (name, path, lossless, alpha) in variants(&s) {
        let base = s.dir.join(format!("vips-{name}"));
        vips(&[
            "dzsave",
            path.to_str().unwrap(),
            base.to_str().unwrap(),
            "--suffix",
            ".png",
        ]);
        let (dzi, ours) = streamed(&path, &png_options());
        let vips_dzi = std::fs::read_to_string(base.with_extension("dzi")).unwrap();
        assert_eq!(dzi, vips_dzi, "{name}: .dzi differs from vips's");
        let theirs = read_vips_tiles(&base, "png");
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{name}: tile grid differs"
        );
        let mut per_level: BTreeMap<u32, (f64, u64)> = BTreeMap::new();
        for (addr, bytes) in &ours {
            let (w, h, ours_px) = decode_rgba(bytes);
            let (vw, vh, _) = decode_rgba(&theirs[addr]);
            assert_eq!((w, h), (vw, vh), "{name}: tile size differs at {addr:?}");
            let theirs_px = decode_high_byte(&theirs[addr]);
            // 16-bit sources: vips shrinks in 16 bits and casts each tile, we cast first, so
            // only the full-resolution level is exact (as in the format tests, ≥ 45 dB below).
            let top = addr.level == *ours.keys().map(|a| &a.level).max().unwrap();
            if lossless && (top || !name.contains("16")) {
                assert!(
                    ours_px == theirs_px,
                    "{name}: pixels differ from vips's at {addr:?}"
                );
            }
            let (sum, n) = squared_error(&ours_px, &theirs_px, alpha);
            let e = per_level.entry(addr.level).or_default();
            e.0 += sum;
            e.1 += n;
        }
        for (level, (sum, n)) in per_level {
            let db = psnr(sum, n);
            // The lossy threshold of the format tests: a JPEG-compressed source decodes with
            // zune-jpeg here and libjpeg in vips.
            assert!(db >= 40.0, "{name}: level {level} PSNR {db:.2} dB");
            if level % 4 == 0 || db.is_finite() {
                println!("{name}: level {level:2} PSNR vs vips {db:.2} dB");
            }
        }
    }
}

#[test]
fn streamed_tiles_are_the_whole_image_paths_byte_for_byte() {
    let s = sources("tiff-identity", 900, 700);
    for (name, path, _, _) in variants(&s) {
        if name.starts_with("tiled-jpeg") {
            continue; // the `image` crate's TIFF decoder does not read JPEG-compressed YCbCr
        }
        for format in [TileFormat::Jpeg, TileFormat::Png] {
            let options = Options {
                format: Some(format),
                ..Options::default()
            };
            let (dzi, streamed) = streamed(&path, &options);
            let bytes = std::fs::read(&path).unwrap();
            let mut tiler = Tiler::open(&bytes, &options).expect("whole image opens");
            assert_eq!(dzi, tiler.dzi().to_xml(), "{name}");
            let whole = walk_all(&mut tiler);
            assert_eq!(whole.len(), streamed.len(), "{name}");
            for (addr, tile) in &whole {
                assert!(
                    tile == &streamed[addr],
                    "{name} {format}: tile {addr:?} differs from the whole-image path's"
                );
            }
        }
    }
}

#[test]
fn unstreamable_and_oversized_tiffs_are_refused_with_typed_errors() {
    let s = sources("tiff-refused", 300, 200);
    // CMYK: refused as unsupported, the cue to fall back to the whole image.
    let cmyk = s.dir.join("cmyk.tif");
    vips(&[
        "icc_export",
        s.rgb.to_str().unwrap(),
        cmyk.to_str().unwrap(),
        "--output-profile",
        "cmyk",
    ]);
    let file = BufReader::new(File::open(&cmyk).unwrap());
    let err = TiffSource::open(file, &Options::default().limits).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");

    // A single 200-row strip whose rows need more memory than allowed.
    let one_strip = tiff(&s, &s.rgb, None, "strip.tif", &[]);
    let mut options = Options::default();
    options.limits.max_alloc = 100_000;
    let file = BufReader::new(File::open(&one_strip).unwrap());
    let source = TiffSource::open(file, &options.limits).expect("opens");
    let err = source.tiler(&options).unwrap_err();
    assert!(matches!(err, Error::Limits(_)), "{err}");

    // Truncated: the last chunks are missing.
    let whole = std::fs::read(tiff(&s, &s.rgb, None, "cut.tif", &TILED_BIG)).unwrap();
    let cut = s.dir.join("cut-short.tif");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let file = BufReader::new(File::open(&cut).unwrap());
    let outcome = TiffSource::open(file, &Options::default().limits).and_then(|source| {
        let tiler = source.tiler(&Options::default())?;
        source.stream_into(tiler, 1, &|_, _| -> Result<(), Error> { Ok(()) })
    });
    assert!(matches!(outcome, Err(Error::Decode(_))), "{outcome:?}");
}

/// The first error of the tile sink ends the stream with that error, on one thread or several,
/// without encoding the rest of the pyramid.
#[test]
fn a_failing_sink_stops_the_stream_with_its_error() {
    let s = sources("tiff-sink-error", 1200, 900);
    let path = tiff(
        &s,
        &s.rgb,
        None,
        "lzw.tif",
        &with(&TILED_BIG, &["--compression", "lzw"]),
    );
    for threads in [1, 3] {
        let file = BufReader::new(File::open(&path).unwrap());
        let source = TiffSource::open(file, &Options::default().limits).unwrap();
        let tiler = source.tiler(&Options::default()).unwrap();
        let total = tiler.layout().tile_count();
        let calls = std::sync::atomic::AtomicU64::new(0);
        let outcome = source.stream_into(tiler, threads, &|_, _| -> Result<(), Error> {
            if calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 5 {
                return Err(Error::Encode("disk full".into()));
            }
            Ok(())
        });
        assert!(
            matches!(&outcome, Err(Error::Encode(m)) if m == "disk full"),
            "{threads} threads: {outcome:?}"
        );
        let made = calls.into_inner();
        assert!(
            made < total / 2,
            "{threads} threads: {made} of {total} tiles made after the error"
        );
    }
}

/// Damaged TIFFs (bytes overwritten anywhere, header and offsets included) end in an error or a
/// pyramid, never in a panic or a hang.
#[test]
fn damaged_tiffs_never_panic() {
    let s = sources("tiff-damaged", 300, 200);
    let variants = [
        tiff(
            &s,
            &s.rgb,
            None,
            "lzw.tif",
            &with(&TILED_BIG, &["--compression", "lzw"]),
        ),
        tiff(
            &s,
            &s.rgb,
            None,
            "jpeg.tif",
            &with(&TILED_BIG, &["--compression", "jpeg"]),
        ),
        tiff(
            &s,
            &s.rgb,
            Some("rgb16"),
            "striped16.tif",
            &["--compression", "deflate"],
        ),
    ];
    let mut rng = Rng::new(99);
    for path in variants {
        let original = std::fs::read(&path).unwrap();
        for round in 0..150 {
            let mut bytes = original.clone();
            let hits = 1 + rng.next() as usize % 8;
            for _ in 0..hits {
                // Half the hits land in the first 512 bytes or the last 512, where IFDs live.
                let at = match rng.next() % 4 {
                    0 => rng.next() as usize % 512.min(bytes.len()),
                    1 => bytes.len() - 1 - rng.next() as usize % 512.min(bytes.len()),
                    _ => rng.next() as usize % bytes.len(),
                };
                bytes[at] = rng.next() as u8;
            }
            let outcome = TiffSource::open(std::io::Cursor::new(bytes), &Options::default().limits)
                .and_then(|source| {
                    let tiler = source.tiler(&Options::default())?;
                    source.stream_into(tiler, 2, &|_, _| -> Result<(), Error> { Ok(()) })
                });
            assert!(
                !matches!(outcome, Err(Error::Panic)),
                "{}: round {round} panicked",
                path.display()
            );
        }
    }
}
