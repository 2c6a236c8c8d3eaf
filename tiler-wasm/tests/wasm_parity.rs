//! Native and wasm tiles are byte-identical.
//!
//! Both builds generate the same source images in-test, tile them and list every tile's SHA-256.
//! The native run writes the listing to `$CARGO_TARGET_TMPDIR`; the wasm run (under node, via
//! `wasm-bindgen-test-runner`) reads it and compares. Run native first:
//! `cargo test -p tiler-wasm --test wasm_parity`, then the same with `--target wasm32-unknown-unknown`
//! and the same `CARGO_TARGET_DIR`.
#![allow(clippy::unwrap_used)]

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use tiler_wasm::{Options, Tiler};

const WIDTH: u32 = 701;
const HEIGHT: u32 = 493;

/// Gradients, hard edges and pseudo-random noise, so every decoder and resampling path is exercised.
fn pixels() -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    let mut out = Vec::with_capacity((WIDTH * HEIGHT * 3) as usize);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (state >> 24) as u8 & 0x1f;
            let quadrant = (x * 2 / WIDTH) + 2 * (y * 2 / HEIGHT);
            let base = [
                [200u8, 40, 40],
                [40, 200, 40],
                [40, 40, 200],
                [220, 220, 60],
            ][quadrant as usize];
            out.push(base[0].wrapping_add((x % 64) as u8).wrapping_add(noise));
            out.push(base[1].wrapping_add((y % 64) as u8));
            out.push(base[2] ^ noise);
        }
    }
    out
}

fn png_source() -> Vec<u8> {
    let mut bytes = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut bytes),
        &pixels(),
        WIDTH,
        HEIGHT,
        image::ExtendedColorType::Rgb8,
    )
    .expect("png encodes");
    bytes
}

fn jpeg_source() -> Vec<u8> {
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, 90)
        .encode(
            &pixels(),
            WIDTH as u16,
            HEIGHT as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .expect("jpeg encodes");
    bytes
}

/// One line per source and tile: `name level/col_row sha256`.
fn listing() -> String {
    let mut out = String::new();
    for (name, source, options) in [
        ("png", png_source(), Options::default()),
        ("jpeg", jpeg_source(), Options::default()),
        (
            "jpeg-as-png",
            jpeg_source(),
            Options {
                format: Some(tiler_wasm::TileFormat::Png),
                ..Options::default()
            },
        ),
    ] {
        writeln!(
            out,
            "{name} source {}",
            hex::encode(Sha256::digest(&source))
        )
        .unwrap();
        let mut tiler = Tiler::open(&source, &options).expect("tiler opens");
        tiler
            .walk(|addr, bytes| -> tiler_wasm::Result<()> {
                writeln!(
                    out,
                    "{name} {}/{}_{} {}",
                    addr.level,
                    addr.col,
                    addr.row,
                    hex::encode(Sha256::digest(&bytes))
                )
                .unwrap();
                Ok(())
            })
            .expect("walk succeeds");
    }
    out
}

/// Where the native run leaves its listing: `<target dir>/tmp`. Cargo gives a wasm32 build its
/// own `<target dir>/wasm32-unknown-unknown/tmp`, so the wasm run climbs back up to the native one.
#[cfg(not(target_arch = "wasm32"))]
const LISTING_PATH: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/tessera-wasm-parity.txt");
#[cfg(target_arch = "wasm32")]
const LISTING_PATH: &str = concat!(
    env!("CARGO_TARGET_TMPDIR"),
    "/../../tmp/tessera-wasm-parity.txt"
);

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn native_writes_tile_hashes() {
    let listing = listing();
    assert!(
        listing.lines().count() > 3 * 10,
        "every source has a pyramid of tiles"
    );
    std::fs::write(LISTING_PATH, listing).expect("listing written");
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen(module = "node:fs")]
    extern "C" {
        #[wasm_bindgen(js_name = readFileSync, catch)]
        fn read_file_sync(path: &str, encoding: &str) -> Result<String, JsValue>;
    }

    #[wasm_bindgen_test]
    fn wasm_tiles_match_native_tiles() {
        let native = read_file_sync(super::LISTING_PATH, "utf8").unwrap_or_else(|e| {
            panic!(
                "no native listing at {} ({e:?}); run `cargo test -p tiler-wasm --test wasm_parity` natively first",
                super::LISTING_PATH
            )
        });
        let wasm = super::listing();
        for (n, w) in native.lines().zip(wasm.lines()) {
            assert_eq!(n, w, "native and wasm differ");
        }
        assert_eq!(native.lines().count(), wasm.lines().count());
    }
}
