//! A real `moto_server` (moto 5, which honours `If-None-Match: *` and `If-Match` on
//! PutObject) on 127.0.0.1 with a free port and a fresh bucket, killed on drop.
#![allow(dead_code, clippy::unwrap_used)]

use super::procs::free_port;
use super::s3_endpoint::S3Endpoint;
use aws_config::SdkConfig;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tile_store::store::s3::S3Store;

pub const BUCKET: &str = "tessera-moto";

/// A running `moto_server`.
pub struct Moto {
    child: Child,
    pub port: u16,
}

fn moto_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::split_paths(&path).map(|d| d.join("moto_server")))
        .chain(home.iter().map(|h| h.join(".local/bin/moto_server")))
        .chain(home.iter().map(|h| h.join(".pyenv/shims/moto_server")))
        .find(|c| c.is_file())
        .expect(
            "moto_server not found (looked at $MOTO_SERVER, $PATH, ~/.local/bin, ~/.pyenv/shims). \
             The conditional-write tests need it: `scripts/setup.sh test` installs it \
             (python3 -m pip install 'moto[server]').",
        )
}

impl Moto {
    /// Starts moto and creates [`BUCKET`]; returns once the bucket answers.
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let mut moto = Moto { child, port };
        moto.wait_ready().await;
        moto
    }

    /// Polls CreateBucket until moto answers it (it listens before it serves).
    async fn wait_ready(&mut self) {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if client.create_bucket().bucket(BUCKET).send().await.is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("moto_server exited before serving: {status}");
            }
            assert!(Instant::now() < deadline, "moto_server never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The endpoint, its credentials and the bucket.
    pub fn endpoint_of(&self) -> S3Endpoint<'static> {
        S3Endpoint {
            url: self.endpoint(),
            access_key: "moto",
            secret_key: "moto",
            bucket: BUCKET,
        }
    }

    pub fn sdk_config(&self) -> SdkConfig {
        self.endpoint_of().sdk_config()
    }

    /// A plain SDK client, to look at the bucket behind tile-store's back.
    pub fn client(&self) -> aws_sdk_s3::Client {
        self.endpoint_of().client()
    }

    /// tile-store's S3 store on the bucket, under `prefix`.
    pub fn store(&self, prefix: &str) -> S3Store {
        self.endpoint_of().store(prefix)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
