#!/usr/bin/env python3
"""Makes the sample shipped in www/demo/public/samples: a synthetic bridge-deck photo with cracks,
spalling and a rust stain, plus the GeoJSON detections that outline them.

The JPEG is stored rotated with EXIF Orientation 6 and carries camera EXIF, as phone and
camera photos do, so the sample exercises orientation and the metadata panel. Needs `vips`
and `exiftool`; the outputs are committed, so `make run` needs neither.
Usage: scripts/make-sample.py [OUT_DIR]
"""
import json
import math
import os
import random
import subprocess
import sys
import tempfile

W, H = 4000, 3000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def vips(*args):
    subprocess.run(["vips", *map(str, args)], check=True)


def crack(rng, x, y, heading, steps):
    points = [(x, y)]
    for _ in range(steps):
        heading += rng.uniform(-0.5, 0.5)
        x = min(max(x + 40 * math.cos(heading), 10), W - 10)
        y = min(max(y + 40 * math.sin(heading), 10), H - 10)
        points.append((round(x), round(y)))
    return points


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "www", "demo", "public", "samples")
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as tmp:
        t = lambda n: os.path.join(tmp, n + ".v")
        # Concrete: grey base with blotches and grain.
        vips("gaussnoise", t("coarse"), W // 100 + 2, H // 100 + 2, "--sigma", 14, "--mean", 150, "--seed", 1)
        vips("resize", t("coarse"), t("coarse_big"), 100, "--kernel", "linear")
        vips("crop", t("coarse_big"), t("base"), 0, 0, W, H)
        vips("gaussnoise", t("grain"), W, H, "--sigma", 9, "--mean", 0, "--seed", 2)
        vips("add", t("base"), t("grain"), t("grey"))
        vips("linear", t("grey"), t("warm"), "1 0.98 0.93", "0 0 0")
        vips("cast", t("warm"), t("deck"), "uchar")

        features = []
        for i, (x, y, heading, steps, conf) in enumerate(
            [(300, 500, 0.3, 60, 0.94), (2200, 200, 1.4, 55, 0.88), (3600, 2700, -2.6, 45, 0.71)]
        ):
            pts = crack(rng, x, y, heading, steps)
            for (x1, y1), (x2, y2) in zip(pts, pts[1:]):
                for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1), (2, 1)):
                    vips("draw_line", t("deck"), "45 40 38", x1 + dx, y1 + dy, x2 + dx, y2 + dy)
            features.append({
                "type": "Feature",
                "id": f"crack-{i + 1}",
                "geometry": {"type": "LineString", "coordinates": [list(p) for p in pts]},
                "properties": {"label": f"Crack {i + 1}", "class": "crack", "confidence": conf},
            })

        cx, cy, r = 2600, 1700, 260
        vips("draw_circle", t("deck"), "98 92 88", cx, cy, r, "--fill")
        vips("draw_circle", t("deck"), "70 66 62", cx, cy, r - 60, "--fill")
        ring = [[round(cx + (r + 15) * math.cos(a)), round(cy + (r + 15) * math.sin(a))]
                for a in (2 * math.pi * k / 24 for k in range(24))]
        features.append({
            "type": "Feature",
            "id": "spalling-1",
            "geometry": {"type": "Polygon", "coordinates": [ring + [ring[0]]]},
            "properties": {"label": "Spalling", "class": "spalling", "confidence": 0.91},
        })

        for i, (sx, sy) in enumerate([(900, 2300), (3300, 900)]):
            vips("draw_circle", t("deck"), "140 82 40", sx, sy, 45, "--fill")
            features.append({
                "type": "Feature",
                "id": f"rust-{i + 1}",
                "geometry": {"type": "Point", "coordinates": [sx, sy]},
                "properties": {"label": f"Rust stain {i + 1}", "class": "corrosion", "confidence": 0.8},
            })

        # Stored as a camera held upright stores it: pixels turned, Orientation 6 to turn them back.
        vips("rot", t("deck"), t("stored"), "d270")
        jpg = os.path.join(out, "bridge-deck.jpg")
        vips("copy", t("stored"), f"{jpg}[Q=85,strip]")
    subprocess.run([
        "exiftool", "-q", "-overwrite_original", "-Orientation#=6", "-Make=Tessera",
        "-Model=Survey Cam 1", "-DateTimeOriginal=2026:05:14 10:32:07", "-FocalLength=24",
        "-FocalLengthIn35mmFormat=35", f"-ExifImageWidth={H}", f"-ExifImageHeight={W}",
        "-GPSLatitude=47.3769", "-GPSLatitudeRef=N", "-GPSLongitude=8.5417", "-GPSLongitudeRef=E", jpg,
    ], check=True)
    with open(os.path.join(out, "bridge-deck.json"), "w") as f:
        json.dump({"type": "FeatureCollection", "features": features}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
