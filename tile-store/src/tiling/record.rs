//! A job's record in the store (`jobs/{job}.json`): what any instance needs to answer
//! for the job, and to run it again from its source when the instance running it is
//! gone. Records are written with compare-and-swap ([`crate::store::Store::put_if_version`]),
//! so two instances never both believe they hold the job.

use super::jobs::{JobError, JobState, Progress, Snapshot, Status};
use super::Settings;
use crate::store::{PyramidId, SourceDigest};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest record read back from the store; anything bigger is not one of ours.
pub const MAX_RECORD_BYTES: usize = 64 << 10;

/// Where the job's source image is, as another instance can reach it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RecordedSource {
    /// An `http`/`https` URL (checked again against the fetch policy before use).
    Url(String),
    /// An object key in the store's bucket.
    S3Key(String),
    /// A request body, kept in the store as `sources/{sha256}` until the job ends.
    Upload {
        /// Hex SHA-256 of the bytes.
        sha256: String,
        /// Its length.
        bytes: u64,
    },
}

impl RecordedSource {
    /// The stored copy of an uploaded source.
    pub fn upload_digest(&self) -> Option<SourceDigest> {
        match self {
            RecordedSource::Upload { sha256, .. } => SourceDigest::parse_hex(sha256),
            _ => None,
        }
    }
}

/// One job, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// The job's id.
    pub job: String,
    /// Where it is.
    pub state: JobState,
    /// The pyramid id, once known.
    pub pyramid: Option<String>,
    /// Why it failed.
    pub error: Option<JobError>,
    /// What to tile.
    pub source: RecordedSource,
    /// How to tile it.
    pub settings: Settings,
    /// The subject recorded as the pyramid's committer.
    pub committer: String,
    /// The instance holding the job's lease (none while queued and unclaimed).
    pub instance: Option<String>,
    /// How many times an instance has claimed it.
    pub attempts: u32,
    /// Counts lease renewals: every renewal changes the record (and so its version),
    /// which is how other instances see that its runner is alive.
    pub beat: u64,
    /// Bytes and tiles so far (as of the last renewal).
    pub progress: Progress,
    /// When the job was asked for (ms since the epoch).
    pub created_at_ms: u64,
    /// When it ended (ms since the epoch).
    pub finished_at_ms: Option<u64>,
}

impl JobRecord {
    /// A new, unclaimed record.
    pub fn queued(
        job: &str,
        source: RecordedSource,
        settings: Settings,
        committer: &str,
        pyramid: Option<&PyramidId>,
    ) -> Self {
        JobRecord {
            job: job.to_owned(),
            state: JobState::Queued,
            pyramid: pyramid.map(ToString::to_string),
            error: None,
            source,
            settings,
            committer: committer.to_owned(),
            instance: None,
            attempts: 0,
            beat: 0,
            progress: Progress::default(),
            created_at_ms: now_ms(),
            finished_at_ms: None,
        }
    }

    /// The record's answer fields, as a local job's.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            status: Status {
                state: self.state,
                pyramid: self
                    .pyramid
                    .as_deref()
                    .and_then(|p| PyramidId::parse(p).ok()),
                error: self.error.clone(),
            },
            progress: self.progress.clone(),
            instance: self.instance.clone(),
            attempts: self.attempts,
        }
    }

    /// Takes what a running job says about itself; an ended job also gets its end time.
    pub fn update_from(&mut self, snapshot: &Snapshot) {
        self.state = snapshot.status.state;
        self.pyramid = snapshot.status.pyramid.as_ref().map(ToString::to_string);
        self.error.clone_from(&snapshot.status.error);
        self.progress = snapshot.progress.clone();
        if self.state.is_finished() && self.finished_at_ms.is_none() {
            self.finished_at_ms = Some(now_ms());
        }
    }

    /// Parses a stored record; `None` for anything else (a foreign or damaged object).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > MAX_RECORD_BYTES {
            return None;
        }
        serde_json::from_slice(bytes).ok()
    }

    /// The bytes stored.
    pub fn to_bytes(&self) -> bytes::Bytes {
        bytes::Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as an instance of this version writes it: other instances (and the
    /// next version) must read exactly this.
    const STORED: &str = r#"{"job":"0123456789abcdef0123456789abcdef","state":"tiling","pyramid":null,"error":null,"source":{"upload":{"sha256":"aa","bytes":12}},"settings":{"format":null,"quality":null,"tileSize":510,"overlap":null},"committer":"jwt:alice","instance":"host-a:12","attempts":2,"beat":7,"progress":{"bytes":12,"bytesTotal":null,"tiles":3,"tilesTotal":9},"createdAtMs":1,"finishedAtMs":null}"#;

    #[test]
    fn the_stored_form_is_fixed() {
        let record = JobRecord::parse(STORED.as_bytes()).expect("parses");
        assert_eq!(record.state, JobState::Tiling);
        assert_eq!(record.instance.as_deref(), Some("host-a:12"));
        assert_eq!((record.attempts, record.beat), (2, 7));
        assert_eq!(record.settings.tile_size, Some(510));
        assert_eq!(record.progress.tiles_total, Some(9));
        assert_eq!(
            record.source,
            RecordedSource::Upload {
                sha256: "aa".into(),
                bytes: 12
            }
        );
        assert_eq!(
            String::from_utf8(record.to_bytes().to_vec()).expect("utf-8"),
            STORED
        );
    }

    #[test]
    fn foreign_or_oversized_objects_are_not_records() {
        assert!(JobRecord::parse(b"{}").is_none());
        assert!(JobRecord::parse(b"not json").is_none());
        let padded = format!("{}{}", STORED, " ".repeat(MAX_RECORD_BYTES));
        assert!(JobRecord::parse(padded.as_bytes()).is_none());
    }
}
