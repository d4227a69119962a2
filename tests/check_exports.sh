#!/usr/bin/env bash
# The shared library exports exactly the functions include/ocellus.h marks OC_API: no
# stb_image (an application's own stb would otherwise meet ocellus's: a call to its
# stbi_set_flip_vertically_on_load would flip every image ocellus loads), no test hook
# (oc_alloc_fail_at, oc_io_fail_at), no internal helper.
#   check_exports.sh libocellus.so include/ocellus.h
set -euo pipefail
lib=$1 header=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u > "$tmp/exported"
# declarations start with OC_API at the start of a line; the name is the word before '('
grep -E '^OC_API ' "$header" | sed -E 's/^OC_API [^(]*[^a-zA-Z0-9_](oc_[a-zA-Z0-9_]+)\(.*/\1/' |
    sort -u > "$tmp/api"
n_api=$(wc -l < "$tmp/api")
n_exp=$(wc -l < "$tmp/exported")
[ "$n_api" -gt 50 ] || { echo "read only $n_api OC_API declarations from $header"; exit 1; }
status=0
if ! diff -u "$tmp/api" "$tmp/exported" > "$tmp/diff"; then
    echo "exported symbols differ from the OC_API functions of $header (- not exported, + exported but not public):"
    grep -E '^[-+][a-zA-Z_]' "$tmp/diff" || true
    status=1
fi
for bad in stbi_load_from_memory stbi_set_flip_vertically_on_load oc_alloc_fail_at oc_io_fail_at; do
    if grep -qx "$bad" "$tmp/exported"; then
        echo "$bad is exported"
        status=1
    fi
done
echo "$n_exp symbols exported, $n_api public functions"
exit $status
