#!/usr/bin/env python3
"""Generates a deterministic photo-like JPEG (smooth multi-scale structure plus fine grain) with vips.

Usage: photo.py WIDTH HEIGHT OUT.jpg [--quality Q]
       photo.py WIDTH HEIGHT OUT.png --alpha    (RGBA PNG: the same picture under a cloudy alpha)
Noise alone compresses like no photo does; summed octaves of upscaled noise give the mix of
smooth areas and texture that survey photos of concrete and steel have.
"""
import argparse
import os
import subprocess
import tempfile


def vips(*args):
    subprocess.run(["vips", *map(str, args)], check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("width", type=int)
    p.add_argument("height", type=int)
    p.add_argument("out")
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--alpha", action="store_true", help="add a smooth alpha band, with opaque and clear patches")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        t = lambda name: os.path.join(tmp, name + ".v")
        acc = None
        # (cell size in pixels, amplitude): coarse shapes dominate, finer ones add texture.
        for i, (cell, sigma) in enumerate([(1024, 45), (256, 25), (64, 14), (16, 8)]):
            w, h = -(-a.width // cell) + 1, -(-a.height // cell) + 1
            bands = []
            for b in range(3):
                vips("gaussnoise", t(f"n{i}{b}"), w, h, "--sigma", sigma, "--mean", 0, "--seed", 1000 * i + b)
                bands.append(t(f"n{i}{b}"))
            vips("bandjoin", " ".join(bands), t(f"o{i}"))
            vips("resize", t(f"o{i}"), t(f"r{i}"), cell, "--kernel", "linear")
            vips("crop", t(f"r{i}"), t(f"c{i}"), 0, 0, a.width, a.height)
            if acc is None:
                acc = t(f"c{i}")
            else:
                vips("add", acc, t(f"c{i}"), t(f"s{i}"))
                acc = t(f"s{i}")
        vips("gaussnoise", t("grain"), a.width, a.height, "--sigma", 3, "--mean", 128, "--seed", 7)
        vips("add", acc, t("grain"), t("sum"))
        vips("cast", t("sum"), t("u8"), "uchar")
        if not a.alpha:
            vips("copy", t("u8"), f"{a.out}[Q={a.quality},strip]")
            return
        # Clamped wide noise: large fully opaque and fully clear patches joined by soft edges.
        cell = 512
        vips("gaussnoise", t("an"), -(-a.width // cell) + 1, -(-a.height // cell) + 1, "--sigma", 200, "--mean", 128, "--seed", 99)
        vips("resize", t("an"), t("ar"), cell, "--kernel", "linear")
        vips("crop", t("ar"), t("ac"), 0, 0, a.width, a.height)
        vips("cast", t("ac"), t("a8"), "uchar")
        vips("bandjoin", f"{t('u8')} {t('a8')}", t("rgba"))
        vips("copy", t("rgba"), f"{a.out}[strip]")


if __name__ == "__main__":
    main()
