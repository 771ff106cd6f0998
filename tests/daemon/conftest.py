"""Starts the real recurd binary on a free loopback port with the golden models, for pytest.

The binary is $RECURD when set, else the release build (built here if needed: a no-op when
scripts/test.sh has built it already). Golden cases come from $RECUR_GOLDEN_DIR, else
../shared/golden beside the repository.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(os.environ.get("RECUR_GOLDEN_DIR", ROOT.parent / "shared" / "golden"))
GOLDEN_CASES = [c["name"] for c in json.loads((GOLDEN / "index.json").read_text())["cases"]]
SAFETENSORS_DTYPES = {"F32": np.float32, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """Tensors of a safetensors file as numpy arrays (an independent reader, not Recur's)."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + start:8 + n + end], dtype=SAFETENSORS_DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return out


def architecture(path):
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(json.loads(data[8:8 + n])["__metadata__"]["recur"])


def golden_case(name):
    """(inputs, expected) of a golden case, by tensor name."""
    tensors = read_safetensors(GOLDEN / name / "case.safetensors")
    inputs = {k: v for k, v in tensors.items() if not k.startswith("expected.")}
    expected = {k[len("expected."):]: v for k, v in tensors.items() if k.startswith("expected.")}
    return inputs, expected


def recurd_binary():
    if "RECURD" in os.environ:
        return os.environ["RECURD"]
    subprocess.run(["swift", "build", "-c", "release", "--product", "recurd"], cwd=ROOT, check=True)
    bin_dir = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.strip()
    return str(Path(bin_dir) / "recurd")


def recur_cli_binary():
    if "RECUR_CLI" in os.environ:
        return os.environ["RECUR_CLI"]
    return str(Path(recurd_binary()).parent / "recur-cli")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_model(path, arch, tensors):
    """A model file: float32 tensors plus the architecture as __metadata__["recur"]."""
    header, offset = {"__metadata__": {"recur": json.dumps(arch)}}, 0
    for name, array in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    data = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in tensors.values())
    Path(path).write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)


def inline(array):
    array = np.asarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": array.tolist()}


def decode_tensor(entry, frames):
    dtype = np.dtype(entry["dtype"])
    if "frame" in entry:
        return np.frombuffer(frames[entry["frame"] - 1], dtype=dtype).reshape(entry["shape"])
    return np.array(entry["data"], dtype=dtype).reshape(entry["shape"])


class Client:
    """A REQ client; `call` returns (header, payload frames) or raises zmq.Again on time-out."""

    def __init__(self, endpoint, timeout=20.0, curve=None):
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
        if curve:
            server_public, client_public, client_secret = curve
            self.socket.curve_serverkey = server_public
            self.socket.curve_publickey = client_public
            self.socket.curve_secretkey = client_secret
        self.socket.connect(endpoint)

    def raw(self, frames):
        self.socket.send_multipart(frames)
        reply = self.socket.recv_multipart()
        return json.loads(reply[0]), reply[1:]

    def call(self, header, frames=()):
        return self.raw([json.dumps(header).encode()] + list(frames))

    def ok(self, header, frames=()):
        reply, payload = self.call(header, frames)
        assert reply["ok"] is True, reply
        return reply, payload

    def error(self, header, frames=()):
        reply, _ = self.call(header, frames)
        assert reply["ok"] is False, reply
        return reply["error"]["code"], reply["error"]["message"]

    def infer(self, model, inputs, binary=True, **extra):
        """Outputs of `infer` as numpy arrays; inputs sent as binary frames when `binary`."""
        header = {"op": "infer", "model": model, "binary": binary, "inputs": {}, **extra}
        frames = []
        for name, array in inputs.items():
            array = np.ascontiguousarray(array)
            if binary:
                frames.append(array.tobytes())
                header["inputs"][name] = {"dtype": str(array.dtype), "shape": list(array.shape), "frame": len(frames)}
            else:
                header["inputs"][name] = inline(array)
        reply, payload = self.ok(header, frames)
        return {name: decode_tensor(entry, payload) for name, entry in reply["outputs"].items()}

    def close(self):
        self.socket.close(linger=0)


class Daemon:
    def __init__(self, tmp_path, *options, models=GOLDEN_CASES, prepare=None):
        self.models_dir = tmp_path / f"models-{free_port()}"
        self.models_dir.mkdir()
        for name in models:
            shutil.copy(GOLDEN / name / "model.safetensors", self.models_dir / f"{name}.safetensors")
        if prepare:
            prepare(self.models_dir)  # more files in the models directory, before recurd reads it
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.log = open(tmp_path / f"recurd-{self.port}.log", "w+")
        self.process = subprocess.Popen(
            [recurd_binary(), "--bind", self.endpoint, "--models", str(self.models_dir), *options],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.curve = None

    def wait_ready(self, curve=None):
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.process.poll() is None, f"recurd exited with {self.process.returncode}: {self.log_text()}"
            client = Client(self.endpoint, timeout=0.5, curve=curve)
            try:
                client.ok({"op": "ping"})
                return self
            except zmq.Again:
                pass
            finally:
                client.close()
        raise TimeoutError("recurd did not answer ping: " + self.log_text())

    def client(self, **options):
        return Client(self.endpoint, **options)

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout=30):
        """SIGTERM, and the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.log.close()


@pytest.fixture
def start_daemon(tmp_path):
    """Starts recurd with extra options; each one is stopped at the end and must exit 0."""
    started = []

    def start(*options, models=GOLDEN_CASES, ready=True, prepare=None):
        daemon = Daemon(tmp_path, *options, models=models, prepare=prepare)
        started.append(daemon)
        return daemon.wait_ready() if ready else daemon

    yield start
    for daemon in started:
        already = daemon.process.poll()
        code = daemon.stop()
        assert already is not None or code == 0, f"recurd exited with {code}: {daemon.log_text()}"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """One recurd with every golden model, shared by a test module, checked to exit 0."""
    d = Daemon(tmp_path_factory.mktemp("recurd")).wait_ready()
    yield d
    assert d.stop() == 0, d.log_text()


@pytest.fixture
def client(daemon):
    c = daemon.client()
    yield c
    c.close()
