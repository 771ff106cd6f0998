#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/targets into fuzz/.build/: the engine (Sources/Recur and
# its C kernels) compiled once with coverage instrumentation and AddressSanitizer, then one
# executable per target. Needs only the Swift toolchain (its clang carries libFuzzer).
# Usage: fuzz/build.sh [TARGET ...]   (default: every target)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/fuzz/.build"
swift_bin="$(dirname "$(command -v swiftc)")"
clang="${CLANG:-$swift_bin/clang}"
sanitize="fuzzer,address"
mkdir -p "$out/modules/CRecurKernels" "$out/obj"

# The C kernels, as SwiftPM builds them, plus a module map so Swift can import them.
cat >"$out/modules/CRecurKernels/module.modulemap" <<EOF
module CRecurKernels {
    umbrella "$root/Sources/CRecurKernels/include"
    export *
}
EOF
kernel_objects=()
for source in "$root"/Sources/CRecurKernels/*.c; do
    object="$out/obj/$(basename "$source" .c).o"
    "$clang" -c -O2 -g -fno-math-errno -march=native -fsanitize=fuzzer-no-link,address \
        -I "$root/Sources/CRecurKernels/include" "$source" -o "$object"
    kernel_objects+=("$object")
done

# The engine as a static library with its module interface.
mapfile -t engine_sources < <(find "$root/Sources/Recur" -name '*.swift' | sort)
swiftc -parse-as-library -swift-version 6 -module-name Recur -O -g -sanitize="$sanitize" \
    -I "$out/modules" -emit-module -emit-module-path "$out/modules/Recur.swiftmodule" \
    -emit-library -static -o "$out/libRecur.a" "${engine_sources[@]}"

# The C side of the C API (recur.h's types, the thread-local last error), for the capi target.
mkdir -p "$out/modules/CRecurAPI"
cat >"$out/modules/CRecurAPI/module.modulemap" <<EOF
module CRecurAPI {
    umbrella "$root/Sources/CRecurAPI/include"
    export *
}
EOF
"$clang" -c -O2 -g -fsanitize=fuzzer-no-link,address -I "$root/Sources/CRecurAPI/include" \
    "$root/Sources/CRecurAPI/support.c" -o "$out/obj/recur_api_support.o"

# Extra sources (and objects) a target compiles into its own module.
extra_sources() {
    case "$1" in
        request) echo "$root/Sources/RecurDaemon/Wire.swift" ;;
        capi) find "$root/Sources/RecurC" -name '*.swift' | sort; echo "$out/obj/recur_api_support.o" ;;
    esac
}

targets=("$@")
if ((${#targets[@]} == 0)); then
    for file in "$root"/fuzz/targets/*.swift; do
        name="$(basename "$file" .swift)"
        [[ "$name" == Support ]] || targets+=("$name")
    done
fi
for target in "${targets[@]}"; do
    echo "== fuzz target $target"
    # shellcheck disable=SC2046
    swiftc -parse-as-library -swift-version 6 -module-name "Fuzz_$target" -O -g -sanitize="$sanitize" \
        -I "$out/modules" "$root/fuzz/targets/$target.swift" "$root/fuzz/targets/Support.swift" \
        $(extra_sources "$target") "$out/libRecur.a" "${kernel_objects[@]}" -o "$out/$target"
done
