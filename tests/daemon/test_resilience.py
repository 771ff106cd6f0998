"""Bad input from one place never reaches the others: malformed model files (at start and through
`load`), garbage and mis-framed messages from one client, and absurd options leave recurd running,
every other client's session where it was, and every loaded model answering as before."""
import json
import os
import struct
import subprocess
import threading

import numpy as np
import pytest
import zmq

from conftest import GOLDEN, GOLDEN_CASES, decode_tensor, golden_case, recurd_binary, write_model


def assert_close(got, expected, what):
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=what)


def malformed_files(directory):
    """Files that are not model files, each under a *.safetensors name in `directory`; returns their names."""
    valid = (GOLDEN / "lstm_basic" / "model.safetensors").read_bytes()
    (header_length,) = struct.unpack("<Q", valid[:8])
    header = json.loads(valid[8:8 + header_length])
    first = next(k for k in header if k != "__metadata__")
    lying = dict(header, **{first: dict(header[first], data_offsets=[0, 1 << 40])})
    lying_bytes = json.dumps(lying).encode()
    files = {
        "empty": b"",
        "truncated": valid[: len(valid) // 2],
        "garbage": bytes(range(256)) * 4,
        "huge_header_length": struct.pack("<Q", 1 << 63) + b"{}",
        "lying_offsets": struct.pack("<Q", len(lying_bytes)) + lying_bytes + valid[8 + header_length:],
        "not_utf8": struct.pack("<Q", 4) + b"\xff\xfe{}",
    }
    for name, data in files.items():
        (directory / f"{name}.safetensors").write_bytes(data)
    (directory / "a_directory.safetensors").mkdir()
    os.mkfifo(directory / "a_fifo.safetensors")  # opening must not wait for a writer
    return sorted(files) + ["a_directory", "a_fifo"]


def test_malformed_files_at_start_are_skipped_and_the_rest_served(start_daemon):
    bad = []
    d = start_daemon(prepare=lambda directory: bad.extend(malformed_files(directory)))
    c = d.client()
    listed = sorted(m["name"] for m in c.ok({"op": "models"})[0]["models"])
    assert listed == sorted(GOLDEN_CASES)
    log = d.log_text()
    for name in bad:
        assert f"{name}.safetensors" in log, f"{name} was not reported: {log}"
    for case in ["lstm_basic", "char_lm", "bilstm_classifier"]:
        inputs, expected = golden_case(case)
        assert_close(c.infer(case, inputs)["output"], expected["output"], case)
    c.close()


def test_hostile_loads_leave_every_model_serving(start_daemon):
    d = start_daemon()
    bad = malformed_files(d.models_dir)
    inputs, expected = golden_case("lstm_basic")
    failures, stop = [], threading.Event()

    def traffic():
        c = d.client()
        try:
            while not stop.is_set():
                got = c.infer("lstm_basic", inputs)["output"]
                if not np.allclose(got, expected["output"], rtol=1e-4, atol=1e-5):
                    failures.append("lstm_basic answered differently during the loads")
        except Exception as error:  # noqa: BLE001 - any failure of the other client is the finding
            failures.append(repr(error))
        finally:
            c.close()

    worker = threading.Thread(target=traffic)
    worker.start()
    c = d.client()
    try:
        for name in bad:
            # Under a new name, and over the name of a model in use: both fail and change nothing.
            for target in ["newcomer", "lstm_basic"]:
                code, message = c.error({"op": "load", "model": target, "path": f"{name}.safetensors"})
                assert code in {"invalid_input", "not_found"}, (name, code, message)
                assert f"{name}.safetensors" in message, (name, message)
        # A NUL ends the path for open(2): recurd must not read a file other than the one named.
        code, message = c.error({"op": "load", "model": "newcomer",
                                 "path": "../../../etc/passwd\u0000/../../../" + str(d.models_dir) + "/char_lm.safetensors"})
        assert code == "bad_request" and "NUL" in message, (code, message)
        assert "newcomer" not in [m["name"] for m in c.ok({"op": "models"})[0]["models"]]
    finally:
        stop.set()
        worker.join(60)
    assert not failures, failures[:3]
    assert_close(c.infer("lstm_basic", inputs)["output"], expected["output"], "lstm_basic after the loads")
    c.close()
    assert d.process.poll() is None


def garbage_messages(session):
    """Messages a broken client might send: (frames, expected error code or None for no reply)."""
    step = {"op": "session.step", "session": session}
    ids = lambda data: {"dtype": "int64", "shape": [len(data), len(data[0])], "data": data}
    return [
        ([b"\x00\x01\x02garbage"], "bad_request"),
        ([b'{"op": "infer", "model": "char_lm", "inputs": {"input": {"dtype": "int64", "shape": [1, 2], "frame": 1}}}'],
         "bad_request"),  # refers to a frame that is not there
        ([json.dumps(step | {"inputs": {"input": ids([[1, 2]])}}).encode(), b"\0" * 16], "bad_request"),  # stray frame
        ([json.dumps(step | {"inputs": {"input": {"dtype": "int64", "shape": [1, 2], "frame": 1}}}).encode(), b"\0" * 15],
         "bad_request"),  # frame of the wrong size
        ([json.dumps(step | {"inputs": {"input": ids([[1, 10 ** 6]])}}).encode()], "invalid_input"),  # id outside the vocabulary
        ([json.dumps(step | {"inputs": {"input": ids([[1], [2]])}}).encode()], "invalid_input"),  # another batch size
        ([json.dumps(step | {"inputs": {"input": ids([[1, 2]]), "lengths": ids([[1]])}}).encode()], "invalid_input"),
        ([json.dumps({"op": "session.close", "session": session + "x"}).encode()], "not_found"),
        ([b"[" * 100000], "bad_request"),
        ([json.dumps({"op": "generate", "model": "char_lm", "prompt": [1], "max_tokens": 2 ** 70}).encode()], "bad_request"),
        ([json.dumps({"op": "generate", "model": "char_lm", "prompt": [1], "max_tokens": 2, "top_k": 2 ** 62,
                      "temperature": 1e300}).encode()], "bad_request"),
    ]


def test_a_broken_client_does_not_disturb_another_clients_session(daemon):
    inputs, expected = golden_case("char_lm")
    ids = inputs["input"]
    good = daemon.client()
    session = good.ok({"op": "session.open", "model": "char_lm"})[0]["session"]

    def step(chunk):
        reply, _ = good.ok({"op": "session.step", "session": session,
                            "inputs": {"input": {"dtype": "int64", "shape": list(chunk.shape), "data": chunk.tolist()}}})
        out = reply["outputs"]["output"]
        return np.array(out["data"], np.float32).reshape(out["shape"])

    first = step(ids[:, :3])
    broken = daemon.client()
    for frames, code in garbage_messages(session):
        reply, _ = broken.raw(frames)
        assert reply["ok"] is False and reply["error"]["code"] == code, (frames[0][:80], reply)
        assert reply["error"]["message"]
    broken.close()
    # A DEALER that breaks the envelope rules: no delimiter (dropped), nothing after the delimiter.
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(daemon.endpoint)
    dealer.send_multipart([b"no delimiter", b"at all"])
    dealer.send_multipart([b""])
    assert dealer.poll(5000)
    empty, header = dealer.recv_multipart()
    assert empty == b"" and json.loads(header)["error"]["code"] == "bad_request"
    dealer.close()

    rest = step(ids[:, 3:])
    assert_close(np.concatenate([first, rest], axis=1), expected["output"], "session after another client's garbage")
    good.ok({"op": "session.close", "session": session})
    good.close()
    assert daemon.process.poll() is None


def test_absurd_options_are_refused_with_a_message():
    for option, value in [("--session-timeout", "1e300"), ("--session-timeout", "nan"), ("--max-delay-ms", "1e300"),
                          ("--release-idle-s", "-1"), ("--release-idle-s", "inf"), ("--batch-wait", "sometimes")]:
        run = subprocess.run([recurd_binary(), "--models", str(GOLDEN), option, value],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode > 0, (option, value, run.returncode)  # a usage error, not a signal
        assert option in run.stderr, run.stderr


def test_huge_max_batch_still_batches(start_daemon):
    d = start_daemon("--max-batch", str(2 ** 63 - 1), "--max-delay-ms", "50", "--batch-wait", "always", "--workers", "1")
    inputs, expected = golden_case("lstm_basic")
    x = np.ascontiguousarray(inputs["input"])
    header = json.dumps({"op": "infer", "model": "lstm_basic", "binary": True,
                         "inputs": {"input": {"dtype": "float32", "shape": list(x.shape), "frame": 1}}}).encode()
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(d.endpoint)
    for _ in range(3):
        dealer.send_multipart([b"", header, x.tobytes()])
    for _ in range(3):
        assert dealer.poll(20000), "no reply: " + d.log_text()
        _, reply, *payload = dealer.recv_multipart()
        reply = json.loads(reply)
        assert reply["ok"] is True, reply
        assert_close(decode_tensor(reply["outputs"]["output"], payload), expected["output"], "batched")
    dealer.close()
    c = d.client()
    stats = c.ok({"op": "stats"})[0]
    assert stats["batches"]["max_size"] >= 2, stats["batches"]
    c.close()


def test_inputs_too_large_for_memory_are_too_large_not_internal(start_daemon):
    # An embedding 100000 wide: [1, 50000] token ids would need 2·10^10 floats, over 2^34 on any machine.
    weight = np.ones((2, 100000), np.float32)
    architecture = {"format": 1, "input": {"kind": "tokens", "vocab_size": 2},
                    "layers": [{"name": "embed", "type": "embedding", "num_embeddings": 2, "embedding_dim": 100000}]}
    d = start_daemon(prepare=lambda directory: write_model(directory / "wide.safetensors", architecture, {"embed.weight": weight}))
    c = d.client()
    ids = np.zeros((1, 50000), np.int32)
    reply, _ = c.call({"op": "infer", "model": "wide", "binary": True,
                       "inputs": {"input": {"dtype": "int32", "shape": [1, 50000], "frame": 1}}}, [ids.tobytes()])
    assert reply["ok"] is False and reply["error"]["code"] == "too_large", reply
    assert "[1, 50000]" in reply["error"]["message"], reply
    assert_close(c.infer("wide", {"input": np.array([[1, 0]], np.int64)})["output"], np.ones((1, 2, 100000)), "wide after")
    stats = c.ok({"op": "stats"})[0]
    assert "internal" not in stats["requests"].get("infer", {}), stats["requests"]
    c.close()
