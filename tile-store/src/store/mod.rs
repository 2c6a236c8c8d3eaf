//! Where pyramids live: one small async trait, a local-disk store and an S3 store.
//!
//! Keys follow the Deep Zoom convention, so a plain static host can serve a store:
//! `{prefix}{id}.dzi` and `{prefix}{id}_files/{level}/{col}_{row}.{ext}`. Uploads to
//! pyramids not committed yet are staged apart, per writer:
//! `{prefix}staging/{writer}/{id}_files/{level}/{col}_{row}.{ext}`. Server-side tiling
//! keeps its shared state beside them: job records in `{prefix}jobs/{job}.json` and
//! uploaded source images in `{prefix}sources/{sha256}`. Keys can only be built from a
//! validated [`PyramidId`] or [`JobId`], a digest ([`WriterId`], [`SourceDigest`]) and
//! numbers, so no key can name a path outside the store.

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

/// Who staged tiles: the first 128 bits of the SHA-256 of the writer's identity (a JWT
/// subject, a token, or an anonymous upload session), so that no identity string ever
/// becomes a path. 128 bits, not 256: finding an identity that lands on another
/// writer's folder is a second preimage (2¹²⁸ work), and shorter keys stay under the
/// 255-byte file names of S3-compatible servers that map keys to files (s3s-fs).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WriterId([u8; 16]);

impl WriterId {
    /// The writer known as `identity` (`jwt:{sub}`, `token:…`, `session:{hex}`).
    pub fn of(identity: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(identity.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        WriterId(id)
    }

    /// Parses the 32 lowercase hex characters of a staging folder name.
    pub fn parse_hex(text: &str) -> Option<Self> {
        if text.len() != 32 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut digest = [0u8; 16];
        hex::decode_to_slice(text, &mut digest).ok()?;
        Some(WriterId(digest))
    }
}

impl std::fmt::Display for WriterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for WriterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WriterId({self})")
    }
}

/// A server-side tiling job's id: 32 lowercase hex characters (128 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

impl JobId {
    /// Validates `id`.
    pub fn parse(id: &str) -> Option<Self> {
        (id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| JobId(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SHA-256 of an uploaded source image, naming its copy in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceDigest(pub [u8; 32]);

impl SourceDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        SourceDigest(Sha256::digest(bytes).into())
    }

    /// Parses 64 lowercase hex characters.
    pub fn parse_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(text, &mut digest).ok()?;
        Some(SourceDigest(digest))
    }
}

impl std::fmt::Display for SourceDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The version of a stored object as the store reports it (S3's ETag; on disk, a
/// digest of the bytes), for compare-and-swap writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(pub String);

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
    /// `staging/{writer}/{id}_files/{level}/{col}_{row}.{ext}`: a tile one writer
    /// uploaded for a pyramid not committed yet; only that writer's commit uses it.
    Staged(WriterId, PyramidId, TileName),
    /// `jobs/{job}.json`: a server-side tiling job's record, shared by every instance.
    Job(JobId),
    /// `sources/{sha256}`: an image sent as a request body, kept until its job ends so
    /// that another instance can finish the job.
    Source(SourceDigest),
    /// `locks/{id}.json`: held by the instance committing a pyramid, so that two
    /// instances never promote two writers' tiles into one pyramid at once.
    CommitLock(PyramidId),
}

impl Key {
    /// The object's path relative to the store root (without the S3 prefix).
    pub fn path(&self) -> String {
        match self {
            Key::Dzi(id) => format!("{id}.dzi"),
            Key::Tile(id, tile) => format!("{id}_files/{}", tile.relative()),
            Key::Committer(id) => format!("committers/{id}.json"),
            Key::Staged(writer, id, tile) => {
                format!("{}{}", staged_prefix(writer, id), tile.relative())
            }
            Key::Job(job) => format!("{JOBS_PREFIX}{job}.json"),
            Key::Source(digest) => format!("sources/{digest}"),
            Key::CommitLock(id) => format!("locks/{id}.json"),
        }
    }

    /// The `Content-Type` the object is served with.
    pub fn content_type(&self) -> &'static str {
        match self {
            Key::Dzi(_) => "application/xml",
            Key::Tile(_, tile) | Key::Staged(_, _, tile) => tile.format.mime(),
            Key::Committer(_) | Key::Job(_) | Key::CommitLock(_) => "application/json",
            Key::Source(_) => "application/octet-stream",
        }
    }
}

/// The folder holding a pyramid's tiles: `{id}_files/`.
pub fn tiles_prefix(id: &PyramidId) -> String {
    format!("{id}_files/")
}

/// The folder of job records: `jobs/`.
pub const JOBS_PREFIX: &str = "jobs/";

/// The job id of a record's name in [`JOBS_PREFIX`] (`{job}.json`).
pub fn job_of_record_name(name: &str) -> Option<JobId> {
    JobId::parse(name.strip_suffix(".json")?)
}

/// The folder of every staged tile: `staging/`.
pub const STAGING_PREFIX: &str = "staging/";

/// The folder holding one writer's staged tiles of a pyramid: `staging/{writer}/{id}_files/`.
pub fn staged_prefix(writer: &WriterId, id: &PyramidId) -> String {
    format!("{STAGING_PREFIX}{writer}/{}", tiles_prefix(id))
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
    /// The tiles `writer` has staged for a pyramid.
    async fn list_staged(&self, writer: &WriterId, id: &PyramidId) -> Result<Vec<TileName>>;
    /// Copies the object `from` to `to`, replacing `to` atomically.
    async fn copy(&self, from: &Key, to: &Key) -> Result<()>;
    /// Removes every tile `writer` staged for a pyramid; returns how many.
    async fn delete_staged(&self, writer: &WriterId, id: &PyramidId) -> Result<u64>;
    /// The object's bytes and version, or `None` if absent.
    async fn get_versioned(&self, key: &Key) -> Result<Option<(Bytes, Version)>>;
    /// Replaces the object only if its version is still `version`, returning the new
    /// version; `None` (nothing written) when it changed or went. Servers that ignore
    /// `If-Match` (s3s-fs) always write.
    async fn put_if_version(
        &self,
        key: &Key,
        bytes: Bytes,
        version: &Version,
    ) -> Result<Option<Version>>;
    /// The ids of every job record.
    async fn list_jobs(&self) -> Result<Vec<JobId>>;
    /// Removes every staged object last written before `cutoff`; returns how many.
    async fn sweep_staged(&self, cutoff: std::time::SystemTime) -> Result<u64>;
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
        let writer = WriterId::of("jwt:../../etc");
        let tile = TileName {
            level: 9,
            col: 0,
            row: 1,
            format: tiler_wasm::TileFormat::Png,
        };
        let path = Key::Staged(writer, id.clone(), tile).path();
        assert_eq!(
            path,
            format!("staging/{writer}/{}_files/9/0_1.png", "ab".repeat(32))
        );
        assert_eq!(writer.to_string().len(), 32);
        assert_eq!(WriterId::parse_hex(&writer.to_string()), Some(writer));
        assert_eq!(WriterId::parse_hex("../x"), None);
    }
}
