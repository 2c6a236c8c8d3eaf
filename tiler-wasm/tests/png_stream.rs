//! Streamed PNG sources: tiles byte for byte those of the whole-image path for every PNG kind
//! (RGB, RGBA, grey, grey + alpha, palette with and without tRNS, low and 16-bit depths, an ICC
//! profile), pyramids against `vips dzsave` on PNGs `vips pngsave` writes at test time, the
//! kinds left to the whole-image path, and damaged files.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::Mutex;
use tiler_wasm::{Error, Options, PngSource, Streamed, TileAddr, TileFormat, Tiler, Walk};

type Tiles = BTreeMap<TileAddr, Vec<u8>>;

/// The `.dzi` and every tile of `bytes` through [`Walk::streamed`], which must stream it.
fn streamed(bytes: &[u8], options: &Options, threads: usize) -> (String, Tiles) {
    let walk = Walk::streamed(Cursor::new(bytes), options)
        .expect("opens")
        .expect("streams");
    assert!(
        matches!(&walk, Walk::Streamed(s) if matches!(s.0, Streamed::Png(_))),
        "not streamed as a PNG"
    );
    let dzi = walk.dzi().to_xml();
    let tiles = Mutex::new(BTreeMap::new());
    walk.run(threads, |addr, bytes| -> Result<(), Error> {
        assert!(tiles.lock().unwrap().insert(addr, bytes).is_none());
        Ok(())
    })
    .expect("streams");
    (dzi, tiles.into_inner().unwrap())
}

/// A PNG of `w`×`h` from `samples` (packed, big-endian when 16-bit) written by the `png` crate.
fn encode(
    w: u32,
    h: u32,
    colour: png::ColorType,
    depth: png::BitDepth,
    samples: &[u8],
    extra: impl FnOnce(&mut png::Info<'static>),
) -> Vec<u8> {
    let mut info = png::Info::with_size(w, h);
    info.color_type = colour;
    info.bit_depth = depth;
    extra(&mut info);
    let mut out = Vec::new();
    let mut writer = png::Encoder::with_info(&mut out, info)
        .unwrap()
        .write_header()
        .unwrap();
    writer.write_image_data(samples).unwrap();
    writer.finish().unwrap();
    out
}

/// Packed samples of `w`×`h` pixels of `channels` samples of `bytes` bytes each: gradients and
/// a checker, with every alpha value (including 0 and 255) when there is alpha.
fn pattern(w: u32, h: u32, channels: usize, bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels {
                let v: u32 = match c {
                    0 => x * 7 + y,
                    1 => y * 5 + (x ^ y),
                    2 => (x / 9 + y / 13) * 37,
                    _ => x + 3 * y,
                } % 256;
                out.push(v as u8);
                if bytes == 2 {
                    out.push(((x * 31 + y * 17 + c as u32 * 59) % 256) as u8);
                }
            }
        }
    }
    out
}

/// Every PNG kind, by name.
fn kinds(w: u32, h: u32) -> Vec<(&'static str, Vec<u8>)> {
    use png::{BitDepth as D, ColorType as C};
    let none = |_: &mut png::Info<'static>| {};
    let palette: Vec<u8> = (0..256u32)
        .flat_map(|i| [i as u8, (255 - i) as u8, (i * 3 % 256) as u8])
        .collect();
    let indices: Vec<u8> = pattern(w, h, 1, 1);
    let nibbles: Vec<u8> = (0..h)
        .flat_map(|y| {
            (0..w.div_ceil(2)).map(move |x| (((x + y) % 16) << 4 | ((x * 3 + y) % 16)) as u8)
        })
        .collect();
    let opaque: Vec<u8> = pattern(w, h, 4, 1)
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    let p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    vec![
        (
            "rgb8",
            encode(w, h, C::Rgb, D::Eight, &pattern(w, h, 3, 1), none),
        ),
        (
            "rgba8",
            encode(w, h, C::Rgba, D::Eight, &pattern(w, h, 4, 1), none),
        ),
        (
            "rgba8-opaque",
            encode(w, h, C::Rgba, D::Eight, &opaque, none),
        ),
        (
            "grey8",
            encode(w, h, C::Grayscale, D::Eight, &pattern(w, h, 1, 1), none),
        ),
        (
            "grey-alpha8",
            encode(
                w,
                h,
                C::GrayscaleAlpha,
                D::Eight,
                &pattern(w, h, 2, 1),
                none,
            ),
        ),
        ("grey4", encode(w, h, C::Grayscale, D::Four, &nibbles, none)),
        (
            "rgb16",
            encode(w, h, C::Rgb, D::Sixteen, &pattern(w, h, 3, 2), none),
        ),
        (
            "rgba16",
            encode(w, h, C::Rgba, D::Sixteen, &pattern(w, h, 4, 2), none),
        ),
        (
            "grey16",
            encode(w, h, C::Grayscale, D::Sixteen, &pattern(w, h, 1, 2), none),
        ),
        (
            "grey-alpha16",
            encode(
                w,
                h,
                C::GrayscaleAlpha,
                D::Sixteen,
                &pattern(w, h, 2, 2),
                none,
            ),
        ),
        (
            "palette",
            encode(w, h, C::Indexed, D::Eight, &indices, |i| {
                i.palette = Some(Cow::Owned(palette.clone()));
            }),
        ),
        (
            "palette-trns",
            encode(w, h, C::Indexed, D::Eight, &indices, |i| {
                i.palette = Some(Cow::Owned(palette.clone()));
                i.trns = Some(Cow::Owned(
                    (0..200u32).map(|v| (v * 5 % 256) as u8).collect(),
                ));
            }),
        ),
        (
            "palette4",
            encode(w, h, C::Indexed, D::Four, &nibbles, |i| {
                i.palette = Some(Cow::Owned(palette[..48].to_vec()));
            }),
        ),
        (
            "rgb8-trns",
            encode(w, h, C::Rgb, D::Eight, &pattern(w, h, 3, 1), |i| {
                i.trns = Some(Cow::Owned(vec![0, 7, 0, 8, 0, 1]));
            }),
        ),
        (
            "grey8-trns",
            encode(w, h, C::Grayscale, D::Eight, &pattern(w, h, 1, 1), |i| {
                i.trns = Some(Cow::Owned(vec![0, 14]));
            }),
        ),
        (
            "rgb8-display-p3",
            encode(w, h, C::Rgb, D::Eight, &pattern(w, h, 3, 1), |i| {
                i.icc_profile = Some(Cow::Owned(p3));
            }),
        ),
    ]
}

#[test]
fn streamed_pngs_are_the_whole_image_paths_byte_for_byte() {
    // Neither side a multiple of the 64-row bands or the 254-pixel tiles.
    let (w, h) = (601, 389);
    for (name, bytes) in kinds(w, h) {
        for (format, threads) in [(None, 2), (Some(TileFormat::Png), 1)] {
            let options = Options {
                format,
                ..Options::default()
            };
            let (dzi, streamed) = streamed(&bytes, &options, threads);
            let mut tiler = Tiler::open(&bytes, &options).expect("whole image opens");
            assert_eq!(dzi, tiler.dzi().to_xml(), "{name}");
            let whole = walk_all(&mut tiler);
            assert_eq!(whole.len(), streamed.len(), "{name}");
            for (addr, tile) in &whole {
                assert!(
                    tile == &streamed[addr],
                    "{name} {format:?}: tile {addr:?} differs from the whole-image path's"
                );
            }
        }
    }
}

/// A PNG tile as 8-bit RGBA; 16-bit tiles (vips keeps 16 bits in PNG tiles) keep the high byte,
/// as `vips dzsave` casts 16-bit sources for 8-bit tile formats.
fn decode_high_byte(bytes: &[u8]) -> Vec<u8> {
    image::load_from_memory(bytes)
        .expect("tile decodes")
        .into_rgba16()
        .into_raw()
        .iter()
        .map(|v| (v >> 8) as u8)
        .collect()
}

/// `vips pngsave` of `src` into `name` with `args`.
fn pngsave(dir: &Path, src: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut all = vec!["pngsave", src.to_str().unwrap(), out.to_str().unwrap()];
    all.extend(args);
    vips(&all);
    out
}

#[test]
fn streamed_pngs_match_vips_dzsave() {
    let dir = scratch("png-golden");
    let (w, h) = (1300, 900);
    let rgb = dir.join("rgb.png");
    write_png(&rgb, w, h, 3, &photo_like(w, h, 41));
    let rgba = dir.join("rgba.png");
    let with_alpha: Vec<u8> = photo_like(w, h, 43)
        .chunks_exact(3)
        .enumerate()
        .flat_map(|(i, p)| {
            let (x, y) = (i as u32 % w, i as u32 / w);
            [
                p[0],
                p[1],
                p[2],
                if x < 90 { 0 } else { ((x + 2 * y) % 256) as u8 },
            ]
        })
        .collect();
    write_png(&rgba, w, h, 4, &with_alpha);
    let grey = dir.join("grey.v");
    vips(&[
        "colourspace",
        rgb.to_str().unwrap(),
        grey.to_str().unwrap(),
        "b-w",
    ]);
    // (name, source, alpha, whether every level is exact)
    let variants = [
        ("rgb", rgb.clone(), false, true),
        ("rgba", rgba, true, true),
        ("grey", pngsave(&dir, &grey, "grey.png", &[]), false, true),
        (
            "palette",
            pngsave(&dir, &rgb, "palette.png", &["--palette"]),
            false,
            true,
        ),
        // vips shrinks 16-bit sources in 16 bits and casts each tile, we cast first: only the
        // full-resolution level is exact (≥ 45 dB below, as in the format tests).
        (
            "rgb16",
            pngsave(&dir, &rgb, "rgb16.png", &["--bitdepth", "16"]),
            false,
            false,
        ),
    ];
    let options = Options {
        format: Some(TileFormat::Png),
        ..Options::default()
    };
    for (name, path, alpha, exact) in variants {
        let base = dir.join(format!("vips-{name}"));
        let args = [
            "dzsave",
            path.to_str().unwrap(),
            base.to_str().unwrap(),
            "--suffix",
            ".png",
        ];
        vips(&args);
        let (dzi, ours) = streamed(&std::fs::read(&path).unwrap(), &options, 2);
        let vips_dzi = std::fs::read_to_string(base.with_extension("dzi")).unwrap();
        assert_eq!(dzi, vips_dzi, "{name}: .dzi differs from vips's");
        let theirs = read_vips_tiles(&base, "png");
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{name}: tile grid differs"
        );
        let top = ours.keys().map(|a| a.level).max().unwrap();
        let mut per_level: BTreeMap<u32, (f64, u64)> = BTreeMap::new();
        for (addr, bytes) in &ours {
            let (_, _, ours_px) = decode_rgba(bytes);
            let theirs_px = decode_high_byte(&theirs[addr]);
            if exact || addr.level == top {
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
            assert!(db >= 45.0, "{name}: level {level} PSNR {db:.2} dB");
        }
    }
}

/// A PNG chunk: length, type, data, CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut body = kind.to_vec();
    body.extend(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend(&body);
    out.extend(crc32(&body).to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Interlaced, animated and EXIF-rotated PNGs are not streamed: [`Walk::streamed`] leaves them to
/// the whole-image path, which rotates the rotated one wherever its eXIf chunk is.
#[test]
fn interlaced_animated_and_rotated_pngs_are_left_to_the_whole_image_path() {
    let dir = scratch("png-unstreamed");
    let (w, h) = (300, 200);
    let plain = encode(
        w,
        h,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &pattern(w, h, 3, 1),
        |_| {},
    );
    let src = dir.join("plain.png");
    std::fs::write(&src, &plain).unwrap();
    let interlaced = std::fs::read(pngsave(&dir, &src, "adam7.png", &["--interlace"])).unwrap();

    let mut animated = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut animated, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_animated(2, 0).unwrap();
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&pattern(w, h, 3, 1)).unwrap();
        writer
            .write_image_data(&vec![9; (w * h * 3) as usize])
            .unwrap();
        writer.finish().unwrap();
    }

    let exif = exif_tiff(vec![(0x0112, Value::Short(6))], vec![], vec![]);
    let iend = plain.len() - 12;
    let ihdr_end = 8 + 25;
    let exif_first = [
        &plain[..ihdr_end],
        &chunk(b"eXIf", &exif),
        &plain[ihdr_end..],
    ]
    .concat();
    let exif_last = [&plain[..iend], &chunk(b"eXIf", &exif), &plain[iend..]].concat();

    let options = Options::default();
    for (name, bytes) in [
        ("interlaced", &interlaced),
        ("animated", &animated),
        ("eXIf before the pixels", &exif_first),
        ("eXIf after the pixels", &exif_last),
    ] {
        match PngSource::open(Cursor::new(bytes), &options.limits) {
            Err(Error::Unsupported(_)) => {}
            other => panic!("{name}: {other:?}"),
        }
        assert!(
            Walk::streamed(Cursor::new(bytes), &options)
                .unwrap()
                .is_none(),
            "{name} is streamed"
        );
        let tiler = Tiler::open(bytes, &options).expect("whole image opens");
        let upright = if name.starts_with("eXIf") {
            (h, w)
        } else {
            (w, h)
        };
        assert_eq!(
            (tiler.layout().width(), tiler.layout().height()),
            upright,
            "{name}"
        );
    }
    // An orientation of 1 changes nothing: that PNG streams.
    let exif = exif_tiff(vec![(0x0112, Value::Short(1))], vec![], vec![]);
    let upright = [&plain[..iend], &chunk(b"eXIf", &exif), &plain[iend..]].concat();
    streamed(&upright, &options, 1);
}

/// Damaged, truncated, oversized and too-wide PNGs end in typed errors, never a panic or a
/// hang; a PNG that streams to an error fails the whole-image path too.
#[test]
fn damaged_and_oversized_pngs_give_typed_errors() {
    let (w, h) = (400, 300);
    let original = encode(
        w,
        h,
        png::ColorType::Rgba,
        png::BitDepth::Sixteen,
        &pattern(w, h, 4, 2),
        |_| {},
    );
    let options = Options::default();
    let stream = |bytes: &[u8], options: &Options| -> Result<(), Error> {
        let source = PngSource::open(Cursor::new(bytes), &options.limits)?;
        let tiler = source.tiler(options)?;
        source.stream_into(tiler, 2, &|_, _| -> Result<(), Error> { Ok(()) })
    };

    // Cut anywhere: in the header, in the pixels, before IEND.
    for cut in [
        20,
        40,
        original.len() / 3,
        original.len() - 30,
        original.len() - 12,
    ] {
        let outcome = stream(&original[..cut], &options);
        assert!(
            matches!(outcome, Err(Error::Decode(_))),
            "cut at {cut}: {outcome:?}"
        );
        assert!(
            Tiler::open(&original[..cut], &options).is_err(),
            "cut at {cut}"
        );
    }

    // A palette that is not whole entries, on which the `png` crate's expansion panics.
    let indexed = &kinds(w, h)
        .into_iter()
        .find(|(name, _)| *name == "palette4")
        .unwrap()
        .1;
    let at = indexed.windows(4).position(|c| c == b"PLTE").unwrap() - 4;
    let len = u32::from_be_bytes(indexed[at..at + 4].try_into().unwrap()) as usize;
    let mut palette = indexed[at + 8..at + 8 + len].to_vec();
    palette.push(7);
    let broken = [
        &indexed[..at],
        &chunk(b"PLTE", &palette),
        &indexed[at + 12 + len..],
    ]
    .concat();
    let outcome = stream(&broken, &options);
    assert!(matches!(outcome, Err(Error::Decode(_))), "{outcome:?}");
    let whole = Tiler::open(&broken, &options).map(|_| ());
    assert!(matches!(whole, Err(Error::Decode(_))), "{whole:?}");

    // A side past the largest allowed, and a width whose rows need more memory than allowed.
    let huge = png_header(2_000_000, 10);
    assert!(matches!(stream(&huge, &options), Err(Error::Limits(_))));
    let mut narrow = options;
    narrow.limits.max_alloc = 4 << 20;
    let wide = png_header(200_000, 10);
    match PngSource::open(Cursor::new(&wide), &narrow.limits).and_then(|s| s.tiler(&narrow)) {
        Err(Error::Limits(_)) => {}
        other => panic!("wide: {other:?}"),
    }

    // Bytes overwritten anywhere; every damaged file that opens is also tried whole.
    let mut rng = Rng::new(7);
    for round in 0..300 {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.next() % 6 {
            let at = match rng.next() % 3 {
                0 => rng.next() as usize % 128,
                _ => rng.next() as usize % bytes.len(),
            };
            bytes[at] = rng.next() as u8;
        }
        let outcome = stream(&bytes, &options);
        assert!(
            !matches!(outcome, Err(Error::Panic)),
            "round {round} panicked"
        );
        if outcome.is_err() && !matches!(outcome, Err(Error::Unsupported(_))) {
            assert!(
                Tiler::open(&bytes, &options).is_err(),
                "round {round}: streaming failed ({outcome:?}) but the whole image opens"
            );
        }
    }
}

/// A PNG whose IHDR declares `w`×`h` RGB, followed by an empty IDAT.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    [
        b"\x89PNG\r\n\x1a\n".to_vec(),
        chunk(b"IHDR", &ihdr),
        chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]),
        chunk(b"IEND", &[]),
    ]
    .concat()
}
