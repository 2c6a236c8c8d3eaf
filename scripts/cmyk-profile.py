#!/usr/bin/env python3
"""Writes tiler-wasm/profiles/cmyk.icc: libvips's built-in CMYK profile cut to what a CMYK → sRGB
conversion reads.

libvips 8.14 uses its built-in "cmyk" profile (Argyll CMS's "Chemical proof", public domain,
961,644 bytes) for CMYK images without one of their own. 734,155 bytes of it are the measurement
data it was made from (the `targ` text tag, shared by `DevD` and `CIED`), and the rest is mostly
the PCS → device tables (`B2A*`, `gamt`) a conversion from CMYK never reads. This keeps the header
(with the new size) and the tags `desc`, `cprt`, `wtpt`, `bkpt` and `A2B0`/`A2B1`/`A2B2` (one
table, as in the original), byte for byte. `tiler-wasm/tests/formats.rs` checks the result against
the profile vips uses, extracted the same way at test time.

Usage: scripts/cmyk-profile.py [OUT]   (needs `vips`; Python standard library only)
"""

import os
import struct
import subprocess
import sys
import tempfile

KEEP = [b"desc", b"cprt", b"wtpt", b"bkpt", b"A2B0", b"A2B1", b"A2B2"]


def vips_cmyk_profile() -> bytes:
    """The profile vips attaches to an image converted to its "cmyk" profile, read from a TIFF."""
    with tempfile.TemporaryDirectory() as tmp:
        black = os.path.join(tmp, "black.v")
        tif = os.path.join(tmp, "cmyk.tif")
        subprocess.run(["vips", "black", black, "1", "1", "--bands", "3"], check=True)
        subprocess.run(["vips", "icc_transform", black, tif, "cmyk"], check=True)
        data = open(tif, "rb").read()
    order = {b"II": "<", b"MM": ">"}[data[:2]]
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    for i in range(count):
        at = ifd + 2 + 12 * i
        tag, _kind, length, offset = struct.unpack(order + "HHII", data[at : at + 12])
        if tag == 34675:  # ICC profile
            return data[offset : offset + length]
    sys.exit("vips wrote no ICC profile")


def cut(profile: bytes) -> bytes:
    (count,) = struct.unpack(">I", profile[128:132])
    tags = [struct.unpack(">4sII", profile[132 + 12 * i : 144 + 12 * i]) for i in range(count)]
    kept = [t for t in tags if t[0] in KEEP]
    if sorted(t[0] for t in kept) != sorted(KEEP):
        sys.exit(f"unexpected tags: {[t[0] for t in tags]}")
    # Tags sharing data keep sharing it; each piece of data starts on a 4-byte boundary.
    table = 132 + 12 * len(kept)
    body = bytearray()
    placed = {}
    entries = []
    for sig, offset, size in kept:
        if (offset, size) not in placed:
            body += b"\0" * (-(table + len(body)) % 4)
            placed[(offset, size)] = table + len(body)
            body += profile[offset : offset + size]
        entries.append(struct.pack(">4sII", sig, placed[(offset, size)], size))
    out = bytearray(profile[:128]) + struct.pack(">I", len(kept)) + b"".join(entries) + body
    out[0:4] = struct.pack(">I", len(out))
    return bytes(out)


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tiler-wasm", "profiles", "cmyk.icc")
    full = vips_cmyk_profile()
    small = cut(full)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    open(out, "wb").write(small)
    print(f"{out}: {len(small)} bytes (vips's profile: {len(full)} bytes)")


if __name__ == "__main__":
    main()
