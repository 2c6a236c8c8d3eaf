//! The first-view preview: a large JPEG decoded at a DCT scale, upright, never the pyramid's pixels.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tiler_wasm::{preview_jpeg, Limits, Options, Tiler};

/// Four flat quadrants (red, green / blue, yellow), so a reduced decode keeps them exactly placed.
fn quadrants(w: u32, h: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            data.extend(match (x >= w / 2, y >= h / 2) {
                (false, false) => [230, 30, 30],
                (true, false) => [30, 200, 30],
                (false, true) => [30, 30, 230],
                (true, true) => [240, 220, 20],
            });
        }
    }
    data
}

fn jpeg(name: &str, w: u32, h: u32) -> Vec<u8> {
    let dir = scratch("preview");
    let png = dir.join(format!("{name}.png"));
    write_png(&png, w, h, 3, &quadrants(w, h));
    let jpg = dir.join(format!("{name}.jpg"));
    vips(&[
        "copy",
        png.to_str().unwrap(),
        &format!("{}[Q=90]", jpg.display()),
    ]);
    std::fs::read(jpg).unwrap()
}

fn near(a: &[u8], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) <= 12)
}

#[test]
fn large_jpeg_gets_an_upright_quarter_size_preview() {
    let source = jpeg("large", 6000, 2800);
    let limits = Limits::default();
    let preview = preview_jpeg(&source, 1280, &limits)
        .unwrap()
        .expect("a preview");
    let (w, h, rgba) = decode_rgba(&preview);
    // 1/4 is the smallest DCT scale with the longer side ≥ 1280.
    assert_eq!((w, h), (1500, 700));
    let at = |x: u32, y: u32| &rgba[((y * w + x) * 4) as usize..][..3];
    assert!(near(at(300, 150), [230, 30, 30]), "{:?}", at(300, 150));
    assert!(near(at(1200, 550), [240, 220, 20]), "{:?}", at(1200, 550));

    // Stored sideways with orientation 6: the preview is upright, as the tiles are.
    let turned = with_orientation(&source, 6);
    let preview = preview_jpeg(&turned, 1280, &limits)
        .unwrap()
        .expect("a preview");
    let (w, h, rgba) = decode_rgba(&preview);
    assert_eq!((w, h), (700, 1500));
    // Rotated 90° clockwise: the stored bottom-left (blue) is now top-left.
    let at = |x: u32, y: u32| &rgba[((y * w + x) * 4) as usize..][..3];
    assert!(near(at(150, 300), [30, 30, 230]), "{:?}", at(150, 300));
}

#[test]
fn the_preview_leaves_the_pyramid_alone() {
    let source = jpeg("pyramid", 3000, 2000);
    let options = Options::default();
    let before = walk_all(&mut Tiler::open(&source, &options).unwrap());
    assert!(preview_jpeg(&source, 1280, &options.limits)
        .unwrap()
        .is_some());
    let after = walk_all(&mut Tiler::open(&source, &options).unwrap());
    assert!(before == after);
}

#[test]
fn no_preview_for_small_or_other_images() {
    let limits = Limits::default();
    // Under twice the size asked for, the full decode is quick anyway.
    assert_eq!(
        preview_jpeg(&jpeg("small", 2000, 1500), 1280, &limits).unwrap(),
        None
    );
    let dir = scratch("preview");
    let png = dir.join("flat.png");
    write_png(&png, 3000, 10, 3, &quadrants(3000, 10));
    assert_eq!(
        preview_jpeg(&std::fs::read(png).unwrap(), 1280, &limits).unwrap(),
        None
    );
}

#[test]
fn bad_input_is_an_error_and_limits_hold() {
    let limits = Limits::default();
    assert!(preview_jpeg(b"not an image", 1280, &limits).is_err());
    let source = jpeg("limits", 6000, 2800);
    let truncated = &source[..source.len() / 2];
    assert!(matches!(
        preview_jpeg(truncated, 1280, &limits),
        Err(tiler_wasm::Error::Decode(_))
    ));
    let tight = Limits {
        max_pixels: 1_000_000,
        ..limits
    };
    assert!(matches!(
        preview_jpeg(&source, 1280, &tight),
        Err(tiler_wasm::Error::Limits(_))
    ));
}
