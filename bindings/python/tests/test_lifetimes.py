"""Closing a model while its sessions and results are alive never crashes or corrupts them."""

import ctypes
import gc
import threading

import numpy as np
import pytest

import recur
from support import assert_close, load_case, model_path


def test_results_outlive_the_model():
    data = load_case("lstm_basic")
    model = recur.Model(model_path("lstm_basic"))
    outputs = model.run(data["input"])
    model.close()
    del model
    gc.collect()
    outputs["output"] += 0  # owned and writable
    assert_close(outputs["output"], data["expected"]["output"] + 0, "after close")


def test_results_are_arrays_of_their_own():
    data = load_case("lstm_basic")
    with recur.Model(model_path("lstm_basic")) as model, model.session() as session:
        results = [model.run(data["input"]), model.run(data["input"]), session.step(data["input"])]
    first, *others = results
    for name, array in first.items():
        assert array.flags.writeable and array.flags.c_contiguous and array.flags.aligned, name
        array[...] = np.nan
        for other in others:
            assert not np.shares_memory(array, other[name]), name
            assert_close(other[name], data["expected"][name], name)


def _large_lstm(path):
    """An LSTM whose output for [16, 40, 8] is 320 KiB, beside a small final state."""
    H, I = 128, 8
    rng = np.random.default_rng(5)
    tensors = {f"rnn.{name}": rng.uniform(-0.1, 0.1, shape).astype(np.float32)
               for name, shape in (("weight_ih_l0", (4 * H, I)), ("weight_hh_l0", (4 * H, H)),
                                   ("bias_ih_l0", (4 * H,)), ("bias_hh_l0", (4 * H,)))}
    architecture = {"format": 1, "input": {"kind": "features", "size": I},
                    "layers": [{"name": "rnn", "type": "lstm", "input_size": I, "hidden_size": H}]}
    recur.save(path, architecture, tensors)
    return rng.standard_normal((16, 40, I), dtype=np.float32)


@pytest.fixture
def freed_memory_overwritten():
    """glibc's malloc fills memory as it is freed (M_PERTURB), so an array left pointing into a freed
    result reads bytes that are not its values; without glibc, freed memory keeps them for a while."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        perturb = libc.mallopt(-6, 0x5A)  # M_PERTURB
    except (OSError, AttributeError):
        perturb = 0
    yield
    if perturb:
        libc.mallopt(-6, 0)


@pytest.mark.usefixtures("freed_memory_overwritten")
def test_large_outputs_outlive_the_model_other_results_and_their_own_states(tmp_path):
    x = _large_lstm(tmp_path / "lstm.safetensors")
    model = recur.Model(tmp_path / "lstm.safetensors")
    outputs = model.run(x)
    state = outputs.pop("rnn.h_n")
    kept_state = state.copy()
    later = [model.run(x * 2) for _ in range(3)]  # results made and freed while the first one lives
    model.close()
    del model, later
    gc.collect()
    output = outputs["output"]
    assert output.flags.writeable and output.flags.c_contiguous and output.flags.aligned
    # The last step's output is the final state: the output still holds the values the run wrote,
    # and they are an LSTM's, within [-1, 1].
    np.testing.assert_array_equal(output[:, -1, :], state[0])
    assert np.abs(output).max() <= 1
    del outputs, output
    gc.collect()
    np.testing.assert_array_equal(state, kept_state)


def test_large_outputs_of_two_runs_are_separate(tmp_path):
    x = _large_lstm(tmp_path / "lstm.safetensors")
    with recur.Model(tmp_path / "lstm.safetensors") as model:
        first, second = model.run(x), model.run(x)
    assert not np.shares_memory(first["output"], second["output"])
    first["output"][...] = np.nan
    assert np.isfinite(second["output"]).all()


def test_session_keeps_working_after_its_model_is_closed():
    data = load_case("char_lm")
    model = recur.Model(model_path("char_lm"))
    session = model.session()
    first = session.step(data["input"][:, :4])
    model.close()
    del model
    gc.collect()
    rest = session.step(data["input"][:, 4:])
    session.close()
    assert_close(np.concatenate([first["output"], rest["output"]], axis=1), data["expected"]["output"], "stream")


def test_closed_model_raises_and_close_is_idempotent():
    model = recur.Model(model_path("char_lm"))
    with model:
        pass
    model.close()
    for call in (lambda: model.run(np.array([[1]])), model.session, model.describe, lambda: model.labels,
                 lambda: model.generate([1], 2), lambda: model.encode(["a"])):
        with pytest.raises(recur.RecurError) as error:
            call()
        assert error.value.code == "invalid_argument"
        assert "closed" in error.value.message


def test_objects_dropped_in_any_order():
    data = load_case("char_lm")
    for round_ in range(50):
        model = recur.Model(model_path("char_lm"))
        sessions = [model.session() for _ in range(3)]
        sessions[round_ % 3].step(data["input"][:, :2])
        if round_ % 2:
            model.close()
        del model
        sessions[1].close()
        del sessions
    gc.collect()


def test_closing_while_other_threads_run():
    data = load_case("lstm_basic")
    model = recur.Model(model_path("lstm_basic"))
    outcomes = []

    def work():
        try:
            for _ in range(200):
                assert_close(model.run(data["input"])["output"], data["expected"]["output"], "thread")
        except recur.RecurError as error:
            outcomes.append(error.code)
        else:
            outcomes.append("finished")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    model.close()
    for thread in threads:
        thread.join()
    # Each thread either finished or was told the model is closed; none saw a wrong result.
    assert len(outcomes) == 4 and set(outcomes) <= {"finished", "invalid_argument"}
