"""Failures raise RecurError with a code to branch on and a message that names what was wrong."""

import numpy as np
import pytest

import recur
from recur import _library, _model
from support import load_case, model_path


@pytest.mark.parametrize("case, inputs, words", [
    ("lstm_basic", {"x": np.zeros((2, 3, 4), np.float32)}, ["input", "5", "[2, 3, 4]"]),
    ("lstm_basic", {"x": np.zeros((2, 3), np.float32)}, ["input", "[2, 3]"]),
    ("lstm_basic", {"x": np.zeros((2, 3, 5), np.int64)}, ["input", "float32", "int64"]),
    ("lstm_basic", {"x": np.zeros((2, 3, 5), np.float32), "lengths": [0, 3]}, ["lengths[0]", "0"]),
    ("lstm_basic", {"x": np.zeros((2, 3, 5), np.float32), "lengths": [3, 4]}, ["lengths[1]", "4"]),
    ("lstm_basic", {"x": np.zeros((2, 3, 5), np.float32), "states": {"nope.h0": np.zeros((1, 2, 8))}}, ["nope.h0"]),
    ("lstm_basic", {"x": np.zeros((2, 3, 5), np.float32), "states": {"rnn.h0": np.zeros((1, 3, 8))}},
     ["rnn.h0", "[1, 3, 8]"]),
    ("bilstm_classifier", {"x": np.array([[3, 20]])}, ["token id 20", "[0, 20)"]),
    ("bilstm_classifier", {"x": np.array([[-1, 2]])}, ["token id -1"]),
    ("bilstm_classifier", {"x": np.zeros((2, 3), np.float32)}, ["token", "float32"]),
    ("bilstm_classifier", {"x": np.array([["a", "b"]])}, ["input", "<U1"]),
    ("lstm_basic", {"x": np.zeros((1,) * 9, np.float32)}, ["input"]),
])
def test_invalid_input(transport, case, inputs, words):
    options = dict(inputs)
    x = options.pop("x")
    with pytest.raises(recur.RecurError) as error:
        transport.run(case, x, **options)
    assert error.value.code == "invalid_input"
    for word in words:
        assert word in error.value.message
    assert str(error.value) == f"invalid_input: {error.value.message}"


def test_a_failed_call_leaves_the_model_usable(transport):
    data = load_case("lstm_basic")
    with pytest.raises(recur.RecurError):
        transport.run("lstm_basic", data["input"][..., :4])
    assert transport.run("lstm_basic", data["input"])["output"].shape == data["expected"]["output"].shape


def test_missing_file_is_io(tmp_path):
    path = tmp_path / "absent.safetensors"
    with pytest.raises(recur.RecurError) as error:
        recur.Model(path)
    assert error.value.code == "io"
    assert str(path) in error.value.message


@pytest.mark.parametrize("content, words", [
    (b"", ["too short"]),
    (b"\x10" + b"\0" * 7 + b"{not json}xxxxxx", ["JSON"]),
    ((2**40).to_bytes(8, "little") + b"{}", ["header length"]),
])
def test_malformed_file_is_format(tmp_path, content, words):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    for load in (lambda: recur.Model(path), lambda: recur.Model.from_bytes(content), lambda: recur.load_tensors(path)):
        with pytest.raises(recur.RecurError) as error:
            load()
        assert error.value.code == "format"
        for word in words:
            assert word in error.value.message


def test_file_without_architecture_is_format(tmp_path):
    path = tmp_path / "plain.safetensors"
    recur.save_tensors(path, {"a": np.zeros(3, np.float32)})
    with pytest.raises(recur.RecurError) as error:
        recur.Model(path)
    assert error.value.code == "format"
    assert "recur" in error.value.message


def test_path_with_nul_is_refused():
    with pytest.raises(recur.RecurError) as error:
        recur.Model("model\0.safetensors")
    assert error.value.code == "invalid_argument"


def test_states_must_be_a_mapping(transport):
    with pytest.raises(recur.RecurError) as error:
        transport.run("lstm_basic", np.zeros((1, 2, 5), np.float32), states=[np.zeros((1, 1, 8))])
    assert error.value.code == "invalid_argument"
    assert "states" in error.value.message


def test_encode_needs_a_tokenizer():
    with recur.Model(model_path("char_lm")) as model:
        with pytest.raises(recur.RecurError) as error:
            model.encode(["abc"])
    assert error.value.code == "unsupported"
    assert "tokenizer" in error.value.message


@pytest.mark.parametrize("shape", [(-1, 4), (-2, -3), (2, -1, -1)])
def test_result_tensor_with_a_negative_size_is_internal(shape):
    """The binding's own check on what the library hands back: any negative size, also an even
    number of them (a positive element count), is an "internal" error rather than an array."""
    backing = np.zeros(64, np.float32)
    tensors = (_library.Tensor * 1)(_library.Tensor(b"output", _library.DTYPE_F32, len(shape), shape,
                                                    backing.ctypes.data))
    with pytest.raises(recur.RecurError) as error:
        _model._arrays_over(tensors, 1, backing)
    assert error.value.code == "internal" and str(shape) in str(error.value)


def test_result_tensor_outside_the_block_is_internal():
    """Tensors out of their promised order (here the last one's data before the first one's) are
    refused, not read."""
    backing = np.zeros(64, np.float32)
    tensors = (_library.Tensor * 2)(_library.Tensor(b"output", _library.DTYPE_F32, 1, (4,), backing.ctypes.data + 64),
                                    _library.Tensor(b"rnn.h_n", _library.DTYPE_F32, 1, (4,), backing.ctypes.data))
    with pytest.raises(recur.RecurError) as error:
        _model._arrays_over(tensors, 2, backing)
    assert error.value.code == "internal" and "outside the result" in str(error.value)


def test_result_tensor_of_no_elements_is_an_empty_array():
    backing = np.zeros(16, np.int64)
    tensors = (_library.Tensor * 1)(_library.Tensor(b"output", _library.DTYPE_I64, 2, (0, 3), backing.ctypes.data))
    array = _model._arrays_over(tensors, 1, backing)["output"]
    assert array.shape == (0, 3) and array.dtype == np.int64
