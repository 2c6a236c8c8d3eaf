#!/usr/bin/env python3
"""Server-side tiling (`POST /pyramids` by S3 key, on s3s-fs) beside `vips dzsave` on the same file.

Starts everything itself on 127.0.0.1 and stops it on exit:
  1. a generated photo-like JPEG (bench/photo.py, cached in bench/out/) is placed in a fresh s3s-fs
     bucket under `image/images/…`, as the web app's uploads are;
  2. per run, a fresh `tile-store serve --store s3` with a fresh key prefix (so nothing is committed
     yet), then `POST /pyramids {"s3Key": …}` and `GET /jobs/{job}` every 20 ms until `ready`:
     the time from the request to `ready` (read, hash, decode, tile on every core, every tile
     written to s3s-fs, the .dzi committed) and tile-store's peak RSS;
  3. alternating with it, `vips dzsave` of the same file into a folder on the same disk.

Usage: `make bench-server` or `python3 bench/server.py [--size 96] [--runs 3]`.
"""
import argparse
import atexit
import http.client
import json
import re
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the benchmark images and the child-process timer)
import store  # noqa: E402  (the shared process helpers)

KEY, SECRET, BUCKET = "tessera-bench-key", "tessera-bench-secret", "tessera-bench"
S3_KEY = "image/images/1715000000000-bench.jpg"


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"content-type": "application/json"} if body is not None else {}
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else None


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def server_run(work, s3_port, run):
    port = store.free_port()
    env = dict(os.environ, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET,
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{s3_port}", AWS_S3_BUCKET_NAME=BUCKET, RUST_LOG="warn,tile_store::pipeline=info", NO_COLOR="1")
    for name in ("TILE_STORE_TOKENS", "TILE_STORE_JWT_SECRET", "TILE_STORE_REQUIRE_READ_TOKEN"):
        env.pop(name, None)
    proc = store.start([store.TILE_STORE, "serve", "--listen", f"127.0.0.1:{port}", "--store", "s3",
                        "--s3-path-style", "--s3-prefix", f"run-{run}/", "--max-source-bytes", str(1 << 30),
                        "--s3-source-prefix", "image/images/"],
                       port, os.path.join(work, f"tile-store-{run}.log"), env)
    start = time.perf_counter()
    status, view = request(port, "POST", "/pyramids", json.dumps({"s3Key": S3_KEY}))
    if status not in (200, 202):
        sys.exit(f"POST /pyramids answered {status}: {view}")
    while view["status"] not in ("ready", "failed"):
        time.sleep(0.02)
        status, view = request(port, "GET", f"/jobs/{view['job']}")
    wall = time.perf_counter() - start
    if view["status"] != "ready":
        sys.exit(f"the job failed: {view}")
    rss = peak_rss_mib(proc.pid)
    # The phases tile-store logs: reading and hashing the source, tiling while storing, the commit.
    phases = {}
    with open(os.path.join(work, f"tile-store-{run}.log"), errors="replace") as f:
        for line in f:
            line = re.sub(r"\x1b\[[0-9;]*m", "", line)
            for name in ("fetch_ms", "hash_ms", "tile_and_store_ms"):
                marker = f"{name}="
                if marker in line:
                    phases[name] = int(line.split(marker, 1)[1].split()[0].strip(","))
    status, _ = request(port, "HEAD", view["dzi"])
    if status != 200:
        sys.exit(f"{view['dzi']} answered {status} after ready")
    store.stop(proc)
    return wall, rss, view, phases


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", default="96", help="megapixels: 24, 96 or 400")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    atexit.register(store.stop_children)
    signal.signal(signal.SIGTERM, store.on_signal)
    signal.signal(signal.SIGINT, store.on_signal)
    if not os.path.exists(store.TILE_STORE):
        sys.exit(f"{store.TILE_STORE} is missing: run `cargo build --release -p tile-store`")
    if a.size not in ("24", "96", "400"):
        sys.exit("--size is 24, 96 or 400")
    image = bench.IMAGES[a.size]
    bench.make(image)
    img, megapixels = image.path, image.mp
    os.makedirs(store.CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.CACHE, prefix="server-") as work:
        data = os.path.join(work, "s3")
        os.makedirs(os.path.join(data, BUCKET, os.path.dirname(S3_KEY)))
        # s3s-fs keeps each object as a plain file under {root}/{bucket}/{key}.
        shutil.copyfile(img, os.path.join(data, BUCKET, S3_KEY))
        s3_port = store.free_port()
        store.start([store.s3s_fs_binary(), "--host", "127.0.0.1", "--port", str(s3_port),
                     "--access-key", KEY, "--secret-key", SECRET, data], s3_port, os.path.join(work, "s3s-fs.log"))
        vips_out = os.path.join(work, "vips", "pyramid")
        os.makedirs(os.path.dirname(vips_out))
        server, vips = [], []
        for run in range(a.runs):
            subprocess.run(["sync"])
            wall, rss, view, phases = server_run(work, s3_port, run)
            server.append((wall, rss))
            tiles = view["progress"]["tilesTotal"]
            shutil.rmtree(vips_out + "_files", ignore_errors=True)
            subprocess.run(["sync"])
            wall_s, rss_mib, _cpu = bench.run(["vips", "dzsave", img, vips_out])
            vips.append((wall_s, rss_mib))
            store.log(f"run {run + 1}: POST /pyramids → ready {wall:.2f} s ({tiles} tiles; "
                      + ", ".join(f"{k} {v}" for k, v in phases.items())
                      + f"), vips dzsave {vips[-1][0]:.2f} s")
    vips_wall = statistics.median(w for w, _ in vips)
    rows = [
        ("tile-store POST /pyramids (s3Key, s3s-fs)", server, "request → ready; tiles written to s3s-fs"),
        ("vips dzsave (local disk)", vips, "tiles written to a local folder"),
    ]
    header = f"| image | tool | wall s (median of {a.runs}) | MP/s | peak RSS MiB | time ÷ vips | what is timed |"
    print(header)
    print("|" + "|".join("-" * (len(c) + 2) for c in header.strip("|").split("|")) + "|")
    for name, samples, what in rows:
        wall = statistics.median(w for w, _ in samples)
        rss = statistics.median(r for _, r in samples)
        print(f"| {a.size} MP JPEG | {name} | {wall:.2f} | {megapixels / wall:.1f} | {rss:.0f} | {wall / vips_wall:.2f} | {what} |")


if __name__ == "__main__":
    main()
