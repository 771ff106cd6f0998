"""Loading a model needs little more memory than what it keeps: weight matrices are read a block of
rows at a time, each block packed into the kernels' layout as it is read, and tables in half
precision are read a block at a time and kept in half precision."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import recur

# In a process of its own, so the high-water mark is this load's alone: a 1-unit model first (the
# runtime's one-time start-up), then the high-water mark reset and the model loaded.
# From an image (argv[3] "image"), the image is read before the mark is reset: the load's own memory.
# Memory malloc holds free is given back before the mark is reset (malloc_trim), or a load that
# reuses it would not raise the mark.
MEASURE = """
import ctypes, os, sys, recur
recur.Model(sys.argv[1])
image = open(sys.argv[2], "rb").read() if sys.argv[3] == "image" else None
def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024
ctypes.CDLL(None).malloc_trim(ctypes.c_size_t(0))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
model = recur.Model(sys.argv[2]) if image is None else recur.Model.from_bytes(image)
print(status("VmHWM") - before)
"""


def lstm(path: Path, inputs: int, size: int) -> None:
    rng = np.random.default_rng(0)
    tensors = {}
    for name, shape in [("weight_ih", (4 * size, inputs)), ("weight_hh", (4 * size, size)),
                        ("bias_ih", (4 * size,)), ("bias_hh", (4 * size,))]:
        tensors[f"rnn.{name}_l0"] = rng.uniform(-0.05, 0.05, shape).astype(np.float32)
    arch = {"format": 1, "input": {"kind": "features", "size": inputs},
            "layers": [{"name": "rnn", "type": "lstm", "input_size": inputs, "hidden_size": size}]}
    recur.save(path, arch, tensors)


def half_embedding(path: Path, count: int, dimension: int) -> None:
    rng = np.random.default_rng(0)
    arch = {"format": 1, "input": {"kind": "tokens", "vocab_size": count},
            "layers": [{"name": "embed", "type": "embedding", "num_embeddings": count, "embedding_dim": dimension}]}
    recur.save(path, arch, {"embed.weight": rng.uniform(-1, 1, (count, dimension)).astype(np.float16)})


def load_rise(tiny: Path, model: Path, source: str) -> float:
    """MiB the load of `model` from `source` ("file" or "image") adds to the high-water mark."""
    environment = dict(os.environ, PYTHONPATH=str(Path(recur.__file__).resolve().parents[1]))
    result = subprocess.run([sys.executable, "-c", MEASURE, str(tiny), str(model), source], env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return float(result.stdout.strip())


@pytest.mark.parametrize("source", ["file", "image"])
@pytest.mark.parametrize("inputs, size", [(8, 1024), (128, 128)])
def test_loading_matrices_peaks_little_above_the_file(tmp_path, source, inputs, size):
    tiny, model = tmp_path / "tiny.safetensors", tmp_path / "model.safetensors"
    lstm(tiny, 1, 1)
    lstm(model, inputs, size)  # W_hh 16 of the file's 16.2 MiB; W_ih and W_hh a quarter of 0.5 MiB each
    rise, file_mib = load_rise(tiny, model, source), model.stat().st_size / 2**20
    # A matrix decoded whole beside its packed copy would be 2.0x the 16 MiB file and 1.5x the small
    # one, a copy of the image 2.0x; read and packed a block of rows at a time (256 KiB or an eighth
    # of the matrix), the peak is the packed model plus one block (1.03x and 1.08x).
    assert rise / file_mib <= 1.2, f"loading {file_mib:.1f} MiB peaked {rise:.1f} MiB above the baseline ({rise / file_mib:.2f}x)"


@pytest.mark.parametrize("source", ["file", "image"])
def test_loading_a_half_table_peaks_at_its_file(tmp_path, source):
    tiny, model = tmp_path / "tiny.safetensors", tmp_path / "model.safetensors"
    half_embedding(tiny, 2, 1)
    half_embedding(model, 64 * 1024, 128)  # 16 MiB of float16, kept as it is
    rise, file_mib = load_rise(tiny, model, source), model.stat().st_size / 2**20
    # Kept in float32 the table would be 2.0x the file, decoded whole beside its bytes 3.0x.
    assert rise / file_mib <= 1.2, f"loading {file_mib:.1f} MiB peaked {rise:.1f} MiB above the baseline ({rise / file_mib:.2f}x)"


def test_a_half_table_looks_up_its_values(tmp_path):
    path = tmp_path / "model.safetensors"
    half_embedding(path, 1000, 48)
    table = recur.load_tensors(path)["embed.weight"].astype(np.float32)
    ids = np.array([[999, 0, 517], [3, 3, 998]], np.int64)
    with recur.Model(path) as model:
        output = model.run(ids)["output"]
    np.testing.assert_array_equal(output, table[ids])
