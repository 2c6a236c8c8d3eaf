//! Source bytes → the streamed walk `tile-store tile` and server jobs take for TIFF and PNG →
//! every tile. Whatever streams never panics, hands over every tile once, and for a PNG is byte
//! for byte what the whole-image path makes of the same bytes.
//!
//! Limits are those of `image_tile`; images over its 4 megapixels are left alone (streaming does
//! not limit the area, and their pyramids would take too long per input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Mutex;
use tiler_wasm::{Error, Limits, Options, Streamed, Tiler, Walk};

const LIMITS: Limits = Limits {
    max_pixels: 4_000_000,
    max_dimension: 16_384,
    max_alloc: 64 << 20,
};

fuzz_target!(|data: &[u8]| {
    let options = Options {
        limits: LIMITS,
        ..Options::default()
    };
    let walk = match Walk::streamed(Cursor::new(data), &options) {
        Ok(Some(walk)) => walk,
        // The decoders' panics are caught as `Error::Panic`; the fuzzer must still see them.
        Err(Error::Panic) => panic!("a decoder panicked opening the source"),
        Ok(None) | Err(_) => return,
    };
    let layout = *walk.layout();
    if u64::from(layout.width()) * u64::from(layout.height()) > LIMITS.max_pixels {
        return;
    }
    let png = matches!(&walk, Walk::Streamed(s) if matches!(s.0, Streamed::Png(_)));
    let tiles = Mutex::new(BTreeMap::new());
    let outcome = walk.run(1, |addr, bytes| -> Result<(), Error> {
        let fresh = tiles
            .lock()
            .map_err(|_| Error::Panic)?
            .insert(addr, bytes)
            .is_none();
        assert!(fresh, "{addr:?} handed over twice");
        Ok(())
    });
    match outcome {
        Ok(()) => {}
        Err(Error::Panic) => panic!("a decoder panicked while streaming"),
        Err(_) => return,
    }
    let tiles = tiles.into_inner().expect("no thread panicked");
    assert_eq!(tiles.len() as u64, layout.tile_count());
    if png {
        let mut whole = Tiler::open(data, &options).expect("a PNG that streams opens whole");
        for (addr, tile) in &tiles {
            let expected = whole
                .tile(addr.level, addr.col, addr.row)
                .expect("the whole-image path makes the tile");
            assert!(
                *tile == expected,
                "{addr:?} differs from the whole-image path's"
            );
        }
    }
});
