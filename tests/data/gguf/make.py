#!/usr/bin/python3
"""Writes the GGUF test files of tests/data/gguf from the tiny reference models.

  /usr/bin/python3 tests/data/gguf/make.py --llama-src LLAMA_CPP_TREE

LLAMA_CPP_TREE is a llama.cpp source tree (its gguf-py package is used); numpy is
Debian's python3-numpy. The text and mmproj files are written by tools/peer/hf_to_gguf.py
(the layout, names, keys and type rules of llama.cpp's convert_hf_to_gguf.py, which needs
torch); Q4_0 text models by the same script with its weight type set to Q4_0 (gguf-py's
quantizer; matrices whose rows are not whole blocks fall back to F16, as the converter
does). quants.gguf holds random blocks of every ggml type ocellus converts next to
gguf-py's dequantization of them ("ref.TYPE", F32), which the C dequantizer must equal.
"""
import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def load_converter():
    spec = importlib.util.spec_from_file_location("hf_to_gguf", ROOT / "tools/peer/hf_to_gguf.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def with_q4_0(conv, gguf):
    """The converter's type tables plus Q4_0 (llama.cpp's MOSTLY_Q4_0 file type)."""
    qt, ft = conv.quant_type, conv.file_type
    conv.quant_type = lambda g, t: g.GGMLQuantizationType.Q4_0 if t == "q4_0" else qt(g, t)
    conv.file_type = lambda g, t: g.LlamaFileType.MOSTLY_Q4_0 if t == "q4_0" else ft(g, t)


def convert(conv, gguf, name, text_types, mmproj_types):
    d = ROOT / "tests/data" / name
    cfg = conv.read_json(d / "config.json")
    family = conv.family_of(cfg, str(d / "config.json"))
    tensors = conv.open_weights(d)
    out = HERE / name
    out.mkdir(exist_ok=True)
    for t in text_types:
        conv.write_text(gguf, d, cfg, family, tensors, out / f"{name}-{t.upper()}.gguf", t,
                        None, name, False, False)
    for t in mmproj_types:
        conv.write_mmproj(gguf, d, cfg, family, tensors, out / f"mmproj-{name}-{t.upper()}.gguf",
                          t, name, False, False)


def quants(gguf, np):
    """Random blocks of each type (any bytes are a valid block once the F16 scales are
    finite) and their values as gguf-py computes them."""
    rng = np.random.default_rng(17)
    Q = gguf.GGMLQuantizationType
    w = gguf.GGUFWriter(path=None, arch="ocellus-test")
    for qt in (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q4_K, Q.Q5_K, Q.Q6_K):
        blk, size = gguf.GGML_QUANT_SIZES[qt]
        rows, n_blocks = 3, 512 // blk
        raw = rng.integers(0, 256, (rows, n_blocks, size), dtype=np.uint8)
        # the F16 scales: d (and the min / dmin) where each format keeps them
        scale_at = {Q.Q4_0: [0], Q.Q5_0: [0], Q.Q8_0: [0], Q.Q4_1: [0, 2], Q.Q5_1: [0, 2],
                    Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}[qt]
        for off in scale_at:
            d = rng.uniform(-0.05, 0.05, (rows, n_blocks)).astype(np.float16)
            raw[:, :, off:off + 2] = d.view(np.uint8).reshape(rows, n_blocks, 2)
        raw = raw.reshape(rows, n_blocks * size)
        ref = gguf.quants.dequantize(raw, qt).astype(np.float32)
        w.add_tensor(qt.name, raw, raw_dtype=qt)
        w.add_tensor("ref." + qt.name, ref)
    x = rng.standard_normal((3, 64)).astype(np.float32)
    w.add_tensor("F16", x.astype(np.float16))
    w.add_tensor("ref.F16", x.astype(np.float16).astype(np.float32))
    bf = (x.view(np.uint32) >> 16).astype(np.uint16)
    w.add_tensor("BF16", bf, raw_dtype=Q.BF16)
    w.add_tensor("ref.BF16", (bf.astype(np.uint32) << 16).view(np.float32))
    path = HERE / "quants.gguf"
    w.write_header_to_file(path=path)
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-src", type=Path, required=True, help="a llama.cpp source tree")
    a = ap.parse_args()
    sys.path.insert(0, str(a.llama_src / "gguf-py"))
    import numpy as np
    import gguf
    conv = load_converter()
    with_q4_0(conv, gguf)
    # SmolVLM-tiny is stored F32; LLaVA-tiny BF16 (its BF16 GGUF holds the same values).
    # LLaVA-tiny's text model is 48 wide: no row of its matrices but ffn_down is a whole
    # number of 32-value blocks, so the converter would write its quantized text models
    # in F16 (7 MB each): its quantized files are mmproj files (the vision tower is 64
    # wide), and the quantized text models are SmolVLM's.
    convert(conv, gguf, "smolvlm-tiny", ["f32", "f16", "q8_0", "q4_0"], ["f32", "f16"])
    convert(conv, gguf, "llava-tiny", ["bf16"], ["f32", "f16", "q8_0", "q4_0"])
    quants(gguf, np)


if __name__ == "__main__":
    main()
