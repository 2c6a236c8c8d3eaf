//! tile-store's batch-upload frame parser: never panics, never reads past the body,
//! and what it accepts encodes back to the same bytes' tiles.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tile_store::routes::batch;

const MAX_TILE_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(tiles) = batch::parse(Bytes::copy_from_slice(data), MAX_TILE_BYTES) else {
        return;
    };
    let total: usize = tiles.iter().map(|(_, b)| b.len()).sum();
    assert!(total <= data.len());
    assert!(tiles.iter().all(|(_, b)| b.len() <= MAX_TILE_BYTES));
    let encoded = batch::encode(tiles.iter().map(|(n, b)| (*n, b.as_ref())));
    let again =
        batch::parse(Bytes::from(encoded), MAX_TILE_BYTES).expect("re-encoded batch parses");
    assert_eq!(again, tiles);
});
