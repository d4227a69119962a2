#!/usr/bin/env bash
# Sanitizer builds (clang), warnings as errors:
#  1. build-asan: ASan + UBSan (-fno-sanitize-recover=all, LeakSanitizer on) runs the whole
#     test suite, which includes the replays of every fuzz corpus (suite 'fuzz',
#     tests/fuzz/meson.build) and the allocation-failure test.
#  2. build-tsan: ThreadSanitizer runs tests/test_threads.c, and the server's threads:
#     tests/test_serve.c (the image cache from several threads) and the HTTP tests
#     (tests/serve/serve_test.py: concurrent clients, --parallel sessions, disconnects).
# OpenBLAS runs single-threaded here (OPENBLAS_NUM_THREADS=1): its own pthread pool is
# not instrumented. Under TSan OpenMP is single-threaded too (OMP_NUM_THREADS=1):
# libomp/libgomp synchronise in ways TSan cannot see and would report false races; the
# threads under test are the test's own pthreads sharing one model.
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
    OPENBLAS_NUM_THREADS=1 \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        meson test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3 "$@"
fi
if [ "$which" = all ] || [ "$which" = tsan ]; then
    setup build-tsan thread tests/test_threads tests/test_serve ocellus
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        meson test -C build-tsan --no-rebuild --print-errorlogs --timeout-multiplier 3 threads \
        serve serve_http "$@"
fi
