//! Connections held to their limits (issue 13), on the real binary over 127.0.0.1:
//! silent sockets and half HTTP/2 prefaces are closed by `--header-timeout`, idle
//! keep-alive connections by `--idle-timeout`, a client that stops reading by
//! `--write-timeout`, connections past `--max-connections` are accepted and closed,
//! and SIGTERM with a stalled request exits 0 after `--shutdown-timeout`.
//!
//! Deadlines here only detect hangs; no test asserts how fast anything happened.
#![allow(clippy::unwrap_used)]

mod common;

use common::procs::{free_port, TileStore};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Hang detector for one wait.
const HANG: Duration = Duration::from_secs(60);

fn start(dir: &std::path::Path, extra: &[&str]) -> TileStore {
    let data = dir.join("data");
    let mut args = vec![
        "--data-dir",
        data.to_str().unwrap(),
        "--request-timeout",
        "600",
    ];
    args.extend_from_slice(extra);
    TileStore::start(free_port(), &args, &[])
}

/// Reads until the server closes the connection; what it sent before closing.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(HANG, read_all)
        .await
        .expect("the server closed the connection (it was held open)");
    got
}

#[tokio::test]
async fn silent_half_preface_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--header-timeout", "1", "--idle-timeout", "2"],
    );

    // Connected, never a byte.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert!(until_closed(&mut silent).await.is_empty());

    // Half an HTTP/2 preface: protocol detection waits for the rest, within the
    // header timeout counted from accept.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n\r\nS").await.unwrap();
    assert!(until_closed(&mut half).await.is_empty());

    // A whole preface and SETTINGS, then no request: also bounded.
    let mut h2 = TcpStream::connect(server.addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let _ = until_closed(&mut h2).await;

    // A request line and half the headers.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(until_closed(&mut trickle).await.is_empty());

    // One request answered, then idle on keep-alive: closed by the idle timeout.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut idle).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-content-type-options: nosniff"),
        "{answer}"
    );

    // Still serving.
    let mut fine = TcpStream::connect(server.addr).await.unwrap();
    fine.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut fine).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn past_max_connections_new_ones_are_accepted_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &["--header-timeout", "600", "--max-connections", "2"],
    );
    let held_a = TcpStream::connect(server.addr).await.unwrap();
    let held_b = TcpStream::connect(server.addr).await.unwrap();
    // Give the accept loop the two first (the third must not race ahead of them).
    let mut probe = loop {
        let mut third = TcpStream::connect(server.addr).await.unwrap();
        let _ = third
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let answer = until_closed(&mut third).await;
        if answer.is_empty() {
            break third;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(until_closed(&mut probe).await.is_empty());
    drop((held_a, held_b));
    // Slots come back once the server sees them closed.
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        let mut again = TcpStream::connect(server.addr).await.unwrap();
        let _ = again
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let answer = until_closed(&mut again).await;
        if String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slots never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(
        dir.path(),
        &[
            "--write-timeout",
            "1",
            "--idle-timeout",
            "600",
            "--header-timeout",
            "600",
        ],
    );
    let id = common::test_id("slow-reader");
    // A 2 MiB "PNG" (only the signature is checked) to read many times over.
    let mut tile = b"\x89PNG\r\n\x1a\n".to_vec();
    tile.resize(2 << 20, 0);
    // Placed under its final key (as a tiling job stores tiles), so it is served;
    // an upload would only be staged.
    let path = dir.path().join(format!("data/{id}_files/0/0_0.png"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &tile).unwrap();

    // 100 pipelined GETs (200 MiB of answers), and nothing read for a while: far
    // more than the socket buffers hold, so the server's writes stall.
    const GETS: usize = 100;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let get = format!("GET /pyramids/{id}_files/0/0_0.png HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(get.repeat(GETS).as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let got = until_closed(&mut stream).await;
    assert!(
        got.len() < GETS * tile.len(),
        "the server kept writing to a client that did not read ({} bytes)",
        got.len()
    );
}

#[tokio::test]
async fn sigterm_with_a_stalled_request_exits_0_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--shutdown-timeout", "8"]);
    let id = common::test_id("stalled");
    let png = common::png(8, 8, 1);
    let head = |len: usize| {
        format!(
            "PUT /pyramids/{id}_files/0/0_0.png HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    // Stalled: a body that never comes.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(head(1000).as_bytes()).await.unwrap();
    stalled.write_all(&png[..10]).await.unwrap();
    // In flight, and finished during the grace.
    let mut finishing = TcpStream::connect(server.addr).await.unwrap();
    finishing
        .write_all(head(png.len()).as_bytes())
        .await
        .unwrap();
    finishing.write_all(&png[..10]).await.unwrap();
    // Let the server see both requests' headers before the signal.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let waiting = tokio::task::spawn_blocking(move || server.terminate(HANG));
    tokio::time::sleep(Duration::from_millis(500)).await;
    finishing.write_all(&png[10..]).await.unwrap();
    let answer = until_closed(&mut finishing).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "in-flight request cut: {answer:?}"
    );

    let (status, log) = waiting.await.unwrap();
    let status = status.unwrap_or_else(|| panic!("tile-store did not exit after SIGTERM:\n{log}"));
    assert!(status.success(), "exit status {status}:\n{log}");
    drop(stalled);
}
