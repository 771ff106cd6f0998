"""Inputs reach the library without a copy when they already fit, and are converted once otherwise."""

import numpy as np
import pytest

import recur
from recur._inputs import as_tensor_array
from support import load_case, model_path


@pytest.mark.parametrize("array", [np.zeros((2, 3, 4), np.float32), np.zeros((2, 3), np.int32),
                                   np.zeros((2, 3), np.int64), np.zeros((4, 6), np.float32)[:2]])
def test_fitting_arrays_are_passed_as_they_are(array):
    assert as_tensor_array("input", array) is array


@pytest.mark.parametrize("value, dtype", [
    (np.zeros((2, 3), np.float64), np.float32), (np.zeros((2, 3), np.float16), np.float32),
    (np.zeros((2, 3), np.uint8), np.int64), (np.zeros((2, 3), np.int16), np.int64),
    (np.zeros((4, 6), np.float32)[:, ::2], np.float32), (np.zeros((2, 3), ">f4"), np.float32),
    ([[1, 2], [3, 4]], np.int64), ([[0.5]], np.float32),
])
def test_other_inputs_are_converted_once(value, dtype):
    converted = as_tensor_array("input", value)
    assert converted.dtype == np.dtype(dtype) and converted.flags.c_contiguous and converted.flags.aligned
    np.testing.assert_array_equal(converted, np.asarray(value).astype(dtype))
    if isinstance(value, np.ndarray):
        assert not np.shares_memory(converted, value)


@pytest.mark.parametrize("value, words", [
    (np.array([[True]]), ["bool"]), (np.array([["a"]]), ["<U1"]), ([[1], [2, 3]], ["not an array"]),
    (np.array([2**64 - 1], np.uint64), ["does not fit"]), (np.zeros((1, 1), np.complex64), ["complex64"]),
])
def test_non_numbers_are_refused(value, words):
    with pytest.raises(recur.RecurError) as error:
        as_tensor_array("input", value)
    assert error.value.code == "invalid_input"
    for word in ["input", *words]:
        assert word in error.value.message


class AddressSpy:
    """The real librecur.so, recording the data address of every tensor handed to a run or step
    call before making it."""

    def __init__(self, lib):
        self.lib = lib
        self.addresses = []

    def __getattr__(self, name):
        return getattr(self.lib, name)

    def _record(self, call, handle, structs, count, out):
        self.addresses.append([structs[i].data for i in range(count)])
        return call(handle, structs, count, out)

    def recur_model_run(self, *arguments):
        return self._record(self.lib.recur_model_run, *arguments)

    def recur_session_step(self, *arguments):
        return self._record(self.lib.recur_session_step, *arguments)


def test_contiguous_arrays_reach_the_library_at_their_own_address():
    # 1.3 MB of features, lengths and initial states: the library reads the caller's memory.
    data = load_case("lstm_lengths_states")
    x = np.random.default_rng(0).standard_normal((16, 4000, data["input"].shape[2])).astype(np.float32)
    lengths = np.full(16, 4000, np.int64)
    states = {name: np.zeros((value.shape[0], 16, value.shape[2]), np.float32) for name, value in data["states"].items()}
    with recur.Model(model_path("lstm_lengths_states")) as model:
        spy = model._lib = AddressSpy(model._lib)
        model.run(x, lengths=lengths, states=states)
        assert spy.addresses == [[x.ctypes.data, lengths.ctypes.data, *(s.ctypes.data for s in states.values())]]
        # Read-only arrays too (their address is found another way than writable ones').
        frozen = x.view()
        frozen.flags.writeable = False
        model.run(frozen, lengths=lengths)
        assert spy.addresses[-1] == [x.ctypes.data, lengths.ctypes.data]
        # A float64 copy is converted once: the library sees the converted array, not the caller's.
        model.run(x.astype(np.float64)[:1], lengths=lengths[:1].astype(np.int32))
        converted = spy.addresses[-1]
        assert converted[1] != lengths.ctypes.data and len(converted) == 2

        with model.session() as session:
            session._lib = spy
            chunk = x[:, :100]  # rows of 100 steps out of 4000: not contiguous, converted once
            contiguous = np.ascontiguousarray(chunk)
            session.step(contiguous)
            assert spy.addresses[-1] == [contiguous.ctypes.data]
            session.step(chunk)
            assert spy.addresses[-1] != [chunk.ctypes.data]


def test_client_frames_are_views_of_the_callers_arrays(client):
    x = np.random.default_rng(1).standard_normal((8, 5000, 5)).astype(np.float32)  # 800 kB
    lengths = np.full(8, 5000, np.int32)
    sent = []
    request = client._request

    def spy(header, frames=()):
        sent.append(list(frames))
        return request(header, frames)

    client._request = spy
    outputs = client.infer("lstm_basic", x, lengths=lengths)
    assert outputs["output"].shape == (8, 5000, 8)
    (frames,) = sent
    assert len(frames) == 2 and np.shares_memory(frames[0], x) and np.shares_memory(frames[1], lengths)
    assert frames[0].nbytes == x.nbytes
