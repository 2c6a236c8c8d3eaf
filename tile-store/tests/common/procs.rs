//! Real processes and sockets for the fault and load tests, all on 127.0.0.1:
//! `s3s-fs` (restartable on its port and folder), the `tile-store` binary, a TCP
//! proxy that delays every byte it forwards, and a small async HTTP client.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use super::s3s_fs::{S3sFs, ACCESS_KEY, BUCKET, SECRET_KEY};

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `child` listens on `port`; panics if it exits or takes over 20 s.
pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The environment that points `tile-store serve --store s3` at `endpoint`.
pub fn s3_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ("AWS_S3_BUCKET_NAME", BUCKET.into()),
        ("TILE_STORE_S3_PATH_STYLE", "true".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// The real `tile-store serve` binary, killed on drop.
pub struct TileStore {
    child: Child,
    pub addr: SocketAddr,
    log: Option<std::thread::JoinHandle<String>>,
}

impl TileStore {
    /// Starts `tile-store serve --listen 127.0.0.1:{port} {args}` with only `env` set.
    pub fn start(port: u16, args: &[&str], env: &[(&str, String)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tile-store"));
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .env_clear()
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("tile-store starts");
        wait_for_port(port, &mut child, "tile-store");
        let mut log = BufReader::new(child.stderr.take().unwrap());
        let log = std::thread::spawn(move || {
            let mut all = String::new();
            let mut line = String::new();
            while log.read_line(&mut line).unwrap_or(0) > 0 {
                all.push_str(&line);
                line.clear();
            }
            all
        });
        TileStore {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: Some(log),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log
            .take()
            .map(|l| l.join().unwrap())
            .unwrap_or_default()
    }
}

impl TileStore {
    /// SIGTERM (with the `kill` command), then waits for the exit: its status, or
    /// `None` if it did not exit within `hang` (a hang detector, not a timing claim).
    pub fn terminate(mut self, hang: Duration) -> (Option<std::process::ExitStatus>, String) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + hang;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let log = self
            .log
            .take()
            .map(|l| l.join().unwrap())
            .unwrap_or_default();
        (status, log)
    }
}

impl Drop for TileStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback TCP proxy to `upstream` that sleeps `delay` before forwarding each
/// chunk in either direction: a slow network or a slow S3.
pub async fn slow_proxy(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        delay: Duration,
    ) {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            tokio::time::sleep(delay).await;
            if to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(pump(cr, sw, delay), pump(sr, cw, delay));
            });
        }
    });
    addr
}

/// A pooled HTTP/1.1 client over loopback.
pub type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

pub fn client() -> Client {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_nodelay(true);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector)
}

/// One exchange: the status, headers and whole body; `Err` when the connection failed.
pub async fn call(
    client: &Client,
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: impl Into<Bytes>,
) -> Result<(u16, axum::http::HeaderMap, Bytes), String> {
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    match token {
        Some(token) => request = request.header("authorization", format!("Bearer {token}")),
        // One anonymous client per test: its uploads share one staging session.
        None => request = request.header(super::SESSION_HEADER, super::TEST_SESSION),
    }
    let request = request.body(Full::new(body.into())).unwrap();
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes();
    Ok((status, headers, body))
}

/// Every file under `dir`, relative, with its bytes.
pub fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.insert(
                    path.strip_prefix(root).unwrap().display().to_string(),
                    bytes,
                );
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}
