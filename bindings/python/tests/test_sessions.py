"""Streaming: a sequence fed in chunks gives PyTorch's whole-sequence outputs and final states."""

import numpy as np
import pytest

import recur
from support import assert_close, load_case

# Golden cases without lengths or given states: their expected outputs are one streaming run.
STREAMABLE = ["lstm_basic", "gru_stacked", "rnn_tanh_nobias", "char_lm"]


def chunks(x, sizes):
    start = 0
    for size in sizes:
        yield x[:, start:start + size]
        start += size
    assert start == x.shape[1]


@pytest.mark.parametrize("case", STREAMABLE)
def test_chunked_equals_whole(transport, case):
    data = load_case(case)
    steps = data["input"].shape[1]
    sizes = [1, steps - 3, 2]
    with transport.session(case) as session:
        parts = [session.step(chunk) for chunk in chunks(data["input"], sizes)]
    assert_close(np.concatenate([p["output"] for p in parts], axis=1), data["expected"]["output"], case)
    for name, expected in data["expected"].items():
        if name != "output":
            assert_close(parts[-1][name], expected, f"{case} {name}")


def test_reset_starts_over(transport):
    data = load_case("char_lm")
    with transport.session("char_lm") as session:
        session.step(data["input"][:, :4])
        session.reset()
        outputs = session.step(data["input"][:, :4])
    assert_close(outputs["output"], data["expected"]["output"][:, :4], "after reset")


def test_sessions_are_independent(transport):
    data = load_case("lstm_basic")
    with transport.session("lstm_basic") as first, transport.session("lstm_basic") as second:
        first.step(data["input"][:, :3])
        second.step(np.zeros_like(data["input"][:, :2]))
        tail = first.step(data["input"][:, 3:])
    assert_close(tail["output"], data["expected"]["output"][:, 3:], "interleaved sessions")


def test_bidirectional_model_cannot_stream(transport):
    with pytest.raises(recur.RecurError) as error:
        transport.session("bigru_tagger")
    assert error.value.code == "unsupported"
    assert "bidirectional" in error.value.message


def test_closed_session_raises(transport):
    session = transport.session("lstm_basic")
    session.close()
    session.close()
    with pytest.raises(recur.RecurError) as error:
        session.step(load_case("lstm_basic")["input"])
    assert "closed" in error.value.message


@pytest.mark.parametrize("case", ["pool_mean_max", "lstm_last_pool"])
def test_pooling_applies_to_each_chunk(transport, case):
    # model-format.md: pooling applies to the chunk given, while the recurrent state carries over;
    # so a step equals a run over that chunk from the state the previous steps left.
    x = load_case(case)["input"]
    with transport.session(case) as session:
        first = session.step(x[:, :2])
        second = session.step(x[:, 2:])
    assert first["output"].shape == second["output"].shape == (x.shape[0], first["output"].shape[1])
    alone = transport.run(case, x[:, :2])
    for name in first:
        assert_close(first[name], alone[name], f"{case} first chunk {name}")
    carried = {name.replace(".h_n", ".h0").replace(".c_n", ".c0"): value for name, value in first.items() if name != "output"}
    alone = transport.run(case, x[:, 2:], states=carried)
    for name in second:
        assert_close(second[name], alone[name], f"{case} second chunk {name}")
