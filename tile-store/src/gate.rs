//! [`UploadGate`]: a cap on uploads handled at once, so that many slow clients or a
//! slow store cannot make tile-store hold an unbounded number of request bodies.

use crate::error::{AppError, Result, RETRY_AFTER_UNAVAILABLE_SECS};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admits at most `capacity` uploads at a time; others wait a little, then are
/// told to retry (`503` with `Retry-After`).
#[derive(Debug)]
pub struct UploadGate {
    permits: Arc<Semaphore>,
    capacity: usize,
    wait: Duration,
}

/// How long an upload waits for its turn before it is refused.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Uploads admitted at once by default.
pub const DEFAULT_CAPACITY: usize = 16;

impl Default for UploadGate {
    fn default() -> Self {
        UploadGate::new(DEFAULT_CAPACITY, DEFAULT_WAIT)
    }
}

impl UploadGate {
    /// A gate letting `capacity` (at least 1) uploads through at once, each waiting
    /// at most `wait` for its turn.
    pub fn new(capacity: usize, wait: Duration) -> Self {
        let capacity = capacity.max(1);
        UploadGate {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
            wait,
        }
    }

    /// Waits for a turn; the upload holds it until the permit is dropped.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit> {
        let busy = || AppError::Busy {
            message: format!("{} uploads are already in progress", self.capacity),
            retry_after_secs: RETRY_AFTER_UNAVAILABLE_SECS,
        };
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }

    /// Uploads in progress now.
    pub fn in_use(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    /// Uploads admitted at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_past_capacity_after_waiting() {
        let gate = UploadGate::new(2, Duration::from_millis(20));
        let a = gate.enter().await.expect("first");
        let _b = gate.enter().await.expect("second");
        assert_eq!(gate.in_use(), 2);
        let refused = gate
            .enter()
            .await
            .expect_err("third waits, then is refused");
        assert_eq!(
            refused.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        drop(a);
        let _c = gate.enter().await.expect("a turn freed up");
        assert_eq!(gate.in_use(), 2);
    }
}
