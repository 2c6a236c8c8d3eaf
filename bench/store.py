#!/usr/bin/env python3
"""tile-store on the disk store and on the S3 store (s3s-fs), side by side with the targets.

Starts everything itself on 127.0.0.1 and stops it on exit:
  1. tiles a generated photo-like JPEG with `tile-store tile` (cached in bench/out/);
  2. per store: a fresh `tile-store serve` (and, for S3, a fresh `s3s-fs`); ingests the pyramid by
     batch upload (~4 MiB requests, several keep-alive connections, http.client) under fresh ids,
     commits each, and checks a tile and the manifest read back byte for byte;
  3. per store: tile GETs of random tiles of the committed pyramid with `wrk` (a Lua script picks
     the paths and reports latency percentiles), fixed duration, bounded connections;
  4. per S3 store: the same GETs through two instances on one bucket at once, and through an
     instance run with `--committed-ttl 0` (a manifest HEAD on every read).

The "s3-nodelay" store is a diagnostic: the same S3 store, but s3s-fs runs with TCP_NODELAY forced
on its sockets (bench/nodelay.c, LD_PRELOAD), because s3s-fs 0.14.1 leaves Nagle's algorithm on
and so stalls each streamed GET response for the client's delayed ACK (~40 ms).

Usage: `make bench-store` or `python3 bench/store.py [--size 12000x8000] [--runs 3] [--copies 4]
[--duration 10] [--connections 32] [--threads 2] [--upload-connections 4] [--stores disk,s3,s3-nodelay]`.
wrk is installed with apt-get when missing.
"""
import argparse
import atexit
import hashlib
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "bench", "out")
TILE_STORE = os.environ.get("TILE_STORE_BIN", os.path.join(ROOT, "target", "release", "tile-store"))
BATCH_BYTES = 4 << 20
S3_KEY, S3_SECRET, S3_BUCKET = "tessera-bench-key", "tessera-bench-secret", "tessera-bench"
# (store, op) → (text, whether a row meets it).
TARGETS = {
    ("disk", "GET tile"): ("≥ 10,000/s at p99 ≤ 20 ms", lambda r: r["rate"] >= 10_000 and r["p99_s"] <= 0.020),
    ("s3", "ingest (batch)"): ("≥ 2,000 tiles/s", lambda r: r["rate"] >= 2_000),
}

CHILDREN = []


def stop_children():
    for proc in reversed(CHILDREN):
        if proc.poll() is None:
            proc.terminate()
    for proc in reversed(CHILDREN):
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    CHILDREN.clear()


def on_signal(signum, _frame):
    stop_children()
    sys.exit(128 + signum)


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, port, log_path, env=None):
    """Starts a server and waits until it accepts connections on 127.0.0.1:port."""
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    CHILDREN.append(proc)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            sys.exit(f"{cmd[0]} exited with {proc.returncode}:\n{tail(log_path)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"{cmd[0]} did not listen on 127.0.0.1:{port}:\n{tail(log_path)}")
            time.sleep(0.05)


def tail(path, lines=20):
    with open(path, "rb") as f:
        return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    CHILDREN.remove(proc)


def s3s_fs_binary():
    for candidate in (os.environ.get("S3S_FS"), shutil.which("s3s-fs"), os.path.expanduser("~/.cargo/bin/s3s-fs")):
        if candidate and os.path.isfile(candidate):
            return candidate
    sys.exit("s3s-fs not found: cargo install s3s-fs@0.14.1 --locked --features binary")


def nodelay_shim():
    """bench/nodelay.c built into bench/out (a diagnostic LD_PRELOAD shim); None without a C compiler."""
    source, shim = os.path.join(ROOT, "bench", "nodelay.c"), os.path.join(CACHE, "nodelay.so")
    if os.path.exists(shim) and os.path.getmtime(shim) >= os.path.getmtime(source):
        return shim
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    os.makedirs(CACHE, exist_ok=True)
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", shim, source, "-ldl"], check=True)
    return shim


def ensure_wrk():
    if shutil.which("wrk"):
        return shutil.which("wrk")
    log("installing wrk with apt-get")
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"]).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
    return shutil.which("wrk") or sys.exit("wrk is still missing after apt-get install")


# ---- the pyramid ---------------------------------------------------------------------------------


def pyramid(width, height):
    """Tiles a generated photo (both cached); returns (id, dzi bytes, geometry, [(level, col, row, ext, bytes)],
    [(batch body, tile count)], batch content type)."""
    os.makedirs(CACHE, exist_ok=True)
    image = os.path.join(CACHE, f"photo-{width}x{height}.jpg")
    if not os.path.exists(image):
        log(f"generating {image}")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "photo.py"), str(width), str(height), image], check=True)
    prefix = os.path.join(CACHE, f"store-pyramid-{width}x{height}")
    dzi_path, files = prefix + ".dzi", prefix + "_files"
    if not os.path.exists(dzi_path) or os.path.getmtime(dzi_path) < os.path.getmtime(image):
        log(f"tiling {image} with tile-store tile")
        shutil.rmtree(files, ignore_errors=True)
        subprocess.run([TILE_STORE, "tile", image, prefix], check=True, stdout=subprocess.DEVNULL)
    with open(dzi_path, "rb") as f:
        dzi = f.read()
    node = ET.fromstring(dzi)
    ns = node.tag[: node.tag.index("}") + 1] if node.tag.startswith("{") else ""
    size = node.find(f"{ns}Size")
    geometry = {
        "width": size.get("Width"),
        "height": size.get("Height"),
        "tileSize": node.get("TileSize"),
        "overlap": node.get("Overlap"),
        "format": node.get("Format"),
    }
    tiles = []
    for level in sorted(os.listdir(files), key=int):
        for name in sorted(os.listdir(os.path.join(files, level))):
            stem, ext = name.split(".")
            col, row = stem.split("_")
            with open(os.path.join(files, level, name), "rb") as f:
                tiles.append((int(level), int(col), int(row), ext, f.read()))
    # The id and the batch bodies from the project's own definitions (the wasm package, under node).
    framed = prefix + "_batches"
    shutil.rmtree(framed, ignore_errors=True)
    subprocess.run(["node", os.path.join(ROOT, "bench", "batches.mjs"), image, files, framed, str(BATCH_BYTES)], check=True)
    with open(os.path.join(framed, "batches.json")) as f:
        framing = json.load(f)
    bodies = []
    for b in framing["batches"]:
        with open(os.path.join(framed, b["file"]), "rb") as f:
            bodies.append((f.read(), b["count"]))
    return framing["id"], dzi, geometry, tiles, bodies, framing["contentType"]


# ---- ingest --------------------------------------------------------------------------------------

# One anonymous writer: tile-store stages its uploads under this session until the commit (any
# 32 lowercase hex characters; tile-store would hand one out on the first write without it).
SESSION_HEADER = "Tessera-Upload-Session"
SESSION = os.urandom(16).hex()


def ingest(port, jobs, geometry, connections, content_type):
    """Uploads `jobs` ([(id, body, tile count)]) over `connections` keep-alive connections.

    Returns (seconds, [seconds per request]).
    """
    work = queue.Queue()
    for job in jobs:
        work.put(job)
    query = "&".join(f"{k}={v}" for k, v in geometry.items())
    latencies, errors = [], []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while True:
                try:
                    pyramid_id, body, count = work.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                conn.request("POST", f"/pyramids/{pyramid_id}/tiles?{query}", body=body, headers={"Content-Type": content_type, SESSION_HEADER: SESSION})
                response = conn.getresponse()
                answer = response.read()
                latencies.append(time.perf_counter() - t0)
                if response.status != 200 or json.loads(answer).get("stored") != count:
                    errors.append(f"{response.status} {answer[:300]!r}")
                    return
        except Exception as e:  # reported below, the run fails
            errors.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        sys.exit(f"batch upload failed: {errors[0]}")
    return wall, latencies


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers={SESSION_HEADER: SESSION})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def commit(port, pyramid_id, dzi):
    t0 = time.perf_counter()
    status, answer = request(port, "PUT", f"/pyramids/{pyramid_id}.dzi", dzi)
    seconds = time.perf_counter() - t0
    if status != 201:
        sys.exit(f"commit of {pyramid_id} answered {status}: {answer[:300]!r}")
    return seconds


def check_read_back(port, pyramid_id, dzi, tiles):
    status, body = request(port, "GET", f"/pyramids/{pyramid_id}.dzi")
    if status != 200 or body != dzi:
        sys.exit(f"manifest of {pyramid_id} reads back as {status}, {len(body)} bytes")
    for level, col, row, ext, data in (tiles[0], tiles[len(tiles) // 2], tiles[-1]):
        status, body = request(port, "GET", f"/pyramids/{pyramid_id}_files/{level}/{col}_{row}.{ext}")
        if status != 200 or body != data:
            sys.exit(f"tile {level}/{col}_{row} of {pyramid_id} reads back as {status}, {len(body)} bytes")


# ---- GETs with wrk -------------------------------------------------------------------------------

WRK_SCRIPT = """
-- Random tiles of one committed pyramid; every thread has its own seeded generator.
local paths = { %(paths)s }
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end
function init(args)
  math.randomseed(seed * 7919)
end
function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"bytes\\":%%d,\\"status_errors\\":%%d," ..
    "\\"socket_errors\\":%%d,\\"p50_us\\":%%d,\\"p90_us\\":%%d,\\"p99_us\\":%%d,\\"max_us\\":%%d}\\n",
    summary.requests, summary.duration, summary.bytes, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def wrk_run(wrk, port, script, threads, connections, duration):
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", script, f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = next((l for l in out.splitlines() if l.startswith("WRK ")), None)
    if line is None:
        sys.exit(f"no result from wrk:\n{out}")
    result = json.loads(line[4:])
    if result["status_errors"] or result["socket_errors"]:
        sys.exit(f"wrk saw errors against port {port}: {result}\n{out}")
    return result


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the stores ----------------------------------------------------------------------------------


def bench_store(kind, a, work, wrk, shim, pyramid_id, dzi, geometry, tiles, bodies, content_type):
    env = dict(os.environ, RUST_LOG="warn")
    # Writes are anonymous on loopback only when no token or secret is configured.
    for name in ("TILE_STORE_TOKENS", "TILE_STORE_JWT_SECRET", "TILE_STORE_REQUIRE_READ_TOKEN"):
        env.pop(name, None)
    processes = {}
    if kind in ("s3", "s3-nodelay"):
        s3_dir = os.path.join(work, f"{kind}-data")
        os.makedirs(os.path.join(s3_dir, S3_BUCKET))
        s3_port = free_port()
        s3_env = dict(os.environ)
        if kind == "s3-nodelay":
            s3_env["LD_PRELOAD"] = shim
        processes["s3s-fs"] = start(
            [s3s_fs_binary(), "--host", "127.0.0.1", "--port", str(s3_port), "--access-key", S3_KEY, "--secret-key", S3_SECRET, s3_dir],
            s3_port, os.path.join(work, f"{kind}.log"), s3_env)
        env.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{s3_port}", AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID=S3_KEY,
                   AWS_SECRET_ACCESS_KEY=S3_SECRET, AWS_S3_BUCKET_NAME=S3_BUCKET)
        store_args = ["--store", "s3", "--s3-path-style"]
    else:
        store_args = ["--store", "disk", "--data-dir", os.path.join(work, "disk-store")]
    port = free_port()
    processes["tile-store"] = start([TILE_STORE, "serve", "--listen", f"127.0.0.1:{port}", *store_args],
                                    port, os.path.join(work, f"tile-store-{kind}.log"), env)

    rows = []
    # Ingest: each run uploads --copies copies of the pyramid under fresh ids (the first copy of
    # the first run under the pyramid's real id), all batches sharing the connections, then
    # commits each copy and reads it back.
    rates, request_latencies, commits = [], [], []
    cpu_before = {name: cpu_seconds(p.pid) for name, p in processes.items()}
    ingest_wall = 0.0
    per_run = len(tiles) * a.copies
    for run in range(a.runs):
        ids = [pyramid_id if run == copy == 0 else hashlib.sha256(f"bench-{run}-{copy};{pyramid_id}".encode()).hexdigest()
               for copy in range(a.copies)]
        jobs = [(run_id, body, count) for run_id in ids for body, count in bodies]
        wall, latencies = ingest(port, jobs, geometry, a.upload_connections, content_type)
        ingest_wall += wall
        rates.append(per_run / wall)
        request_latencies += latencies
        for run_id in ids:
            commits.append(commit(port, run_id, dzi))
            check_read_back(port, run_id, dzi, tiles)
        log(f"{kind}: ingest run {run + 1}: {per_run} tiles in {wall:.2f} s ({per_run / wall:,.0f} tiles/s), "
            f"commits {statistics.median(commits[-a.copies:]) * 1000:.0f} ms median")
    cpu = {name: (cpu_seconds(p.pid) - cpu_before[name]) / ingest_wall for name, p in processes.items()}
    request_latencies.sort()
    rows.append({
        "store": kind, "op": "ingest (batch)",
        "rate": statistics.median(rates), "p99_s": percentile(request_latencies, 99),
        "throughput": f"{statistics.median(rates):,.0f} tiles/s",
        "p50": ms(percentile(request_latencies, 50)), "p99": ms(percentile(request_latencies, 99)),
        "cpu": cpu_text(cpu),
        "note": f"median of {a.runs} runs × {per_run} tiles ({a.copies} ids), {len(bodies) * a.copies} requests of ≤ 4 MiB, "
                f"{a.upload_connections} conns; p50/p99 per request",
    })
    rows.append({
        "store": kind, "op": "commit", "throughput": "", "p50": ms(statistics.median(commits)), "p99": "",
        "cpu": "", "note": f"median of {len(commits)} (checks {len(tiles)} tiles are listed)",
    })

    # GETs: a short warm-up (connections, caches), then the measured run.
    paths = ", ".join(f'"/pyramids/{pyramid_id}_files/{l}/{c}_{r}.{e}"' for l, c, r, e, _ in tiles)
    script = os.path.join(work, f"tiles-{kind}.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % {"paths": paths})
    wrk_run(wrk, port, script, a.threads, a.connections, 2)
    cpu_before = {name: cpu_seconds(p.pid) for name, p in processes.items()}
    result = wrk_run(wrk, port, script, a.threads, a.connections, a.duration)
    seconds = result["duration_us"] / 1e6
    cpu = {name: (cpu_seconds(p.pid) - cpu_before[name]) / seconds for name, p in processes.items()}
    log(f"{kind}: GET {result}")
    rows.append({
        "store": kind, "op": "GET tile",
        "rate": result["requests"] / seconds, "p99_s": result["p99_us"] / 1e6,
        "throughput": f"{result['requests'] / seconds:,.0f} req/s",
        "p50": ms(result["p50_us"] / 1e6), "p99": ms(result["p99_us"] / 1e6),
        "cpu": cpu_text(cpu),
        "note": f"wrk {a.duration} s, {a.threads} threads, {a.connections} conns, random of {len(tiles)} tiles, "
                f"{result['bytes'] / result['requests'] / 1024:.1f} KiB avg",
    })
    if kind in ("s3", "s3-nodelay"):
        rows += more_instances(kind, a, work, wrk, script, env, store_args, processes, port)
    for proc in processes.values():
        stop(proc)
    return rows


def more_instances(kind, a, work, wrk, script, env, store_args, processes, port):
    """Tile GETs through two instances on the same bucket at once (half the connections each),
    and through one instance that asks the store on every read (`--committed-ttl 0`): the cost
    of the committed-id memory's alternative."""
    rows = []
    second_port = free_port()
    second = start([TILE_STORE, "serve", "--listen", f"127.0.0.1:{second_port}", *store_args, "--instance-id", "bench-b"],
                   second_port, os.path.join(work, f"tile-store-{kind}-b.log"), env)
    half = max(1, a.connections // 2)
    threads = max(1, a.threads // 2)
    wrk_run(wrk, second_port, script, threads, half, 2)
    results = [None, None]

    def run(i, target_port):
        results[i] = wrk_run(wrk, target_port, script, threads, half, a.duration)

    runners = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate((port, second_port))]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    if None in results:
        sys.exit("a wrk run against the two instances failed")
    seconds = max(r["duration_us"] for r in results) / 1e6
    requests = sum(r["requests"] for r in results)
    log(f"{kind}: GET through two instances {results}")
    rows.append({
        "store": kind, "op": "GET tile, 2 instances",
        "throughput": f"{requests / seconds:,.0f} req/s",
        "p50": ms(max(r["p50_us"] for r in results) / 1e6), "p99": ms(max(r["p99_us"] for r in results) / 1e6),
        "cpu": "",
        "note": f"two tile-store processes on one bucket, wrk {a.duration} s against each at once, "
                f"{threads} threads and {half} conns each; the slower instance's percentiles",
    })
    stop(second)

    uncached_port = free_port()
    uncached = start([TILE_STORE, "serve", "--listen", f"127.0.0.1:{uncached_port}", *store_args, "--committed-ttl", "0"],
                     uncached_port, os.path.join(work, f"tile-store-{kind}-ttl0.log"), env)
    wrk_run(wrk, uncached_port, script, a.threads, a.connections, 2)
    result = wrk_run(wrk, uncached_port, script, a.threads, a.connections, a.duration)
    seconds = result["duration_us"] / 1e6
    log(f"{kind}: GET with --committed-ttl 0 {result}")
    rows.append({
        "store": kind, "op": "GET tile, --committed-ttl 0",
        "throughput": f"{result['requests'] / seconds:,.0f} req/s",
        "p50": ms(result["p50_us"] / 1e6), "p99": ms(result["p99_us"] / 1e6), "cpu": "",
        "note": "a manifest HEAD on every tile read (no memory of committed ids); compare with GET tile",
    })
    stop(uncached)
    return rows


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def cpu_text(cpu):
    return ", ".join(f"{name} {share * 100:.0f}%" for name, share in cpu.items())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="12000x8000", help="generated photo WIDTHxHEIGHT")
    p.add_argument("--runs", type=int, default=3, help="ingest runs per store")
    p.add_argument("--copies", type=int, default=4, help="copies of the pyramid (fresh ids) uploaded per run")
    p.add_argument("--upload-connections", type=int, default=4)
    p.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--stores", default="disk,s3,s3-nodelay",
                   help="disk, s3, s3-nodelay (s3s-fs with TCP_NODELAY forced by bench/nodelay.c: a diagnostic)")
    a = p.parse_args()
    if not os.path.exists(TILE_STORE):
        sys.exit(f"{TILE_STORE} is missing: run `cargo build --release -p tile-store` (make bench-store does)")
    atexit.register(stop_children)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    wrk = ensure_wrk()
    shim = nodelay_shim() if "s3-nodelay" in a.stores.split(",") else None
    width, height = (int(v) for v in a.size.split("x"))
    pyramid_id, dzi, geometry, tiles, bodies, content_type = pyramid(width, height)
    total = sum(len(t[4]) for t in tiles)
    log(f"pyramid {pyramid_id}: {len(tiles)} tiles, {total / 2**20:.1f} MiB, {len(bodies)} batches")

    rows = []
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="store-bench-") as work:
        for kind in a.stores.split(","):
            if kind == "s3-nodelay" and shim is None:
                log("skipping s3-nodelay: no C compiler for bench/nodelay.c")
                continue
            rows += bench_store(kind, a, work, wrk, shim, pyramid_id, dzi, geometry, tiles, bodies, content_type)

    load = os.getloadavg()
    print(f"tile-store, {width}×{height} photo: {len(tiles)} tiles ({total / len(tiles) / 1024:.1f} KiB avg); "
          f"{os.cpu_count()} cores, load average {load[0]:.1f} at the end; all on 127.0.0.1; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    head = {"store": "store", "op": "op", "throughput": "throughput", "p50": "p50", "p99": "p99",
            "target": "target", "cpu": "server CPU (100% = 1 core)", "note": "how"}
    table = [head]
    for r in rows:
        target = TARGETS.get((r["store"], r["op"]))
        text = f"{target[0]}: {'met' if target[1](r) else 'MISSED'}" if target else ""
        table.append(dict(r, target=text))
    widths = {k: max(len(r[k]) for r in table) for k in head}
    line = lambda r: "| " + " | ".join(r[k].ljust(widths[k]) for k in head) + " |"
    print(line(table[0]))
    print("|" + "|".join("-" * (widths[k] + 2) for k in head) + "|")
    for r in table[1:]:
        print(line(r))


if __name__ == "__main__":
    main()
