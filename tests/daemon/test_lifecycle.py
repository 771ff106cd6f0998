"""Models and requests over the daemon's life: a request finishes on the model it arrived for,
sessions keep theirs, stats follow the queue, logging follows --log-level, kept buffers go back
after an idle while, and SIGINT/SIGTERM answer every request already taken in, also one still
being decoded."""
import re
import signal
import struct
import time

import numpy as np

from conftest import GOLDEN, golden_case, inline
from test_concurrency import Dealer, binary_request, outputs_of


def negated_copy(case, path):
    """The golden model `case` with every weight negated: same shapes, other outputs."""
    data = bytearray((GOLDEN / case / "model.safetensors").read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    weights = np.frombuffer(data, np.float32, offset=8 + n)  # every tensor of these models is F32
    data[8 + n:] = (-weights).tobytes()
    path.write_bytes(data)


def test_a_request_finishes_on_the_model_it_arrived_for(start_daemon):
    d = start_daemon("--max-batch", "16", "--max-delay-ms", "1500", "--batch-wait", "always", models=["lstm_basic"])
    negated_copy("lstm_basic", d.models_dir / "negated.safetensors")
    inputs, expected = golden_case("lstm_basic")
    control = d.client()
    control.ok({"op": "load", "model": "m", "path": "lstm_basic.safetensors"})
    dealer = Dealer(d.endpoint)
    header, frames = binary_request("infer", inputs, model="m", id="old")
    dealer.send(header, frames)
    dealer.send({"op": "ping", "id": "ping"})
    assert "ping" in dealer.receive(1)  # the infer arrived first and waits for its batch to fill
    control.ok({"op": "load", "model": "m", "path": "negated.safetensors"})
    replaced = outputs_of(control.call(*binary_request("infer", inputs, model="m")))
    old = outputs_of(dealer.receive(1)["old"])
    assert np.array_equal(old["output"], outputs_of(control.call(*binary_request("infer", inputs, model="lstm_basic")))["output"])
    np.testing.assert_allclose(old["output"], expected["output"], rtol=1e-4, atol=1e-5)
    assert not np.allclose(replaced["output"], expected["output"], atol=1e-3)  # m is the new model now
    dealer.close()
    control.close()


def test_a_session_keeps_its_model_through_unload_and_load(start_daemon):
    d = start_daemon(models=["char_lm"])
    negated_copy("char_lm", d.models_dir / "negated.safetensors")
    inputs, expected = golden_case("char_lm")
    ids = inputs["input"]
    c = d.client()
    c.ok({"op": "load", "model": "m", "path": "char_lm.safetensors"})
    session = c.ok({"op": "session.open", "model": "m"})[0]["session"]
    step = lambda chunk: outputs_of(c.call(*binary_request("session.step", {"input": chunk}, session=session)))
    first = step(ids[:, :4])
    c.ok({"op": "unload", "model": "m"})
    second = step(ids[:, 4:7])
    c.ok({"op": "load", "model": "m", "path": "negated.safetensors"})
    third = step(ids[:, 7:])
    whole = np.concatenate([first["output"], second["output"], third["output"]], axis=1)
    np.testing.assert_allclose(whole, expected["output"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(third["lm.h_n"], expected["lm.h_n"], rtol=1e-4, atol=1e-5)
    # A new session on the name gets the new model.
    fresh = c.ok({"op": "session.open", "model": "m"})[0]["session"]
    other = outputs_of(c.call(*binary_request("session.step", {"input": ids}, session=fresh)))
    assert not np.allclose(other["output"], expected["output"], atol=1e-3)
    c.close()


def test_stats_follow_the_queue_and_the_outcomes(start_daemon):
    d = start_daemon("--workers", "1", "--max-queue", "50", models=["char_lm", "lstm_basic"])
    c = d.client()
    before = c.ok({"op": "stats"})[0]
    assert before["queue_depth"] == 0 and before["max_queue"] == 50
    assert before["models_loaded"] == 2 and before["sessions_open"] == 0
    dealer = Dealer(d.endpoint)
    slow = {"op": "generate", "model": "char_lm", "prompt": [1], "max_tokens": 10000, "temperature": 0}
    for i in range(3):
        dealer.send({**slow, "id": i})
    dealer.send({"op": "stats", "id": "stats"})  # answered by the I/O thread once the three are in
    replies = dealer.receive(4)
    during = replies["stats"][0]
    assert during["queue_depth"] >= 2, during  # at most one of the three has finished
    assert all(replies[i][0]["ok"] for i in range(3))
    c.raw([b"not json"])
    session = c.ok({"op": "session.open", "model": "char_lm"})[0]["session"]
    after = c.ok({"op": "stats"})[0]
    assert after["queue_depth"] == 0 and after["sessions_open"] == 1
    assert after["requests"]["generate"]["ok"] == 3
    assert after["requests"]["invalid"]["bad_request"] == 1
    assert after["requests"]["session.open"]["ok"] == 1
    latency = after["latency_ms"]["generate"]
    assert latency["samples"] == 3 and 0 < latency["p50"] <= latency["p99"]
    assert after["latency_ms"]["all"]["samples"] >= 6
    assert after["batches"] == before["batches"]  # generate is never batched
    assert after["uptime_s"] >= 0
    c.ok({"op": "session.close", "session": session})
    dealer.close()
    c.close()


def resident_bytes(process):
    status = open(f"/proc/{process.pid}/status").read()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024


def test_kept_buffers_go_back_after_an_idle_while(start_daemon):
    d = start_daemon("--release-idle-s", "0.5", models=["lstm_basic"])
    c = d.client()
    x = np.random.default_rng(11).standard_normal((16, 20000, 5)).astype(np.float32)
    first = c.infer("lstm_basic", {"input": x})  # a 40 MB input projection and 10 MB of output, kept
    busy = resident_bytes(d.process)
    released = []
    deadline = time.monotonic() + 20
    while not released and time.monotonic() < deadline:
        time.sleep(0.1)
        released = re.findall(r"released_bytes=(\d+) .*kept buffers released after idle", d.log_text())
    assert released, d.log_text()
    assert int(released[0]) >= 40 << 20, released
    idle = resident_bytes(d.process)
    assert busy - idle >= int(released[0]) // 4, (busy, idle, released)
    time.sleep(1.0)  # once an idle while, not every sweep
    assert len(re.findall("kept buffers released", d.log_text())) == 1, d.log_text()
    again = c.infer("lstm_basic", {"input": x})
    for name in first:
        np.testing.assert_array_equal(again[name], first[name])
    c.close()


def test_log_level_decides_what_is_logged(start_daemon):
    chatty = start_daemon("--log-level", "debug", models=["lstm_basic"])
    quiet = start_daemon("--log-level", "warning", models=["lstm_basic"])
    for d in (chatty, quiet):
        c = d.client()
        c.ok({"op": "describe", "model": "lstm_basic"})
        c.error({"op": "describe", "model": "absent"})
        c.close()
    assert re.search(r"op=describe outcome=ok", chatty.log_text()), chatty.log_text()
    assert re.search(r"op=describe outcome=not_found", chatty.log_text()), chatty.log_text()
    assert "serving" in chatty.log_text()
    assert "op=describe" not in quiet.log_text() and "serving" not in quiet.log_text(), quiet.log_text()


def test_sigint_answers_a_request_still_being_decoded(start_daemon):
    # One worker, busy with two long generations; behind them waits the decoding of a large
    # inline request (its header is over 64 KiB, so a worker decodes it). The signal comes while
    # it waits: it was taken in before the signal, so it gets its answer, not "busy".
    d = start_daemon("--workers", "1", models=["char_lm", "lstm_basic"])
    x = np.random.default_rng(7).standard_normal((1, 3000, 5)).astype(np.float32)
    dealer = Dealer(d.endpoint)
    for i in range(2):
        dealer.send({"op": "generate", "model": "char_lm", "prompt": [1], "max_tokens": 10000, "temperature": 0, "id": i})
    dealer.send({"op": "infer", "model": "lstm_basic", "id": "large", "inputs": {"input": inline(x)}})
    dealer.send({"op": "ping", "id": "ping"})
    replies = {}
    while "ping" not in replies:  # answered at once: the requests before it are in
        replies.update(dealer.receive(1))
    d.process.send_signal(signal.SIGINT)
    late = d.client()
    assert late.error({"op": "describe", "model": "lstm_basic"})[0] == "busy"  # sent after the signal
    late.close()
    replies.update(dealer.receive(4 - len(replies)))
    assert replies["large"][0]["ok"], replies["large"][0]
    assert outputs_of(replies["large"])["output"].shape == (1, 3000, 8)
    assert all(replies[i][0]["ok"] and len(replies[i][0]["tokens"]) == 10000 for i in range(2))
    assert d.process.wait(60) == 0
    dealer.close()
