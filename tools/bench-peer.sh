#!/usr/bin/env bash
# ocellus vs llama.cpp on the same random SmolVLM-256M-shaped model and the same machine.
# Run with --help for the setup; docs/PERFORMANCE.md explains the figures.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

usage() {
    cat <<'EOF'
usage: tools/bench-peer.sh --llama-src TREE --llama-build DIR [--ocellus PATH]
                           [--threads "1 2"] [--dtypes "f32 bf16 q8_0"] [--runs N]
                           [--mmproj-dtype same|f32|f16|bf16|q8_0] [--work DIR]
                           [--out docs/PERFORMANCE.md] [--label TEXT] [--fresh]
                           [--quiet-wait SECONDS] [--quiet-max PERCENT]

Measures ocellus and llama.cpp on the same figures, running them alternately
(ocellus, llama.cpp, ocellus, llama.cpp, ... --runs times each), and prints a
markdown table with ratios (ocellus speed / llama.cpp speed; above 1 = ocellus
faster). With --out it rewrites the table section of that file (between the
bench-peer markers of docs/PERFORMANCE.md).

Figures, for each thread count and dtype (best of the runs):
  image encoding s per 512x512 tile   ocellus bench; llama-mtmd-cli's encode times
                                      over the 17 tiles (16 slices + the overview)
  prefill tok/s, 512 text tokens      ocellus bench; llama-bench -p 512 -n 0
  decode tok/s, 32 tokens             ocellus bench; llama-bench -p 0 -n 32 -d DEPTH
                                      (DEPTH = the context ocellus decoded after)
  time to first token, captioning a 512x512 image    ocellus bench; llama-mtmd-cli
  peak RSS of the captioning process  /usr/bin/time -v

Options:
  --llama-src TREE    a llama.cpp source tree (its gguf-py converts the model)
  --llama-build DIR   its build folder (DIR/bin/llama-bench, DIR/bin/llama-mtmd-cli)
  --ocellus PATH      the ocellus binary (default: build/ocellus of this checkout)
  --threads LIST      thread counts (default "1 2")
  --dtypes LIST       weight types (default "f32 bf16 q8_0"): ocellus --dtype; the
                      llama.cpp text model F32 / BF16 / Q8_0
  --mmproj-dtype T    llama.cpp projector type: "same" (default: as the text
                      model, like ocellus's --dtype), or one type for all
  --runs N            runs of each program per configuration (default 3)
  --work DIR          cache for the model, GGUF files, image and raw outputs
                      (default ${XDG_CACHE_HOME:-~/.cache}/ocellus/bench-peer)
  --out FILE          rewrite FILE's table section (docs/PERFORMANCE.md)
  --label TEXT        a note printed above the table (e.g. "before the kernel work")
  --fresh             remake the model and GGUF files
  --quiet-wait S      before each program run, wait up to S seconds (default 60)
                      until other processes (any nice level) use under --quiet-max
                      percent of the CPUs (default 10) for 2 s. The report says how
                      busy the machine was.

Setup (once). llama.cpp from its public source, CPU backend as its default build
(no BLAS), in a folder outside this checkout:
  git clone https://github.com/ggml-org/llama.cpp ~/src/llama.cpp
  cmake -S ~/src/llama.cpp -B ~/src/llama.cpp/build -DCMAKE_BUILD_TYPE=Release \
        -DGGML_NATIVE=ON -DGGML_BLAS=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_SERVER=OFF
  cmake --build ~/src/llama.cpp/build -j2 --target llama-bench llama-mtmd-cli
(older llama.cpp trees: -DLLAMA_CURL=OFF instead of -DLLAMA_OPENSSL=OFF). On a CPU
with AMX where llama.cpp's AMX kernels die with "Illegal instruction" (seen in a VM),
add -DCMAKE_C_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" and the same
-DCMAKE_CXX_FLAGS (ocellus does not use AMX either). Python 3
with numpy, the system one (torch is not needed: tools/peer/hf_to_gguf.py writes
the GGUF files with the tree's gguf-py):
  sudo apt-get install python3-numpy time
Then:
  tools/bench-peer.sh --llama-src ~/src/llama.cpp --llama-build ~/src/llama.cpp/build \
        --out docs/PERFORMANCE.md
Run it on a quiet machine: the two programs share the same cores. A run of the
defaults takes about half an hour on 2 vCPUs (--runs 1 for a quick look).
EOF
}

die() { echo "bench-peer: $*" >&2; exit 1; }

LLAMA_SRC="" LLAMA_BUILD="" OCELLUS="$ROOT/build/ocellus" THREADS="1 2"
DTYPES="f32 bf16 q8_0" RUNS=3 MMPROJ_DTYPE=same OUT="" LABEL="" FRESH=0
QUIET_WAIT=60 QUIET_MAX=10
WORK="${XDG_CACHE_HOME:-$HOME/.cache}/ocellus/bench-peer"
PROMPT_TOKENS=512 GEN_TOKENS=32
PY=${PYTHON:-/usr/bin/python3}

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --fresh) FRESH=1; shift; continue ;;
        --llama-src|--llama-build|--ocellus|--threads|--dtypes|--runs|--mmproj-dtype|--work|--out|--label|--quiet-wait|--quiet-max)
            [ $# -ge 2 ] || die "$1 needs a value (see --help)" ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    case "$1" in
        --llama-src) LLAMA_SRC=$2 ;;
        --llama-build) LLAMA_BUILD=$2 ;;
        --ocellus) OCELLUS=$2 ;;
        --threads) THREADS=$2 ;;
        --dtypes) DTYPES=$2 ;;
        --runs) RUNS=$2 ;;
        --mmproj-dtype) MMPROJ_DTYPE=$2 ;;
        --work) WORK=$2 ;;
        --out) OUT=$2 ;;
        --label) LABEL=$2 ;;
        --quiet-wait) QUIET_WAIT=$2 ;;
        --quiet-max) QUIET_MAX=$2 ;;
    esac
    shift 2
done

# ---- checks (each names what is missing and how to get it)
if [ -z "$LLAMA_SRC" ] || [ -z "$LLAMA_BUILD" ]; then
    die "--llama-src and --llama-build are required (see --help)"
fi
[ -f "$LLAMA_SRC/gguf-py/gguf/__init__.py" ] || die "$LLAMA_SRC: no gguf-py/ (is it a llama.cpp source tree?)"
LLAMA_BENCH="" MTMD=""
for d in "$LLAMA_BUILD/bin" "$LLAMA_BUILD"; do
    [ -z "$LLAMA_BENCH" ] && [ -x "$d/llama-bench" ] && LLAMA_BENCH="$d/llama-bench"
    [ -z "$MTMD" ] && [ -x "$d/llama-mtmd-cli" ] && MTMD="$d/llama-mtmd-cli"
done
[ -n "$LLAMA_BENCH" ] || die "$LLAMA_BUILD: no bin/llama-bench (build the llama-bench target)"
[ -n "$MTMD" ] || die "$LLAMA_BUILD: no bin/llama-mtmd-cli (build the llama-mtmd-cli target)"
[ -x "$OCELLUS" ] || die "$OCELLUS: no ocellus binary (build it, or pass --ocellus PATH)"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian: apt-get install time)"
"$PY" -c 'import numpy' 2>/dev/null || die "$PY has no numpy (Debian: apt-get install python3-numpy)"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs: a positive integer, got '$RUNS'"
[[ "$QUIET_WAIT" =~ ^[0-9]+$ ]] || die "--quiet-wait: seconds, got '$QUIET_WAIT'"
if ! [[ "$QUIET_MAX" =~ ^[0-9]+$ ]] || [ "$QUIET_MAX" -gt 100 ]; then
    die "--quiet-max: a percentage, got '$QUIET_MAX'"
fi
for t in $THREADS; do [[ "$t" =~ ^[1-9][0-9]*$ ]] || die "--threads: '$t' is not a thread count"; done
for dt in $DTYPES; do
    case "$dt" in f32|bf16|q8_0) ;; *) die "--dtypes: '$dt' (f32, bf16 or q8_0)" ;; esac
done
case "$MMPROJ_DTYPE" in same|f32|f16|bf16|q8_0) ;; *) die "--mmproj-dtype: '$MMPROJ_DTYPE'" ;; esac
if [ -n "$OUT" ]; then
    [ -f "$OUT" ] || die "$OUT: no such file (--out rewrites the table section of an existing file)"
    grep -q 'bench-peer:begin' "$OUT" || die "$OUT: no '<!-- bench-peer:begin' marker"
fi

CONVERT="$HERE/peer/hf_to_gguf.py"
REPORT="$HERE/peer/peer_report.py"
mkdir -p "$WORK/gguf"
RAW="$WORK/raw-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RAW"
log() { printf 'bench-peer: %s\n' "$*" >&2; }

# ---- what this ocellus bench accepts (before issue 11 it had no --dtype / --prompt-tokens)
OC_HELP=$("$OCELLUS" bench --help 2>&1 || true)
OC_DTYPE=0 OC_PROMPT=0
grep -q -- '--dtype' <<<"$OC_HELP" && OC_DTYPE=1
grep -q -- '--prompt-tokens' <<<"$OC_HELP" && OC_PROMPT=1

# ---- the random model (the F32 folder is the source of every GGUF; a BF16 folder for an
# ocellus that cannot convert at load), the image, the GGUF files
make_model() { # dtype folder
    if [ "$FRESH" = 1 ] || [ ! -f "$2/config.json" ]; then
        log "making the random model ($1) in $2"
        rm -rf "$2"
        "$OCELLUS" make-model --preset smolvlm-256m --dtype "$1" --out "$2" >/dev/null
    fi
}
make_model F32 "$WORK/model-f32"
if [ "$OC_DTYPE" = 0 ]; then make_model BF16 "$WORK/model-bf16"; fi

IMAGE="$WORK/image-512.png"
if [ ! -f "$IMAGE" ]; then
    "$PY" - "$IMAGE" <<'EOF'
import struct, sys, zlib
W = H = 512  # a deterministic RGB gradient
rows = bytearray()
for y in range(H):
    rows.append(0)
    for x in range(W):
        rows += bytes(((x * 255) // (W - 1), (y * 255) // (H - 1), (x ^ y) & 255))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
EOF
fi

mmproj_type() { if [ "$MMPROJ_DTYPE" = same ]; then echo "$1"; else echo "$MMPROJ_DTYPE"; fi; }
for dt in $DTYPES; do
    text="$WORK/gguf/text-$dt.gguf" mt=$(mmproj_type "$dt")
    mm="$WORK/gguf/mmproj-$mt.gguf"
    if [ "$FRESH" = 1 ] || [ ! -f "$text" ] || [ "$CONVERT" -nt "$text" ]; then
        log "writing $text"
        "$PY" "$CONVERT" --llama-src "$LLAMA_SRC" "$WORK/model-f32" --outtype "$dt" \
            --outfile "$text" --no-mmproj --add-mtmd-tokens --name smolvlm-256m-random >/dev/null
    fi
    if [ "$FRESH" = 1 ] || [ ! -f "$mm" ] || [ "$CONVERT" -nt "$mm" ]; then
        log "writing $mm"
        "$PY" "$CONVERT" --llama-src "$LLAMA_SRC" "$WORK/model-f32" --outtype "$mt" \
            --mmproj-outfile "$mm" --no-text --name smolvlm-256m-random >/dev/null
    fi
done

# ---- one configuration = RUNS rounds of: ocellus, llama-bench pp, llama-bench tg, mtmd
OC_CMD_DOC="ocellus bench --model WORK/model-f32"
[ "$OC_DTYPE" = 1 ] && OC_CMD_DOC+=" --dtype DT"
OC_CMD_DOC+=" --threads T"
[ "$OC_PROMPT" = 1 ] && OC_CMD_DOC+=" --prompt-tokens $PROMPT_TOKENS"
OC_CMD_DOC+=" --gen-tokens $GEN_TOKENS --image WORK/image-512.png --runs 1 --json"
[ "$OC_DTYPE" = 0 ] && OC_CMD_DOC+="   # bf16: --model WORK/model-bf16; no q8_0"

# llama-bench's prefill size and decode depth follow what ocellus measured (its first run);
# a configuration ocellus cannot run (q8_0 before issue 11) uses the same sizes.
pp_n=$PROMPT_TOKENS tg_d=-1
# Percent of all CPUs used over one second by other processes, whatever their nice level:
# when the two vCPUs are hyperthreads of one core, work at nice 19 on one of them still
# takes half the core from a benchmark on the other.
cpu_busy() {
    "$PY" - <<'EOF'
import os, time
def used():
    me, tot = os.getpid(), 0
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            f = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tot += int(f[11]) + int(f[12])   # fields after the name: utime 11, stime 12
    return tot
a, t0 = used(), time.monotonic()
time.sleep(1)
b, t1 = used(), time.monotonic()
hz = os.sysconf("SC_CLK_TCK")
print(max(0, round(100 * (b - a) / hz / (t1 - t0) / os.cpu_count())))
EOF
}

# wait_quiet LABEL: until cpu_busy < QUIET_MAX twice in a row, at most QUIET_WAIT s;
# appends "LABEL busy% waited_s" to quiet.tsv
wait_quiet() {
    local start=$SECONDS busy ok=0
    while :; do
        busy=$(cpu_busy)
        if [ "$busy" -lt "$QUIET_MAX" ]; then ok=$((ok + 1)); else ok=0; fi
        [ "$ok" -ge 2 ] && break
        if [ $((SECONDS - start)) -ge "$QUIET_WAIT" ]; then
            log "other work still uses ${busy}% of the CPUs after ${QUIET_WAIT}s: measuring anyway"
            break
        fi
        [ "$ok" = 0 ] && sleep 4
    done
    printf '%s\t%s\t%s\n' "$1" "$busy" "$((SECONDS - start))" >>"$RAW/quiet.tsv"
}

llama_failed() { # status program log
    [ "$1" = 0 ] && return 0
    if [ "$1" = 132 ] || grep -q 'Illegal instruction' "$3" 2>/dev/null; then
        die "$2 died with an illegal instruction (AMX in a VM? see --help); log: $3"
    fi
    die "$2 failed (status $1): see $3"
}

# ---- the machine: two busy loops on cpu0 + cpu1 at once vs one alone
core_check() {
    "$PY" - <<'EOF'
import os, subprocess, sys, time
loop = "import time\nt=time.perf_counter()\nx=0\nfor i in range(6000000): x+=i\nprint(time.perf_counter()-t)"
def run(cpus):
    ps = [subprocess.Popen(["taskset", "-c", str(c), sys.executable, "-c", loop],
                           stdout=subprocess.PIPE, text=True) for c in cpus]
    return max(float(p.communicate()[0]) for p in ps)
if os.cpu_count() < 2:
    print("one vCPU only"); sys.exit()
one = min(run([0]) for _ in range(2)); two = min(run([0, 1]) for _ in range(2))
r = two / one
print(f"{r:.2f}x the time of one ({'separate cores' if r < 1.3 else 'one physical core, or a busy machine'})")
EOF
}
wait_quiet core-check
CORE_CHECK=$(core_check 2>/dev/null || echo "not measured (needs taskset)")
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
log "core check: two busy loops at once take $CORE_CHECK; load average $LOADAVG"

for t in $THREADS; do
    for dt in $DTYPES; do
        text="$WORK/gguf/text-$dt.gguf" mm="$WORK/gguf/mmproj-$(mmproj_type "$dt").gguf"
        model="$WORK/model-f32" oc_ok=1
        oc_args=(bench --model "$model" --threads "$t" --gen-tokens "$GEN_TOKENS"
                 --image "$IMAGE" --runs 1 --json)
        if [ "$OC_DTYPE" = 1 ]; then
            oc_args+=(--dtype "$dt")
        elif [ "$dt" = bf16 ]; then
            oc_args[2]="$WORK/model-bf16"
        elif [ "$dt" = q8_0 ]; then
            oc_ok=0
        fi
        [ "$OC_PROMPT" = 1 ] && oc_args+=(--prompt-tokens "$PROMPT_TOKENS")
        printf '%s\t%s\t%s\n' "$t" "$dt" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/load.tsv"
        for r in $(seq 1 "$RUNS"); do
            base="$RAW/T$t-$dt-r$r"
            if [ "$oc_ok" = 1 ]; then
                log "threads $t, $dt, run $r/$RUNS: ocellus"
                wait_quiet "T$t-$dt-r$r-ocellus"
                /usr/bin/time -v -o "$base-ocellus.time" "$OCELLUS" "${oc_args[@]}" \
                    >"$base-ocellus.json" 2>"$base-ocellus.err" ||
                    die "ocellus bench failed: see $base-ocellus.err"
                if [ "$tg_d" = -1 ]; then
                    read -r pp_n tg_d < <("$PY" "$REPORT" plan "$base-ocellus.json" "$PROMPT_TOKENS")
                fi
            fi
            log "threads $t, $dt, run $r/$RUNS: llama.cpp (prefill $pp_n, decode after $((tg_d < 0 ? 0 : tg_d)), caption)"
            rc=0
            wait_quiet "T$t-$dt-r$r-pp"
            "$LLAMA_BENCH" -m "$text" -t "$t" -p "$pp_n" -n 0 -r 1 -o json \
                >"$base-pp.json" 2>"$base-pp.err" || rc=$?
            llama_failed "$rc" "llama-bench" "$base-pp.err"
            wait_quiet "T$t-$dt-r$r-tg"
            "$LLAMA_BENCH" -m "$text" -t "$t" -p 0 -n "$GEN_TOKENS" -d "$((tg_d < 0 ? 0 : tg_d))" \
                -r 1 -o json >"$base-tg.json" 2>"$base-tg.err" || rc=$?
            llama_failed "$rc" "llama-bench" "$base-tg.err"
            wait_quiet "T$t-$dt-r$r-mtmd"
            /usr/bin/time -v -o "$base-mtmd.time" "$MTMD" -m "$text" --mmproj "$mm" \
                --image "$IMAGE" -p "Describe this image." -n 1 -t "$t" --temp 0 -c 2048 \
                --chat-template smolvlm -v >"$base-mtmd.log" 2>&1 || rc=$?
            llama_failed "$rc" "llama-mtmd-cli" "$base-mtmd.log"
        done
    done
done

# ---- report
OC_DIR=$(dirname "$OCELLUS")
OC_COMMIT=$(git -C "$OC_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
# the last commit that changed what the binary is built from (scripts and docs aside)
OC_TOP=$(git -C "$OC_DIR" rev-parse --show-toplevel 2>/dev/null || true)
OC_SRC=""
if [ -n "$OC_TOP" ]; then
    OC_SRC=$(git -C "$OC_TOP" log -1 --format=%h -- core vision text fusion data train eval \
             serve include meson.build 'tools/*.c' 2>/dev/null || true)
fi
if [ -n "$OC_SRC" ] && [ "$OC_SRC" != "$OC_COMMIT" ]; then OC_COMMIT+=", its C sources as of $OC_SRC"; fi
if git -C "$OC_DIR" status --porcelain --untracked-files=no 2>/dev/null | grep -q .; then
    OC_COMMIT+=" + local changes"
fi
LLAMA_COMMIT=$(git -C "$LLAMA_SRC" rev-parse HEAD 2>/dev/null || true)
# llama-bench's JSON names the commit its build was configured from
BUILD_COMMIT=$(sed -n 's/.*"build_commit": "\([^"]*\)".*/\1/p' "$RAW"/*-pp.json | head -1)
BUILD_NUMBER=$(sed -n 's/.*"build_number": \([0-9]*\).*/\1/p' "$RAW"/*-pp.json | head -1)
BUILD_INFO="llama-bench build ${BUILD_COMMIT:-unknown} (${BUILD_NUMBER:-?})"
if [ -z "$LLAMA_COMMIT" ]; then
    LLAMA_COMMIT="${BUILD_COMMIT:-unknown} (from llama-bench; the tree is not a git checkout)"
fi
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
if [ "$MMPROJ_DTYPE" = same ]; then
    MM_NOTE="the text model's type (F32 / BF16 / Q8_0; SigLIP's patch and position embeddings, norms and biases stay F32, as llama.cpp's converter writes them)"
else
    MM_NOTE="$MMPROJ_DTYPE for every configuration"
fi
BP_DATE=$(date -u +%Y-%m-%d)
export BP_DATE BP_CPU="$CPU" BP_LABEL="$LABEL" BP_OC_COMMIT="$OC_COMMIT" BP_OC_DTYPE="$OC_DTYPE" \
    BP_LLAMA_COMMIT="$LLAMA_COMMIT" BP_BUILD_INFO="$BUILD_INFO" BP_RUNS="$RUNS" \
    BP_DTYPES="$DTYPES" BP_PROMPT="$PROMPT_TOKENS" BP_GEN="$GEN_TOKENS" BP_MM_NOTE="$MM_NOTE" \
    BP_CORE="$CORE_CHECK" BP_LOAD="$LOADAVG" BP_OC_CMD="$OC_CMD_DOC" BP_QWAIT="$QUIET_WAIT" \
    BP_QMAX="$QUIET_MAX"
"$PY" - "$RAW/meta.json" <<'EOF'
import json, os, sys
e = os.environ
gen = e["BP_GEN"]
json.dump({
    "date": e["BP_DATE"], "cpu": e["BP_CPU"], "nproc": os.cpu_count(), "label": e["BP_LABEL"],
    "ocellus_commit": e["BP_OC_COMMIT"], "legacy_ocellus": e["BP_OC_DTYPE"] != "1",
    "ocellus": "ocellus bench" + ("" if e["BP_OC_DTYPE"] == "1" else " before issue 11's rewrite"),
    "llama_commit": e["BP_LLAMA_COMMIT"], "llama_build_info": e["BP_BUILD_INFO"],
    "runs": int(e["BP_RUNS"]), "dtypes": e["BP_DTYPES"].split(),
    "prompt_tokens": int(e["BP_PROMPT"]), "gen_tokens": int(gen),
    "mmproj_note": e["BP_MM_NOTE"], "core_check": e["BP_CORE"], "loadavg": e["BP_LOAD"],
    "quiet_wait": int(e["BP_QWAIT"]), "quiet_max": int(e["BP_QMAX"]),
    "commands": [
        "ocellus make-model --preset smolvlm-256m --dtype F32 --out WORK/model-f32",
        "python3 tools/peer/hf_to_gguf.py --llama-src TREE WORK/model-f32 --outtype DT "
        "--outfile WORK/gguf/text-DT.gguf --no-mmproj --add-mtmd-tokens",
        "python3 tools/peer/hf_to_gguf.py --llama-src TREE WORK/model-f32 --outtype DT "
        "--mmproj-outfile WORK/gguf/mmproj-DT.gguf --no-text",
        e["BP_OC_CMD"],
        "llama-bench -m WORK/gguf/text-DT.gguf -t T -p N -n 0 -r 1 -o json"
        "    # N = the prefill tokens of the ocellus row",
        f"llama-bench -m WORK/gguf/text-DT.gguf -t T -p 0 -n {gen} -d D -r 1 -o json"
        "    # D = the context ocellus decoded after",
        "llama-mtmd-cli -m WORK/gguf/text-DT.gguf --mmproj WORK/gguf/mmproj-DT.gguf "
        "--image WORK/image-512.png -p 'Describe this image.' -n 1 -t T --temp 0 -c 2048 "
        "--chat-template smolvlm -v",
        "/usr/bin/time -v ...    # around ocellus bench and llama-mtmd-cli: peak RSS",
    ],
}, open(sys.argv[1], "w"), indent=1)
EOF
log "raw outputs in $RAW"
report_args=(report --raw "$RAW" --meta "$RAW/meta.json")
[ -n "$OUT" ] && report_args+=(--out "$OUT")
"$PY" "$REPORT" "${report_args[@]}"
