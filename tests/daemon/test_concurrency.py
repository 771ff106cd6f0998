"""Concurrency: many clients at once, dynamic batching (identical to one-by-one), per-session
ordering, load/unload under traffic, session expiry, CURVE, and shutdown with requests in flight."""
import json
import re
import shutil
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
import zmq

from conftest import GOLDEN, GOLDEN_CASES, decode_tensor, golden_case, recur_cli_binary, write_model


def binary_request(op, inputs, **fields):
    header = {"op": op, "binary": True, "inputs": {}, **fields}
    frames = []
    for name, array in inputs.items():
        array = np.ascontiguousarray(array)
        frames.append(array.tobytes())
        header["inputs"][name] = {"dtype": str(array.dtype), "shape": list(array.shape), "frame": len(frames)}
    return header, frames


class Dealer:
    """Sends many requests at once on one DEALER socket; replies are matched by id."""

    def __init__(self, endpoint):
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)

    def send(self, header, frames=()):
        self.socket.send_multipart([b"", json.dumps(header).encode()] + list(frames))

    def receive(self, count, timeout=60.0):
        replies = {}
        for _ in range(count):
            assert self.socket.poll(int(timeout * 1000)), f"only {len(replies)} of {count} replies arrived"
            frames = self.socket.recv_multipart()
            header = json.loads(frames[1])
            replies[header.get("id")] = (header, frames[2:])
        return replies

    def close(self):
        self.socket.close(linger=0)


def outputs_of(reply):
    header, frames = reply
    assert header["ok"], header
    return {name: decode_tensor(entry, frames) for name, entry in header["outputs"].items()}


def split_requests(case):
    """One request per sequence of a golden case: alternately with lengths and states, or cut to
    its own length without them."""
    inputs, _ = golden_case(case)
    x = inputs["input"]
    requests = []
    for b in range(x.shape[0]):
        if b % 2 == 0:
            request = {"input": x[b:b + 1]}
            if "lengths" in inputs:
                request["lengths"] = inputs["lengths"][b:b + 1]
            for name, value in inputs.items():
                if name not in ("input", "lengths"):
                    request[name] = value[:, b:b + 1]
        else:
            length = int(inputs["lengths"][b]) if "lengths" in inputs else x.shape[1]
            request = {"input": x[b:b + 1, :length].astype(np.int32) if x.dtype.kind == "i" else x[b:b + 1, :length]}
        requests.append(request)
    return requests


@pytest.mark.parametrize("case", ["bilstm_classifier", "lstm_lengths_states", "pool_mean_max", "bigru_tagger", "gru_max_pool"])
def test_batched_requests_equal_one_by_one(start_daemon, case):
    d = start_daemon("--max-batch", "16", "--max-delay-ms", "300", "--batch-wait", "always")
    requests = split_requests(case) * 3  # several of each, so batches hold repeats too
    client = d.client()
    alone = []
    for request in requests:
        header, frames = binary_request("infer", request, model=case)
        alone.append(outputs_of(client.call(header, frames)))
    dealer = Dealer(d.endpoint)
    for i, request in enumerate(requests):
        header, frames = binary_request("infer", request, model=case, id=i)
        dealer.send(header, frames)
    together = dealer.receive(len(requests))
    for i in range(len(requests)):
        got = outputs_of(together[i])
        assert set(got) == set(alone[i])
        for name in got:
            assert np.array_equal(got[name], alone[i][name]), f"{case} request {i} {name} differs when batched"
    stats = client.ok({"op": "stats"})[0]["batches"]
    assert stats["max_size"] > 1, stats
    assert stats["count"] < 2 * len(requests), stats
    dealer.close()
    client.close()


def test_a_lone_request_waits_for_company_only_when_told_to(start_daemon):
    inputs, expected = golden_case("lstm_basic")
    waits = {}
    for policy, delay in [("when-busy", "10000"), ("always", "300")]:
        d = start_daemon("--max-delay-ms", delay, "--batch-wait", policy, models=["lstm_basic"])
        client = d.client()
        t0 = time.monotonic()
        got = client.infer("lstm_basic", inputs)
        waits[policy] = time.monotonic() - t0
        np.testing.assert_allclose(got["output"], expected["output"], rtol=1e-4, atol=1e-5)
        client.close()
    # By default no batch like it is being computed, so nothing is coming: it leaves at once, not
    # after the 10 s window. Told to wait always, it waits out the whole 0.3 s.
    assert waits["when-busy"] < 5, waits
    assert waits["always"] >= 0.3, waits


def lstm_model(path, features, hidden, seed=0):
    """A features → LSTM model with random weights."""
    rng = np.random.default_rng(seed)
    scale = 1 / np.sqrt(hidden)
    architecture = {"format": 1, "input": {"kind": "features", "size": features},
                    "layers": [{"name": "rnn", "type": "lstm", "input_size": features, "hidden_size": hidden}]}
    shapes = {"rnn.weight_ih_l0": (4 * hidden, features), "rnn.weight_hh_l0": (4 * hidden, hidden),
              "rnn.bias_ih_l0": (4 * hidden,), "rnn.bias_hh_l0": (4 * hidden,)}
    write_model(path, architecture, {name: rng.uniform(-scale, scale, shape).astype(np.float32) for name, shape in shapes.items()})


def test_requests_wait_for_the_batch_like_theirs_that_is_running(start_daemon):
    # Two workers, a 10 s window. A long request runs; four like it (same model, T in the same
    # power-of-two range) arrive while it does and a worker is free. They wait for it, not for
    # the window, and then leave together, split over the two free workers.
    d = start_daemon("--workers", "2", "--max-batch", "16", "--max-delay-ms", "10000", models=[],
                     prepare=lambda directory: lstm_model(directory / "wide.safetensors", 16, 512))
    rng = np.random.default_rng(5)
    long_request = rng.standard_normal((64, 600, 16)).astype(np.float32)  # about 80 GFLOP
    followers = [rng.standard_normal((1, 600, 16)).astype(np.float32) for _ in range(4)]
    client = d.client()
    dealer = Dealer(d.endpoint)
    t0 = time.monotonic()
    dealer.send(*binary_request("infer", {"input": long_request}, model="wide", id="long"))
    while client.ok({"op": "stats"})[0]["batches"]["count"] < 1:  # until it has gone to a worker
        time.sleep(0.001)
    for i, x in enumerate(followers):
        dealer.send(*binary_request("infer", {"input": x}, model="wide", id=i))
    replies = dealer.receive(5)
    elapsed = time.monotonic() - t0
    assert all(replies[i][0]["ok"] for i in ["long", 0, 1, 2, 3]), replies
    assert elapsed < 5, elapsed
    sizes = client.ok({"op": "stats"})[0]["batches"]["sizes"]
    assert sizes == {"1": 1, "2": 2}, sizes
    for i, x in enumerate(followers):
        np.testing.assert_array_equal(outputs_of(replies[i])["output"], client.infer("wide", {"input": x})["output"])
    dealer.close()
    client.close()


def test_session_steps_batch_and_keep_order(start_daemon):
    # One worker: with more, a batch whose wait is over is split over the idle workers, and the
    # pairs below would run one by one.
    d = start_daemon("--workers", "1", "--max-batch", "8", "--max-delay-ms", "200", "--batch-wait", "always")
    client = d.client()
    inputs, expected = golden_case("char_lm")
    ids = inputs["input"]
    chunks = [[ids[:, :3], ids[:, 3:4], ids[:, 4:]], [ids[:, :6], ids[:, 6:], ids[:, :2]],
              [ids[:, 1:2], ids[:, :9], ids[:, 9:]], [ids[:, :5], ids[:, 5:7], ids[:, 7:]]]

    def run(sessions, dealer):
        """Each round sends one step per session at once; every session's chunks in order."""
        results = []
        for r in range(3):
            for s, session in enumerate(sessions):
                header, frames = binary_request("session.step", {"input": chunks[s][r]}, session=session, id=s)
                dealer.send(header, frames)
            replies = dealer.receive(len(sessions))
            results.append([outputs_of(replies[s]) for s in range(len(sessions))])
        return results

    open_sessions = lambda: [client.ok({"op": "session.open", "model": "char_lm"})[0]["session"] for _ in chunks]
    dealer = Dealer(d.endpoint)
    batched = run(open_sessions(), dealer)
    for r in range(3):
        serial_sessions = open_sessions() if r == 0 else serial_sessions
        for s, session in enumerate(serial_sessions):
            header, frames = binary_request("session.step", {"input": chunks[s][r]}, session=session)
            alone = outputs_of(client.call(header, frames))
            for name in alone:
                assert np.array_equal(batched[r][s][name], alone[name]), f"round {r} session {s} {name}"
    # The first session saw the golden sequence in three chunks: PyTorch's numbers.
    whole = np.concatenate([batched[r][0]["output"] for r in range(3)], axis=1)
    np.testing.assert_allclose(whole, expected["output"], rtol=1e-4, atol=1e-5)
    assert client.ok({"op": "stats"})[0]["batches"]["max_size"] > 1

    # Steps pipelined on one session are applied in the order sent.
    session = client.ok({"op": "session.open", "model": "char_lm"})[0]["session"]
    for i, chunk in enumerate([ids[:, :3], ids[:, 3:4], ids[:, 4:]]):
        header, frames = binary_request("session.step", {"input": chunk}, session=session, id=i)
        dealer.send(header, frames)
    replies = dealer.receive(3)
    whole = np.concatenate([outputs_of(replies[i])["output"] for i in range(3)], axis=1)
    np.testing.assert_allclose(whole, expected["output"], rtol=1e-4, atol=1e-5)
    dealer.close()
    client.close()


def test_concurrent_clients_get_their_own_answers(daemon):
    cases = {case: golden_case(case) for case in GOLDEN_CASES}
    failures = []

    def worker(seed):
        client = daemon.client()
        rng = np.random.default_rng(seed)
        try:
            for _ in range(15):
                case = GOLDEN_CASES[rng.integers(len(GOLDEN_CASES))]
                inputs, expected = cases[case]
                outputs = client.infer(case, inputs, binary=bool(rng.integers(2)))
                for name, array in expected.items():
                    np.testing.assert_allclose(outputs[name], array, rtol=1e-4, atol=1e-5, err_msg=f"{case}.{name}")
        except Exception as error:  # collected: a thread's assertion would otherwise vanish
            failures.append(repr(error))
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures[:3]


def test_load_and_unload_under_traffic(start_daemon):
    d = start_daemon()
    for copy in ("a", "b"):
        shutil.copy(GOLDEN / "lstm_basic" / "model.safetensors", d.models_dir / f"hot_{copy}.safetensors")
    control = d.client()
    control.ok({"op": "load", "model": "hot", "path": "hot_a.safetensors"})
    inputs, expected = golden_case("lstm_basic")
    stop = threading.Event()
    outcomes, failures = [], []

    def traffic():
        client = d.client(timeout=30)
        try:
            while not stop.is_set():
                header, frames = binary_request("infer", inputs, model="hot")
                reply = client.call(header, frames)
                if reply[0]["ok"]:
                    np.testing.assert_allclose(outputs_of(reply)["output"], expected["output"], rtol=1e-4, atol=1e-5)
                    outcomes.append("ok")
                else:
                    outcomes.append(reply[0]["error"]["code"])
        except Exception as error:
            failures.append(repr(error))
        finally:
            client.close()

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(30):
        control.ok({"op": "load", "model": "hot", "path": f"hot_{'ab'[i % 2]}.safetensors"})
        if i % 10 == 9:
            control.ok({"op": "unload", "model": "hot"})
            time.sleep(0.01)
            control.ok({"op": "load", "model": "hot", "path": "hot_a.safetensors"})
    stop.set()
    for t in threads:
        t.join(60)
    assert not failures, failures[:3]
    assert outcomes.count("ok") > 0
    assert set(outcomes) <= {"ok", "not_found"}, set(outcomes)
    control.close()


def test_idle_sessions_expire(start_daemon):
    d = start_daemon("--session-timeout", "0.4")
    client = d.client()
    idle = client.ok({"op": "session.open", "model": "char_lm"})[0]["session"]
    busy = client.ok({"op": "session.open", "model": "char_lm"})[0]["session"]
    step = {"op": "session.step", "inputs": {"input": {"dtype": "int64", "shape": [1, 1], "data": [1]}}}
    for _ in range(8):
        client.ok({**step, "session": busy})
        time.sleep(0.15)
    code, _ = client.error({**step, "session": idle})
    assert code == "not_found"
    client.ok({**step, "session": busy})
    assert client.ok({"op": "stats"})[0]["sessions_open"] == 1
    client.close()


def test_shutdown_answers_requests_in_flight(start_daemon):
    d = start_daemon("--workers", "1", "--max-batch", "1")
    dealer = Dealer(d.endpoint)
    count = 12
    for i in range(count):
        dealer.send({"op": "generate", "model": "char_lm", "prompt": [1], "max_tokens": 10000, "temperature": 0.5, "id": i})
    first = dealer.receive(1, timeout=120)  # work has begun; the others are queued or computing
    d.process.send_signal(signal.SIGTERM)
    late = d.client()
    code, message = late.error({"op": "describe", "model": "char_lm"})  # sent after the signal
    assert code == "busy" and "shutting down" in message
    late.close()
    replies = {**first, **dealer.receive(count - 1, timeout=120)}
    assert sorted(replies) == list(range(count))
    assert all(header["ok"] and len(header["tokens"]) == 10000 for header, _ in replies.values())
    assert d.process.wait(60) == 0
    in_flight = re.search(r"in_flight=(\d+) .*stopping", d.log_text())
    assert in_flight and int(in_flight.group(1)) >= 2, d.log_text()  # the signal came mid-work
    dealer.close()


@pytest.mark.parametrize("allowed_form", ["directory", "file"])
def test_curve_allows_listed_clients_only(start_daemon, tmp_path, allowed_form):
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run([recur_cli_binary(), "keygen", str(keys / "server")], check=True, capture_output=True)
    server_public = (keys / "server.public").read_text().strip().encode()
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    good_public, good_secret = zmq.curve_keypair()
    other_public, other_secret = zmq.curve_keypair()
    (allowed / "good.public").write_bytes(good_public + b"\n")
    (allowed / "ignored.txt").write_bytes(other_public + b"\n")  # a directory lends only *.public files
    if allowed_form == "file":
        allowed = tmp_path / "allowed.keys"
        allowed.write_bytes(b"# clients\n\n" + good_public + b"\n")
    d = start_daemon("--curve-secret-key", str(keys / "server.secret"), "--curve-allowed", str(allowed), ready=False)
    d.wait_ready(curve=(server_public, good_public, good_secret))

    good = d.client(curve=(server_public, good_public, good_secret))
    assert good.ok({"op": "ping"})[0]["version"] == 1
    for curve in [(server_public, other_public, other_secret), None]:
        refused = d.client(timeout=1.0, curve=curve)
        with pytest.raises(zmq.Again):
            refused.call({"op": "ping"})
        refused.close()
    assert good.ok({"op": "models"})[0]["models"]
    good.close()
    assert "client refused" in d.log_text()


def test_batches_group_inputs_of_similar_length(start_daemon):
    d = start_daemon("--workers", "1", "--max-batch", "16", "--max-delay-ms", "300", "--batch-wait", "always")
    rng = np.random.default_rng(3)
    requests = [rng.standard_normal((1, steps, 5)).astype(np.float32) for steps in [2, 3, 2, 3, 900, 1000, 700, 1000]]
    dealer = Dealer(d.endpoint)
    for i, x in enumerate(requests):
        header, frames = binary_request("infer", {"input": x}, model="lstm_basic", id=i)
        dealer.send(header, frames)
    together = dealer.receive(len(requests))
    client = d.client()
    for i, x in enumerate(requests):
        alone = client.infer("lstm_basic", {"input": x})
        for name, array in outputs_of(together[i]).items():
            assert np.array_equal(array, alone[name]), f"request {i} {name}"
    sizes = client.ok({"op": "stats"})[0]["batches"]["sizes"]
    # T of 2–3 and of 700–1000 fall in two power-of-two ranges (2–3, 512–1023): two batches of 4,
    # then the one-by-one runs.
    assert sizes.get("4") == 2, sizes
    dealer.close()
    client.close()
