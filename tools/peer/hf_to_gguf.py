#!/usr/bin/python3
"""Convert an ocellus / Hugging Face vision-language model folder to llama.cpp's GGUF pair:
the text model (`llama` architecture) and the multimodal projector (`clip`, "mmproj").

Families: SmolVLM / Idefics3 (SigLIP + pixel shuffle + linear, projector type "idefics3")
and LLaVA-1.5 (CLIP + 2-layer MLP, projector type "mlp").

Why this exists: llama.cpp's convert_hf_to_gguf.py needs torch and transformers, which are
not installable here. This script writes the same files with numpy and the gguf-py package
of a llama.cpp source tree (`--llama-src TREE` puts TREE/gguf-py on sys.path):

- SmolVLM text model: what convert_hf_to_gguf.py writes for SmolVLM (LlamaModel): the
  llama hparams, Q/K rows permuted for llama.cpp's RoPE, tied embeddings (no output.weight),
  tokenizer.ggml.* as a "gpt2" (byte-level BPE) vocabulary padded to vocab_size.
- SmolVLM mmproj: what convert_hf_to_gguf.py --mmproj writes (SmolVLMModel): projector
  "idefics3", scale factor, GELU, preprocessor longest edge, mean/std, embeddings in F32.
- LLaVA-1.5 text model: LlamaModel with a "llama" (SentencePiece) vocabulary, as the
  converter writes it from a tokenizer.model, here built from tokenizer.json.
- LLaVA-1.5 mmproj: the keys of tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py
  (the converter llama.cpp documents for LLaVA-1.5): projector "mlp", mm.0 / mm.2, the
  vision tower cut after the feature layer (vision_feature_layer, -2 by default) with
  clip.vision.feature_layer naming it, no post-layernorm. fc1 / fc2 are named ffn_up / ffn_down (what clip.cpp expects; the legacy
  script swapped them, --llava-legacy-ffn-names reproduces that).

Tensor types follow convert_hf_to_gguf.py: 1-D tensors, norms, biases and position
embeddings are F32; SmolVLM's patch embedding F32; the patch embedding F16 only in an F16
file; other weights in the chosen type; a weight whose rows are not a multiple of 32 falls
back from Q8_0 to F16.

Documented differences:
- LLaVA vocabulary scores come from tokenizer.json's merge ranks (score = -rank of the
  merge that makes the token). With only a tokenizer.json the converter falls back to
  gguf-py's LlamaHfVocab, which scores every token -1000, and llama.cpp's SentencePiece
  tokenizer then merges in the wrong order ("USER:" -> "USE" "R" ":" instead of "US" "ER"
  ":"); the scores of Llama's tokenizer.model follow the merge order.
These two are needed for llama.cpp to load such files at all:
- A vocabulary smaller than vocab_size is padded with "[PAD<i>]" UNUSED tokens also on the
  LLaVA path (the SentencePiece path of the converter pads; LlamaHfVocab does not, and
  llama.cpp then rejects token_embd's shape).
- A byte-level BPE tokenizer with no merges (ocellus make-model's random models) gets one
  inert merge between two special tokens: llama.cpp refuses a gpt2 vocabulary without a
  tokenizer.ggml.merges array and gguf-py cannot write an empty array. Special tokens are
  never split into symbols, so that merge can never apply: tokenization is unchanged.
- Only with --add-mtmd-tokens (random test models): llama.cpp's mtmd looks up "\n\n" as
  one token to place SmolVLM's global image (a real SmolVLM vocabulary has it; a small
  random one may not, and mtmd then feeds token -1 and fails). The option adds that token
  at the first free id below vocab_size with the merge that forms it, so "\n\n" in a
  text becomes one token.

Usage:
  /usr/bin/python3 tools/peer/hf_to_gguf.py --llama-src TREE MODEL_DIR --outtype q8_0 \\
      [--mmproj-outtype f16] [--outfile TEXT.gguf] [--mmproj-outfile MMPROJ.gguf]
Needs numpy (Debian: apt-get install python3-numpy).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import struct
import sys
from pathlib import Path

PROG = "hf_to_gguf"


class ConvertError(Exception):
    """A problem with the input, reported as 'hf_to_gguf: <file>: <problem>'."""


def fail(msg: str) -> None:
    raise ConvertError(msg)


# ---------------------------------------------------------------------------------------
# safetensors (read with numpy; the header and every offset are checked against the file)

ST_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2)}


class SafeTensors:
    """The tensors of one .safetensors file, memory-mapped; get() returns float32."""

    def __init__(self, path: Path):
        import numpy as np
        self.np = np
        self.path = path
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                fail(f"{path}: shorter than a safetensors header")
            n = struct.unpack("<Q", head)[0]
            if n < 2 or n > 100 * 1024 * 1024 or 8 + n > size:
                fail(f"{path}: header length {n} does not fit the file ({size} bytes)")
            try:
                hdr = json.loads(f.read(n))
            except (ValueError, UnicodeDecodeError) as e:
                fail(f"{path}: header is not JSON ({e})")
        if not isinstance(hdr, dict):
            fail(f"{path}: header is not a JSON object")
        self.base = 8 + n
        self.data_len = size - self.base
        self.info: dict[str, tuple[str, list[int], int, int]] = {}
        for name, t in hdr.items():
            if name == "__metadata__":
                continue
            try:
                dt, shape, (b, e) = t["dtype"], [int(d) for d in t["shape"]], t["data_offsets"]
            except (KeyError, TypeError, ValueError):
                fail(f"{path}: tensor '{name}' has a malformed entry")
            if dt not in ST_DTYPES:
                fail(f"{path}: tensor '{name}' has dtype {dt} (F32, F16 or BF16 supported)")
            count = 1
            for d in shape:
                if d < 0:
                    fail(f"{path}: tensor '{name}' has a negative dimension")
                count *= d
            if not (0 <= b <= e <= self.data_len) or e - b != count * ST_DTYPES[dt][1]:
                fail(f"{path}: tensor '{name}' data [{b}, {e}) does not match its shape "
                     f"{shape} x {dt} or the file's {self.data_len} data bytes")
            self.info[name] = (dt, shape, b, e)
        self.mm = np.memmap(path, dtype=np.uint8, mode="r")

    def get(self, name: str):
        np = self.np
        dt, shape, b, e = self.info[name]
        raw = self.mm[self.base + b:self.base + e]
        if dt == "BF16":
            a = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = raw.view(ST_DTYPES[dt][0]).astype(np.float32)
        return a.reshape(shape)


def open_weights(model_dir: Path) -> dict[str, SafeTensors]:
    """name -> the file holding it, from model.safetensors or its index (shards)."""
    index = model_dir / "model.safetensors.index.json"
    files: list[Path]
    if index.is_file():
        try:
            wm = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (ValueError, KeyError, TypeError) as e:
            fail(f"{index}: not a safetensors index ({e})")
        files = sorted({model_dir / v for v in wm.values()})
    elif (model_dir / "model.safetensors").is_file():
        files = [model_dir / "model.safetensors"]
    else:
        fail(f"{model_dir}: no model.safetensors or model.safetensors.index.json")
    out: dict[str, SafeTensors] = {}
    for p in files:
        if not p.is_file():
            fail(f"{p}: listed in {index.name} but missing")
        st = SafeTensors(p)
        for name in st.info:
            out[name] = st
    return out


# ---------------------------------------------------------------------------------------
# model folder

def read_json(path: Path, required: bool = True) -> dict:
    if not path.is_file():
        if required:
            fail(f"{path}: missing")
        return {}
    try:
        j = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"{path}: not valid JSON ({e})")
    if not isinstance(j, dict):
        fail(f"{path}: expected a JSON object")
    return j


def need(cfg: dict, key: str, where: str):
    if key not in cfg:
        fail(f"{where}: missing \"{key}\"")
    return cfg[key]


def family_of(cfg: dict, where: str) -> str:
    mt = cfg.get("model_type", "")
    arch = (cfg.get("architectures") or [""])[0]
    if mt in ("smolvlm", "idefics3") or arch in ("SmolVLMForConditionalGeneration",
                                                 "Idefics3ForConditionalGeneration"):
        return "smolvlm"
    if mt == "llava" or arch == "LlavaForConditionalGeneration":
        return "llava"
    fail(f"{where}: model_type \"{mt}\" is not SmolVLM/Idefics3 or LLaVA")
    return ""


def canonical_name(name: str, family: str) -> tuple[str, str] | None:
    """(part, name in transformers' classic layout) with part 'text', 'vision' or 'proj';
    None for tensors neither file stores."""
    if family == "smolvlm":
        if name.startswith("model.vision_model."):
            return "vision", name
        if name.startswith("model.connector."):
            return "proj", name
        if name.startswith("model.text_model."):
            return "text", "model." + name[len("model.text_model."):]
        if name == "lm_head.weight":
            return "text", name
        return None
    # LLaVA: transformers < 5 ("language_model.model.*", "vision_tower.vision_model.*") and
    # >= 5 ("model.language_model.*", "model.vision_tower.*") layouts.
    m = re.match(r"^(?:model\.)?vision_tower\.(?:vision_model\.)?(.*)$", name)
    if m:
        return "vision", "vision_tower.vision_model." + m.group(1)
    m = re.match(r"^(?:model\.)?multi_modal_projector\.(.*)$", name)
    if m:
        return "proj", "multi_modal_projector." + m.group(1)
    m = re.match(r"^(?:model\.)?language_model\.(?:model\.)?(.*)$", name)
    if m:
        rest = m.group(1)
        return "text", rest if rest.startswith("lm_head.") else "model." + rest
    if name == "lm_head.weight":
        return "text", name
    return None


# ---------------------------------------------------------------------------------------
# tokenizer -> tokenizer.ggml.*

def looks_special(tok: str) -> bool:
    # convert_hf_to_gguf.py's does_token_look_special()
    return (tok in ("<pad>", "<mask>", "<2mass>", "[@BOS@]")
            or (tok.startswith("<|") and tok.endswith("|>"))
            or (tok.startswith("<\uff5c") and tok.endswith("\uff5c>"))
            or (tok.startswith("<unused") and tok.endswith(">")))


def bpe_pre_name(tj: dict, where: str) -> str:
    """llama.cpp's tokenizer.ggml.pre for a byte-level BPE pre-tokenizer. The converter
    hashes a test string's tokens (needs transformers); the structure says the same."""
    pt = tj.get("pre_tokenizer") or {}
    parts = pt.get("pretokenizers", []) if pt.get("type") == "Sequence" else [pt]
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits"):
        return "smollm"  # SmolLM / SmolVLM
    fail(f"{where}: unrecognised pre_tokenizer {json.dumps(pt)[:200]}; "
         "pass --tokenizer-pre NAME (a name llama.cpp's llama-vocab.cpp knows)")
    return ""


def vocab_tables(tj: dict, vocab_size: int, where: str):
    """id -> text, and the set of added-token ids with their 'special' flag."""
    model = tj.get("model") or {}
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        fail(f"{where}: model.vocab is not an object")
    rev: dict[int, str] = {}
    for text, i in vocab.items():
        if not isinstance(i, int) or i < 0:
            fail(f"{where}: token {text!r} has id {i!r}")
        rev[i] = text
    added: dict[int, dict] = {}
    for a in tj.get("added_tokens") or []:
        i = a.get("id")
        if not isinstance(i, int) or i < 0 or not isinstance(a.get("content"), str):
            fail(f"{where}: malformed added token {a!r}")
        rev[i] = a["content"]
        added[i] = a
    if rev and max(rev) >= vocab_size:
        fail(f"{where}: token id {max(rev)} >= vocab_size {vocab_size} of config.json")
    return rev, added


# Byte-level BPE spelling of texts that llama.cpp's mtmd looks up as single tokens
# (mtmd.cpp, idefics3: the "\n\n" before the global image).
MTMD_TOKENS = {"smolvlm": [("\u010a\u010a", ("\u010a", "\u010a"))]}


def add_gpt2_vocab(gw, gguf, model_dir: Path, tj: dict, vocab_size: int, pre: str | None,
                   extra: list[tuple[str, tuple[str, str]]]):
    where = str(model_dir / "tokenizer.json")
    rev, added = vocab_tables(tj, vocab_size, where)
    new_merges = []
    for text, pair in extra:
        if text in rev.values():
            continue
        free = next((i for i in range(vocab_size) if i not in rev), None)
        if free is None:
            fail(f"{where}: no free id below vocab_size for the token {text!r}")
        rev[free] = text
        new_merges.append(" ".join(pair))
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in rev:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tok = rev[i]
        if i in added:
            special = added[i].get("special", False) or looks_special(tok)
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
            if not special:
                tok = tok.replace("\u2581", " ")
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(tok)
    gw.add_tokenizer_model("gpt2")
    gw.add_tokenizer_pre(pre or bpe_pre_name(tj, where))
    gw.add_token_list(tokens)
    gw.add_token_types(types)
    sv = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size)
    sv.merges = new_merges + list(sv.merges)
    if not sv.merges:
        specials = [rev[i] for i in sorted(added) if added[i].get("special")]
        if len(specials) < 2:
            fail(f"{where}: no merges and fewer than two special tokens")
        sv.merges = [f"{specials[0]} {specials[1]}"]  # inert: see the module comment
    fill_special_ids(sv, model_dir)
    sv.add_to_gguf(gw, quiet=True)


def add_llama_vocab(gw, gguf, model_dir: Path, tj: dict, vocab_size: int):
    """A SentencePiece-style BPE tokenizer.json (Llama 2 / Vicuna), as LlamaHfVocab."""
    where = str(model_dir / "tokenizer.json")
    model = tj.get("model") or {}
    if model.get("type") != "BPE" or not model.get("byte_fallback"):
        fail(f"{where}: LLaVA needs a SentencePiece-style BPE tokenizer (byte_fallback)")
    rev, added = vocab_tables(tj, vocab_size, where)
    base = model.get("vocab") or {}
    # SentencePiece merges the adjacent pair whose result scores highest; a score of
    # -(rank of the merge that makes the token) makes that BPE's order (Llama's own
    # tokenizer.model scores are in that order too).
    rank: dict[str, int] = {}
    for r, m in enumerate(model.get("merges") or []):
        pair = m.split(" ", 1) if isinstance(m, str) else m
        if len(pair) == 2:
            rank.setdefault(pair[0] + pair[1], r)
    n_merges = len(model.get("merges") or [])
    tokens, scores, types = [], [], []
    for i in range(vocab_size):
        score = 0.0
        if i not in rev:
            tokens.append(f"[PAD{i}]".encode())
            types.append(gguf.TokenType.UNUSED)
        else:
            tok = rev[i]
            if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", tok):
                types.append(gguf.TokenType.BYTE)
            elif i in added and (added[i].get("special") or tok not in base):
                types.append(gguf.TokenType.CONTROL if added[i].get("special")
                             else gguf.TokenType.USER_DEFINED)
            else:
                types.append(gguf.TokenType.NORMAL)
                score = -float(rank[tok]) if tok in rank else -float(n_merges + i)
            tokens.append(tok.encode("utf-8"))
        scores.append(score)
    gw.add_tokenizer_model("llama")
    gw.add_tokenizer_pre("default")
    gw.add_token_list(tokens)
    gw.add_token_scores(scores)
    gw.add_token_types(types)
    sv = gguf.SpecialVocab(model_dir, n_vocab=vocab_size)
    fill_special_ids(sv, model_dir)
    sv.add_to_gguf(gw, quiet=True)


def fill_special_ids(sv, model_dir: Path) -> None:
    """bos/eos from generation_config.json when neither tokenizer_config.json nor
    config.json names them (ocellus's random models keep them there)."""
    gc = read_json(model_dir / "generation_config.json", required=False)
    for typ in ("bos", "eos", "pad"):
        if typ in sv.special_token_ids:
            continue
        v = gc.get(f"{typ}_token_id")
        if isinstance(v, list):
            v = v[0] if v else None
        if isinstance(v, int) and v >= 0:
            sv.special_token_ids[typ] = v


# ---------------------------------------------------------------------------------------
# tensor types

OUTTYPES = ("f32", "f16", "bf16", "q8_0")


def file_type(gguf, outtype: str):
    return {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
            "bf16": gguf.LlamaFileType.MOSTLY_BF16,
            "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[outtype]


def quant_type(gguf, outtype: str):
    Q = gguf.GGMLQuantizationType
    return {"f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0}[outtype]


class Writer:
    """Adds tensors with convert_hf_to_gguf.py's type rules and counts parameters."""

    def __init__(self, gguf, path: Path, arch: str, outtype: str, verbose: bool):
        self.gguf = gguf
        self.gw = gguf.GGUFWriter(path=None, arch=arch)
        self.path = path
        self.outtype = outtype
        self.verbose = verbose
        self.n_params = 0

    def add(self, name: str, data, force=None) -> None:
        gguf = self.gguf
        Q = gguf.GGMLQuantizationType
        if data.ndim <= 1 or name.endswith("_norm.weight") or not name.endswith(".weight"):
            qt = Q.F32
        elif force is not None:
            qt = force
        else:
            qt = quant_type(gguf, self.outtype)
        try:
            q = gguf.quants.quantize(data, qt)
        except gguf.QuantError:
            qt = Q.F16  # rows not a multiple of the block size, as the converter does
            q = gguf.quants.quantize(data, qt)
        self.n_params += data.size
        if self.verbose:
            print(f"  {name:40s} {qt.name:5s} {list(reversed(data.shape))}")
        self.gw.add_tensor(name, q, raw_dtype=qt)

    def write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.gw.write_header_to_file(path=tmp)
        self.gw.write_kv_data_to_file()
        self.gw.write_tensors_to_file(progress=False)
        self.gw.close()
        os.replace(tmp, self.path)


def permute_qk(w, n_head: int):
    """HF's rotate-half row order -> llama.cpp's interleaved pairs (LlamaModel.permute)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


# ---------------------------------------------------------------------------------------
# the two files

def write_text(gguf, model_dir: Path, cfg: dict, family: str, tensors: dict, out: Path,
               outtype: str, pre: str | None, name: str, mtmd_tokens: bool,
               verbose: bool) -> None:
    where = str(model_dir / "config.json")
    tc = {**cfg, **(cfg.get("text_config") or {})}
    n_layer = need(tc, "num_hidden_layers", where)
    n_embd = need(tc, "hidden_size", where)
    n_head = need(tc, "num_attention_heads", where)
    n_kv = tc.get("num_key_value_heads", n_head)
    vocab_size = need(tc, "vocab_size", where)
    head_dim = tc.get("head_dim")
    rope = tc.get("rope_parameters") or tc.get("rope_scaling") or {}
    theta = rope.get("rope_theta", tc.get("rope_theta"))
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", None):
        fail(f"{where}: rope type {rope.get('rope_type')!r} is not supported by this script")

    w = Writer(gguf, out, "llama", outtype, verbose)
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    for src in tensors:
        c = canonical_name(src, family)
        if c is None or c[0] != "text":
            continue
        hf = c[1]
        if hf.endswith("rotary_emb.inv_freq"):
            continue
        dst = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
        if dst is None:
            fail(f"{tensors[src].path}: cannot map text tensor '{src}'")
        data = tensors[src].get(src)
        if hf.endswith(("q_proj.weight", "q_proj.bias")):
            data = permute_qk(data, n_head)
        elif hf.endswith(("k_proj.weight", "k_proj.bias")):
            data = permute_qk(data, n_kv)
        if dst == "token_embd.weight" and data.shape[0] != vocab_size:
            fail(f"{tensors[src].path}: '{src}' has {data.shape[0]} rows, "
                 f"vocab_size is {vocab_size}")
        w.add(dst, data)

    gw = w.gw
    gw.add_type(gguf.GGUFType.MODEL)
    gw.add_name(name)
    gw.add_size_label(gguf.size_label(w.n_params, 0, 0, 0))
    gw.add_block_count(n_layer)
    if "max_position_embeddings" in tc:
        gw.add_context_length(tc["max_position_embeddings"])
    gw.add_embedding_length(n_embd)
    gw.add_feed_forward_length(need(tc, "intermediate_size", where))
    gw.add_head_count(n_head)
    gw.add_head_count_kv(n_kv)
    if theta is not None:
        gw.add_rope_freq_base(float(theta))
    gw.add_layer_norm_rms_eps(float(tc.get("rms_norm_eps", 1e-6)))
    if head_dim is not None:
        gw.add_key_length(head_dim)
        gw.add_value_length(head_dim)
    gw.add_file_type(file_type(gguf, outtype))
    gw.add_vocab_size(vocab_size)
    gw.add_rope_dimension_count(head_dim if head_dim is not None else n_embd // n_head)
    gw.add_quantization_version(gguf.GGML_QUANT_VERSION)

    tj = read_json(model_dir / "tokenizer.json")
    if family == "smolvlm":
        add_gpt2_vocab(gw, gguf, model_dir, tj, vocab_size, pre,
                       MTMD_TOKENS[family] if mtmd_tokens else [])
    else:
        add_llama_vocab(gw, gguf, model_dir, tj, vocab_size)
    w.write()


def write_mmproj(gguf, model_dir: Path, cfg: dict, family: str, tensors: dict, out: Path,
                 outtype: str, name: str, legacy_ffn: bool, verbose: bool) -> None:
    where = str(model_dir / "config.json")
    vc = need(cfg, "vision_config", where)
    tc = {**cfg, **(cfg.get("text_config") or {})}
    pp = read_json(model_dir / "preprocessor_config.json")
    ppw = str(model_dir / "preprocessor_config.json")
    n_layer = need(vc, "num_hidden_layers", where)
    Q = gguf.GGMLQuantizationType

    keep = n_layer
    if family == "llava":
        fl = cfg.get("vision_feature_layer", -2)
        if isinstance(fl, list):
            fail(f"{where}: several vision_feature_layer values are not supported")
        keep = n_layer + fl + 1 if fl < 0 else fl
        if not 0 < keep <= n_layer:
            fail(f"{where}: vision_feature_layer {fl} out of range for {n_layer} layers")
        if cfg.get("vision_feature_select_strategy", "default") != "default":
            fail(f"{where}: vision_feature_select_strategy must be \"default\"")

    w = Writer(gguf, out, "clip", outtype, verbose)
    vmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.MMPROJ, n_layer)
    for src in tensors:
        c = canonical_name(src, family)
        if c is None or c[0] == "text":
            continue
        part, hf = c
        force = None
        if family == "smolvlm":
            if hf == "model.connector.modality_projection.proj.weight":
                dst = "mm.model.fc.weight"
            else:
                dst = vmap.get_name(hf, try_suffixes=(".weight", ".bias"))
            if ".embeddings." in hf:
                force = Q.F32
        else:
            m = re.match(r"^multi_modal_projector\.linear_([12])\.(weight|bias)$", hf)
            if part == "proj":
                if not m:
                    fail(f"{tensors[src].path}: unexpected projector tensor '{src}'")
                dst = f"mm.{0 if m.group(1) == '1' else 2}.{m.group(2)}"
            else:
                lm = re.search(r"\.layers\.(\d+)\.", hf)
                if lm and int(lm.group(1)) >= keep:
                    continue  # after the feature layer: never used
                if "post_layernorm" in hf or hf.endswith("position_ids"):
                    continue
                dst = vmap.get_name(hf, try_suffixes=(".weight", ".bias"))
                if dst and legacy_ffn:
                    dst = (dst.replace(".ffn_up.", ".ffn_tmp.").replace(".ffn_down.", ".ffn_up.")
                           .replace(".ffn_tmp.", ".ffn_down."))
        if dst is None:
            fail(f"{tensors[src].path}: cannot map vision tensor '{src}'")
        if dst.startswith("v.patch_embd.weight") and force is None:
            force = Q.F16 if outtype == "f16" else Q.F32
        if dst.endswith("position_embd.weight"):
            force = Q.F32
        w.add(dst, tensors[src].get(src), force)

    gw = w.gw
    gw.add_type(gguf.GGUFType.MMPROJ)
    gw.add_name(name)
    gw.add_file_type(file_type(gguf, outtype))
    mean, std = need(pp, "image_mean", ppw), need(pp, "image_std", ppw)
    if family == "smolvlm":
        gw.add_clip_has_vision_encoder(True)
        gw.add_vision_projection_dim(need(tc, "hidden_size", where))
        gw.add_vision_image_size(need(vc, "image_size", where))
        gw.add_vision_patch_size(need(vc, "patch_size", where))
        gw.add_vision_embedding_length(need(vc, "hidden_size", where))
        gw.add_vision_feed_forward_length(need(vc, "intermediate_size", where))
        gw.add_vision_block_count(n_layer)
        gw.add_vision_head_count(need(vc, "num_attention_heads", where))
        gw.add_vision_image_mean(mean)
        gw.add_vision_image_std(std)
        gw.add_clip_projector_type(gguf.VisionProjectorType.IDEFICS3)
        gw.add_vision_attention_layernorm_eps(float(vc.get("layer_norm_eps", 1e-5)))
        gw.add_vision_projector_scale_factor(cfg.get("scale_factor", 2))
        gw.add_vision_use_gelu(True)
        longest = (pp.get("size") or {}).get("longest_edge", vc["image_size"])
        gw.add_vision_preproc_image_size(longest)
    else:
        act = vc.get("hidden_act", "quick_gelu")
        if act not in ("gelu", "quick_gelu"):
            fail(f"{where}: vision hidden_act {act!r} (gelu or quick_gelu)")
        gw.add_bool("clip.has_text_encoder", False)
        gw.add_bool("clip.has_vision_encoder", True)
        gw.add_bool("clip.has_llava_projector", True)
        gw.add_description("image encoder for LLaVA")
        gw.add_string("clip.projector_type", "mlp")
        gw.add_uint32("clip.vision.image_size", need(vc, "image_size", where))
        gw.add_uint32("clip.vision.patch_size", need(vc, "patch_size", where))
        gw.add_uint32("clip.vision.embedding_length", need(vc, "hidden_size", where))
        gw.add_uint32("clip.vision.feed_forward_length", need(vc, "intermediate_size", where))
        gw.add_uint32("clip.vision.projection_dim", vc.get("projection_dim", 0))
        gw.add_uint32("clip.vision.attention.head_count", need(vc, "num_attention_heads", where))
        gw.add_float32("clip.vision.attention.layer_norm_epsilon",
                       float(vc.get("layer_norm_eps", 1e-5)))
        gw.add_uint32("clip.vision.block_count", keep)
        # clip.cpp's LLaVA graph runs block_count - 1 layers unless feature layers are
        # given; the legacy converter writes them for a transformers LLaVA config
        gw.add_array("clip.vision.feature_layer", [keep])
        gw.add_array("clip.vision.image_mean", [float(x) for x in mean])
        gw.add_array("clip.vision.image_std", [float(x) for x in std])
        gw.add_bool("clip.use_gelu", act == "gelu")
    gw.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.write()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="hf_to_gguf.py",
        description="Write llama.cpp's text GGUF + mmproj GGUF for a SmolVLM/Idefics3 or "
                    "LLaVA-1.5 model folder (numpy + the gguf-py of a llama.cpp tree).")
    ap.add_argument("model_dir", type=Path, help="Hugging Face / ocellus model folder")
    ap.add_argument("--llama-src", type=Path, help="llama.cpp source tree (uses TREE/gguf-py)")
    ap.add_argument("--outtype", choices=OUTTYPES, default="f16", help="text model weights")
    ap.add_argument("--mmproj-outtype", choices=OUTTYPES,
                    help="projector weights (default: --outtype)")
    ap.add_argument("--outfile", type=Path, help="text GGUF (default MODEL_DIR/model-TYPE.gguf)")
    ap.add_argument("--mmproj-outfile", type=Path,
                    help="mmproj GGUF (default MODEL_DIR/mmproj-model-TYPE.gguf)")
    ap.add_argument("--no-text", action="store_true", help="write only the mmproj")
    ap.add_argument("--no-mmproj", action="store_true", help="write only the text model")
    ap.add_argument("--tokenizer-pre", help="tokenizer.ggml.pre override (gpt2 vocabularies)")
    ap.add_argument("--name", help="general.name (default: the folder's name)")
    ap.add_argument("--add-mtmd-tokens", action="store_true",
                    help="add the tokens llama.cpp's mtmd looks up by text (SmolVLM: \"\\n\\n\") "
                         "when a small tokenizer lacks them (random test models)")
    ap.add_argument("--llava-legacy-ffn-names", action="store_true",
                    help="name CLIP fc1/fc2 ffn_down/ffn_up as the legacy LLaVA converter did")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every tensor")
    a = ap.parse_args(argv)

    if a.llama_src is not None:
        gp = a.llama_src / "gguf-py"
        if not (gp / "gguf" / "__init__.py").is_file():
            print(f"{PROG}: {gp}: no gguf-py package there (is --llama-src a llama.cpp "
                  "source tree?)", file=sys.stderr)
            return 2
        sys.path.insert(0, str(gp))
    if importlib.util.find_spec("numpy") is None:
        print(f"{PROG}: numpy is missing (Debian: apt-get install python3-numpy)",
              file=sys.stderr)
        return 2
    try:
        import gguf
    except ImportError as e:
        print(f"{PROG}: cannot import gguf ({e}); pass --llama-src TREE", file=sys.stderr)
        return 2

    mt = a.mmproj_outtype or a.outtype
    d = a.model_dir
    try:
        if not d.is_dir():
            fail(f"{d}: not a folder")
        cfg = read_json(d / "config.json")
        family = family_of(cfg, str(d / "config.json"))
        tensors = open_weights(d)
        name = a.name or d.resolve().name
        if not a.no_text:
            out = a.outfile or d / f"model-{a.outtype.upper()}.gguf"
            write_text(gguf, d, cfg, family, tensors, out, a.outtype, a.tokenizer_pre, name,
                       a.add_mtmd_tokens, a.verbose)
            print(f"{PROG}: wrote {out}")
        if not a.no_mmproj:
            out = a.mmproj_outfile or d / f"mmproj-model-{mt.upper()}.gguf"
            write_mmproj(gguf, d, cfg, family, tensors, out, mt, name,
                         a.llava_legacy_ffn_names, a.verbose)
            print(f"{PROG}: wrote {out}")
    except ConvertError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
