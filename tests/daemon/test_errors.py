"""Every error code the daemon produces, malformed frames and JSON, and limits: each failure is
one reply with the right code and a message naming the field, and changes nothing."""
import json

import numpy as np
import pytest
import zmq

from conftest import GOLDEN, golden_case

FEATURES = {"dtype": "float32", "shape": [1, 2, 5], "data": [0.0] * 10}  # lstm_basic takes [B, T, 5]


def infer(inputs, **extra):
    return {"op": "infer", "model": "lstm_basic", "inputs": inputs, **extra}


BAD_REQUESTS = [
    # (header or raw frame 0, extra frames, words the message must contain)
    (b"not json", [], ["frame 0", "JSON"]),
    (b"", [], ["frame 0"]),
    (b"\xff\xfe{", [], ["frame 0"]),
    (b"[1, 2]", [], ["JSON object"]),
    (b"[" * 5000 + b"]" * 5000, [], ["frame 0"]),
    ({}, [], ["op"]),
    ({"op": 3}, [], ["op"]),
    ({"op": "fly"}, [], ["fly", "unknown"]),
    ({"op": "ping", "binary": "yes"}, [], ["binary"]),
    ({"op": "describe"}, [], ["model"]),
    ({"op": "describe", "model": 5}, [], ["model"]),
    ({"op": "describe", "model": ""}, [], ["model"]),
    (infer(None), [], ["inputs"]),
    (infer({"input": 3}), [], ["inputs.input"]),
    (infer({"input": {"shape": [1, 2, 5], "data": [0.0] * 10}}), [], ["inputs.input.dtype"]),
    (infer({"input": {**FEATURES, "dtype": "float16"}}), [], ["inputs.input.dtype", "float16"]),
    (infer({"input": {**FEATURES, "shape": [1, -2, 5]}}), [], ["inputs.input.shape[1]"]),
    (infer({"input": {**FEATURES, "shape": "1,2,5"}}), [], ["inputs.input.shape"]),
    (infer({"input": {**FEATURES, "data": [0.0] * 9}}), [], ["inputs.input.data", "9", "10"]),
    (infer({"input": {**FEATURES, "data": ["x"] * 10}}), [], ["inputs.input.data[0]"]),
    (infer({"input": {"dtype": "int64", "shape": [1, 1], "data": [1.5]}}), [], ["inputs.input.data[0]", "int64"]),
    (infer({"input": {"dtype": "int32", "shape": [1, 1], "data": [2 ** 40]}}), [], ["inputs.input.data[0]", "int32"]),
    (infer({"input": {"dtype": "float32", "shape": [1, 2, 5]}}), [], ["inputs.input", "data", "frame"]),
    (infer({"input": {**FEATURES, "frame": 1}}), [b"\0" * 40], ["inputs.input", "both"]),
    (infer({"input": {"dtype": "float32", "shape": [1, 2, 5], "frame": 1}}), [], ["inputs.input.frame"]),
    (infer({"input": {"dtype": "float32", "shape": [1, 2, 5], "frame": 2}}), [b"\0" * 40], ["inputs.input.frame"]),
    (infer({"input": {"dtype": "float32", "shape": [1, 2, 5], "frame": 1}}), [b"\0" * 39], ["frame 1", "39 bytes"]),
    (infer({"input": {"dtype": "float32", "shape": [1, 2, 5], "frame": 1}}), [b"\0" * 40, b"extra"], ["frame 2"]),
    (infer({"input": {"dtype": "float32", "shape": [1, 2, 5], "frame": 1},
            "rnn.h0": {"dtype": "float32", "shape": [1, 1, 8], "frame": 1}}), [b"\0" * 40], ["frame 1", "already"]),
    ({"op": "ping"}, [b"stray"], ["frame 1", "not referred"]),
    (infer({"input": FEATURES}, outputs="output"), [], ["outputs"]),
    ({"op": "generate", "model": "char_lm", "max_tokens": 3}, [], ["prompt"]),
    ({"op": "generate", "model": "char_lm", "prompt": [1, "a"], "max_tokens": 3}, [], ["prompt[1]"]),
    ({"op": "generate", "model": "char_lm", "prompt": [1], "max_tokens": -1}, [], ["max_tokens"]),
    ({"op": "generate", "model": "char_lm", "prompt": [1], "max_tokens": 2, "temperature": -1}, [], ["temperature"]),
    ({"op": "generate", "model": "char_lm", "prompt": [1], "max_tokens": 2, "top_p": 0}, [], ["top_p"]),
    ({"op": "session.step", "inputs": {}}, [], ["session"]),
    ({"op": "load", "model": "x"}, [], ["path"]),
]


@pytest.mark.parametrize("header,frames,words", BAD_REQUESTS, ids=[str(i) for i in range(len(BAD_REQUESTS))])
def test_bad_request(client, header, frames, words):
    first = header if isinstance(header, bytes) else json.dumps(header).encode()
    reply, payload = client.raw([first] + frames)
    assert reply["ok"] is False and payload == []
    assert reply["error"]["code"] == "bad_request", reply
    for word in words:
        assert word in reply["error"]["message"], reply["error"]["message"]


def test_error_reply_echoes_id(client):
    reply, _ = client.call({"op": "fly", "id": {"n": 1}})
    assert reply["id"] == {"n": 1} and reply["ok"] is False


@pytest.mark.parametrize("header,code,words", [
    ({"op": "describe", "model": "nope"}, "not_found", ["nope"]),
    (infer({"input": FEATURES}, model="nope"), "not_found", ["nope"]),
    ({"op": "session.open", "model": "nope"}, "not_found", ["nope"]),
    ({"op": "session.step", "session": "s00", "inputs": {"input": FEATURES}}, "not_found", ["s00"]),
    ({"op": "session.reset", "session": "s00"}, "not_found", ["s00"]),
    ({"op": "session.close", "session": "s00"}, "not_found", ["s00"]),
    ({"op": "unload", "model": "nope"}, "not_found", ["nope"]),
    ({"op": "generate", "model": "nope", "prompt": [1], "max_tokens": 1}, "not_found", ["nope"]),
    ({"op": "load", "model": "x", "path": "absent.safetensors"}, "not_found", ["absent"]),
    (infer({"input": {**FEATURES, "shape": [1, 5, 2]}}), "invalid_input", ["input", "[1, 5, 2]"]),
    (infer({"input": {"dtype": "int64", "shape": [1, 2], "data": [1, 2]}}), "invalid_input", ["input", "float32"]),
    (infer({"input": FEATURES, "bogus": FEATURES}), "invalid_input", ["bogus"]),
    (infer({"input": FEATURES, "lengths": {"dtype": "int64", "shape": [1], "data": [3]}}), "invalid_input", ["lengths[0]"]),
    (infer({"input": FEATURES}, outputs=["nothing"]), "invalid_input", ["nothing"]),
    ({"op": "infer", "model": "char_lm", "inputs": {"input": {"dtype": "int64", "shape": [1, 2], "data": [1, 99]}}},
     "invalid_input", ["99", "vocabulary"]),
    ({"op": "generate", "model": "char_lm", "prompt": [99], "max_tokens": 1}, "invalid_input", ["prompt[0]"]),
    ({"op": "session.open", "model": "bilstm_classifier"}, "unsupported", ["bidirectional"]),
    ({"op": "generate", "model": "lstm_basic", "prompt": [1], "max_tokens": 1}, "unsupported", ["generate"]),
    ({"op": "load", "model": "x", "path": "/etc/passwd"}, "unauthorized", ["outside"]),
    ({"op": "load", "model": "x", "path": "../../../etc/passwd"}, "unauthorized", ["outside"]),
])
def test_error_codes(client, header, code, words):
    got, message = client.error(header)
    assert got == code, message
    for word in words:
        assert word in message, message


def test_session_step_errors_leave_state_unchanged(client):
    inputs, expected = golden_case("char_lm")
    session = client.ok({"op": "session.open", "model": "char_lm"})[0]["session"]
    step = lambda ids: client.call({"op": "session.step", "session": session,
                                    "inputs": {"input": {"dtype": "int64", "shape": list(ids.shape), "data": ids.tolist()}}})[0]
    assert step(inputs["input"][:, :4])["ok"]
    assert step(np.array([[1, 99]]))["error"]["code"] == "invalid_input"       # bad id
    assert step(np.array([[1], [2]]))["error"]["code"] == "invalid_input"      # other batch
    rest = step(inputs["input"][:, 4:])
    got = np.array(rest["outputs"]["output"]["data"], np.float32).reshape(rest["outputs"]["output"]["shape"])
    np.testing.assert_allclose(got, expected["output"][:, 4:], rtol=1e-4, atol=1e-5)
    client.ok({"op": "session.close", "session": session})


def test_malformed_envelopes_are_dropped_and_service_continues(daemon):
    context = zmq.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(daemon.endpoint)
    dealer.send_multipart([b'{"op": "ping"}'])  # no empty delimiter: not a REQ-shaped message
    assert dealer.poll(500) == 0
    dealer.send_multipart([b"", b'{"op": "ping", "id": 2}'])  # DEALER with the delimiter is answered
    assert dealer.poll(5000)
    empty, header = dealer.recv_multipart()
    assert empty == b"" and json.loads(header)["id"] == 2
    dealer.close()


def test_limits_answer_too_large(start_daemon, tmp_path):
    d = start_daemon("--max-tensor-elements", "100", "--max-request-elements", "110", "--max-steps", "8",
                     "--max-generate-tokens", "5", "--max-sessions", "2")
    c = d.client()
    cases = [
        (infer({"input": {"dtype": "float32", "shape": [3, 7, 5], "data": [0.0] * 105}}), ["100", "per tensor"]),
        (infer({"input": {"dtype": "float32", "shape": [2 ** 31, 2 ** 31, 2 ** 31], "data": []}}), ["per tensor"]),
        (infer({"input": {"dtype": "float32", "shape": [2, 9, 5], "data": [0.0] * 90}}), ["9 steps", "8"]),
        (infer({"input": {"dtype": "float32", "shape": [2, 8, 5], "data": [0.0] * 80},
                "rnn.h0": {"dtype": "float32", "shape": [1, 2, 8], "data": [0.0] * 16},
                "rnn.c0": {"dtype": "float32", "shape": [1, 2, 8], "data": [0.0] * 16},
                "lengths": {"dtype": "int64", "shape": [2], "data": [1, 1]},
                }, model="lstm_lengths_states"), ["110", "in all"]),
        ({"op": "generate", "model": "char_lm", "prompt": [1], "max_tokens": 6}, ["max_tokens", "5"]),
        ({"op": "generate", "model": "char_lm", "prompt": [1] * 5, "max_tokens": 4}, ["8 steps"]),
    ]
    for header, words in cases:
        code, message = c.error(header)
        assert code == "too_large", message
        for word in words:
            assert word in message, message
    sessions = [c.ok({"op": "session.open", "model": "char_lm"})[0]["session"] for _ in range(2)]
    code, message = c.error({"op": "session.open", "model": "char_lm"})
    assert code == "too_large" and "2 sessions" in message
    c.ok({"op": "session.close", "session": sessions[0]})
    c.ok({"op": "session.open", "model": "char_lm"})
    c.close()


def test_oversized_message_gets_nothing_and_others_continue(start_daemon):
    d = start_daemon("--max-message-bytes", "4096")
    big = d.client(timeout=1.0)
    with pytest.raises(zmq.Again):
        big.call({"op": "ping"}, [b"\0" * 10000])
    big.close()
    small = d.client()
    assert small.ok({"op": "ping"})[0]["version"] == 1
    small.close()


def test_busy_when_the_queue_is_full(start_daemon):
    d = start_daemon("--workers", "1", "--max-queue", "2", "--max-batch", "1")
    context = zmq.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(d.endpoint)
    slow = json.dumps({"op": "generate", "model": "char_lm", "prompt": [1], "max_tokens": 3000}).encode()
    for i in range(12):
        dealer.send_multipart([b"", slow])
    codes = []
    for _ in range(12):
        assert dealer.poll(60000), "a request got no reply"
        codes.append(json.loads(dealer.recv_multipart()[1]).get("error", {}).get("code", "ok"))
    assert codes.count("busy") >= 1 and codes.count("ok") >= 2
    assert set(codes) <= {"busy", "ok"}
    dealer.close()


def mutations(rng):
    """Requests derived from valid ones by random damage: dropped, retyped or resized fields,
    truncated or flipped bytes, and stray or missing frames."""
    x = np.arange(10, dtype=np.float32).reshape(1, 2, 5)
    valid = [
        ({"op": "infer", "model": "lstm_basic", "inputs": {"input": {"dtype": "float32", "shape": [1, 2, 5], "frame": 1}}}, [x.tobytes()]),
        ({"op": "infer", "model": "char_lm", "inputs": {"input": {"dtype": "int64", "shape": [1, 3], "data": [[1, 2, 3]]}}}, []),
        ({"op": "generate", "model": "char_lm", "prompt": [1, 2], "max_tokens": 3, "top_k": 2}, []),
        ({"op": "session.open", "model": "char_lm"}, []),
        ({"op": "describe", "model": "bigru_tagger"}, []),
    ]
    odd_values = [None, True, -1, 0, 2 ** 63, 1e308, "", "x" * 300, [], {}, [[[]]], [-5, 2], {"frame": 1}]
    while True:
        header, frames = valid[rng.integers(len(valid))]
        header, frames = json.loads(json.dumps(header)), list(frames)
        kind = rng.integers(6)
        if kind == 0:  # replace a field, possibly a nested one
            target = header
            while True:
                key = list(target)[rng.integers(len(target))]
                if isinstance(target[key], dict) and target[key] and rng.integers(2):
                    target = target[key]
                    continue
                target[key] = odd_values[rng.integers(len(odd_values))]
                break
            yield json.dumps(header).encode(), frames
        elif kind == 1:  # drop a field
            header.pop(list(header)[rng.integers(len(header))])
            yield json.dumps(header).encode(), frames
        elif kind == 2:  # truncate the JSON
            text = json.dumps(header).encode()
            yield text[:rng.integers(len(text))], frames
        elif kind == 3:  # flip a byte of the JSON
            text = bytearray(json.dumps(header).encode())
            text[rng.integers(len(text))] = int(rng.integers(256))
            yield bytes(text), frames
        elif kind == 4:  # resize, add or drop frames
            choice = rng.integers(3)
            if choice == 0 and frames:
                frames[0] = frames[0][:rng.integers(len(frames[0]) + 1)]
            elif choice == 1:
                frames.append(bytes(rng.integers(0, 256, rng.integers(0, 64), dtype=np.uint8)))
            else:
                frames = []
            yield json.dumps(header).encode(), frames
        else:  # random bytes
            yield bytes(rng.integers(0, 256, rng.integers(0, 200), dtype=np.uint8)), []


def test_damaged_requests_each_get_one_reply_and_never_crash(daemon):
    rng = np.random.default_rng(1234)
    client = daemon.client(timeout=30)
    codes = {}
    for _, (first, frames) in zip(range(600), mutations(rng)):
        reply, _ = client.raw([first] + frames)
        assert isinstance(reply["ok"], bool)
        if not reply["ok"]:
            code = reply["error"]["code"]
            assert code != "internal", (first, reply)
            assert reply["error"]["message"]
            codes[code] = codes.get(code, 0) + 1
    assert daemon.process.poll() is None
    assert client.ok({"op": "ping"})[0]["version"] == 1
    assert codes.get("bad_request", 0) > 100, codes
    client.close()
