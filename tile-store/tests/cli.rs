//! `tile-store tile` run as a process on generated images, checked against the
//! geometry and against what `vips dzsave` writes for the same image.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use tiler_wasm::{Dzi, Layout, TileFormat};

fn tile_store() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tile-store"))
}

/// Runs `vips` with `args` (the reference tool; Debian: libvips-tools) and checks it succeeded.
fn vips<S: AsRef<std::ffi::OsStr>>(args: &[S]) {
    let status = Command::new("vips").args(args).status();
    let status =
        status.unwrap_or_else(|e| panic!("`vips` is needed for this test (libvips-tools): {e}"));
    assert!(status.success(), "vips failed");
}

/// A photo-like RGB PNG (gradients plus texture).
fn write_source(path: &Path, width: u32, height: u32) {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 255 / width) as u8,
            (y * 255 / height) as u8,
            ((x ^ y) & 0xff) as u8,
        ])
    });
    img.save(path).unwrap();
}

/// Every tile under `dir` (files in level folders), relative, with `/` separators.
/// vips also writes `vips-properties.xml` beside the level folders; that is vips's
/// own metadata, not part of the Deep Zoom layout, and is not reproduced.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for level in std::fs::read_dir(dir).unwrap() {
        let level = level.unwrap();
        if !level.file_type().unwrap().is_dir() {
            assert_eq!(level.file_name(), "vips-properties.xml");
            continue;
        }
        for file in std::fs::read_dir(level.path()).unwrap() {
            out.insert(format!(
                "{}/{}",
                level.file_name().to_string_lossy(),
                file.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out
}

#[test]
fn writes_a_pyramid_where_vips_dzsave_does() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("photo.png");
    write_source(&source, 600, 400);
    let prefix = dir.path().join("ours/nested/photo");
    let output = tile_store()
        .arg("tile")
        .arg(&source)
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Not a terminal: no progress bar noise.
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let layout = Layout::new(600, 400, 254, 1).unwrap();
    let xml = std::fs::read_to_string(dir.path().join("ours/nested/photo.dzi")).unwrap();
    assert_eq!(xml, Dzi::new(&layout, TileFormat::Jpeg).to_xml());
    let files = dir.path().join("ours/nested/photo_files");
    for addr in layout.tiles() {
        let path = files.join(format!("{}/{}_{}.jpeg", addr.level, addr.col, addr.row));
        let tile = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let rect = layout.tile_rect(addr.level, addr.col, addr.row).unwrap();
        assert_eq!(
            (tile.width(), tile.height()),
            (rect.width, rect.height),
            "{}",
            path.display()
        );
    }

    let vips_prefix = dir.path().join("vips/photo");
    std::fs::create_dir_all(vips_prefix.parent().unwrap()).unwrap();
    vips(&[
        "dzsave".as_ref(),
        source.as_os_str(),
        vips_prefix.as_os_str(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("vips/photo.dzi")).unwrap(),
        xml
    );
    assert_eq!(
        files_under(&files),
        files_under(&dir.path().join("vips/photo_files"))
    );
}

#[test]
fn options_change_format_and_geometry() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("src.png");
    write_source(&source, 300, 130);
    let prefix = dir.path().join("out");
    let status = tile_store()
        .arg("tile")
        .arg(&source)
        .arg(&prefix)
        .args(["--format", "png", "--tile-size", "128", "--overlap", "0"])
        .status()
        .unwrap();
    assert!(status.success());
    let layout = Layout::new(300, 130, 128, 0).unwrap();
    let xml = std::fs::read_to_string(dir.path().join("out.dzi")).unwrap();
    assert_eq!(xml, Dzi::new(&layout, TileFormat::Png).to_xml());
    let expected: BTreeSet<String> = layout
        .tiles()
        .map(|a| format!("{}/{}_{}.png", a.level, a.col, a.row))
        .collect();
    assert_eq!(files_under(&dir.path().join("out_files")), expected);
}

#[test]
fn bad_input_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.jpg");
    std::fs::write(&garbage, b"this is not an image").unwrap();
    let good = dir.path().join("good.png");
    write_source(&good, 10, 10);
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec![garbage.clone().into(), dir.path().join("a").into()],
            "garbage.jpg",
        ),
        (
            vec![
                dir.path().join("missing.png").into(),
                dir.path().join("b").into(),
            ],
            "cannot read",
        ),
        (
            vec![good.clone().into(), dir.path().join("c.zip").into()],
            "zip",
        ),
        (
            vec![
                good.clone().into(),
                dir.path().join("d").into(),
                "--tile-size".into(),
                "0".into(),
            ],
            "tile size",
        ),
        (
            vec![
                good.clone().into(),
                dir.path().join("e").into(),
                "--format".into(),
                "gif".into(),
            ],
            "gif",
        ),
    ];
    for (args, needle) in cases {
        let output = tile_store().arg("tile").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(!dir.path().join("a.dzi").exists());
}

/// Runs `cmd` to its end and returns its peak resident memory in bytes, sampled from
/// `/proc/<pid>/status` (`VmHWM` only grows, so the last sample is the peak up to ~10 ms
/// before exit).
fn peak_rss(mut cmd: Command) -> u64 {
    let mut child = cmd.spawn().unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{cmd:?} failed");
            return peak_kib * 1024;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The size of [`tile_a_replicated_source`]'s image: a 1200×900 cell ten times each way.
const REPLICATED: (u32, u32) = (12_000, 9_000);

/// Writes `source` (saved with vips's `options`, e.g. `[compression=1]`) as a photo-like cell
/// replicated to [`REPLICATED`], tiles it with `tile-store tile` into `dir/ours/{name}`, and
/// returns the process's peak RSS and the bytes the pixels take decoded whole.
fn tile_a_replicated_source(dir: &Path, source: &Path, options: &str, name: &str) -> (u64, u64) {
    let cell = dir.join("cell.png");
    write_source(&cell, REPLICATED.0 / 10, REPLICATED.1 / 10);
    let target = format!("{}{options}", source.display());
    vips(&[
        "replicate".as_ref(),
        cell.as_os_str(),
        target.as_ref(),
        "10".as_ref(),
        "10".as_ref(),
    ]);
    let (width, height) = (u64::from(REPLICATED.0), u64::from(REPLICATED.1));
    let whole = width * height * 3;
    let mut ours = tile_store();
    ours.arg("tile")
        .arg(source)
        .arg(dir.join("ours").join(name))
        .stderr(std::process::Stdio::null());
    let peak = peak_rss(ours);
    println!(
        "tile-store tile: peak RSS {} MB for the {} MP {} ({} MB decoded whole)",
        peak / 1_000_000,
        width * height / 1_000_000,
        source.display(),
        whole / 1_000_000
    );
    (peak, whole)
}

/// A 108-megapixel tiled JPEG BigTIFF is tiled streaming: peak memory far below the 324 MB
/// its pixels take decoded whole (the whole-image path's minimum), and the pyramid is the one
/// `vips dzsave` writes (same `.dzi` bytes, same files). `make bench-gigapixel` does 2 GP.
#[test]
fn streams_a_tiled_bigtiff_in_memory_bounded_by_its_width() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("ortho.tif");
    let (peak, whole) = tile_a_replicated_source(
        dir.path(),
        &source,
        "[tile,bigtiff,compression=jpeg,tile-width=256,tile-height=256]",
        "ortho",
    );
    assert!(
        peak < whole / 2,
        "peak RSS {peak} bytes is not well below the {whole} bytes of a whole decode"
    );

    vips(&[
        "dzsave".as_ref(),
        source.as_os_str(),
        dir.path().join("vips").as_os_str(),
    ]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ours/ortho.dzi")).unwrap(),
        std::fs::read_to_string(dir.path().join("vips.dzi")).unwrap()
    );
    assert_eq!(
        files_under(&dir.path().join("ours/ortho_files")),
        files_under(&dir.path().join("vips_files"))
    );
}

/// A 108-megapixel PNG is tiled streaming row by row: peak memory far below the 324 MB its pixels
/// take decoded whole (the whole-image path, which an interlaced PNG still takes, peaks at about
/// 350 MB here), with every tile of the pyramid written.
#[test]
fn streams_a_png_in_memory_bounded_by_its_width() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("big.png");
    let (peak, whole) = tile_a_replicated_source(dir.path(), &source, "[compression=1]", "big");
    assert!(
        peak < whole / 4,
        "peak RSS {peak} bytes is not well below the {whole} bytes of a whole decode"
    );

    let layout = Layout::new(REPLICATED.0, REPLICATED.1, 254, 1).unwrap();
    let xml = std::fs::read_to_string(dir.path().join("ours/big.dzi")).unwrap();
    assert_eq!(xml, Dzi::new(&layout, TileFormat::Jpeg).to_xml());
    let expected: BTreeSet<String> = layout
        .tiles()
        .map(|a| format!("{}/{}_{}.jpeg", a.level, a.col, a.row))
        .collect();
    assert_eq!(files_under(&dir.path().join("ours/big_files")), expected);
}

/// Entry names of a ZIP archive and the bytes of one entry, read by Python's `zipfile` (an
/// independent reader, which also checks every entry's CRC).
fn zip_listing(archive: &Path, entry: &str) -> (BTreeSet<String>, String) {
    let script = "import sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1])\n\
        assert z.testzip() is None\n\
        print('\\n'.join(i.filename for i in z.infolist()))\n\
        print('--')\n\
        print(z.read(sys.argv[2]).decode(), end='')";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(archive)
        .arg(entry)
        .output()
        .expect("the tests need python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (names, content) = text.split_once("--\n").unwrap();
    (
        names.lines().map(str::to_owned).collect(),
        content.to_owned(),
    )
}

/// `--container szi` (or a `.szi` name) writes the one-file archive `vips dzsave out.szi`
/// writes: the same entries (but vips's own property files) and the same `.dzi`.
#[test]
fn writes_a_szi_archive_as_vips_does() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("photo.png");
    write_source(&source, 700, 450);
    let output = tile_store()
        .arg("tile")
        .arg(&source)
        .arg(dir.path().join("ours/photo"))
        .args(["--container", "szi"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    vips(&[
        "dzsave".as_ref(),
        source.as_os_str(),
        dir.path().join("photo.szi").as_os_str(),
    ]);
    let (ours, our_dzi) = zip_listing(&dir.path().join("ours/photo.szi"), "photo/photo.dzi");
    let (theirs, their_dzi) = zip_listing(&dir.path().join("photo.szi"), "photo/photo.dzi");
    let theirs: BTreeSet<String> = theirs
        .into_iter()
        .filter(|name| !name.ends_with("-properties.xml"))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(our_dzi, their_dzi);
    assert!(ours.contains("photo/photo_files/10/2_1.jpeg"), "{ours:?}");
}

/// A lossless JPEG XL (`vips jxlsave`, libjxl) tiles through the CLI into the pyramid `vips
/// dzsave` makes of it: the same `.dzi`, the same tiles, every pixel identical.
#[cfg(feature = "jxl")]
#[test]
fn tiles_a_jpeg_xl_as_vips_does() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("photo.png");
    write_source(&png, 700, 300);
    let jxl = dir.path().join("photo.jxl");
    let target = format!("{}[lossless]", jxl.display());
    vips(&["copy".as_ref(), png.as_os_str(), target.as_ref()]);
    let ours = dir.path().join("ours");
    let output = tile_store()
        .arg("tile")
        .arg(&jxl)
        .arg(&ours)
        .args(["--format", "png"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs = dir.path().join("vips");
    vips(&[
        "dzsave".as_ref(),
        jxl.as_os_str(),
        theirs.as_os_str(),
        "--suffix".as_ref(),
        ".png".as_ref(),
    ]);
    assert_eq!(
        std::fs::read_to_string(ours.with_extension("dzi")).unwrap(),
        std::fs::read_to_string(theirs.with_extension("dzi")).unwrap()
    );
    let (ours, theirs) = (dir.path().join("ours_files"), dir.path().join("vips_files"));
    let files = files_under(&ours);
    assert_eq!(files, files_under(&theirs));
    for file in &files {
        let a = image::open(ours.join(file)).unwrap().into_rgba8();
        let b = image::open(theirs.join(file)).unwrap().into_rgba8();
        assert!(a == b, "{file} differs from vips's");
    }
}
