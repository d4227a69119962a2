#!/usr/bin/env bash
# Installs what ocellus needs to build and test, from Debian/Ubuntu packages.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential meson ninja-build pkg-config \
    libopenblas0 libcjson-dev libpcre2-dev libutf8proc-dev zlib1g-dev libstb-dev libcsv-dev \
    libcmocka-dev >/dev/null
# Sanitizer builds and fuzzing (scripts/test-sanitize.sh, scripts/build-fuzz.sh: clang with
# its ASan/UBSan/TSan/libFuzzer runtimes, LLVM's OpenMP, llvm-symbolizer) and memcheck
# (scripts/valgrind.sh).
$SUDO apt-get install -y -qq --no-install-recommends \
    clang libclang-rt-dev libomp-dev llvm valgrind >/dev/null
