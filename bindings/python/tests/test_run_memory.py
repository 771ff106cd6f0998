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
# sets glibc's trim threshold to twice that (its dynamic threshold), below the buffers one pass of
# this Elman RNN frees together (four of 1.6 MB: input, workspace, output and the result's copy).
# Before the buffers were kept, each pass then faulted 777 pages in.
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


def test_passes_of_the_same_shapes_do_not_fault_pages_in(tmp_path):
    path = tmp_path / "rnn.safetensors"
    rng = np.random.default_rng(0)
    size = 128
    tensors = {f"rnn.{name}_l0": rng.uniform(-0.08, 0.08, shape).astype(np.float32)
               for name, shape in [("weight_ih", (size, size)), ("weight_hh", (size, size)),
                                   ("bias_ih", (size,)), ("bias_hh", (size,))]}
    arch = {"format": 1, "input": {"kind": "features", "size": size},
            "layers": [{"name": "rnn", "type": "rnn", "input_size": size, "hidden_size": size}]}
    recur.save(path, arch, tensors)
    environment = dict(os.environ, PYTHONPATH=str(Path(recur.__file__).resolve().parents[1]))
    result = subprocess.run([sys.executable, "-c", MEASURE, str(path)], env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    faults = float(result.stdout.strip())
    # Python's own small objects may touch a page now and then; the buffers were 777 pages a pass.
    assert faults < 20, f"{faults:.1f} page faults a pass"
