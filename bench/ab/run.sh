#!/usr/bin/env bash
# Same-process A/B of the recurrent kernels: an older commit's against the working tree's.
#   bench/ab/run.sh REV CELL B T I H D ROUNDS     e.g. bench/ab/run.sh HEAD~1 2 64 50 512 512 1 9
# CELL: 0 rnn-tanh, 2 lstm, 3 gru. Set CLANG to choose the compiler (default: the one beside swift).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
clang="${CLANG:-$(dirname "$(command -v swift)")/clang}"
rev="$1"
shift
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
git -C "$root" archive "$rev" Sources/CRecurKernels | tar -x -C "$out"
kernels="$root/Sources/CRecurKernels" old="$out/Sources/CRecurKernels"
flags=(-O3 -fno-math-errno -Wno-psabi)
"$clang" "${flags[@]}" -I "$old/include" -DOLD="$old" -c "$root/bench/ab/old_kernels.c" -o "$out/old_kernels.o"
nm --defined-only --extern-only "$out/old_kernels.o" | awk '$3 ~ /^rk_/ { print $3, "old_" $3 }' > "$out/old_names"
objcopy --redefine-syms="$out/old_names" "$out/old_kernels.o"
"$clang" "${flags[@]}" -I "$kernels/include" "$out/old_kernels.o" "$kernels/packed.c" "$kernels/pool.c" \
    "$kernels/kernels.c" "$root/bench/ab/sequences_ab.c" -o "$out/sequences_ab" -lpthread -lm
"$out/sequences_ab" "$@"
