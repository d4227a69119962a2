#!/usr/bin/env bash
# examples/chat.c, built by the build: two questions in one session; the first answer equals
# `ocellus ask` on the same image and question (one turn, the same prompt), the second is
# answered from the cached conversation.
#   check_example_chat.sh EXAMPLE OCELLUS MODEL IMAGE
set -euo pipefail
example=$1 ocellus=$2 model=$3 image=$4
out=$("$example" "$model" "$image" "What colour is the left cross?" "How many crosses are there?")
printf '%s\n' "$out"
first=$(printf '%s\n' "$out" | sed -n 2p)
want=$("$ocellus" ask "$image" "What colour is the left cross?" --model "$model" --max-tokens 64 --no-stream)
[ "${first# }" = "$want" ] || { echo "first answer '$first', ocellus ask says '$want'"; exit 1; }
[ "$(printf '%s\n' "$out" | grep -c '^> ')" = 2 ] && [ -n "$(printf '%s\n' "$out" | sed -n 5p)" ]
