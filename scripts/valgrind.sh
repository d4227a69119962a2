#!/usr/bin/env bash
# memcheck: no leak and no invalid access for a caption run with the CLI and for the
# golden tests (tests/test_smolvlm.c, tests/test_llava.c). Builds build-vg/ (gcc, debugoptimized).
# valgrind cannot run AVX-512 code and hides it from CPUID: the kernels' run-time dispatch
# (core/cpu.c) then takes their AVX2 versions.
# tests/valgrind.supp holds the few suppressions, each explained there.
#   bash scripts/valgrind.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-vg}
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" --buildtype=debugoptimized >/dev/null
fi
ninja -C "$BUILD" ocellus tests/test_smolvlm tests/test_llava
VG=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1
    --suppressions=tests/valgrind.supp --quiet)
echo "== valgrind: ocellus caption"
"${VG[@]}" "$BUILD/ocellus" caption tests/data/images/shapes_200x130.png \
    --model tests/data/smolvlm-tiny --max-tokens 4
echo
echo "== valgrind: tests/test_smolvlm"
CMOCKA_MESSAGE_OUTPUT=stdout "${VG[@]}" "$BUILD/tests/test_smolvlm"
echo
echo "== valgrind: tests/test_llava"
CMOCKA_MESSAGE_OUTPUT=stdout "${VG[@]}" "$BUILD/tests/test_llava"
echo "valgrind: no errors, no leaks"
