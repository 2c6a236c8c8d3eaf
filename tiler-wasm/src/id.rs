//! The pyramid id: a content address shared by the browser, the server and the store.
//!
//! Recipe (version 2), documented in docs/pyramid-format.md:
//! `id = hex(SHA-256("tessera-pyramid-v2;format=F;quality=Q;tile_size=T;overlap=O;source=" + hex(SHA-256(source bytes))))`
//! where `F` is `auto`, `jpeg`, `png` or `webp` as requested, and `Q` the JPEG/WebP quality.

use crate::Options;
use sha2::{Digest, Sha256};

/// Bumped whenever the pixels a pyramid holds for the same source and settings could change.
pub const ID_VERSION: u32 = 2;

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
            "9f4ee70e550bd09048ea884ee11c0160debc93a9301b117f97aa34be8a0f9326",
        ),
        (
            b"",
            "2a20cc60a85d4144b3a1cb4600d6b2d2d963a5961a4d5dec1e50065458374604",
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
            "4cbd98be746b90c6c16400b338ff706080bc36d52fbeca6b18425bde1ab4433a"
        );
        let png = Options {
            format: Some(TileFormat::Png),
            tile_size: 256,
            overlap: 0,
            ..Options::default()
        };
        assert_eq!(
            pyramid_id(b"hello", &png),
            "4ba1110b476c19b070edde39e0070fd1b3cbabdc39913b0f5965406c472a2b88"
        );
        // From the source's digest, as the store and the streaming hasher compute it.
        assert_eq!(
            id_from_source_digest(
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                &png
            ),
            "4ba1110b476c19b070edde39e0070fd1b3cbabdc39913b0f5965406c472a2b88"
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
