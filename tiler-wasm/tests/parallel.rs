//! The level-by-level walk on several threads (the CLI's and server jobs') gives the sequential
//! walk's tiles, byte for byte.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tiler_wasm::{Options, TileAddr, TileFormat, Tiler};

fn source(w: u32, h: u32, channels: usize) -> Vec<u8> {
    let dir = scratch("parallel");
    let path = dir.join(format!("photo-{w}x{h}x{channels}.png"));
    let rgb = photo_like(w, h, 7);
    let data: Vec<u8> = if channels == 4 {
        // Alpha varies across the image, fully transparent in one corner.
        rgb.chunks_exact(3)
            .enumerate()
            .flat_map(|(i, p)| {
                let (x, y) = (i as u32 % w, i as u32 / w);
                let a = if x < 40 && y < 40 { 0 } else { (x + y) as u8 };
                [p[0], p[1], p[2], a]
            })
            .collect()
    } else {
        rgb
    };
    write_png(&path, w, h, channels, &data);
    std::fs::read(path).expect("fixture")
}

fn into_walk_all(tiler: Tiler, threads: usize) -> BTreeMap<TileAddr, Vec<u8>> {
    let tiles = Mutex::new(BTreeMap::new());
    tiler
        .into_walk_parallel(threads, |addr, bytes| -> Result<(), tiler_wasm::Error> {
            let previous = tiles.lock().unwrap().insert(addr, bytes);
            assert!(previous.is_none(), "{addr:?} delivered twice");
            Ok(())
        })
        .expect("walk");
    tiles.into_inner().unwrap()
}

#[test]
fn level_by_level_walk_gives_the_same_tiles() {
    for (w, h, channels, format) in [
        (1100, 700, 3, TileFormat::Jpeg),
        (777, 555, 4, TileFormat::Png),
        (777, 555, 4, TileFormat::Jpeg),
        (513, 255, 3, TileFormat::Png),
        (300, 201, 4, TileFormat::Jpeg),
        (300, 200, 3, TileFormat::Webp),
    ] {
        let bytes = source(w, h, channels);
        let options = Options {
            format: Some(format),
            ..Options::default()
        };
        let expected = walk_all(&mut Tiler::open(&bytes, &options).expect("opens"));
        for threads in [0, 1, 2, 3, 8] {
            let mut tiler = Tiler::open(&bytes, &options).expect("opens");
            // Levels cached beforehand by random access change nothing.
            let top = tiler.layout().max_level();
            tiler.tile(top - 1, 0, 0).expect("tile");
            let tiles = into_walk_all(tiler, threads);
            assert!(
                tiles == expected,
                "{w}×{h}×{channels} {format}, {threads} threads: tiles differ"
            );
        }
    }
}

#[test]
fn level_by_level_walk_stops_at_the_callers_error() {
    let bytes = source(1100, 700, 3);
    let tiler = Tiler::open(&bytes, &Options::default()).expect("opens");
    let total = tiler.layout().tile_count() as usize;
    let seen = AtomicUsize::new(0);
    let result = tiler.into_walk_parallel(2, |_, _| -> Result<(), tiler_wasm::Error> {
        if seen.fetch_add(1, Ordering::SeqCst) == 2 {
            Err(tiler_wasm::Error::Encode("stop".into()))
        } else {
            Ok(())
        }
    });
    assert!(matches!(result, Err(tiler_wasm::Error::Encode(m)) if m == "stop"));
    let seen = seen.into_inner();
    assert!(
        (3..=6).contains(&seen) && seen < total,
        "{seen} of {total} tiles after the error"
    );
}
