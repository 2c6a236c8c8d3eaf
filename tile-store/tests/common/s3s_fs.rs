//! A real `s3s-fs` on 127.0.0.1 with a free port and a fresh data folder, stopped on drop.
//! It keeps its port and folder, so a test can kill it and start it again.
#![allow(dead_code, clippy::unwrap_used)]

use super::procs::{free_port, wait_for_port};
use super::s3_endpoint::S3Endpoint;
use aws_config::SdkConfig;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use tile_store::store::s3::S3Store;

pub const ACCESS_KEY: &str = "tessera-test-key";
pub const SECRET_KEY: &str = "tessera-test-secret";
pub const BUCKET: &str = "tessera-tiles";

/// A running `s3s-fs`.
pub struct S3sFs {
    child: Option<Child>,
    pub port: u16,
    pub data: tempfile::TempDir,
}

fn s3s_fs_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::var_os("S3S_FS")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::split_paths(&path).map(|d| d.join("s3s-fs")))
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/s3s-fs")))
        .find(|c| c.is_file())
        .expect(
            "s3s-fs not found (looked at $S3S_FS, $PATH and ~/.cargo/bin). The S3 tests need a real \
             S3-compatible server: `cargo install s3s-fs@0.14.1 --locked --features binary` \
             (the README's test command does this).",
        )
}

impl S3sFs {
    pub fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(data.path().join(BUCKET)).unwrap();
        let mut server = S3sFs {
            child: None,
            port: free_port(),
            data,
        };
        server.restart();
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: the server vanishes mid-request, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts (again) on the same port and folder.
    pub fn restart(&mut self) {
        self.kill();
        let mut child = Command::new(s3s_fs_binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        wait_for_port(self.port, &mut child, "s3s-fs");
        self.child = Some(child);
    }

    /// The bytes of `key` in the bucket, read from s3s-fs's folder.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.data.path().join(BUCKET).join(key)).ok()
    }

    /// The endpoint, its credentials and the bucket.
    pub fn endpoint_of(&self) -> S3Endpoint<'static> {
        S3Endpoint {
            url: self.endpoint(),
            access_key: ACCESS_KEY,
            secret_key: SECRET_KEY,
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

    /// tile-store's S3 store on this server's bucket, under `prefix`.
    pub fn store(&self, prefix: &str) -> S3Store {
        self.endpoint_of().store(prefix)
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        self.kill();
    }
}
