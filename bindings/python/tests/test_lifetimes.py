"""Closing a model while its sessions and results are alive never crashes or corrupts them."""

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
