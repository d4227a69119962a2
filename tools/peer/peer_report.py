#!/usr/bin/python3
"""Parse the raw outputs of tools/bench-peer.sh and print the ocellus vs llama.cpp table.

  peer_report.py plan OCELLUS_JSON PROMPT_TOKENS
      prints "PREFILL_TOKENS DECODE_DEPTH": the llama-bench sizes that measure what this
      ocellus run measured (see ocellus_figures()).
  peer_report.py report --raw DIR --meta META.json [--out docs/PERFORMANCE.md]
      prints the markdown section; with --out, replaces the part of that file between
      the BEGIN/END markers below (the file must have them).

Raw file names: T<threads>-<dtype>-r<run>-<what>.<ext>, what = ocellus (.json, .time),
pp and tg (llama-bench -o json), mtmd (.log = llama-mtmd-cli -v output, .time).
Only the standard library is used.
"""
from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

BEGIN = "<!-- bench-peer:begin (tools/bench-peer.sh rewrites this part) -->"
END = "<!-- bench-peer:end -->"

# figure -> (label, unit, higher_is_better)
FIGURES = {
    "encode": ("image encoding per 512x512 tile", "s", False),
    "prefill": ("prefill, text tokens", "tok/s", True),
    "decode": ("decode", "tok/s", True),
    "ttft": ("time to first token, caption a 512x512 image", "s", False),
    "rss": ("peak RSS, caption a 512x512 image", "MiB", False),
}


def load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def ocellus_figures(j: dict, prompt_tokens: int) -> dict:
    """The figures of one `ocellus bench --json` object. Accepts the new keys
    (encode_s_per_tile, prefill_tok_s, decode_tok_s, ttft_s, ...) and the keys of
    ocellus bench before issue 11 (image_ms_per_tile, prompt_tokens_per_s over the caption
    prompt, gen_tokens_per_s after it; no TTFT key: derived as encode + prefill)."""
    f: dict = {"legacy": "prefill_tok_s" not in j}
    if "encode_s_per_tile" in j:
        f["encode"] = j["encode_s_per_tile"]
    elif j.get("image_ms_per_tile"):
        f["encode"] = j["image_ms_per_tile"] / 1e3
    if "prefill_tok_s" in j:
        f["prefill"] = j["prefill_tok_s"]
        f["prefill_tokens"] = int(j.get("prefill_tokens", prompt_tokens))
    elif j.get("prompt_tokens_per_s"):
        f["prefill"] = j["prompt_tokens_per_s"]
        f["prefill_tokens"] = int(j.get("prompt_tokens", 0))
    if "decode_tok_s" in j:
        f["decode"] = j["decode_tok_s"]
        f["decode_depth"] = int(j.get("decode_context", f.get("prefill_tokens", prompt_tokens)))
    elif j.get("gen_tokens_per_s"):
        f["decode"] = j["gen_tokens_per_s"]
        f["decode_depth"] = int(j.get("prompt_tokens", 0))
    if "ttft_s" in j:
        f["ttft"] = j["ttft_s"]
    elif j.get("tiles") and j.get("image_ms_per_tile") and j.get("prompt_tokens_per_s"):
        f["ttft"] = (j["tiles"] * j["image_ms_per_tile"] / 1e3
                     + j["prompt_tokens"] / j["prompt_tokens_per_s"])
    for k in ("fma_peak_gflops", "read_gb_s", "shared_core", "encode_gflops", "dtype",
              "threads", "peak_rss_mib", "peak_mib"):
        if k in j:
            f[k] = j[k]
    return f


def time_rss_mib(path: Path) -> float | None:
    """Peak RSS from GNU time -v."""
    try:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", path.read_text())
    except OSError:
        return None
    return int(m.group(1)) / 1024.0 if m else None


def llama_bench(path: Path) -> dict:
    """tokens/s and the sizes of one llama-bench -o json test."""
    j = load_json(path)
    rows = [r for r in j if isinstance(r, dict) and "avg_ts" in r] if isinstance(j, list) else []
    if not rows:
        return {}
    r = rows[0]
    return {"rate": float(r["avg_ts"]), "n_prompt": r.get("n_prompt"), "n_gen": r.get("n_gen"),
            "n_depth": r.get("n_depth")}


def mtmd_figures(path: Path) -> dict:
    """llama-mtmd-cli -v: per-batch encode times, tiles, and llama_perf's prompt eval time,
    which runs from the first prompt decode to the first sampled token, image encoding
    included (the time to first token)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {}
    tiles = sum(int(x) for x in re.findall(r"encoding mtmd batch, n_chunks = (\d+)", text))
    enc_ms = sum(int(x) for x in re.findall(r"mtmd batch encoding done in (\d+) ms", text))
    f: dict = {}
    if tiles:
        f["encode"] = enc_ms / 1e3 / tiles
        f["tiles"] = tiles
    m = re.search(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens", text)
    if m:
        f["ttft"] = float(m.group(1)) / 1e3
        f["prompt_tokens"] = int(m.group(2))
    return f


def collect(raw: Path):
    """{(threads, dtype): {program: {figure: [values]}}} and extra ocellus info."""
    res: dict = {}
    info: dict = {}
    pat = re.compile(r"^T(\d+)-([a-z0-9_]+)-r(\d+)-([a-z]+)\.(json|time|log)$")
    for p in sorted(raw.iterdir()):
        m = pat.match(p.name)
        if not m:
            continue
        t, dt, _, what, ext = int(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5)
        key = (t, dt)
        slot = res.setdefault(key, {"ocellus": {}, "llama.cpp": {}})
        ex = info.setdefault(key, {"ocellus": [], "llama.cpp": []})

        def add(prog, fig, v):
            if v is not None:
                slot[prog].setdefault(fig, []).append(float(v))

        if what == "ocellus" and ext == "json":
            j = load_json(p)
            if isinstance(j, dict):
                f = ocellus_figures(j, 512)
                for fig in ("encode", "prefill", "decode", "ttft"):
                    add("ocellus", fig, f.get(fig))
                ex["ocellus"].append(f)
        elif what == "ocellus" and ext == "time":
            add("ocellus", "rss", time_rss_mib(p))
        elif what in ("pp", "tg"):
            b = llama_bench(p)
            add("llama.cpp", "prefill" if what == "pp" else "decode", b.get("rate"))
            if b:
                ex["llama.cpp"].append({what: b})
        elif what == "mtmd" and ext == "log":
            f = mtmd_figures(p)
            add("llama.cpp", "encode", f.get("encode"))
            add("llama.cpp", "ttft", f.get("ttft"))
            ex["llama.cpp"].append(f)
        elif what == "mtmd" and ext == "time":
            add("llama.cpp", "rss", time_rss_mib(p))
    return res, info


def best(values: list[float], fig: str) -> float | None:
    if not values:
        return None
    if fig == "rss":
        return statistics.median(values)
    return max(values) if FIGURES[fig][2] else min(values)


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "s":
        return f"{v:.3f} s" if v < 10 else f"{v:.2f} s"
    if unit == "MiB":
        return f"{v:.0f} MiB"
    return f"{v:.1f} tok/s" if v < 1000 else f"{v:.0f} tok/s"


def render(raw: Path, meta: dict) -> str:
    res, info = collect(raw)
    keys = sorted(res)
    threads = sorted({t for t, _ in keys})
    dt_order = [d for d in meta.get("dtypes", []) if any(k[1] == d for k in keys)]
    out = []
    w = out.append
    w(f"Measured {meta.get('date', '?')} on {meta.get('cpu', '?')} "
      f"({meta.get('nproc', '?')} vCPUs), {meta.get('label', '')}".rstrip(", ") + ".")
    w("")
    w(f"- ocellus: commit `{meta.get('ocellus_commit', '?')}` ({meta.get('ocellus', '')})")
    w(f"- llama.cpp: commit `{meta.get('llama_commit', '?')}`, CPU backend "
      f"({meta.get('llama_build_info', 'build info unknown')})")
    w("- model: random weights with SmolVLM-256M-Instruct's shapes "
      "(`ocellus make-model --preset smolvlm-256m`), the same weights in both programs")
    w(f"- each figure: best of {meta.get('runs', '?')} runs (fastest; peak RSS: median), "
      "the two programs run alternately")
    w(f"- llama.cpp mmproj type: {meta.get('mmproj_note', '?')}")
    w("")
    w("| figure | threads | dtype | ocellus | llama.cpp | ratio |")
    w("|---|---|---|---|---|---|")
    notes = set()
    for fig, (label, unit, higher) in FIGURES.items():
        for t in threads:
            for dt in dt_order:
                slot = res.get((t, dt))
                if not slot:
                    continue
                o = best(slot["ocellus"].get(fig, []), fig)
                l = best(slot["llama.cpp"].get(fig, []), fig)
                if o is None and l is None:
                    continue
                ratio = "—"
                if o and l:
                    ratio = f"{(o / l) if higher else (l / o):.2f}x"
                lab = label
                oi = info[(t, dt)]["ocellus"]
                li = info[(t, dt)]["llama.cpp"]
                pp = next((x["pp"] for x in li if "pp" in x), {})
                tg = next((x["tg"] for x in li if "tg" in x), {})
                legacy = any(x.get("legacy") for x in oi) or meta.get("legacy_ocellus")
                if fig == "prefill":
                    n = pp.get("n_prompt") or (oi[0].get("prefill_tokens") if oi else None)
                    lab = f"prefill, {n} tokens" + (" (caption prompt)" if legacy else "")
                    if oi and pp and oi[0].get("prefill_tokens") != pp.get("n_prompt"):
                        lab += " [sizes differ!]"
                if fig == "decode":
                    d = tg.get("n_depth") if tg else (oi[0].get("decode_depth") if oi else 0)
                    lab = (f"decode, {tg.get('n_gen') or meta.get('gen_tokens', 32)} tokens "
                           f"after {d or 0}")
                if legacy:
                    notes.add("legacy")
                if fig == "ttft" and legacy:
                    lab += " (ocellus: derived)"
                w(f"| {lab} | {t} | {dt} | {fmt(o, unit)} | {fmt(l, unit)} | {ratio} |")
    w("")
    w("Ratio: ocellus speed / llama.cpp speed (for times: llama.cpp time / ocellus time; for "
      "memory: llama.cpp MiB / ocellus MiB), so above 1 means ocellus is better.")
    if "legacy" in notes:
        w("This ocellus predates the new `ocellus bench` (no --dtype, no text-only prompt): "
          "its prefill is the caption prompt (image tokens + text) and llama-bench measures "
          "the same number of tokens; its decode follows that prompt, and llama-bench "
          "decodes at the same depth (-d); its TTFT is encode time + prefill time; 'bf16' "
          "is the model stored in BF16 (what ocellus computes with it is its own choice); "
          "it has no Q8_0.")
    w("")
    # machine limits, as ocellus measured them, and the script's own core check
    w("Machine during the run:")
    w("")
    w(f"- two busy loops at once on cpu0 + cpu1 vs one alone: {meta.get('core_check', '?')}")
    w(f"- load average before the run: {meta.get('loadavg', '?')}")
    try:
        loads = [ln.split("\t") for ln in (raw / "load.tsv").read_text().splitlines()]
    except OSError:
        loads = []
    try:
        quiet = [ln.split("\t") for ln in (raw / "quiet.tsv").read_text().splitlines()]
        quiet = [(q[0], int(q[1]), int(q[2])) for q in quiet if len(q) == 3]
    except (OSError, ValueError):
        quiet = []
    if quiet:
        busy = [q[1] for q in quiet]
        w(f"- CPU use by other processes just before each of the {len(quiet)} measurements: "
          f"median {statistics.median(busy):.0f}%, max {max(busy)}% of the CPUs "
          f"(the script waits up to {meta.get('quiet_wait', '?')} s for under "
          f"{meta.get('quiet_max', '?')}%; {sum(1 for q in quiet if q[1] >= meta.get('quiet_max', 101))} "
          "runs started above it)")
    if loads:
        w("- load average (1, 5, 15 min) when each configuration started: " + "; ".join(
            f"{x[0]} thr {x[1]}: {x[2]}" for x in loads if len(x) == 3))
    lim = []
    for (t, dt) in keys:
        for f in info[(t, dt)]["ocellus"]:
            if "fma_peak_gflops" in f or "read_gb_s" in f:
                lim.append((t, dt, f))
    if lim:
        w("- reported by `ocellus bench` (median over runs):")
        by: dict = {}
        for t, dt, f in lim:
            by.setdefault((t, dt), []).append(f)
        for (t, dt), fs in sorted(by.items()):
            def med(k):
                v = [float(x[k]) for x in fs if isinstance(x.get(k), (int, float))
                     and not isinstance(x.get(k), bool)]
                return statistics.median(v) if v else None
            peak, bw, eg = med("fma_peak_gflops"), med("read_gb_s"), med("encode_gflops")
            shared = [x.get("shared_core") for x in fs if "shared_core" in x]
            parts = []
            if peak:
                parts.append(f"FMA peak {peak:.0f} GFLOP/s")
            if eg:
                parts.append(f"encoder {eg:.0f} GFLOP/s" + (f" ({100 * eg / peak:.0f}% of peak)"
                                                            if peak else ""))
            if bw:
                parts.append(f"read bandwidth {bw:.1f} GB/s")
            if shared:
                parts.append("vCPUs on one core: " + ", ".join("yes" if s else "no"
                                                               for s in shared))
            w(f"  - {t} thread(s), {dt}: " + "; ".join(parts))
    else:
        w("- this ocellus bench reports no machine limits (FMA peak, read bandwidth, "
          "shared core)")
    w("")
    w("Commands (WORK = the script's work folder; T = threads; DT = dtype):")
    w("")
    w("```sh")
    for c in meta.get("commands", []):
        w(c)
    w("```")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "plan":
        j = load_json(Path(argv[1]))
        if not isinstance(j, dict):
            print(f"peer_report: {argv[1]}: not an ocellus bench JSON object", file=sys.stderr)
            return 1
        f = ocellus_figures(j, int(argv[2]))
        print(f.get("prefill_tokens") or int(argv[2]), f.get("decode_depth") or 0)
        return 0
    if argv and argv[0] == "report":
        import argparse
        ap = argparse.ArgumentParser(prog="peer_report.py report")
        ap.add_argument("--raw", type=Path, required=True)
        ap.add_argument("--meta", type=Path, required=True)
        ap.add_argument("--out", type=Path)
        a = ap.parse_args(argv[1:])
        meta = load_json(a.meta)
        if not isinstance(meta, dict):
            print(f"peer_report: {a.meta}: not a JSON object", file=sys.stderr)
            return 1
        text = render(a.raw, meta)
        sys.stdout.write(text)
        if a.out:
            try:
                doc = a.out.read_text(encoding="utf-8")
            except OSError as e:
                print(f"peer_report: {a.out}: {e.strerror}", file=sys.stderr)
                return 1
            b, e = doc.find(BEGIN), doc.find(END)
            if b < 0 or e < b:
                print(f"peer_report: {a.out}: no '{BEGIN}' ... '{END}' markers",
                      file=sys.stderr)
                return 1
            doc = doc[:b + len(BEGIN)] + "\n" + text + doc[e:]
            tmp = a.out.with_name(a.out.name + ".tmp")
            tmp.write_text(doc, encoding="utf-8")
            tmp.replace(a.out)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
