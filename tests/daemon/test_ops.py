"""Every core op of protocol.md against the real daemon, checked against PyTorch's golden numbers,
the model files themselves, or properties (a chunked session equals one run)."""
import shutil

import numpy as np
import pytest

from conftest import GOLDEN, GOLDEN_CASES, architecture, golden_case


def assert_close(actual, expected, what):
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5, err_msg=what)


def test_ping_echoes_any_id(client):
    for request_id in [7, "abc", {"nested": [1, 2]}, None]:
        reply, frames = client.ok({"op": "ping", "id": request_id})
        assert reply["version"] == 1 and reply["abi"] == 1
        assert reply["id"] == request_id and frames == []


def test_models_lists_every_file_with_its_shapes(client):
    reply, _ = client.ok({"op": "models"})
    entries = {m["name"]: m for m in reply["models"]}
    assert set(entries) == set(GOLDEN_CASES)
    for name, entry in entries.items():
        arch = architecture(GOLDEN / name / "model.safetensors")
        assert entry["input"] == arch["input"]
        assert [(l["name"], l["type"]) for l in entry["layers"]] == [(l["name"], l["type"]) for l in arch["layers"]]
        assert "output" in entry["outputs"]


def test_describe_is_the_architecture_plus_shapes(client):
    for name in GOLDEN_CASES:
        arch = architecture(GOLDEN / name / "model.safetensors")
        reply, _ = client.ok({"op": "describe", "model": name})
        model = reply["model"]
        for key, value in arch.items():
            assert model[key] == value, f"{name}.{key}"
        _, expected = golden_case(name)
        # Every output PyTorch produced is described, with its rank.
        assert set(model["outputs"]) == set(expected)
        for output, array in expected.items():
            assert len(model["outputs"][output]["shape"]) == array.ndim
        bidirectional = any(l.get("bidirectional") for l in arch["layers"])
        assert model["can_stream"] is (not bidirectional)


@pytest.mark.parametrize("binary", [False, True], ids=["inline", "binary"])
@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_case_through_infer(client, case, binary):
    inputs, expected = golden_case(case)
    outputs = client.infer(case, inputs, binary=binary)
    assert set(outputs) == set(expected)
    for name, array in expected.items():
        assert_close(outputs[name], array, f"{case}.{name}")


def test_binary_reply_frames_and_inline_request(client):
    inputs, expected = golden_case("lstm_basic")
    header = {"op": "infer", "model": "lstm_basic", "binary": True,
              "inputs": {"input": {"dtype": "float32", "shape": list(inputs["input"].shape),
                                   "data": inputs["input"].tolist()}}}
    reply, frames = client.ok(header)
    assert len(frames) == len(reply["outputs"])
    assert sorted(e["frame"] for e in reply["outputs"].values()) == list(range(1, len(frames) + 1))
    out = reply["outputs"]["output"]
    assert_close(np.frombuffer(frames[out["frame"] - 1], np.float32).reshape(out["shape"]), expected["output"], "output")


def test_infer_outputs_selects(client):
    inputs, expected = golden_case("lstm_lengths_states")
    outputs = client.infer("lstm_lengths_states", inputs, outputs=["rnn.h_n"])
    assert list(outputs) == ["rnn.h_n"]
    assert_close(outputs["rnn.h_n"], expected["rnn.h_n"], "rnn.h_n")


def test_session_chunks_equal_one_run(client):
    inputs, expected = golden_case("char_lm")
    ids = inputs["input"]
    reply, _ = client.ok({"op": "session.open", "model": "char_lm"})
    session = reply["session"]
    assert isinstance(session, str) and len(session) >= 32

    def step(chunk):
        reply, frames = client.ok({"op": "session.step", "session": session, "binary": True,
                                   "inputs": {"input": {"dtype": "int64", "shape": list(chunk.shape), "frame": 1}}},
                                  [np.ascontiguousarray(chunk).tobytes()])
        return {k: np.frombuffer(frames[v["frame"] - 1], np.dtype(v["dtype"])).reshape(v["shape"])
                for k, v in reply["outputs"].items()}

    parts = [step(ids[:, :4]), step(ids[:, 4:5]), step(ids[:, 5:])]
    assert_close(np.concatenate([p["output"] for p in parts], axis=1), expected["output"], "chunked output")
    assert_close(parts[-1]["lm.h_n"], expected["lm.h_n"], "chunked h_n")
    client.ok({"op": "session.reset", "session": session})
    again = step(ids)
    assert_close(again["output"], expected["output"], "after reset")
    client.ok({"op": "session.close", "session": session})
    code, message = client.error({"op": "session.step", "session": session, "inputs": {"input": {"dtype": "int64", "shape": [1, 1], "data": [1]}}})
    assert code == "not_found" and session[:8] in message


def test_sessions_are_independent_and_ids_differ(client):
    ids = {client.ok({"op": "session.open", "model": "char_lm"})[0]["session"] for _ in range(20)}
    assert len(ids) == 20
    for session in ids:
        client.ok({"op": "session.close", "session": session})


def greedy_by_infer(client, model, prompt, count):
    """Greedy generation done independently: rerun the whole sequence, take the arg-max."""
    tokens = list(prompt)
    for _ in range(count):
        logits = client.infer(model, {"input": np.array([tokens], np.int64)})["output"]
        tokens.append(int(np.argmax(logits[0, -1])))
    return tokens[len(prompt):]


def test_generate_greedy_matches_rerunning_infer(client):
    reply, _ = client.ok({"op": "generate", "model": "char_lm", "prompt": [1, 2, 3], "max_tokens": 6, "temperature": 0})
    assert reply["tokens"] == greedy_by_infer(client, "char_lm", [1, 2, 3], 6)


def test_generate_seed_and_stop(client):
    request = {"op": "generate", "model": "char_lm", "prompt": [4], "max_tokens": 12, "temperature": 1.5, "seed": 42}
    first = client.ok(request)[0]["tokens"]
    assert client.ok(request)[0]["tokens"] == first and len(first) == 12
    stop = first[3]
    stopped = client.ok({**request, "stop": [stop]})[0]["tokens"]
    assert stopped == first[:first.index(stop)]


def test_load_replaces_and_unload_removes(client, daemon):
    shutil.copy(GOLDEN / "gru_stacked" / "model.safetensors", daemon.models_dir / "other.safetensors")
    client.ok({"op": "load", "model": "swap", "path": "other.safetensors"})
    inputs, expected = golden_case("gru_stacked")
    assert_close(client.infer("swap", inputs)["output"], expected["output"], "loaded gru")
    # Replacing keeps the name and serves the new model.
    client.ok({"op": "load", "model": "swap", "path": str(daemon.models_dir / "lstm_basic.safetensors")})
    inputs, expected = golden_case("lstm_basic")
    assert_close(client.infer("swap", inputs)["output"], expected["output"], "replaced by lstm")
    # A failed load keeps the old model.
    (daemon.models_dir / "broken.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert client.error({"op": "load", "model": "swap", "path": "broken.safetensors"})[0] == "invalid_input"
    assert client.error({"op": "load", "model": "swap", "path": "missing.safetensors"})[0] == "not_found"
    assert_close(client.infer("swap", inputs)["output"], expected["output"], "kept after failed load")
    client.ok({"op": "unload", "model": "swap"})
    assert client.error({"op": "describe", "model": "swap"})[0] == "not_found"
    names = {m["name"] for m in client.ok({"op": "models"})[0]["models"]}
    assert "swap" not in names and set(GOLDEN_CASES) <= names


def test_stats_counts_ops_and_outcomes(daemon):
    c = daemon.client()
    before = c.ok({"op": "stats"})[0]["requests"]
    c.ok({"op": "ping"})
    c.error({"op": "describe", "model": "nope"})
    stats = c.ok({"op": "stats"})[0]
    c.close()
    count = lambda req, op, outcome: req.get(op, {}).get(outcome, 0)
    assert count(stats["requests"], "ping", "ok") == count(before, "ping", "ok") + 1
    assert count(stats["requests"], "describe", "not_found") == count(before, "describe", "not_found") + 1
    for key in ["latency_ms", "batches", "queue_depth", "sessions_open", "models_loaded", "max_queue"]:
        assert key in stats
    assert stats["latency_ms"]["all"]["p50"] <= stats["latency_ms"]["all"]["p99"]
    assert stats["models_loaded"] >= len(GOLDEN_CASES)


def test_inline_floats_read_back_bit_for_bit(client):
    for case in ["lstm_lengths_states", "bilstm_classifier"]:
        inputs, _ = golden_case(case)
        binary = client.infer(case, inputs, binary=True)
        inline = client.infer(case, inputs, binary=False)
        for name in binary:
            assert inline[name].dtype == np.float32
            assert np.array_equal(inline[name], binary[name]), f"{case}.{name}"


def test_large_inline_requests_are_decoded_and_answered(client):
    # A header of several hundred kB is decoded by a worker instead of the I/O thread.
    x = np.random.default_rng(5).standard_normal((2, 3000, 5)).astype(np.float32)
    inline = client.infer("lstm_basic", {"input": x}, binary=False, id="big")
    binary = client.infer("lstm_basic", {"input": x}, binary=True)
    for name in binary:
        assert np.array_equal(inline[name], binary[name]), name
    header = {"op": "infer", "model": "lstm_basic", "id": 9, "inputs": {"input": {"dtype": "float32", "shape": [2, 3000, 4],
                                                                                   "data": x[:, :, :4].tolist()}}}
    reply, _ = client.call(header)
    assert reply["id"] == 9 and reply["error"]["code"] == "invalid_input"
    reply, _ = client.raw([b"[" + b"1," * 100000 + b"x]"])
    assert reply["error"]["code"] == "bad_request" and "frame 0" in reply["error"]["message"]
