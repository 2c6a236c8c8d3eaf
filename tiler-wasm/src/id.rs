//! The pyramid id: a content address shared by the browser, the server and the store.
//!
//! Recipe (version 3), documented in docs/pyramid-format.md:
//! `id = hex(SHA-256("tessera-pyramid-v3;format=F;quality=Q;tile_size=T;overlap=O;source=" + hex(SHA-256(source bytes))))`
//! where `F` is `auto`, `jpeg`, `png` or `webp` as requested, and `Q` the JPEG/WebP quality.

use crate::Options;
use sha2::{Digest, Sha256};

/// Bumped whenever the pixels a pyramid holds for the same source and settings could change.
pub const ID_VERSION: u32 = 3;

/// Hashes source bytes as they arrive, so the id is ready when the download ends.
#[derive(Default, Clone)]
pub struct IdHasher(Sha256);

impl IdHasher {
    /// A hasher with nothing fed yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds the next chunk of source bytes.
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }
    /// The pyramid id for the bytes fed so far and these options.
    pub fn finish(self, options: &Options) -> String {
        id_from_source_digest(&hex::encode(self.0.finalize()), options)
    }
}

/// The pyramid id of `source` tiled with `options`.
pub fn pyramid_id(source: &[u8], options: &Options) -> String {
    let mut h = IdHasher::new();
    h.update(source);
    h.finish(options)
}

/// The pyramid id from the hex SHA-256 of the source bytes.
pub fn id_from_source_digest(source_sha256_hex: &str, options: &Options) -> String {
    let format = options.format.map_or("auto", |f| f.extension());
    let recipe = format!(
        "tessera-pyramid-v{ID_VERSION};format={format};quality={};tile_size={};overlap={};source={source_sha256_hex}",
        options.quality, options.tile_size, options.overlap
    );
    hex::encode(Sha256::digest(recipe.as_bytes()))
}

/// Whether `id` has the form of a pyramid id: 64 lowercase hex characters.
pub fn is_valid_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::TileFormat;

    /// Fixed vectors, computed outside this crate (Python's `hashlib` over the documented recipe),
    /// so that any change to the recipe is a deliberate, visible one.
    const VECTORS: &[(&[u8], &str)] = &[
        (
            b"hello",
            "c385fe214721af3917a8620411fd020cb866f3c76b982e088176f77070ab6350",
        ),
        (
            b"",
            "a995f69ff3c79ee81c335a3bd06fbabc45953b6b56374b5294cfa8c5e652c0ae",
        ),
    ];

    #[test]
    fn default_settings_match_fixed_vectors() {
        for (source, want) in VECTORS {
            assert_eq!(pyramid_id(source, &Options::default()), *want);
        }
    }

    #[test]
    fn every_setting_enters_the_id_as_the_recipe_says() {
        let q90 = Options {
            quality: 90,
            ..Options::default()
        };
        assert_eq!(
            pyramid_id(b"hello", &q90),
            "9f58ed7bafd88a15fb951a33b5ad67580c42a8cccad9f7d574041691aae32136"
        );
        let png = Options {
            format: Some(TileFormat::Png),
            tile_size: 256,
            overlap: 0,
            ..Options::default()
        };
        assert_eq!(
            pyramid_id(b"hello", &png),
            "e4b654f0f8ceb5ef6382c3c9d01b58473e6408818f69258709797fb155ffde0b"
        );
        // From the source's digest, as the store and the streaming hasher compute it.
        assert_eq!(
            id_from_source_digest(
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                &png
            ),
            "e4b654f0f8ceb5ef6382c3c9d01b58473e6408818f69258709797fb155ffde0b"
        );
    }

    #[test]
    fn chunked_hashing_gives_the_same_id() {
        let mut chunks = IdHasher::new();
        chunks.update(b"hel");
        chunks.update(b"");
        chunks.update(b"lo");
        assert_eq!(chunks.finish(&Options::default()), VECTORS[0].1);
    }

    #[test]
    fn id_validation() {
        assert!(is_valid_id(&"a".repeat(64)));
        assert!(!is_valid_id(&"A".repeat(64)));
        assert!(!is_valid_id(&"a".repeat(63)));
        assert!(!is_valid_id("../../etc/passwd"));
    }
}
