#!/usr/bin/env bash
# Installs what ocellus needs from Debian/Ubuntu packages.
#   bash scripts/install-deps.sh         # to build ocellus and run it (the README's first command)
#   bash scripts/install-deps.sh --dev   # also what the tests, CI and the sanitizers need
set -euo pipefail
DEV=0
case "${1:-}" in
--dev) DEV=1 ;;
"") ;;
*) echo "usage: bash scripts/install-deps.sh [--dev]" >&2; exit 2 ;;
esac
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential meson ninja-build pkg-config \
    libopenblas0 libcjson-dev libpcre2-dev libutf8proc-dev zlib1g-dev libstb-dev libcsv-dev \
    libcmocka-dev libmicrohttpd-dev nettle-dev libedit-dev libgsl-dev libcairo2-dev \
    libjpeg-dev libwebp-dev >/dev/null
[ "$DEV" = 1 ] || exit 0
# Data-parallel training over processes and machines (core/dist.c, docs/DISTRIBUTED.md):
# Open MPI; ocellus builds without it (-Dmpi=disabled) and the MPI tests are then left out.
$SUDO apt-get install -y -qq --no-install-recommends libopenmpi-dev openmpi-bin >/dev/null
# Sanitizer builds and fuzzing (scripts/test-sanitize.sh, scripts/build-fuzz.sh: clang with
# its ASan/UBSan/TSan/libFuzzer runtimes, LLVM's OpenMP, llvm-symbolizer) and memcheck
# (scripts/valgrind.sh).
$SUDO apt-get install -y -qq --no-install-recommends \
    clang libclang-rt-dev libomp-dev llvm valgrind >/dev/null
# The official OpenAI client for tests/serve/openai_test.py: npm's "openai" package, pinned in
# tests/serve/openai/package-lock.json, into tests/serve/openai/node_modules. Node.js and npm
# come from Debian only where the machine has no npm (Debian's npm is large); the test
# installs the package itself when this could not, and is skipped, saying why, when neither
# can.
if ! command -v npm >/dev/null; then
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null ||
        echo "install-deps: no nodejs/npm; the OpenAI client test will be skipped" >&2
fi
if command -v npm >/dev/null; then
    (cd "$(dirname "$0")/../tests/serve/openai" && npm ci --no-audit --no-fund --loglevel=error \
        >/dev/null) ||
        echo "install-deps: npm ci of the openai package failed; the test will try again" >&2
fi
