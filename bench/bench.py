#!/usr/bin/env python3
"""The one benchmark: Tessera against `vips dzsave` and sharp, natively and in the browser.

On the same images, in one run, it measures
- Tessera natively (`tile-store tile`), `vips dzsave` (libvips-tools) and sharp's
  `.tile({ size: 254, overlap: 1, layout: 'dz' })` (npm `sharp`, from bench/package.json),
  alternating, writing into a memory-backed folder (`shm`; `--places shm,disk` adds the disk):
  wall time, MP/s and peak RSS (the child's `ru_maxrss`); on every core and on one (`--cores all,1`):
  each tool pinned with `taskset` to that many cores, and VIPS_CONCURRENCY set to it for vips and
  sharp (libvips) as Tessera's thread pool follows the cores it may use;
- Tessera in headless Chromium (`bench/browser.mjs`): the whole pyramid in the worker, timed in the
  page from `setImageSrc`, with its peak wasm memory, and the time to the first view against
  OpenSeadragon's own `type: 'image'` tile source on the same image;
and prints one table of medians with ratios against vips.

Images (generated once into bench/out): photo-like JPEGs of 24 and 96 MP (`bench/photo.py`), a 24 MP
PNG with alpha (`photo.py --alpha`; PNG tiles for every tool, as Tessera picks for alpha) and, with
`--with-400`, a 400 MP JPEG (the 96 MP one mirror-extended by `vips embed`).

Usage: `make bench` = `python3 bench/bench.py [--with-400] [--with-gigapixel] [--runs 3] [--places shm,disk] [--cores all,1] [--no-browser]`.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
CACHE = os.path.join(BENCH, "out")
TESSERA = os.path.join(ROOT, "target", "release", "tile-store")
PLACES = {"shm": "/dev/shm", "disk": CACHE}


class Image:
    def __init__(self, key, file, width, height, alpha=False):
        self.key, self.width, self.height, self.alpha = key, width, height, alpha
        self.path = os.path.join(CACHE, file)
        self.mp = width * height / 1e6
        kind = "PNG α" if alpha else "JPEG"
        self.label = f"{round(self.mp)} MP {kind}"


IMAGES = {
    "24": Image("24", "photo-24mp.jpg", 6000, 4000),
    "96": Image("96", "photo-96mp.jpg", 12000, 8000),
    "24a": Image("24a", "photo-24mp-alpha.png", 6000, 4000, alpha=True),
    "400": Image("400", "photo-400mp.jpg", 24496, 16330),
}


def make(img):
    if os.path.exists(img.path):
        return
    os.makedirs(CACHE, exist_ok=True)
    print(f"generating {img.path} ({img.width}×{img.height})", file=sys.stderr)
    photo = [sys.executable, os.path.join(BENCH, "photo.py"), str(img.width), str(img.height)]
    if img.key == "400":
        # photo.py's intermediate files at 400 MP would not fit in memory; a mirror-extended
        # 96 MP photo streams through vips and compresses like a photo.
        make(IMAGES["96"])
        cmd = ["vips", "embed", IMAGES["96"].path, f"{img.path}[Q=90,strip]", "0", "0",
               str(img.width), str(img.height), "--extend", "mirror"]
    elif img.alpha:
        cmd = photo + [img.path, "--alpha"]
    else:
        cmd = photo + [img.path]
    subprocess.run(cmd, check=True)


def pinned(cmd, cores):
    """`cmd` on the first `cores` cores (`taskset`), libvips' thread pool sized to match; the environment for it."""
    env = dict(os.environ, VIPS_CONCURRENCY=str(cores))
    if cores == os.cpu_count():
        return cmd, env
    return ["taskset", "-c", ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:cores])] + cmd, env


def run(cmd, env=None):
    """Wall seconds, peak RSS (MiB) and CPU seconds (user + system) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed: {err.strip()}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


# zlib level 1, the least deflate effort vips and sharp offer: Tessera writes PNG tiles with
# fdeflate's fast mode, so the reference tools' default level 6 would compare unlike work. The
# table's "out MiB" column shows what each tool's effort costs in size.
PNG_COMPRESSION = 1


def native_tools(img, out, sharp):
    tools = {
        "tessera": [TESSERA, "tile", img.path, out],
        # PNG tiles for the alpha image, as Tessera picks, so all three do the same work.
        "vips": ["vips", "dzsave", img.path, out]
        + (["--suffix", f".png[compression={PNG_COMPRESSION}]"] if img.alpha else []),
    }
    if sharp:
        tools["sharp"] = ["node", os.path.join(BENCH, "sharp-dz.mjs"), img.path, out,
                          f"png{PNG_COMPRESSION}" if img.alpha else "jpeg"]
    return tools


def browser(images, runs):
    """Every run's figures from bench/browser.mjs, by image path."""
    cmd = ["node", os.path.join(BENCH, "browser.mjs"), "--runs", str(runs), "--json"]
    for img in images:
        cmd += ["--image", img.path]
    print("chromium: " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def pyramid_mib(out):
    """Bytes of the pyramid written at `out` (the .dzi and every tile), in MiB."""
    total = os.path.getsize(out + ".dzi")
    for folder, _, files in os.walk(out + "_files"):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total / (1 << 20)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cell(x, digits):
    return "—" if x is None else f"{x:.{digits}f}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", default="24,96,24a", help="comma-separated: 24, 96, 24a (PNG with alpha), 400")
    p.add_argument("--with-400", action="store_true", help="add the 400 MP JPEG (slow: minutes per run)")
    p.add_argument("--with-gigapixel", action="store_true",
                   help="then bench/gigapixel.py: a 2 GP tiled BigTIFF, Tessera against vips (generated once, GiBs)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--places", default="shm", help="where native tools write: shm, disk")
    p.add_argument("--cores", default="all,1", help="comma-separated core counts for the native tools: all, or a number")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("--no-sharp", action="store_true")
    a = p.parse_args()
    if not os.path.exists(TESSERA):
        sys.exit(f"{TESSERA} is missing: run `make server` (make bench does)")
    keys = [k.strip() for k in a.images.split(",") if k.strip()]
    if a.with_400 and "400" not in keys:
        keys.append("400")
    images = [IMAGES[k] for k in keys]
    for img in images:
        make(img)
    sharp = not a.no_sharp
    if sharp and not os.path.isdir(os.path.join(BENCH, "node_modules", "sharp")):
        sys.exit("sharp is missing: run `scripts/setup.sh npm bench` (make bench does)")

    counts = []
    for c in a.cores.split(","):
        c = c.strip()
        n = os.cpu_count() if c == "all" else int(c)
        if not 1 <= n <= os.cpu_count():
            sys.exit(f"--cores: {c} is not between 1 and {os.cpu_count()}")
        counts.append(n)
    rows = []
    for img in images:
        vips_refs = {}
        for place in a.places.split(","):
            for cores in counts:
                where = place if cores == os.cpu_count() else f"{place}, {cores} core{'s' if cores > 1 else ''}"
                samples = {}
                with tempfile.TemporaryDirectory(dir=PLACES[place], prefix="tessera-bench-") as tmp:
                    out = os.path.join(tmp, "pyramid")
                    for i in range(a.runs):
                        # Alternating, so that a busy spell of the machine does not land on one tool only.
                        for name, cmd in native_tools(img, out, sharp).items():
                            shutil.rmtree(out + "_files", ignore_errors=True)
                            subprocess.run(["sync"])
                            samples.setdefault(name, []).append(run(*pinned(cmd, cores)) + (pyramid_mib(out),))
                        print(f"{img.label} {where} run {i + 1}/{a.runs}: " +
                              ", ".join(f"{n} {s[-1][0]:.2f} s {s[-1][1]:.0f} MiB" for n, s in samples.items()), file=sys.stderr)
                vips_wall = median(x[0] for x in samples["vips"])
                vips_rss = median(x[1] for x in samples["vips"])
                vips_refs.setdefault(cores, (vips_wall, vips_rss))
                for name, s in samples.items():
                    wall, rss, cpu, size = (median(x[i] for x in s) for i in range(4))
                    rows.append({"image": img.label, "tool": name, "where": where, "wall": wall, "cpu": cpu, "size": size,
                                 "mps": img.mp / wall, "mem": rss, "t_vips": wall / vips_wall, "m_vips": rss / vips_rss})
        # The browser's rows are compared with vips on every core (the browser's workers may use them all).
        img.vips_ref = vips_refs.get(os.cpu_count()) or next(iter(vips_refs.values()))
    notes = []
    if not a.no_browser:
        measured = browser(images, a.runs)
        for img in images:
            m = measured[img.path]
            pyramid = median(r["pyramid"] for r in m["tessera"]) / 1000
            wasm = median(r["wasmMiB"] for r in m["tessera"])
            full_first = median(r["firstView"] for r in m["tessera"])
            preview = median(r["preview"] for r in m["tessera"])
            # The first picture on screen: the preview if the image got one, else the tiles.
            first = preview if preview is not None else full_first
            osd_first = median(r["firstView"] for r in m["osdImage"])
            vips_wall, vips_rss = img.vips_ref
            rows.append({"image": img.label, "tool": "tessera", "where": "chromium", "wall": pyramid,
                         "mps": img.mp / pyramid, "mem": wasm, "t_vips": pyramid / vips_wall,
                         "m_vips": wasm / vips_rss if wasm is not None else None,
                         "renderer": median(r["peakMiB"] for r in m["tessera"]),
                         "first": first, "f_osd": first / osd_first if osd_first else None,
                         "full_first": full_first})
            # The same first view with the browser's decoder off: tiler-wasm's preview, the fallback.
            w = m["tesseraWasmPreview"]
            w_full = median(r["firstView"] for r in w)
            w_preview = median(r["preview"] for r in w)
            w_first = w_preview if w_preview is not None else w_full
            rows.append({"image": img.label, "tool": "tessera, wasm preview", "where": "chromium",
                         "first": w_first, "f_osd": w_first / osd_first if osd_first else None, "full_first": w_full})
            failures = sorted({r["error"] for r in m["osdImage"] if r.get("error")})
            tool = "osd type:image" + (" ✗" if failures else "")
            notes += [f"✗ osd type:image on {img.label}: {e}" for e in failures]
            rows.append({"image": img.label, "tool": tool, "where": "chromium",
                         "renderer": median(r["peakMiB"] for r in m["osdImage"]), "first": osd_first,
                         "f_osd": 1.0 if osd_first else None})

    cols = [("image", "image", None), ("tool", "tool", None), ("where", "where", None),
            ("wall s", "wall", 2), ("CPU s", "cpu", 2), ("MP/s", "mps", 1), ("peak MiB", "mem", 0), ("out MiB", "size", 1), ("time ÷ vips", "t_vips", 2),
            ("mem ÷ vips", "m_vips", 2), ("renderer MiB", "renderer", 0), ("first view ms", "first", 0),
            ("first view ÷ osd", "f_osd", 2), ("tiles view ms", "full_first", 0)]
    table = [[h for h, _, _ in cols]]
    for r in rows:
        table.append([r.get(k) if d is None else cell(r.get(k), d) for _, k, d in cols])
    widths = [max(len(str(row[i])) for row in table) for i in range(len(cols))]
    line = lambda row: "| " + " | ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w)
                                         for i, (c, w) in enumerate(zip(row, widths))) + " |"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}; medians of {a.runs} runs; {os.cpu_count()} cores ({cpu}); "
          f"{platform.system()} {platform.release()}; {subprocess.run(['vips', '--version'], capture_output=True, text=True).stdout.strip()}")
    print(line(table[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in table[1:]:
        print(line(row))
    print(f"out MiB: the pyramid's bytes. JPEG tiles at Q75 from every tool; PNG tiles with zlib level "
          f"{PNG_COMPRESSION} for vips and sharp, fdeflate's fast mode for Tessera. "
          "CPU s: user + system time of the native process, which a busy machine distorts less than wall time. "
          "peak MiB: RSS natively (sharp's includes node's); the wasm memory of the workers in Chromium, whose "
          "renderer process RSS is beside it. first view: setImageSrc (Tessera) or viewer.open (OpenSeadragon) → "
          "two frames after the first fully loaded picture, on the page clock: for Tessera the low-resolution "
          "preview of a large image (the browser's decoder; 'wasm preview': tiler-wasm's, the fallback), else the "
          "tiles; tiles view: the same for the pyramid's own tiles. 'N core(s)': every tool pinned with taskset, "
          "VIPS_CONCURRENCY=N; time ÷ vips compares with vips on as many cores.")
    for n in notes:
        print(n)
    if a.with_gigapixel:
        print()
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gigapixel.py")], check=True)


if __name__ == "__main__":
    main()
