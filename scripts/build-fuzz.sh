#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*) with clang, ASan and UBSan into
# build-fuzz/. The library is compiled with -fsanitize=fuzzer-no-link so that libFuzzer
# sees its coverage.
#
#   bash scripts/build-fuzz.sh                 # build every target
#   bash scripts/build-fuzz.sh image prompt    # build some
#   build-fuzz/tests/fuzz/fuzz_image -max_total_time=600 -rss_limit_mb=2048 \
#       /tmp/corpus-image tests/fuzz/corpus/image        # fuzz (new inputs go first dir)
#   build-fuzz/tests/fuzz/fuzz_image -merge=1 tests/fuzz/corpus/image /tmp/corpus-image
#                                              # keep the inputs that add coverage
# A crash leaves crash-<sha1> in the current folder; replay it with
# build-fuzz/tests/fuzz/fuzz_image crash-<sha1> (or build-asan's replay_image).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-fuzz}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
if [ ! -f "$BUILD/build.ninja" ]; then
    CC=clang meson setup "$BUILD" --buildtype=debugoptimized -Dfuzz=true \
        -Db_lundef=false -Ddefault_library=static \
        -Dc_args="$SAN -fsanitize=fuzzer-no-link -gline-tables-only" \
        -Dc_link_args="$SAN"
fi
targets=()
for t in "$@"; do targets+=("tests/fuzz/fuzz_$t"); done
if [ ${#targets[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do
        n=$(basename "$f" .c)
        [ "$n" = fuzz_util ] || targets+=("tests/fuzz/$n")
    done
fi
ninja -C "$BUILD" "${targets[@]}"
