//! `.dzi` → layout → tile counts and tile rectangles, built with overflow checks on
//! (see `[profile.release]` in this folder's Cargo.toml): any geometry arithmetic
//! that wraps on hostile sizes panics here. The manifest is taken either as XML or,
//! to reach every size quickly, as five raw numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tiler_wasm::{Dzi, Layout, TileFormat};

fn exercise(layout: &Layout) {
    let count = layout.tile_count();
    assert_eq!(layout.checked_tile_count().unwrap_or(u64::MAX), count);
    let mut sum: u64 = 0;
    for level in 0..=layout.max_level() {
        let (w, h) = layout.level_size(level).expect("level in range");
        let (cols, rows) = layout.grid(level).expect("level in range");
        assert!(cols >= 1 && rows >= 1);
        sum = sum.saturating_add(u64::from(cols) * u64::from(rows));
        // The corner tiles, the last one in particular, cover the level exactly.
        for (col, row) in [(0, 0), (cols - 1, 0), (0, rows - 1), (cols - 1, rows - 1)] {
            let rect = layout.tile_rect(level, col, row).expect("tile in grid");
            assert!(rect.width >= 1 && rect.height >= 1);
            assert!(u64::from(rect.x) + u64::from(rect.width) <= u64::from(w));
            assert!(u64::from(rect.y) + u64::from(rect.height) <= u64::from(h));
        }
        assert!(layout.tile_rect(level, cols, 0).is_err());
        assert!(layout.tile_rect(level, 0, rows).is_err());
    }
    assert_eq!(sum, count);
    assert!(layout.tile_rect(layout.max_level() + 1, 0, 0).is_err());
    if count <= 4096 {
        assert_eq!(layout.tiles().count() as u64, count);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(dzi) = Dzi::parse(data) {
        exercise(&dzi.layout().expect("a parsed .dzi has a valid geometry"));
    }
    if data.len() >= 16 {
        let n = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let dzi = Dzi {
            format: TileFormat::Png,
            width: n(0),
            height: n(4),
            tile_size: n(8) % 9000,
            overlap: n(12) % 9000,
        };
        if let Ok(layout) = dzi.layout() {
            exercise(&layout);
            let again = Dzi::parse(dzi.to_xml().as_bytes()).expect("its own XML parses");
            assert_eq!(again, dzi);
        }
    }
});
