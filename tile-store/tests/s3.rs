//! The S3 store against a real S3-compatible server, `s3s-fs`, which each test
//! starts on 127.0.0.1 with a free port and a fresh data folder. What lands in the
//! bucket is checked with `aws-sdk-s3` directly.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::s3s_fs::{S3sFs, ACCESS_KEY, BUCKET, SECRET_KEY};
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tile_store::auth::{Auth, AuthSettings};
use tile_store::store::{Key, PutOutcome, PyramidId, Store, TileName};
use tile_store::{app, AppState};
use tiler_wasm::TileFormat;

async fn bucket_keys(client: &aws_sdk_s3::Client) -> Vec<String> {
    let out = client
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

async fn object(client: &aws_sdk_s3::Client, key: &str) -> (Vec<u8>, Option<String>) {
    let out = client
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key}: {e:?}"));
    let content_type = out.content_type().map(str::to_owned);
    (
        out.body.collect().await.unwrap().into_bytes().to_vec(),
        content_type,
    )
}

#[tokio::test]
async fn store_operations_land_in_the_bucket() {
    let server = S3sFs::start();
    let store = server.store("pyramids/");
    let client = server.client();
    let id = PyramidId::parse(&test_id("s3-store")).unwrap();
    let name = TileName {
        level: 3,
        col: 1,
        row: 0,
        format: TileFormat::Png,
    };
    let tile = Key::Tile(id.clone(), name);
    let bytes = png(5, 4, 7);

    assert_eq!(store.get(&tile).await.unwrap(), None);
    assert_eq!(store.head(&tile).await.unwrap(), None);
    store.put(&tile, bytes.clone().into()).await.unwrap();
    assert_eq!(store.get(&tile).await.unwrap().unwrap(), bytes);
    assert_eq!(store.head(&tile).await.unwrap(), Some(bytes.len() as u64));
    // Overwrites replace.
    let other = png(5, 4, 8);
    store.put(&tile, other.clone().into()).await.unwrap();
    assert_eq!(store.get(&tile).await.unwrap().unwrap(), other);

    let dzi = Key::Dzi(id.clone());
    assert_eq!(
        store.put_if_absent(&dzi, "first".into()).await.unwrap(),
        PutOutcome::Created
    );
    assert_eq!(
        store.put_if_absent(&dzi, "second".into()).await.unwrap(),
        PutOutcome::Exists
    );
    assert_eq!(store.get(&dzi).await.unwrap().unwrap(), "first");

    let second = TileName {
        level: 0,
        col: 0,
        row: 0,
        format: TileFormat::Png,
    };
    store
        .put(&Key::Tile(id.clone(), second), png(1, 1, 0).into())
        .await
        .unwrap();
    assert_eq!(store.list_tiles(&id).await.unwrap(), vec![second, name]);

    // The bucket holds the Deep Zoom layout under the prefix, with content types.
    assert_eq!(
        bucket_keys(&client).await,
        vec![
            format!("pyramids/{id}.dzi"),
            format!("pyramids/{id}_files/0/0_0.png"),
            format!("pyramids/{id}_files/3/1_0.png"),
        ]
    );
    let (stored, content_type) = object(&client, &format!("pyramids/{id}_files/3/1_0.png")).await;
    assert_eq!(stored, other);
    assert_eq!(content_type.as_deref(), Some("image/png"));

    // Objects that are not tiles are ignored by the listing.
    client
        .put_object()
        .bucket(BUCKET)
        .key(format!("pyramids/{id}_files/3/notes.txt"))
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(store.list_tiles(&id).await.unwrap().len(), 2);

    assert_eq!(store.delete_tiles(&id).await.unwrap(), 3);
    store.delete(&dzi).await.unwrap();
    store.delete(&dzi).await.unwrap();
    assert!(bucket_keys(&client).await.is_empty());
}

#[tokio::test]
async fn the_server_refuses_a_second_conditional_commit() {
    // tile-store relies on `If-None-Match: *` where the server supports it; s3s-fs 0.14.1 does.
    let server = S3sFs::start();
    let client = server.client();
    let put = || {
        client
            .put_object()
            .bucket(BUCKET)
            .key("x.dzi")
            .if_none_match("*")
            .body(b"a".to_vec().into())
            .send()
    };
    put().await.unwrap();
    let err = put().await.expect_err("second conditional put");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(412));
}

#[tokio::test]
async fn batch_upload_commit_and_read_through_the_router() {
    let server = S3sFs::start();
    let client = server.client();
    let auth = Auth::new(&AuthSettings {
        tokens: vec!["t".into()],
        ..Default::default()
    })
    .unwrap();
    let app = app(AppState::new(Arc::new(server.store("v1/")), auth));
    let id = test_id("s3-router");
    let pyramid = Pyramid::new(600, 400);
    let split = pyramid.tiles.len() / 2;
    let (first, second): (Vec<_>, Vec<_>) = pyramid
        .tiles
        .iter()
        .enumerate()
        .partition(|(i, _)| *i < split);
    let names = |part: &[(usize, &(TileName, Vec<u8>))]| {
        part.iter().map(|(_, (n, _))| *n).collect::<Vec<_>>()
    };

    let (status, _, body) = send(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some("t"),
            pyramid.batch(&names(&second)),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let xml = pyramid.dzi.to_xml();
    let (status, _, body) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some("t"),
            xml.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["missing"]["count"], second.len());
    assert!(!bucket_keys(&client).await.contains(&format!("v1/{id}.dzi")));

    let (status, _, _) = send(
        &app,
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some("t"),
            pyramid.batch(&names(&first)),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(
        &app,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some("t"),
            xml.clone(),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    // A second instance sharing the bucket sees the commit and does not redo it.
    let auth = Auth::new(&AuthSettings {
        tokens: vec!["t".into()],
        ..Default::default()
    })
    .unwrap();
    let other_instance = tile_store::app(AppState::new(Arc::new(server.store("v1/")), auth));
    let (status, _, _) = send(
        &other_instance,
        request(
            "PUT",
            &format!("/pyramids/{id}.dzi"),
            Some("t"),
            xml.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // In the bucket: exactly the manifest and every tile, byte for byte.
    let mut expected: Vec<String> = pyramid
        .tiles
        .iter()
        .map(|(n, _)| format!("v1/{id}_files/{}", n.relative()))
        .collect();
    expected.push(format!("v1/{id}.dzi"));
    // And who committed it, apart from the Deep Zoom files.
    expected.push(format!("v1/committers/{id}.json"));
    expected.sort();
    assert_eq!(bucket_keys(&client).await, expected);
    assert_eq!(
        object(&client, &format!("v1/{id}.dzi")).await,
        (xml.clone().into_bytes(), Some("application/xml".into()))
    );
    for (name, bytes) in &pyramid.tiles {
        assert_eq!(
            &object(&client, &format!("v1/{id}_files/{}", name.relative()))
                .await
                .0,
            bytes
        );
    }

    // Reads through tile-store: ETag and 304 computed by tile-store itself.
    let uri = format!("/pyramids/{id}_files/10/2_1.png");
    let (status, headers, body) = send(&app, request("GET", &uri, None, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        &body,
        &pyramid
            .tiles
            .iter()
            .find(|(n, _)| n.relative() == "10/2_1.png")
            .unwrap()
            .1
    );
    let conditional = axum::http::Request::builder()
        .uri(&uri)
        .header("if-none-match", headers["etag"].clone())
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, _, _) = send(&app, conditional).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    let (status, _, body) = send(
        &app,
        request("DELETE", &format!("/pyramids/{id}"), Some("t"), ""),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert!(bucket_keys(&client).await.is_empty());
}

#[tokio::test]
async fn simultaneous_commits_from_several_instances_agree() {
    let server = S3sFs::start();
    let id = test_id("s3-race");
    let pyramid = Pyramid::new(300, 200);
    let instance = || {
        let auth = Auth::new(&AuthSettings {
            tokens: vec!["t".into()],
            ..Default::default()
        })
        .unwrap();
        app(AppState::new(Arc::new(server.store("")), auth))
    };
    let (status, _, _) = send(
        &instance(),
        request(
            "POST",
            &format!("/pyramids/{id}/tiles"),
            Some("t"),
            pyramid.batch(&[]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let xml = pyramid.dzi.to_xml();
    let commits: Vec<_> = (0..6)
        .map(|_| {
            let (app, uri, xml) = (instance(), format!("/pyramids/{id}.dzi"), xml.clone());
            tokio::spawn(async move { send(&app, request("PUT", &uri, Some("t"), xml)).await.0 })
        })
        .collect();
    let mut created = 0;
    for commit in commits {
        match commit.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("commit answered {other}"),
        }
    }
    // On AWS S3 exactly one `If-None-Match: *` write wins. s3s-fs 0.14.1 checks and
    // writes without a lock, so under a true race more than one instance may see its
    // own write succeed; all of them wrote the same manifest, which is what this
    // asserts, along with every commit answering 200 or 201.
    assert!(created >= 1, "someone commits");
    assert_eq!(
        object(&server.client(), &format!("{id}.dzi")).await.0,
        xml.into_bytes()
    );
}

/// A minimal HTTP/1.1 exchange over loopback (`Connection: close`).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, head, response[split + 4..].to_vec())
}

#[test]
fn serve_binary_on_s3_configured_by_environment() {
    let server = S3sFs::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tile-store"))
        .args(["serve", "--store", "s3", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("AWS_ENDPOINT_URL", server.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_S3_BUCKET_NAME", BUCKET)
        .env("TILE_STORE_S3_PATH_STYLE", "true")
        .env("TILE_STORE_S3_PREFIX", "env/")
        .env("TILE_STORE_TOKENS", "tok1,tok2")
        .env("NO_COLOR", "1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stderr(Stdio::piped())
        .spawn()
        .expect("tile-store starts");
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let addr: SocketAddr = loop {
        let mut line = String::new();
        assert!(
            log.read_line(&mut line).unwrap() > 0,
            "tile-store exited before listening"
        );
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = log.read_to_string(&mut rest);
        rest
    });

    let id = test_id("serve-binary");
    let pyramid = Pyramid::new(1, 1);
    let (name, bytes) = &pyramid.tiles[0];
    let tile_path = format!("/pyramids/{id}_files/{}", name.relative());
    let (status, _, _) = http(addr, "PUT", &tile_path, &[], bytes);
    assert_eq!(status, 401);
    let (status, _, body) = http(
        addr,
        "PUT",
        &tile_path,
        &[("Authorization", "Bearer tok2")],
        bytes,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let xml = pyramid.dzi.to_xml();
    // The tile is staged for tok2's writer: tok1 cannot commit with it; tok2 can.
    let (status, _, body) = http(
        addr,
        "PUT",
        &format!("/pyramids/{id}.dzi"),
        &[("Authorization", "Bearer tok1")],
        xml.as_bytes(),
    );
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = http(
        addr,
        "PUT",
        &format!("/pyramids/{id}.dzi"),
        &[("Authorization", "Bearer tok2")],
        xml.as_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let (status, head, body) = http(addr, "GET", &format!("/pyramids/{id}.dzi"), &[], b"");
    assert_eq!((status, body), (200, xml.clone().into_bytes()));
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: public, max-age=31536000, immutable"),
        "{head}"
    );
    let (status, head, body) = http(addr, "HEAD", &tile_path, &[], b"");
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {}", bytes.len())),
        "{head}"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let keys = runtime.block_on(bucket_keys(&server.client()));
    assert_eq!(
        keys,
        vec![
            format!("env/{id}.dzi"),
            format!("env/{id}_files/0/0_0.png"),
            format!("env/committers/{id}.json")
        ]
    );

    // SIGTERM: a clean, successful exit.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "tile-store did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let rest = drain.join().unwrap();
    assert!(status.success(), "exit {status}: {rest}");
    assert!(rest.contains("tile-store stopped"), "{rest}");
}
