#!/usr/bin/env bash
# Builds ocellus with warnings as errors and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
meson setup build-test --buildtype=debugoptimized -Dwerror=true --wipe >/dev/null 2>&1 ||
    meson setup build-test --buildtype=debugoptimized -Dwerror=true
ninja -C build-test
meson test -C build-test --print-errorlogs --num-processes 2 "$@"
