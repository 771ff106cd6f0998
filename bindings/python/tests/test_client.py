"""recur.Client: the daemon's ops (protocol.md), its errors, time-outs and CURVE."""

import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import zmq

import recur
from support import GOLDEN_CASES, assert_close, free_port, load_case, model_path, start_daemon


def test_ping_reports_the_versions(client):
    reply = client.ping()
    assert reply["abi"] == 1 and "version" in reply
    assert recur.__version__ in reply.values()  # the daemon runs the library built with it


def test_models_lists_every_loaded_model(client):
    listed = {entry["name"]: entry for entry in client.models()}
    assert set(listed) == set(GOLDEN_CASES)
    assert listed["char_lm"]["input"] == {"kind": "tokens", "vocab_size": 12}
    assert "output" in listed["char_lm"]["outputs"]


def test_describe_is_the_models_description(client):
    with recur.Model(model_path("bilstm_classifier")) as model:
        assert client.describe("bilstm_classifier") == model.describe()


def test_infer_can_ask_for_some_outputs(client):
    data = load_case("lstm_basic")
    outputs = client.infer("lstm_basic", data["input"], outputs=["rnn.h_n"])
    assert list(outputs) == ["rnn.h_n"]
    assert_close(outputs["rnn.h_n"], data["expected"]["rnn.h_n"], "rnn.h_n")


def test_remote_generation_matches_in_process(client):
    with recur.Model(model_path("char_lm")) as model:
        local = model.generate([3, 1], 25, temperature=0.7, top_k=5, top_p=0.9, seed=123, stop=[11])
    assert client.generate("char_lm", [3, 1], 25, temperature=0.7, top_k=5, top_p=0.9, seed=123, stop=[11]) == local


def test_seeds_travel_exactly(client):
    with recur.Model(model_path("char_lm")) as model:
        for seed in (0, 2**53 + 1, 2**63 - 1):  # past 2**53 a double would round it
            assert client.generate("char_lm", [3], 30, seed=seed) == model.generate([3], 30, seed=seed), seed
        assert model.generate([3], 5, seed=2**64 - 1)
    with pytest.raises(recur.RecurError) as error:
        client.generate("char_lm", [3], 5, seed=2**63)
    assert error.value.code == "invalid_argument" and "seed" in error.value.message


def test_load_and_unload(client, served_models):
    data = load_case("char_lm")
    shutil.copyfile(model_path("char_lm"), served_models / "extra.safetensors")
    client.load("extra", str(served_models / "extra.safetensors"))
    assert "extra" in {entry["name"] for entry in client.models()}
    assert_close(client.infer("extra", data["input"])["output"], data["expected"]["output"], "extra")
    client.unload("extra")
    for call in (lambda: client.infer("extra", data["input"]), lambda: client.unload("extra")):
        with pytest.raises(recur.RecurError) as error:
            call()
        assert error.value.code == "not_found"
        assert "extra" in error.value.message


def test_failed_load_changes_nothing(client, served_models):
    with pytest.raises(recur.RecurError) as error:
        client.load("char_lm", str(served_models / "absent.safetensors"))
    assert error.value.message
    data = load_case("char_lm")
    assert_close(client.infer("char_lm", data["input"])["output"], data["expected"]["output"], "unchanged")


def test_unknown_model_and_session(client):
    with pytest.raises(recur.RecurError) as error:
        client.infer("no_such_model", np.zeros((1, 2, 5), np.float32))
    assert error.value.code == "not_found" and "no_such_model" in error.value.message
    session = recur.RemoteSession(client, "no-such-session")
    with pytest.raises(recur.RecurError) as error:
        session.step(np.zeros((1, 2, 5), np.float32))
    assert error.value.code == "not_found"
    session.close()  # already gone on the daemon: closing is quiet


def test_stats_is_the_daemons_reply(client):
    stats = client.stats()
    assert isinstance(stats, dict) and stats and "ok" not in stats
    json.dumps(stats)  # plain JSON values


def test_threads_share_one_client(client):
    cases = {case: load_case(case) for case in ("bilstm_classifier", "gru_stacked")}

    def work(index):
        case = list(cases)[index % 2]
        data = cases[case]
        for _ in range(10):
            outputs = client.infer(case, data["input"], lengths=data["lengths"])
            assert_close(outputs["output"], data["expected"]["output"], f"thread {index} {case}")
        return index

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(work, range(4))) == [0, 1, 2, 3]


def test_closed_client(daemon):
    client = recur.Client(daemon)
    client.close()
    client.close()
    with pytest.raises(recur.RecurError) as error:
        client.ping()
    assert "closed" in error.value.message


class FakeDaemon:
    """A ROUTER socket answering REQ clients with ``answer(header, frames)`` -> (header, frames),
    or not at all when it returns None. Records what it received."""

    def __init__(self, answer):
        self.answer = answer
        self.received = []
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve)
        self.thread.start()

    def serve(self):
        while not self.stopping.is_set():
            if not self.socket.poll(50):
                continue
            identity, empty, header, *frames = self.socket.recv_multipart()
            self.received.append((json.loads(header), frames))
            reply = self.answer(json.loads(header), frames)
            if reply is not None:
                self.socket.send_multipart([identity, empty, json.dumps(reply[0]).encode(), *reply[1]])

    def close(self):
        self.stopping.set()
        self.thread.join()
        self.socket.close()
        self.context.term()


def test_timeout_replaces_the_socket_and_the_client_stays_usable():
    answers = iter([None, ({"ok": True, "version": "9.9.9", "abi": 1}, [])])
    fake = FakeDaemon(lambda header, frames: next(answers))
    try:
        with recur.Client(fake.endpoint, timeout=0.3) as client:
            with pytest.raises(recur.RecurError) as error:
                client.ping()
            assert error.value.code == "timeout" and fake.endpoint in error.value.message
            assert client.ping() == {"version": "9.9.9", "abi": 1}
    finally:
        fake.close()


def test_ping_and_stats_return_the_reply_fields():
    fake = FakeDaemon(lambda header, frames: ({"ok": True, "id": 3, "op_seen": header["op"], "n": [1, 2]}, []))
    try:
        with recur.Client(fake.endpoint, timeout=5) as client:
            assert client.stats() == {"op_seen": "stats", "n": [1, 2]}
            assert client.ping() == {"op_seen": "ping", "n": [1, 2]}
            with pytest.raises(recur.RecurError) as error:
                client.models()  # the reply has no "models" list
            assert error.value.code == "internal" and "models" in error.value.message
    finally:
        fake.close()


def test_tensors_travel_as_binary_frames_and_inline_replies_are_read():
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    lengths = np.array([2], np.int32)

    def answer(header, frames):
        return {"ok": True, "outputs": {"output": {"dtype": "float32", "shape": [1, 2], "data": [[0.5, -1.0]]},
                                        "ids": {"dtype": "int64", "shape": [2], "frame": 1}}}, \
            [np.array([7, -8], "<i8").tobytes()]

    fake = FakeDaemon(answer)
    try:
        with recur.Client(fake.endpoint, timeout=5) as client:
            outputs = client.infer("m", x, lengths=lengths)
    finally:
        fake.close()
    (header, frames), = fake.received
    assert header["op"] == "infer" and header["model"] == "m" and header["binary"] is True
    assert header["inputs"] == {"input": {"dtype": "float32", "shape": [1, 2, 3], "frame": 1},
                                "lengths": {"dtype": "int32", "shape": [1], "frame": 2}}
    assert frames == [x.tobytes(), lengths.tobytes()]
    np.testing.assert_array_equal(outputs["output"], np.array([[0.5, -1.0]], np.float32))
    np.testing.assert_array_equal(outputs["ids"], [7, -8])
    assert outputs["ids"].dtype == np.int64 and outputs["ids"].flags.writeable


@pytest.mark.parametrize("reply, frames", [
    ({"ok": True, "outputs": {"output": {"dtype": "float32", "shape": [3], "frame": 1}}}, [b"12345678"]),
    ({"ok": True, "outputs": {"output": {"dtype": "float32", "shape": [1], "frame": 2}}}, [b"1234"]),
    # 2⁶² · 4 elements wrap to 0 in 64-bit arithmetic, which an empty frame would match.
    ({"ok": True, "outputs": {"output": {"dtype": "float32", "shape": [2**62, 4], "frame": 1}}}, [b""]),
    ({"ok": True, "outputs": {"output": {"dtype": "float16", "shape": [1], "data": [1]}}}, []),
    ({"ok": True}, []),
    ({"ok": False, "error": {"code": "busy", "message": "queue full"}}, []),
])
def test_malformed_or_failed_replies_raise(reply, frames):
    fake = FakeDaemon(lambda header, received: (reply, frames))
    try:
        with recur.Client(fake.endpoint, timeout=5) as client:
            with pytest.raises(recur.RecurError) as error:
                client.infer("m", np.zeros((1, 1, 1), np.float32))
    finally:
        fake.close()
    assert error.value.code == ("busy" if not reply["ok"] else "internal")
    assert error.value.message


def test_curve_needs_an_allowed_key(recurd, tmp_path):
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    (tmp_path / "server.secret").write_bytes(server_secret + b"\n")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "client.public").write_bytes(client_public + b"\n")
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(model_path("char_lm"), models / "char_lm.safetensors")
    keys = {"server_key": server_public.decode(), "public_key": client_public.decode(),
            "secret_key": client_secret.decode()}
    with start_daemon(recurd, models, "--curve-secret-key", str(tmp_path / "server.secret"),
                      "--curve-allowed", str(allowed), **keys) as endpoint:
        with recur.Client(endpoint, timeout=10, **keys) as client:
            assert client.generate("char_lm", [1], 3, temperature=0) == \
                recur.Model(model_path("char_lm")).generate([1], 3, temperature=0)
        # Without keys, or with a key pair the daemon does not know, there is no answer.
        for options in ({}, {"server_key": server_public}):
            with recur.Client(endpoint, timeout=0.5, **options) as stranger:
                with pytest.raises(recur.RecurError) as error:
                    stranger.ping()
                assert error.value.code == "timeout"


def test_client_argument_checks():
    for endpoint, options in [("tcp://127.0.0.1:9", {"timeout": 0}), ("tcp://127.0.0.1:9", {"timeout": "soon"}),
                              ("tcp://127.0.0.1:9", {"timeout": float("inf")}),
                              ("tcp://127.0.0.1:9", {"timeout": -1}),
                              ("tcp://127.0.0.1:9", {"public_key": "x" * 40, "secret_key": "y" * 40}),
                              ("tcp://127.0.0.1:9", {"server_key": "z" * 40, "public_key": "x" * 40}),
                              ("tcp://127.0.0.1:9", {"server_key": "short"}),
                              ("tcp://127.0.0.1:9", {"server_key": "~" * 40}),  # not Z85
                              ("no-such-transport://x", {})]:
        with pytest.raises(recur.RecurError) as error:
            recur.Client(endpoint, **options)
        assert error.value.code == "invalid_argument"


def test_a_late_reply_never_answers_the_next_request(daemon):
    # 10000 greedy tokens take longer than the time-out: their reply comes after the client has
    # given up and replaced its socket, while its next request waits, and must not be taken for it.
    with recur.Model(model_path("char_lm")) as model:
        expected = model.generate([2], 5000, temperature=0)
    with recur.Client(daemon, timeout=0.01) as client:
        with pytest.raises(recur.RecurError) as error:
            client.generate("char_lm", [1], 10000, temperature=0)
        assert error.value.code == "timeout"
        with pytest.raises(recur.RecurError):
            client.timeout = 0
        client.timeout = 30
        assert client.timeout == 30.0
        assert client.generate("char_lm", [2], 5000, temperature=0) == expected
        assert client.ping()["abi"] == 1


def test_the_client_reconnects_to_a_restarted_daemon(recurd, served_models):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with recur.Client(endpoint, timeout=2.0) as client:
        with start_daemon(recurd, served_models, endpoint=endpoint):
            assert client.ping()["abi"] == 1
        with pytest.raises(recur.RecurError) as error:  # nobody there: a time-out, not a stuck socket
            client.ping()
        assert error.value.code == "timeout"
        with start_daemon(recurd, served_models, endpoint=endpoint):
            assert client.ping()["abi"] == 1
            assert "char_lm" in {entry["name"] for entry in client.models()}


def test_a_remote_session_is_closed_on_the_daemon(client):
    data = load_case("char_lm")
    before = client.stats()["sessions_open"]
    with client.session("char_lm") as session:
        assert client.stats()["sessions_open"] == before + 1
        session.step(data["input"][:, :2])
    assert client.stats()["sessions_open"] == before
    session.close()  # idempotent
    with pytest.raises(recur.RecurError) as error:
        session.reset()
    assert "closed" in error.value.message
