#!/usr/bin/env bash
# Runs every test of the project: Swift (engine, CLI), C (API, under valgrind), Python (binding,
# daemon over ZeroMQ). Assumes scripts/setup.sh has run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== swift build (release: librecur.so, recurd, recur-cli)"
swift build -c release

echo "== swift test"
swift test
