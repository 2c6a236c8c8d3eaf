//! Shared helpers for the integration tests: a scratch directory, the `vips`
//! command, generated fixtures, EXIF blocks and image comparison.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use tiler_wasm::{TileAddr, TileFormat, Tiler};

/// A fresh, empty directory, unique to this call (tests run in parallel).
pub fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tiler-{name}-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Runs `vips` with `args`; `vips` is a required test dependency.
pub fn vips(args: &[&str]) {
    let out = Command::new("vips")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `vips` ({e}): the golden tests need libvips's command-line tools \
             (Debian: apt-get install libvips-tools)"
            )
        });
    assert!(
        out.status.success(),
        "vips {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small deterministic random number generator (xorshift), for noise in fixtures.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A photo-like RGB image: smooth shading, texture, noise and a few dark thin
/// "cracks", so that JPEG and the shrink filter have real work to do.
pub fn photo_like(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32, y as f32);
            let base = 120.0 + 60.0 * (fx / 97.0).sin() * (fy / 71.0).cos();
            let texture = 18.0 * ((fx * 0.9 + fy * 0.4).sin() * (fy * 0.7 - fx * 0.2).cos());
            let crack =
                if ((fx * 0.37 + fy) as u32 % 173) < 2 || (fx as u32 + 3 * y).is_multiple_of(311) {
                    -70.0
                } else {
                    0.0
                };
            let noise = (rng.next() % 17) as f32 - 8.0;
            let v = base + texture + crack + noise;
            let tint = [1.05, 1.0, 0.9];
            for t in tint {
                data.push((v * t + fy * 0.02).clamp(0.0, 255.0) as u8);
            }
        }
    }
    data
}

/// Writes packed 8-bit pixels (3 or 4 channels) as a PNG file.
pub fn write_png(path: &Path, width: u32, height: u32, channels: usize, data: &[u8]) {
    let color = if channels == 4 {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    image::save_buffer_with_format(path, data, width, height, color, image::ImageFormat::Png)
        .expect("write fixture PNG");
}

/// Every tile of a `vips dzsave` pyramid at `<base>_files`, by address.
pub fn read_vips_tiles(base: &Path, ext: &str) -> BTreeMap<TileAddr, Vec<u8>> {
    let files = PathBuf::from(format!("{}_files", base.display()));
    let mut tiles = BTreeMap::new();
    for level_dir in std::fs::read_dir(&files).expect("vips wrote a _files dir") {
        let level_dir = level_dir.expect("dir entry").path();
        let Some(level) = level_dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue; // vips-properties.xml
        };
        for tile in std::fs::read_dir(&level_dir).expect("level dir") {
            let path = tile.expect("dir entry").path();
            let stem = path.file_stem().and_then(|s| s.to_str()).expect("name");
            assert_eq!(path.extension().and_then(|e| e.to_str()), Some(ext));
            let (col, row) = stem.split_once('_').expect("col_row");
            let addr = TileAddr {
                level,
                col: col.parse().expect("col"),
                row: row.parse().expect("row"),
            };
            tiles.insert(addr, std::fs::read(&path).expect("read tile"));
        }
    }
    tiles
}

/// Every tile our tiler makes, by address, from a whole-pyramid walk.
pub fn walk_all(tiler: &mut Tiler) -> BTreeMap<TileAddr, Vec<u8>> {
    let mut tiles = BTreeMap::new();
    tiler
        .walk(|addr, bytes| -> Result<(), tiler_wasm::Error> {
            tiles.insert(addr, bytes);
            Ok(())
        })
        .expect("walk");
    tiles
}

/// A decoded tile as packed RGBA, with its size.
pub fn decode_rgba(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let img = image::load_from_memory(bytes)
        .expect("tile decodes")
        .into_rgba8();
    (img.width(), img.height(), img.into_raw())
}

/// Squared error summed over the colour (and, if `alpha`, alpha) samples of two
/// same-sized RGBA buffers, and the number of samples compared.
pub fn squared_error(a: &[u8], b: &[u8], alpha: bool) -> (f64, u64) {
    assert_eq!(a.len(), b.len(), "compared images differ in size");
    let channels = if alpha { 4 } else { 3 };
    let mut sum = 0.0;
    let mut n = 0;
    for (pa, pb) in a.chunks_exact(4).zip(b.chunks_exact(4)) {
        for c in 0..channels {
            let d = f64::from(pa[c]) - f64::from(pb[c]);
            sum += d * d;
            n += 1;
        }
    }
    (sum, n)
}

/// PSNR in dB of a mean squared error; identical images give infinity.
pub fn psnr(sum: f64, n: u64) -> f64 {
    let mse = sum / n as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

/// An image's tile format from its extension.
pub fn ext(format: TileFormat) -> &'static str {
    format.extension()
}

// ---- EXIF -------------------------------------------------------------------

/// One IFD entry's value.
pub enum Value {
    Ascii(&'static str),
    Short(u16),
    Long(u32),
    Rationals(Vec<(u32, u32)>),
}

impl Value {
    fn kind_count_bytes(&self) -> (u16, u32, Vec<u8>) {
        match self {
            Value::Ascii(s) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                (2, b.len() as u32, b)
            }
            Value::Short(v) => (3, 1, v.to_le_bytes().to_vec()),
            Value::Long(v) => (4, 1, v.to_le_bytes().to_vec()),
            Value::Rationals(v) => (
                5,
                v.len() as u32,
                v.iter()
                    .flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
                    .collect(),
            ),
        }
    }
}

/// A little-endian TIFF structure holding IFD0 and, when given, an Exif IFD and
/// a GPS IFD (their pointer tags are added here). Entries must be in tag order.
pub fn exif_tiff(
    ifd0: Vec<(u16, Value)>,
    exif: Vec<(u16, Value)>,
    gps: Vec<(u16, Value)>,
) -> Vec<u8> {
    fn ifd_size(entries: usize, values: &[Vec<u8>]) -> u32 {
        let extra: usize = values
            .iter()
            .filter(|b| b.len() > 4)
            .map(|b| b.len() + b.len() % 2)
            .sum();
        (2 + 12 * entries + 4 + extra) as u32
    }
    let encode = |entries: &[(u16, Value)]| -> Vec<(u16, u16, u32, Vec<u8>)> {
        entries
            .iter()
            .map(|(tag, v)| {
                let (k, c, b) = v.kind_count_bytes();
                (*tag, k, c, b)
            })
            .collect()
    };
    let exif_e = encode(&exif);
    let gps_e = encode(&gps);
    let mut ifd0_e = encode(&ifd0);
    // Pointers take an entry each in IFD0, so size IFD0 with them counted.
    let pointer_count = usize::from(!exif.is_empty()) + usize::from(!gps.is_empty());
    let ifd0_values: Vec<Vec<u8>> = ifd0_e.iter().map(|e| e.3.clone()).collect();
    let ifd0_len = ifd_size(ifd0_e.len() + pointer_count, &ifd0_values);
    let exif_values: Vec<Vec<u8>> = exif_e.iter().map(|e| e.3.clone()).collect();
    let exif_len = ifd_size(exif_e.len(), &exif_values);
    let exif_at = 8 + ifd0_len;
    let gps_at = exif_at + if exif.is_empty() { 0 } else { exif_len };
    if !exif.is_empty() {
        ifd0_e.push((0x8769, 4, 1, exif_at.to_le_bytes().to_vec()));
    }
    if !gps.is_empty() {
        ifd0_e.push((0x8825, 4, 1, gps_at.to_le_bytes().to_vec()));
    }
    ifd0_e.sort_by_key(|e| e.0);

    let mut out = b"II*\0".to_vec();
    out.extend(8u32.to_le_bytes());
    let write_ifd = |out: &mut Vec<u8>, entries: &[(u16, u16, u32, Vec<u8>)]| {
        let start = out.len() as u32;
        let mut data_at = start + 2 + 12 * entries.len() as u32 + 4;
        let mut data = Vec::new();
        out.extend((entries.len() as u16).to_le_bytes());
        for (tag, kind, count, bytes) in entries {
            out.extend(tag.to_le_bytes());
            out.extend(kind.to_le_bytes());
            out.extend(count.to_le_bytes());
            if bytes.len() <= 4 {
                let mut inline = bytes.clone();
                inline.resize(4, 0);
                out.extend(inline);
            } else {
                out.extend(data_at.to_le_bytes());
                data.extend(bytes);
                if bytes.len() % 2 == 1 {
                    data.push(0);
                }
                data_at += (bytes.len() + bytes.len() % 2) as u32;
            }
        }
        out.extend(0u32.to_le_bytes());
        out.extend(data);
    };
    write_ifd(&mut out, &ifd0_e);
    assert_eq!(out.len() as u32, exif_at, "IFD0 size");
    if !exif_e.is_empty() {
        write_ifd(&mut out, &exif_e);
    }
    assert_eq!(out.len() as u32, gps_at, "Exif IFD size");
    if !gps_e.is_empty() {
        write_ifd(&mut out, &gps_e);
    }
    out
}

/// `jpeg` with an APP1 EXIF segment holding `tiff` inserted right after SOI.
pub fn with_exif(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "not a JPEG");
    let len = u16::try_from(2 + 6 + tiff.len()).expect("EXIF fits one segment");
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(len.to_be_bytes());
    out.extend(b"Exif\0\0");
    out.extend(tiff);
    out.extend(&jpeg[2..]);
    out
}

/// A JPEG whose EXIF holds only `orientation`.
pub fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    with_exif(
        jpeg,
        &exif_tiff(vec![(0x0112, Value::Short(orientation))], vec![], vec![]),
    )
}
