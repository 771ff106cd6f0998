#!/usr/bin/env bash
# Fuzzes one target for a while: fuzz/run.sh TARGET SECONDS [libFuzzer options ...]
# TARGET is json, model, architecture, run, request, capi or train (fuzz/README.md). Builds the target if
# needed, seeds its corpus (fuzz/.build/corpus/TARGET) from the golden models, the examples and
# the committed regressions, and writes any crashing input to fuzz/.build/crashes/TARGET/.
# One job at nice 10: the machine is shared.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${1:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer options]}"
seconds="${2:?usage: fuzz/run.sh TARGET SECONDS [libFuzzer options]}"
shift 2
out="$root/fuzz/.build"
export RECUR_FUZZ_MODELS="${RECUR_FUZZ_MODELS:-$root/../shared/golden}"
[[ -d "$RECUR_FUZZ_MODELS" ]] || RECUR_FUZZ_MODELS="$root/../../shared/golden"

if [[ ! -x "$out/$target" || -n "${REBUILD:-}" ]]; then
    "$root/fuzz/build.sh" "$target" 2>&1 | grep -v "Cannot export local symbol" || true
fi
[[ -x "$out/$target" ]] || { echo "fuzz target $target did not build" >&2; exit 1; }

corpus="$out/corpus/$target"
crashes="$out/crashes/$target"
mkdir -p "$corpus" "$crashes"
if [[ -z "$(ls -A "$corpus")" ]]; then
    python3 "$root/fuzz/seeds.py" "$target" "$corpus" "$RECUR_FUZZ_MODELS" "$root/examples"
fi
regressions=()
[[ -d "$root/fuzz/regressions/$target" ]] && regressions=("$root/fuzz/regressions/$target")

dictionary=()
[[ -f "$root/fuzz/json.dict" && "$target" != run && "$target" != capi ]] && dictionary=(-dict="$root/fuzz/json.dict")

# ASAN: Swift allocations that fail trap anyway, so report huge requests as errors.
export ASAN_OPTIONS="${ASAN_OPTIONS:-allocator_may_return_null=0:detect_leaks=0}"
exec nice -n 10 "$out/$target" "$corpus" "${regressions[@]}" -max_total_time="$seconds" \
    -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=20 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "${dictionary[@]}" "$@"
