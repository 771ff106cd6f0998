"""recurd --plugin: models made of the example plugin's layer types (bindings/c/plugins) served
over ZeroMQ and checked against the numpy reference (bindings/c/plugins/reference.py); every
refused plugin stops the start with a clear message; a plugin's run-time error is one reply's
error. Also `recur --plugin PATH run`."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, read_safetensors, recur_cli_binary, write_model

sys.path.insert(0, str(ROOT / "bindings" / "c" / "plugins"))
import reference  # noqa: E402

EXAMPLE = Path(os.environ.get("RECUR_EXAMPLE_PLUGIN", ROOT / "bindings" / "c" / "plugins" / "build" / "librecur_example_layers.so"))
TEST_PLUGINS = Path(os.environ.get("RECUR_TEST_PLUGINS", ROOT / ".build" / "test-plugins"))
rng = np.random.default_rng(8)


def uniform(*shape):
    return rng.uniform(-0.6, 0.6, shape).astype(np.float32)


F, H = 4, 5
MGU = {"weight_ih": uniform(2 * H, F), "weight_hh": uniform(2 * H, H), "bias_ih": uniform(2 * H), "bias_hh": uniform(2 * H)}
NORM = {"weight": uniform(H) + 1, "bias": uniform(H)}
PEEPHOLE = {"weight_ih": uniform(4 * H, F), "weight_hh": uniform(4 * H, H), "bias_ih": uniform(4 * H),
            "bias_hh": uniform(4 * H), "weight_peephole": uniform(3, H)}


@pytest.fixture(scope="module")
def plugin_models(tmp_path_factory):
    models = tmp_path_factory.mktemp("plugin-models")
    write_model(models / "mgu_norm.safetensors",
                {"format": 1, "input": {"kind": "features", "size": F}, "layers": [
                    {"name": "enc", "type": "mgu", "input_size": F, "hidden_size": H},
                    {"name": "norm", "type": "layer_norm", "normalized_shape": H}]},
                {f"enc.{k}": v for k, v in MGU.items()} | {f"norm.{k}": v for k, v in NORM.items()})
    write_model(models / "peephole.safetensors",
                {"format": 1, "input": {"kind": "features", "size": F}, "layers": [
                    {"name": "cell", "type": "peephole_lstm", "input_size": F, "hidden_size": H}]},
                {f"cell.{k}": v for k, v in PEEPHOLE.items()})
    write_model(models / "picky.safetensors",
                {"format": 1, "input": {"kind": "features", "size": 1}, "layers": [{"name": "p", "type": "picky"}]}, {})
    return models


def serve(daemon, plugin_models, *names):
    """A client of `daemon` with `names` copied into its models directory and loaded."""
    client = daemon.client()
    for name in names:
        path = daemon.models_dir / f"{name}.safetensors"
        path.write_bytes((plugin_models / f"{name}.safetensors").read_bytes())
        client.ok({"op": "load", "model": name, "path": str(path)})
    return client


def test_infer_matches_numpy(start_daemon, plugin_models):
    daemon = start_daemon("--plugin", str(EXAMPLE), "--plugin", str(TEST_PLUGINS / "picky.so"), models=[])
    client = serve(daemon, plugin_models, "mgu_norm", "picky")
    x, lengths, h0 = uniform(3, 6, F), np.array([6, 3, 1]), uniform(1, 3, H)
    outputs = client.infer("mgu_norm", {"input": x, "lengths": lengths, "enc.h0": h0})
    y, h_n = reference.mgu(x, MGU, lengths, h0[0])
    expected = reference.zero_padding(reference.layer_norm(reference.zero_padding(y, lengths), NORM["weight"], NORM["bias"]), lengths)
    np.testing.assert_allclose(outputs["output"], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs["enc.h_n"], h_n[None], rtol=1e-4, atol=1e-5)

    # A plugin's failure at run time answers that request only.
    code, message = client.error({"op": "infer", "model": "picky",
                                  "inputs": {"input": {"dtype": "float32", "shape": [1, 2, 1], "data": [3, 700]}}})
    assert code == "invalid_input" and message == "plugin 'test-plugin': layer 'p' (picky): input 700 is above 100"
    assert client.infer("picky", {"input": np.array([[[3.0]]], np.float32)})["output"].tolist() == [[[3.0]]]
    client.close()


def test_session_streams_through_plugin_state(start_daemon, plugin_models):
    client = serve(start_daemon("--plugin", str(EXAMPLE), models=[]), plugin_models, "peephole")
    x = uniform(2, 7, F)
    y, h_n, c_n = reference.peephole_lstm(x, PEEPHOLE)
    session = client.ok({"op": "session.open", "model": "peephole"})[0]["session"]
    parts = []
    for chunk in (x[:, :3], x[:, 3:4], x[:, 4:]):
        reply, _ = client.ok({"op": "session.step", "session": session, "inputs": {"input": {
            "dtype": "float32", "shape": list(chunk.shape), "data": chunk.tolist()}}})
        parts.append({k: np.array(v["data"], np.float32).reshape(v["shape"]) for k, v in reply["outputs"].items()})
    np.testing.assert_allclose(np.concatenate([p["output"] for p in parts], axis=1), y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(parts[-1]["cell.h_n"], h_n[None], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(parts[-1]["cell.c_n"], c_n[None], rtol=1e-4, atol=1e-5)
    client.close()


def test_without_the_plugin_its_models_do_not_load(start_daemon, plugin_models):
    daemon = start_daemon(models=[])
    path = daemon.models_dir / "mgu_norm.safetensors"
    path.write_bytes((plugin_models / "mgu_norm.safetensors").read_bytes())
    client = daemon.client()
    code, message = client.error({"op": "load", "model": "mgu_norm", "path": str(path)})
    assert code == "invalid_input" and "unknown type 'mgu'" in message
    assert client.ok({"op": "models"})[0]["models"] == []
    client.close()


@pytest.mark.parametrize("plugin, mention", [
    ("wrong_abi.so", "built for plugin ABI version 2; this Recur speaks version 1"),
    ("no_entry.so", "exports no recur_plugin_init"),
    ("duplicate.so", "layer type 'lstm' is already registered"),
    ("failing.so", "refused to load: no licence for this machine"),
    ("malformed.so", "'malformed_type' must have exactly one of forward"),
    ("not_a_library.so", "cannot be loaded"),
    ("missing.so", "cannot be loaded"),
])
def test_refused_plugin_stops_the_start(start_daemon, plugin, mention):
    daemon = start_daemon("--plugin", str(TEST_PLUGINS / plugin), models=[], ready=False)
    code = daemon.process.wait(timeout=30)
    log = daemon.log_text()
    assert code != 0, log
    assert mention in log and str(TEST_PLUGINS / plugin) in log, log


def test_cli_runs_a_plugin_model(tmp_path, plugin_models):
    x = uniform(2, 5, F)
    write_model(tmp_path / "inputs.safetensors", {"format": 1, "input": {"kind": "features", "size": F}, "layers": []}, {"input": x})
    out = tmp_path / "out.safetensors"
    run = subprocess.run([recur_cli_binary(), "--plugin", str(EXAMPLE), "run", str(plugin_models / "mgu_norm.safetensors"),
                          "--input", str(tmp_path / "inputs.safetensors"), "--output", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    y, h_n = reference.mgu(x, MGU)
    outputs = read_safetensors(out)
    np.testing.assert_allclose(outputs["output"], reference.layer_norm(y, NORM["weight"], NORM["bias"]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outputs["enc.h_n"], h_n[None], rtol=1e-4, atol=1e-5)
    refused = subprocess.run([recur_cli_binary(), "--plugin", str(TEST_PLUGINS / "failing.so"), "describe", "x"],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "no licence for this machine" in refused.stderr
