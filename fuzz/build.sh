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
mkdir -p "$out/modules" "$out/obj"
targets=("$@")
if ((${#targets[@]} == 0)); then
    for file in "$root"/fuzz/targets/*.swift; do
        name="$(basename "$file" .swift)"
        [[ "$name" == Support ]] || targets+=("$name")
    done
fi

# A C target of Package.swift, as SwiftPM builds it: its objects, and a module map so Swift can
# import it. Every C target the engine and the C API depend on.
c_objects=()
c_target() {
    local name="$1" flags="$2"
    mkdir -p "$out/modules/$name"
    cat >"$out/modules/$name/module.modulemap" <<EOF
module $name {
    umbrella "$root/Sources/$name/include"
    export *
}
EOF
    for source in "$root/Sources/$name"/*.c; do
        local object="$out/obj/$name-$(basename "$source" .c).o"
        # shellcheck disable=SC2086
        "$clang" -c -O2 -g $flags -fsanitize=fuzzer-no-link,address -I "$root/Sources/$name/include" "$source" -o "$object"
        c_objects+=("$object")
    done
}
for target in CRecurKernels CRecurPlugin; do
    [[ -d "$root/Sources/$target" ]] && c_target "$target" "-fno-math-errno -march=native -Wno-psabi"
done
engine_objects=("${c_objects[@]}")
c_objects=()
c_target CRecurAPI ""
api_objects=("${c_objects[@]}")

# The engine as a static library with its module interface.
mapfile -t engine_sources < <(find "$root/Sources/Recur" -name '*.swift' | sort)
swiftc -parse-as-library -swift-version 6 -package-name recur -module-name Recur -O -g -sanitize="$sanitize" \
    -I "$out/modules" -emit-module -emit-module-path "$out/modules/Recur.swiftmodule" \
    -emit-library -static -o "$out/libRecur.a" "${engine_sources[@]}"

# Training over the engine, for the train target.
if [[ " ${targets[*]} " == *" train "* ]]; then
    mapfile -t training_sources < <(find "$root/Sources/RecurTraining" -name '*.swift' | sort)
    swiftc -parse-as-library -swift-version 6 -package-name recur -module-name RecurTraining -O -g -sanitize="$sanitize" \
        -I "$out/modules" -emit-module -emit-module-path "$out/modules/RecurTraining.swiftmodule" \
        -emit-library -static -o "$out/libRecurTraining.a" "${training_sources[@]}"
fi

# Extra sources (and objects) a target compiles into its own module.
extra_sources() {
    case "$1" in
        request) echo "$root/Sources/RecurDaemon/Wire.swift" ;;
        capi) find "$root/Sources/RecurC" -name '*.swift' | sort; printf '%s\n' "${api_objects[@]}" ;;
        train) echo "$out/libRecurTraining.a" ;;
    esac
}

for target in "${targets[@]}"; do
    echo "== fuzz target $target"
    # shellcheck disable=SC2046
    swiftc -parse-as-library -swift-version 6 -package-name recur -module-name "Fuzz_$target" -O -g -sanitize="$sanitize" \
        -I "$out/modules" "$root/fuzz/targets/$target.swift" "$root/fuzz/targets/Support.swift" \
        $(extra_sources "$target") "$out/libRecur.a" "${engine_objects[@]}" -ldl -o "$out/$target"
done
