"""Inputs reach the library without a copy when they already fit, and are converted once otherwise."""

import numpy as np
import pytest

import recur
from recur._inputs import as_tensor_array


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
