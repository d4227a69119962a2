#!/usr/bin/env bash
# Sanitizer builds (clang), warnings as errors:
#  1. build-asan: ASan + UBSan (-fno-sanitize-recover=all, LeakSanitizer on) runs the whole
#     test suite, which includes the replays of every fuzz corpus (suite 'fuzz',
#     tests/fuzz/meson.build) and the allocation-failure test.
#  2. build-tsan: ThreadSanitizer runs tests/test_threads.c (one model shared by threads,
#     each session with its own pool), tests/test_kernels.c (the pool itself, every kernel
#     on one thread and on several), and the server's threads: tests/test_serve.c (the
#     image cache from several threads) and the HTTP tests (tests/serve/serve_test.py:
#     concurrent clients, --parallel sessions, disconnects).
#   bash scripts/test-sanitize.sh            # both
#   bash scripts/test-sanitize.sh asan       # one of them (asan, tsan); extra arguments
#   bash scripts/test-sanitize.sh asan fuzz_image   # go to meson test
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
[ $# -gt 0 ] && shift

setup() { # dir sanitizer [ninja targets]
    local dir=$1 san=$2
    shift 2
    if [ ! -f "$dir/build.ninja" ]; then
        CC=clang meson setup "$dir" --buildtype=debugoptimized -Dwerror=true \
            -Db_sanitize="$san" -Db_lundef=false \
            -Dc_args="-fno-sanitize-recover=all -fno-omit-frame-pointer" >/dev/null
    fi
    ninja -C "$dir" "$@"
}

if [ "$which" = all ] || [ "$which" = asan ]; then
    setup build-asan address,undefined
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
        meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3 "$@"
fi
if [ "$which" = all ] || [ "$which" = tsan ]; then
    setup build-tsan thread tests/test_threads tests/test_kernels tests/test_serve ocellus
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        meson test -C build-tsan --no-rebuild --print-errorlogs --timeout-multiplier 3 threads \
        kernels serve serve_http "$@"
fi
