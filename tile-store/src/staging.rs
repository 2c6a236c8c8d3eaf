//! Per-writer staging of uploads, so no writer can slip tiles into a pyramid someone
//! else commits.
//!
//! Tiles uploaded for a pyramid that is not committed yet are kept under
//! `staging/{writer}/{id}_files/…` ([`crate::store::Key::Staged`]); the listing shows a
//! writer only its own, and its commit promotes only its own to the final keys. The
//! writer is the JWT subject (or static token) of the caller; an anonymous caller is
//! known by an upload session: a random 128-bit id the server hands out on the first
//! write ([`SESSION_HEADER`]) and the client sends back. Staged objects older than
//! `--upload-ttl` are removed by [`sweep`], which [`spawn_sweeper`] runs periodically.

use crate::auth::Caller;
use crate::error::{AppError, Result};
use crate::store::{Store, WriterId};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The header carrying an anonymous writer's upload session, both ways.
pub const SESSION_HEADER: &str = "tessera-upload-session";

/// Default of `--upload-ttl`: one day.
pub const DEFAULT_UPLOAD_TTL_SECS: u64 = 86_400;

/// Longest pause between two sweeps, whatever the TTL.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// An anonymous upload session: 32 lowercase hex characters (128 random bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh session from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| AppError::Internal(format!("random source: {e}")))?;
        Ok(SessionId(hex::encode(bytes)))
    }

    /// Validates a session sent back by a client.
    pub fn parse(text: &str) -> Result<Self> {
        let valid =
            text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid {
            Ok(SessionId(text.to_owned()))
        } else {
            Err(AppError::bad_request(
                "invalid_session",
                format!("{SESSION_HEADER} is 32 lowercase hex characters, as the server gave it"),
            ))
        }
    }

    /// The session as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who is uploading: the staging folder's owner, and for an anonymous caller the
/// session to hand back.
#[derive(Debug, Clone)]
pub struct Writer {
    /// The digest naming the writer's staging folder.
    pub id: WriterId,
    /// The upload session (anonymous callers only).
    pub session: Option<SessionId>,
}

impl Writer {
    /// The writer behind `caller`: its subject when it has credentials, else the
    /// session it sent (`session`, validated) or a fresh one.
    pub fn of(caller: &Caller, session: Option<&str>) -> Result<Self> {
        if !caller.is_anonymous() {
            return Ok(Writer {
                id: WriterId::of(&caller.subject),
                session: None,
            });
        }
        let session = match session {
            Some(text) => SessionId::parse(text)?,
            None => SessionId::generate()?,
        };
        Ok(Writer {
            id: WriterId::of(&format!("session:{}", session.as_str())),
            session: Some(session),
        })
    }
}

/// Removes the staged objects last written more than `ttl` before `now`; returns how
/// many. Committed pyramids are never touched (they are not under `staging/`).
pub async fn sweep(store: &dyn Store, now: SystemTime, ttl: Duration) -> Result<u64> {
    let Some(cutoff) = now.checked_sub(ttl) else {
        return Ok(0);
    };
    store.sweep_staged(cutoff).await
}

/// How often the sweeper runs for `ttl`: a quarter of it, at most 10 minutes, at
/// least a second.
pub fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_secs(1), MAX_SWEEP_INTERVAL)
}

/// Runs [`sweep`] every [`sweep_interval`] until the returned task is aborted.
pub fn spawn_sweeper(store: Arc<dyn Store>, ttl: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(sweep_interval(ttl));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match sweep(store.as_ref(), SystemTime::now(), ttl).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "expired staged uploads removed"),
                Err(e) => tracing::warn!(error = %e, "sweeping staged uploads failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_hex_and_checked() {
        let a = SessionId::generate().expect("random");
        let b = SessionId::generate().expect("random");
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()).ok(), Some(a.clone()));
        for bad in [
            "",
            "../../etc/passwd0000000000000000",
            &"A".repeat(32),
            &"a".repeat(33),
        ] {
            assert_eq!(
                SessionId::parse(bad).map_err(|e| e.code()).err(),
                Some("invalid_session"),
                "{bad}"
            );
        }
    }

    #[test]
    fn anonymous_writers_differ_by_session_and_subjects_by_subject() {
        let anonymous = Caller::anonymous();
        let one = Writer::of(&anonymous, None).expect("fresh");
        let two = Writer::of(&anonymous, None).expect("fresh");
        assert_ne!(one.id, two.id);
        let again =
            Writer::of(&anonymous, one.session.as_ref().map(SessionId::as_str)).expect("valid");
        assert_eq!(again.id, one.id);
        let user = Caller {
            subject: "jwt:alice".into(),
            can_delete_any: false,
        };
        let alice = Writer::of(&user, Some("not even checked")).expect("subject");
        assert_eq!(alice.id, WriterId::of("jwt:alice"));
        assert!(alice.session.is_none());
    }

    #[test]
    fn the_sweep_interval_is_a_quarter_of_the_ttl_within_bounds() {
        assert_eq!(
            sweep_interval(Duration::from_secs(86_400)),
            MAX_SWEEP_INTERVAL
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(40)),
            Duration::from_secs(10)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}
