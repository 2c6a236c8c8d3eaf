//! What every S3 server the tests start shares: an SDK client and tile-store's store on
//! one bucket of an endpoint on 127.0.0.1 (s3s-fs and moto differ only in how they run).
#![allow(dead_code, clippy::unwrap_used)]

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::{Credentials, Region, SharedCredentialsProvider};
use std::time::Duration;
use tile_store::store::s3::{S3Settings, S3Store};

/// An S3 endpoint, its credentials and the tests' bucket on it.
pub struct S3Endpoint<'a> {
    pub url: String,
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub bucket: &'a str,
}

impl S3Endpoint<'_> {
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                self.access_key,
                self.secret_key,
                None,
                None,
                "tests",
            )))
            .http_client(tile_store::store::s3::http_client())
            .build()
    }

    /// A plain SDK client, to look at the bucket behind tile-store's back.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// tile-store's S3 store on the bucket, under `prefix`.
    pub fn store(&self, prefix: &str) -> S3Store {
        S3Store::from_sdk_config(
            &self.sdk_config(),
            S3Settings {
                bucket: self.bucket.into(),
                prefix: prefix.into(),
                path_style: true,
                timeout: Duration::from_secs(20),
            },
        )
    }
}
