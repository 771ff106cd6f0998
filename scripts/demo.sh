#!/usr/bin/env bash
# The main job: build Recur, serve the example models (examples/*.safetensors) with recurd on
# tcp://127.0.0.1:5555, and show a client using them over ZeroMQ. recurd keeps serving until
# Ctrl-C; with --once it stops after the client call (CI runs it that way).
set -euo pipefail
cd "$(dirname "$0")/.."
endpoint=${RECUR_ENDPOINT:-tcp://127.0.0.1:5555}

swift build -c release --product recurd >/dev/null
swift build -c release --product recur >/dev/null   # librecur.so, for the Python package
python3 -m pip install -q --disable-pip-version-check ./bindings/python

.build/release/recurd --bind "$endpoint" --models examples --log-level warning &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT

python3 examples/client.py "$endpoint"

if [[ "${1:-}" == "--once" ]]; then
    exit 0
fi
echo
echo "recurd (pid $daemon) is serving examples/ on $endpoint; Ctrl-C stops it."
wait $daemon
