"""The benchmark harness's own logic (numpy and librecur.so only, no torch): work counts, the
model file a configuration becomes, the error measure, memory readings and the table."""
import json
import os
import sys

import numpy as np
import pytest

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BENCH)
sys.path.insert(0, os.path.join(os.path.dirname(BENCH), "bindings", "python"))

import harness  # noqa: E402
import recur  # noqa: E402

BILSTM = {"id": "bilstm", "cell": "lstm", "I": 3, "H": 5, "T": 7, "B": 2, "layers": 2, "bidirectional": True}


def test_flops_count_both_products_of_every_step():
    # 2·B·T·(I+H)·G·H: LSTM G=4, GRU G=3, RNN G=1.
    assert harness.flops({"cell": "lstm", "I": 256, "H": 256, "T": 100, "B": 1}) == 2 * 100 * 512 * 4 * 256
    assert harness.flops({"cell": "gru", "I": 512, "H": 512, "T": 50, "B": 64}) == 2 * 64 * 50 * 1024 * 3 * 512
    assert harness.flops({"cell": "rnn", "I": 8, "H": 4, "T": 3, "B": 2}) == 2 * 2 * 3 * 12 * 1 * 4


def test_flops_of_stacked_bidirectional_layers_read_both_directions():
    # Layer 0 reads I = 3, layer 1 reads 2·H = 10; two directions each.
    per_layer = [2 * 2 * 7 * (3 + 5) * 4 * 5, 2 * 2 * 7 * (10 + 5) * 4 * 5]
    assert harness.flops(BILSTM) == 2 * sum(per_layer)


def test_weight_shapes_are_pytorchs_names():
    shapes = harness.weight_shapes(BILSTM)
    assert shapes["weight_ih_l0"] == (20, 3)
    assert shapes["weight_ih_l0_reverse"] == (20, 3)
    assert shapes["weight_ih_l1"] == (20, 10)
    assert shapes["weight_hh_l1_reverse"] == (20, 5)
    assert shapes["bias_ih_l1_reverse"] == (20,)
    assert shapes["bias_hh_l0"] == (20,)
    assert len(shapes) == 16
    assert set(harness.weight_shapes({"cell": "gru", "I": 2, "H": 3})) == {
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}


def test_model_file_loads_in_recur_with_its_parameter_count(tmp_path):
    # Recur refuses a file with a missing, misnamed or unused tensor, so loading it checks the names.
    path = tmp_path / "model.safetensors"
    recur.save(path, harness.architecture(BILSTM), harness.model_tensors(harness.random_weights(BILSTM)))
    stored = recur.load_tensors(path)
    assert set(stored) == {f"rnn.{name}" for name in harness.weight_shapes(BILSTM)}
    with recur.Model(path) as model:
        description = model.describe()
        assert description["parameters"] == sum(int(np.prod(s)) for s in harness.weight_shapes(BILSTM).values())
        out = model.run(harness.random_input(BILSTM))
    assert out["output"].shape == (2, 7, 10)
    assert out["rnn.h_n"].shape == out["rnn.c_n"].shape == (4, 2, 5)


@pytest.mark.parametrize("key, value", [("recurrent_weights", "float16"), ("precision", "bfloat16")])
def test_opt_in_precision_reaches_the_model_and_changes_its_numbers(tmp_path, key, value):
    weights, x = harness.random_weights(BILSTM), harness.random_input(BILSTM)
    outputs = {}
    for name, config in (("exact", BILSTM), ("opted", {**BILSTM, key: value})):
        architecture = harness.architecture(config)
        assert architecture["layers"][0].get(key) == (value if name == "opted" else None)
        recur.save(tmp_path / f"{name}.safetensors", architecture, harness.model_tensors(weights))
        with recur.Model(tmp_path / f"{name}.safetensors") as model:
            outputs[name] = model.run(x)["output"]
    error = np.abs(outputs["opted"] - outputs["exact"]).max()
    assert 0 < error < 5e-2


def test_random_weights_lie_in_pytorchs_init_range():
    weights = harness.random_weights({"cell": "rnn", "I": 4, "H": 16})
    assert all(w.dtype == np.float32 for w in weights.values())
    assert max(np.abs(w).max() for w in weights.values()) <= 0.25
    assert np.abs(weights["weight_hh_l0"]).max() > 0.2


def test_relative_error_is_scaled_by_the_reference():
    expected = np.array([[0.0, 2.0], [-4.0, 1.0]], np.float32)
    assert harness.relative_error(expected.copy(), expected) == 0.0
    found = expected + np.array([[1e-3, 0, 0, 0]], np.float32).reshape(2, 2)
    assert harness.relative_error(found, expected) == pytest.approx(1e-3 / 4, rel=1e-3)
    with pytest.raises(ValueError, match="shape"):
        harness.relative_error(expected[:1], expected)


def test_load_configs_checks_keys_and_cells(tmp_path):
    for name in ("shapes.json", "small_shapes.json"):
        shipped = harness.load_configs(os.path.join(BENCH, name))
        assert len({config["id"] for config in shipped}) == len(shipped) > 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"configs": [{"id": "x", "cell": "lstm", "I": 1, "H": 1, "T": 1}]}))
    with pytest.raises(ValueError, match="x lacks B"):
        harness.load_configs(bad)
    bad.write_text(json.dumps({"configs": [{"id": "y", "cell": "qrnn", "I": 1, "H": 1, "T": 1, "B": 1}]}))
    with pytest.raises(ValueError, match="qrnn"):
        harness.load_configs(bad)


def test_random_configs_are_valid_bounded_and_drawn_again_from_their_seed(tmp_path):
    configs = harness.random_configs(200, seed=7, max_flops=2e9)
    assert configs == harness.random_configs(200, seed=7, max_flops=2e9)
    assert configs != harness.random_configs(200, seed=8, max_flops=2e9)
    assert len({config["id"] for config in configs}) == len(configs)
    assert all(harness.flops(config) <= 2e9 or config["T"] <= 10 for config in configs)
    assert {config["cell"] for config in configs} == set(harness.GATES)
    assert any(config.get("bidirectional") for config in configs) and any(config.get("layers") == 2 for config in configs)
    assert any(config["H"] % 8 for config in configs) and any(config["B"] == 1 for config in configs)
    path = tmp_path / "random.json"
    path.write_text(json.dumps({"configs": configs}))
    assert harness.load_configs(path) == configs


def test_peak_since_reset_sees_memory_malloc_had_freed():
    # 20 MB in blocks below malloc's mmap threshold, freed but the last: malloc keeps the space for
    # reuse, resident unless reset_peak gives it back first, and allocating it again would not
    # raise the mark (a model loaded after another measured 0.00x its file).
    blocks = [np.ones(100_000, np.uint8) for _ in range(200)]
    del blocks[:-1]
    harness.reset_peak()
    start = harness.peak_since_reset_mib()
    again = [np.ones(100_000, np.uint8) for _ in range(199)]
    assert harness.peak_since_reset_mib() - start >= 15
    del again, blocks


def test_peak_since_reset_sees_a_new_allocation():
    harness.reset_peak()
    start = harness.peak_since_reset_mib()
    block = np.ones(64 * 2**20, np.uint8)  # 64 MiB, touched
    assert harness.peak_since_reset_mib() - start >= 60
    assert harness.peak_mib() >= harness.peak_since_reset_mib() - 1
    del block


def test_table_ratio_against_the_faster_peer_and_missing_peers():
    row = {"id": "c", "flops": 2e9, "recur_ms": 10.0, "onnxruntime_ms": 20.0, "torch_ms": 5.0,
           "recur_peak_mib": 150.0, "recur_baseline_mib": 100.0, "torch_peak_mib": 400.0, "torch_baseline_mib": 390.0,
           "load_peak_mib": 3.0, "file_mib": 2.0, "max_rel_err": 2e-7}
    cells = dict(zip(harness.COLUMNS, harness.table_row(row)))
    assert cells["Recur/best"] == "2.00"
    assert cells["Recur GFLOP/s"] == "200.0"
    assert cells["MiB over imports Recur/ORT/torch"] == "50/—/10"
    assert cells["load peak / file"].endswith("= 1.50x")
    alone = harness.table_row({"id": "c", "flops": 1, "recur_ms": 1.0, "file_mib": 1.0})
    assert alone[harness.COLUMNS.index("Recur/best")] == "—"
    assert alone[-1] == "unverified"
    assert harness.table_row({**row, "errors": ["recur: differs from PyTorch"]})[-1] == "FAILED"
    markdown = harness.format_table([row], markdown=True).splitlines()
    assert markdown[0].startswith("| config |") and markdown[1].startswith("|---|")


def test_warm_up_calls_until_its_time_has_passed_and_at_least_once():
    now = [0.0]
    calls = []

    def run():
        calls.append(now[0])
        now[0] += 0.125

    assert harness.warm_up(run, seconds=0.5, clock=lambda: now[0]) == 4
    assert calls == [0.0, 0.125, 0.25, 0.375]
    assert harness.warm_up(run, seconds=0.0, clock=lambda: now[0]) == 1
