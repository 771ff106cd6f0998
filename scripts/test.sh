#!/usr/bin/env bash
# Runs every test of the project: Swift (engine, CLI), C (API, under valgrind), Python (binding,
# daemon over ZeroMQ). Assumes scripts/setup.sh has run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== swift build (release: librecur.so, recurd, recur-cli)"
swift build -c release

echo "== swift test"
swift test

echo "== C API (Tests/c: recur.h as C11 and C++17, librecur.so tests, then under valgrind; bindings/c example)"
make -s -C Tests/c check
make -s -C bindings/c run >/dev/null
make -s -C Tests/c valgrind
