//! Tiles made on demand, in any order, equal the whole-pyramid walk's.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use tiler_wasm::{Options, TileAddr, TileFormat, Tiler};

fn source(w: u32, h: u32) -> Vec<u8> {
    let dir = scratch("lazy");
    let path = dir.join("photo.png");
    write_png(&path, w, h, 3, &photo_like(w, h, 42));
    std::fs::read(path).expect("fixture")
}

#[test]
fn any_tile_on_demand_equals_the_walk() {
    let bytes = source(700, 520);
    for format in [TileFormat::Jpeg, TileFormat::Png, TileFormat::Webp] {
        let options = Options {
            format: Some(format),
            ..Options::default()
        };
        let walked = walk_all(&mut Tiler::open(&bytes, &options).expect("opens"));
        let top = *walked.keys().map(|a| &a.level).max().expect("tiles");

        // Single tiles, each from a fresh tiler: deep in the middle, the top level,
        // level 0 and an edge tile.
        for addr in [
            TileAddr {
                level: top - 1,
                col: 1,
                row: 0,
            },
            TileAddr {
                level: top,
                col: 2,
                row: 2,
            },
            TileAddr {
                level: 0,
                col: 0,
                row: 0,
            },
            TileAddr {
                level: top - 3,
                col: 0,
                row: 0,
            },
        ] {
            let mut fresh = Tiler::open(&bytes, &options).expect("opens");
            let tile = fresh.tile(addr.level, addr.col, addr.row).expect("tile");
            assert_eq!(tile, walked[&addr], "{format} {addr:?}");
        }

        // Every tile, in the reverse order of the walk, from one tiler.
        let mut reverse = Tiler::open(&bytes, &options).expect("opens");
        for (addr, expected) in walked.iter().rev() {
            let tile = reverse.tile(addr.level, addr.col, addr.row).expect("tile");
            assert_eq!(&tile, expected, "{format} {addr:?}");
            assert!(format.matches_magic(&tile));
        }
        assert_eq!(walked.len() as u64, reverse.layout().tile_count());
    }
}

#[test]
fn walk_stops_at_the_callers_error() {
    let bytes = source(300, 200);
    let mut tiler = Tiler::open(&bytes, &Options::default()).expect("opens");
    let mut seen = 0;
    let result = tiler.walk(|_, _| -> Result<(), tiler_wasm::Error> {
        seen += 1;
        if seen == 3 {
            Err(tiler_wasm::Error::Encode("stop".into()))
        } else {
            Ok(())
        }
    });
    assert!(result.is_err());
    assert_eq!(seen, 3);
}

#[test]
fn custom_tile_size_and_overlap_follow_the_layout() {
    let bytes = source(300, 200);
    let options = Options {
        tile_size: 128,
        overlap: 0,
        ..Options::default()
    };
    let mut tiler = Tiler::open(&bytes, &options).expect("opens");
    let tiles = walk_all(&mut tiler);
    let top = tiler.layout().max_level();
    assert_eq!(tiler.layout().grid(top), Some((3, 2)));
    let (w, h, _) = decode_rgba(
        &tiles[&TileAddr {
            level: top,
            col: 2,
            row: 1,
        }],
    );
    assert_eq!((w, h), (300 - 256, 200 - 128));
    assert!(tiler.dzi().to_xml().contains("TileSize=\"128\""));
}
