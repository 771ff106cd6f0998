"""Helpers shared by the tests: the golden cases, tolerance, and both transports behind one shape."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np

import recur
REPO = Path(__file__).resolve().parents[3]
GOLDEN = Path(os.environ.get("RECUR_GOLDEN_DIR") or REPO.parent / "shared" / "golden")


def golden_case_names() -> list[str]:
    index = GOLDEN / "index.json"
    if not index.is_file():
        raise RuntimeError(f"golden cases not found at {GOLDEN} (set RECUR_GOLDEN_DIR)")
    return [case["name"] for case in json.loads(index.read_text())["cases"]]


GOLDEN_CASES = golden_case_names()


def model_path(case: str) -> Path:
    return GOLDEN / case / "model.safetensors"


def load_case(case: str) -> dict:
    """Inputs and PyTorch's expected outputs of a golden case (model-format.md names)."""
    tensors = recur.load_tensors(GOLDEN / case / "case.safetensors")
    return {
        "input": tensors["input"],
        "lengths": tensors.get("lengths"),
        "states": {k: v for k, v in tensors.items() if k.endswith((".h0", ".c0"))} or None,
        "expected": {k.removeprefix("expected."): v for k, v in tensors.items() if k.startswith("expected.")},
    }


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    """The engine's tolerance against PyTorch (Tests/RecurTests/Support.swift): each element within
    max(1e-5, 1e-4 · |expected|)."""
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    allowed = np.maximum(1e-5, 1e-4 * np.abs(expected))
    worst = np.max(np.abs(actual - expected) / allowed, initial=0)
    assert worst <= 1, f"{what}: off by {worst:.1f}× the tolerance"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def start_daemon(binary: Path, models: Path, *options: str, endpoint: str | None = None, **client_keys):
    """recurd on ``endpoint`` (default: a free loopback port) until the block ends (ready once it
    answers a ping made with ``client_keys``); then SIGTERM, on which it must exit 0. Yields the
    endpoint."""
    log = models.parent / f"recurd-{models.name}.log"
    given = endpoint
    for _ in range(1 if given else 3):  # another process may take a probed port before recurd binds it
        endpoint = given or f"tcp://127.0.0.1:{free_port()}"
        with open(log, "wb") as output:
            process = subprocess.Popen([str(binary), "--bind", endpoint, "--models", str(models), *options],
                                       stdout=output, stderr=subprocess.STDOUT)
        if _answers_ping(process, endpoint, client_keys, log):
            break
    else:
        raise AssertionError(f"recurd exited with {process.returncode} at start: {log.read_text()}")
    try:
        yield endpoint
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
    assert code == 0, f"recurd exited with {code} on SIGTERM: {log.read_text()}"


def _answers_ping(process: subprocess.Popen, endpoint: str, client_keys: dict, log: Path) -> bool:
    """True once recurd answers, False if it exits first; fails after 30 s."""
    deadline = time.monotonic() + 30
    while process.poll() is None:
        try:
            with recur.Client(endpoint, timeout=0.5, **client_keys) as client:
                client.ping()
            return True
        except recur.RecurError as error:
            assert error.code == "timeout", error
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"recurd did not answer ping within 30 s: {log.read_text()}")
    return False


class Local:
    """The in-process transport, with the remote one's call shapes (a model is named by its case)."""

    def __init__(self):
        self.models = {}

    def model(self, case):
        if case not in self.models:
            self.models[case] = recur.Model(model_path(case))
        return self.models[case]

    def run(self, case, x, lengths=None, states=None):
        return self.model(case).run(x, lengths=lengths, states=states)

    def session(self, case):
        return self.model(case).session()

    def generate(self, case, prompt, max_tokens, **sampling):
        return self.model(case).generate(prompt, max_tokens, **sampling)

    def close(self):
        for model in self.models.values():
            model.close()


class Remote:
    def __init__(self, client):
        self.client = client

    def run(self, case, x, lengths=None, states=None):
        return self.client.infer(case, x, lengths=lengths, states=states)

    def session(self, case):
        return self.client.session(case)

    def generate(self, case, prompt, max_tokens, **sampling):
        return self.client.generate(case, prompt, max_tokens, **sampling)
