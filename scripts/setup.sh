#!/usr/bin/env bash
# Installs what Recur needs on a fresh Debian machine with the Swift toolchain, gcc and Python:
# libzmq (daemon), valgrind, g++ and make (C tests), numpy/pyzmq/pytest (Python binding and daemon
# tests).
# Idempotent; needs root for apt (as on CI and the developers' machines).
set -euo pipefail
need_apt=()
for pkg in libzmq3-dev pkg-config valgrind g++ make; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check numpy pyzmq pytest setuptools
