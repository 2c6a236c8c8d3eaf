#!/usr/bin/env python3
"""Gigapixel orthomosaic: `tile-store tile` (streamed TIFF) against `vips dzsave` on one tiled BigTIFF.

Generates (once, into bench/out, never committed) a tiled JPEG BigTIFF of WIDTH×HEIGHT pixels
(default 48000×42000 = 2.02 GP): a 4000×3000 photo-like cell (`bench/photo.py`) replicated by
`vips replicate` (so the size is a multiple of 4000×3000) and saved with `tiffsave --tile --bigtiff --compression jpeg` (256×256 tiles,
Q 75). Then runs each tool once under `/usr/bin/time -v` on it, writing into a scratch folder on
the disk, and prints wall time and peak RSS side by side, checks that both wrote the same .dzi and
the same number of tiles, and fails if Tessera's peak RSS passes --max-rss-mib (default 1024).

Usage: `make bench-gigapixel` = `python3 bench/gigapixel.py [--width W --height H] [--keep]`.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
CACHE = os.path.join(BENCH, "out")
TESSERA = os.path.join(ROOT, "target", "release", "tile-store")


def source(width, height):
    """The tiled JPEG BigTIFF, made once."""
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"giga-{width}x{height}.tif")
    if os.path.exists(path):
        return path
    cell = os.path.join(CACHE, "giga-cell.jpg")
    if not os.path.exists(cell):
        subprocess.run([sys.executable, os.path.join(BENCH, "photo.py"), "4000", "3000", cell], check=True)
    if width % 4000 or height % 3000:
        sys.exit("--width must be a multiple of 4000 and --height of 3000 (the replicated cell)")
    partial = path + ".part.tif"
    subprocess.run(
        [
            "vips", "replicate", cell,
            f"{partial}[tile,bigtiff,compression=jpeg,Q=75,tile-width=256,tile-height=256]",
            str(width // 4000), str(height // 3000),
        ],
        check=True,
    )
    os.replace(partial, path)
    return path


def timed(cmd):
    """Wall seconds, CPU seconds (user + system) and peak RSS in MiB of `cmd`, from GNU time."""
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{out.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", out.stderr).group(1)
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", out.stderr).group(1)) for k in ("User", "System"))
    return seconds, cpu, rss / 1024


def count_tiles(files_dir):
    return sum(len([f for f in fs if not f.endswith(".xml")]) for _, _, fs in os.walk(files_dir))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=int, default=48000)
    p.add_argument("--height", type=int, default=42000)
    p.add_argument("--max-rss-mib", type=float, default=1024)
    p.add_argument("--keep", action="store_true", help="keep the pyramids in bench/out/giga-run")
    a = p.parse_args()
    if not os.path.exists(TESSERA):
        sys.exit("build tile-store first: make server")
    src = source(a.width, a.height)
    size = os.path.getsize(src)
    gp = a.width * a.height / 1e9
    print(f"source: {src} ({a.width}×{a.height} = {gp:.2f} GP, tiled JPEG BigTIFF, {size / 2**20:.0f} MiB)")
    run = os.path.join(CACHE, "giga-run")
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(run)
    rows = []
    try:
        for name, cmd in [
            ("tessera", [TESSERA, "tile", src, os.path.join(run, "tessera")]),
            ("vips", ["vips", "dzsave", src, os.path.join(run, "vips")]),
        ]:
            seconds, cpu, rss = timed(cmd)
            tiles = count_tiles(os.path.join(run, f"{name}_files"))
            rows.append((name, seconds, cpu, rss, tiles))
            print(f"{name:8} wall {seconds:7.1f} s  CPU {cpu:7.1f} s  {a.width * a.height / 1e6 / seconds:6.1f} MP/s  "
                  f"peak RSS {rss:7.0f} MiB  {tiles} tiles", flush=True)
        with open(os.path.join(run, "tessera.dzi")) as f, open(os.path.join(run, "vips.dzi")) as g:
            same_dzi = f.read() == g.read()
    finally:
        if not a.keep:
            shutil.rmtree(run, ignore_errors=True)
    (_, t_s, t_cpu, t_rss, t_tiles), (_, v_s, v_cpu, v_rss, v_tiles) = rows
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"tessera/vips: wall {t_s / v_s:.2f}×, CPU {t_cpu / v_cpu:.2f}×, peak RSS {t_rss / v_rss:.2f}×; "
          f"same .dzi: {same_dzi}; same tile count: {t_tiles == v_tiles}")
    if not same_dzi or t_tiles != v_tiles:
        sys.exit("the pyramids differ in geometry")
    if t_rss > a.max_rss_mib:
        sys.exit(f"tessera peak RSS {t_rss:.0f} MiB is over {a.max_rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()
