//! The hostile-input corpus, generated (nothing binary is committed): truncated and
//! bit-flipped JPEG, PNG, WebP and TIFF, empty and one-byte files, text and HTML,
//! impossible declared sizes, looping and nested EXIF IFDs, broken ICC profiles, and
//! 1×1 and 1×65000 images, each with what must come of it.
//!
//! Reusable: the native tests run every case through the tiler; `cargo run --release
//! -p tiler-wasm --example hostile_corpus -- DIR` writes the files and a
//! `corpus.json` manifest for the end-to-end tests (the worker in Chromium) and for
//! tile-store's server-side tiling.

use image::{ExtendedColorType, ImageEncoder};

/// What the tiler must make of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A typed error with one of these codes.
    Error(&'static [&'static str]),
    /// Opens and tiles (damaged metadata is ignored, as vips ignores it).
    Tiles,
    /// Either a typed error or a pyramid: which depends on where the damage fell.
    Either,
}

/// One hostile input.
#[derive(Debug, Clone)]
pub struct Case {
    /// File name, with the extension a browser or server would see.
    pub name: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// What must come of it.
    pub expect: Expect,
    /// In the small set the end-to-end tests open in Chromium.
    pub e2e: bool,
}

const DECODE: &[&str] = &["decode"];
const DECODE_OR_UNKNOWN: &[&str] = &["decode", "unknown_format"];
const UNKNOWN: &[&str] = &["unknown_format"];
/// A format recognised by its signature and refused by name (`Error::UnsupportedFormat`).
const REFUSED: &[&str] = &["unsupported"];
const LIMITS: &[&str] = &["limits"];
const LIMITS_OR_DECODE: &[&str] = &["limits", "decode"];

/// A smooth RGB test pattern.
pub fn pattern(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            out.extend([
                (x * 255 / width.max(1)) as u8,
                (y * 255 / height.max(1)) as u8,
                ((x + y) % 256) as u8,
            ]);
        }
    }
    out
}

/// `pixels` (RGB) as a PNG.
pub fn png(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(pixels, width, height, ExtendedColorType::Rgb8)
        .expect("PNG encodes");
    out
}

/// `pixels` (RGB) as a baseline JPEG.
pub fn jpeg(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .write_image(pixels, width, height, ExtendedColorType::Rgb8)
        .expect("JPEG encodes");
    out
}

/// `pixels` (RGB) as a lossless WebP.
pub fn webp(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(pixels, width, height, ExtendedColorType::Rgb8)
        .expect("WebP encodes");
    out
}

/// `pixels` (RGB) as an uncompressed TIFF.
pub fn tiff(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::tiff::TiffEncoder::new(&mut out)
        .write_image(pixels, width, height, ExtendedColorType::Rgb8)
        .expect("TIFF encodes");
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend(data);
    out.extend(&body);
    out.extend(crc32(&body).to_be_bytes());
}

/// A valid PNG signature and IHDR declaring `w`×`h` RGB, then a tiny IDAT and IEND.
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// `png` with a chunk inserted right after IHDR.
fn png_with_chunk(png: &[u8], kind: &[u8], data: &[u8]) -> Vec<u8> {
    let ihdr_end = 8 + 8 + 13 + 4;
    let mut out = png[..ihdr_end].to_vec();
    png_chunk(&mut out, kind, data);
    out.extend(&png[ihdr_end..]);
    out
}

/// `jpeg` with its frame header's size replaced.
pub fn jpeg_declaring(jpeg: &[u8], w: u16, h: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let mut i = 2;
    while i + 9 < out.len() {
        let marker = out[i + 1];
        let len = usize::from(u16::from_be_bytes([out[i + 2], out[i + 3]]));
        if matches!(marker, 0xC0..=0xC2) {
            out[i + 5..i + 7].copy_from_slice(&h.to_be_bytes());
            out[i + 7..i + 9].copy_from_slice(&w.to_be_bytes());
            return out;
        }
        i += 2 + len;
    }
    panic!("no JPEG frame header");
}

/// `jpeg` with an APPn segment (`marker`, e.g. 0xE1) holding `payload` after SOI.
fn jpeg_with_segment(jpeg: &[u8], marker: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len() + 2).expect("segment fits");
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, marker]);
    out.extend(len.to_be_bytes());
    out.extend(payload);
    out.extend(&jpeg[2..]);
    out
}

fn exif_segment(tiff: &[u8]) -> Vec<u8> {
    let mut p = b"Exif\0\0".to_vec();
    p.extend(tiff);
    p
}

/// A little-endian TIFF header followed by IFDs built by `ifds(offset_of_first)`.
fn le(v: u32) -> [u8; 4] {
    v.to_le_bytes()
}

fn ifd_entry(tag: u16, kind: u16, count: u32, value: u32) -> Vec<u8> {
    let mut e = tag.to_le_bytes().to_vec();
    e.extend(kind.to_le_bytes());
    e.extend(count.to_le_bytes());
    e.extend(value.to_le_bytes());
    e
}

/// EXIF whose IFD0 names itself as the next IFD: a loop.
fn exif_ifd_loop() -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend(le(8));
    t.extend(1u16.to_le_bytes());
    t.extend(ifd_entry(0x0112, 3, 1, 6));
    t.extend(le(8)); // next IFD: itself
    t
}

/// EXIF with a chain of `n` IFDs, each linking to the next.
fn exif_ifd_chain(n: u32) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend(le(8));
    let size = 2 + 12 + 4;
    for i in 0..n {
        let at = 8 + i * size;
        t.extend(1u16.to_le_bytes());
        t.extend(ifd_entry(0x010F, 2, 4, u32::from_le_bytes(*b"Cam\0")));
        t.extend(le(if i + 1 < n { at + size } else { 0 }));
    }
    t
}

/// EXIF whose Exif-IFD pointer points back at IFD0, and whose Exif IFD (IFD0
/// again) points at itself: sub-IFD cycles.
fn exif_sub_ifd_cycle() -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend(le(8));
    t.extend(3u16.to_le_bytes());
    t.extend(ifd_entry(0x0112, 3, 1, 1));
    t.extend(ifd_entry(0x8769, 4, 1, 8)); // Exif IFD = IFD0
    t.extend(ifd_entry(0x8825, 4, 1, 8)); // GPS IFD = IFD0
    t.extend(le(0));
    t
}

/// EXIF whose entries claim huge counts and offsets past the end.
fn exif_huge_counts() -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend(le(8));
    t.extend(4u16.to_le_bytes());
    t.extend(ifd_entry(0x010F, 2, u32::MAX, 0xFFFF_FFF0));
    t.extend(ifd_entry(0x0112, 3, 0x4000_0000, 16));
    t.extend(ifd_entry(0x829A, 5, 0x1000_0000, 8));
    t.extend(ifd_entry(0x8769, 4, 1, 0xFFFF_FF00));
    t.extend(le(0xFFFF_0000));
    t
}

/// An IFD claiming 65535 entries in a few bytes.
fn exif_entry_count_overflow() -> Vec<u8> {
    let mut t = b"MM\0*".to_vec();
    t.extend(8u32.to_be_bytes());
    t.extend(0xFFFFu16.to_be_bytes());
    t.extend([0u8; 30]);
    t
}

/// An ICC profile header (128 bytes) for an RGB display profile of `declared` bytes
/// with `tags` tag entries following.
fn icc_header(declared: u32, tag_count: u32, tags: &[(u32, u32, u32)]) -> Vec<u8> {
    let mut p = vec![0u8; 128];
    p[0..4].copy_from_slice(&declared.to_be_bytes());
    p[4..8].copy_from_slice(b"lcms");
    p[8..12].copy_from_slice(&[4, 0x30, 0, 0]);
    p[12..16].copy_from_slice(b"mntr");
    p[16..20].copy_from_slice(b"RGB ");
    p[20..24].copy_from_slice(b"XYZ ");
    p[36..40].copy_from_slice(b"acsp");
    p.extend(tag_count.to_be_bytes());
    for (sig, offset, size) in tags {
        p.extend(sig.to_be_bytes());
        p.extend(offset.to_be_bytes());
        p.extend(size.to_be_bytes());
    }
    p
}

fn icc_segment(seq: u8, total: u8, profile: &[u8]) -> Vec<u8> {
    let mut p = b"ICC_PROFILE\0".to_vec();
    p.extend([seq, total]);
    p.extend(profile);
    p
}

fn zlib_stored(data: &[u8]) -> Vec<u8> {
    // Stored (uncompressed) deflate blocks, so no compressor is needed.
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

/// Deterministic bit flips: `flips` bits of `bytes` past `skip`, chosen by `seed`.
pub fn bit_flipped(bytes: &[u8], skip: usize, flips: usize, seed: u64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut s = seed.max(1);
    for _ in 0..flips {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let span = out.len() - skip;
        let i = skip + (s as usize) % span;
        out[i] ^= 1 << ((s >> 32) % 8);
    }
    out
}

/// Every case.
pub fn corpus() -> Vec<Case> {
    let case = |name: &str, bytes: Vec<u8>, expect: Expect, e2e: bool| Case {
        name: name.to_owned(),
        bytes,
        expect,
        e2e,
    };
    let (w, h) = (64, 48);
    let pixels = pattern(w, h);
    let sources = [
        ("jpg", jpeg(w, h, &pixels)),
        ("png", png(w, h, &pixels)),
        ("webp", webp(w, h, &pixels)),
        ("tif", tiff(w, h, &pixels)),
    ];
    let mut cases = vec![
        case("empty.jpg", Vec::new(), Expect::Error(UNKNOWN), true),
        case("one-byte.png", vec![0x89], Expect::Error(UNKNOWN), false),
        case("one-byte-ff.jpg", vec![0xFF], Expect::Error(UNKNOWN), false),
        case(
            "text.jpg",
            b"just some text\n".to_vec(),
            Expect::Error(UNKNOWN),
            false,
        ),
        case(
            "page.png",
            b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n".to_vec(),
            Expect::Error(UNKNOWN),
            true,
        ),
        case(
            "data.json.webp",
            br#"{"error":"AccessDenied"}"#.to_vec(),
            Expect::Error(UNKNOWN),
            false,
        ),
        case(
            "gif.jpg",
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
            Expect::Error(REFUSED),
            false,
        ),
        case(
            "riff-wave.webp",
            b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0".to_vec(),
            Expect::Error(UNKNOWN),
            false,
        ),
        // Declared sizes no one can tile, in a few hundred bytes.
        // Decoded whole, past the area limit; streamed (natively, where the area is not limited),
        // short of its first row.
        case(
            "declared-100000x100000.png",
            png_declaring(100_000, 100_000),
            Expect::Error(LIMITS_OR_DECODE),
            true,
        ),
        case(
            "declared-1x4294967295.png",
            png_declaring(1, u32::MAX),
            Expect::Error(LIMITS_OR_DECODE),
            false,
        ),
        case(
            "declared-0x0.png",
            png_declaring(0, 0),
            Expect::Error(LIMITS_OR_DECODE),
            false,
        ),
        case(
            "declared-65535x65535.jpg",
            jpeg_declaring(&sources[0].1, 65_535, 65_535),
            Expect::Error(LIMITS),
            false,
        ),
        case(
            "declared-0x0.jpg",
            jpeg_declaring(&sources[0].1, 0, 0),
            Expect::Error(LIMITS_OR_DECODE),
            false,
        ),
    ];

    // Truncated: inside the header, half way, and just before the end.
    for (ext, bytes) in &sources {
        let tail = if *ext == "png" { 13 } else { 1 };
        for (label, cut) in [
            ("header", 12),
            ("quarter", bytes.len() / 4),
            ("half", bytes.len() / 2),
            ("end", bytes.len() - tail),
        ] {
            let e2e = *ext == "jpg" && label == "half" || *ext == "webp" && label == "end";
            cases.push(case(
                &format!("truncated-{label}.{ext}"),
                bytes[..cut].to_vec(),
                Expect::Error(DECODE_OR_UNKNOWN),
                e2e,
            ));
        }
        // Bit flips past the signature: an error or a pyramid, never a panic.
        for seed in 1..=12u64 {
            cases.push(case(
                &format!("flipped-{seed}.{ext}"),
                bit_flipped(bytes, 8, 1 + (seed as usize % 6), seed * 7919),
                Expect::Either,
                false,
            ));
        }
    }
    // The TIFF magic and a garbage IFD offset.
    let mut tiff_bad_ifd = b"II*\0".to_vec();
    tiff_bad_ifd.extend(le(0xFFFF_FFF0));
    tiff_bad_ifd.extend([0u8; 64]);
    cases.push(case(
        "bad-ifd-offset.tif",
        tiff_bad_ifd,
        Expect::Error(DECODE),
        true,
    ));

    // EXIF: loops, long chains, cycles, impossible counts. The pixels are fine, so
    // the image tiles with the EXIF ignored (orientation 1).
    let jpg = &sources[0].1;
    for (name, tiff) in [
        ("exif-ifd-loop.jpg", exif_ifd_loop()),
        ("exif-ifd-chain-3000.jpg", exif_ifd_chain(3000)),
        ("exif-sub-ifd-cycle.jpg", exif_sub_ifd_cycle()),
        ("exif-huge-counts.jpg", exif_huge_counts()),
        ("exif-entry-count-overflow.jpg", exif_entry_count_overflow()),
        ("exif-truncated.jpg", exif_ifd_chain(3)[..30].to_vec()),
    ] {
        let bytes = jpeg_with_segment(jpg, 0xE1, &exif_segment(&tiff));
        cases.push(case(name, bytes, Expect::Tiles, false));
    }
    // The same loop as a PNG eXIf chunk.
    cases.push(case(
        "exif-ifd-loop.png",
        png_with_chunk(&sources[1].1, b"eXIf", &exif_ifd_loop()),
        Expect::Tiles,
        false,
    ));

    // ICC profiles: truncated, garbage tags, huge tag counts, bad chunk sequences,
    // a compressed iCCP that inflates to 16 MiB. Ignored, as vips ignores them.
    let tag = |s: &[u8; 4]| u32::from_be_bytes(*s);
    for (name, profile) in [
        (
            "icc-truncated.jpg",
            icc_header(10_000, 9, &[(tag(b"rXYZ"), 200, 20)]),
        ),
        ("icc-garbage-tags.jpg", {
            let mut p = icc_header(
                400,
                3,
                &[
                    (tag(b"rXYZ"), 0xFFFF_FFF0, 20),
                    (tag(b"rTRC"), 140, 0xFFFF_FFFF),
                    (tag(b"wtpt"), 100, 20),
                ],
            );
            p.resize(400, 0xAB);
            p
        }),
        ("icc-huge-tag-count.jpg", {
            let mut p = icc_header(300, u32::MAX, &[]);
            p.resize(300, 0);
            p
        }),
        ("icc-zero-size.jpg", icc_header(0, 0, &[])),
    ] {
        let bytes = jpeg_with_segment(jpg, 0xE2, &icc_segment(1, 1, &profile));
        cases.push(case(name, bytes, Expect::Tiles, false));
    }
    let profile = icc_header(600, 0, &[]);
    let bad_sequence = jpeg_with_segment(
        &jpeg_with_segment(jpg, 0xE2, &icc_segment(7, 2, &profile)),
        0xE2,
        &icc_segment(7, 2, &profile),
    );
    cases.push(case(
        "icc-bad-sequence.jpg",
        bad_sequence,
        Expect::Tiles,
        false,
    ));
    let mut iccp = b"bomb\0\0".to_vec();
    iccp.extend(zlib_stored(&vec![0u8; 16 << 20]));
    cases.push(case(
        "icc-16mib-iccp.png",
        png_with_chunk(&sources[1].1, b"iCCP", &iccp),
        Expect::Tiles,
        false,
    ));
    let mut iccp_garbage = b"junk\0\0".to_vec();
    iccp_garbage.extend([0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0x00, 0x13, 0x37]);
    cases.push(case(
        "icc-garbage-iccp.png",
        png_with_chunk(&sources[1].1, b"iCCP", &iccp_garbage),
        Expect::Tiles,
        false,
    ));

    // Degenerate but valid: these must tile.
    cases.push(case(
        "1x1.png",
        png(1, 1, &[200, 100, 50]),
        Expect::Tiles,
        false,
    ));
    cases.push(case(
        "1x1.jpg",
        jpeg(1, 1, &[200, 100, 50]),
        Expect::Tiles,
        false,
    ));
    cases.push(case(
        "1x65000.png",
        png(1, 65_000, &pattern(1, 65_000)),
        Expect::Tiles,
        true,
    ));
    cases.push(case(
        "65000x1.png",
        png(65_000, 1, &pattern(65_000, 1)),
        Expect::Tiles,
        false,
    ));
    cases
}

/// Writes every case into `dir` and a `corpus.json` manifest:
/// `[{ "name", "expect": "error"|"tiles"|"either", "codes": [...], "e2e": bool }]`.
pub fn write(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = String::from("[\n");
    let cases = corpus();
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(dir.join(&c.name), &c.bytes)?;
        let (expect, codes) = match c.expect {
            Expect::Error(codes) => ("error", codes),
            Expect::Tiles => ("tiles", &[][..]),
            Expect::Either => ("either", &[][..]),
        };
        let codes: Vec<String> = codes.iter().map(|c| format!("\"{c}\"")).collect();
        manifest.push_str(&format!(
            "  {{ \"name\": \"{}\", \"expect\": \"{expect}\", \"codes\": [{}], \"e2e\": {} }}{}\n",
            c.name,
            codes.join(", "),
            c.e2e,
            if i + 1 < cases.len() { "," } else { "" }
        ));
    }
    manifest.push_str("]\n");
    std::fs::write(dir.join("corpus.json"), manifest)
}
