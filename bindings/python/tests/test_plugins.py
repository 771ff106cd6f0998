"""recur.load_plugin: the example plugin (bindings/c/plugins) in-process against the numpy
reference (bindings/c/plugins/reference.py), sessions and threads through its types, and every
refused plugin. Plugins load into the process for good: the example is loaded once per module."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import recur
from support import REPO, assert_close

sys.path.insert(0, str(REPO / "bindings" / "c" / "plugins"))
import reference  # noqa: E402

EXAMPLE = Path(os.environ.get("RECUR_EXAMPLE_PLUGIN") or REPO / "bindings" / "c" / "plugins" / "build" / "librecur_example_layers.so")
TEST_PLUGINS = Path(os.environ.get("RECUR_TEST_PLUGINS") or REPO / ".build" / "test-plugins")
F, H = 3, 4
rng = np.random.default_rng(11)


def uniform(*shape):
    return rng.uniform(-0.7, 0.7, shape).astype(np.float32)


def mgu_weights(prefix="", bias=True):
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
    shapes = [(2 * H, F), (2 * H, H), (2 * H,), (2 * H,)]
    return {f"{name}{prefix}": uniform(*shape) for name, shape in zip(names, shapes)}


@pytest.fixture(scope="module")
def example_plugin():
    recur.load_plugin(EXAMPLE)
    return EXAMPLE


def save_model(tmp_path, name, layers, weights, size=F):
    path = tmp_path / f"{name}.safetensors"
    recur.save(path, {"format": 1, "input": {"kind": "features", "size": size}, "layers": layers}, weights)
    return path


def test_unknown_before_loading_then_known(tmp_path):
    # In a fresh interpreter, so that no earlier test has loaded the plugin.
    path = save_model(tmp_path, "norm", [{"name": "n", "type": "layer_norm", "normalized_shape": F}],
                      {"n.weight": np.ones(F, np.float32), "n.bias": np.zeros(F, np.float32)})
    x = uniform(2, 3, F)
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy, recur\n"
            "try:\n    recur.Model(sys.argv[1])\nexcept recur.RecurError as error:\n    print(error.code, error.message)\n"
            "recur.load_plugin(sys.argv[2])\n"
            "numpy.save(sys.argv[3], recur.Model(sys.argv[1]).run(numpy.load(sys.argv[3]))['output'])\n")
    package = Path(recur.__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code, str(path), str(EXAMPLE), str(tmp_path / "x.npy")],
                            env={**os.environ, "PYTHONPATH": str(package)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("format ") and "unknown type 'layer_norm'" in result.stdout
    assert_close(np.load(tmp_path / "x.npy"), reference.layer_norm(x).astype(np.float32), "layer_norm")


def test_mgu_with_lengths_states_and_both_directions(example_plugin, tmp_path):
    forward, backward = mgu_weights(), mgu_weights("_reverse")
    path = save_model(tmp_path, "bimgu", [
        {"name": "enc", "type": "mgu", "input_size": F, "hidden_size": H, "bidirectional": True},
        {"name": "norm", "type": "layer_norm", "normalized_shape": 2 * H, "eps": 1e-4}],
        {f"enc.{k}": v for k, v in (forward | backward).items()}
        | {"norm.weight": uniform(2 * H) + 1, "norm.bias": uniform(2 * H)})
    weights = recur.load_tensors(path)
    x, lengths, h0 = uniform(4, 6, F), np.array([6, 1, 4, 3]), uniform(2, 4, H)
    with recur.Model(path) as model:
        out = model.run(x, lengths=lengths, states={"enc.h0": h0})
    y_f, h_f = reference.mgu(x, forward, lengths, h0[0])
    y_b, h_b = reference.mgu(x, {k.removesuffix("_reverse"): v for k, v in backward.items()}, lengths, h0[1], reverse=True)
    y = reference.zero_padding(np.concatenate([y_f, y_b], axis=2), lengths)
    expected = reference.zero_padding(reference.layer_norm(y, weights["norm.weight"], weights["norm.bias"], eps=1e-4), lengths)
    assert_close(out["output"], expected.astype(np.float32), "output")
    assert_close(out["enc.h_n"], np.stack([h_f, h_b]).astype(np.float32), "enc.h_n")


def test_session_streams_through_a_plugin_type(example_plugin, tmp_path):
    weights = mgu_weights(bias=False)
    path = save_model(tmp_path, "mgu", [{"name": "enc", "type": "mgu", "input_size": F, "hidden_size": H, "bias": False}],
                      {f"enc.{k}": v for k, v in weights.items()})
    x = uniform(2, 8, F)
    y, h_n = reference.mgu(x, weights)
    with recur.Model(path) as model, model.session() as session:
        parts = [session.step(x[:, a:b]) for a, b in [(0, 5), (5, 6), (6, 8)]]
    assert_close(np.concatenate([p["output"] for p in parts], axis=1), y.astype(np.float32), "chunked output")
    assert_close(parts[-1]["enc.h_n"], h_n[None].astype(np.float32), "chunked h_n")


def test_threads_share_plugin_layers(example_plugin, tmp_path):
    weights = {k: v for k, v in mgu_weights().items()}
    path = save_model(tmp_path, "mgu", [{"name": "enc", "type": "mgu", "input_size": F, "hidden_size": H}],
                      {f"enc.{k}": v for k, v in weights.items()})
    inputs = [uniform(3, 5, F) for _ in range(8)]
    results = [None] * len(inputs)
    with recur.Model(path) as model:
        def work(i):
            for _ in range(20):
                results[i] = model.run(inputs[i])["output"]
        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for x, got in zip(inputs, results):
        assert_close(got, reference.mgu(x, weights)[0].astype(np.float32), "threaded output")


@pytest.mark.parametrize("plugin, code, mention", [
    ("wrong_abi.so", "unsupported", "built for plugin ABI version 2; this Recur speaks version 1"),
    ("no_entry.so", "unsupported", "exports no recur_plugin_init"),
    ("duplicate.so", "invalid_argument", "layer type 'lstm' is already registered"),
    ("failing.so", "unsupported", "refused to load: no licence for this machine"),
    ("malformed.so", "format", "'malformed_type' must have exactly one of forward"),
    ("not_a_library.so", "io", "cannot be loaded"),
    ("missing.so", "io", "No such file"),
])
def test_refused_plugins_change_nothing(tmp_path, plugin, code, mention):
    with pytest.raises(recur.RecurError) as refused:
        recur.load_plugin(TEST_PLUGINS / plugin)
    assert refused.value.code == code and mention in refused.value.message
    assert str(TEST_PLUGINS / plugin) in refused.value.message
    # "fresh_type" (in the duplicate and malformed plugins) stayed unregistered.
    path = save_model(tmp_path, "fresh", [{"name": "f", "type": "fresh_type"}], {}, size=1)
    with pytest.raises(recur.RecurError, match="unknown type 'fresh_type'"):
        recur.Model(path)


def test_loading_the_example_twice_is_a_duplicate(example_plugin):
    with pytest.raises(recur.RecurError) as refused:
        recur.load_plugin(example_plugin)
    assert refused.value.code == "invalid_argument" and "layer type 'mgu' is already registered" in refused.value.message


def test_bad_paths():
    with pytest.raises(recur.RecurError) as refused:
        recur.load_plugin("a\0b.so")
    assert refused.value.code == "invalid_argument"
