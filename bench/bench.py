#!/usr/bin/env python3
"""Tessera's native tiler (`tile-store tile`) against `vips dzsave`, side by side.

Runs both tools on the same generated photo-like JPEGs, alternating, writing into the same
place (a memory-backed folder and the disk), and prints median wall time, MP/s, peak RSS
and the ratios against vips. Usage: `make bench` or
`python3 bench/tiling.py [--sizes 24,96] [--runs 3] [--places shm,disk]`.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "bench", "out")
TESSERA = os.path.join(ROOT, "target", "release", "tile-store")

# (name, width, height): 3:2 photos.
SIZES = {"24": (6000, 4000), "96": (12000, 8000), "400": (24496, 16330)}


def image(mp):
    w, h = SIZES[mp]
    path = os.path.join(CACHE, f"photo-{mp}mp.jpg")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        print(f"generating {path} ({w}×{h})", file=sys.stderr)
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "photo.py"), str(w), str(h), path], check=True)
    return path, w * h / 1e6


def run(cmd):
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed: {err.strip()}")
    return wall, usage.ru_maxrss / 1024


def tools(img, out):
    return {
        "tessera": [TESSERA, "tile", img, out],
        "vips": ["vips", "dzsave", img, out],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", default="24,96", help="comma-separated megapixel sizes: 24, 96, 400")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--places", default="shm,disk")
    a = p.parse_args()
    if not os.path.exists(TESSERA):
        sys.exit(f"{TESSERA} is missing: run `cargo build --release -p tile-store` (make bench does)")
    places = {"shm": "/dev/shm", "disk": CACHE}
    rows = []
    for mp in a.sizes.split(","):
        img, megapixels = image(mp)
        for place in a.places.split(","):
            samples = {}
            with tempfile.TemporaryDirectory(dir=places[place], prefix="bench-") as tmp:
                out = os.path.join(tmp, "pyramid")
                for _ in range(a.runs):
                    for name, cmd in tools(img, out).items():
                        shutil.rmtree(out + "_files", ignore_errors=True)
                        subprocess.run(["sync"])
                        samples.setdefault(name, []).append(run(cmd))
            vips_wall = statistics.median(w for w, _ in samples["vips"])
            vips_rss = statistics.median(r for _, r in samples["vips"])
            for name, s in samples.items():
                wall = statistics.median(w for w, _ in s)
                rss = statistics.median(r for _, r in s)
                rows.append((f"{mp} MP JPEG", place, name, wall, megapixels / wall, rss, wall / vips_wall, rss / vips_rss))
    head = ("image", "output", "tool", "wall s", "MP/s", "peak RSS MiB", "time ÷ vips", "RSS ÷ vips")
    fmt = "| {:<10} | {:<6} | {:<8} | {:>7} | {:>6} | {:>12} | {:>11} | {:>10} |"
    print(f"medians of {a.runs} runs; {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}")
    print(fmt.format(*head))
    print("|" + "|".join("-" * len(c) for c in fmt.format(*head).split("|")[1:-1]) + "|")
    for r in rows:
        print(fmt.format(r[0], r[1], r[2], f"{r[3]:.2f}", f"{r[4]:.1f}", f"{r[5]:.0f}", f"{r[6]:.2f}", f"{r[7]:.2f}"))


if __name__ == "__main__":
    main()
