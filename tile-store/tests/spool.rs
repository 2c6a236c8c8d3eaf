//! Server-side tiling of a large TIFF by URL in bounded memory: the source is spooled
//! to `--spool-dir` as it arrives (never held in memory) and streamed from there, so a
//! `tile-store serve` process tiling a 324 MB uncompressed 108-megapixel tiled BigTIFF
//! peaks far below the source's size, writes the pyramid `tile-store tile` writes, and
//! leaves nothing in the spool folder.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/tiling.rs"]
mod tiling;

use common::procs::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tiling::Origin;

/// The peak resident memory of process `pid` so far, in bytes (`VmHWM` only grows).
fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// A 12000 × 9000 tiled, uncompressed BigTIFF, made by vips from a photo-like cell.
fn uncompressed_bigtiff(dir: &Path) -> std::path::PathBuf {
    let cell = dir.join("cell.png");
    image::RgbImage::from_fn(1200, 900, |x, y| {
        image::Rgb([
            (x * 255 / 1200) as u8,
            (y * 255 / 900) as u8,
            ((x ^ y) & 0xff) as u8,
        ])
    })
    .save(&cell)
    .unwrap();
    let source = dir.join("ortho.tif");
    let status = Command::new("vips")
        .arg("replicate")
        .arg(&cell)
        .arg(format!(
            "{}[tile,bigtiff,compression=none,tile-width=256,tile-height=256]",
            source.display()
        ))
        .args(["10", "10"])
        .status()
        .expect("the tests need vips (libvips-tools)");
    assert!(status.success());
    source
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bigtiff_by_url_is_spooled_and_streamed_in_memory_far_below_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let source = uncompressed_bigtiff(dir.path());
    let bytes = std::fs::read(&source).unwrap();
    let len = bytes.len() as u64;
    assert!(len > 300_000_000, "the source is {len} bytes");
    let origin = Origin::start(bytes).await;

    let (data, spool) = (dir.path().join("data"), dir.path().join("spool"));
    let server = TileStore::start(
        free_port(),
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--spool-dir",
            spool.to_str().unwrap(),
            "--fetch-allow",
            "127.0.0.1",
            "--max-source-bytes",
            "1000000000",
            "--max-queued-source-bytes",
            "2000000000",
        ],
        &[],
    );
    let client = client();
    let body = serde_json::json!({ "src": origin.url("/photo.jpg") }).to_string();
    let post = axum::http::Request::builder()
        .method("POST")
        .uri(format!("http://{}/pyramids", server.addr))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let answer = client.request(post).await.unwrap();
    assert_eq!(answer.status(), 202);
    let answer = http_body_util::BodyExt::collect(answer.into_body())
        .await
        .unwrap()
        .to_bytes();
    let job = tiling::json(&answer)["job"].as_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(600);
    let mut peak = 0;
    let view = loop {
        peak = peak.max(peak_rss(server.pid()));
        let (status, _, answer) = call(
            &client,
            server.addr,
            "GET",
            &format!("/jobs/{job}"),
            None,
            "",
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        let view = tiling::json(&answer);
        if matches!(view["status"].as_str(), Some("ready" | "failed")) {
            break view;
        }
        assert!(Instant::now() < deadline, "the job did not end: {view}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    peak = peak.max(peak_rss(server.pid()));
    if view["status"] != "ready" {
        panic!("{view}\n{}", server.kill());
    }
    println!(
        "tile-store serve: peak RSS {} MB tiling a {} MB source by URL",
        peak / 1_000_000,
        len / 1_000_000
    );
    // Held in memory, the source alone would be `len` bytes.
    assert!(
        peak < len / 2,
        "peak RSS {peak} bytes is not well below the {len}-byte source"
    );
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "the spooled source is removed when its job ends"
    );

    // The pyramid is the one the CLI writes from the same file, byte for byte.
    let id = view["id"].as_str().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_tile-store"))
        .arg("tile")
        .arg(&source)
        .arg(dir.path().join("cli/ortho"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(data.join(format!("{id}.dzi"))).unwrap(),
        std::fs::read(dir.path().join("cli/ortho.dzi")).unwrap()
    );
    let stored = tiling::tiles_on_disk(&data, id);
    let cli = files(&dir.path().join("cli/ortho_files"));
    assert_eq!(stored.len(), cli.len());
    for (name, tile) in &cli {
        assert!(stored.get(name) == Some(tile), "tile {name} differs");
    }
    drop(server);
}
