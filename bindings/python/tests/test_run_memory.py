"""Passes of the same shapes allocate nothing large after the first: the library keeps its large
buffers (workspaces, outputs, its copies of inputs and results) for the next pass, rather than
leaving it to malloc, which here gave them back to the system after every pass and faulted every
page in again on the next."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import recur

# In a process of its own, whose malloc state the test sets: a freed block the size of the input
# sets glibc's trim threshold to twice that (its dynamic threshold), below the buffers one pass of a
# two-layer Elman RNN frees together (the lower layer's output, the workspace and the result, 1.6 MB
# and more each). Before the buffers were kept, each pass then faulted 777 pages in (785 with the
# keeping switched off, 2026-12-04; one layer frees too little since the C API reads the input in
# place and writes the output into the result).
MEASURE = """
import resource, sys
import numpy as np, recur
model = recur.Model(sys.argv[1])
x = np.random.default_rng(0).standard_normal((32, 100, 128), dtype=np.float32)
bytearray(x.nbytes)
for _ in range(3):
    model.run(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    model.run(x)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""

# The same passes, then the kept buffers given back: the next pass faults their pages in again, and
# the passes after it fault nothing, as before.
RELEASE = """
import resource, sys
import numpy as np, recur
model = recur.Model(sys.argv[1])
x = np.random.default_rng(0).standard_normal((32, 100, 128), dtype=np.float32)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    model.run(x)
released, again = recur.release_kept_buffers(), recur.release_kept_buffers()
before = faults()
model.run(x)
first = faults() - before
before = faults()
for _ in range(5):
    model.run(x)
print(released, again, first, (faults() - before) / 5, x.nbytes)
"""


def rnn_model(tmp_path, layers=1):
    path = tmp_path / "rnn.safetensors"
    rng = np.random.default_rng(0)
    size = 128
    tensors = {f"rnn.{name}_l{layer}": rng.uniform(-0.08, 0.08, shape).astype(np.float32)
               for layer in range(layers)
               for name, shape in [("weight_ih", (size, size)), ("weight_hh", (size, size)),
                                   ("bias_ih", (size,)), ("bias_hh", (size,))]}
    arch = {"format": 1, "input": {"kind": "features", "size": size},
            "layers": [{"name": "rnn", "type": "rnn", "input_size": size, "hidden_size": size, "num_layers": layers}]}
    recur.save(path, arch, tensors)
    return path


def run_alone(script, path):
    """The script's printed line, from a process of its own."""
    environment = dict(os.environ, PYTHONPATH=str(Path(recur.__file__).resolve().parents[1]))
    result = subprocess.run([sys.executable, "-c", script, str(path)], env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_passes_of_the_same_shapes_do_not_fault_pages_in(tmp_path):
    faults = float(run_alone(MEASURE, rnn_model(tmp_path, layers=2)))
    # Python's own small objects may touch a page now and then; the buffers were 777 pages a pass.
    assert faults < 20, f"{faults:.1f} page faults a pass"


def test_released_buffers_go_back_to_the_system(tmp_path):
    released, again, first, steady, input_bytes = map(float, run_alone(RELEASE, rnn_model(tmp_path)).split())
    # Kept after a pass: the layer's workspace, whose input projection alone is the input's size (the
    # input is read in place and the output written straight into the result, which the caller holds).
    assert released >= input_bytes, f"released {released:.0f} bytes"
    assert again == 0
    # Back with the system, their pages fault in again on the next pass (one buffer is 400 pages).
    assert first > input_bytes / 4096, f"{first:.0f} page faults on the pass after the release"
    assert steady < 20, f"{steady:.1f} page faults a pass after that"
