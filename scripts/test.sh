#!/usr/bin/env bash
# Runs every test of the project: Swift (engine, CLI), C (API, under valgrind), Python (binding,
# daemon over ZeroMQ, benchmark harness), each also through layer-type plugins. Assumes scripts/setup.sh
# has run.
set -euo pipefail
cd "$(dirname "$0")/.."

# pytest over one folder (with $PYTHON, default python3); collecting no tests (exit status 5) fails too.
pytest_collecting() {
    local status=0
    "${PYTHON:-python3}" -m pytest -q -p no:cacheprovider "$1" || status=$?
    if ((status == 5)); then
        echo "pytest collected no tests in $1" >&2
        exit 1
    fi
    ((status == 0)) || exit "$status"
}

# The golden cases (../shared/golden, computed with PyTorch), found once for every stage below:
# $RECUR_GOLDEN_DIR when set; else ../shared/golden beside this checkout; else, for a clone of a local
# repository (git clone . "$(mktemp -d)"), ../shared/golden beside the repository it was cloned from.
# None found is an error here, not a failure in each stage.
golden_dir() {
    local origin
    if [ -n "${RECUR_GOLDEN_DIR:-}" ]; then echo "$RECUR_GOLDEN_DIR"; return; fi
    if [ -f ../shared/golden/index.json ]; then (cd ../shared/golden && pwd); return; fi
    origin="$(git remote get-url origin 2>/dev/null || true)"
    if [ -n "$origin" ] && [ -f "$origin/../shared/golden/index.json" ]; then (cd "$origin/../shared/golden" && pwd); return; fi
    echo "no golden cases: ../shared/golden is not beside $(pwd)${origin:+ nor beside $origin}; set RECUR_GOLDEN_DIR" >&2
    exit 1
}
RECUR_GOLDEN_DIR="$(golden_dir)"
export RECUR_GOLDEN_DIR
echo "== golden cases: $RECUR_GOLDEN_DIR"

echo "== swift build (release: librecur.so, recurd, recur-cli)"
swift build -c release

echo "== kernel code: each variant's matrix-product tile held in registers (whatever this CPU runs)"
python3 scripts/check_kernel_codegen.py "$(dirname "$(command -v swift)")/clang"

echo "== kernels under AddressSanitizer, every variant, exact buffer sizes (Tests/kernels)"
bash Tests/kernels/run.sh

echo "== plugins (bindings/c/plugins: the example; Tests/plugins: one per refusal), used by every stage below"
make -s -C bindings/c/plugins
make -s -C Tests/plugins

echo "== swift test"
swift test

# Every kernel variant on the recurrent, golden and batching cases: the portable code (CPUs without
# AVX2), AVX2, and AVX-512's tile shapes in AVX2 instructions (its code paths on any x86-64); the
# plain run above used the fastest variant this CPU has, AVX-512 where there is one.
for kernels in portable avx2 avx512_tiles_on_avx2; do
    echo "== swift test, RECUR_KERNELS=$kernels, on the recurrent, golden and batching cases"
    RECUR_KERNELS=$kernels swift test --filter 'RecurrentTests|GoldenTests|BatchingTests'
done

echo "== C API (Tests/c: recur.h as C11 and C++17, librecur.so tests, then under valgrind; bindings/c example)"
make -s -C Tests/c check
make -s -C bindings/c run >/dev/null
make -s -C Tests/c valgrind

echo "== daemon tests (pytest over pyzmq against the release recurd)"
bin_dir="$(swift build -c release --show-bin-path)"
daemon_log="$(mktemp)"
RECURD="$bin_dir/recurd" RECUR_CLI="$bin_dir/recur-cli" python3 -m pytest -q -p no:cacheprovider tests/daemon 2>&1 | tee "$daemon_log"
# pytest exits 5 when it collects nothing; also insist that tests passed and none were skipped.
if ! grep -Eq '^[0-9]+ passed' "$daemon_log" || grep -Eq '[0-9]+ (skipped|xfailed|deselected)' "$daemon_log"; then
    echo "daemon tests: none passed, or some were skipped" >&2
    exit 1
fi
rm -f "$daemon_log"

echo "== python binding (pip install ./bindings/python into a fresh venv, pytest through librecur.so and recurd)"
# A new virtual environment that sees the machine's numpy, pyzmq and pytest; pip builds and installs
# the package there as a user's `pip install` does (isolated build), so the tests exercise the
# package as installed, not the source tree.
python_venv=.build/python-venv
rm -rf "$python_venv"
python3 -m venv --system-site-packages --without-pip "$python_venv"
python3 -m pip --python "$python_venv/bin/python" install -q --disable-pip-version-check --root-user-action=ignore \
    "./bindings/python[client]"
PYTHON="$python_venv/bin/python" RECUR_LIBRARY="$bin_dir/librecur.so" RECURD="$bin_dir/recurd" \
    RECUR_EXPECT_INSTALLED="$python_venv" pytest_collecting bindings/python/tests

echo "== benchmark harness (bench/tests: its own logic, numpy and librecur.so only; the benchmark itself is not run)"
RECUR_LIBRARY="$bin_dir/librecur.so" pytest_collecting bench/tests

echo "== demo (the README's main command, stopping after its client call)"
demo_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RECUR_ENDPOINT="tcp://127.0.0.1:$demo_port" bash scripts/demo.sh --once
