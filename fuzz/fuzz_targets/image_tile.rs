//! Source bytes → probe → open → metadata → `.dzi` → the top-left tile of the
//! full-resolution level and the 1×1 tile: the path every upload takes.
//!
//! Limits are small (4 megapixels, 64 MiB per allocation), so an input can only
//! fail with a typed error, never exhaust the fuzzer's memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiler_wasm::{probe, Error, Limits, Options, Tiler};

const LIMITS: Limits = Limits {
    max_pixels: 4_000_000,
    max_dimension: 16_384,
    max_alloc: 64 << 20,
};

fuzz_target!(|data: &[u8]| {
    let probed = probe(data, &LIMITS);
    let options = Options {
        limits: LIMITS,
        ..Options::default()
    };
    let mut tiler = match Tiler::open(data, &options) {
        Ok(tiler) => tiler,
        // The decoders' panics are caught as `Error::Panic`; the fuzzer must still see them.
        Err(Error::Panic) => panic!("a decoder panicked"),
        Err(_) => return,
    };
    let meta = tiler.metadata().clone();
    // What the header promised is what was decoded.
    let probed = probed.expect("an image that opens also probes");
    assert_eq!((probed.width, probed.height), (meta.width, meta.height));
    let layout = *tiler.layout();
    assert_eq!((layout.width(), layout.height()), (meta.width, meta.height));
    let _ = tiler.dzi().to_xml();
    let top = layout.max_level();
    tiler
        .tile(top, 0, 0)
        .expect("the first tile of an opened image encodes");
    tiler.tile(0, 0, 0).expect("the 1×1 tile encodes");
});
