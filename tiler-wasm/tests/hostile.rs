//! Hostile inputs: every one gives a typed error, never a panic or a huge allocation.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tiler_wasm::{probe, Error, Limits, Options, Tiler};

fn open(bytes: &[u8]) -> Result<Tiler, Error> {
    Tiler::open(bytes, &Options::default())
}

fn small_png() -> Vec<u8> {
    let dir = scratch("hostile-png");
    let path = dir.join("small.png");
    write_png(&path, 40, 30, 3, &photo_like(40, 30, 1));
    std::fs::read(path).expect("fixture")
}

fn small_jpeg() -> Vec<u8> {
    let dir = scratch("hostile-jpeg");
    let png = dir.join("small.png");
    write_png(&png, 40, 30, 3, &photo_like(40, 30, 2));
    let jpg = dir.join("small.jpg");
    vips(&[
        "copy",
        png.to_str().expect("path"),
        jpg.to_str().expect("path"),
    ]);
    std::fs::read(jpg).expect("fixture")
}

/// `jpeg` with the size in its frame header (SOF0/SOF2) replaced.
fn jpeg_declaring(jpeg: &[u8], w: u16, h: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let mut i = 2;
    while i + 9 < out.len() {
        assert_eq!(out[i], 0xFF, "walked off the JPEG markers");
        let marker = out[i + 1];
        let len = usize::from(u16::from_be_bytes([out[i + 2], out[i + 3]]));
        if matches!(marker, 0xC0..=0xC2) {
            out[i + 5..i + 7].copy_from_slice(&h.to_be_bytes());
            out[i + 7..i + 9].copy_from_slice(&w.to_be_bytes());
            return out;
        }
        i += 2 + len;
    }
    panic!("no frame header found");
}

#[test]
fn not_images_are_unknown_format() {
    let cases: [&[u8]; 6] = [
        b"",
        b"x",
        &[0xFF],
        b"<!DOCTYPE html><html><body>Not found</body></html>",
        b"just some text\n",
        &[
            0x13, 0x37, 0x00, 0xFF, 0xD8, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
        ],
    ];
    for bytes in cases {
        assert!(
            matches!(open(bytes), Err(Error::UnknownFormat)),
            "{bytes:?}"
        );
        assert!(matches!(
            probe(bytes, &Limits::default()),
            Err(Error::UnknownFormat)
        ));
    }
}

#[test]
fn garbage_after_a_valid_signature_is_a_decode_error() {
    let mut rng = Rng::new(99);
    let noise: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    for magic in [
        &b"\xFF\xD8\xFF"[..],
        b"\x89PNG\r\n\x1a\n",
        b"RIFF\x00\x10\x00\x00WEBPVP8 ",
        b"II*\0",
        b"MM\0*",
    ] {
        let mut bytes = magic.to_vec();
        bytes.extend(&noise);
        let err = open(&bytes).expect_err("garbage must not open");
        assert!(
            matches!(
                err,
                Error::Decode(_) | Error::Unsupported(_) | Error::Limits(_)
            ),
            "{magic:?}: {err:?}"
        );
    }
}

#[test]
fn truncated_files_are_errors() {
    let png = small_png();
    for cut in [8, 20, 33, 50, png.len() / 2, png.len() - 13] {
        let err = open(&png[..cut]).expect_err("truncated PNG must not open");
        assert!(matches!(err, Error::Decode(_)), "PNG cut at {cut}: {err:?}");
    }
    let jpeg = small_jpeg();
    // Cut inside the headers, inside the entropy-coded data, or just before the end.
    for cut in [3, 10, 100, 300, jpeg.len() / 2, jpeg.len() - 2] {
        let err = open(&jpeg[..cut]).expect_err("truncated JPEG must not open");
        assert!(
            matches!(err, Error::Decode(_)),
            "JPEG cut at {cut}: {err:?}"
        );
    }
    let dir = scratch("hostile-truncated");
    let png_path = dir.join("small.png");
    std::fs::write(&png_path, &png).expect("write");
    for name in [
        "lossy.webp",
        "lossless.webp[lossless]",
        "strip.tif",
        "deflate.tif[compression=deflate]",
    ] {
        let out = dir.join(name);
        vips(&[
            "copy",
            png_path.to_str().expect("path"),
            out.to_str().expect("path"),
        ]);
        let bytes = std::fs::read(dir.join(name.split('[').next().expect("name"))).expect("read");
        for cut in [bytes.len() / 2, bytes.len() - 1] {
            let err = open(&bytes[..cut]).expect_err("truncated file must not open");
            assert!(
                matches!(err, Error::Decode(_)),
                "{name} cut at {cut}: {err:?}"
            );
        }
    }
    // Data after the end (camera trailers) is fine.
    let mut trailer = jpeg.clone();
    trailer.extend(b"SAMSUNG trailer bytes");
    open(&trailer).expect("a JPEG with a trailer opens");
}

#[test]
fn huge_declared_sizes_are_refused_before_decoding() {
    let png = png_declaring(100_000, 100_000);
    let err = probe(&png, &Limits::default()).expect_err("too large");
    assert!(matches!(err, Error::Limits(_)), "{err:?}");
    let err = open(&png).expect_err("too large");
    assert!(matches!(err, Error::Limits(_)), "{err:?}");
    assert_eq!(err.code(), "limits");

    // JPEG cannot declare more than 65535 a side; that is still 4.3 gigapixels.
    let jpeg = jpeg_declaring(&small_jpeg(), 65_535, 65_535);
    let err = probe(&jpeg, &Limits::default()).expect_err("too large");
    assert!(matches!(err, Error::Limits(_)), "{err:?}");
    let err = open(&jpeg).expect_err("too large");
    assert!(matches!(err, Error::Limits(_)), "{err:?}");

    // Each limit applies on its own.
    let tight = Options {
        limits: Limits {
            max_pixels: 1000,
            ..Limits::default()
        },
        ..Options::default()
    };
    assert!(matches!(
        Tiler::open(&small_png(), &tight),
        Err(Error::Limits(_))
    ));
    let narrow = Options {
        limits: Limits {
            max_dimension: 39,
            ..Limits::default()
        },
        ..Options::default()
    };
    assert!(matches!(
        Tiler::open(&small_png(), &narrow),
        Err(Error::Limits(_))
    ));
    let stingy = Options {
        limits: Limits {
            max_alloc: 1000,
            ..Limits::default()
        },
        ..Options::default()
    };
    assert!(matches!(
        Tiler::open(&small_jpeg(), &stingy),
        Err(Error::Limits(_))
    ));
}

#[test]
fn zero_sized_images_are_errors() {
    for (w, h) in [(0, 0), (0, 10), (10, 0)] {
        let err = open(&png_declaring(w, h)).expect_err("empty image");
        assert!(
            matches!(err, Error::Decode(_) | Error::Limits(_)),
            "{w}×{h}: {err:?}"
        );
    }
    let err = open(&jpeg_declaring(&small_jpeg(), 0, 0)).expect_err("empty image");
    assert!(
        matches!(err, Error::Decode(_) | Error::Limits(_)),
        "{err:?}"
    );
}

#[test]
fn bad_options_are_refused() {
    let png = small_png();
    for options in [
        Options {
            quality: 0,
            ..Options::default()
        },
        Options {
            quality: 101,
            ..Options::default()
        },
        Options {
            tile_size: 0,
            ..Options::default()
        },
        Options {
            tile_size: 10,
            overlap: 0,
            ..Options::default()
        },
        Options {
            tile_size: 64,
            overlap: 64,
            ..Options::default()
        },
    ] {
        let err = Tiler::open(&png, &options).expect_err("bad option");
        assert!(
            matches!(err, Error::InvalidOption(_)),
            "{options:?}: {err:?}"
        );
    }
}

#[test]
fn random_bit_flips_never_panic() {
    let png = small_png();
    let jpeg = small_jpeg();
    let mut rng = Rng::new(2024);
    for source in [&png, &jpeg] {
        for _ in 0..150 {
            let mut bytes = source.clone();
            for _ in 0..1 + rng.next() % 8 {
                let i = (rng.next() as usize) % bytes.len();
                bytes[i] ^= 1 << (rng.next() % 8);
            }
            match open(&bytes) {
                Ok(mut tiler) => {
                    let top = tiler.layout().max_level();
                    tiler.tile(top, 0, 0).expect("an opened image tiles");
                }
                // A caught decoder panic is still a panic.
                Err(e) => assert!(!matches!(e, Error::Panic), "{e}"),
            }
        }
    }
}

#[test]
fn tiles_outside_the_pyramid_are_errors() {
    let mut tiler = open(&small_png()).expect("opens");
    let top = tiler.layout().max_level();
    for (level, col, row) in [(top + 1, 0, 0), (top, 1, 0), (top, 0, 1), (u32::MAX, 0, 0)] {
        assert!(matches!(
            tiler.tile(level, col, row),
            Err(Error::NoSuchTile { .. })
        ));
    }
}

#[path = "common/corpus.rs"]
#[allow(dead_code)] // `write` and `e2e` serve the end-to-end tests, through the example.
mod corpus;

use corpus::{png_declaring, Expect};

/// Limits the corpus is tiled with: the defaults' shape, scaled so that the
/// process memory cap below would catch any allocation the limits did not stop.
const CORPUS_LIMITS: Limits = Limits {
    max_pixels: 50_000_000,
    max_dimension: 65_535,
    max_alloc: 256 << 20,
};
/// The child process running the corpus may map at most this much writable memory
/// (`ulimit -d`, KiB): a decoder trusting a declared size would die here.
const CORPUS_DATA_LIMIT_KIB: u64 = 1 << 20;
const CHILD: &str = "TESSERA_HOSTILE_CORPUS_CHILD";

/// Every case of the corpus, in a child process whose memory is capped by the OS:
/// a typed error with the expected code, or a whole pyramid, never a panic, an
/// abort or an allocation past the cap.
#[test]
fn the_hostile_corpus_gives_typed_errors_within_memory_limits() {
    if std::env::var_os(CHILD).is_some() {
        run_corpus();
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -d {CORPUS_DATA_LIMIT_KIB} && exec \"$0\" \"$@\""
        ))
        .arg(exe)
        .args([
            "--exact",
            "the_hostile_corpus_gives_typed_errors_within_memory_limits",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("runs the corpus");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("hostile corpus:"), "{stdout}");
    eprintln!(
        "{}",
        stdout
            .lines()
            .filter(|l| l.contains("hostile corpus"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn run_corpus() {
    let options = Options {
        limits: CORPUS_LIMITS,
        ..Options::default()
    };
    let cases = corpus::corpus();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for case in &cases {
        // Probing never panics either; it may succeed on a damaged body.
        let _ = probe(&case.bytes, &CORPUS_LIMITS);
        let opened = Tiler::open(&case.bytes, &options);
        // Caught or not, a decoder panic fails the case, whatever the case allows.
        assert!(
            !matches!(opened, Err(Error::Panic)),
            "{}: a decoder panicked",
            case.name
        );
        let outcome = match (&opened, case.expect) {
            (Err(e), Expect::Error(codes)) => {
                assert!(
                    codes.contains(&e.code()),
                    "{}: {e:?}, expected {codes:?}",
                    case.name
                );
                e.code()
            }
            (Err(e), Expect::Either) => e.code(),
            (Ok(_), Expect::Tiles | Expect::Either) => "tiles",
            (Err(e), Expect::Tiles) => panic!("{} must tile: {e:?}", case.name),
            (Ok(_), Expect::Error(codes)) => panic!("{} opened; expected {codes:?}", case.name),
        };
        if let Ok(mut tiler) = opened {
            let layout = *tiler.layout();
            assert_eq!(
                (layout.width(), layout.height()),
                (tiler.metadata().width, tiler.metadata().height),
                "{}",
                case.name
            );
            let dzi = tiler_wasm::Dzi::parse(tiler.dzi().to_xml().as_bytes()).expect("own .dzi");
            assert_eq!(dzi.layout().expect("geometry"), layout);
            if layout.tile_count() <= 64 || case.expect == Expect::Tiles {
                let tiles = walk_all(&mut tiler);
                assert_eq!(tiles.len() as u64, layout.tile_count(), "{}", case.name);
            } else {
                tiler.tile(layout.max_level(), 0, 0).expect("first tile");
            }
        }
        *outcomes.entry(outcome.to_owned()).or_default() += 1;
    }
    println!("hostile corpus: {} inputs: {outcomes:?}", cases.len());
}

/// 1×1, 1×65000 and 65000×1 tile exactly as `vips dzsave` tiles them: the same
/// `.dzi`, the same tile addresses and sizes, and identical RGBA pixels in every tile
/// (PNG tiles, so that JPEG's 4:2:0 chroma on 1-pixel-wide tiles does not hide the
/// comparison; the PNG bytes themselves differ, as the encoders do).
#[test]
fn degenerate_sizes_tile_as_vips_does() {
    let dir = scratch("hostile-degenerate");
    let png_tiles = Options {
        format: Some(tiler_wasm::TileFormat::Png),
        ..Options::default()
    };
    for name in ["1x1.png", "1x65000.png", "65000x1.png"] {
        let case = corpus::corpus()
            .into_iter()
            .find(|c| c.name == name)
            .expect("in the corpus");
        let source = dir.join(name);
        std::fs::write(&source, &case.bytes).expect("write");
        let base = dir.join(name.replace('.', "-"));
        vips(&[
            "dzsave",
            source.to_str().expect("path"),
            base.to_str().expect("path"),
            "--suffix",
            ".png",
        ]);
        let mut tiler = Tiler::open(&case.bytes, &png_tiles).expect("opens");
        let vips_dzi =
            std::fs::read_to_string(format!("{}.dzi", base.display())).expect("vips .dzi");
        assert_eq!(tiler.dzi().to_xml(), vips_dzi, "{name}");
        let ours = walk_all(&mut tiler);
        let theirs = read_vips_tiles(&base, "png");
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{name}: tile addresses"
        );
        for (addr, bytes) in &ours {
            let (w, h, a) = decode_rgba(bytes);
            let (vw, vh, b) = decode_rgba(&theirs[addr]);
            assert_eq!((w, h), (vw, vh), "{name} {addr:?}");
            // Exactly: every pixel of every tile, not a quality threshold.
            assert!(a == b, "{name} {addr:?}: pixels differ from vips's");
        }
    }
}
