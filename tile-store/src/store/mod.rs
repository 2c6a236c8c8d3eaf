//! Where pyramids live: one small async trait, a local-disk store and an S3 store.
//!
//! Keys follow the Deep Zoom convention, so a plain static host can serve a store:
//! `{prefix}{id}.dzi` and `{prefix}{id}_files/{level}/{col}_{row}.{ext}`. Keys can
//! only be built from a validated [`PyramidId`] and numbers, so no key can name a
//! path outside the store.

pub mod disk;
pub mod s3;

use crate::error::{AppError, Result};
use async_trait::async_trait;
use bytes::Bytes;

/// A pyramid id: 64 lowercase hex characters (see [`tiler_wasm::id`] for the recipe).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PyramidId(String);

impl PyramidId {
    /// Validates `id`.
    pub fn parse(id: &str) -> Result<Self> {
        if tiler_wasm::is_valid_id(id) {
            Ok(PyramidId(id.to_owned()))
        } else {
            Err(AppError::bad_request(
                "invalid_id",
                "a pyramid id is 64 lowercase hex characters",
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PyramidId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub use tiler_wasm::name::{canonical_format, parse_decimal, TileName};

/// The address of one stored object, relative to the store's root or prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `{id}.dzi`, the commit marker and manifest.
    Dzi(PyramidId),
    /// `{id}_files/{level}/{col}_{row}.{ext}`.
    Tile(PyramidId, TileName),
    /// `committers/{id}.json`: who committed the pyramid (kept apart from the
    /// Deep Zoom files, so a static host of the store does not publish it).
    Committer(PyramidId),
}

impl Key {
    /// The object's path relative to the store root (without the S3 prefix).
    pub fn path(&self) -> String {
        match self {
            Key::Dzi(id) => format!("{id}.dzi"),
            Key::Tile(id, tile) => format!("{id}_files/{}", tile.relative()),
            Key::Committer(id) => format!("committers/{id}.json"),
        }
    }

    /// The `Content-Type` the object is served with.
    pub fn content_type(&self) -> &'static str {
        match self {
            Key::Dzi(_) => "application/xml",
            Key::Tile(_, tile) => tile.format.mime(),
            Key::Committer(_) => "application/json",
        }
    }
}

/// The folder holding a pyramid's tiles: `{id}_files/`.
pub fn tiles_prefix(id: &PyramidId) -> String {
    format!("{id}_files/")
}

/// What a conditional write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object did not exist and now holds the new bytes.
    Created,
    /// An object was already there; it was left untouched.
    Exists,
}

/// A place that keeps pyramid objects. Every write is atomic: readers see the old
/// object or the new one, never a part.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The object's bytes, or `None` if absent.
    async fn get(&self, key: &Key) -> Result<Option<Bytes>>;
    /// The object's size, or `None` if absent.
    async fn head(&self, key: &Key) -> Result<Option<u64>>;
    /// Writes the object, replacing any previous one.
    async fn put(&self, key: &Key, bytes: Bytes) -> Result<()>;
    /// Writes the object only if nothing is stored under `key`.
    async fn put_if_absent(&self, key: &Key, bytes: Bytes) -> Result<PutOutcome>;
    /// The tiles stored for a pyramid (names that are not tiles are skipped).
    async fn list_tiles(&self, id: &PyramidId) -> Result<Vec<TileName>>;
    /// Removes the object; absent objects are not an error.
    async fn delete(&self, key: &Key) -> Result<()>;
    /// Removes every tile of a pyramid; returns how many objects were removed.
    async fn delete_tiles(&self, id: &PyramidId) -> Result<u64>;
    /// A short description for logs.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deep_zoom_paths() {
        let id = PyramidId::parse(&"ab".repeat(32)).expect("valid");
        assert_eq!(
            Key::Dzi(id.clone()).path(),
            format!("{}.dzi", "ab".repeat(32))
        );
        assert!(PyramidId::parse("../etc").is_err());
    }
}
