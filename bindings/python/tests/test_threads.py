"""Several threads sharing one Model: the same answers as one thread, PyTorch's answers."""

import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import recur
from support import assert_close, load_case, model_path

THREADS = 6


def test_threads_share_one_model_for_run():
    cases = {case: load_case(case) for case in ("bilstm_classifier", "lstm_lengths_states")}
    models = {case: recur.Model(model_path(case)) for case in cases}

    def work(index):
        case = list(cases)[index % 2]
        data = cases[case]
        for _ in range(30):
            outputs = models[case].run(data["input"], lengths=data["lengths"], states=data["states"])
            for name, expected in data["expected"].items():
                assert_close(outputs[name], expected, f"thread {index} {case} {name}")
        return index

    with ThreadPoolExecutor(THREADS) as pool:
        assert sorted(pool.map(work, range(THREADS))) == list(range(THREADS))
    for model in models.values():
        model.close()


def test_threads_stream_and_generate_on_one_model():
    data = load_case("char_lm")
    model = recur.Model(model_path("char_lm"))
    reference = model.generate([1, 2, 3], 16, temperature=0.9, seed=11)

    def work(index):
        with model.session() as session:
            parts = [session.step(data["input"][:, t:t + 1])["output"] for t in range(data["input"].shape[1])]
        assert_close(np.concatenate(parts, axis=1), data["expected"]["output"], f"thread {index} stream")
        return model.generate([1, 2, 3], 16, temperature=0.9, seed=11)

    with ThreadPoolExecutor(THREADS) as pool:
        assert list(pool.map(work, range(THREADS))) == [reference] * THREADS
    model.close()


def test_one_session_shared_by_threads_is_serialized():
    # Steps from several threads interleave in some order, but each is whole: after N single-step
    # calls of the same token, the state is the one after N steps of that token.
    model = recur.Model(model_path("char_lm"))
    token = np.array([[4]])
    with model.session() as shared:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda _: shared.step(token), range(24)))
        final = shared.step(token)
    whole = model.run(np.full((1, 25), 4))
    assert_close(final["output"][:, -1], whole["output"][:, -1], "serialized steps")
    model.close()


class InCall:
    """The real librecur.so, marking while a recur_model_run call is in progress."""

    def __init__(self, lib):
        self.lib = lib
        self.active = False

    def __getattr__(self, name):
        return getattr(self.lib, name)

    def recur_model_run(self, *arguments):
        self.active = True
        try:
            return self.lib.recur_model_run(*arguments)
        finally:
            self.active = False


def test_the_gil_is_released_during_library_calls():
    # With a switch interval far longer than the test, a thread gives up the GIL only by itself
    # (ctypes does so around calls into a CDLL). The main thread then runs Python while the other
    # thread is inside recur_model_run only if that call released the GIL.
    model = recur.Model(model_path("lstm_basic"))
    call = model._lib = InCall(model._lib)
    x = np.zeros((4, 20000, 5), np.float32)
    seen = threading.Event()
    done = threading.Event()

    def work():
        for _ in range(20):  # long calls, until the main thread has seen one from outside
            model.run(x)
            if seen.is_set():
                break
        done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        worker = threading.Thread(target=work)
        worker.start()
        while not done.wait(0.001):  # waiting releases the GIL; returning needs it back
            if call.active:
                seen.set()
        worker.join()
    finally:
        sys.setswitchinterval(interval)
        model.close()
    assert seen.is_set(), "no Python ran in another thread during recur_model_run: the GIL was held"
