"""Writes Fixtures/plugins/<case>.model.safetensors and <case>.case.safetensors: models made of the
example plugin's layer types (bindings/c/plugins) with random weights, inputs, and the outputs
computed by the numpy reference (bindings/c/plugins/reference.py), as "expected.<name>".
The Swift and C tests run the plugin through Recur on these. Run from anywhere:
    python3 Tests/RecurTests/Fixtures/make_plugin_fixtures.py
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "bindings" / "python"), str(ROOT / "bindings" / "c" / "plugins")]
import reference  # noqa: E402
from recur import save, save_tensors  # noqa: E402

OUT = Path(__file__).resolve().parent / "plugins"
rng = np.random.default_rng(2026)


def uniform(*shape, scale=0.5):
    return rng.uniform(-scale, scale, shape).astype(np.float32)


def write(case, arch, weights, inputs, expected):
    OUT.mkdir(exist_ok=True)
    save(OUT / f"{case}.model.safetensors", arch, weights)
    tensors = dict(inputs)
    tensors.update({f"expected.{k}": np.asarray(v, dtype=np.float32) for k, v in expected.items()})
    save_tensors(OUT / f"{case}.case.safetensors", tensors)


def mgu_norm():
    """mgu (lengths, initial state) → layer_norm → linear, per step."""
    B, T, F, H, O = 3, 7, 5, 6, 3
    enc = {"weight_ih": uniform(2 * H, F), "weight_hh": uniform(2 * H, H), "bias_ih": uniform(2 * H), "bias_hh": uniform(2 * H)}
    norm = {"weight": uniform(H, scale=1.0) + 1, "bias": uniform(H)}
    head = {"weight": uniform(O, H), "bias": uniform(O)}
    x, lengths, h0 = uniform(B, T, F, scale=1.0), np.array([7, 4, 1], dtype=np.int64), uniform(1, B, H)
    y, h_n = reference.mgu(x, enc, lengths, h0[0])
    y = reference.zero_padding(y, lengths)
    y = reference.zero_padding(reference.layer_norm(y, norm["weight"], norm["bias"], eps=1e-3), lengths)
    y = reference.zero_padding(y @ head["weight"].T.astype(np.float64) + head["bias"], lengths)
    arch = {"format": 1, "name": "mgu_norm", "input": {"kind": "features", "size": F}, "layers": [
        {"name": "enc", "type": "mgu", "input_size": F, "hidden_size": H},
        {"name": "norm", "type": "layer_norm", "normalized_shape": H, "eps": 1e-3},
        {"name": "head", "type": "linear", "in_features": H, "out_features": O}]}
    weights = {f"enc.{k}": v for k, v in enc.items()} | {f"norm.{k}": v for k, v in norm.items()} | {f"head.{k}": v for k, v in head.items()}
    write("mgu_norm", arch, weights, {"input": x, "lengths": lengths, "enc.h0": h0}, {"output": y, "enc.h_n": h_n[None]})


def peephole_bidirectional():
    """bidirectional peephole_lstm without bias (lengths, initial h and c) → pool final_state → layer_norm."""
    B, T, F, H = 3, 6, 4, 5
    directions = [{"weight_ih": uniform(4 * H, F), "weight_hh": uniform(4 * H, H), "weight_peephole": uniform(3, H)} for _ in range(2)]
    x, lengths = uniform(B, T, F, scale=1.0), np.array([6, 2, 5], dtype=np.int64)
    h0, c0 = uniform(2, B, H), uniform(2, B, H)
    results = [reference.peephole_lstm(x, directions[d], lengths, h0[d], c0[d], reverse=d == 1) for d in range(2)]
    h_n = np.stack([r[1] for r in results])
    c_n = np.stack([r[2] for r in results])
    pooled = np.concatenate([h_n[0], h_n[1]], axis=1)
    arch = {"format": 1, "name": "peephole_bidirectional", "input": {"kind": "features", "size": F}, "layers": [
        {"name": "enc", "type": "peephole_lstm", "input_size": F, "hidden_size": H, "bias": False, "bidirectional": True},
        {"name": "pool", "type": "pool", "mode": "final_state"},
        {"name": "norm", "type": "layer_norm", "normalized_shape": 2 * H, "elementwise_affine": False}]}
    weights = {f"enc.{k}": v for k, v in directions[0].items()} | {f"enc.{k}_reverse": v for k, v in directions[1].items()}
    write("peephole_bidirectional", arch, weights, {"input": x, "lengths": lengths, "enc.h0": h0, "enc.c0": c0},
          {"output": reference.layer_norm(pooled), "enc.h_n": h_n, "enc.c_n": c_n})


mgu_norm()
peephole_bidirectional()
