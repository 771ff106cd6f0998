"""Fixtures: a running recurd, a client of it, and the in-process and remote transports."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import recur
from support import GOLDEN_CASES, REPO, Local, Remote, free_port, model_path


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    """A recurd serving every golden model under its case name, on a free loopback port.
    Yields the endpoint; stops it with SIGTERM afterwards and checks that it exits 0."""
    binary = Path(os.environ.get("RECURD") or REPO / ".build" / "release" / "recurd")
    assert binary.is_file(), f"recurd not found at {binary} (swift build -c release, or set RECURD)"
    models = tmp_path_factory.mktemp("models")
    for case in GOLDEN_CASES:
        (models / f"{case}.safetensors").symlink_to(model_path(case))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    process = subprocess.Popen([str(binary), "--bind", endpoint, "--models", str(models)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"recurd exited with {process.returncode}: {process.stdout.read().decode()}"
            try:
                with recur.Client(endpoint, timeout=0.5) as client:
                    client.ping()
                break
            except recur.RecurError:
                assert time.monotonic() < deadline, "recurd did not answer ping within 30 s"
        yield endpoint
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        assert code == 0, f"recurd exited with {code} on SIGTERM"


@pytest.fixture
def client(daemon):
    with recur.Client(daemon, timeout=20.0) as client:
        yield client


@pytest.fixture(params=["local", "remote"])
def transport(request):
    """Each test using it runs twice: through librecur.so and through recurd."""
    if request.param == "local":
        local = Local()
        yield local
        local.close()
    else:
        yield Remote(request.getfixturevalue("client"))
