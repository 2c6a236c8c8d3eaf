//! The `.dzi` parser: never panics, and whatever it accepts writes back to XML
//! that parses to the same manifest with a valid geometry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiler_wasm::Dzi;

fuzz_target!(|data: &[u8]| {
    let Ok(dzi) = Dzi::parse(data) else {
        return;
    };
    let layout = dzi.layout().expect("a parsed .dzi has a valid geometry");
    let _ = layout.tile_count();
    let again = Dzi::parse(dzi.to_xml().as_bytes()).expect("its own XML parses");
    assert_eq!(again, dzi);
});
