//! The tile-upload batch parser (`tiler_wasm::batch`): never panics, never reads past the body,
//! and what it accepts encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiler_wasm::batch;

const MAX_TILE_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(frames) = batch::parse(data, MAX_TILE_BYTES) else {
        return;
    };
    let total: usize = frames.iter().map(|f| f.bytes.len()).sum();
    assert!(total <= data.len());
    assert!(frames.iter().all(|f| f.bytes.len() <= MAX_TILE_BYTES));
    let encoded = batch::encode(frames.iter().copied()).expect("accepted tiles encode");
    let again = batch::parse(&encoded, MAX_TILE_BYTES).expect("re-encoded batch parses");
    assert_eq!(again, frames);
});
