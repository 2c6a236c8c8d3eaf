//! A real `s3s-fs` on 127.0.0.1 with a free port and a fresh data folder, stopped on drop.
#![allow(dead_code, clippy::unwrap_used)]

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::{Credentials, Region, SharedCredentialsProvider};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tile_store::store::s3::{S3Settings, S3Store};

pub const ACCESS_KEY: &str = "tessera-test-key";
pub const SECRET_KEY: &str = "tessera-test-secret";
pub const BUCKET: &str = "tessera-tiles";

/// A running `s3s-fs`, stopped on drop.
pub struct S3sFs {
    child: Child,
    pub endpoint: String,
    _data: tempfile::TempDir,
}

fn s3s_fs_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::var_os("S3S_FS")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::split_paths(&path).map(|d| d.join("s3s-fs")))
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs")));
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "s3s-fs not found (looked at $S3S_FS, $PATH and ~/.cargo/bin). The S3 tests need a real \
         S3-compatible server: `cargo install s3s-fs@0.14.1 --locked --features binary` \
         (the README's test command does this)."
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl S3sFs {
    pub fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(data.path().join(BUCKET)).unwrap();
        let port = free_port();
        let mut child = Command::new(s3s_fs_binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("s3s-fs exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen on port {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        S3sFs {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _data: data,
        }
    }

    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "tests",
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

    pub fn store(&self, prefix: &str) -> S3Store {
        S3Store::from_sdk_config(
            &self.sdk_config(),
            S3Settings {
                bucket: BUCKET.into(),
                prefix: prefix.into(),
                path_style: true,
                timeout: std::time::Duration::from_secs(20),
            },
        )
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
