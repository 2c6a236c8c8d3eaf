//! The JavaScript-facing bindings, run under node by `wasm-bindgen-test-runner`.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use tiler_wasm::wasm::{
    parse_dzi, parse_tile_name, probe, pyramid_id_from_sha256, server_can_tile, WasmIdHasher,
    WasmLayout, WasmTileBand, WasmTiler,
};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

/// A 300×200 PNG: left half red, right half blue.
fn png(width: u32, height: u32, alpha: bool) -> Vec<u8> {
    let channels = if alpha { 4 } else { 3 };
    let mut pixels = Vec::new();
    for _y in 0..height {
        for x in 0..width {
            pixels.extend_from_slice(if x < width / 2 {
                &[255, 0, 0, 128][..channels]
            } else {
                &[0, 0, 255, 255][..channels]
            });
        }
    }
    let mut bytes = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut bytes),
        &pixels,
        width,
        height,
        if alpha {
            image::ExtendedColorType::Rgba8
        } else {
            image::ExtendedColorType::Rgb8
        },
    )
    .unwrap();
    bytes
}

fn to_json(value: JsValue) -> Value {
    serde_wasm_bindgen::from_value(value).expect("a plain JS value")
}

fn js(value: Value) -> JsValue {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap()
}

use serde::Serialize as _;

/// The thrown value's `{ code, message }`, checking it has exactly those two string fields.
fn thrown<T>(result: Result<T, JsValue>) -> (String, String) {
    let Err(e) = result else {
        panic!("expected an error")
    };
    let v = to_json(e);
    let obj = v.as_object().expect("errors are plain objects");
    assert_eq!(obj.len(), 2, "{v}");
    (
        obj["code"].as_str().unwrap().to_owned(),
        obj["message"].as_str().unwrap().to_owned(),
    )
}

#[wasm_bindgen_test]
fn opens_an_image_and_makes_tiles() {
    let mut tiler = WasmTiler::open(&png(300, 200, false), JsValue::UNDEFINED).unwrap();
    // Levels 0..=8 have one tile each; level 9 has two.
    assert_eq!(
        to_json(tiler.geometry().unwrap()),
        json!({ "width": 300, "height": 200, "tileSize": 254, "overlap": 1, "maxLevel": 9,
                "tileCount": 11, "format": "jpeg", "mime": "image/jpeg" })
    );
    assert_eq!(tiler.max_level(), 9);
    assert_eq!(tiler.format(), "jpeg");
    assert_eq!(tiler.grid(9), Some(vec![2, 1]));
    assert_eq!(tiler.grid(10), None);
    assert_eq!(tiler.tile_name(9, 1, 0), "9/1_0.jpeg");
    let dzi = tiler_wasm::Dzi::parse(tiler.dzi_xml().as_bytes()).unwrap();
    assert_eq!(
        (dzi.width, dzi.height, dzi.tile_size, dzi.overlap),
        (300, 200, 254, 1)
    );
    assert_eq!(dzi.format, tiler_wasm::TileFormat::Jpeg);

    let meta = to_json(tiler.metadata().unwrap());
    assert_eq!(meta["format"], "png");
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(300), Some(200))
    );
    assert_eq!(meta["orientation"], 1);
    assert_eq!(meta["hasAlpha"], false);
    assert_eq!(meta["exif"]["make"], Value::Null);

    let tile = tiler.tile(9, 0, 0).unwrap();
    assert_eq!(&tile[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    let (code, message) = thrown(tiler.tile(9, 5, 0));
    assert_eq!(code, "no_such_tile");
    assert!(message.contains("level 9"), "{message}");
}

#[wasm_bindgen_test]
fn a_band_copied_out_makes_the_tilers_tiles() {
    let options = js(json!({ "tileSize": 64 }));
    let mut tiler = WasmTiler::open(&png(300, 200, true), options.clone()).unwrap();
    assert_eq!(tiler.channels(), 4);
    let top = tiler.max_level();
    // Tile rows 1..3 of a 64-pixel grid with overlap 1: pixel rows 63..193.
    assert_eq!(tiler.band_rows(top, 1, 3).unwrap(), vec![63, 193]);
    let out = js_sys::Uint8Array::new_with_length(130 * 300 * 4);
    tiler.copy_rows(top, 63, 193, &out).unwrap();
    let band = WasmTileBand::new(300, 200, top, 63, 4, &out.to_vec(), options).unwrap();
    for row in 1..3 {
        for col in 0..5 {
            assert_eq!(
                band.tile(col, row).unwrap(),
                tiler.tile(top, col, row).unwrap()
            );
        }
    }
    let (code, _) = thrown(band.tile(0, 0));
    assert_eq!(code, "invalid_option");
    let short = js_sys::Uint8Array::new_with_length(10);
    let (code, message) = thrown(tiler.copy_rows(top, 63, 193, &short));
    assert_eq!(code, "invalid_argument");
    assert!(message.contains("holds 10"), "{message}");
}

/// `fromPixels` takes `probe`'s metadata and a canvas's RGBA: the tiles `open` makes of the same
/// image; a value that is not metadata is `invalid_argument`, pixels of the wrong size `decode`.
#[wasm_bindgen_test]
fn raw_pixels_tile_as_the_opened_image() {
    let source = png(300, 200, false);
    let meta = probe(&source, JsValue::UNDEFINED).unwrap();
    let rgba: Vec<u8> = (0..300 * 200)
        .flat_map(|i| {
            if i % 300 < 150 {
                [255, 0, 0, 255]
            } else {
                [0, 0, 255, 255]
            }
        })
        .collect();
    let mut raw = WasmTiler::from_pixels(meta.clone(), rgba.clone(), JsValue::UNDEFINED).unwrap();
    let mut opened = WasmTiler::open(&source, JsValue::UNDEFINED).unwrap();
    assert_eq!(raw.channels(), 3);
    assert_eq!(to_json(raw.metadata().unwrap()), to_json(meta.clone()));
    for (col, row) in [(0, 0), (1, 0)] {
        assert_eq!(
            raw.tile(9, col, row).unwrap(),
            opened.tile(9, col, row).unwrap()
        );
    }
    let (code, _) = thrown(WasmTiler::from_pixels(
        js(json!({ "width": 300 })),
        rgba.clone(),
        JsValue::UNDEFINED,
    ));
    assert_eq!(code, "invalid_argument");
    let (code, message) = thrown(WasmTiler::from_pixels(
        meta,
        rgba[4..].to_vec(),
        JsValue::UNDEFINED,
    ));
    assert_eq!(code, "decode");
    assert!(message.contains("300×200"), "{message}");
}

/// Only a format tile-store decodes is offered to it: not AVIF, nor an unknown file.
#[wasm_bindgen_test]
fn the_server_can_tile_what_it_decodes() {
    assert!(server_can_tile(&png(4, 4, false)));
    let mut avif = 24u32.to_be_bytes().to_vec();
    avif.extend_from_slice(b"ftypavif\0\0\0\0mif1avif");
    assert!(!server_can_tile(&avif));
    assert!(!server_can_tile(b"<!doctype html>"));
}

#[wasm_bindgen_test]
fn alpha_images_get_png_tiles() {
    let mut tiler = WasmTiler::open(&png(64, 64, true), JsValue::UNDEFINED).unwrap();
    assert_eq!(tiler.format(), "png");
    assert_eq!(to_json(tiler.geometry().unwrap())["mime"], "image/png");
    assert_eq!(tiler.tile_name(6, 0, 0), "6/0_0.png");
    assert_eq!(&tiler.tile(6, 0, 0).unwrap()[..4], b"\x89PNG");
}

#[wasm_bindgen_test]
fn options_cross_as_camel_case_objects() {
    let options = js(json!({ "format": "png", "tileSize": 100, "overlap": 0 }));
    let tiler = WasmTiler::open(&png(300, 200, false), options).unwrap();
    let geometry = to_json(tiler.geometry().unwrap());
    assert_eq!(
        (
            &geometry["format"],
            &geometry["tileSize"],
            &geometry["overlap"]
        ),
        (&json!("png"), &json!(100), &json!(0))
    );
    assert_eq!(tiler.grid(9), Some(vec![3, 2]));

    let (code, message) = thrown(WasmTiler::open(
        &png(8, 8, false),
        js(json!({ "tileSize": "big" })),
    ));
    assert_eq!(code, "invalid_argument", "{message}");
}

#[wasm_bindgen_test]
fn bad_input_is_a_typed_error() {
    let (code, message) = thrown(WasmTiler::open(
        b"<html>not found</html>",
        JsValue::UNDEFINED,
    ));
    assert_eq!(code, "unknown_format");
    assert!(!message.is_empty());

    let mut truncated = png(300, 200, false);
    truncated.truncate(truncated.len() / 2);
    let (code, _) = thrown(WasmTiler::open(&truncated, JsValue::UNDEFINED));
    assert_eq!(code, "decode");

    let small = js(
        json!({ "limits": { "maxPixels": 10_000, "maxDimension": 1_000, "maxAlloc": 100_000_000 } }),
    );
    let (code, message) = thrown(WasmTiler::open(&png(300, 200, false), small));
    assert_eq!(code, "limits", "{message}");
}

#[wasm_bindgen_test]
fn probe_reads_metadata_without_decoding() {
    let bytes = png(300, 200, true);
    let meta = to_json(probe(&bytes, JsValue::UNDEFINED).unwrap());
    let opened = to_json(
        WasmTiler::open(&bytes, JsValue::UNDEFINED)
            .unwrap()
            .metadata()
            .unwrap(),
    );
    assert_eq!(meta, opened);
    assert_eq!(meta["hasAlpha"], true);

    // A GIF is recognised and refused by name.
    let (code, message) = thrown(probe(b"GIF89a", JsValue::UNDEFINED));
    assert_eq!(code, "unsupported");
    assert!(message.contains("GIF"), "{message}");
    let limits = js(json!({ "maxPixels": 100, "maxDimension": 1_000, "maxAlloc": 100_000_000 }));
    assert_eq!(thrown(probe(&bytes, limits)).0, "limits");
}

#[wasm_bindgen_test]
fn id_hasher_matches_the_core_recipe() {
    let bytes = png(300, 200, false);
    let mut hasher = WasmIdHasher::new();
    let (a, b) = bytes.split_at(1000);
    hasher.update(a);
    hasher.update(b);
    let options = js(json!({ "quality": 90 }));
    let expected = tiler_wasm::pyramid_id(
        &bytes,
        &tiler_wasm::Options {
            quality: 90,
            ..Default::default()
        },
    );
    assert_eq!(hasher.finish(options).unwrap(), expected);
    assert_eq!(
        hasher.finish(JsValue::NULL).unwrap(),
        tiler_wasm::pyramid_id(&bytes, &Default::default())
    );
}

#[wasm_bindgen_test]
fn an_id_from_a_native_digest_is_the_hashers() {
    use sha2::Digest as _;
    let bytes = png(300, 200, false);
    let digest = sha2::Sha256::digest(&bytes);
    let mut hasher = WasmIdHasher::new();
    hasher.update(&bytes);
    let options = js(json!({ "quality": 90 }));
    assert_eq!(
        pyramid_id_from_sha256(&digest, options.clone()).unwrap(),
        hasher.finish(options).unwrap()
    );
    assert_eq!(
        thrown(pyramid_id_from_sha256(&digest[..31], JsValue::NULL)).0,
        "invalid_argument"
    );
}

#[wasm_bindgen_test]
fn dzi_manifests_become_geometry() {
    // A fixed vector: the manifest `vips dzsave` writes for a 600×400 JPEG pyramid.
    let vips = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
        <Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\"\n  Format=\"jpeg\"\n  \
        Overlap=\"1\"\n  TileSize=\"254\"\n  >\n  <Size \n    Height=\"400\"\n    \
        Width=\"600\"\n  />\n</Image>\n";
    // Levels 0..=8 one tile each, level 9 (300×200) two, level 10 (600×400) three by two.
    assert_eq!(
        to_json(parse_dzi(vips).unwrap()),
        json!({ "width": 600, "height": 400, "tileSize": 254, "overlap": 1, "maxLevel": 10,
                "tileCount": 17, "format": "jpeg", "mime": "image/jpeg" })
    );
    // 2^k + 1 pixels: one level more than 2^k (where a float log2 is most easily off by one).
    let odd =
        r#"<Image TileSize="256" Overlap="0" Format="png"><Size Width="1025" Height="1"/></Image>"#;
    assert_eq!(to_json(parse_dzi(odd).unwrap())["maxLevel"], 11);
    let (code, _) = thrown(parse_dzi("<html>not found</html>"));
    assert_eq!(code, "dzi");
    let (code, _) = thrown(parse_dzi(
        r#"<Image TileSize="1" Overlap="0" Format="png"><Size Width="10" Height="10"/></Image>"#,
    ));
    assert_eq!(code, "dzi");
}

#[wasm_bindgen_test]
fn tile_names_cross_both_ways() {
    assert_eq!(
        to_json(parse_tile_name("10/2_0.jpeg").unwrap()),
        json!({ "level": 10, "col": 2, "row": 0, "format": "jpeg" })
    );
    for other in ["10/2_0.jpg", "10/2_0.jpeg.tmp", "2_0.jpeg", ""] {
        assert!(parse_tile_name(other).unwrap().is_undefined(), "{other}");
    }
    let layout = WasmLayout::new(300, 200, 254, 1).unwrap();
    let names = layout.tile_names("webp").unwrap();
    assert_eq!(names.len(), 11);
    assert_eq!(names[0], "0/0_0.webp");
    assert_eq!(&names[9..], ["9/0_0.webp", "9/1_0.webp"]);
    assert_eq!(thrown(layout.tile_names("jpg")).0, "invalid_argument");
}
