//! The S3 store, on `aws-sdk-s3`: objects under `{prefix}` in one bucket.
//!
//! Settings come from the same environment as the web app: `AWS_REGION`,
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (or the SDK's normal credential
//! chain), `AWS_ENDPOINT_URL` for S3-compatible servers, and the bucket name.
//!
//! The commit is `PutObject` with `If-None-Match: *`, so several tile-store
//! instances sharing a bucket cannot commit one pyramid twice. Some S3-compatible
//! servers ignore that header, so a `HeadObject` check runs first; on such servers a
//! race remains: two instances committing the same id within one round trip may both
//! write. Because ids are content hashes, both then write the same manifest.

use super::{
    job_of_record_name, staged_prefix, tiles_prefix, JobId, Key, PutOutcome, PyramidId, Store,
    TileName, Version, WriterId, JOBS_PREFIX, STAGING_PREFIX,
};
use crate::error::{AppError, Result};
use async_trait::async_trait;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, RequestChecksumCalculation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use bytes::Bytes;
use std::time::Duration;

/// Where in S3 the pyramids live.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Bucket name (`AWS_S3_BUCKET_NAME`).
    pub bucket: String,
    /// Prefix put before every key, e.g. `pyramids/`.
    pub prefix: String,
    /// Path-style addressing (`http://host/bucket/key`), needed by most S3-compatible servers.
    pub path_style: bool,
    /// Longest an S3 call may take, retries included; past it the request gets a `503`.
    pub timeout: Duration,
}

/// The `x-amz-copy-source` of `key` in `bucket`: percent-encoded but for `/` and
/// the unreserved characters.
fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = format!("{bucket}/");
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Longest wait for a TCP connection to S3.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Objects stored in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    settings: S3Settings,
}

fn store_error<E: ProvideErrorMetadata + std::fmt::Debug, R: HttpStatus + std::fmt::Debug>(
    what: &str,
    key: &str,
    err: SdkError<E, R>,
) -> AppError {
    let detail = match err.as_service_error() {
        Some(e) => format!(
            "{} ({})",
            e.code().unwrap_or("unknown"),
            e.message().unwrap_or("")
        ),
        None => format!("{err:?}"),
    };
    let message = format!("S3 {what} {key}: {detail}");
    if is_transient(&err) {
        AppError::Unavailable(message)
    } else {
        AppError::Store(message)
    }
}

/// Whether a failed S3 call may succeed if retried later: the server could not be
/// reached, timed out, broke off its answer, or said it is overloaded or failing.
/// These become `503` with `Retry-After` rather than `500`.
fn is_transient<E: ProvideErrorMetadata, R: HttpStatus>(err: &SdkError<E, R>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status_code();
            status >= 500
                || status == 429
                || matches!(
                    service.err().code(),
                    Some("SlowDown" | "ServiceUnavailable" | "RequestTimeout" | "InternalError")
                )
        }
        _ => false,
    }
}

fn status_of<E, R: HttpStatus>(err: &SdkError<E, R>) -> Option<u16> {
    err.raw_response().map(HttpStatus::status_code)
}

/// The HTTP status of a raw SDK response.
trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The HTTP client the SDK uses: hyper with rustls on ring, so no C toolchain is
/// needed (the SDK's default TLS build needs aws-lc).
pub fn http_client() -> aws_sdk_s3::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

impl S3Store {
    /// A store configured from the environment and the SDK's credential chain.
    pub async fn from_env(settings: S3Settings) -> Result<Self> {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .load()
            .await;
        if sdk.region().is_none() {
            return Err(AppError::Config(
                "the S3 store needs a region: set AWS_REGION".into(),
            ));
        }
        Ok(Self::from_sdk_config(&sdk, settings))
    }

    /// A store using an already loaded SDK configuration.
    pub fn from_sdk_config(sdk: &aws_config::SdkConfig, settings: S3Settings) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(settings.path_style)
            // Many S3-compatible servers reject the SDK's newer default checksums;
            // SigV4 already signs the payload hash.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            // A slow or unreachable S3 must not hold requests (and their bodies) for
            // ever: each call is bounded, and the caller answers 503.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(settings.timeout / 2)
                    .operation_timeout(settings.timeout)
                    .build(),
            )
            .build();
        S3Store {
            client: Client::from_conf(config),
            settings,
        }
    }

    /// The bucket and prefix in use.
    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    fn object_key(&self, key: &Key) -> String {
        format!("{}{}", self.settings.prefix, key.path())
    }

    /// Every object key under `{prefix}{relative}`.
    /// The tiles under the folder `relative` (`{id}_files/` or a writer's staged copy
    /// of it), in listing order; keys that are not tiles are skipped.
    async fn list_tiles_under(&self, relative: &str) -> Result<Vec<TileName>> {
        let full_prefix = format!("{}{relative}", self.settings.prefix);
        let mut tiles: Vec<TileName> = self
            .list_keys(relative)
            .await?
            .iter()
            .filter_map(|k| k.strip_prefix(&full_prefix))
            .filter_map(TileName::parse_relative)
            .collect();
        tiles.sort();
        Ok(tiles)
    }

    async fn list_keys(&self, relative: &str) -> Result<Vec<String>> {
        Ok(self
            .list_objects(relative)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    /// Every object under `{prefix}{relative}`: its key and when it was last written
    /// (seconds since the epoch, when the server says).
    async fn list_objects(&self, relative: &str) -> Result<Vec<(String, Option<i64>)>> {
        let prefix = format!("{}{relative}", self.settings.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.settings.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_error("list", &prefix, e))?;
            keys.extend(page.contents().iter().filter_map(|o| {
                let key = o.key()?.to_owned();
                Some((
                    key,
                    o.last_modified()
                        .map(aws_sdk_s3::primitives::DateTime::secs),
                ))
            }));
        }
        Ok(keys)
    }

    /// Removes the objects `keys` (full keys); returns how many.
    async fn delete_keys(&self, keys: &[String]) -> Result<u64> {
        let mut removed: u64 = 0;
        // DeleteObjects takes at most 1000 keys per request.
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| AppError::Internal(format!("S3 delete request: {e}")))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| AppError::Internal(format!("S3 delete request: {e}")))?;
            let output = self
                .client
                .delete_objects()
                .bucket(&self.settings.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| store_error("delete", chunk.first().map_or("", String::as_str), e))?;
            if let Some(failed) = output.errors().first() {
                return Err(AppError::Store(format!(
                    "S3 delete {}: {}",
                    failed.key().unwrap_or("?"),
                    failed.message().unwrap_or("failed")
                )));
            }
            removed = removed.saturating_add(chunk.len() as u64);
        }
        Ok(removed)
    }

    /// The object's bytes and ETag (when the server sends one), or `None` if absent.
    async fn get_object(&self, key: &Key) -> Result<Option<(Bytes, Option<String>)>> {
        let object_key = self.object_key(key);
        let response = self
            .client
            .get_object()
            .bucket(&self.settings.bucket)
            .key(&object_key)
            .send()
            .await;
        match response {
            Ok(output) => {
                let etag = output.e_tag().map(str::to_owned);
                let body = output
                    .body
                    .collect()
                    .await
                    .map_err(|e| AppError::Unavailable(format!("S3 read {object_key}: {e}")))?;
                Ok(Some((body.into_bytes(), etag)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(store_error("get", &object_key, e)),
        }
    }

    async fn put_object(&self, key: &Key, bytes: Bytes, if_none_match: bool) -> Result<()> {
        let object_key = self.object_key(key);
        let mut request = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(&object_key)
            .content_type(key.content_type())
            .body(ByteStream::from(bytes));
        if if_none_match {
            request = request.if_none_match("*");
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if if_none_match && matches!(status_of(&e), Some(409 | 412)) => {
                Err(AppError::Conflict {
                    code: "exists",
                    message: "already stored".into(),
                    missing: None,
                })
            }
            Err(e) => Err(store_error("put", &object_key, e)),
        }
    }
}

#[async_trait]
impl Store for S3Store {
    #[tracing::instrument(level = "debug", skip(self), fields(key = %key.path()))]
    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        Ok(self.get_object(key).await?.map(|(bytes, _)| bytes))
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key.path()))]
    async fn head(&self, key: &Key) -> Result<Option<u64>> {
        let object_key = self.object_key(key);
        let response = self
            .client
            .head_object()
            .bucket(&self.settings.bucket)
            .key(&object_key)
            .send()
            .await;
        match response {
            Ok(output) => Ok(Some(
                output.content_length().unwrap_or(0).try_into().unwrap_or(0),
            )),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(store_error("head", &object_key, e)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self, bytes), fields(key = %key.path(), len = bytes.len()))]
    async fn put(&self, key: &Key, bytes: Bytes) -> Result<()> {
        self.put_object(key, bytes, false).await
    }

    #[tracing::instrument(level = "debug", skip(self, bytes), fields(key = %key.path(), len = bytes.len()))]
    async fn put_if_absent(&self, key: &Key, bytes: Bytes) -> Result<PutOutcome> {
        // For servers that ignore If-None-Match; see the module docs for the race left.
        if self.head(key).await?.is_some() {
            return Ok(PutOutcome::Exists);
        }
        match self.put_object(key, bytes, true).await {
            Ok(()) => Ok(PutOutcome::Created),
            Err(AppError::Conflict { code: "exists", .. }) => Ok(PutOutcome::Exists),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_tiles(&self, id: &PyramidId) -> Result<Vec<TileName>> {
        self.list_tiles_under(&tiles_prefix(id)).await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key.path()))]
    async fn get_versioned(&self, key: &Key) -> Result<Option<(Bytes, Version)>> {
        let Some((bytes, etag)) = self.get_object(key).await? else {
            return Ok(None);
        };
        let etag = etag.ok_or_else(|| {
            AppError::Store(format!("S3 read {}: no ETag in the answer", key.path()))
        })?;
        Ok(Some((bytes, Version(etag))))
    }

    #[tracing::instrument(level = "debug", skip(self, bytes, version), fields(key = %key.path()))]
    async fn put_if_version(
        &self,
        key: &Key,
        bytes: Bytes,
        version: &Version,
    ) -> Result<Option<Version>> {
        let object_key = self.object_key(key);
        let response = self
            .client
            .put_object()
            .bucket(&self.settings.bucket)
            .key(&object_key)
            .content_type(key.content_type())
            .if_match(&version.0)
            .body(ByteStream::from(bytes))
            .send()
            .await;
        match response {
            Ok(output) => match output.e_tag() {
                Some(etag) => Ok(Some(Version(etag.to_owned()))),
                None => Err(AppError::Store(format!(
                    "S3 put {object_key}: no ETag in the answer"
                ))),
            },
            // 412: the ETag changed; 404 / 409: the object went or is being replaced.
            Err(e) if matches!(status_of(&e), Some(404 | 409 | 412)) => Ok(None),
            Err(e) => Err(store_error("put", &object_key, e)),
        }
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_jobs(&self) -> Result<Vec<JobId>> {
        let full_prefix = format!("{}{JOBS_PREFIX}", self.settings.prefix);
        let mut jobs: Vec<JobId> = self
            .list_keys(JOBS_PREFIX)
            .await?
            .iter()
            .filter_map(|k| k.strip_prefix(&full_prefix))
            .filter_map(job_of_record_name)
            .collect();
        jobs.sort();
        Ok(jobs)
    }

    #[tracing::instrument(level = "debug", skip(self), fields(key = %key.path()))]
    async fn delete(&self, key: &Key) -> Result<()> {
        let object_key = self.object_key(key);
        self.client
            .delete_object()
            .bucket(&self.settings.bucket)
            .key(&object_key)
            .send()
            .await
            .map_err(|e| store_error("delete", &object_key, e))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn delete_tiles(&self, id: &PyramidId) -> Result<u64> {
        let keys = self.list_keys(&tiles_prefix(id)).await?;
        self.delete_keys(&keys).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn list_staged(&self, writer: &WriterId, id: &PyramidId) -> Result<Vec<TileName>> {
        self.list_tiles_under(&staged_prefix(writer, id)).await
    }

    #[tracing::instrument(level = "debug", skip(self), fields(from = %from.path(), to = %to.path()))]
    async fn copy(&self, from: &Key, to: &Key) -> Result<()> {
        let (source, target) = (self.object_key(from), self.object_key(to));
        self.client
            .copy_object()
            .bucket(&self.settings.bucket)
            .copy_source(copy_source(&self.settings.bucket, &source))
            .key(&target)
            .send()
            .await
            .map_err(|e| store_error("copy", &source, e))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn delete_staged(&self, writer: &WriterId, id: &PyramidId) -> Result<u64> {
        let keys = self.list_keys(&staged_prefix(writer, id)).await?;
        self.delete_keys(&keys).await
    }

    #[tracing::instrument(level = "debug", skip(self))]
    async fn sweep_staged(&self, cutoff: std::time::SystemTime) -> Result<u64> {
        let cutoff = match cutoff.duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            Err(_) => return Ok(0),
        };
        // An object without a date is left alone: the next sweep, or a lifecycle rule, decides.
        let old: Vec<String> = self
            .list_objects(STAGING_PREFIX)
            .await?
            .into_iter()
            .filter(|(_, written)| written.is_some_and(|t| t < cutoff))
            .map(|(key, _)| key)
            .collect();
        self.delete_keys(&old).await
    }

    fn describe(&self) -> String {
        format!(
            "S3 store s3://{}/{}",
            self.settings.bucket, self.settings.prefix
        )
    }
}

impl S3Store {
    /// Reads a source image for server-side tiling: the object `key` of the store's
    /// bucket, as given (the pyramid prefix does not apply), at most `max_bytes` —
    /// checked from the object's size first and again while streaming (413 past it).
    /// The bytes go to `sink` as they arrive; returns the length.
    #[tracing::instrument(level = "debug", skip(self, progress, sink))]
    pub async fn get_source(
        &self,
        key: &str,
        max_bytes: u64,
        progress: impl Fn(u64, Option<u64>),
        sink: &mut (impl tokio::io::AsyncWrite + Unpin),
    ) -> Result<u64> {
        let bucket = &self.settings.bucket;
        let response = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
        let mut output = match response {
            Ok(output) => output,
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || status_of(&e) == Some(404) =>
            {
                return Err(AppError::NotFound(format!("no object s3://{bucket}/{key}")));
            }
            Err(e) => return Err(store_error("get", key, e)),
        };
        let too_large = |size: String| {
            AppError::PayloadTooLarge(format!(
                "s3://{bucket}/{key} is {size}, over the {max_bytes}-byte limit"
            ))
        };
        let expected = output.content_length().and_then(|n| u64::try_from(n).ok());
        if let Some(n) = expected.filter(|&n| n > max_bytes) {
            return Err(too_large(format!("{n} bytes")));
        }
        let mut received: u64 = 0;
        progress(0, expected);
        while let Some(chunk) = output.body.next().await {
            let chunk =
                chunk.map_err(|e| AppError::Store(format!("S3 read s3://{bucket}/{key}: {e}")))?;
            received = received
                .checked_add(chunk.len() as u64)
                .filter(|&n| n <= max_bytes)
                .ok_or_else(|| too_large("larger than that".into()))?;
            tokio::io::AsyncWriteExt::write_all(sink, &chunk)
                .await
                .map_err(crate::fetch::sink_error)?;
            progress(received, expected);
        }
        Ok(received)
    }
}
