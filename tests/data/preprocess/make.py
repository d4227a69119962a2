#!/usr/bin/python3
"""Makes tests/data/preprocess/edges.safetensors: what transformers' PIL image processors
give for images at the edges (1x1, 1x10000, 10000x1, 3x1000, tall and wide), with small
processor configs written next to it (smol_edges.json, clip_edges.json, clip_pad.json).

transformers is not needed: this is a line-by-line restatement of the float64 / integer
size arithmetic of SmolVLMImageProcessorPil / CLIPImageProcessorPil (transformers 5,
image_processing_pil_smolvlm.py, image_processing_backends.PilBackend, image_transforms)
on top of the real PIL. Run with --check to compare it with the references made by
transformers itself (../smolvlm-tiny/caseN, ../llava-tiny/caseN) first.

Run with Debian's python3 (python3-pil, python3-numpy): /usr/bin/python3 make.py [--check]
Tensors (U8: those configs neither rescale nor normalise):
  smol.WxH       [tiles, 3, 16, 16]  smol_edges.json; "rows cols" in the metadata
  clip.WxH       [3, 10, 8]          clip_edges.json
  clip_pad.WxH   [3, 9, 7]           clip_pad.json (the crop is larger than the image)
  smol_nosplit.WxH [1, 3, 16, 16]  smol_edges.json with do_image_splitting false
edges.json: {"smol.WxH": [rows, cols], "smolvlm-tiny.WxH": [rows, cols] (with
../smolvlm-tiny/preprocessor_config.json)}.
The source images are made by a formula (source() below) that the C test repeats.
"""
import json
import math
import os
import struct
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.dirname(HERE)


def resize(a, h, w, resample):
    """PilBackend.resize: uint8 HWC -> PIL -> resize((w, h)) -> uint8.

    Pillow >= 12.2 resizes images taller than 100 x their width vertically first when
    they shrink vertically; with an older Pillow, ask for those two steps explicitly."""
    if h <= 0 or w <= 0:
        raise ValueError("height and width must be > 0")
    im = Image.fromarray(a, "RGB")
    sw, sh = im.size
    if sh > sw * 100 and h < sh:
        im = im.resize((sw, h), resample, (0, 0, sw, sh))
        return np.asarray(im.resize((w, h), resample, (0, 0, sw, h)))
    return np.asarray(im.resize((w, h), resample))


def normalize(a, cfg):
    x = a.transpose(2, 0, 1)
    if cfg.get("do_rescale", True):
        x = (x.astype(np.float64) * cfg.get("rescale_factor", 1 / 255)).astype(np.float32)
    else:
        x = x.astype(np.float32)
    if cfg.get("do_normalize", True):
        mean = np.array(cfg["image_mean"], dtype=np.float32)
        std = np.array(cfg["image_std"], dtype=np.float32)
        x = ((x.T - mean) / std).T
    return x


def smol_size(h, w, max_len):
    ar = w / h
    if w >= h:
        w = max_len
        h = int(w / ar)
        if h % 2 != 0:
            h += 1
    elif h > w:
        h = max_len
        w = int(h * ar)
        if w % 2 != 0:
            w += 1
    h, w = max(h, 1), max(w, 1)
    ar = w / h
    if w >= h and w > 4096:
        w = 4096
        h = int(w / ar)
    elif h > w and h > 4096:
        h = 4096
        w = int(h * ar)
    return max(h, 1), max(w, 1)


def smol_tiled(h, w, t):
    ar = w / h
    if w >= h:
        w = math.ceil(w / t) * t
        h = int(w / ar)
        h = math.ceil(h / t) * t
    elif h > w:
        h = math.ceil(h / t) * t
        w = int(h * ar)
        w = math.ceil(w / t) * t
    return h, w


def smolvlm(a, cfg):
    r = cfg["resample"]
    t = cfg["max_image_size"]["longest_edge"]
    h, w = smol_size(a.shape[0], a.shape[1], cfg["size"]["longest_edge"])
    a = resize(a, h, w, r)
    if not cfg.get("do_image_splitting", True):
        return normalize(resize(a, t, t, r), cfg)[None], 0, 0
    h, w = smol_tiled(h, w, t)
    a = resize(a, h, w, r)
    rows = cols = 0
    frames = [a]
    if h > t or w > t:
        rows, cols = (h - t) // t + 1, (w - t) // t + 1
        frames = [a[i * t:(i + 1) * t, j * t:(j + 1) * t] for i in range(rows)
                  for j in range(cols)]
        frames.append(resize(a, t, t, r))
    return np.stack([normalize(f, cfg) for f in frames]), rows, cols


def clip(a, cfg):
    h, w = a.shape[:2]
    size = cfg["size"]["shortest_edge"]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    h, w = (new_long, new_short) if w <= h else (new_short, new_long)
    a = resize(a, h, w, cfg["resample"])
    ch, cw = cfg["crop_size"]["height"], cfg["crop_size"]["width"]
    top, left = (h - ch) // 2, (w - cw) // 2
    out = np.zeros((ch, cw, 3), np.uint8)
    for y in range(ch):
        for x in range(cw):
            if 0 <= y + top < h and 0 <= x + left < w:
                out[y, x] = a[y + top, x + left]
    return normalize(out, cfg)


def read_st(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(data[b:e], {"F32": np.float32}[v["dtype"]]).reshape(v["shape"])
    return out


def check():
    for model, fn, key in (("smolvlm-tiny", smolvlm, "pixel_values.SmolVLMImageProcessorPil"),
                           ("llava-tiny", clip, "pixel_values")):
        cfg = json.load(open(os.path.join(DATA, model, "preprocessor_config.json")))
        ref = json.load(open(os.path.join(DATA, model, "reference.json")))
        for i, case in enumerate(ref["cases"]):
            a = np.asarray(Image.open(os.path.join(DATA, "images", case["image"]))
                           .convert("RGB"))
            got = fn(a, cfg)
            if isinstance(got, tuple):
                got, rows, cols = got
                assert (rows, cols) == (case["rows"], case["cols"]), (rows, cols)
            want = read_st(os.path.join(DATA, model, case["tensors"]))[key]
            want = want.reshape(got.shape)
            print(model, i, case["image"], "max |diff|", np.abs(got - want).max())


# Small processors for the edge cases: the same code paths with tiny tiles, without
# rescale / normalise so that the outputs are the resized bytes themselves.
SMOL_EDGE = {"do_resize": True, "size": {"longest_edge": 40}, "max_image_size": {"longest_edge": 16},
             "do_image_splitting": True, "do_rescale": False, "do_normalize": False,
             "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 1}
CLIP_EDGE = {"do_resize": True, "size": {"shortest_edge": 12}, "do_center_crop": True,
             "crop_size": {"height": 10, "width": 8}, "do_rescale": False, "do_normalize": False,
             "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3}
# a crop larger than the resized image: transformers pads with zeros
CLIP_PAD = dict(CLIP_EDGE, size={"shortest_edge": 6}, crop_size={"height": 9, "width": 7})
SIZES = ((1, 1), (1, 10000), (10000, 1), (3, 1000), (7, 900), (640, 20), (5, 3))


def source(w, h):
    """The test image of w x h: the C test makes the same bytes."""
    y, x, c = np.mgrid[0:h, 0:w, 0:3]
    return ((x * 131 + y * 71 + c * 29 + ((x * y) % 11) * 17) & 255).astype(np.uint8)


def main():
    if "--check" in sys.argv:
        check()
        return
    for name, cfg in (("smol_edges.json", SMOL_EDGE), ("clip_edges.json", CLIP_EDGE),
                      ("clip_pad.json", CLIP_PAD)):
        with open(os.path.join(HERE, name), "w") as f:
            json.dump(cfg, f, indent=1)
    smol_real = json.load(open(os.path.join(DATA, "smolvlm-tiny", "preprocessor_config.json")))
    tensors, meta = {}, {}
    for w, h in SIZES:
        a = source(w, h)
        x, rows, cols = smolvlm(a, SMOL_EDGE)
        tensors[f"smol.{w}x{h}"] = x.astype(np.uint8)
        meta[f"smol.{w}x{h}"] = [rows, cols]
        _, rows, cols = smolvlm(a, smol_real)
        meta[f"smolvlm-tiny.{w}x{h}"] = [rows, cols]
        x, _, _ = smolvlm(a, dict(SMOL_EDGE, do_image_splitting=False))
        tensors[f"smol_nosplit.{w}x{h}"] = x.astype(np.uint8)
        tensors[f"clip.{w}x{h}"] = clip(a, CLIP_EDGE).astype(np.uint8)
        tensors[f"clip_pad.{w}x{h}"] = clip(a, CLIP_PAD).astype(np.uint8)
    with open(os.path.join(HERE, "edges.json"), "w") as f:
        json.dump(meta, f, indent=1)
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = np.ascontiguousarray(v).tobytes()
        header[k] = {"dtype": "U8", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(HERE, "edges.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(len(tensors), "tensors,", off, "bytes")


main()
