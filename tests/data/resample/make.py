#!/usr/bin/python3
"""Makes tests/data/resample/goldens.safetensors: PIL's Image.resize on small RGB images.

Run with Debian's python3 (python3-pil, python3-numpy): /usr/bin/python3 make.py
Tensors (U8):
  src.NAME                 [h, w, 3]   a source image
  out.NAME.FILTER.WxH      [H, W, 3]   Image.fromarray(src).resize((W, H), FILTER)
FILTER is PIL's number (0 NEAREST, 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING).
Pillow >= 12.2 resizes images taller than 100 x their width vertically first when they
shrink vertically; older Pillow does not, so for those this script asks PIL for the two
steps explicitly (each with a box that leaves the other dimension alone), which is exactly
what Pillow >= 12.2 does.
"""
import json
import os
import struct

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(11)


def edges(w, h):
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.where(((xx // 2 + yy // 3) % 2) == 0, 255, 0)
    return np.stack([a, 255 - a, (xx * 255) // (w - 1)], -1).astype(np.uint8)


SOURCES = {
    "noise": rng.integers(0, 256, (23, 37, 3), dtype=np.uint8),
    "edges": edges(16, 16),
    "column": rng.integers(0, 256, (50, 1, 3), dtype=np.uint8),
    "row": rng.integers(0, 256, (1, 50, 3), dtype=np.uint8),
    "tall": rng.integers(0, 256, (400, 3, 3), dtype=np.uint8),
}
SIZES = {
    "noise": [(61, 41), (11, 7), (60, 9), (37, 23), (37, 40), (19, 23), (1, 1)],
    "edges": [(7, 5), (33, 35), (3, 16)],
    "column": [(1, 17), (5, 50), (3, 121)],
    "row": [(17, 1), (50, 3)],
    "tall": [(2, 50), (3, 50), (5, 37), (6, 90)],
}


def pil_resize(a, size, f):
    im = Image.fromarray(a, "RGB")
    w, h = im.size
    if h > w * 100 and size[1] < h:
        t = im.resize((w, size[1]), f, (0, 0, w, h))
        return np.asarray(t.resize(size, f, (0, 0, w, size[1])))
    return np.asarray(im.resize(size, f))


tensors = {}
for name, a in SOURCES.items():
    tensors[f"src.{name}"] = a
    for size in SIZES[name]:
        for f in range(6):
            tensors[f"out.{name}.{f}.{size[0]}x{size[1]}"] = pil_resize(a, size, f)

header, blobs, off = {}, [], 0
for k, v in tensors.items():
    b = np.ascontiguousarray(v, dtype=np.uint8).tobytes()
    header[k] = {"dtype": "U8", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(os.path.join(HERE, "goldens.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print(len(tensors), "tensors,", off, "bytes of pixels")
