#!/usr/bin/env bash
# Builds Tests/kernels/bounds.c with the kernels under AddressSanitizer, runs it under each kernel
# variant (avx512 itself where the CPU has AVX-512F and VL), and checks that the AVX2 variant, AVX-512's
# tile shapes in AVX2 and, where it runs, the AVX-512 variant give the same bits.
# Then checks rk_copy_bytes (Tests/kernels/copy.c) and rk_widen_half over every binary16 bit pattern in
# every variant (Tests/kernels/widen.c), also under AddressSanitizer, and the step's
# activations over every float (Tests/kernels/activations.c), compiled as the portable variant
# compiles them and as the AVX2 one does (with FMA), the two at once, and where the pool's workers may
# run and when sleeping ones are woken (Tests/kernels/placement.c).
# CLANG: the compiler (default: the one beside swift).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
clang="${CLANG:-$(dirname "$(command -v swift)")/clang}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
kernels="$root/Sources/CRecurKernels"
# asan_build OUTPUT SOURCE...: the sources and the kernels' headers under AddressSanitizer. The linker's
# notes about AddressSanitizer's local symbols are noise; shown only on failure. No variable-length
# arrays: inlined into a loop, one stays a stack allocation every iteration (packed.c, MAX_GATES).
asan_flags=(-O1 -g -fsanitize=address -fno-omit-frame-pointer -fno-math-errno -Wno-psabi -Werror=vla -I "$kernels/include")
asan_build() {
    local output="$1"
    shift
    if ! "$clang" "${asan_flags[@]}" "$@" -o "$output" -lpthread -lm 2>"$output.log"; then
        cat "$output.log" >&2
        exit 1
    fi
}
# The kernels compiled once for bounds and placement: packed.c alone takes minutes under ASan.
kernel_objects=()
for source in packed pool kernels; do
    "$clang" "${asan_flags[@]}" -c "$kernels/$source.c" -o "$out/$source.o"
    kernel_objects+=("$out/$source.o")
done
asan_build "$out/bounds" "${kernel_objects[@]}" "$root/Tests/kernels/bounds.c"
variants=(portable avx2 avx512_tiles_on_avx2)
# The kernels ignore a RECUR_KERNELS the CPU cannot run (and bounds then refuses to compare), so
# avx512 is asked for only where the CPU has what its cpu_runs check requires.
if grep -qw avx512f /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then variants+=(avx512); fi
for variant in "${variants[@]}"; do
    RECUR_KERNELS=$variant ASAN_OPTIONS=detect_leaks=1 "$out/bounds" >"$out/$variant.txt"
done
cases=$(wc -l <"$out/avx2.txt")
for variant in "${variants[@]:2}"; do
    if ! cmp -s "$out/avx2.txt" "$out/$variant.txt"; then
        diff "$out/avx2.txt" "$out/$variant.txt" | head -5 >&2
        echo "kernels: the avx2 and $variant variants disagree" >&2
        exit 1
    fi
done
asan_build "$out/copy" "$out/kernels.o" "$root/Tests/kernels/copy.c"
copies=$(ASAN_OPTIONS=detect_leaks=1 "$out/copy")
asan_build "$out/widen" "${kernel_objects[@]}" "$root/Tests/kernels/widen.c"
for variant in "${variants[@]}"; do
    halves=$(RECUR_KERNELS=$variant ASAN_OPTIONS=detect_leaks=1 "$out/widen")
done
# Where the pool's workers may run; it needs two CPUs, and says "not run" on fewer rather than pass.
asan_build "$out/placement" "${kernel_objects[@]}" "$root/Tests/kernels/placement.c"
placement="workers kept off the caller's CPU, none started when confined to one, woken by one caller's back-to-back small calls only"
for mode in "" confined burst; do
    status=0
    "$out/placement" $mode || status=$?
    if [ $status -eq 2 ]; then
        placement="placement not run (fewer than two CPUs)"
    elif [ $status -ne 0 ]; then
        echo "kernels: the pool's placement or waking is wrong${mode:+ ($mode)}" >&2
        exit 1
    fi
done
activations=(-O2 -fno-math-errno -Wno-psabi "$root/Tests/kernels/activations.c" -lm)
builds=(portable)
"$clang" "${activations[@]}" -o "$out/activations_portable"
# The FMA build runs only where the CPU has AVX2 and FMA, as the avx2 variant does.
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    "$clang" -mavx2 -mfma "${activations[@]}" -o "$out/activations_fma"
    builds+=(fma)
fi
pids=()
for build in "${builds[@]}"; do
    "$out/activations_$build" >"$out/activations_$build.txt" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for build in "${builds[@]}"; do sed "s/^/activations ($build): /" "$out/activations_$build.txt"; done
if [ $status -ne 0 ]; then
    echo "kernels: the activations fail their bounds" >&2
    exit 1
fi
echo "kernels: $cases cases clean under AddressSanitizer in ${#variants[@]} variants (${variants[*]}); ${variants[*]:1} agree bit for bit; activations within bounds (${builds[*]}); $copies copies exact; $halves halves widened exactly in each variant; $placement"
