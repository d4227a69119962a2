#!/usr/bin/env bash
# Packaging, from a `meson install --destdir` tree: a program built against the installed
# library with pkg-config runs; the installed binary finds the installed bundled model; the
# installed library exports only the public API; the .pc file gives only ocellus's own
# include path (its dependencies stay in Libs.private).
#   check_install.sh BUILD_DIR SOURCE_DIR PREFIX LIBDIR [SANITIZERS]
set -euo pipefail
build=$1 src=$2 prefix=$3 libdir=$4 sanitize=${5:-none}
if [ "$sanitize" != none ]; then # a plain program cannot link a sanitized library
    echo "skipped: the build uses -Db_sanitize=$sanitize"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp" --no-rebuild --quiet >/dev/null
root="$tmp$prefix"
lib="$root/$libdir"
export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp" LD_LIBRARY_PATH="$lib"
unset OCELLUS_MODEL
cflags=$(pkg-config --cflags ocellus)
cflags=${cflags%% }
[ "$cflags" = "-I$root/include" ] || { echo "pkg-config --cflags ocellus gives '$cflags'"; exit 1; }
cc "$src/examples/caption.c" $cflags $(pkg-config --libs ocellus) -o "$tmp/caption"
model="$root/share/ocellus/ocellus-shapes"
out=$("$tmp/caption" "$model" "$src/examples/shapes-1.png")
echo "example program: $out"
[ -n "$out" ]
cap=$("$root/bin/ocellus" caption "$src/examples/shapes-1.png")
echo "installed ocellus: $cap"
[ "$cap" = "${out# }" ] || { echo "the installed binary did not caption with the installed model"; exit 1; }
bash "$src/tests/check_exports.sh" "$lib/libocellus.so" "$root/include/ocellus.h"
