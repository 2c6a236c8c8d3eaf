//! Faults, with the real binaries on loopback: S3 (`s3s-fs`) killed and restarted
//! mid-upload, tile-store killed mid-batch and restarted, and a slow S3 behind a
//! delaying proxy. Clients get retryable answers (`503` + `Retry-After`), nothing
//! partial is ever served, no `.dzi` is committed early, and resumed uploads finish.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::procs::{self, *};
use common::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tile_store::store::TileName;
use tiler_wasm::{Dzi, Layout, TileFormat};

/// A pyramid whose tiles are distinct pseudo-random bytes behind a PNG signature
/// (tile-store checks the signature, not the pixels), `tile_bytes` each: big enough
/// that a batch takes a while to write.
fn noise_pyramid(
    width: u32,
    height: u32,
    tile_bytes: usize,
    seed: u64,
) -> (Dzi, Vec<(TileName, Vec<u8>)>) {
    let layout = Layout::new(width, height, 254, 1).unwrap();
    let mut state = seed.max(1);
    let tiles = layout
        .tiles()
        .map(|a| {
            let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
            bytes.extend(format!("{}/{}_{} seed {seed};", a.level, a.col, a.row).bytes());
            while bytes.len() < tile_bytes {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.extend_from_slice(&state.to_le_bytes());
            }
            bytes.truncate(tile_bytes);
            let name = TileName {
                level: a.level,
                col: a.col,
                row: a.row,
                format: TileFormat::Png,
            };
            (name, bytes)
        })
        .collect();
    (Dzi::new(&layout, TileFormat::Png), tiles)
}

fn batch(tiles: &[(TileName, Vec<u8>)]) -> Bytes {
    Bytes::from(tile_store::routes::batch::encode(
        tiles.iter().map(|(n, b)| (*n, b.as_slice())),
    ))
}

/// The stored tiles as listed by `GET /pyramids/{id}/tiles`.
async fn listed(
    client: &Client,
    addr: std::net::SocketAddr,
    id: &str,
) -> Result<Vec<String>, String> {
    let (status, _, body) = call(
        client,
        addr,
        "GET",
        &format!("/pyramids/{id}/tiles"),
        None,
        "",
    )
    .await?;
    if status != 200 {
        return Err(format!("listing answered {status}"));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    Ok(v["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect())
}

/// Uploads whatever the listing says is missing, in batches, retrying `503`s as a
/// client should (after `Retry-After`), then commits.
async fn resume_and_commit(
    client: &Client,
    addr: std::net::SocketAddr,
    id: &str,
    dzi: &Dzi,
    tiles: &[(TileName, Vec<u8>)],
) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts < 60, "the upload never completed");
        let Ok(have) = listed(client, addr, id).await else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let missing: Vec<_> = tiles
            .iter()
            .filter(|(n, _)| !have.contains(&n.relative()))
            .cloned()
            .collect();
        let mut failed = false;
        for chunk in missing.chunks(16) {
            match call(
                client,
                addr,
                "POST",
                &format!("/pyramids/{id}/tiles"),
                None,
                batch(chunk),
            )
            .await
            {
                Ok((200, _, _)) => {}
                Ok((503, headers, _)) => {
                    assert!(headers.contains_key("retry-after"));
                    failed = true;
                    break;
                }
                other => panic!("resumed batch: {other:?}"),
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        match call(
            client,
            addr,
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            None,
            dzi.to_xml(),
        )
        .await
        {
            Ok((201 | 200, _, _)) => return,
            Ok((503 | 409, _, _)) => tokio::time::sleep(Duration::from_millis(500)).await,
            other => panic!("commit: {other:?}"),
        }
    }
}

/// Every tile is served with exactly its bytes, and so is the manifest.
async fn verify_served(
    client: &Client,
    addr: std::net::SocketAddr,
    id: &str,
    dzi: &Dzi,
    tiles: &[(TileName, Vec<u8>)],
) {
    let (status, _, body) = call(
        client,
        addr,
        "GET",
        &format!("/pyramids/{id}.dzi"),
        None,
        "",
    )
    .await
    .unwrap();
    assert_eq!((status, body.as_ref()), (200, dzi.to_xml().as_bytes()));
    for (name, bytes) in tiles {
        let path = format!("/pyramids/{id}_files/{}", name.relative());
        let (status, _, body) = call(client, addr, "GET", &path, None, "").await.unwrap();
        assert_eq!(status, 200, "{path}");
        assert!(body.as_ref() == bytes.as_slice(), "{path}: bytes differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_killed_mid_upload_gives_retryable_errors_then_resumes() {
    let mut s3 = S3sFs::start();
    let port = free_port();
    let mut env = s3_env(&s3.endpoint());
    env.push(("TILE_STORE_S3_TIMEOUT", "4".into()));
    let server = TileStore::start(port, &["--store", "s3"], &env);
    let addr = server.addr;
    let client = client();
    let id = test_id("fault-s3-killed");
    let (dzi, tiles) = noise_pyramid(3000, 2000, 48 << 10, 1);
    assert!(tiles.len() > 100, "{}", tiles.len());

    // A third is stored.
    let third = tiles.len() / 3;
    for chunk in tiles[..third].chunks(16) {
        let (status, _, body) = call(
            &client,
            addr,
            "POST",
            &format!("/pyramids/{id}/tiles"),
            None,
            batch(chunk),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    // Batches in flight when S3 dies: each gets 200 (done before) or a retryable 503.
    // Four clients keep sending batches until they see a 503, so batches are in flight at
    // the kill however fast the machine is. The last 16 tiles are held back, so the pyramid
    // is still incomplete when S3 returns.
    let held_back = tiles.len() - 16;
    let rest: Arc<Vec<Bytes>> = Arc::new(tiles[third..held_back].chunks(16).map(batch).collect());
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let senders: Vec<_> = (0..4)
        .map(|k| {
            let (client, rest, id) = (client.clone(), Arc::clone(&rest), id.clone());
            let answered = Arc::clone(&answered);
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                let mut answers = Vec::new();
                for body in rest.iter().cycle().skip(k) {
                    let answer = call(
                        &client,
                        addr,
                        "POST",
                        &format!("/pyramids/{id}/tiles"),
                        None,
                        body.clone(),
                    )
                    .await
                    .expect("tile-store answers");
                    let done = answer.0 != 200 || tokio::time::Instant::now() > deadline;
                    answers.push(answer);
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if done {
                        break;
                    }
                }
                answers
            })
        })
        .collect();
    // Kill S3 once every sender has had a batch answered: the rest are in flight.
    while answered.load(std::sync::atomic::Ordering::SeqCst) < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s3.kill();
    let mut unavailable = 0;
    for handle in senders {
        for (status, headers, body) in handle.await.unwrap() {
            assert!(
                status == 200 || status == 503,
                "batch while S3 died: {status} {}",
                String::from_utf8_lossy(&body)
            );
            if status == 503 {
                unavailable += 1;
                assert_eq!(headers["retry-after"], "1");
                assert_eq!(error_code(&body), "unavailable");
            }
        }
    }
    assert!(unavailable > 0, "S3 was killed before the batches finished");

    // With S3 down, every route answers 503, and the commit commits nothing.
    for (method, path, body) in [
        ("POST", format!("/pyramids/{id}/tiles"), batch(&tiles[..1])),
        (
            "PUT",
            format!("/pyramids/{id}.dzi"),
            Bytes::from(dzi.to_xml()),
        ),
        ("GET", format!("/pyramids/{id}/tiles"), Bytes::new()),
        ("GET", format!("/pyramids/{id}.dzi"), Bytes::new()),
        (
            "GET",
            format!("/pyramids/{id}_files/{}", tiles[0].0.relative()),
            Bytes::new(),
        ),
    ] {
        let (status, headers, answer) = call(&client, addr, method, &path, None, body)
            .await
            .unwrap();
        assert_eq!(
            status,
            503,
            "{method} {path}: {}",
            String::from_utf8_lossy(&answer)
        );
        assert!(headers.contains_key("retry-after"), "{method} {path}");
    }
    assert_eq!(s3.object(&format!("{id}.dzi")), None);

    // S3 comes back; the client resumes from the listing and commits.
    s3.restart();
    let (status, _, _) = call(
        &client,
        addr,
        "PUT",
        &format!("/pyramids/{id}.dzi"),
        None,
        dzi.to_xml(),
    )
    .await
    .unwrap();
    assert!(
        status == 409 || status == 503,
        "an incomplete pyramid committed: {status}"
    );
    assert_eq!(s3.object(&format!("{id}.dzi")), None);
    resume_and_commit(&client, addr, &id, &dzi, &tiles).await;
    verify_served(&client, addr, &id, &dzi, &tiles).await;
    for (name, bytes) in &tiles {
        assert_eq!(
            s3.object(&format!("{id}_files/{}", name.relative()))
                .as_ref(),
            Some(bytes)
        );
    }
    let log = server.kill();
    assert!(!log.contains("panicked"), "{log}");
}

/// Where a kill lands in one batch upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillPoint {
    /// Half the body sent: the request cannot have been answered.
    ReadingBody,
    /// A tile's temporary file seen on disk, the response not yet come.
    WritingTiles,
}

/// Sends the head of `POST /pyramids/{id}/tiles` and the first half of `body` over a raw
/// connection, and keeps the connection open without ever sending the rest.
async fn send_half(addr: std::net::SocketAddr, id: &str, body: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /pyramids/{id}/tiles HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Whether a tile of `id` is being written: its hidden temporary file exists.
fn tile_being_written(data: &std::path::Path, id: &str) -> bool {
    // Uploads are staged: `staging/{writer}/{id}_files/`, one writer here.
    let Some(files) = std::fs::read_dir(data.join("staging"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|writer| writer.path().join(format!("{id}_files")))
        .next()
    else {
        return false;
    };
    let Ok(levels) = std::fs::read_dir(files) else {
        return false;
    };
    levels.flatten().any(|level| {
        std::fs::read_dir(level.path()).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tile_store_killed_mid_batch_never_serves_a_partial_tile() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let port = free_port();
    let id = test_id("fault-tile-store-killed");
    // 64 tiles of 2 MiB in batches of 12 (24 MiB): long enough to write that a kill can be aimed
    // at the writing itself, not at a moment that may already be past.
    let (dzi, tiles) = noise_pyramid(1800, 1200, 2 << 20, 2);
    let expected: BTreeMap<String, &Vec<u8>> =
        tiles.iter().map(|(n, b)| (n.relative(), b)).collect();
    let args = ["--data-dir", &data_dir, "--max-request-bytes", "67108864"];

    let mut killed = BTreeMap::<&str, usize>::new();
    for (round, chunk) in tiles.chunks(12).enumerate() {
        let point = if round % 2 == 0 {
            KillPoint::ReadingBody
        } else {
            KillPoint::WritingTiles
        };
        let server = TileStore::start(port, &args, &[]);
        let body = batch(chunk);
        let before = listed(&procs::client(), server.addr, &id)
            .await
            .unwrap()
            .len();
        match point {
            KillPoint::ReadingBody => {
                let _half_sent = send_half(server.addr, &id, &body).await;
                // The server has the head and half the body; give it the moment to read them.
                tokio::time::sleep(Duration::from_millis(100)).await;
                server.kill();
                *killed.entry("reading the body").or_default() += 1;
            }
            KillPoint::WritingTiles => {
                let client = client();
                let upload = tokio::spawn({
                    let (client, path) = (client.clone(), format!("/pyramids/{id}/tiles"));
                    async move { call(&client, server_addr(port), "POST", &path, None, body).await }
                });
                // Polled, not slept on: the kill follows the first temporary tile file seen.
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while !tile_being_written(data.path(), &id) && !upload.is_finished() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the batch was never written"
                    );
                    std::thread::yield_now();
                }
                server.kill();
                // Answered before the kill: this round cut nothing, and says so below.
                match upload.await.unwrap() {
                    Ok((status, _, body)) => {
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                    }
                    Err(_) => *killed.entry("writing tiles").or_default() += 1,
                }
            }
        }

        // Restarted: whatever is listed or on disk as a tile is whole.
        let server = TileStore::start(port, &args, &[]);
        let client = procs::client();
        let now = listed(&client, server.addr, &id).await.unwrap();
        if point == KillPoint::ReadingBody {
            // Every frame is checked before any tile is stored: half a batch stores nothing.
            assert_eq!(now.len(), before, "half a batch stored tiles");
        }
        // Listed tiles are staged (not served before the commit); their bytes on
        // disk are checked whole below.
        for name in now {
            assert!(expected.contains_key(&name), "unexpected tile {name}");
        }
        let (status, _, _) = call(
            &client,
            server.addr,
            "GET",
            &format!("/pyramids/{id}.dzi"),
            None,
            "",
        )
        .await
        .unwrap();
        assert_eq!(status, 404, "nothing committed yet");
        for (path, bytes) in files(data.path()) {
            let name = path
                .rsplit_once("_files/")
                .map(|(_, n)| n.to_owned())
                .unwrap_or_default();
            if let Some(want) = expected.get(&name) {
                assert!(bytes == **want, "{path} on disk is partial");
            } else {
                // Only hidden temporary files may be cut short; they are never served.
                let file = path.rsplit('/').next().unwrap();
                assert!(
                    file.starts_with('.') && file.contains(".tmp-"),
                    "stray file {path}"
                );
            }
        }
        server.kill();
    }
    // The kills really interrupted uploads: three mid-body, and at least one while tiles were
    // being written with no answer sent yet.
    assert_eq!(killed.get("reading the body"), Some(&3), "{killed:?}");
    assert!(
        killed.get("writing tiles").is_some_and(|&n| n >= 1),
        "{killed:?}"
    );
    eprintln!("tile-store killed: {killed:?}");

    // Resumed after the last crash: the upload completes and every tile is whole.
    let server = TileStore::start(port, &args, &[]);
    let client = procs::client();
    resume_and_commit(&client, server.addr, &id, &dzi, &tiles).await;
    verify_served(&client, server.addr, &id, &dzi, &tiles).await;
    server.kill();
}

fn server_addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// Peak resident memory of a process, in bytes (Linux).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_s3_does_not_exhaust_tile_store() {
    let s3 = S3sFs::start();
    // Every 16 KiB chunk to or from S3 waits 400 ms.
    let proxy = slow_proxy(server_addr(s3.port), Duration::from_millis(400)).await;
    let port = free_port();
    let mut env = s3_env(&format!("http://{proxy}"));
    env.push(("TILE_STORE_S3_TIMEOUT", "2".into()));
    env.push(("TILE_STORE_MAX_CONCURRENT_UPLOADS", "4".into()));
    env.push(("TILE_STORE_REQUEST_TIMEOUT", "30".into()));
    let server = TileStore::start(port, &["--store", "s3"], &env);
    let addr = server.addr;
    let client = client();
    let id = test_id("fault-slow-s3");
    // 48 clients × 8 MiB batches: 384 MiB if tile-store held every body at once.
    let (_, tiles) = noise_pyramid(2500, 1800, 512 << 10, 3);
    let body = batch(&tiles[..16]);
    assert!(body.len() >= 8 << 20);
    let uploads: Vec<_> = (0..48)
        .map(|_| {
            let (client, body, id) = (client.clone(), body.clone(), id.clone());
            tokio::spawn(async move {
                call(
                    &client,
                    addr,
                    "POST",
                    &format!("/pyramids/{id}/tiles"),
                    None,
                    body,
                )
                .await
            })
        })
        .collect();
    let reads: Vec<_> = (0..64)
        .map(|i| {
            let (client, id) = (client.clone(), id.clone());
            let name = tiles[i % tiles.len()].0.relative();
            tokio::spawn(async move {
                call(
                    &client,
                    addr,
                    "GET",
                    &format!("/pyramids/{id}_files/{name}"),
                    None,
                    "",
                )
                .await
            })
        })
        .collect();
    // Meanwhile tile-store still answers at once where S3 is not involved.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = tokio::time::timeout(
        Duration::from_secs(5),
        call(&client, addr, "GET", "/healthz", None, ""),
    )
    .await
    .expect("healthz answers while S3 is slow")
    .unwrap();
    assert_eq!(health.0, 200);

    let mut statuses = BTreeMap::<u16, usize>::new();
    for handle in uploads.into_iter().chain(reads) {
        let (status, headers, body) = handle.await.unwrap().expect("every request is answered");
        assert!(
            matches!(status, 200 | 404 | 503),
            "{status}: {}",
            String::from_utf8_lossy(&body)
        );
        if status == 503 {
            assert!(headers.contains_key("retry-after"));
        }
        *statuses.entry(status).or_default() += 1;
    }
    let rss = peak_rss(server_pid(&server));
    eprintln!(
        "slow S3: answers {statuses:?}; tile-store peak RSS {} MiB",
        rss >> 20
    );
    assert!(statuses.get(&503).copied().unwrap_or(0) > 0, "{statuses:?}");
    // At most 4 bodies of 8 MiB are held at once (plus their parsed copies).
    assert!(rss < 200 << 20, "peak RSS {} MiB", rss >> 20);
    let log = server.kill();
    assert!(!log.contains("panicked"), "{log}");
}

fn server_pid(server: &TileStore) -> u32 {
    server.pid()
}
